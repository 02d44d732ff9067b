/*
 * TLS settings of a connection (docs/security.md): which PEM files prove
 * who the peer is and who we are. One struct for every place bfill talks
 * gRPC: to etcd (bf_etcd_security), to the store nodes (the cluster
 * target, a node's forwarding) and a store node's own server.
 *
 * Only paths live here. A client or server reads the files when it is
 * created, hands their bytes to gRPC, and wipes its own copy of them; no
 * message, log line or record ever holds a file's content, only its path.
 * The paths are borrowed for the create call that reads them.
 *
 * A client verifies the server's certificate against ca_file and checks
 * the name it dialled (host or IP address) against the certificate's
 * subjectAltName; it shows cert_file when the server asks for one. A
 * server shows cert_file and, with require_client_cert, refuses every
 * client whose certificate ca_file did not sign, at the handshake.
 */
#ifndef BFILL_TLS_H
#define BFILL_TLS_H

#include <stdbool.h>

#include "bfill/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_tls {
	/* PEM CA certificate(s) the peer's certificate must chain to. A
	 * client needs it for TLS; a server needs it to verify clients. */
	const char *ca_file;
	/* PEM certificate (chain) shown to the peer: required for a server,
	 * optional for a client (then key_file too). */
	const char *cert_file;
	/* PEM private key of cert_file; given exactly when cert_file is. */
	const char *key_file;
	/* Servers only: a client without a certificate ca_file signed is
	 * refused at the handshake. Needs ca_file. */
	bool require_client_cert;
} bf_tls;

/* True when t (NULL allowed) names any file: the connection is TLS. */
bool bf_tls_enabled(const bf_tls *t);

/*
 * Checks that t fits its role without reading any file: a client needs
 * ca_file (and cert_file with key_file, or neither); a server needs
 * cert_file and key_file (and ca_file with require_client_cert).
 * flag_prefix names the files in the message the way the command line
 * does ("--etcd-" gives "--etcd-cacert", "--etcd-cert", "--etcd-key";
 * NULL = "--"). BF_EINVAL with one line in err when it does not fit;
 * 0 for NULL or a t that names no file (plain text).
 */
int bf_tls_check(const bf_tls *t, bool server, const char *flag_prefix, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
