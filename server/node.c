/*
 * The store node (bfill/node.h): its lifetime (store, import directory,
 * gRPC server, the import-mode ticker), what every handler shares (region
 * checks and errors, fencing, forwarding to followers, replies) and its
 * log.
 *
 * Depends on: engine (store, catalog), codec (key encoding), rpc (server
 * and client), util.
 */
#include "server/node_impl.h"

#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "util/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_MESSAGE ((size_t)16 << 20)
#define DEFAULT_FORWARD_TIMEOUT_MS 30000
#define DEFAULT_IMPORT_MODE_TIMEOUT_MS (10 * 60 * 1000)
/* Error lines a second before the rest are only counted. */
#define LOG_ERRORS_PER_SECOND 10
/* A request naming what the cache lacks reloads it at most this often. */
#define REFRESH_EVERY_MS 500
/* Where the node keeps the cluster and store id it serves. */
#define IDENTITY_KEY BF_CATALOG_PREFIX "node"
#define TMP_SUFFIX ".tmp"

/* ---- the log ---------------------------------------------------------------- */

static void log_line(bf_node *n, const char *fmt, va_list ap)
{
	fprintf(n->log, "%s: ", n->log_prefix);
	vfprintf(n->log, fmt, ap);
	fputc('\n', n->log);
	fflush(n->log);
}

void node_log(bf_node *n, const char *fmt, ...)
{
	va_list ap;

	if (!n->log)
		return;
	pthread_mutex_lock(&n->log_mu);
	va_start(ap, fmt);
	log_line(n, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&n->log_mu);
}

void node_log_error(bf_node *n, const char *fmt, ...)
{
	int64_t now = bf_now_ms();
	va_list ap;

	if (!n->log)
		return;
	pthread_mutex_lock(&n->log_mu);
	if (now - n->log_window_ms >= 1000) {
		n->log_window_ms = now;
		n->log_lines = 0;
	}
	if (n->log_lines >= LOG_ERRORS_PER_SECOND) {
		n->log_dropped++;
		goto out;
	}
	n->log_lines++;
	if (n->log_dropped) {
		fprintf(n->log, "%s: (%ld more failed requests not shown)\n", n->log_prefix,
			n->log_dropped);
		n->log_dropped = 0;
	}
	va_start(ap, fmt);
	log_line(n, fmt, ap);
	va_end(ap);
out:
	pthread_mutex_unlock(&n->log_mu);
}

/* A client refused at the TLS handshake (gRPC tells the rpc server from
 * one of its threads): the first line of each second is shown, the rest
 * counted for flush_refusals. */
static void on_refused(void *arg, const char *why)
{
	bf_node *n = arg;
	int64_t now = bf_now_ms();

	if (!n->log)
		return;
	pthread_mutex_lock(&n->log_mu);
	if (n->refused_shown_ms && now - n->refused_shown_ms < 1000) {
		n->refused_hidden++;
		snprintf(n->refused_why, sizeof(n->refused_why), "%s", why);
	} else {
		n->refused_shown_ms = now;
		fprintf(n->log, "%s: refused a client at the TLS handshake: %s\n", n->log_prefix, why);
		fflush(n->log);
	}
	pthread_mutex_unlock(&n->log_mu);
}

/* The ticker's, every second: tells how many refusals were not shown. */
static void flush_refusals(bf_node *n)
{
	int64_t now = bf_now_ms();

	if (!n->log)
		return;
	pthread_mutex_lock(&n->log_mu);
	if (n->refused_hidden && now - n->refused_shown_ms >= 1000) {
		fprintf(n->log, "%s: refused %ld more client%s at the TLS handshake in the last "
			"%.1f s (the last: %s)\n", n->log_prefix, n->refused_hidden,
			n->refused_hidden == 1 ? "" : "s", (double)(now - n->refused_shown_ms) / 1000.0,
			n->refused_why);
		fflush(n->log);
		n->refused_hidden = 0;
		n->refused_shown_ms = now;
	}
	pthread_mutex_unlock(&n->log_mu);
}

/* The rpc server tells of every call that ends with an error status. */
static void on_call_error(void *arg, const char *method, const char *peer, int code,
			  const char *details)
{
	node_log_error(arg, "%s from %s: %s: %s", method, peer, bf_rpc_status_name(code), details);
}

/* ---- replies ---------------------------------------------------------------- */

void node_reply_pb(bf_rpc_server_call *c, const void *msg)
{
	const ProtobufCMessage *m = msg;
	size_t len = protobuf_c_message_get_packed_size(m);
	bf_rpc_buf out = { malloc(len ? len : 1), len };

	if (!out.data) {
		bf_rpc_server_fail(c, BF_RPC_RESOURCE_EXHAUSTED, "out of memory for the reply");
		return;
	}
	protobuf_c_message_pack(m, out.data);
	bf_rpc_server_reply(c, &out, NULL);
	bf_rpc_buf_free(&out);
}

void *node_unpack(bf_rpc_server_call *c, const ProtobufCMessageDescriptor *d,
		  const bf_rpc_buf *req)
{
	return node_unpack_in(c, d, req, NULL);
}

void *node_unpack_in(bf_rpc_server_call *c, const ProtobufCMessageDescriptor *d,
		     const bf_rpc_buf *req, ProtobufCAllocator *alloc)
{
	void *m = protobuf_c_message_unpack(d, alloc, req->len, req->data);

	if (!m)
		node_fail(c, "malformed %s (%zu bytes that are not one)", d->short_name, req->len);
	return m;
}

void node_fail(bf_rpc_server_call *c, const char *fmt, ...)
{
	char text[BF_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	bf_rpc_server_fail(c, BF_RPC_UNKNOWN, "%s", text);
}

/* ---- region errors ------------------------------------------------------- */

void node_rerr_init(node_rerr *re)
{
	memset(re, 0, sizeof(*re));
	errorpb__error__init(&re->e);
}

void node_rerr_free(node_rerr *re)
{
	for (size_t i = 0; i < re->n_current; i++) {
		Metapb__Region *m = re->current[i];
		free(m->start_key.data);
		free(m->end_key.data);
		free(m); /* epoch and peers live in the same block */
	}
	free(re->current);
	for (size_t i = 0; i < 3; i++)
		free(re->key_bufs[i]);
	node_rerr_init(re);
}

bool node_rerr_set(const node_rerr *re)
{
	return re->e.message && *re->e.message;
}

void node_rerr_message(node_rerr *re, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(re->message, sizeof(re->message), fmt, ap);
	va_end(ap);
	re->e.message = re->message;
}

void node_rerr_busy(node_rerr *re, const char *reason)
{
	errorpb__server_is_busy__init(&re->busy);
	node_rerr_message(re, "server is busy: %s", reason);
	re->busy.reason = re->message;
	re->busy.backoff_ms = NODE_BUSY_BACKOFF_MS;
	re->e.server_is_busy = &re->busy;
}

void node_rerr_disk_full(node_rerr *re, uint64_t store_id, const char *reason)
{
	errorpb__disk_full__init(&re->disk_full);
	node_rerr_message(re, "disk full: %s", reason);
	re->disk_full_store = store_id;
	re->disk_full.n_store_id = 1;
	re->disk_full.store_id = &re->disk_full_store;
	re->disk_full.reason = re->message;
	re->e.disk_full = &re->disk_full;
}

void node_rerr_stale_command(node_rerr *re, const char *why)
{
	errorpb__stale_command__init(&re->stale);
	node_rerr_message(re, "%s", why);
	re->e.stale_command = &re->stale;
}

/* The TiKV form of raw key k: memcomparable-encoded, malloc'd. */
static uint8_t *encode_key(const void *k, size_t klen, size_t *len)
{
	uint8_t *out = malloc(bf_codec_bytes_len(klen));
	*len = out ? bf_region_encode_key(out, k, klen) : 0;
	return out;
}

void node_rerr_key_not_in_region(node_rerr *re, const bf_region *r, const void *k, size_t klen)
{
	const void *raw[3] = { k, r->start, r->end };
	size_t rawlen[3] = { klen, r->start_len, r->end_len };
	ProtobufCBinaryData *dst[3] = { &re->not_in_region.key, &re->not_in_region.start_key,
					&re->not_in_region.end_key };
	char shown[64];

	errorpb__key_not_in_region__init(&re->not_in_region);
	re->not_in_region.region_id = r->id;
	for (int i = 0; i < 3; i++) {
		/* Keys are encoded as TiKV reports them; an unbounded end stays
		 * empty. */
		if (i > 0 && rawlen[i] == 0)
			continue;
		re->key_bufs[i] = encode_key(raw[i], rawlen[i], &dst[i]->len);
		dst[i]->data = re->key_bufs[i];
	}
	node_rerr_message(re, "key %s is not in region %" PRIu64,
			  bf_printable(k, klen, shown, sizeof(shown)), r->id);
	re->e.key_not_in_region = &re->not_in_region;
}

/* A metapb.Region for r in one malloc'd block (epoch and peers inside;
 * keys in their own buffers), NULL when out of memory. */
static Metapb__Region *region_pb(const bf_region *r)
{
	struct block {
		Metapb__Region region;
		Metapb__RegionEpoch epoch;
		Metapb__Peer peers[BF_CLUSTER_MAX_REPLICAS];
		Metapb__Peer *peer_ptrs[BF_CLUSTER_MAX_REPLICAS];
	} *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	metapb__region__init(&b->region);
	metapb__region_epoch__init(&b->epoch);
	b->region.id = r->id;
	if (r->start_len)
		b->region.start_key.data = encode_key(r->start, r->start_len,
						      &b->region.start_key.len);
	if (r->end_len)
		b->region.end_key.data = encode_key(r->end, r->end_len, &b->region.end_key.len);
	b->epoch.conf_ver = r->conf_ver;
	b->epoch.version = r->version;
	b->region.region_epoch = &b->epoch;
	for (int i = 0; i < r->npeers && i < BF_CLUSTER_MAX_REPLICAS; i++) {
		metapb__peer__init(&b->peers[i]);
		b->peers[i].id = r->peers[i].id;
		b->peers[i].store_id = r->peers[i].store_id;
		b->peer_ptrs[i] = &b->peers[i];
	}
	b->region.n_peers = (size_t)(r->npeers < 0 ? 0 : r->npeers);
	b->region.peers = b->peer_ptrs;
	return &b->region;
}

static int key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

void node_rerr_epoch_not_match(bf_node *n, node_rerr *re, const bf_region *r,
			       const Metapb__RegionEpoch *want, const node_span *span)
{
	const void *lo = r->start, *hi = r->end_len ? r->end : NULL;
	size_t lolen = r->start_len, hilen = r->end_len;
	bf_region *regions = NULL;
	size_t nr = 0;

	if (span && span->set) {
		if (key_cmp(span->lo, span->lolen, lo, lolen) < 0) {
			lo = span->lo;
			lolen = span->lolen;
		}
		if (hi && (!span->hi || key_cmp(span->hi, span->hilen, hi, hilen) > 0)) {
			hi = span->hi;
			hilen = span->hilen;
		}
	}
	errorpb__epoch_not_match__init(&re->epoch);
	if (n->view->regions(n->view_arg, lo, lolen, hi, hilen, &regions, &nr, NULL) != 0 || !nr) {
		free(regions);
		regions = NULL;
		nr = 0;
	}
	/* The region itself at least, when the view has nothing more. */
	re->current = calloc(nr ? nr : 1, sizeof(*re->current));
	for (size_t i = 0; re->current && i < (nr ? nr : 1); i++) {
		Metapb__Region *m = region_pb(nr ? &regions[i] : r);
		if (m)
			re->current[re->n_current++] = m;
	}
	re->epoch.n_current_regions = re->n_current;
	re->epoch.current_regions = re->current;
	node_rerr_message(re,
			  "epoch not match: region %" PRIu64 " is at conf_ver %" PRIu64
			  " version %" PRIu64 ", the request has %" PRIu64 "/%" PRIu64,
			  r->id, r->conf_ver, r->version, want ? want->conf_ver : 0,
			  want ? want->version : 0);
	re->e.epoch_not_match = &re->epoch;
	free(regions);
}

/* ---- region checks ---------------------------------------------------------- */

bool node_key_in_region(const bf_region *r, const void *k, size_t klen)
{
	return bf_region_contains(r, k, klen);
}

static bool has_peer_on(const bf_region *r, uint64_t store_id)
{
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i].store_id == store_id)
			return true;
	return false;
}

/* Reloads the view, at most every REFRESH_EVERY_MS whatever clients send. */
static void maybe_refresh(bf_node *n)
{
	int64_t now = bf_now_ms(), last = atomic_load(&n->last_refresh_ms);
	bf_err err;

	if (!n->view->refresh || now - last < REFRESH_EVERY_MS ||
	    !atomic_compare_exchange_strong(&n->last_refresh_ms, &last, now))
		return;
	if (n->view->refresh(n->view_arg, &err))
		node_log_error(n, "cannot reload the cluster's regions: %s", bf_err_text(&err));
}

static bool epoch_equal(const bf_region *r, const Metapb__RegionEpoch *e)
{
	return e && e->conf_ver == r->conf_ver && e->version == r->version;
}

/* A request ahead of the cache: made after a change the node has not seen. */
static bool epoch_ahead(const bf_region *r, const Metapb__RegionEpoch *e)
{
	return e && (e->conf_ver > r->conf_ver || e->version > r->version);
}

static int lookup(bf_node *n, uint64_t id, bf_region *r)
{
	return n->view->region(n->view_arg, id, r, NULL) == 0 && has_peer_on(r, n->store_id)
		       ? 0
		       : BF_ENOTFOUND;
}

int node_check_region(bf_node *n, uint64_t region_id, const Metapb__RegionEpoch *epoch,
		      bool need_leader, const node_span *span, bf_region *r, node_rerr *re)
{
	int rc = lookup(n, region_id, r);

	if (rc || epoch_ahead(r, epoch)) {
		maybe_refresh(n);
		rc = lookup(n, region_id, r);
	}
	if (rc) {
		errorpb__region_not_found__init(&re->not_found);
		re->not_found.region_id = region_id;
		node_rerr_message(re, "region %" PRIu64 " is not found on store %" PRIu64,
				  region_id, n->store_id);
		re->e.region_not_found = &re->not_found;
		return 1;
	}
	if (!epoch_equal(r, epoch)) {
		node_rerr_epoch_not_match(n, re, r, epoch, span);
		return 1;
	}
	if (need_leader && r->leader_store != n->store_id) {
		const bf_region_peer *lp = bf_region_leader(r);
		errorpb__not_leader__init(&re->not_leader);
		re->not_leader.region_id = r->id;
		if (lp) {
			metapb__peer__init(&re->leader);
			re->leader.id = lp->id;
			re->leader.store_id = lp->store_id;
			re->not_leader.leader = &re->leader;
		}
		node_rerr_message(re, "store %" PRIu64 " is not the leader of region %" PRIu64
				  " (store %" PRIu64 " is)", n->store_id, r->id, r->leader_store);
		re->e.not_leader = &re->not_leader;
		return 1;
	}
	return 0;
}

int node_check_context(bf_node *n, const Kvrpcpb__Context *ctx, bool need_leader,
		       const node_span *span, bf_region *r, node_rerr *re)
{
	return node_check_region(n, ctx ? ctx->region_id : 0, ctx ? ctx->region_epoch : NULL,
				 need_leader, span, r, re);
}

/* ---- fencing ---------------------------------------------------------------- */

bool node_forwarded(bf_rpc_server_call *c)
{
	const char *v = bf_rpc_server_call_md(c, NODE_MD_FORWARDED);
	return v && !strcmp(v, "1");
}

int node_fence_md(bf_rpc_server_call *c, int64_t *revision, char *key)
{
	const char *v = bf_rpc_server_call_md(c, NODE_MD_FENCE);
	const char *colon;
	char num[24];

	*revision = 0;
	key[0] = '\0';
	if (!v)
		return 0;
	colon = strchr(v, ':');
	if (!colon || colon == v || (size_t)(colon - v) >= sizeof(num) || !colon[1] ||
	    strlen(colon + 1) >= BF_FENCE_KEY_MAX)
		goto bad;
	memcpy(num, v, (size_t)(colon - v));
	num[colon - v] = '\0';
	if (bf_parse_i64(num, revision) || *revision < 0)
		goto bad;
	strcpy(key, colon + 1);
	return 0;
bad:
	*revision = 0;
	key[0] = '\0';
	node_fail(c, "malformed %s metadata (want <revision>:<lock key>)", NODE_MD_FENCE);
	return BF_EINVAL;
}

int node_fence_check(bf_node *n, int64_t revision, const char *key, bf_err *err)
{
	int64_t highest = 0;
	int rc;

	if (revision == 0)
		return 0;
	rc = bf_catalog_get_fence(bf_store_catalog(n->st), key, &highest, err);
	if (rc)
		return rc;
	if (revision < highest)
		return bf_errf(err, BF_EFENCED,
			       "stale fence token: revision %" PRId64 " of lock %s is older than %" PRId64
			       ", which store %" PRIu64 " has applied already",
			       revision, key, highest, n->store_id);
	return revision > highest ? bf_catalog_put_fence(bf_store_catalog(n->st), key, revision, err) : 0;
}

/* ---- forwarding ------------------------------------------------------------- */

/* The channel to addr, made on first use; owned by the pool. */
static bf_rpc_channel *channel_to(bf_node *n, const char *addr, bf_err *err)
{
	bf_rpc_channel *ch = NULL;

	pthread_mutex_lock(&n->chan_mu);
	for (size_t i = 0; i < n->n_chans && !ch; i++)
		if (!strcmp(n->chans[i].addr, addr))
			ch = n->chans[i].ch;
	if (!ch) {
		node_chan *grown = realloc(n->chans, (n->n_chans + 1) * sizeof(*grown));
		char *copy = strdup(addr);
		if (grown)
			n->chans = grown;
		if (!grown || !copy) {
			free(copy);
			bf_errf(err, BF_ENOMEM, "out of memory");
		} else if (bf_rpc_pool_add(n->pool, addr, &ch, err) == 0) {
			n->chans[n->n_chans++] = (node_chan){ .addr = copy, .ch = ch };
		} else {
			free(copy);
		}
	}
	pthread_mutex_unlock(&n->chan_mu);
	return ch;
}

static bool stopping(void *arg)
{
	return bf_rpc_server_stopping(arg);
}

/* Forwards to one follower; 0 when it applied, else fail filled. */
static int forward_one(bf_node *n, uint64_t store_id, const bf_rpc_method *m,
		       const bf_rpc_buf *req, const bf_rpc_md *md, size_t n_md,
		       bool (*accepted)(const bf_rpc_buf *), node_fwd_fail *fail)
{
	bf_cluster_store info;
	bf_rpc_channel *ch;
	bf_rpc_call call = { .method = m, .md = md, .n_md = n_md,
			     .deadline_ms = bf_now_ms() + n->forward_timeout_ms,
			     .interrupted = stopping, .interrupt_arg = n->srv };
	bf_err err;

	memset(fail, 0, sizeof(*fail));
	fail->store_id = store_id;
	if (n->view->store(n->view_arg, store_id, &info, &err)) {
		snprintf(fail->why, sizeof(fail->why), "store %" PRIu64 " is not known: %s",
			 store_id, bf_err_text(&err));
		return BF_EUNAVAIL;
	}
	snprintf(fail->addr, sizeof(fail->addr), "%s", info.address);
	if (!(ch = channel_to(n, info.address, &err)) ||
	    bf_rpc_unary(ch, &call, req, &fail->status, &fail->reply, &err)) {
		snprintf(fail->why, sizeof(fail->why), "store %" PRIu64 " (%s): %s", store_id,
			 info.address, bf_err_text(&err));
		return BF_EUNAVAIL;
	}
	if (fail->status.code != BF_RPC_OK) {
		snprintf(fail->why, sizeof(fail->why), "store %" PRIu64 " (%s): %s: %s", store_id,
			 info.address, bf_rpc_status_name(fail->status.code), fail->status.details);
		return BF_EUNAVAIL;
	}
	fail->replied = true;
	if (!accepted(&fail->reply)) {
		snprintf(fail->why, sizeof(fail->why), "store %" PRIu64 " (%s) did not apply it",
			 store_id, info.address);
		return BF_EUNAVAIL;
	}
	bf_rpc_buf_free(&fail->reply);
	return 0;
}

/* One follower's forward, run on a thread of its own. */
typedef struct fwd_task {
	bf_node *n;
	uint64_t store_id;
	const bf_rpc_method *m;
	const bf_rpc_buf *req;
	const bf_rpc_md *md;
	size_t n_md;
	bool (*accepted)(const bf_rpc_buf *);
	node_fwd_fail fail;
	int rc;
	bool threaded;
	pthread_t th;
} fwd_task;

static void *fwd_run(void *arg)
{
	fwd_task *t = arg;
	t->rc = forward_one(t->n, t->store_id, t->m, t->req, t->md, t->n_md, t->accepted, &t->fail);
	return NULL;
}

int node_forward(bf_node *n, const bf_region *r, const char *path, const bf_rpc_buf *req,
		 const char *fence, bool (*accepted)(const bf_rpc_buf *reply), node_fwd_fail *fail)
{
	bf_rpc_method m = { .path = path, .name = strrchr(path, '/') + 1 };
	bf_rpc_md md[2] = { { NODE_MD_FORWARDED, "1" }, { NODE_MD_FENCE, fence } };
	fwd_task tasks[BF_CLUSTER_MAX_REPLICAS];
	int nt = 0, rc = 0;

	/* The followers at once: an ingest waits for the slowest, not the sum. */
	for (int i = 0; i < r->npeers && nt < BF_CLUSTER_MAX_REPLICAS; i++) {
		if (r->peers[i].store_id == n->store_id)
			continue;
		tasks[nt] = (fwd_task){ .n = n, .store_id = r->peers[i].store_id, .m = &m, .req = req,
					.md = md, .n_md = fence ? 2 : 1, .accepted = accepted };
		nt++;
	}
	for (int i = 0; i < nt; i++) {
		/* The last, or one no thread could be made for, runs here. */
		tasks[i].threaded = i + 1 < nt && pthread_create(&tasks[i].th, NULL, fwd_run,
								 &tasks[i]) == 0;
		if (!tasks[i].threaded)
			fwd_run(&tasks[i]);
	}
	for (int i = 0; i < nt; i++) {
		if (tasks[i].threaded)
			pthread_join(tasks[i].th, NULL);
		if (tasks[i].rc && !rc) {
			rc = BF_EUNAVAIL;
			*fail = tasks[i].fail; /* the reply goes with it */
		} else if (tasks[i].rc) {
			bf_rpc_buf_free(&tasks[i].fail.reply);
		}
	}
	if (!rc)
		memset(fail, 0, sizeof(*fail));
	return rc;
}

/* ---- the cluster as a view ---- */

static int cv_region(void *arg, uint64_t id, bf_region *out, bf_err *err)
{
	return bf_cluster_region(arg, id, out, err);
}

static int cv_regions(void *arg, const void *lo, size_t lolen, const void *hi, size_t hilen,
		      bf_region **out, size_t *n, bf_err *err)
{
	return bf_cluster_regions(arg, lo, lolen, hi, hilen, out, n, err);
}

static int cv_store(void *arg, uint64_t id, bf_cluster_store *out, bf_err *err)
{
	return bf_cluster_store_get(arg, id, out, err);
}

static int cv_refresh(void *arg, bf_err *err)
{
	return bf_cluster_refresh(arg, err);
}

const bf_node_view_ops bf_node_cluster_view = {
	.region = cv_region, .regions = cv_regions, .store = cv_store, .refresh = cv_refresh,
};

/* ---- lifetime --------------------------------------------------------------- */

/*
 * Removes the files of the import directory whose names end in suffix and
 * that were last written at least min_age_ms ago (0: whatever their age).
 * How many, or -errno when the directory cannot be read.
 */
static int remove_uploads(bf_node *n, const char *suffix, int64_t min_age_ms)
{
	int64_t now = bf_wall_ms();
	size_t sl = strlen(suffix);
	int removed = 0;
	struct dirent *e;
	struct stat sb;
	DIR *d = opendir(n->import_dir);

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len <= sl || strcmp(e->d_name + len - sl, suffix))
			continue;
		if (min_age_ms > 0) {
			if (fstatat(dirfd(d), e->d_name, &sb, 0) != 0)
				continue;
			int64_t mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 +
					   sb.st_mtim.tv_nsec / 1000000;
			if (now - mtime_ms < min_age_ms)
				continue;
		}
		removed += unlinkat(dirfd(d), e->d_name, 0) == 0;
	}
	closedir(d);
	return removed;
}

/* Removes what a stopped node left half-written in its import directory:
 * uploads are written under a temporary name and renamed once complete. */
static int clean_imports(bf_node *n, bf_err *err)
{
	int removed, rc = bf_mkdirs(n->import_dir, err);

	if (rc)
		return rc;
	removed = remove_uploads(n, TMP_SUFFIX, 0);
	if (removed < 0)
		return bf_errf(err, removed, "%s: %s", n->import_dir, strerror(-removed));
	if (removed)
		node_log(n, "removed %d half-written upload%s from %s", removed,
			 removed == 1 ? "" : "s", n->import_dir);
	return 0;
}

/* The data directory serves one store of one cluster for good: a store
 * restarted with another id (or cluster) would serve the wrong data. */
static int check_identity(bf_node *n, const char *cluster_uuid, bf_err *err)
{
	char want[128], *have = NULL;
	size_t have_len = 0;
	int rc;

	if (!cluster_uuid)
		return 0;
	snprintf(want, sizeof(want), "cluster=%s store=%" PRIu64, cluster_uuid, n->store_id);
	rc = bf_store_get(n->st, IDENTITY_KEY, strlen(IDENTITY_KEY), &have, &have_len, err);
	if (rc == BF_ENOTFOUND) {
		bf_err_clear(err);
		return bf_store_put(n->st, IDENTITY_KEY, strlen(IDENTITY_KEY), want, strlen(want),
				    err);
	}
	if (rc == 0 && (have_len != strlen(want) || memcmp(have, want, have_len)))
		rc = bf_errf(err, BF_ESTATE, "%s serves %.*s, not %s", bf_store_path(n->st),
			     (int)have_len, have, want);
	free(have);
	return rc;
}

/* Removes finished uploads older than the TTL. Under ingest_mu, so that
 * no ingest finds a file and then loses it. */
static void sweep_uploads(bf_node *n)
{
	int64_t now = bf_wall_ms();
	int removed;

	/* Every 10 s at most, more often only for a shorter TTL. */
	if (now - n->last_sweep_ms < (n->upload_ttl_ms < 10000 ? n->upload_ttl_ms : 10000))
		return;
	n->last_sweep_ms = now;
	pthread_mutex_lock(&n->ingest_mu);
	removed = remove_uploads(n, ".sst", n->upload_ttl_ms);
	pthread_mutex_unlock(&n->ingest_mu);
	if (removed > 0)
		node_log(n, "removed %d upload%s no ingest took within %.0f s", removed,
			 removed == 1 ? "" : "s", (double)n->upload_ttl_ms / 1000.0);
}

static void *ticker_main(void *arg)
{
	bf_node *n = arg;
	struct timespec ts;

	pthread_mutex_lock(&n->mode_mu);
	while (!n->ticker_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&n->mode_cv, &n->mode_mu, &ts);
		if (n->ticker_stop)
			break;
		pthread_mutex_unlock(&n->mode_mu);
		node_import_mode_tick(n);
		sweep_uploads(n);
		flush_refusals(n);
		pthread_mutex_lock(&n->mode_mu);
	}
	pthread_mutex_unlock(&n->mode_mu);
	return NULL;
}

static void node_free(bf_node *n)
{
	if (!n)
		return;
	bf_node_stop(n, 0);
	bf_rpc_server_destroy(n->srv);
	bf_rpc_pool_destroy(n->pool);
	for (size_t i = 0; i < n->n_chans; i++)
		free(n->chans[i].addr);
	free(n->chans);
	bf_store_close(n->st);
	pthread_mutex_destroy(&n->chan_mu);
	pthread_mutex_destroy(&n->ingest_mu);
	pthread_mutex_destroy(&n->mode_mu);
	pthread_cond_destroy(&n->mode_cv);
	pthread_mutex_destroy(&n->log_mu);
	free(n);
}

int bf_node_open(const bf_node_opts *o, bf_node **out, bf_err *err)
{
	bf_node *n = calloc(1, sizeof(*n));
	bf_rpc_server_opts so = { .threads = o->threads, .on_error = on_call_error,
				  .tls = o->tls, .on_refused = on_refused };
	bf_rpc_pool_opts po = { .max_recv_bytes = o->max_message_bytes, .tls = o->tls };
	pthread_condattr_t ca;
	char label[48];
	int rc;

	*out = NULL;
	if (!n)
		return bf_errf(err, BF_ENOMEM, "out of memory");
	if (!o->data_dir || !o->listen || !o->view || !o->store_id) {
		free(n);
		return bf_errf(err, BF_EINVAL, "a node needs a data directory, an address to "
			       "listen on, a store id and a view of its cluster");
	}
	/* Serving and forwarding share the files: each role's needs, before
	 * the store is touched. */
	rc = bf_tls_check(o->tls, true, NULL, err);
	if (rc == 0)
		rc = bf_tls_check(o->tls, false, NULL, err);
	if (rc) {
		free(n);
		return rc;
	}
	pthread_mutex_init(&n->chan_mu, NULL);
	pthread_mutex_init(&n->ingest_mu, NULL);
	pthread_mutex_init(&n->mode_mu, NULL);
	pthread_mutex_init(&n->log_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->mode_cv, &ca);
	pthread_condattr_destroy(&ca);
	n->store_id = o->store_id;
	n->view = o->view;
	n->view_arg = o->view_arg;
	n->log = o->log; /* a library prints only where its caller asks */
	snprintf(n->log_prefix, sizeof(n->log_prefix), "%s",
		 o->log_prefix ? o->log_prefix : "bfill-store");
	n->sst_compression = o->sst_compression;
	n->upload_ttl_ms = o->upload_ttl_ms > 0 ? o->upload_ttl_ms : 3600 * 1000;
	n->forward_timeout_ms = o->forward_timeout_ms > 0 ? o->forward_timeout_ms
							  : DEFAULT_FORWARD_TIMEOUT_MS;
	n->import_mode_timeout_ms = o->import_mode_timeout_ms > 0
					    ? o->import_mode_timeout_ms
					    : DEFAULT_IMPORT_MODE_TIMEOUT_MS;
	atomic_init(&n->last_refresh_ms, 0);

	rc = bf_store_open(o->data_dir, BF_STORE_CREATE, &n->st, err);
	if (rc)
		goto out;
	rc = check_identity(n, o->cluster_uuid, err);
	if (rc)
		goto out;
	snprintf(n->import_dir, sizeof(n->import_dir), "%s/import", bf_store_path(n->st));
	rc = clean_imports(n, err);
	if (rc)
		goto out;

	snprintf(label, sizeof(label), "store %" PRIu64, n->store_id);
	po.label = label;
	rc = bf_rpc_pool_create(&po, &n->pool, err);
	if (rc)
		goto out;
	so.label = label;
	so.max_recv_bytes = o->max_message_bytes ? o->max_message_bytes : DEFAULT_MAX_MESSAGE;
	so.on_error_arg = n;
	rc = bf_rpc_server_create(&so, &n->srv, err);
	if (!rc)
		rc = node_add_import_methods(n, err);
	if (!rc)
		rc = node_add_kv_methods(n, err);
	if (!rc)
		rc = bf_rpc_server_start(n->srv, o->listen, &n->port, err);
	if (rc)
		goto out;
	if (pthread_create(&n->ticker, NULL, ticker_main, n) != 0) {
		rc = bf_errf(err, BF_ENOMEM, "cannot start the node's ticker thread");
		goto out;
	}
	n->ticker_started = true;
	*out = n;
	n = NULL;
out:
	node_free(n);
	return rc;
}

void bf_node_quiet_grpc_log(void *out)
{
	bf_rpc_quiet_library_log(out);
}

int bf_node_port(const bf_node *n)
{
	return n->port;
}

bf_store *bf_node_store(bf_node *n)
{
	return n->st;
}

void bf_node_stop(bf_node *n, int grace_ms)
{
	if (!n)
		return;
	bf_rpc_server_stop(n->srv, grace_ms);
	if (n->ticker_started) {
		pthread_mutex_lock(&n->mode_mu);
		n->ticker_stop = true;
		pthread_cond_broadcast(&n->mode_cv);
		pthread_mutex_unlock(&n->mode_mu);
		pthread_join(n->ticker, NULL);
		n->ticker_started = false;
	}
}

void bf_node_close(bf_node *n)
{
	node_free(n);
}
