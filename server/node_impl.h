/*
 * Internal to server/: the node's state and what its handlers share:
 * region checks, region errors as errorpb messages, forwarding to the
 * followers, replies and the log. The handlers are in import.c (ImportSST)
 * and kv.c (Tikv); node.c holds the rest.
 */
#ifndef BFILL_SERVER_NODE_IMPL_H
#define BFILL_SERVER_NODE_IMPL_H

#include "bfill/node.h"
#include "rpc/rpc.h"
#include "rpc/server.h"

#include "proto/errorpb.pb-c.h"
#include "proto/kvrpcpb.pb-c.h"
#include "proto/metapb.pb-c.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

/* Metadata bfill adds to TiKV's requests (docs/cluster.md). */
#define NODE_MD_FENCE "bfill-fence"
#define NODE_MD_FORWARDED "bfill-forwarded"

/* Level-0 files from which the node says it is busy: RocksDB's slowdown
 * trigger for the store (engine/store.c). */
#define NODE_BUSY_L0_FILES 64
#define NODE_BUSY_BACKOFF_MS 1000

typedef struct node_chan {
	char *addr;          /* owned */
	bf_rpc_channel *ch;  /* owned by the pool */
} node_chan;

struct bf_node {
	bf_store *st; /* owned */
	char import_dir[PATH_MAX];
	uint64_t store_id;
	const bf_node_view_ops *view;
	void *view_arg; /* borrowed */
	bf_rpc_server *srv; /* owned */
	int port;
	int forward_timeout_ms;
	int sst_compression; /* bf_compression of uploads */
	int64_t upload_ttl_ms, last_sweep_ms; /* the sweep: the ticker's alone */

	bf_rpc_pool *pool; /* owned: channels to the other stores */
	pthread_mutex_t chan_mu;
	node_chan *chans; /* owned array */
	size_t n_chans;

	/* A fence check, its record and the ingest go together, one ingest
	 * (or range delete) at a time; RocksDB serializes ingests anyway. */
	pthread_mutex_t ingest_mu;

	/* Import mode: compaction off until switched back or until it
	 * times out (checked by the ticker). */
	pthread_mutex_t mode_mu;
	pthread_cond_t mode_cv; /* wakes the ticker to stop */
	bool import_mode, ticker_stop, ticker_started;
	int64_t import_until_ms;
	int import_mode_timeout_ms;
	pthread_t ticker;

	_Atomic int64_t last_refresh_ms;

	FILE *log; /* the caller's; NULL: no log */
	char log_prefix[64];
	pthread_mutex_t log_mu;
	int64_t log_window_ms; /* start of the current second */
	int log_lines;         /* error lines in it */
	long log_dropped;      /* error lines not shown since the last shown */
	/* Clients refused at the TLS handshake: one line a second at most;
	 * the others are counted and told by the ticker. */
	int64_t refused_shown_ms;
	long refused_hidden;
	char refused_why[256]; /* the reason of the last one counted */
};

/* ---- the log (node.c) ---- */

/* One line: "<prefix>: <text>". */
void node_log(bf_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line for a failed request, at most a few a second; the next line
 * shown says how many were not. */
void node_log_error(bf_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- regions (node.c) ---- */

/*
 * A region error under construction, with the storage its message points
 * into. node_rerr_init before use, node_rerr_free after packing.
 */
typedef struct node_rerr {
	Errorpb__Error e;
	Errorpb__NotLeader not_leader;
	Metapb__Peer leader;
	Errorpb__RegionNotFound not_found;
	Errorpb__KeyNotInRegion not_in_region;
	Errorpb__EpochNotMatch epoch;
	Metapb__Region **current;   /* owned array of owned messages */
	size_t n_current;
	Errorpb__ServerIsBusy busy;
	Errorpb__StaleCommand stale;
	Errorpb__DiskFull disk_full;
	uint64_t disk_full_store;
	uint8_t *key_bufs[3]; /* owned: KeyNotInRegion's key, start, end */
	char message[BF_ERR_MSG_MAX];
} node_rerr;

void node_rerr_init(node_rerr *re);
void node_rerr_free(node_rerr *re);
bool node_rerr_set(const node_rerr *re);
/* Sets message (printf-style); the kinds below set it too. */
void node_rerr_message(node_rerr *re, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void node_rerr_busy(node_rerr *re, const char *reason);
void node_rerr_disk_full(node_rerr *re, uint64_t store_id, const char *reason);
void node_rerr_stale_command(node_rerr *re, const char *why);
/* KeyNotInRegion for raw key k (copied) and region r. */
void node_rerr_key_not_in_region(node_rerr *re, const bf_region *r, const void *k, size_t klen);

/* A raw key range a request touches, for EpochNotMatch's current regions;
 * hi NULL = to the end. Borrowed. */
typedef struct node_span {
	const void *lo, *hi;
	size_t lolen, hilen;
	bool set;
} node_span;

/* EpochNotMatch for a request at epoch want (NULL: none) on region r,
 * with every cached region over r and span (may be NULL), as TiKV sends
 * the regions a split made. */
void node_rerr_epoch_not_match(bf_node *n, node_rerr *re, const bf_region *r,
			       const Metapb__RegionEpoch *want, const node_span *span);

/*
 * The region checks every region-scoped request passes (TiKV's order):
 * the region is known and has a peer on this node (RegionNotFound), the
 * request's epoch is the region's exactly (EpochNotMatch, with the
 * current regions over the region and span), and, with need_leader, this
 * node leads it (NotLeader, with the leader when known). 0 with *r set;
 * 1 with the error in *re. A cache that is behind the request is
 * refreshed first.
 */
int node_check_region(bf_node *n, uint64_t region_id, const Metapb__RegionEpoch *epoch,
		      bool need_leader, const node_span *span, bf_region *r, node_rerr *re);
/* node_check_region for a request's context (NULL: none, which no region
 * passes). */
int node_check_context(bf_node *n, const Kvrpcpb__Context *ctx, bool need_leader,
		       const node_span *span, bf_region *r, node_rerr *re);
/* True when raw key k lies in r. */
bool node_key_in_region(const bf_region *r, const void *k, size_t klen);
/* The fence metadata of a call: 0 with *revision 0 when absent; BF_EINVAL
 * after ending the call with UNKNOWN for a malformed one. key holds
 * BF_FENCE_KEY_MAX. */
int node_fence_md(bf_rpc_server_call *c, int64_t *revision, char *key);
/* Checks and records a fence token under n->ingest_mu (held by the
 * caller): BF_EFENCED, with the text "stale fence token ...", when a
 * higher revision has been used for key. revision 0: nothing to check. */
int node_fence_check(bf_node *n, int64_t revision, const char *key, bf_err *err);
/* True for keys under BF_CATALOG_PREFIX: the node's own records, which no
 * request may read or write. */
bool node_key_reserved(const void *k, size_t klen);
/* True when the call says it was forwarded by a leader. */
bool node_forwarded(bf_rpc_server_call *c);

/* ---- forwarding to followers (node.c) ---- */

typedef struct node_fwd_fail {
	uint64_t store_id;
	char addr[BF_CLUSTER_ADDR_MAX];
	bool replied;        /* the follower answered OK; its reply is in reply */
	bf_rpc_status status; /* otherwise how the call ended */
	bf_rpc_buf reply;    /* owned */
	char why[BF_ERR_MSG_MAX]; /* one line for the log and the client */
} node_fwd_fail;

/*
 * Sends req (bytes as the client sent them) by method path to every other
 * peer of r, marked forwarded and with the fence metadata (fence NULL:
 * none); accepted(reply) says whether a follower's reply means it
 * applied. 0 when every follower did; otherwise BF_EUNAVAIL with the first
 * failure in *fail (free its reply with bf_rpc_buf_free).
 */
int node_forward(bf_node *n, const bf_region *r, const char *path, const bf_rpc_buf *req,
		 const char *fence, bool (*accepted)(const bf_rpc_buf *reply), node_fwd_fail *fail);

/* ---- replies (node.c) ---- */

/* The request as message type d (free with protobuf_c_message_free_unpacked);
 * NULL after ending the call with UNKNOWN when the bytes are not one. */
void *node_unpack(bf_rpc_server_call *c, const ProtobufCMessageDescriptor *d,
		  const bf_rpc_buf *req);
/* The same with protobuf-c allocator alloc (NULL: malloc); free the
 * message with the same allocator. */
void *node_unpack_in(bf_rpc_server_call *c, const ProtobufCMessageDescriptor *d,
		     const bf_rpc_buf *req, ProtobufCAllocator *alloc);
/* Packs msg (a protobuf-c message) and replies with it. */
void node_reply_pb(bf_rpc_server_call *c, const void *msg);
/* Ends the call with gRPC UNKNOWN and the formatted text (TiKV's channel
 * for request errors). */
void node_fail(bf_rpc_server_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- handlers ---- */

int node_add_import_methods(bf_node *n, bf_err *err);
int node_add_kv_methods(bf_node *n, bf_err *err);
/* Ends import mode when its time is up (the ticker calls it). */
void node_import_mode_tick(bf_node *n);

#endif
