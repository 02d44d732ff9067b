/*
 * Internal: bfill's client of store nodes (docs/cluster.md), one call at a
 * time and no policy: ImportSST's Write streams to every peer of a region
 * and MultiIngest on its leader, and Tikv's KvScan, KvBatchGet and
 * KvDeleteRange on the leader. What to do when a call fails is the
 * caller's (ingest/cluster_retry.h).
 *
 * Every call answers in two ways: a negative code when the call itself
 * failed (bf_tikv_status_code says what each means: BF_EUNAVAIL or
 * BF_ETIMEDOUT a node down or slow, BF_ESTATE a region the node sees
 * otherwise, BF_EFENCED, BF_ENOSPC, BF_EIO), or 0 with the region error
 * the node answered in *re (BF_TIKV_OK when none). Messages name the store
 * ("store 2 127.0.0.1:20161 MultiIngest: ...").
 *
 * Depends on: rpc/, ingest/tikv_wire, bfill/cluster.h (store addresses).
 * Thread safety: a client may be used by many threads at once; a writer
 * belongs to one.
 */
#ifndef BFILL_INGEST_TIKV_CLIENT_H
#define BFILL_INGEST_TIKV_CLIENT_H

#include "bfill/cluster.h"
#include "bfill/fence.h"
#include "ingest/tikv_wire.h"

typedef struct bf_tikv_client bf_tikv_client;

/*
 * A client of cluster c's stores (c is borrowed and must outlive it); each
 * call and each exchange on a stream waits at most rpc_timeout_ms. TLS
 * when tls names files (read now, borrowed for the call; NULL: plain
 * text); a store that refuses the handshake is -EACCES. Connects lazily.
 * *out is freed with bf_tikv_client_destroy.
 */
int bf_tikv_client_create(bf_cluster *c, int rpc_timeout_ms, const bf_tls *tls,
			  bf_tikv_client **out, bf_err *err);
/* Writers and calls must be finished first. NULL is allowed. */
void bf_tikv_client_destroy(bf_tikv_client *c);

/* ---- Write to every peer ---- */

typedef struct bf_tikv_writer bf_tikv_writer;

/*
 * Opens a Write stream to every peer of r and sends each the same meta:
 * uuid, r's id and epoch, and the range [first, last] of what will follow
 * (raw, inclusive). *out is freed with bf_tikv_writer_destroy, also on
 * failure after it was set.
 */
int bf_tikv_writer_open(bf_tikv_client *c, const bf_region *r, const uint8_t uuid[16],
			const void *first, size_t firstlen, const void *last, size_t lastlen,
			bf_tikv_writer **out, bf_err *err);
/* Sends one batch message to every peer. */
int bf_tikv_writer_send(bf_tikv_writer *w, const bf_rpc_buf *msg, bf_err *err);
/*
 * Closes every stream and reads each reply. 0 with *metas, the leader's
 * SSTMetas (the caller's), when every peer wrote its file; 0 with *metas
 * NULL and *re set when a peer answered an error in its reply; negative
 * when a stream failed. A leader that answered no metas is BF_EIO.
 */
int bf_tikv_writer_finish(bf_tikv_writer *w, bf_tikv_metas **metas, bf_tikv_error *re,
			  bf_err *err);
/* Cancels what is still open. NULL is allowed. */
void bf_tikv_writer_destroy(bf_tikv_writer *w);

/* ---- calls on the leader ---- */

/*
 * MultiIngest of metas on r's leader, with the fence token as metadata
 * (none for revision 0).
 */
int bf_tikv_multi_ingest(bf_tikv_client *c, const bf_region *r, const bf_tikv_metas *metas,
			 const bf_fence_token *token, bf_tikv_error *re, bf_err *err);
/* KvScan of r's leader, or of its replica-th peer (1-based; 0 = the
 * leader) (see bf_tikv_wire_scan); *pairs is the caller's. */
int bf_tikv_scan(bf_tikv_client *c, const bf_region *r, int replica, const void *start,
		 size_t startlen, const void *end, size_t endlen, uint32_t limit, bool reverse,
		 bf_tikv_pairs **pairs, bf_tikv_error *re, bf_err *err);
/* KvBatchGet of the probes' keys on r's leader; *pairs is the caller's. */
int bf_tikv_batch_get(bf_tikv_client *c, const bf_region *r, const bf_probe *probes, size_t n,
		      bf_tikv_pairs **pairs, bf_tikv_error *re, bf_err *err);
/* KvDeleteRange of raw [lo, hi) on r's leader. */
int bf_tikv_delete_range(bf_tikv_client *c, const bf_region *r, const void *lo, size_t lolen,
			 const void *hi, size_t hilen, bf_tikv_error *re, bf_err *err);

#endif
