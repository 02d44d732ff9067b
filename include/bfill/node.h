/*
 * A store node (DESIGN §5, docs/cluster.md): a bfill store served over
 * TiKV's ImportSST and KV protocols by a gRPC server. This is what
 * `bfill-store` runs; tests run nodes in-process through it too.
 *
 * The node learns its regions and the other stores from a view: the
 * cluster's region cache (bf_cluster, loaded and watched from etcd), or,
 * for tests that need no etcd, any table behind the same few calls.
 *
 * Depends on: engine (store, catalog, SST writer), cluster (the view),
 * rpc (server, and the client that forwards to followers).
 */
#ifndef BFILL_NODE_H
#define BFILL_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/cluster.h"
#include "bfill/error.h"
#include "bfill/fence.h"
#include "bfill/store.h"
#include "bfill/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_node bf_node;

/* What a node asks about the cluster; every call answers from a cache and
 * never waits long. Errors: BF_ENOTFOUND when the region or store is not
 * known. */
typedef struct bf_node_view_ops {
	int (*region)(void *arg, uint64_t id, bf_region *out, bf_err *err);
	/* Every region overlapping raw [lo, hi) (hi NULL: to the end), in key
	 * order; *out is malloc'd, the caller frees it. */
	int (*regions)(void *arg, const void *lo, size_t lolen, const void *hi, size_t hilen,
		       bf_region **out, size_t *n, bf_err *err);
	int (*store)(void *arg, uint64_t id, bf_cluster_store *out, bf_err *err);
	/* Reloads the cache from its source (etcd), when a request names a
	 * region the cache does not have yet or is behind on. May be NULL. */
	int (*refresh)(void *arg, bf_err *err);
} bf_node_view_ops;

/* The view of a bf_cluster handle (its region cache; view_arg is the
 * handle), for bf_node_opts. */
extern const bf_node_view_ops bf_node_cluster_view;

typedef struct bf_node_opts {
	const char *data_dir;   /* the store; created when absent */
	uint64_t store_id;      /* this node's id in the cluster */
	const char *listen;     /* "host:port"; port 0 takes a free one */
	const bf_node_view_ops *view;
	void *view_arg;         /* borrowed; must outlive the node */
	/* The cluster's UUID, or NULL: the data directory remembers the
	 * cluster and store id it first served, and refuses to serve another. */
	const char *cluster_uuid;
	size_t max_message_bytes; /* larger requests are refused; 0 = 16 MiB */
	int threads;              /* gRPC workers at the start; 0 = 4 */
	int forward_timeout_ms;   /* each forward to a follower; 0 = 30000 */
	int import_mode_timeout_ms; /* import mode ends by itself; 0 = 10 min */
	/* Compression of the SSTs Write makes (bf_compression). The default,
	 * none, is the embedded target's: an upload is written on every
	 * replica on the import's critical path, and the ingested file sits
	 * in the bottom level until the store compacts it. */
	int sst_compression;
	/* An upload no ingest took (its client died between Write and
	 * MultiIngest, or wrote again elsewhere) is removed once this old; a
	 * later ingest of it is StaleCommand and the client writes again.
	 * 0 = 1 hour. */
	int64_t upload_ttl_ms;
	/* Where the node's log lines go (one per event; errors rate
	 * limited); NULL = nowhere (bfill-store passes stderr). Each starts
	 * with prefix ("bfill-store"). Borrowed. */
	void *log; /* FILE * */
	const char *log_prefix;
	/*
	 * TLS, both ways (docs/security.md): the node serves it, showing
	 * cert_file, and with require_client_cert lets in only clients whose
	 * certificate ca_file signed; it forwards to the other stores with
	 * it, verifying them against ca_file and showing cert_file (so that
	 * certificate must do for a client too). All three files are needed.
	 * Each client refused at the handshake is logged, one line a second
	 * at most. NULL: plain text. Read by bf_node_open; borrowed for that
	 * call.
	 */
	const bf_tls *tls;
} bf_node_opts;

/*
 * Sends gRPC core's own log lines nowhere unless GRPC_VERBOSITY is set in
 * the environment, and then to out (a FILE *, e.g. stderr; NULL: nowhere
 * either): a node logs what matters itself, one line each (its refused
 * TLS clients too, which it learns of from gRPC's log whatever this
 * says). Call first thing in a process that runs a node.
 */
void bf_node_quiet_grpc_log(void *out);

/*
 * Opens (creating) the store in data_dir, removes half-written uploads
 * from data_dir/import, and starts serving on listen. Errors: the store's
 * (BF_ELOCKED, BF_ENOSPC, BF_ENOTSTORE...), BF_EINVAL when it cannot
 * listen, BF_ESTATE when the directory belongs to another cluster or
 * store. *out is freed with bf_node_close.
 */
int bf_node_open(const bf_node_opts *o, bf_node **out, bf_err *err);
/* The port the node listens on (the one chosen, with port 0). */
int bf_node_port(const bf_node *n);
/* The node's store (borrowed from the node). */
bf_store *bf_node_store(bf_node *n);
/*
 * Stops serving: no new calls, calls in flight get grace_ms to finish,
 * the rest are cancelled. Safe to call twice; bf_node_close calls it.
 */
void bf_node_stop(bf_node *n, int grace_ms);
/* Stops (without grace) if needed, closes the store, frees. NULL is
 * allowed. */
void bf_node_close(bf_node *n);

#ifdef __cplusplus
}
#endif
#endif
