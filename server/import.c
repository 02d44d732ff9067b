/*
 * The node's ImportSST service (docs/cluster.md): Write streams become SST
 * files in the import directory, MultiIngest ingests them in one step and
 * forwards to the followers, SwitchMode turns background compaction off
 * and on. Request errors are gRPC UNKNOWN with a text, as TiKV sends them;
 * region errors go in IngestResponse.error.
 *
 * Depends on: engine (store, SST writer), codec (key encoding), rpc.
 */
#include "server/node_impl.h"

#include "bfill/codec.h"
#include "bfill/fault.h"
#include "bfill/sst.h"
#include "util/util.h"

#include "proto/import_sstpb.pb-c.h"
#include "rpc/pb_arena.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UUID_LEN 16
#define CF_DEFAULT "default"

static const char *const PATH_WRITE = "/import_sstpb.ImportSST/Write";
static const char *const PATH_MULTI_INGEST = "/import_sstpb.ImportSST/MultiIngest";
static const char *const PATH_SWITCH_MODE = "/import_sstpb.ImportSST/SwitchMode";

/* "<import dir>/<uuid as 32 hex digits>.sst" into out. */
static void upload_path(const bf_node *n, const uint8_t *uuid, char *out, size_t size)
{
	char hex[2 * UUID_LEN + 1];
	for (int i = 0; i < UUID_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	snprintf(out, size, "%s/%s.sst", n->import_dir, hex);
}

/* ---- Write ------------------------------------------------------------------ */

/* One upload in progress: the SST being written under a temporary name. */
typedef struct upload {
	bf_node *n;
	bf_region r;
	const ImportSstpb__SSTMeta *meta; /* borrowed from the first message */
	char path[PATH_MAX], tmp[PATH_MAX];
	bf_sst_writer *w;
	bool finished; /* tmp is complete */
	uint8_t *first, *last; /* owned: first and last raw keys */
	size_t first_len, last_len, last_cap;
	uint64_t kvs;
} upload;

/* The epoch check TiKV makes on Write, in its words: RequestTooOld when the
 * node's epoch is newer than the request's, RequestTooNew when older. */
static int upload_region(upload *u, const ImportSstpb__SSTMeta *m, bf_err *err)
{
	node_rerr re;
	int rc = 0;

	node_rerr_init(&re);
	if (node_check_region(u->n, m->region_id, m->region_epoch, false, NULL, &u->r, &re)) {
		const Metapb__RegionEpoch *e = m->region_epoch;
		if (re.e.region_not_found)
			rc = bf_errf(err, BF_ENOTFOUND,
				     "RequestTooOld(\"region %" PRIu64 " is not found on store %" PRIu64
				     "\")", m->region_id, u->n->store_id);
		else if (!e || e->version < u->r.version || e->conf_ver < u->r.conf_ver)
			rc = bf_errf(err, BF_ESTATE, "RequestTooOld(\"%s\")", re.message);
		else
			rc = bf_errf(err, BF_ESTATE, "RequestTooNew(\"%s\")", re.message);
	}
	node_rerr_free(&re);
	return rc;
}

static int upload_begin(upload *u, const ImportSstpb__SSTMeta *m, bf_err *err)
{
	int rc;

	u->meta = m;
	if (m->uuid.len != UUID_LEN)
		return bf_errf(err, BF_EINVAL, "invalid SST meta: uuid of %zu bytes, not %d",
			       m->uuid.len, UUID_LEN);
	rc = upload_region(u, m, err);
	if (rc)
		return rc;
	rc = bf_store_check_free(u->n->st, 0, "take an upload", err);
	if (rc)
		return bf_err_prefix(err, rc, "DiskFull: store %" PRIu64 ": ", u->n->store_id);
	upload_path(u->n, m->uuid.data, u->path, sizeof(u->path));
	snprintf(u->tmp, sizeof(u->tmp), "%s.tmp", u->path);
	rc = bf_sst_writer_open(u->tmp, (bf_compression)u->n->sst_compression, 0, &u->w, err);
	if (rc)
		return bf_err_prefix(err, rc, "upload %s: ", strrchr(u->path, '/') + 1);
	return 0;
}

static int keep_key(uint8_t **buf, size_t *cap, size_t *len, const void *k, size_t klen)
{
	if (klen > *cap) {
		uint8_t *grown = realloc(*buf, klen);
		if (!grown)
			return BF_ENOMEM;
		*buf = grown;
		*cap = klen;
	}
	if (klen)
		memcpy(*buf, k, klen);
	*len = klen;
	return 0;
}

static int key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

static int upload_batch(upload *u, const ImportSstpb__WriteBatch *b, bf_err *err)
{
	char shown[80];
	int rc = 0;

	if (b->commit_ts == 0)
		return bf_errf(err, BF_EINVAL, "BadFormat: invalid commit-ts 0");
	for (size_t i = 0; i < b->n_pairs && rc == 0; i++) {
		const ImportSstpb__Pair *p = b->pairs[i];
		const uint8_t *k = p->key.data;
		size_t klen = p->key.len;
		if (p->op != IMPORT_SSTPB__PAIR__OP__Put)
			return bf_errf(err, BF_EINVAL, "only Put pairs can be written, not op %d",
				       (int)p->op);
		if (!node_key_in_region(&u->r, k, klen))
			return bf_errf(err, BF_ERANGE, "key %s is not in region %" PRIu64,
				       bf_printable(k, klen, shown, sizeof(shown)), u->r.id);
		if (node_key_reserved(k, klen))
			return bf_errf(err, BF_EINVAL, "key %s is under the node's own prefix %s",
				       bf_printable(k, klen, shown, sizeof(shown)), BF_CATALOG_PREFIX);
		if (u->kvs && key_cmp(k, klen, u->last, u->last_len) <= 0)
			return bf_errf(err, BF_EINVAL,
				       "keys out of order: %s does not follow the previous key",
				       bf_printable(k, klen, shown, sizeof(shown)));
		rc = bf_sst_writer_put(u->w, k, klen, p->value.data, p->value.len, err);
		if (rc == 0 && u->kvs == 0) {
			size_t cap = 0;
			rc = keep_key(&u->first, &cap, &u->first_len, k, klen);
		}
		if (rc == 0)
			rc = keep_key(&u->last, &u->last_cap, &u->last_len, k, klen);
		if (rc == BF_ENOMEM)
			bf_errf(err, rc, "out of memory");
		u->kvs++;
	}
	return rc;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	int rc = 0;
	if (fd < 0 || fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Finishes the SST and gives it its name, durably: after a crash a
 * complete file has its name and a partial one the temporary name. */
static int upload_finish(upload *u, uint64_t *size, bf_err *err)
{
	int rc = bf_sst_writer_finish(u->w, size, err);

	if (rc)
		return rc;
	u->finished = true;
	if (rename(u->tmp, u->path) != 0 || fsync_dir(u->n->import_dir) != 0)
		return bf_errf(err, -errno, "upload %s: %s", u->path, strerror(errno));
	return 0;
}

static void upload_end(upload *u)
{
	bf_sst_writer_destroy(u->w); /* removes an unfinished file */
	if (u->finished)
		unlink(u->tmp);
	free(u->first);
	free(u->last);
}

/* Answers the stream: the request's meta with cf "default", the encoded
 * inclusive range and the counts; no meta when nothing was written. */
static int reply_write(bf_rpc_server_call *c, upload *u, uint64_t size)
{
	ImportSstpb__WriteResponse resp = IMPORT_SSTPB__WRITE_RESPONSE__INIT;
	ImportSstpb__SSTMeta meta = IMPORT_SSTPB__SSTMETA__INIT, *metas[1] = { &meta };
	ImportSstpb__Range range = IMPORT_SSTPB__RANGE__INIT;
	uint8_t *lo = NULL, *hi = NULL;
	int rc = 0;

	if (u->kvs) {
		lo = malloc(bf_codec_bytes_len(u->first_len));
		hi = malloc(bf_codec_bytes_len(u->last_len));
		if (!lo || !hi) {
			rc = BF_ENOMEM;
			goto out;
		}
		range.start.data = lo;
		range.start.len = bf_region_encode_key(lo, u->first, u->first_len);
		range.end.data = hi;
		range.end.len = bf_region_encode_key(hi, u->last, u->last_len);
		meta.uuid = u->meta->uuid;
		meta.range = &range;
		meta.length = size;
		meta.cf_name = (char *)CF_DEFAULT;
		meta.region_id = u->meta->region_id;
		meta.region_epoch = u->meta->region_epoch;
		meta.total_kvs = u->kvs;
		meta.total_bytes = bf_sst_writer_raw_bytes(u->w);
		meta.api_version = u->meta->api_version;
		resp.n_metas = 1;
		resp.metas = metas;
	}
	{
		size_t len = import_sstpb__write_response__get_packed_size(&resp);
		bf_rpc_buf out = { malloc(len ? len : 1), len };
		if (!out.data) {
			rc = BF_ENOMEM;
			goto out;
		}
		import_sstpb__write_response__pack(&resp, out.data);
		rc = bf_rpc_server_reply(c, &out, NULL);
		bf_rpc_buf_free(&out);
	}
out:
	if (rc == BF_ENOMEM)
		bf_rpc_server_fail(c, BF_RPC_RESOURCE_EXHAUSTED, "out of memory for the reply");
	free(lo);
	free(hi);
	return rc;
}

/* The next message of the stream, unpacked with alloc; NULL at the end of
 * the stream (*end) or when the call failed (then it has been ended). */
static ImportSstpb__WriteRequest *next_request(bf_rpc_server_call *c, ProtobufCAllocator *alloc,
					       bool *end)
{
	ImportSstpb__WriteRequest *wr = NULL;
	bf_rpc_buf msg;

	if (bf_rpc_server_recv(c, &msg, end, NULL) || *end)
		return NULL;
	wr = node_unpack_in(c, &import_sstpb__write_request__descriptor, &msg, alloc);
	bf_rpc_buf_free(&msg);
	return wr;
}

static void h_write(bf_rpc_server_call *c, const bf_rpc_buf *unused, void *arg)
{
	upload u = { .n = arg };
	ImportSstpb__WriteRequest *first = NULL, *wr = NULL;
	uint64_t size = 0;
	bool end = false;
	bf_err err;
	/* Batches unpack into one block, reused for the whole stream; the
	 * meta stays for the stream's length, so it is unpacked apart. */
	bf_pb_arena batches;
	ProtobufCAllocator *ba = bf_pb_arena_allocator(&batches);

	(void)unused;
	bf_pb_arena_init(&batches);
	first = next_request(c, NULL, &end);
	if (!first) {
		if (end)
			node_fail(c, "InvalidChunk: an empty Write stream (the first message "
				  "must carry meta)");
		goto out;
	}
	if (first->chunk_case != IMPORT_SSTPB__WRITE_REQUEST__CHUNK_META) {
		node_fail(c, "InvalidChunk: the first message of a Write stream must carry meta");
		goto out;
	}
	if (upload_begin(&u, first->meta, &err)) {
		node_fail(c, "%s", err.msg);
		goto out;
	}
	for (;;) {
		wr = next_request(c, ba, &end);
		if (!wr)
			break;
		if (wr->chunk_case != IMPORT_SSTPB__WRITE_REQUEST__CHUNK_BATCH) {
			node_fail(c, "InvalidChunk: %s after the first message of a Write stream",
				  wr->chunk_case == IMPORT_SSTPB__WRITE_REQUEST__CHUNK_META
					  ? "a meta"
					  : "a message with neither meta nor batch");
			goto out;
		}
		if (upload_batch(&u, wr->batch, &err)) {
			node_fail(c, "%s%s", err.code == BF_ENOSPC ? "DiskFull: " : "", err.msg);
			goto out;
		}
		import_sstpb__write_request__free_unpacked(wr, ba);
		wr = NULL;
		bf_pb_arena_reset(&batches);
	}
	if (!end) /* the client went away, or its last message was refused */
		goto out;
	if (u.kvs && upload_finish(&u, &size, &err)) {
		node_fail(c, "%s%s", err.code == BF_ENOSPC ? "DiskFull: " : "", err.msg);
		unlink(u.path);
		goto out;
	}
	/* A reply that cannot go out means a client that will not ingest
	 * this upload: it goes rather than wait for nobody. */
	if (reply_write(c, &u, size) && u.kvs)
		unlink(u.path);
out:
	upload_end(&u);
	if (wr)
		import_sstpb__write_request__free_unpacked(wr, ba);
	bf_pb_arena_destroy(&batches);
	if (first)
		import_sstpb__write_request__free_unpacked(first, NULL);
}

/* ---- MultiIngest -------------------------------------------------------- */

/* Busy when told to (the "store.busy" fault seam) or when level 0 holds as
 * many files as make RocksDB slow writes down. */
static bool busy(bf_node *n, node_rerr *re)
{
	char why[96];
	uint64_t l0 = 0;

	if (bf_fault_hit("store.busy")) {
		node_rerr_busy(re, "injected (store.busy)");
		return true;
	}
	if (bf_store_level0_files(n->st, &l0, NULL) == 0 && l0 >= NODE_BUSY_L0_FILES) {
		snprintf(why, sizeof(why), "%" PRIu64 " files in level 0", l0);
		node_rerr_busy(re, why);
		return true;
	}
	return false;
}

/* Whether sst's encoded inclusive range lies in r (compared encoded:
 * the encoding keeps the order of raw keys). */
static bool range_in_region(const ImportSstpb__SSTMeta *sst, const bf_region *r)
{
	const ImportSstpb__Range *rg = sst->range;
	uint8_t *b = NULL;
	size_t blen;
	bool in = true;

	if (!rg || key_cmp(rg->start.data, rg->start.len, rg->end.data, rg->end.len) > 0)
		return false;
	if (r->start_len) {
		b = malloc(bf_codec_bytes_len(r->start_len));
		if (!b)
			return false;
		blen = bf_region_encode_key(b, r->start, r->start_len);
		in = key_cmp(rg->start.data, rg->start.len, b, blen) >= 0;
		free(b);
	}
	if (in && r->end_len) {
		b = malloc(bf_codec_bytes_len(r->end_len));
		if (!b)
			return false;
		blen = bf_region_encode_key(b, r->end, r->end_len);
		in = key_cmp(rg->end.data, rg->end.len, b, blen) < 0;
		free(b);
	}
	return in;
}

/* The raw span of the files' ranges, for EpochNotMatch; decoded into
 * buffers owned by the caller (freed even when not set). */
static void ssts_span(const ImportSstpb__MultiIngestRequest *mr, node_span *sp, uint8_t **lo,
		      uint8_t **hi)
{
	const ImportSstpb__Range *first = NULL, *last = NULL;
	size_t used, lolen = 0, hilen = 0;

	memset(sp, 0, sizeof(*sp));
	*lo = *hi = NULL;
	for (size_t i = 0; i < mr->n_ssts; i++) {
		const ImportSstpb__Range *rg = mr->ssts[i]->range;
		if (!rg)
			return;
		if (!first || key_cmp(rg->start.data, rg->start.len, first->start.data,
				      first->start.len) < 0)
			first = rg;
		if (!last || key_cmp(rg->end.data, rg->end.len, last->end.data, last->end.len) > 0)
			last = rg;
	}
	if (!first)
		return;
	*lo = malloc(first->start.len + 1);
	*hi = malloc(last->end.len + 2);
	if (!*lo || !*hi ||
	    bf_codec_get_bytes(first->start.data, first->start.len, *lo, &lolen, &used) ||
	    bf_codec_get_bytes(last->end.data, last->end.len, *hi, &hilen, &used))
		return;
	(*hi)[hilen++] = 0; /* the inclusive last key, as an exclusive end */
	*sp = (node_span){ .lo = *lo, .lolen = lolen, .hi = *hi, .hilen = hilen, .set = true };
}

static void reply_ingest(bf_rpc_server_call *c, node_rerr *re)
{
	ImportSstpb__IngestResponse resp = IMPORT_SSTPB__INGEST_RESPONSE__INIT;

	if (re && node_rerr_set(re))
		resp.error = &re->e;
	node_reply_pb(c, &resp);
}

static bool ingest_applied(const bf_rpc_buf *reply)
{
	ImportSstpb__IngestResponse *r =
		import_sstpb__ingest_response__unpack(NULL, reply->len, reply->data);
	bool ok = r && !r->error;
	if (r)
		import_sstpb__ingest_response__free_unpacked(r, NULL);
	return ok;
}

/*
 * Answers for a follower that did not apply a forwarded ingest: its own
 * region error, told as the follower's; a stale fence token as such; any
 * other failure as a message, which a client meets by writing and
 * ingesting again.
 */
static void reply_forward_failure(bf_rpc_server_call *c, const bf_region *r,
				  node_fwd_fail *fail)
{
	ImportSstpb__IngestResponse *fr = NULL;
	node_rerr re;

	node_rerr_init(&re);
	if (fail->replied &&
	    (fr = import_sstpb__ingest_response__unpack(NULL, fail->reply.len, fail->reply.data)) &&
	    fr->error) {
		char *theirs = fr->error->message;
		node_rerr_message(&re, "[region %" PRIu64 "] follower store %" PRIu64 " (%s): %s",
				  r->id, fail->store_id, fail->addr,
				  theirs && *theirs ? theirs : "did not apply the ingest");
		fr->error->message = re.message;
		ImportSstpb__IngestResponse out = IMPORT_SSTPB__INGEST_RESPONSE__INIT;
		out.error = fr->error;
		node_reply_pb(c, &out);
		fr->error->message = theirs;
	} else if (!fail->replied && strstr(fail->status.details, "stale fence token")) {
		node_fail(c, "%s", fail->why);
	} else {
		node_rerr_message(&re, "[region %" PRIu64 "] ingest failed on a follower: %s", r->id,
				  fail->why);
		reply_ingest(c, &re);
	}
	if (fr)
		import_sstpb__ingest_response__free_unpacked(fr, NULL);
	node_rerr_free(&re);
}

/*
 * The checks TiKV makes of each file before an ingest (apply.rs
 * check_sst_for_ingestion): its uuid, its cf, its region and epoch, its
 * range inside the region. 0, or 1 with a region error in *re, or a
 * request error in err (BF_EINVAL).
 */
static int check_ssts(bf_node *n, const ImportSstpb__MultiIngestRequest *mr, const bf_region *r,
		      node_rerr *re, bf_err *err)
{
	for (size_t i = 0; i < mr->n_ssts; i++) {
		const ImportSstpb__SSTMeta *s = mr->ssts[i];
		if (s->uuid.len != UUID_LEN)
			return bf_errf(err, BF_EINVAL, "invalid SST meta %zu: uuid of %zu bytes, not %d",
				       i, s->uuid.len, UUID_LEN);
		if (*s->cf_name && strcmp(s->cf_name, CF_DEFAULT))
			return bf_errf(err, BF_EINVAL, "invalid SST meta %zu: cf %s (only %s is kept)",
				       i, s->cf_name, CF_DEFAULT);
		for (size_t j = 0; j < i; j++)
			if (!memcmp(mr->ssts[j]->uuid.data, s->uuid.data, UUID_LEN))
				return bf_errf(err, BF_EINVAL, "SST metas %zu and %zu are the same file",
					       j, i);
		if (s->region_id != r->id) {
			errorpb__region_not_found__init(&re->not_found);
			re->not_found.region_id = s->region_id;
			node_rerr_message(re, "sst %zu is for region %" PRIu64 ", not %" PRIu64, i,
					  s->region_id, r->id);
			re->e.region_not_found = &re->not_found;
			return 1;
		}
		if (!s->region_epoch || s->region_epoch->conf_ver != r->conf_ver ||
		    s->region_epoch->version != r->version) {
			node_rerr_epoch_not_match(n, re, r, s->region_epoch, NULL);
			return 1;
		}
		if (!range_in_region(s, r)) {
			const ImportSstpb__Range *rg = s->range;
			node_rerr_key_not_in_region(re, r, rg ? rg->start.data : NULL,
						    rg ? rg->start.len : 0);
			node_rerr_message(re, "[region %" PRIu64 "] sst %zu's range is not inside "
					  "the region", r->id, i);
			return 1;
		}
	}
	return 0;
}

/*
 * Under ingest_mu: the fence, that every file is there, the ingest. 0, or
 * 1 with a region error in *re, or a request error in err.
 */
static int ingest_files(bf_node *n, const ImportSstpb__MultiIngestRequest *mr, const bf_region *r,
			int64_t fence_rev, const char *fence_key, node_rerr *re, bf_err *err)
{
	char (*paths)[PATH_MAX] = calloc(mr->n_ssts, sizeof(*paths));
	const char **ptrs = calloc(mr->n_ssts, sizeof(*ptrs));
	struct stat sb;
	int rc = 0;

	if (!paths || !ptrs) {
		rc = bf_errf(err, BF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < mr->n_ssts; i++) {
		upload_path(n, mr->ssts[i]->uuid.data, paths[i], sizeof(paths[i]));
		ptrs[i] = paths[i];
	}
	pthread_mutex_lock(&n->ingest_mu);
	for (size_t i = 0; i < mr->n_ssts && rc == 0; i++) {
		if (stat(paths[i], &sb) != 0) {
			char why[PATH_MAX + 64];
			snprintf(why, sizeof(why), "The file which would be ingested does not exist: %s",
				 strrchr(paths[i], '/') + 1);
			node_rerr_stale_command(re, why);
			rc = 1;
		}
	}
	if (rc == 0)
		rc = node_fence_check(n, fence_rev, fence_key, err);
	if (rc == 0 && bf_fault_hit("store.ingest"))
		rc = bf_errf(err, BF_EFAULT, "injected ingest failure (store.ingest)");
	if (rc == 0)
		rc = bf_store_ingest(n->st, ptrs, mr->n_ssts, err);
	pthread_mutex_unlock(&n->ingest_mu);
	if (rc == BF_ENOSPC) {
		node_rerr_disk_full(re, n->store_id, err->msg);
		rc = 1;
	} else if (rc < 0 && rc != BF_EFENCED) {
		node_rerr_message(re, "[region %" PRIu64 "] ingest failed: %s", r->id, err->msg);
		rc = 1;
	}
out:
	free(paths);
	free(ptrs);
	return rc;
}

static void h_multi_ingest(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	bf_node *n = arg;
	ImportSstpb__MultiIngestRequest *mr =
		node_unpack(c, &import_sstpb__multi_ingest_request__descriptor, req);
	bool forwarded = node_forwarded(c);
	char fence_key[BF_FENCE_KEY_MAX];
	int64_t fence_rev = 0;
	uint8_t *span_lo = NULL, *span_hi = NULL;
	node_span span;
	node_fwd_fail fail = { 0 };
	node_rerr re;
	bf_region r;
	bf_err err;
	int rc;

	node_rerr_init(&re);
	if (!mr || node_fence_md(c, &fence_rev, fence_key))
		goto out;
	/* An empty request asks whether the node would take an ingest now
	 * (Lightning's write-stall check). */
	if (mr->n_ssts == 0) {
		busy(n, &re);
		reply_ingest(c, &re);
		goto out;
	}
	ssts_span(mr, &span, &span_lo, &span_hi);
	rc = node_check_context(n, mr->context, !forwarded, &span, &r, &re);
	if (rc == 0)
		rc = check_ssts(n, mr, &r, &re, &err);
	if (rc == 0 && busy(n, &re))
		rc = 1;
	if (rc == 0 && bf_store_check_free(n->st, 0, "ingest", &err)) {
		node_rerr_disk_full(&re, n->store_id, err.msg);
		rc = 1;
	}
	if (rc == 0)
		rc = ingest_files(n, mr, &r, fence_rev, fence_key, &re, &err);
	if (rc < 0) {
		node_fail(c, "%s", err.msg);
		goto out;
	}
	if (rc == 0 && !forwarded &&
	    node_forward(n, &r, PATH_MULTI_INGEST, req,
			 bf_rpc_server_call_md(c, NODE_MD_FENCE), ingest_applied, &fail)) {
		node_log_error(n, "region %" PRIu64 ": forwarding an ingest: %s", r.id, fail.why);
		reply_forward_failure(c, &r, &fail);
		goto out;
	}
	reply_ingest(c, &re);
out:
	bf_rpc_buf_free(&fail.reply);
	free(span_lo);
	free(span_hi);
	node_rerr_free(&re);
	if (mr)
		import_sstpb__multi_ingest_request__free_unpacked(mr, NULL);
}

/* ---- SwitchMode --------------------------------------------------------------- */

/* Sets import mode on or off; the caller holds n->mode_mu. */
static int set_import_mode(bf_node *n, bool on, bf_err *err)
{
	int rc = bf_store_set_auto_compaction(n->st, !on, err);

	if (rc)
		return rc;
	if (on != n->import_mode)
		node_log(n, "import mode %s: background compaction %s", on ? "on" : "off",
			 on ? "stopped" : "running again");
	n->import_mode = on;
	n->import_until_ms = on ? bf_now_ms() + n->import_mode_timeout_ms : 0;
	return 0;
}

void node_import_mode_tick(bf_node *n)
{
	bf_err err;

	pthread_mutex_lock(&n->mode_mu);
	if (n->import_mode && bf_now_ms() >= n->import_until_ms) {
		node_log(n, "import mode timed out after %d s", n->import_mode_timeout_ms / 1000);
		if (set_import_mode(n, false, &err))
			node_log_error(n, "cannot leave import mode: %s", err.msg);
	}
	pthread_mutex_unlock(&n->mode_mu);
}

static void h_switch_mode(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	bf_node *n = arg;
	ImportSstpb__SwitchModeRequest *sr =
		node_unpack(c, &import_sstpb__switch_mode_request__descriptor, req);
	ImportSstpb__SwitchModeResponse resp = IMPORT_SSTPB__SWITCH_MODE_RESPONSE__INIT;
	bf_err err;
	int rc;

	if (!sr)
		return;
	if (sr->mode != IMPORT_SSTPB__SWITCH_MODE__Import &&
	    sr->mode != IMPORT_SSTPB__SWITCH_MODE__Normal) {
		node_fail(c, "unknown mode %d", (int)sr->mode);
		goto out;
	}
	pthread_mutex_lock(&n->mode_mu);
	rc = set_import_mode(n, sr->mode == IMPORT_SSTPB__SWITCH_MODE__Import, &err);
	pthread_mutex_unlock(&n->mode_mu);
	if (rc)
		node_fail(c, "%s", err.msg);
	else
		node_reply_pb(c, &resp);
out:
	import_sstpb__switch_mode_request__free_unpacked(sr, NULL);
}

int node_add_import_methods(bf_node *n, bf_err *err)
{
	int rc = bf_rpc_server_add_method(n->srv, PATH_WRITE, BF_RPC_KIND_CLIENT_STREAM, h_write, n,
					  err);
	if (!rc)
		rc = bf_rpc_server_add_method(n->srv, PATH_MULTI_INGEST, BF_RPC_KIND_UNARY,
					      h_multi_ingest, n, err);
	if (!rc)
		rc = bf_rpc_server_add_method(n->srv, PATH_SWITCH_MODE, BF_RPC_KIND_UNARY,
					      h_switch_mode, n, err);
	return rc;
}
