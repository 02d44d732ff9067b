/*
 * Test harness: TLS certificates made by scripts/tls-certs.sh (openssl)
 * in a directory of the test's: a CA with server and client pairs, a
 * second CA with a pair of its own, and a pair that expired in 2020. Every
 * certificate names 127.0.0.1 and localhost. Where openssl is missing,
 * making them skips the test with a message.
 */
#ifndef BFILL_TEST_CERTS_H
#define BFILL_TEST_CERTS_H

#include <limits.h>
#include <stdbool.h>

#include "bfill/etcd.h"
#include "bfill/tls.h"

typedef struct t_pair {
	char cert[PATH_MAX], key[PATH_MAX];
} t_pair;

typedef struct t_certs {
	char dir[PATH_MAX];
	char ca[PATH_MAX];  /* signed server, client and expired */
	char ca2[PATH_MAX]; /* signed other */
	t_pair server, client, other, expired;
} t_certs;

/* Makes the certificates in <dir>/certs (absolute paths in c). */
void t_certs_make(t_certs *c, const char *dir);

/* A client's TLS: the CA ca (NULL: c's first) and pair p (NULL: none).
 * The strings are c's. */
bf_tls t_certs_client(const t_certs *c, const char *ca, const t_pair *p);
/* A server's TLS with the server pair, verifying clients against c's CA
 * when require_client_cert. */
bf_tls t_certs_server(const t_certs *c, bool require_client_cert);
/* The client's etcd security (the CA, the client pair). */
bf_etcd_security t_certs_etcd(const t_certs *c);
/* Command-line flags for a client with pair p (NULL: none) and CA ca
 * (NULL: c's first), the names prefixed with prefix ("--etcd-", "--"):
 * " --etcd-cacert F --etcd-cert F --etcd-key F". Static buffer, one per
 * prefix kind; copy before the next call with the same prefix. */
const char *t_certs_flags(const t_certs *c, const char *prefix, const char *ca,
			  const t_pair *p);
/* A line from the middle of p's key file: its secret part, for a test to
 * grep for. malloc'd. */
char *t_certs_key_marker(const t_pair *p);

#endif
