/*
 * A TiKV-protocol client for tests (tikv.h), over bfill's rpc transport.
 */
#include "tests/support/tikv.h"

#include "util/util.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define CALL_MS 10000
#define BATCH_PAIRS 100

static bf_rpc_pool *pool;
static struct {
	char addr[64];
	bf_rpc_channel *ch;
} chans[16];
static int nchans;
/* The pool's TLS, its paths copied: none when ca is "". */
static struct {
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
} tls_files;

void t_tikv_tls(const bf_tls *tls)
{
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];

	snprintf(ca, sizeof(ca), "%s", tls && tls->ca_file ? tls->ca_file : "");
	snprintf(cert, sizeof(cert), "%s", tls && tls->cert_file ? tls->cert_file : "");
	snprintf(key, sizeof(key), "%s", tls && tls->key_file ? tls->key_file : "");
	if (!strcmp(ca, tls_files.ca) && !strcmp(cert, tls_files.cert) &&
	    !strcmp(key, tls_files.key))
		return;
	t_tikv_close();
	memcpy(tls_files.ca, ca, sizeof(ca));
	memcpy(tls_files.cert, cert, sizeof(cert));
	memcpy(tls_files.key, key, sizeof(key));
}

bf_rpc_channel *t_tikv_channel(const char *addr)
{
	bf_tls tls = { .ca_file = tls_files.ca, .cert_file = *tls_files.cert ? tls_files.cert : NULL,
		       .key_file = *tls_files.key ? tls_files.key : NULL };
	bf_rpc_pool_opts o = { .label = "test client", .max_recv_bytes = 64 << 20,
			       .tls = *tls_files.ca ? &tls : NULL };
	bf_rpc_channel *ch = NULL;
	bf_err err;

	for (int i = 0; i < nchans; i++)
		if (!strcmp(chans[i].addr, addr))
			return chans[i].ch;
	if (!pool)
		cr_assert_eq(bf_rpc_pool_create(&o, &pool, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_rpc_pool_add(pool, addr, &ch, &err), 0, "%s", bf_err_text(&err));
	if (nchans < (int)(sizeof(chans) / sizeof(chans[0]))) {
		snprintf(chans[nchans].addr, sizeof(chans[nchans].addr), "%s", addr);
		chans[nchans++].ch = ch;
	}
	return ch;
}

void t_tikv_close(void)
{
	bf_rpc_pool_destroy(pool);
	pool = NULL;
	nchans = 0;
}

/* ---- raw ---------------------------------------------------------------- */

bf_rpc_status t_tikv_raw_unary(bf_rpc_channel *ch, const char *path, const void *bytes,
			       size_t len, const bf_rpc_md *md, size_t n_md, bf_rpc_buf *reply)
{
	bf_rpc_method m = { .path = path, .name = strrchr(path, '/') + 1 };
	bf_rpc_call call = { .method = &m, .md = md, .n_md = n_md,
			     .deadline_ms = bf_now_ms() + CALL_MS };
	bf_rpc_buf req = { (uint8_t *)bytes, len }, got = { 0 };
	bf_rpc_status st;
	bf_err err;

	cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, &got, &err), 0, "%s %s: %s",
		     bf_rpc_channel_target(ch), path, bf_err_text(&err));
	if (reply)
		*reply = got;
	else
		bf_rpc_buf_free(&got);
	return st;
}

bf_rpc_status t_tikv_raw_stream(bf_rpc_channel *ch, const char *path, const bf_rpc_buf *msgs,
				size_t n, bool half_close, bf_rpc_buf *reply)
{
	bf_rpc_method m = { .path = path, .name = strrchr(path, '/') + 1 };
	bf_rpc_call call = { .method = &m, .deadline_ms = bf_now_ms() + CALL_MS };
	bf_rpc_stream *s = NULL;
	bf_rpc_status st = { .code = -1 };
	bf_rpc_buf got = { 0 };
	bf_err err;

	if (reply)
		*reply = got;
	cr_assert_eq(bf_rpc_stream_open(ch, &call, &s, &err), 0, "%s", bf_err_text(&err));
	/* A send may fail once the node has ended the call early: what it
	 * said shows in the status. */
	for (size_t i = 0; i < n; i++)
		if (bf_rpc_stream_send(s, &msgs[i], bf_now_ms() + CALL_MS, &err))
			break;
	if (half_close) {
		if (bf_rpc_stream_close_send(s, bf_now_ms() + CALL_MS, &err) == 0 &&
		    bf_rpc_stream_recv(s, bf_now_ms() + CALL_MS, &got, &err) == 0 && reply)
			*reply = got;
		else
			bf_rpc_buf_free(&got);
		cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + CALL_MS, &st, &err), 0, "%s",
			     bf_err_text(&err));
	}
	bf_rpc_stream_destroy(s); /* cancels a stream not closed */
	return st;
}

/* ---- building blocks ------------------------------------------------------ */

static bf_rpc_buf pack(const ProtobufCMessage *m)
{
	bf_rpc_buf b = { .len = protobuf_c_message_get_packed_size(m) };
	b.data = malloc(b.len ? b.len : 1);
	cr_assert_not_null(b.data);
	protobuf_c_message_pack(m, b.data);
	return b;
}

bf_rpc_buf t_tikv_write_meta(const uint8_t *uuid, size_t uuid_len, const t_ctx *ctx)
{
	ImportSstpb__WriteRequest wr = IMPORT_SSTPB__WRITE_REQUEST__INIT;
	ImportSstpb__SSTMeta meta = IMPORT_SSTPB__SSTMETA__INIT;
	Metapb__RegionEpoch epoch = METAPB__REGION_EPOCH__INIT;

	meta.uuid.data = (uint8_t *)uuid;
	meta.uuid.len = uuid_len;
	meta.region_id = ctx->region_id;
	epoch.conf_ver = ctx->conf_ver;
	epoch.version = ctx->version;
	meta.region_epoch = &epoch;
	wr.chunk_case = IMPORT_SSTPB__WRITE_REQUEST__CHUNK_META;
	wr.meta = &meta;
	return pack(&wr.base);
}

bf_rpc_buf t_tikv_write_batch(uint64_t commit_ts, const t_kv *kvs, size_t n)
{
	ImportSstpb__WriteRequest wr = IMPORT_SSTPB__WRITE_REQUEST__INIT;
	ImportSstpb__WriteBatch b = IMPORT_SSTPB__WRITE_BATCH__INIT;
	ImportSstpb__Pair *pairs = calloc(n ? n : 1, sizeof(*pairs));
	ImportSstpb__Pair **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	bf_rpc_buf out;

	cr_assert(pairs && ptrs);
	for (size_t i = 0; i < n; i++) {
		import_sstpb__pair__init(&pairs[i]);
		pairs[i].key.data = (uint8_t *)kvs[i].key;
		pairs[i].key.len = kvs[i].klen;
		pairs[i].value.data = (uint8_t *)kvs[i].value;
		pairs[i].value.len = kvs[i].vlen;
		ptrs[i] = &pairs[i];
	}
	b.commit_ts = commit_ts;
	b.n_pairs = n;
	b.pairs = ptrs;
	wr.chunk_case = IMPORT_SSTPB__WRITE_REQUEST__CHUNK_BATCH;
	wr.batch = &b;
	out = pack(&wr.base);
	free(pairs);
	free(ptrs);
	return out;
}

void t_tikv_uuid(uint8_t uuid[16])
{
	cr_assert_eq(getrandom(uuid, 16, 0), 16);
}

t_kv *t_kvs_make(const char *prefix, int from, int to)
{
	t_kv *kvs = calloc((size_t)(to - from) + 1, sizeof(*kvs));
	cr_assert_not_null(kvs);
	for (int i = from; i < to; i++) {
		t_kv *kv = &kvs[i - from];
		char *k = NULL, *v = NULL;
		cr_assert_geq(asprintf(&k, "t%s%08d", prefix, i), 0);
		cr_assert_geq(asprintf(&v, "v%d", i), 0);
		*kv = (t_kv){ k, strlen(k), v, strlen(v) };
	}
	return kvs;
}

void t_kvs_free(t_kv *kvs, int n)
{
	if (!kvs)
		return;
	for (int i = 0; i < n; i++) {
		free((void *)kvs[i].key);
		free((void *)kvs[i].value);
	}
	free(kvs);
}

/* A request's context with the storage it points into. */
typedef struct pb_ctx {
	Kvrpcpb__Context c;
	Metapb__RegionEpoch e;
	Metapb__Peer p;
} pb_ctx;

static Kvrpcpb__Context *context(const t_ctx *ctx, pb_ctx *out)
{
	kvrpcpb__context__init(&out->c);
	metapb__region_epoch__init(&out->e);
	metapb__peer__init(&out->p);
	out->c.region_id = ctx->region_id;
	out->e.conf_ver = ctx->conf_ver;
	out->e.version = ctx->version;
	out->c.region_epoch = &out->e;
	out->p.id = ctx->peer_id;
	out->p.store_id = ctx->store_id;
	out->c.peer = &out->p;
	return &out->c;
}

/* ---- whole requests ---------------------------------------------------------- */

ImportSstpb__WriteResponse *t_tikv_write(bf_rpc_channel *ch, const uint8_t uuid[16],
					 const t_ctx *ctx, const t_kv *kvs, size_t n,
					 bf_rpc_status *st)
{
	size_t nmsg = 1 + (n + BATCH_PAIRS - 1) / BATCH_PAIRS;
	bf_rpc_buf *msgs = calloc(nmsg, sizeof(*msgs)), reply;
	ImportSstpb__WriteResponse *resp = NULL;

	cr_assert_not_null(msgs);
	msgs[0] = t_tikv_write_meta(uuid, 16, ctx);
	for (size_t i = 1, at = 0; i < nmsg; i++, at += BATCH_PAIRS)
		msgs[i] = t_tikv_write_batch(42, kvs + at, n - at < BATCH_PAIRS ? n - at : BATCH_PAIRS);
	*st = t_tikv_raw_stream(ch, T_PATH_WRITE, msgs, nmsg, true, &reply);
	if (st->code == BF_RPC_OK) {
		resp = import_sstpb__write_response__unpack(NULL, reply.len, reply.data);
		cr_assert_not_null(resp, "an unreadable WriteResponse");
	}
	bf_rpc_buf_free(&reply);
	for (size_t i = 0; i < nmsg; i++)
		bf_rpc_buf_free(&msgs[i]);
	free(msgs);
	return resp;
}

/* A unary call of message m; the reply unpacked with d, or NULL (*st). */
static void *call_pb(bf_rpc_channel *ch, const char *path, const ProtobufCMessage *m,
		     const bf_rpc_md *md, size_t n_md, const ProtobufCMessageDescriptor *d,
		     bf_rpc_status *st)
{
	bf_rpc_buf req = pack(m), reply = { 0 };
	void *out = NULL;

	*st = t_tikv_raw_unary(ch, path, req.data, req.len, md, n_md, &reply);
	if (st->code == BF_RPC_OK) {
		out = protobuf_c_message_unpack(d, NULL, reply.len, reply.data);
		cr_assert_not_null(out, "%s: an unreadable reply", path);
	}
	bf_rpc_buf_free(&req);
	bf_rpc_buf_free(&reply);
	return out;
}

ImportSstpb__IngestResponse *t_tikv_ingest(bf_rpc_channel *ch, const t_ctx *ctx,
					   ImportSstpb__SSTMeta *const *metas, size_t n,
					   const char *fence, bf_rpc_status *st)
{
	ImportSstpb__MultiIngestRequest mr = IMPORT_SSTPB__MULTI_INGEST_REQUEST__INIT;
	pb_ctx pc;
	bf_rpc_md md = { "bfill-fence", fence };

	mr.context = context(ctx, &pc);
	mr.n_ssts = n;
	mr.ssts = (ImportSstpb__SSTMeta **)metas;
	return call_pb(ch, T_PATH_MULTI_INGEST, &mr.base, &md, fence ? 1 : 0,
		       &import_sstpb__ingest_response__descriptor, st);
}

void t_tikv_load(bf_rpc_channel *const *chs, size_t nch, const t_ctx *ctx, const t_kv *kvs,
		 size_t n)
{
	ImportSstpb__WriteResponse *leader = NULL;
	ImportSstpb__IngestResponse *ir;
	uint8_t uuid[16];
	bf_rpc_status st;

	t_tikv_uuid(uuid);
	for (size_t i = 0; i < nch; i++) {
		ImportSstpb__WriteResponse *wr = t_tikv_write(chs[i], uuid, ctx, kvs, n, &st);
		cr_assert_not_null(wr, "Write to %s: %s: %s", bf_rpc_channel_target(chs[i]),
				   bf_rpc_status_name(st.code), st.details);
		cr_assert_eq(wr->n_metas, 1);
		if (i == 0)
			leader = wr;
		else
			import_sstpb__write_response__free_unpacked(wr, NULL);
	}
	ir = t_tikv_ingest(chs[0], ctx, leader->metas, leader->n_metas, NULL, &st);
	cr_assert_not_null(ir, "MultiIngest: %s: %s", bf_rpc_status_name(st.code), st.details);
	cr_assert_null(ir->error, "MultiIngest: %s", ir->error ? ir->error->message : "");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	import_sstpb__write_response__free_unpacked(leader, NULL);
}

bf_rpc_status t_tikv_switch_mode(bf_rpc_channel *ch, bool import)
{
	ImportSstpb__SwitchModeRequest sr = IMPORT_SSTPB__SWITCH_MODE_REQUEST__INIT;
	ImportSstpb__SwitchModeResponse *resp;
	bf_rpc_status st;

	sr.mode = import ? IMPORT_SSTPB__SWITCH_MODE__Import : IMPORT_SSTPB__SWITCH_MODE__Normal;
	resp = call_pb(ch, T_PATH_SWITCH_MODE, &sr.base, NULL, 0,
		       &import_sstpb__switch_mode_response__descriptor, &st);
	if (resp)
		import_sstpb__switch_mode_response__free_unpacked(resp, NULL);
	return st;
}

Kvrpcpb__ScanResponse *t_tikv_scan(bf_rpc_channel *ch, const t_ctx *ctx, const void *lo,
				   size_t lolen, const void *hi, size_t hilen, uint32_t limit,
				   bf_rpc_status *st)
{
	Kvrpcpb__ScanRequest sr = KVRPCPB__SCAN_REQUEST__INIT;
	pb_ctx pc;

	sr.context = context(ctx, &pc);
	sr.start_key.data = (uint8_t *)lo;
	sr.start_key.len = lolen;
	sr.end_key.data = (uint8_t *)hi;
	sr.end_key.len = hi ? hilen : 0;
	sr.limit = limit;
	return call_pb(ch, T_PATH_SCAN, &sr.base, NULL, 0, &kvrpcpb__scan_response__descriptor, st);
}

size_t t_tikv_each(bf_rpc_channel *ch, const t_ctx *ctx, t_tikv_pair_fn fn, void *arg)
{
	size_t total = 0;
	uint8_t *from = NULL;
	size_t fromlen = 0;

	for (;;) {
		bf_rpc_status st;
		Kvrpcpb__ScanResponse *r = t_tikv_scan(ch, ctx, from, fromlen, NULL, 0, 10000, &st);
		cr_assert_not_null(r, "KvScan on %s: %s: %s", bf_rpc_channel_target(ch),
				   bf_rpc_status_name(st.code), st.details);
		cr_assert_null(r->region_error, "KvScan on %s: %s", bf_rpc_channel_target(ch),
			       r->region_error ? r->region_error->message : "");
		total += r->n_pairs;
		for (size_t i = 0; fn && i < r->n_pairs; i++)
			fn(arg, r->pairs[i]->key.data, r->pairs[i]->key.len, r->pairs[i]->value.data,
			   r->pairs[i]->value.len);
		if (r->n_pairs == 0) {
			kvrpcpb__scan_response__free_unpacked(r, NULL);
			break;
		}
		/* Go on from just after the last key. */
		const ProtobufCBinaryData *last = &r->pairs[r->n_pairs - 1]->key;
		free(from);
		from = malloc(last->len + 1);
		memcpy(from, last->data, last->len);
		from[last->len] = 0;
		fromlen = last->len + 1;
		kvrpcpb__scan_response__free_unpacked(r, NULL);
	}
	free(from);
	return total;
}

size_t t_tikv_count(bf_rpc_channel *ch, const t_ctx *ctx)
{
	return t_tikv_each(ch, ctx, NULL, NULL);
}

Kvrpcpb__BatchGetResponse *t_tikv_batch_get(bf_rpc_channel *ch, const t_ctx *ctx,
					     const t_kv *keys, size_t n, bf_rpc_status *st)
{
	Kvrpcpb__BatchGetRequest gr = KVRPCPB__BATCH_GET_REQUEST__INIT;
	ProtobufCBinaryData *ks = calloc(n ? n : 1, sizeof(*ks));
	pb_ctx pc;
	void *out;

	cr_assert_not_null(ks);
	for (size_t i = 0; i < n; i++)
		ks[i] = (ProtobufCBinaryData){ keys[i].klen, (uint8_t *)keys[i].key };
	gr.context = context(ctx, &pc);
	gr.n_keys = n;
	gr.keys = ks;
	out = call_pb(ch, T_PATH_BATCH_GET, &gr.base, NULL, 0,
		      &kvrpcpb__batch_get_response__descriptor, st);
	free(ks);
	return out;
}

Kvrpcpb__DeleteRangeResponse *t_tikv_delete_range(bf_rpc_channel *ch, const t_ctx *ctx,
						  const void *lo, size_t lolen, const void *hi,
						  size_t hilen, const char *fence,
						  bf_rpc_status *st)
{
	Kvrpcpb__DeleteRangeRequest dr = KVRPCPB__DELETE_RANGE_REQUEST__INIT;
	pb_ctx pc;
	bf_rpc_md md = { "bfill-fence", fence };

	dr.context = context(ctx, &pc);
	dr.start_key.data = (uint8_t *)lo;
	dr.start_key.len = lolen;
	dr.end_key.data = (uint8_t *)hi;
	dr.end_key.len = hi ? hilen : 0;
	return call_pb(ch, T_PATH_DELETE_RANGE, &dr.base, &md, fence ? 1 : 0,
		       &kvrpcpb__delete_range_response__descriptor, st);
}
