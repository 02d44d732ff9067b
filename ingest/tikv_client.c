/*
 * The store-node client (ingest/tikv_client.h): one channel per store
 * address, Write streams to every peer of a region, and unary calls on its
 * leader, with every failure turned into a code that says what it means
 * (bf_tikv_status_code) and a message that names the store.
 *
 * Depends on: rpc/, ingest/tikv_wire, bfill/cluster.h.
 */
#include "ingest/tikv_client.h"
#include "util/util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replies bfill takes from a node: scans page a few thousand pairs. */
#define MAX_REPLY_BYTES ((size_t)64 << 20)

static const bf_rpc_method M_WRITE = { "/import_sstpb.ImportSST/Write", "Write" };
static const bf_rpc_method M_INGEST = { "/import_sstpb.ImportSST/MultiIngest", "MultiIngest" };
static const bf_rpc_method M_SCAN = { "/tikvpb.Tikv/KvScan", "KvScan" };
static const bf_rpc_method M_BATCH_GET = { "/tikvpb.Tikv/KvBatchGet", "KvBatchGet" };
static const bf_rpc_method M_DELETE_RANGE = { "/tikvpb.Tikv/KvDeleteRange", "KvDeleteRange" };

typedef struct store_channel {
	uint64_t store_id;
	char address[BF_CLUSTER_ADDR_MAX];
	bf_rpc_channel *ch; /* the pool's */
} store_channel;

struct bf_tikv_client {
	bf_cluster *cluster; /* borrowed */
	bf_rpc_pool *pool;   /* owned */
	int rpc_timeout_ms;
	pthread_mutex_t mu; /* guards chans */
	store_channel *chans;
	size_t nchans, cap;
};

int bf_tikv_client_create(bf_cluster *c, int rpc_timeout_ms, const bf_tls *tls,
			  bf_tikv_client **out, bf_err *err)
{
	bf_rpc_pool_opts po = { .label = "store", .max_recv_bytes = MAX_REPLY_BYTES, .tls = tls };
	bf_tikv_client *tc = calloc(1, sizeof(*tc));
	int rc;

	*out = NULL;
	if (!tc)
		return bf_errf(err, BF_ENOMEM, "store client: out of memory");
	tc->cluster = c;
	tc->rpc_timeout_ms = rpc_timeout_ms > 0 ? rpc_timeout_ms : 30000;
	pthread_mutex_init(&tc->mu, NULL);
	rc = bf_rpc_pool_create(&po, &tc->pool, err);
	if (rc) {
		bf_tikv_client_destroy(tc);
		return rc;
	}
	*out = tc;
	return 0;
}

void bf_tikv_client_destroy(bf_tikv_client *c)
{
	if (!c)
		return;
	bf_rpc_pool_destroy(c->pool);
	pthread_mutex_destroy(&c->mu);
	free(c->chans);
	free(c);
}

static int64_t call_deadline(const bf_tikv_client *c)
{
	return bf_now_ms() + c->rpc_timeout_ms;
}

/*
 * The channel to store_id at the address the cluster has for it now; a
 * store that moved gets a new channel (the pool keeps the old one).
 */
static int channel_for(bf_tikv_client *c, uint64_t store_id, bf_rpc_channel **ch, bf_err *err)
{
	bf_cluster_store st;
	store_channel *sc = NULL;
	int rc = bf_cluster_store_get(c->cluster, store_id, &st, err);

	if (rc) {
		/* A store the cache does not know: the layout must be reloaded. */
		bf_err_prefix(err, BF_ESTATE, "store %" PRIu64, store_id);
		if (err)
			err->code = BF_ESTATE;
		return BF_ESTATE;
	}
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nchans && !sc; i++)
		if (c->chans[i].store_id == store_id)
			sc = &c->chans[i];
	if (sc && strcmp(sc->address, st.address) != 0)
		sc->ch = NULL;
	if (!sc) {
		if (c->nchans == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 8;
			store_channel *p = realloc(c->chans, cap * sizeof(*p));
			if (!p) {
				rc = bf_errf(err, BF_ENOMEM, "store client: out of memory");
				goto out;
			}
			c->chans = p;
			c->cap = cap;
		}
		sc = &c->chans[c->nchans++];
		memset(sc, 0, sizeof(*sc));
		sc->store_id = store_id;
	}
	if (!sc->ch) {
		snprintf(sc->address, sizeof(sc->address), "%s", st.address);
		rc = bf_rpc_pool_add(c->pool, st.address, &sc->ch, err);
	}
	if (rc == 0)
		*ch = sc->ch;
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* A failed status into err, naming the store: its meaning as a code. */
static int status_err(uint64_t store_id, const bf_rpc_channel *ch, const bf_rpc_method *m,
		      const bf_rpc_status *st, bf_err *err)
{
	char details[sizeof(st->details)];

	/* The node's text, made one printable line. */
	bf_printable(st->details, strlen(st->details), details, sizeof(details));
	return bf_errf(err, bf_tikv_status_code(st), "store %" PRIu64 " (%s) %s: %s%s%s: %s",
		       store_id, bf_rpc_channel_target(ch), m->name, bf_rpc_status_tls_hint(st),
		       st->tls_refused ? ": " : "", bf_rpc_status_name(st->code),
		       *details ? details : "(no details)");
}

/*
 * The message in err made to name the store as status_err does: the
 * transport's own messages start with the channel's name, which gives way
 * to "store N (address)". Returns code, which err takes.
 */
static int store_err(uint64_t store_id, const bf_rpc_channel *ch, int code, bf_err *err)
{
	char rest[BF_ERR_MSG_MAX];
	const char *name = bf_rpc_channel_name(ch);
	size_t n = strlen(name);

	if (!err)
		return code;
	if (!strncmp(err->msg, name, n))
		snprintf(rest, sizeof(rest), "%s", err->msg + n);
	else
		snprintf(rest, sizeof(rest), ": %s", bf_err_text(err));
	return bf_errf(err, code, "store %" PRIu64 " (%s)%s", store_id, bf_rpc_channel_target(ch),
		       rest);
}

/* ---- unary calls on the leader ---- */

static int leader_of(const bf_region *r, const bf_region_peer **leader, bf_err *err)
{
	*leader = bf_region_leader(r);
	if (!*leader)
		return bf_errf(err, BF_ESTATE, "region %" PRIu64 ": no leader known", r->id);
	return 0;
}

/* One call to store_id; *reply is the caller's when 0 is returned. */
static int unary(bf_tikv_client *c, uint64_t store_id, const bf_rpc_method *m,
		 const bf_rpc_md *md, size_t n_md, const bf_rpc_buf *req, bf_rpc_buf *reply,
		 bf_err *err)
{
	bf_rpc_call call = { .method = m, .md = md, .n_md = n_md, .deadline_ms = call_deadline(c) };
	bf_rpc_channel *ch = NULL;
	bf_rpc_status st;
	int rc = channel_for(c, store_id, &ch, err);

	if (rc)
		return rc;
	rc = bf_rpc_unary(ch, &call, req, &st, reply, err);
	if (rc)
		return store_err(store_id, ch, rc, err);
	if (st.code != BF_RPC_OK)
		return status_err(store_id, ch, m, &st, err);
	return 0;
}

int bf_tikv_multi_ingest(bf_tikv_client *c, const bf_region *r, const bf_tikv_metas *metas,
			 const bf_fence_token *token, bf_tikv_error *re, bf_err *err)
{
	const bf_region_peer *leader;
	char fence[BF_FENCE_KEY_MAX + 32];
	bf_rpc_md md = { BF_TIKV_FENCE_MD, fence };
	bf_rpc_buf req = { 0 }, reply = { 0 };
	int rc;

	memset(re, 0, sizeof(*re));
	rc = leader_of(r, &leader, err);
	if (rc)
		return rc;
	if (bf_tikv_wire_multi_ingest(r, leader, metas, &req))
		return bf_errf(err, BF_ENOMEM, "MultiIngest: out of memory");
	rc = unary(c, leader->store_id, &M_INGEST, &md, bf_tikv_fence_value(token, fence, sizeof(fence)),
		   &req, &reply, err);
	if (rc == 0)
		rc = bf_tikv_unwire_ingest(reply.data, reply.len, re, err);
	bf_rpc_buf_free(&req);
	bf_rpc_buf_free(&reply);
	return rc;
}

typedef int (*unwire_pairs_fn)(const uint8_t *buf, size_t len, bf_tikv_pairs **pairs,
			       bf_tikv_error *re, bf_err *err);

/* Sends req (freed here) to r's leader and reads the pairs it answers. */
static int pairs_call(bf_tikv_client *c, const bf_region_peer *leader, const bf_rpc_method *m,
		      bf_rpc_buf *req, unwire_pairs_fn unwire, bf_tikv_pairs **pairs,
		      bf_tikv_error *re, bf_err *err)
{
	bf_rpc_buf reply = { 0 };
	int rc = unary(c, leader->store_id, m, NULL, 0, req, &reply, err);

	if (rc == 0)
		rc = unwire(reply.data, reply.len, pairs, re, err);
	bf_rpc_buf_free(req);
	bf_rpc_buf_free(&reply);
	return rc;
}

int bf_tikv_scan(bf_tikv_client *c, const bf_region *r, int replica, const void *start,
		 size_t startlen, const void *end, size_t endlen, uint32_t limit, bool reverse,
		 bf_tikv_pairs **pairs, bf_tikv_error *re, bf_err *err)
{
	const bf_region_peer *leader;
	bf_rpc_buf req = { 0 };
	int rc = 0;

	*pairs = NULL;
	memset(re, 0, sizeof(*re));
	/* Every peer answers scans: a replica is read where it asks. */
	if (replica > 0 && replica <= r->npeers)
		leader = &r->peers[replica - 1];
	else if (replica > 0)
		return bf_errf(err, BF_EINVAL, "region %" PRIu64 " has no replica %d", r->id, replica);
	else
		rc = leader_of(r, &leader, err);
	if (rc)
		return rc;
	if (bf_tikv_wire_scan(r, leader, start, startlen, end, endlen, limit, reverse, &req))
		return bf_errf(err, BF_ENOMEM, "KvScan: out of memory");
	return pairs_call(c, leader, &M_SCAN, &req, bf_tikv_unwire_scan, pairs, re, err);
}

int bf_tikv_batch_get(bf_tikv_client *c, const bf_region *r, const bf_probe *probes, size_t n,
		      bf_tikv_pairs **pairs, bf_tikv_error *re, bf_err *err)
{
	const bf_region_peer *leader;
	bf_rpc_buf req = { 0 };
	int rc;

	*pairs = NULL;
	memset(re, 0, sizeof(*re));
	rc = leader_of(r, &leader, err);
	if (rc)
		return rc;
	if (bf_tikv_wire_batch_get(r, leader, probes, n, &req))
		return bf_errf(err, BF_ENOMEM, "KvBatchGet: out of memory");
	return pairs_call(c, leader, &M_BATCH_GET, &req, bf_tikv_unwire_batch_get, pairs, re, err);
}

int bf_tikv_delete_range(bf_tikv_client *c, const bf_region *r, const void *lo, size_t lolen,
			 const void *hi, size_t hilen, bf_tikv_error *re, bf_err *err)
{
	const bf_region_peer *leader;
	bf_rpc_buf req = { 0 }, reply = { 0 };
	int rc;

	memset(re, 0, sizeof(*re));
	rc = leader_of(r, &leader, err);
	if (rc)
		return rc;
	if (bf_tikv_wire_delete_range(r, leader, lo, lolen, hi, hilen, &req))
		return bf_errf(err, BF_ENOMEM, "KvDeleteRange: out of memory");
	rc = unary(c, leader->store_id, &M_DELETE_RANGE, NULL, 0, &req, &reply, err);
	if (rc == 0)
		rc = bf_tikv_unwire_delete_range(reply.data, reply.len, re, err);
	bf_rpc_buf_free(&req);
	bf_rpc_buf_free(&reply);
	return rc;
}

/* ---- Write to every peer ---- */

typedef struct peer_stream {
	uint64_t store_id;
	bool leader;
	bf_rpc_stream *s; /* owned */
} peer_stream;

struct bf_tikv_writer {
	bf_tikv_client *c; /* borrowed */
	uint64_t region_id;
	int npeers;
	peer_stream peers[BF_CLUSTER_MAX_REPLICAS];
};

/*
 * Why an exchange on p's stream failed: the status the node ended it with
 * when there is one, else the transport's own failure (rc).
 */
static int stream_failed(const peer_stream *p, int rc, bf_err *err)
{
	const bf_rpc_status *st = bf_rpc_stream_status(p->s);

	if (st && st->code != BF_RPC_OK)
		return status_err(p->store_id, bf_rpc_stream_channel(p->s), &M_WRITE, st, err);
	if (rc != BF_ETIMEDOUT && rc != BF_ENOMEM && rc != BF_ECANCELLED)
		rc = BF_EUNAVAIL;
	return store_err(p->store_id, bf_rpc_stream_channel(p->s), rc, err);
}

int bf_tikv_writer_open(bf_tikv_client *c, const bf_region *r, const uint8_t uuid[16],
			const void *first, size_t firstlen, const void *last, size_t lastlen,
			bf_tikv_writer **out, bf_err *err)
{
	bf_tikv_writer *w = calloc(1, sizeof(*w));
	bf_rpc_call call = { .method = &M_WRITE };
	const bf_region_peer *leader;
	bf_rpc_buf meta = { 0 };
	int rc = 0;

	*out = w;
	if (!w)
		return bf_errf(err, BF_ENOMEM, "Write: out of memory");
	w->c = c;
	w->region_id = r->id;
	/* The leader's files are the ones to ingest: without one, no point. */
	rc = leader_of(r, &leader, err);
	if (rc)
		return rc;
	if (bf_tikv_wire_write_meta(uuid, r, first, firstlen, last, lastlen, &meta))
		return bf_errf(err, BF_ENOMEM, "Write: out of memory");
	for (int i = 0; rc == 0 && i < r->npeers; i++) {
		peer_stream *p = &w->peers[w->npeers];
		bf_rpc_channel *ch = NULL;
		p->store_id = r->peers[i].store_id;
		p->leader = r->peers[i].store_id == leader->store_id;
		rc = channel_for(c, p->store_id, &ch, err);
		if (rc == 0)
			rc = bf_rpc_stream_open(ch, &call, &p->s, err);
		if (rc)
			break;
		w->npeers++;
		rc = bf_rpc_stream_send(p->s, &meta, call_deadline(c), err);
		if (rc)
			rc = stream_failed(p, rc, err);
	}
	bf_rpc_buf_free(&meta);
	return rc;
}

int bf_tikv_writer_send(bf_tikv_writer *w, const bf_rpc_buf *msg, bf_err *err)
{
	/* Every peer gets the same bytes: copied once, not once a peer. */
	bf_rpc_msg *m = bf_rpc_msg_make(msg);
	int rc = m ? 0 : bf_errf(err, BF_ENOMEM, "Write: out of memory");

	for (int i = 0; rc == 0 && i < w->npeers; i++) {
		rc = bf_rpc_stream_send_msg(w->peers[i].s, m, call_deadline(w->c), err);
		if (rc)
			rc = stream_failed(&w->peers[i], rc, err);
	}
	bf_rpc_msg_free(m);
	return rc;
}

/* Half-closes p's stream and reads its one reply and its status. */
static int finish_one(bf_tikv_writer *w, peer_stream *p, bf_tikv_metas **metas,
		      bf_tikv_error *re, bf_err *err)
{
	int64_t deadline = call_deadline(w->c);
	bf_rpc_buf reply = { 0 };
	bf_rpc_status st;
	int rc = bf_rpc_stream_recv(p->s, deadline, &reply, err);

	if (rc)
		return stream_failed(p, rc, err);
	rc = bf_rpc_stream_wait(p->s, deadline, &st, err);
	if (rc == 0 && st.code != BF_RPC_OK)
		rc = status_err(p->store_id, bf_rpc_stream_channel(p->s), &M_WRITE, &st, err);
	else if (rc)
		rc = stream_failed(p, rc, err);
	if (rc == 0)
		rc = bf_tikv_unwire_write(reply.data, reply.len, metas, re, err);
	if (rc == 0 && re->kind != BF_TIKV_OK && !re->region_id)
		re->region_id = w->region_id;
	bf_rpc_buf_free(&reply);
	if (rc == BF_EPROTO || rc == BF_ENOMEM)
		return store_err(p->store_id, bf_rpc_stream_channel(p->s), rc, err);
	return rc;
}

int bf_tikv_writer_finish(bf_tikv_writer *w, bf_tikv_metas **metas, bf_tikv_error *re,
			  bf_err *err)
{
	bf_tikv_metas *leader_metas = NULL;
	uint64_t leader_store = 0;
	int rc = 0;

	*metas = NULL;
	memset(re, 0, sizeof(*re));
	/* Every peer is told first, so they all finish their files at once. */
	for (int i = 0; rc == 0 && i < w->npeers; i++) {
		rc = bf_rpc_stream_close_send(w->peers[i].s, call_deadline(w->c), err);
		if (rc)
			rc = stream_failed(&w->peers[i], rc, err);
	}
	for (int i = 0; rc == 0 && i < w->npeers && re->kind == BF_TIKV_OK; i++) {
		bf_tikv_metas *m = NULL;
		rc = finish_one(w, &w->peers[i], &m, re, err);
		if (w->peers[i].leader) {
			leader_metas = m;
			leader_store = w->peers[i].store_id;
		} else {
			bf_tikv_metas_free(m);
		}
	}
	if (rc == 0 && re->kind == BF_TIKV_OK && bf_tikv_metas_count(leader_metas) == 0)
		rc = bf_errf(err, BF_EIO,
			     "region %" PRIu64 ": the leader (store %" PRIu64 ") wrote no file",
			     w->region_id, leader_store);
	if (rc || re->kind != BF_TIKV_OK) {
		bf_tikv_metas_free(leader_metas);
		return rc;
	}
	*metas = leader_metas;
	return 0;
}

void bf_tikv_writer_destroy(bf_tikv_writer *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->npeers; i++)
		bf_rpc_stream_destroy(w->peers[i].s);
	free(w);
}
