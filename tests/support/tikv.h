/*
 * Test harness: a client of store nodes speaking TiKV's ImportSST and KV
 * protocols, built on bfill's rpc transport. Two levels:
 *  - raw: any bytes to any method path, unary or as a client stream that
 *    may stop short, to see what a node makes of malformed requests;
 *  - whole requests (Write, MultiIngest, SwitchMode, KvScan, KvBatchGet,
 *    KvDeleteRange) built from plain values, with the decoded reply.
 * Every call has a 10 s deadline. Failures to send at all fail the test;
 * what the node answered (status, reply) is the caller's to check.
 */
#ifndef BFILL_TEST_TIKV_H
#define BFILL_TEST_TIKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

#include "proto/import_sstpb.pb-c.h"
#include "proto/kvrpcpb.pb-c.h"

#define T_PATH_WRITE "/import_sstpb.ImportSST/Write"
#define T_PATH_MULTI_INGEST "/import_sstpb.ImportSST/MultiIngest"
#define T_PATH_SWITCH_MODE "/import_sstpb.ImportSST/SwitchMode"
#define T_PATH_SCAN "/tikvpb.Tikv/KvScan"
#define T_PATH_BATCH_GET "/tikvpb.Tikv/KvBatchGet"
#define T_PATH_DELETE_RANGE "/tikvpb.Tikv/KvDeleteRange"

/* The channel to addr ("host:port"), one per address, from a pool of the
 * harness's own, which t_tikv_close destroys (a suite's .fini). */
bf_rpc_channel *t_tikv_channel(const char *addr);
void t_tikv_close(void);
/* The TLS of the channels t_tikv_channel makes from now on (NULL: plain
 * text; the paths are copied). A change closes the channels made before. */
void t_tikv_tls(const bf_tls *tls);

/* ---- raw ---------------------------------------------------------------- */

/* A unary call of bytes to path with metadata md (n_md entries; may be 0);
 * the reply, on OK, into *reply (may be NULL). */
bf_rpc_status t_tikv_raw_unary(bf_rpc_channel *ch, const char *path, const void *bytes,
			       size_t len, const bf_rpc_md *md, size_t n_md, bf_rpc_buf *reply);
/* A client stream of msgs to path; with half_close false the stream is
 * cancelled after the last message instead of closed (a client that dies
 * mid-stream), and the status is not waited for (code -1). */
bf_rpc_status t_tikv_raw_stream(bf_rpc_channel *ch, const char *path, const bf_rpc_buf *msgs,
				size_t n, bool half_close, bf_rpc_buf *reply);

/* ---- building blocks ------------------------------------------------------ */

/* Which region a request is for: its id and epoch, and the peer (leader). */
typedef struct t_ctx {
	uint64_t region_id, conf_ver, version;
	uint64_t peer_id, store_id;
} t_ctx;

typedef struct t_kv {
	const void *key;
	size_t klen;
	const void *value;
	size_t vlen;
} t_kv;

/* A packed WriteRequest: the meta of upload uuid (16 bytes; uuid_len lets
 * a test send another length) for ctx's region. Free with bf_rpc_buf_free. */
bf_rpc_buf t_tikv_write_meta(const uint8_t *uuid, size_t uuid_len, const t_ctx *ctx);
/* A packed WriteRequest holding one batch of n pairs at commit_ts. */
bf_rpc_buf t_tikv_write_batch(uint64_t commit_ts, const t_kv *kvs, size_t n);

/* A fresh random upload uuid. */
void t_tikv_uuid(uint8_t uuid[16]);

/* Keys and values for tests: key "t<prefix><i, 8 digits>" (a TiDB-like
 * key), value "v<i>"; t_kvs_free frees what t_kvs_make made. */
t_kv *t_kvs_make(const char *prefix, int from, int to);
void t_kvs_free(t_kv *kvs, int n);

/* ---- whole requests ---------------------------------------------------------- */

/*
 * Writes kvs (in batches of 100) as upload uuid in ctx's region, and
 * half-closes. Returns the WriteResponse on OK (free with
 * import_sstpb__write_response__free_unpacked), else NULL with *st set.
 */
ImportSstpb__WriteResponse *t_tikv_write(bf_rpc_channel *ch, const uint8_t uuid[16],
					 const t_ctx *ctx, const t_kv *kvs, size_t n,
					 bf_rpc_status *st);
/* MultiIngest of metas for ctx; fence "<rev>:<key>" as bfill-fence (NULL:
 * none). The IngestResponse on OK, else NULL with *st set. */
ImportSstpb__IngestResponse *t_tikv_ingest(bf_rpc_channel *ch, const t_ctx *ctx,
					   ImportSstpb__SSTMeta *const *metas, size_t n,
					   const char *fence, bf_rpc_status *st);
/* Write of kvs on every channel in chs (the region's peers, leader
 * first), then MultiIngest of the leader's metas on chs[0]; asserts that
 * every step succeeds. */
void t_tikv_load(bf_rpc_channel *const *chs, size_t nch, const t_ctx *ctx, const t_kv *kvs,
		 size_t n);
/* SwitchMode to import (true) or normal; the status. */
bf_rpc_status t_tikv_switch_mode(bf_rpc_channel *ch, bool import);
/* KvScan of raw [lo, hi) (hi NULL: the region's end) in ctx's region. */
Kvrpcpb__ScanResponse *t_tikv_scan(bf_rpc_channel *ch, const t_ctx *ctx, const void *lo,
				   size_t lolen, const void *hi, size_t hilen, uint32_t limit,
				   bf_rpc_status *st);
/* Called for each pair of a scan; the bytes are borrowed for the call. */
typedef void (*t_tikv_pair_fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *value,
			       size_t vlen);
/* Scans ctx's whole region page by page (asserting no error), calling fn
 * (may be NULL) for each pair in key order; returns how many there were. */
size_t t_tikv_each(bf_rpc_channel *ch, const t_ctx *ctx, t_tikv_pair_fn fn, void *arg);
/* The number of pairs a whole-region scan finds (asserting no error). */
size_t t_tikv_count(bf_rpc_channel *ch, const t_ctx *ctx);
Kvrpcpb__BatchGetResponse *t_tikv_batch_get(bf_rpc_channel *ch, const t_ctx *ctx,
					     const t_kv *keys, size_t n, bf_rpc_status *st);
Kvrpcpb__DeleteRangeResponse *t_tikv_delete_range(bf_rpc_channel *ch, const t_ctx *ctx,
						  const void *lo, size_t lolen, const void *hi,
						  size_t hilen, const char *fence,
						  bf_rpc_status *st);

#endif
