/*
 * The node's Tikv service subset (docs/cluster.md): KvScan and KvBatchGet
 * read raw keys within a region on any of its peers; KvDeleteRange
 * deletes a range on the leader and is forwarded like an ingest. Region
 * errors go in region_error, as TiKV puts them.
 *
 * The node's own records (fences, its identity) share the store under
 * BF_CATALOG_PREFIX; no request reads, writes or deletes them.
 *
 * Depends on: engine (store), rpc.
 */
#include "server/node_impl.h"

#include "proto/kvrpcpb.pb-c.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A scan's reply stays under this, whatever its limit, so that it fits a
 * client's default 4 MiB receive limit; the client goes on from the last
 * key it got. */
#define SCAN_MAX_BYTES ((size_t)3 << 20)

static const char *const PATH_SCAN = "/tikvpb.Tikv/KvScan";
static const char *const PATH_BATCH_GET = "/tikvpb.Tikv/KvBatchGet";
static const char *const PATH_DELETE_RANGE = "/tikvpb.Tikv/KvDeleteRange";

static const uint8_t CATALOG_LO[] = BF_CATALOG_PREFIX;
/* The first key after every key with the prefix ('/' + 1 = '0'). */
static const uint8_t CATALOG_HI[] = "mbfill0";
#define CATALOG_LEN (sizeof(CATALOG_LO) - 1)

bool node_key_reserved(const void *k, size_t klen)
{
	return klen >= CATALOG_LEN && !memcmp(k, CATALOG_LO, CATALOG_LEN);
}

static int key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

/*
 * The part of raw [lo, hi) (hi NULL: unbounded) that lies in r, given the
 * request's own bounds: an empty lo is the region's start, an empty hi its
 * end, a hi past the end is cut to it. A lo outside the region is the
 * caller's error. *hi NULL when unbounded.
 */
static void clamp_to_region(const bf_region *r, const ProtobufCBinaryData *lo,
			    const ProtobufCBinaryData *hi, node_span *out)
{
	out->lo = lo->len ? lo->data : r->start;
	out->lolen = lo->len ? lo->len : r->start_len;
	if (hi->len && (!r->end_len || key_cmp(hi->data, hi->len, r->end, r->end_len) < 0)) {
		out->hi = hi->data;
		out->hilen = hi->len;
	} else {
		out->hi = r->end_len ? r->end : NULL;
		out->hilen = r->end_len;
	}
	out->set = true;
}

/* ---- KvScan --------------------------------------------------------------- */

typedef struct scan_out {
	Kvrpcpb__KvPair **ptrs; /* owned array */
	Kvrpcpb__KvPair *pairs; /* owned array; keys and values malloc'd */
	size_t n, cap, bytes;
} scan_out;

static void scan_out_free(scan_out *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->pairs[i].key.data);
		free(s->pairs[i].value.data);
	}
	free(s->pairs);
	free(s->ptrs);
}

static void *copy_bytes(const void *p, size_t n)
{
	void *c = malloc(n ? n : 1);
	if (c && n)
		memcpy(c, p, n);
	return c;
}

static int scan_add(scan_out *s, const void *k, size_t klen, const void *v, size_t vlen)
{
	Kvrpcpb__KvPair *p;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		Kvrpcpb__KvPair *grown = realloc(s->pairs, cap * sizeof(*grown));
		if (!grown)
			return BF_ENOMEM;
		s->pairs = grown;
		s->cap = cap;
	}
	p = &s->pairs[s->n];
	kvrpcpb__kv_pair__init(p);
	p->key.data = copy_bytes(k, klen);
	p->key.len = klen;
	if (v) {
		p->value.data = copy_bytes(v, vlen);
		p->value.len = vlen;
	}
	s->n++;
	s->bytes += klen + vlen;
	return !p->key.data || (v && !p->value.data) ? BF_ENOMEM : 0;
}

/* Points ptrs at pairs (which may have moved while growing). */
static int scan_seal(scan_out *s)
{
	s->ptrs = calloc(s->n ? s->n : 1, sizeof(*s->ptrs));
	if (!s->ptrs)
		return BF_ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		s->ptrs[i] = &s->pairs[i];
	return 0;
}

/* Reads [span) into out, at most limit pairs and about SCAN_MAX_BYTES,
 * stepping over the node's own records; with reverse, from the top down. */
static int scan_range(bf_node *n, const node_span *span, uint32_t limit, bool key_only,
		      bool reverse, scan_out *out, bf_err *err)
{
	bf_iter_opts io = { .fill_cache = false };
	bf_store_iter *it = NULL;
	int rc = bf_store_iter_create(n->st, span->lo, span->lolen, span->hi, span->hilen, &io, &it,
				      err);

	if (rc == 0 && reverse)
		bf_store_iter_seek_last(it);
	while (rc == 0 && bf_store_iter_valid(it) && out->n < limit && out->bytes < SCAN_MAX_BYTES) {
		size_t klen, vlen;
		const uint8_t *k = bf_store_iter_key(it, &klen);
		const uint8_t *v = bf_store_iter_value(it, &vlen);
		if (node_key_reserved(k, klen) && !reverse) {
			bf_store_iter_seek(it, CATALOG_HI, CATALOG_LEN);
			continue;
		}
		/* Going down, the few records are stepped over one by one. */
		if (!node_key_reserved(k, klen) &&
		    scan_add(out, k, klen, key_only ? NULL : v, key_only ? 0 : vlen))
			rc = bf_errf(err, BF_ENOMEM, "out of memory");
		if (reverse)
			bf_store_iter_prev(it);
		else
			bf_store_iter_next(it);
	}
	if (rc == 0)
		rc = bf_store_iter_status(it, err);
	bf_store_iter_destroy(it);
	return rc == 0 ? scan_seal(out) : rc;
}

static void h_kv_scan(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	bf_node *n = arg;
	Kvrpcpb__ScanRequest *sr = node_unpack(c, &kvrpcpb__scan_request__descriptor, req);
	Kvrpcpb__ScanResponse resp = KVRPCPB__SCAN_RESPONSE__INIT;
	const ProtobufCBinaryData *lo_key, *hi_key;
	node_span want = { 0 }, span;
	scan_out out = { 0 };
	node_rerr re;
	bf_region r;
	bf_err err;

	node_rerr_init(&re);
	if (!sr)
		goto out;
	/* TiKV's reverse scan reads [end_key, start_key) from the top down:
	 * its start_key is the upper bound. */
	lo_key = sr->reverse ? &sr->end_key : &sr->start_key;
	hi_key = sr->reverse ? &sr->start_key : &sr->end_key;
	want = (node_span){ .lo = lo_key->data, .lolen = lo_key->len,
			    .hi = hi_key->len ? hi_key->data : NULL, .hilen = hi_key->len,
			    .set = true };
	if (node_check_context(n, sr->context, false, &want, &r, &re) == 0 && lo_key->len &&
	    !node_key_in_region(&r, lo_key->data, lo_key->len))
		node_rerr_key_not_in_region(&re, &r, lo_key->data, lo_key->len);
	if (node_rerr_set(&re)) {
		resp.region_error = &re.e;
		node_reply_pb(c, &resp);
		goto out;
	}
	clamp_to_region(&r, lo_key, hi_key, &span);
	if (sr->limit && (!span.hi || key_cmp(span.lo, span.lolen, span.hi, span.hilen) < 0) &&
	    scan_range(n, &span, sr->limit, sr->key_only, sr->reverse, &out, &err)) {
		node_fail(c, "scan of region %" PRIu64 ": %s", r.id, err.msg);
		goto out;
	}
	resp.n_pairs = out.n;
	resp.pairs = out.ptrs;
	node_reply_pb(c, &resp);
out:
	scan_out_free(&out);
	node_rerr_free(&re);
	if (sr)
		kvrpcpb__scan_request__free_unpacked(sr, NULL);
}

/* ---- KvBatchGet ---------------------------------------------------------- */

static void h_kv_batch_get(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	bf_node *n = arg;
	Kvrpcpb__BatchGetRequest *gr =
		node_unpack(c, &kvrpcpb__batch_get_request__descriptor, req);
	Kvrpcpb__BatchGetResponse resp = KVRPCPB__BATCH_GET_RESPONSE__INIT;
	scan_out out = { 0 };
	node_rerr re;
	bf_region r;
	bf_err err;
	int rc = 0;

	node_rerr_init(&re);
	if (!gr)
		goto out;
	if (node_check_context(n, gr->context, false, NULL, &r, &re) == 0) {
		for (size_t i = 0; i < gr->n_keys; i++) {
			if (!node_key_in_region(&r, gr->keys[i].data, gr->keys[i].len)) {
				node_rerr_key_not_in_region(&re, &r, gr->keys[i].data, gr->keys[i].len);
				break;
			}
		}
	}
	if (node_rerr_set(&re)) {
		resp.region_error = &re.e;
		node_reply_pb(c, &resp);
		goto out;
	}
	for (size_t i = 0; i < gr->n_keys && rc == 0; i++) {
		const ProtobufCBinaryData *k = &gr->keys[i];
		char *v = NULL;
		size_t vlen = 0;
		if (node_key_reserved(k->data, k->len))
			continue;
		rc = bf_store_get(n->st, k->data, k->len, &v, &vlen, &err);
		if (rc == BF_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc == 0 && scan_add(&out, k->data, k->len, v, vlen))
			rc = bf_errf(&err, BF_ENOMEM, "out of memory");
		free(v);
	}
	if (rc == 0 && scan_seal(&out))
		rc = bf_errf(&err, BF_ENOMEM, "out of memory");
	if (rc) {
		node_fail(c, "batch get in region %" PRIu64 ": %s", r.id, err.msg);
		goto out;
	}
	resp.n_pairs = out.n;
	resp.pairs = out.ptrs;
	node_reply_pb(c, &resp);
out:
	scan_out_free(&out);
	node_rerr_free(&re);
	if (gr)
		kvrpcpb__batch_get_request__free_unpacked(gr, NULL);
}

/* ---- KvDeleteRange ----------------------------------------------------------- */

/* The end of an unbounded delete: above every TiDB key ('m' and 't'
 * prefixes) and every key bfill writes. */
static const uint8_t KEYS_END[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* Deletes span, minus the node's own records: the part before them and
 * the part after them, where not empty. */
static int delete_span(bf_node *n, const node_span *s, bf_err *err)
{
	const void *hi = s->hi ? s->hi : KEYS_END;
	size_t hilen = s->hi ? s->hilen : sizeof(KEYS_END);
	int rc = 0;

	if (key_cmp(s->lo, s->lolen, CATALOG_LO, CATALOG_LEN) < 0) {
		bool cut = key_cmp(hi, hilen, CATALOG_LO, CATALOG_LEN) > 0;
		rc = bf_store_delete_range(n->st, s->lo, s->lolen, cut ? CATALOG_LO : hi,
					   cut ? CATALOG_LEN : hilen, err);
	}
	if (rc == 0 && key_cmp(hi, hilen, CATALOG_HI, CATALOG_LEN) > 0) {
		bool cut = key_cmp(s->lo, s->lolen, CATALOG_HI, CATALOG_LEN) < 0;
		rc = bf_store_delete_range(n->st, cut ? CATALOG_HI : s->lo,
					   cut ? CATALOG_LEN : s->lolen, hi, hilen, err);
	}
	return rc;
}

static bool delete_applied(const bf_rpc_buf *reply)
{
	Kvrpcpb__DeleteRangeResponse *r =
		kvrpcpb__delete_range_response__unpack(NULL, reply->len, reply->data);
	bool ok = r && !r->region_error && !*r->error;
	if (r)
		kvrpcpb__delete_range_response__free_unpacked(r, NULL);
	return ok;
}

static void h_kv_delete_range(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	bf_node *n = arg;
	Kvrpcpb__DeleteRangeRequest *dr =
		node_unpack(c, &kvrpcpb__delete_range_request__descriptor, req);
	Kvrpcpb__DeleteRangeResponse resp = KVRPCPB__DELETE_RANGE_RESPONSE__INIT;
	bool forwarded = node_forwarded(c);
	char fence_key[BF_FENCE_KEY_MAX], text[BF_ERR_MSG_MAX];
	int64_t fence_rev = 0;
	node_span want, span;
	node_fwd_fail fail = { 0 };
	node_rerr re;
	bf_region r;
	bf_err err;
	int rc;

	node_rerr_init(&re);
	if (!dr || node_fence_md(c, &fence_rev, fence_key))
		goto out;
	want = (node_span){ .lo = dr->start_key.data, .lolen = dr->start_key.len,
			    .hi = dr->end_key.len ? dr->end_key.data : NULL,
			    .hilen = dr->end_key.len, .set = true };
	if (node_check_context(n, dr->context, !forwarded, &want, &r, &re) == 0) {
		/* The whole range must lie in the region (empty ends are the
		 * region's): a delete the node cut short would leave keys the
		 * client thinks gone. */
		if (dr->start_key.len &&
		    !node_key_in_region(&r, dr->start_key.data, dr->start_key.len))
			node_rerr_key_not_in_region(&re, &r, dr->start_key.data, dr->start_key.len);
		else if (r.end_len && dr->end_key.len &&
			 key_cmp(dr->end_key.data, dr->end_key.len, r.end, r.end_len) > 0)
			node_rerr_key_not_in_region(&re, &r, dr->end_key.data, dr->end_key.len);
	}
	if (node_rerr_set(&re)) {
		resp.region_error = &re.e;
		node_reply_pb(c, &resp);
		goto out;
	}
	clamp_to_region(&r, &dr->start_key, &dr->end_key, &span);
	pthread_mutex_lock(&n->ingest_mu);
	rc = node_fence_check(n, fence_rev, fence_key, &err);
	if (rc == 0 && (!span.hi || key_cmp(span.lo, span.lolen, span.hi, span.hilen) < 0))
		rc = delete_span(n, &span, &err);
	pthread_mutex_unlock(&n->ingest_mu);
	if (rc == BF_EFENCED) {
		node_fail(c, "%s", err.msg);
		goto out;
	}
	if (rc) {
		snprintf(text, sizeof(text), "delete range in region %" PRIu64 ": %s", r.id, err.msg);
		resp.error = text;
	} else if (!forwarded && node_forward(n, &r, PATH_DELETE_RANGE, req,
					      bf_rpc_server_call_md(c, NODE_MD_FENCE),
					      delete_applied, &fail)) {
		node_log_error(n, "region %" PRIu64 ": forwarding a range delete: %s", r.id,
			       fail.why);
		if (!fail.replied && strstr(fail.status.details, "stale fence token")) {
			node_fail(c, "%s", fail.why);
			goto out;
		}
		snprintf(text, sizeof(text), "delete range in region %" PRIu64
			 " failed on a follower: %s", r.id, fail.why);
		resp.error = text;
	}
	node_reply_pb(c, &resp);
out:
	bf_rpc_buf_free(&fail.reply);
	node_rerr_free(&re);
	if (dr)
		kvrpcpb__delete_range_request__free_unpacked(dr, NULL);
}

int node_add_kv_methods(bf_node *n, bf_err *err)
{
	int rc = bf_rpc_server_add_method(n->srv, PATH_SCAN, BF_RPC_KIND_UNARY, h_kv_scan, n, err);
	if (!rc)
		rc = bf_rpc_server_add_method(n->srv, PATH_BATCH_GET, BF_RPC_KIND_UNARY,
					      h_kv_batch_get, n, err);
	if (!rc)
		rc = bf_rpc_server_add_method(n->srv, PATH_DELETE_RANGE, BF_RPC_KIND_UNARY,
					      h_kv_delete_range, n, err);
	return rc;
}
