/*
 * Test harness: a cluster of real bfill-store processes on loopback. Its
 * layout goes into a real etcd (tests/support/etcd.h) through
 * bf_cluster_init; each store runs bin/bfill-store (env BFILL_STORE_BIN
 * overrides) on a free port with its data and log under the test's
 * scratch directory, and dies with the test process (PR_SET_PDEATHSIG).
 * Stores are numbered by their store id, 1..n.
 */
#ifndef BFILL_TEST_STORES_H
#define BFILL_TEST_STORES_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/cluster.h"
#include "rpc/rpc.h"
#include "tests/support/certs.h"
#include "tests/support/etcd.h"
#include "tests/support/tikv.h"

#define T_MAX_STORES 5

typedef struct t_stores t_stores;

typedef struct t_stores_opts {
	int nstores;      /* 1..T_MAX_STORES */
	int nregions;     /* bf_cluster_init's split; 0 = 1 */
	int replicas;     /* 0 = nstores */
	/* Extra arguments for every bfill-store ("--max-message 64K"). */
	const char *store_args;
	/* Where store data_dirs[i] lives instead of the scratch dir (a small
	 * file system for a disk-full test); NULL entries: the default. */
	const char *data_dirs[T_MAX_STORES];
	/* TLS: the stores serve (and forward with) certs' server pair, and
	 * the test's own client of them (tikv.h) shows the client pair;
	 * NULL: plain text. Borrowed; must outlive the stores. A TLS etcd
	 * (t_etcd_start_tls) is reached with TLS whatever this says. */
	const t_certs *certs;
	bool require_client_cert; /* --require-client-cert, with certs */
} t_stores_opts;

/*
 * Writes cluster `name` into etcd e (asserting that init succeeds), starts
 * its stores and waits until each serves. Needs t_scratch_dir. The
 * returned handle is freed by t_stores_stop_all (a suite's .fini) or
 * t_stores_destroy.
 */
t_stores *t_stores_start(t_etcd *e, const char *name, const t_stores_opts *o);
/* SIGKILLs every store still running and frees every t_stores. */
void t_stores_stop_all(void);
void t_stores_destroy(t_stores *s);

/* The test's own handle on the cluster (a watched cache), for lookups,
 * splits and leader transfers; owned by s. */
bf_cluster *t_stores_cluster(t_stores *s);
/* A channel to store id's address; owned by the tikv harness. */
bf_rpc_channel *t_stores_channel(t_stores *s, int id);
/* Store id's data directory and log file; owned by s. */
const char *t_stores_data(const t_stores *s, int id);
const char *t_stores_log(const t_stores *s, int id);

/* Starts store id again (same port, data, log; appended), with fault
 * ("name@N", as BFILL_FAULT; NULL: none) in its environment, and waits
 * until it serves. */
void t_stores_restart(t_stores *s, int id, const char *fault);
/* SIGTERMs store id and waits for it (10 s at most); its exit status, or
 * 128 + signal. */
int t_stores_term(t_stores *s, int id);
/* SIGKILLs store id and reaps it. */
void t_stores_kill(t_stores *s, int id);
/* True while store id's process runs. */
bool t_stores_alive(t_stores *s, int id);

/* The region holding raw key k, from the test's cache (asserted). */
bf_region t_stores_locate(t_stores *s, const void *k, size_t klen);
/* The request context for region r: its id, epoch and leader peer. */
t_ctx t_stores_ctx(const bf_region *r);
/* Waits (5 s at most) until the test's cache sees region id with an
 * epoch version >= version and, when leader is not 0, that leader. */
bf_region t_stores_wait_region(t_stores *s, uint64_t id, uint64_t version, uint64_t leader);

/* Pairs of record keys of table tid, handles from..to-1, value "v<h>";
 * free with t_kvs_free(kvs, to - from). */
t_kv *t_record_kvs(int64_t tid, int64_t from, int64_t to);

/* Path of the bfill-store binary (env BFILL_STORE_BIN, else ./bin/bfill-store). Static. */
const char *t_store_bin(void);

#endif
