/*
 * Internal: the wire layer of bfill's client of store nodes, which speak
 * TiKV's import_sstpb.ImportSST and tikvpb.Tikv (docs/cluster.md). Encodes
 * requests from bfill's plain values, decodes and checks replies, reads
 * region errors, and says what a failed gRPC status means for the client.
 * Pure functions over buffers, with no gRPC, so that every kind of reply
 * can be tested without a node.
 *
 * Keys in requests are raw; only the SSTMeta range and region records use
 * the memcomparable encoding (bf_region_encode_key).
 *
 * Depends on: the protobuf-c code generated from proto/, rpc/rpc.h (buffer
 * and status types), bfill/cluster.h (bf_region, its key encoding and
 * metapb decoding), codec.
 */
#ifndef BFILL_INGEST_TIKV_WIRE_H
#define BFILL_INGEST_TIKV_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/cluster.h"
#include "bfill/fence.h"
#include "bfill/probe.h"
#include "rpc/rpc.h"

/* ---- region errors (errorpb.Error) ---- */

typedef enum bf_tikv_err_kind {
	BF_TIKV_OK = 0,
	BF_TIKV_NOT_LEADER,        /* leader_store: the leader now, 0 when unknown */
	BF_TIKV_REGION_NOT_FOUND,
	BF_TIKV_EPOCH_NOT_MATCH,   /* current: the regions the store has now */
	BF_TIKV_SERVER_BUSY,       /* backoff_ms: the store's hint, 0 when none */
	BF_TIKV_STALE_COMMAND,     /* a file to ingest is gone: write it again */
	BF_TIKV_DISK_FULL,         /* full_stores */
	BF_TIKV_KEY_NOT_IN_REGION,
	BF_TIKV_STORE_NOT_MATCH,
	BF_TIKV_OTHER,             /* only a message */
} bf_tikv_err_kind;

#define BF_TIKV_MAX_FULL_STORES 8

typedef struct bf_tikv_error {
	bf_tikv_err_kind kind;
	uint64_t region_id;    /* the region the error is about, when it says */
	uint64_t leader_store;
	uint64_t backoff_ms;
	bf_region *current;    /* malloc'd, raw keys; freed by bf_tikv_error_free */
	size_t ncurrent;
	uint64_t full_stores[BF_TIKV_MAX_FULL_STORES];
	int nfull;
	char message[256];     /* the store's own text ("" when none) */
} bf_tikv_error;

/* Frees what e holds and clears it to BF_TIKV_OK. */
void bf_tikv_error_free(bf_tikv_error *e);
/* "NotLeader", "EpochNotMatch"...; static. */
const char *bf_tikv_err_name(bf_tikv_err_kind k);

/*
 * What a failed status from a node means for the client, as a bfill code:
 *  - BF_EFENCED: "stale fence token", the ingest was refused for good;
 *  - BF_ENOSPC: the node is out of disk;
 *  - BF_ESTATE: the node's region differs from ours (Write's RequestTooOld,
 *    RequestTooNew, "region ... not found"): learn the region and redo;
 *  - BF_EUNAVAIL / BF_ETIMEDOUT: the node is down, unreachable or too slow
 *    (UNAVAILABLE, DEADLINE_EXCEEDED, a cancelled call): back off, retry;
 *  - -EACCES: the node refused this client's TLS handshake (or this client
 *    the node's), st->tls_refused: fatal, no retry mends it;
 *  - BF_EIO: anything else the node failed with.
 * st->code must not be OK.
 */
int bf_tikv_status_code(const bf_rpc_status *st);

/* The same reading of a node's error text, when no status comes with it
 * (WriteResponse.error): BF_EFENCED, BF_ENOSPC, BF_ESTATE or BF_EIO. */
int bf_tikv_text_code(const char *text);

/* ---- fencing ---- */

/* The metadata key bfill's fence token travels under. */
#define BF_TIKV_FENCE_MD "bfill-fence"

/*
 * The fence token as metadata value "<revision>:<lock key>" into buf.
 * False (buf untouched) when there is nothing to send: no token, or
 * revision 0 (not fenced).
 */
bool bf_tikv_fence_value(const bf_fence_token *t, char *buf, size_t cap);

/* ---- ImportSST.Write ---- */

/*
 * The first message of a Write stream: SSTMeta with the 16-byte uuid,
 * region id and epoch, and the range [first, last] (raw keys, inclusive;
 * encoded here). out->data is malloc'd (bf_rpc_buf_free).
 */
int bf_tikv_wire_write_meta(const uint8_t uuid[16], const bf_region *r, const void *first,
			    size_t firstlen, const void *last, size_t lastlen, bf_rpc_buf *out);

/*
 * A Write batch being filled: pairs are encoded straight into one buffer,
 * which the finished message then shares (no copy).
 */
typedef struct bf_tikv_batch {
	uint8_t *buf; /* owned */
	size_t len, cap;
	size_t pairs;
	uint64_t kv_bytes; /* keys + values added since the last reset */
} bf_tikv_batch;

/* Zeroed is a valid empty batch too. */
void bf_tikv_batch_init(bf_tikv_batch *b);
void bf_tikv_batch_free(bf_tikv_batch *b);
/* Empties the batch, keeping its memory. */
void bf_tikv_batch_reset(bf_tikv_batch *b);
/* Adds one Put pair (copied). BF_ENOMEM. */
int bf_tikv_batch_add(bf_tikv_batch *b, const void *key, size_t klen, const void *val,
		      size_t vlen);
/*
 * The WriteRequest{batch{commit_ts, pairs}} for what was added. msg points
 * into b (do not free it) and stays valid until b changes. BF_ENOMEM.
 */
int bf_tikv_batch_message(bf_tikv_batch *b, uint64_t commit_ts, bf_rpc_buf *msg);

/* The SSTMetas a node answered a Write with (opaque; owned by the caller). */
typedef struct bf_tikv_metas bf_tikv_metas;

size_t bf_tikv_metas_count(const bf_tikv_metas *m);
/* NULL is allowed. */
void bf_tikv_metas_free(bf_tikv_metas *m);

/*
 * Decodes a WriteResponse. 0 with *metas (possibly none) when the node
 * reports no error; when it does (WriteResponse.error), 0 with *metas NULL
 * and the error in *re (a region error, or BF_TIKV_OTHER with its text).
 * BF_EPROTO when the reply cannot be read.
 */
int bf_tikv_unwire_write(const uint8_t *buf, size_t len, bf_tikv_metas **metas,
			 bf_tikv_error *re, bf_err *err);

/* ---- ImportSST.MultiIngest ---- */

/* MultiIngestRequest{context{region, epoch, peer}, ssts}. */
int bf_tikv_wire_multi_ingest(const bf_region *r, const bf_region_peer *peer,
			      const bf_tikv_metas *m, bf_rpc_buf *out);
/* IngestResponse: its region error into *re (BF_TIKV_OK when none). */
int bf_tikv_unwire_ingest(const uint8_t *buf, size_t len, bf_tikv_error *re, bf_err *err);

/* ---- Tikv.KvScan, KvBatchGet, KvDeleteRange ---- */

/*
 * A forward scan of raw [start, end) (end empty = to the region's end), or
 * with reverse, TiKV's reverse scan: from start (exclusive) down to end
 * (inclusive), largest key first.
 */
int bf_tikv_wire_scan(const bf_region *r, const bf_region_peer *peer, const void *start,
		      size_t startlen, const void *end, size_t endlen, uint32_t limit,
		      bool reverse, bf_rpc_buf *out);
/* The keys of probes[0..n), in their order. */
int bf_tikv_wire_batch_get(const bf_region *r, const bf_region_peer *peer,
			   const bf_probe *probes, size_t n, bf_rpc_buf *out);
int bf_tikv_wire_delete_range(const bf_region *r, const bf_region_peer *peer, const void *lo,
			      size_t lolen, const void *hi, size_t hilen, bf_rpc_buf *out);

/* Pairs a scan or a batch get answered (opaque; owned by the caller). */
typedef struct bf_tikv_pairs bf_tikv_pairs;

size_t bf_tikv_pairs_count(const bf_tikv_pairs *p);
/* Borrowed from p. */
const uint8_t *bf_tikv_pairs_key(const bf_tikv_pairs *p, size_t i, size_t *len);
const uint8_t *bf_tikv_pairs_value(const bf_tikv_pairs *p, size_t i, size_t *len);
/* NULL is allowed. */
void bf_tikv_pairs_free(bf_tikv_pairs *p);

/*
 * ScanResponse / BatchGetResponse: 0 with *pairs when there is no region
 * error, 0 with *pairs NULL and *re set when there is; BF_EPROTO when the
 * reply cannot be read or carries a key error (a node without MVCC has no
 * locks, so one means a broken node).
 */
int bf_tikv_unwire_scan(const uint8_t *buf, size_t len, bf_tikv_pairs **pairs,
			bf_tikv_error *re, bf_err *err);
int bf_tikv_unwire_batch_get(const uint8_t *buf, size_t len, bf_tikv_pairs **pairs,
			     bf_tikv_error *re, bf_err *err);
/* DeleteRangeResponse: a region error into *re; its error text is
 * BF_TIKV_OTHER. */
int bf_tikv_unwire_delete_range(const uint8_t *buf, size_t len, bf_tikv_error *re,
				bf_err *err);

#endif
