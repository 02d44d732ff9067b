/*
 * The wire layer of the store-node client (ingest/tikv_wire.h): requests
 * from plain values, replies checked and read back, region errors and
 * failed statuses read into what the client does next.
 *
 * Write batches are the bulk of what bfill sends, so they are encoded by
 * hand, pair by pair, into one buffer that the finished message shares;
 * everything else goes through protobuf-c.
 *
 * Depends on: protobuf-c code from proto/, bfill/cluster.h (regions and
 * their key encoding), codec.
 */
#include "ingest/tikv_wire.h"
#include "bfill/codec.h"
#include "proto/import_sstpb.pb-c.h"
#include "proto/kvrpcpb.pb-c.h"
#include "rpc/pb_arena.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- region errors ---- */

/* A node's own text into a message: one printable line, whatever it sent. */
static void set_message(bf_tikv_error *re, const char *text)
{
	bf_printable(text, strlen(text), re->message, sizeof(re->message));
}

void bf_tikv_error_free(bf_tikv_error *e)
{
	if (!e)
		return;
	free(e->current);
	memset(e, 0, sizeof(*e));
}

const char *bf_tikv_err_name(bf_tikv_err_kind k)
{
	switch (k) {
	case BF_TIKV_OK: return "OK";
	case BF_TIKV_NOT_LEADER: return "NotLeader";
	case BF_TIKV_REGION_NOT_FOUND: return "RegionNotFound";
	case BF_TIKV_EPOCH_NOT_MATCH: return "EpochNotMatch";
	case BF_TIKV_SERVER_BUSY: return "ServerIsBusy";
	case BF_TIKV_STALE_COMMAND: return "StaleCommand";
	case BF_TIKV_DISK_FULL: return "DiskFull";
	case BF_TIKV_KEY_NOT_IN_REGION: return "KeyNotInRegion";
	case BF_TIKV_STORE_NOT_MATCH: return "StoreNotMatch";
	case BF_TIKV_OTHER: return "error";
	}
	return "error";
}

/* errorpb.Error into *re; BF_EPROTO when a region in it is malformed. */
static int read_region_error(const Errorpb__Error *pb, bf_tikv_error *re, bf_err *err)
{
	memset(re, 0, sizeof(*re));
	if (!pb)
		return 0;
	set_message(re, pb->message ? pb->message : "");
	if (pb->not_leader) {
		re->kind = BF_TIKV_NOT_LEADER;
		re->region_id = pb->not_leader->region_id;
		if (pb->not_leader->leader)
			re->leader_store = pb->not_leader->leader->store_id;
	} else if (pb->epoch_not_match) {
		const Errorpb__EpochNotMatch *m = pb->epoch_not_match;
		re->kind = BF_TIKV_EPOCH_NOT_MATCH;
		if (m->n_current_regions) {
			re->current = calloc(m->n_current_regions, sizeof(*re->current));
			if (!re->current)
				return bf_errf(err, BF_ENOMEM, "region error: out of memory");
		}
		for (size_t i = 0; i < m->n_current_regions; i++) {
			const char *why;
			if (bf_region_from_pb(m->current_regions[i], &re->current[i], &why)) {
				bf_tikv_error_free(re);
				return bf_errf(err, BF_EPROTO, "EpochNotMatch: current region %zu: %s",
					       i, why);
			}
		}
		re->ncurrent = m->n_current_regions;
	} else if (pb->region_not_found) {
		re->kind = BF_TIKV_REGION_NOT_FOUND;
		re->region_id = pb->region_not_found->region_id;
	} else if (pb->server_is_busy) {
		re->kind = BF_TIKV_SERVER_BUSY;
		re->backoff_ms = pb->server_is_busy->backoff_ms;
		if (!*re->message && pb->server_is_busy->reason)
			set_message(re, pb->server_is_busy->reason);
	} else if (pb->disk_full) {
		re->kind = BF_TIKV_DISK_FULL;
		for (size_t i = 0; i < pb->disk_full->n_store_id && re->nfull < BF_TIKV_MAX_FULL_STORES;
		     i++)
			re->full_stores[re->nfull++] = pb->disk_full->store_id[i];
		if (!*re->message && pb->disk_full->reason)
			set_message(re, pb->disk_full->reason);
	} else if (pb->stale_command) {
		re->kind = BF_TIKV_STALE_COMMAND;
	} else if (pb->key_not_in_region) {
		re->kind = BF_TIKV_KEY_NOT_IN_REGION;
		re->region_id = pb->key_not_in_region->region_id;
	} else if (pb->store_not_match) {
		re->kind = BF_TIKV_STORE_NOT_MATCH;
	} else {
		re->kind = BF_TIKV_OTHER;
		if (!*re->message)
			set_message(re, "(an error with no details)");
	}
	return 0;
}

/* ---- what a failure means ---- */

int bf_tikv_text_code(const char *text)
{
	if (strstr(text, "stale fence token"))
		return BF_EFENCED;
	if (strstr(text, "No space left") || strstr(text, "NoSpace") || strstr(text, "DiskFull") ||
	    strstr(text, "disk full"))
		return BF_ENOSPC;
	/* TiKV's Write: the store's epoch is newer (or the region is not
	 * there) or older than the meta's. */
	if (strstr(text, "RequestTooOld") || strstr(text, "RequestTooNew") ||
	    (strstr(text, "region") && strstr(text, "not found")))
		return BF_ESTATE;
	return BF_EIO;
}

int bf_tikv_status_code(const bf_rpc_status *st)
{
	if (st->tls_refused)
		return -EACCES; /* no retry mends a refused handshake */
	switch (st->code) {
	case BF_RPC_UNAVAILABLE:
	case BF_RPC_CANCELLED:
		return BF_EUNAVAIL;
	case BF_RPC_DEADLINE_EXCEEDED:
		return BF_ETIMEDOUT;
	case BF_RPC_RESOURCE_EXHAUSTED:
		/* Our own receive limit: a reply we refuse, not a busy node. */
		return strstr(st->details, "larger than max") ? BF_EIO : BF_EUNAVAIL;
	default:
		return bf_tikv_text_code(st->details);
	}
}

/* ---- fencing ---- */

bool bf_tikv_fence_value(const bf_fence_token *t, char *buf, size_t cap)
{
	if (!t || t->revision == 0)
		return false;
	snprintf(buf, cap, "%" PRId64 ":%s", t->revision, t->key);
	return true;
}

/* ---- shared pieces ---- */

static int pack(const ProtobufCMessage *m, bf_rpc_buf *out)
{
	out->len = protobuf_c_message_get_packed_size(m);
	out->data = malloc(out->len ? out->len : 1);
	if (!out->data) {
		out->len = 0;
		return BF_ENOMEM;
	}
	protobuf_c_message_pack(m, out->data);
	return 0;
}

/* The context of a request to peer about region r; the pieces live in the
 * caller's frame. */
typedef struct context_parts {
	Kvrpcpb__Context ctx;
	Metapb__RegionEpoch epoch;
	Metapb__Peer peer;
} context_parts;

static Kvrpcpb__Context *make_context(context_parts *p, const bf_region *r,
				      const bf_region_peer *peer)
{
	kvrpcpb__context__init(&p->ctx);
	metapb__region_epoch__init(&p->epoch);
	metapb__peer__init(&p->peer);
	p->epoch.conf_ver = r->conf_ver;
	p->epoch.version = r->version;
	p->peer.id = peer->id;
	p->peer.store_id = peer->store_id;
	p->ctx.region_id = r->id;
	p->ctx.region_epoch = &p->epoch;
	p->ctx.peer = &p->peer;
	return &p->ctx;
}

static ProtobufCBinaryData bin(const void *p, size_t n)
{
	ProtobufCBinaryData b = { n, (uint8_t *)p };
	return b;
}

/* ---- Write ---- */

int bf_tikv_wire_write_meta(const uint8_t uuid[16], const bf_region *r, const void *first,
			    size_t firstlen, const void *last, size_t lastlen, bf_rpc_buf *out)
{
	ImportSstpb__WriteRequest req = IMPORT_SSTPB__WRITE_REQUEST__INIT;
	ImportSstpb__SSTMeta meta = IMPORT_SSTPB__SSTMETA__INIT;
	ImportSstpb__Range range = IMPORT_SSTPB__RANGE__INIT;
	Metapb__RegionEpoch epoch = METAPB__REGION_EPOCH__INIT;
	uint8_t *lo = malloc(bf_codec_bytes_len(firstlen)), *hi = malloc(bf_codec_bytes_len(lastlen));
	int rc = BF_ENOMEM;

	if (lo && hi) {
		range.start = bin(lo, bf_region_encode_key(lo, first, firstlen));
		range.end = bin(hi, bf_region_encode_key(hi, last, lastlen));
		epoch.conf_ver = r->conf_ver;
		epoch.version = r->version;
		meta.uuid = bin(uuid, 16);
		meta.range = &range;
		meta.region_id = r->id;
		meta.region_epoch = &epoch;
		req.chunk_case = IMPORT_SSTPB__WRITE_REQUEST__CHUNK_META;
		req.meta = &meta;
		rc = pack(&req.base, out);
	}
	free(lo);
	free(hi);
	return rc;
}

/*
 * Hand-encoded WriteRequest{batch = 2: WriteBatch{commit_ts = 1, pairs = 2
 * repeated Pair{key = 1, value = 2}}}. The pairs are written after room
 * for the two headers, which the finished message then fills in right
 * before them.
 */
#define TAG_LEN(field) ((uint8_t)(((field) << 3) | 2))
#define TAG_VARINT(field) ((uint8_t)((field) << 3))
#define VARINT_MAX 10
#define HEAD_ROOM (2 * (1 + VARINT_MAX))

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

void bf_tikv_batch_init(bf_tikv_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void bf_tikv_batch_free(bf_tikv_batch *b)
{
	free(b->buf);
	bf_tikv_batch_init(b);
}

void bf_tikv_batch_reset(bf_tikv_batch *b)
{
	b->len = HEAD_ROOM;
	b->pairs = 0;
	b->kv_bytes = 0;
}

static size_t field_len(size_t n)
{
	return 1 + varint_len(n) + n;
}

int bf_tikv_batch_add(bf_tikv_batch *b, const void *key, size_t klen, const void *val,
		      size_t vlen)
{
	size_t body = field_len(klen) + (vlen ? field_len(vlen) : 0);
	size_t need = 1 + varint_len(body) + body;

	if (b->len < HEAD_ROOM)
		b->len = HEAD_ROOM;
	if (b->len + need > b->cap) {
		size_t cap = b->cap > HEAD_ROOM ? b->cap : 64 << 10;
		while (cap < b->len + need)
			cap *= 2;
		uint8_t *p = realloc(b->buf, cap);
		if (!p)
			return BF_ENOMEM;
		b->buf = p;
		b->cap = cap;
	}
	uint8_t *p = b->buf + b->len;
	*p++ = TAG_LEN(2);
	p += put_varint(p, body);
	*p++ = TAG_LEN(1);
	p += put_varint(p, klen);
	memcpy(p, key, klen);
	p += klen;
	if (vlen) {
		*p++ = TAG_LEN(2);
		p += put_varint(p, vlen);
		memcpy(p, val, vlen);
		p += vlen;
	}
	b->len = (size_t)(p - b->buf);
	b->pairs++;
	b->kv_bytes += klen + vlen;
	return 0;
}

int bf_tikv_batch_message(bf_tikv_batch *b, uint64_t commit_ts, bf_rpc_buf *msg)
{
	uint8_t head[HEAD_ROOM];
	size_t pairs_len = b->len > HEAD_ROOM ? b->len - HEAD_ROOM : 0;
	size_t batch_len = 1 + varint_len(commit_ts) + pairs_len, n = 0;

	/* An empty batch still needs its room, which add would have made. */
	if (b->cap < HEAD_ROOM) {
		uint8_t *p = realloc(b->buf, HEAD_ROOM);
		if (!p)
			return BF_ENOMEM;
		b->buf = p;
		b->cap = HEAD_ROOM;
		b->len = HEAD_ROOM;
	}
	head[n++] = TAG_LEN(2);
	n += put_varint(head + n, batch_len);
	head[n++] = TAG_VARINT(1);
	n += put_varint(head + n, commit_ts);
	memcpy(b->buf + HEAD_ROOM - n, head, n);
	msg->data = b->buf + HEAD_ROOM - n;
	msg->len = n + pairs_len;
	return 0;
}

/* ---- Write replies ---- */

struct bf_tikv_metas {
	ImportSstpb__WriteResponse *resp;
};

size_t bf_tikv_metas_count(const bf_tikv_metas *m)
{
	return m ? m->resp->n_metas : 0;
}

void bf_tikv_metas_free(bf_tikv_metas *m)
{
	if (!m)
		return;
	import_sstpb__write_response__free_unpacked(m->resp, NULL);
	free(m);
}

int bf_tikv_unwire_write(const uint8_t *buf, size_t len, bf_tikv_metas **metas,
			 bf_tikv_error *re, bf_err *err)
{
	ImportSstpb__WriteResponse *resp = import_sstpb__write_response__unpack(NULL, len, buf);
	int rc = 0;

	*metas = NULL;
	memset(re, 0, sizeof(*re));
	if (!resp)
		return bf_errf(err, BF_EPROTO, "Write: unreadable reply (%zu bytes)", len);
	if (resp->error) {
		if (resp->error->store_error)
			rc = read_region_error(resp->error->store_error, re, err);
		if (rc == 0 && re->kind == BF_TIKV_OK) {
			re->kind = BF_TIKV_OTHER;
			set_message(re, resp->error->message && *resp->error->message
						? resp->error->message
						: "(no details)");
		}
		import_sstpb__write_response__free_unpacked(resp, NULL);
		return rc;
	}
	for (size_t i = 0; i < resp->n_metas; i++) {
		size_t uuid_len = resp->metas[i]->uuid.len;
		if (uuid_len != 16) {
			import_sstpb__write_response__free_unpacked(resp, NULL);
			return bf_errf(err, BF_EPROTO, "Write: reply meta %zu has a %zu-byte uuid", i,
				       uuid_len);
		}
	}
	*metas = calloc(1, sizeof(**metas));
	if (!*metas) {
		import_sstpb__write_response__free_unpacked(resp, NULL);
		return bf_errf(err, BF_ENOMEM, "Write: out of memory");
	}
	(*metas)->resp = resp;
	return 0;
}

/* ---- MultiIngest ---- */

int bf_tikv_wire_multi_ingest(const bf_region *r, const bf_region_peer *peer,
			      const bf_tikv_metas *m, bf_rpc_buf *out)
{
	ImportSstpb__MultiIngestRequest req = IMPORT_SSTPB__MULTI_INGEST_REQUEST__INIT;
	context_parts cp;

	req.context = make_context(&cp, r, peer);
	req.n_ssts = m ? m->resp->n_metas : 0;
	req.ssts = m ? m->resp->metas : NULL;
	return pack(&req.base, out);
}

int bf_tikv_unwire_ingest(const uint8_t *buf, size_t len, bf_tikv_error *re, bf_err *err)
{
	ImportSstpb__IngestResponse *resp = import_sstpb__ingest_response__unpack(NULL, len, buf);
	int rc;

	memset(re, 0, sizeof(*re));
	if (!resp)
		return bf_errf(err, BF_EPROTO, "MultiIngest: unreadable reply (%zu bytes)", len);
	rc = read_region_error(resp->error, re, err);
	import_sstpb__ingest_response__free_unpacked(resp, NULL);
	return rc;
}

/* ---- KV calls ---- */

int bf_tikv_wire_scan(const bf_region *r, const bf_region_peer *peer, const void *start,
		      size_t startlen, const void *end, size_t endlen, uint32_t limit,
		      bool reverse, bf_rpc_buf *out)
{
	Kvrpcpb__ScanRequest req = KVRPCPB__SCAN_REQUEST__INIT;
	context_parts cp;

	req.context = make_context(&cp, r, peer);
	req.start_key = bin(start, startlen);
	req.end_key = bin(end, endlen);
	req.limit = limit;
	req.reverse = reverse;
	return pack(&req.base, out);
}

int bf_tikv_wire_batch_get(const bf_region *r, const bf_region_peer *peer,
			   const bf_probe *probes, size_t n, bf_rpc_buf *out)
{
	Kvrpcpb__BatchGetRequest req = KVRPCPB__BATCH_GET_REQUEST__INIT;
	context_parts cp;
	int rc;

	req.context = make_context(&cp, r, peer);
	req.keys = calloc(n ? n : 1, sizeof(*req.keys));
	if (!req.keys)
		return BF_ENOMEM;
	for (size_t i = 0; i < n; i++)
		req.keys[i] = bin(probes[i].key, probes[i].klen);
	req.n_keys = n;
	rc = pack(&req.base, out);
	free(req.keys);
	return rc;
}

int bf_tikv_wire_delete_range(const bf_region *r, const bf_region_peer *peer, const void *lo,
			      size_t lolen, const void *hi, size_t hilen, bf_rpc_buf *out)
{
	Kvrpcpb__DeleteRangeRequest req = KVRPCPB__DELETE_RANGE_REQUEST__INIT;
	context_parts cp;

	req.context = make_context(&cp, r, peer);
	req.start_key = bin(lo, lolen);
	req.end_key = bin(hi, hilen);
	return pack(&req.base, out);
}

struct bf_tikv_pairs {
	bf_pb_arena arena;     /* owns the reply: one block, not a malloc per pair */
	ProtobufCMessage *msg; /* the reply, in arena */
	Kvrpcpb__KvPair **pairs;
	size_t n;
};

/* A holder for a reply of len bytes, its arena sized for it: the pairs'
 * structs and pointers add less than the bytes themselves. */
static bf_tikv_pairs *pairs_new(size_t len)
{
	bf_tikv_pairs *p = calloc(1, sizeof(*p));

	if (p) {
		bf_pb_arena_init(&p->arena);
		bf_pb_arena_reserve(&p->arena, 2 * len);
	}
	return p;
}

size_t bf_tikv_pairs_count(const bf_tikv_pairs *p)
{
	return p ? p->n : 0;
}

const uint8_t *bf_tikv_pairs_key(const bf_tikv_pairs *p, size_t i, size_t *len)
{
	*len = p->pairs[i]->key.len;
	return p->pairs[i]->key.data;
}

const uint8_t *bf_tikv_pairs_value(const bf_tikv_pairs *p, size_t i, size_t *len)
{
	*len = p->pairs[i]->value.len;
	return p->pairs[i]->value.data;
}

void bf_tikv_pairs_free(bf_tikv_pairs *p)
{
	if (!p)
		return;
	bf_pb_arena_destroy(&p->arena); /* the reply with it */
	free(p);
}

/*
 * What ScanResponse and BatchGetResponse share: a region error, pairs, a
 * key error. p holds msg; it becomes *out, or is freed.
 */
static int read_pairs(const char *what, bf_tikv_pairs *p, ProtobufCMessage *msg,
		      const Errorpb__Error *region_error, Kvrpcpb__KvPair **pairs, size_t n,
		      const Kvrpcpb__KeyError *key_error, bf_tikv_pairs **out, bf_tikv_error *re,
		      bf_err *err)
{
	int rc = read_region_error(region_error, re, err);

	if (rc == 0 && re->kind == BF_TIKV_OK) {
		if (key_error)
			rc = bf_errf(err, BF_EPROTO, "%s: the node answered a key error", what);
		for (size_t i = 0; rc == 0 && i < n; i++)
			if (pairs[i]->error)
				rc = bf_errf(err, BF_EPROTO, "%s: the node answered a key error", what);
		if (rc == 0) {
			p->msg = msg;
			p->pairs = pairs;
			p->n = n;
			*out = p;
			return 0;
		}
	}
	bf_tikv_pairs_free(p);
	return rc;
}

/* Unpacks a reply of type d into a new holder; NULL with *rc set. */
static void *unpack_pairs(const char *what, const ProtobufCMessageDescriptor *d,
			  const uint8_t *buf, size_t len, bf_tikv_pairs **holder, int *rc,
			  bf_err *err)
{
	void *m = NULL;

	*holder = pairs_new(len);
	if (!*holder) {
		*rc = bf_errf(err, BF_ENOMEM, "%s: out of memory", what);
	} else if (!(m = protobuf_c_message_unpack(d, bf_pb_arena_allocator(&(*holder)->arena),
						   len, buf))) {
		bf_tikv_pairs_free(*holder);
		*rc = bf_errf(err, BF_EPROTO, "%s: unreadable reply (%zu bytes)", what, len);
	}
	return m;
}

int bf_tikv_unwire_scan(const uint8_t *buf, size_t len, bf_tikv_pairs **pairs,
			bf_tikv_error *re, bf_err *err)
{
	bf_tikv_pairs *p;
	int rc = 0;
	Kvrpcpb__ScanResponse *r =
		unpack_pairs("KvScan", &kvrpcpb__scan_response__descriptor, buf, len, &p, &rc, err);

	*pairs = NULL;
	memset(re, 0, sizeof(*re));
	if (!r)
		return rc;
	return read_pairs("KvScan", p, &r->base, r->region_error, r->pairs, r->n_pairs, r->error,
			  pairs, re, err);
}

int bf_tikv_unwire_batch_get(const uint8_t *buf, size_t len, bf_tikv_pairs **pairs,
			     bf_tikv_error *re, bf_err *err)
{
	bf_tikv_pairs *p;
	int rc = 0;
	Kvrpcpb__BatchGetResponse *r = unpack_pairs(
		"KvBatchGet", &kvrpcpb__batch_get_response__descriptor, buf, len, &p, &rc, err);

	*pairs = NULL;
	memset(re, 0, sizeof(*re));
	if (!r)
		return rc;
	return read_pairs("KvBatchGet", p, &r->base, r->region_error, r->pairs, r->n_pairs,
			  r->error, pairs, re, err);
}

int bf_tikv_unwire_delete_range(const uint8_t *buf, size_t len, bf_tikv_error *re,
				bf_err *err)
{
	Kvrpcpb__DeleteRangeResponse *r = kvrpcpb__delete_range_response__unpack(NULL, len, buf);
	int rc;

	memset(re, 0, sizeof(*re));
	if (!r)
		return bf_errf(err, BF_EPROTO, "KvDeleteRange: unreadable reply (%zu bytes)", len);
	rc = read_region_error(r->region_error, re, err);
	if (rc == 0 && re->kind == BF_TIKV_OK && r->error && *r->error) {
		re->kind = BF_TIKV_OTHER;
		set_message(re, r->error);
	}
	kvrpcpb__delete_range_response__free_unpacked(r, NULL);
	return rc;
}
