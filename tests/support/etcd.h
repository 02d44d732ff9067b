/*
 * Test harness: real etcd servers on loopback for the lock tests. Starts a
 * 1- or 3-member cluster on free ports with temporary data dirs, waits
 * until every member answers `etcdctl endpoint health`, and always stops
 * them: t_etcd_destroy, t_etcd_stop_all (for a Criterion .fini: it also
 * removes the data of clusters a failed assertion left behind), and
 * PR_SET_PDEATHSIG in each member so a crashed test cannot leave one
 * running. Readiness goes through etcdctl rather than bfill's client so a
 * test process can still fork before it first touches gRPC.
 *
 * When the etcd binary is missing, starting skips the test with a message.
 */
#ifndef BFILL_TEST_ETCD_H
#define BFILL_TEST_ETCD_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/etcd.h"
#include "tests/support/certs.h"

typedef struct t_etcd t_etcd;

/* True when etcd and etcdctl are installed. */
bool t_etcd_available(void);

/* Starts a cluster of n members (1..3) and waits until it is healthy;
 * skips the test when etcd is missing, fails it when etcd won't start.
 * With BFILL_TEST_ETCD=tls in the environment it is t_etcd_start_tls (a
 * CA and pairs of its own), with =auth t_etcd_start_auth (token TTL 300
 * s): tests whose every client takes t_etcd_security_of run unchanged
 * over TLS or as a user. */
t_etcd *t_etcd_start(int n);
/*
 * t_etcd_start with TLS for clients (peers stay plain): each member
 * serves https:// with certs' server pair and, with --client-cert-auth,
 * takes only clients whose certificate certs' CA signed. certs is
 * borrowed and must outlive e. The harness's own clients (etcdctl,
 * t_etcd_client, and every helper given these endpoints: see
 * t_etcd_security_of) use the client pair.
 */
t_etcd *t_etcd_start_tls(int n, const t_certs *certs);
/*
 * t_etcd_start with etcd authentication on: user T_ETCD_USER (root, so
 * every permission) with T_ETCD_PASSWORD, simple tokens that expire after
 * token_ttl_s seconds unused (--auth-token-ttl). The harness's own
 * clients authenticate as that user.
 */
#define T_ETCD_USER "root"
#define T_ETCD_PASSWORD "bfill-auth-test-pw"
t_etcd *t_etcd_start_auth(int n, int token_ttl_s);
/* A file holding T_ETCD_PASSWORD, for --etcd-password-file; NULL without
 * authentication. Owned by e. */
const char *t_etcd_password_file(const t_etcd *e);
/*
 * How the harness's clients secure their connections to the cluster an
 * endpoint list belongs to (all of e's, or some member's host:port):
 * NULL for a plain-text, anonymous cluster or a list of no cluster of
 * this process.
 * Owned by that cluster.
 */
const bf_etcd_security *t_etcd_security_of(const char *endpoints);
/* Kills every member and removes the data dirs. NULL is allowed. */
void t_etcd_destroy(t_etcd *e);
/* Destroys every cluster this process started and has not destroyed yet
 * (for .fini hooks, which also run after a failed assertion). */
void t_etcd_stop_all(void);

/* "127.0.0.1:p1,127.0.0.1:p2,..." for all members ("https://127.0.0.1:p1,..."
 * with TLS); owned by e. */
const char *t_etcd_endpoints(const t_etcd *e);
/* The directory holding every member's data and log; owned by e. */
const char *t_etcd_dir(const t_etcd *e);
/* "127.0.0.1:p" of member i; owned by e. */
const char *t_etcd_endpoint(const t_etcd *e, int i);

/* SIGKILLs member i (its data dir stays). */
void t_etcd_kill(t_etcd *e, int i);
/* Starts member i again on its data dir and ports; waits until healthy. */
void t_etcd_restart(t_etcd *e, int i);

/* A bfill etcd client on every member of e, with calls of
 * call_timeout_ms (asserting that it is made; making one contacts no
 * member, so a test may still fork after). bf_etcd_destroy frees it. */
bf_etcd *t_etcd_client(const t_etcd *e, int call_timeout_ms);

/* A loopback "host:port" nothing listens on (static buffer). */
const char *t_etcd_dead_endpoint(void);

/* The leases etcd holds now, read with `etcdctl lease list` (so from
 * outside bfill's client): returns how many, with up to max of their IDs
 * in ids (may be NULL). Asserts that etcdctl succeeds. */
int t_etcd_leases(const t_etcd *e, int64_t *ids, int max);

#endif
