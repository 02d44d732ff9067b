/*
 * A cluster handle (include/bfill/cluster.h): loads the layout from etcd
 * into the region cache, answers lookups from the cache alone, and keeps
 * it fresh: a refresh on request, what stores say (learn_*), and an
 * optional watch thread.
 *
 * Writers (refresh, learn, the watch) build a whole new snapshot, swap it
 * in under write_mu with a release store, and free the old one after an
 * RCU grace period, outside the mutex. Readers never take a lock and never
 * wait on etcd: while etcd is slow or gone, they keep the last snapshot.
 * Depends on: the etcd client, records.c, cache.c.
 */
#include "cluster/cluster_impl.h"
#include "util/backoff.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the watch thread looks at its stop flag while etcd is quiet. */
#define WATCH_POLL_MS 200
/* Pauses between its attempts while etcd is unreachable. */
#define WATCH_RETRY_BASE_MS 100
#define WATCH_RETRY_CAP_MS 2000

/* ---- loading ---- */

typedef struct leader_rec {
	uint64_t region_id, store_id;
} leader_rec;

typedef struct load_state {
	creg *regions;
	size_t nregions, cap_regions;
	bf_cluster_store *stores;
	size_t nstores, cap_stores;
	leader_rec *leaders;
	size_t nleaders, cap_leaders;
	bool have_meta;
} load_state;

/* Grows *arr (of *cap elements of size) to hold one more. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t next = *cap ? *cap * 2 : 16;
	void *p = realloc(*arr, next * size);
	if (!p)
		return BF_ENOMEM;
	*arr = p;
	*cap = next;
	return 0;
}

/* The id after "<kind>/" in rel, or 0 when rel is not such a key. */
static uint64_t record_id(const char *rel, const char *kind)
{
	size_t n = strlen(kind);
	uint64_t id = 0;

	if (strncmp(rel, kind, n) || rel[n] != '/' || bf_parse_u64(rel + n + 1, &id))
		return 0;
	return id;
}

static int load_kv(load_state *st, const bf_etcd_kv *kv, const char *rel, char *uuid,
		   int *replicas, bf_err *err)
{
	uint64_t id;
	int rc = 0;

	if (!strcmp(rel, "meta")) {
		char u[BF_UUID_LEN + 1];
		int k;
		rc = meta_record_parse(kv->value, kv->value_len, kv->key, u, &k, err);
		if (rc == 0 && uuid)
			memcpy(uuid, u, sizeof(u));
		if (rc == 0 && replicas)
			*replicas = k;
		st->have_meta = rc == 0;
	} else if ((id = record_id(rel, "store"))) {
		if (grow((void **)&st->stores, &st->cap_stores, st->nstores, sizeof(*st->stores)))
			return bf_errf(err, BF_ENOMEM, "out of memory loading the cluster");
		rc = store_record_unpack(kv->value, kv->value_len, kv->key,
					 &st->stores[st->nstores], err);
		if (rc == 0 && st->stores[st->nstores].id != id)
			rc = bf_errf(err, BF_ECORRUPT, "cluster record %s holds store %" PRIu64,
				     kv->key, st->stores[st->nstores].id);
		st->nstores += rc == 0;
	} else if ((id = record_id(rel, "region"))) {
		creg *r;
		if (grow((void **)&st->regions, &st->cap_regions, st->nregions, sizeof(*r)))
			return bf_errf(err, BF_ENOMEM, "out of memory loading the cluster");
		r = &st->regions[st->nregions];
		rc = region_record_unpack(kv->value, kv->value_len, kv->key, r, err);
		if (rc == 0 && r->id != id) {
			rc = bf_errf(err, BF_ECORRUPT, "cluster record %s holds region %" PRIu64,
				     kv->key, r->id);
			creg_free(r);
		}
		if (rc == 0) {
			r->mod_revision = kv->mod_revision;
			st->nregions++;
		}
	} else if ((id = record_id(rel, "leader"))) {
		uint64_t store_id;
		if (bf_parse_u64(kv->value, &store_id))
			return bf_errf(err, BF_ECORRUPT, "cluster record %s: not a store id", kv->key);
		if (grow((void **)&st->leaders, &st->cap_leaders, st->nleaders, sizeof(leader_rec)))
			return bf_errf(err, BF_ENOMEM, "out of memory loading the cluster");
		st->leaders[st->nleaders++] = (leader_rec){ id, store_id };
	}
	/* Anything else under the root (catalog, jobs) is not the layout. */
	return rc;
}

int cluster_load(bf_etcd *etcd, const char *root, snap **out, char uuid[BF_UUID_LEN + 1],
		 int *replicas, bf_err *err)
{
	bf_etcd_range_result res = { 0 };
	load_state st = { 0 };
	char *end = NULL;
	size_t rootlen = strlen(root);
	int rc;

	*out = NULL;
	rc = bf_etcd_prefix_end(root, &end, err);
	if (rc)
		goto out;
	/* One Range: every record as of one revision. */
	bf_etcd_range_req req = { .key = root, .range_end = end };
	rc = bf_etcd_range(etcd, &req, &res, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < res.n_kvs && rc == 0; i++)
		if (res.kvs[i].key_len > rootlen)
			rc = load_kv(&st, &res.kvs[i], res.kvs[i].key + rootlen, uuid, replicas, err);
	if (rc)
		goto out;
	if (!st.have_meta) {
		rc = bf_errf(err, BF_ENOTFOUND, "no cluster in etcd under %s (no %smeta record)",
			     root, root);
		goto out;
	}
	rc = snap_new(res.revision, st.regions, st.nregions, st.stores, st.nstores, out);
	st.regions = NULL;
	st.nregions = 0;
	st.stores = NULL;
	if (rc) {
		bf_errf(err, rc, "out of memory loading the cluster");
		goto out;
	}
	for (size_t i = 0; i < st.nleaders; i++) {
		long at = snap_find_id(*out, st.leaders[i].region_id);
		if (at >= 0)
			(*out)->regions[at].leader_store = st.leaders[i].store_id;
	}
out:
	for (size_t i = 0; i < st.nregions; i++)
		creg_free(&st.regions[i]);
	free(st.regions);
	free(st.stores);
	free(st.leaders);
	free(end);
	bf_etcd_range_result_free(&res);
	return rc;
}

/* ---- publishing ---- */

/* Swaps next in; the caller holds write_mu. Returns the old snapshot,
 * which the caller frees with retire() after dropping the mutex. */
static snap *swap_locked(bf_cluster *c, snap *next)
{
	snap *old = c->cur;
	/* rcu_assign_pointer's ordering, in a form ThreadSanitizer sees. */
	__atomic_store_n(&c->cur, next, __ATOMIC_RELEASE);
	return old;
}

static void retire(snap *old)
{
	if (!old)
		return;
	cache_synchronize(); /* no reader can still be looking at it */
	snap_free(old);
}

void cluster_publish(bf_cluster *c, snap *next, bool only_newer)
{
	snap *old;

	pthread_mutex_lock(&c->write_mu);
	/* Two refreshes may finish out of order; the older answer loses. */
	if (only_newer && c->cur && next->revision < c->cur->revision) {
		pthread_mutex_unlock(&c->write_mu);
		snap_free(next);
		return;
	}
	old = swap_locked(c, next);
	pthread_mutex_unlock(&c->write_mu);
	retire(old);
}

int bf_cluster_refresh(bf_cluster *c, bf_err *err)
{
	snap *next = NULL;
	int rc = cluster_load(c->etcd, c->root, &next, NULL, NULL, err);

	if (rc)
		return bf_err_prefix(err, rc, "cluster %s: refresh (the cache keeps what it had)",
				     c->name);
	cluster_publish(c, next, true);
	return 0;
}

/* What a store said, as a change to the current snapshot: the new one,
 * or NULL when nothing changes. */
typedef struct learned {
	const bf_region *regions; /* learn_regions */
	size_t n;
	uint64_t region_id, store_id; /* learn_leader */
} learned;

/* Computed from the current snapshot under write_mu, so that two learns
 * at once both land. */
static void learn(bf_cluster *c, const learned *l)
{
	snap *next, *old = NULL;

	pthread_mutex_lock(&c->write_mu);
	next = l->regions ? snap_learn_regions(c->cur, l->regions, l->n)
			  : snap_learn_leader(c->cur, l->region_id, l->store_id);
	if (next)
		old = swap_locked(c, next);
	pthread_mutex_unlock(&c->write_mu);
	retire(old);
}

void bf_cluster_learn_regions(bf_cluster *c, const bf_region *r, size_t n)
{
	if (r && n)
		learn(c, &(learned){ .regions = r, .n = n });
}

void bf_cluster_learn_leader(bf_cluster *c, uint64_t region_id, uint64_t store_id)
{
	learn(c, &(learned){ .region_id = region_id, .store_id = store_id });
}

static int64_t cached_revision(bf_cluster *c)
{
	int64_t rev;

	pthread_mutex_lock(&c->write_mu);
	rev = c->cur->revision;
	pthread_mutex_unlock(&c->write_mu);
	return rev;
}

/* ---- the watch ---- */

/* The layout's records; catalog and job records under the root change
 * far more often and are not the cache's business. */
static bool layout_key(const char *key, size_t len, void *arg)
{
	const bf_cluster *c = arg;
	static const char *const kinds[] = { "store/", "region/", "leader/" };
	size_t rootlen = strlen(c->root);

	if (len < rootlen || memcmp(key, c->root, rootlen))
		return false;
	key += rootlen;
	len -= rootlen;
	if (len == 4 && !memcmp(key, "meta", 4))
		return true;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (len > strlen(kinds[i]) && !memcmp(key, kinds[i], strlen(kinds[i])))
			return true;
	return false;
}

/* Sleeps up to ms, or less when asked to stop; true when asked. */
static bool watch_pause(bf_cluster *c, int64_t ms)
{
	int64_t until = bf_now_ms() + ms;

	while (!atomic_load(&c->stop) && bf_now_ms() < until)
		bf_sleep_ms(until - bf_now_ms() < 20 ? until - bf_now_ms() : 20);
	return atomic_load(&c->stop);
}

/*
 * Watches the layout from the cache's revision on and refreshes when it
 * changes. A broken stream is opened again from the cache's revision, so
 * no change is missed; a compacted one (that history is gone) costs a
 * refresh. While etcd is unreachable it retries with backoff and the
 * cache keeps serving.
 */
static void *watch_main(void *arg)
{
	bf_cluster *c = arg;
	bf_etcd_watch *w = NULL;
	bf_backoff b;
	char *end = NULL;
	bool stale = false; /* a change seen but not loaded yet */
	int64_t wait_ms, rev;
	bf_err err;
	int rc;

	bf_backoff_init(&b, WATCH_RETRY_BASE_MS, WATCH_RETRY_CAP_MS, (uint64_t)bf_now_ns(), 0);
	if (bf_etcd_prefix_end(c->root, &end, &err))
		return NULL;
	while (!atomic_load(&c->stop)) {
		if (stale) {
			if (bf_cluster_refresh(c, &err) == 0) {
				stale = false;
			} else {
				bf_backoff_next(&b, &wait_ms);
				watch_pause(c, wait_ms);
				continue;
			}
		}
		if (!w) {
			rc = bf_etcd_watch_open_range(c->etcd, c->root, end, cached_revision(c) + 1,
						      layout_key, c, &w, &err);
			if (rc) {
				bf_backoff_next(&b, &wait_ms);
				watch_pause(c, wait_ms);
				continue;
			}
			bf_backoff_reset(&b);
		}
		rc = bf_etcd_watch_wait_change(w, WATCH_POLL_MS, &rev, &err);
		if (rc == 1 && rev > cached_revision(c))
			stale = true;
		if (rc < 0) {
			bf_etcd_watch_close(w);
			w = NULL;
			/* A compacted revision cancels the watch: what changed
			 * since is only in a fresh load. */
			stale = rc == BF_ESTATE;
			bf_backoff_next(&b, &wait_ms);
			watch_pause(c, wait_ms);
		}
	}
	bf_etcd_watch_close(w);
	free(end);
	return NULL;
}

/* ---- the handle ---- */

int bf_cluster_open(bf_etcd *etcd, const char *name, const bf_cluster_opts *o,
		    bf_cluster **out, bf_err *err)
{
	bf_cluster *c = NULL;
	int rc;

	*out = NULL;
	rc = cluster_name_check(name, err);
	if (rc == 0)
		rc = cache_setup(err);
	if (rc)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c)
		return bf_errf(err, BF_ENOMEM, "out of memory opening cluster %s", name);
	c->etcd = etcd;
	snprintf(c->name, sizeof(c->name), "%s", name);
	cluster_root(c->root, name);
	pthread_mutex_init(&c->write_mu, NULL);
	atomic_init(&c->stop, false);
	rc = cluster_load(etcd, c->root, &c->cur, c->uuid, &c->replicas, err);
	if (rc) {
		if (rc == BF_ENOTFOUND)
			bf_errf(err, rc, "cluster %s does not exist in etcd (bfill cluster init makes it)",
				name);
		else
			bf_err_prefix(err, rc, "cluster %s", name);
		goto out;
	}
	if (o && o->watch) {
		rc = -pthread_create(&c->watcher, NULL, watch_main, c);
		if (rc) {
			bf_errf(err, rc, "cluster %s: cannot start the watch thread: %s", name,
				strerror(-rc));
			goto out;
		}
		c->watching = true;
	}
	*out = c;
	return 0;
out:
	bf_cluster_close(c);
	return rc;
}

void bf_cluster_close(bf_cluster *c)
{
	if (!c)
		return;
	if (c->watching) {
		atomic_store(&c->stop, true);
		pthread_join(c->watcher, NULL);
	}
	/* No reader is left: closing with lookups under way is the caller's
	 * bug, as for any handle. */
	snap_free(c->cur);
	pthread_mutex_destroy(&c->write_mu);
	free(c);
}

const char *bf_cluster_name(const bf_cluster *c) { return c->name; }
const char *bf_cluster_uuid(const bf_cluster *c) { return c->uuid; }
int bf_cluster_replicas(const bf_cluster *c) { return c->replicas; }
bf_etcd *bf_cluster_etcd(bf_cluster *c) { return c->etcd; }
const char *bf_cluster_root(const bf_cluster *c) { return c->root; }

/* ---- lookups: the cache alone ---- */

/* The published snapshot, read inside a read-side section: what
 * rcu_dereference does, with an acquire ThreadSanitizer understands. */
static const snap *current(const bf_cluster *c)
{
	return __atomic_load_n(&c->cur, __ATOMIC_ACQUIRE);
}

static int no_key(const bf_cluster *c, const void *k, size_t klen, bf_err *err)
{
	char shown[160];
	return bf_errf(err, BF_ENOTFOUND, "cluster %s: no cached region holds key %s", c->name,
		       bf_printable(k, klen, shown, sizeof(shown)));
}

int bf_cluster_locate(bf_cluster *c, const void *k, size_t klen, bf_region *out, bf_err *err)
{
	bool tmp = cache_read_lock();
	const snap *s = current(c);
	long at = snap_locate(s, k, klen);

	if (at >= 0)
		creg_to_region(&s->regions[at], out);
	cache_read_unlock(tmp);
	return at >= 0 ? 0 : no_key(c, k, klen, err);
}

int bf_cluster_region(bf_cluster *c, uint64_t id, bf_region *out, bf_err *err)
{
	bool tmp = cache_read_lock();
	const snap *s = current(c);
	long at = snap_find_id(s, id);

	if (at >= 0)
		creg_to_region(&s->regions[at], out);
	cache_read_unlock(tmp);
	return at >= 0 ? 0 : bf_errf(err, BF_ENOTFOUND, "cluster %s: no region %" PRIu64 " cached",
				     c->name, id);
}

int cluster_cached_region(bf_cluster *c, uint64_t id, creg *out, bf_err *err)
{
	bool tmp = cache_read_lock();
	const snap *s = current(c);
	long at = snap_find_id(s, id);
	int rc = at >= 0 ? creg_copy(out, &s->regions[at]) : BF_ENOTFOUND;

	cache_read_unlock(tmp);
	if (rc == BF_ENOMEM)
		return bf_errf(err, rc, "out of memory");
	if (rc)
		return bf_errf(err, rc, "cluster %s has no region %" PRIu64, c->name, id);
	return 0;
}

uint64_t cluster_max_region_id(bf_cluster *c)
{
	bool tmp = cache_read_lock();
	const snap *s = current(c);
	uint64_t max = s->nregions ? s->regions[s->by_id[s->nregions - 1]].id : 0;

	cache_read_unlock(tmp);
	return max;
}

int bf_cluster_regions(bf_cluster *c, const void *lo, size_t lolen, const void *hi, size_t hilen,
		       bf_region **out, size_t *n, bf_err *err)
{
	bool tmp = cache_read_lock();
	const snap *s = current(c);
	size_t first = (size_t)snap_first_from(s, lo, lo ? lolen : 0), last = first;
	int rc = 0;

	/* An empty hi is unbounded, as an empty region end is. */
	while (last < s->nregions &&
	       (!hi || !hilen || cluster_key_cmp(creg_start(&s->regions[last]),
						 s->regions[last].start_len, hi, hilen) < 0))
		last++;
	*n = last - first;
	*out = malloc((*n ? *n : 1) * sizeof(**out));
	if (*out)
		for (size_t i = first; i < last; i++)
			creg_to_region(&s->regions[i], &(*out)[i - first]);
	else
		rc = BF_ENOMEM;
	cache_read_unlock(tmp);
	if (rc) {
		*n = 0;
		return bf_errf(err, rc, "out of memory listing %zu regions", last - first);
	}
	return 0;
}

int bf_cluster_store_get(bf_cluster *c, uint64_t id, bf_cluster_store *out, bf_err *err)
{
	bool tmp = cache_read_lock();
	const snap *s = current(c);
	long at = snap_find_store(s, id);

	if (at >= 0)
		*out = s->stores[at];
	cache_read_unlock(tmp);
	return at >= 0 ? 0 : bf_errf(err, BF_ENOTFOUND, "cluster %s has no store %" PRIu64,
				     c->name, id);
}

int bf_cluster_stores(bf_cluster *c, bf_cluster_store **out, size_t *n, bf_err *err)
{
	bool tmp = cache_read_lock();
	const snap *s = current(c);
	int rc = 0;

	*n = s->nstores;
	*out = malloc((*n ? *n : 1) * sizeof(**out));
	if (*out && *n)
		memcpy(*out, s->stores, *n * sizeof(**out));
	else if (!*out)
		rc = BF_ENOMEM;
	cache_read_unlock(tmp);
	if (rc) {
		*n = 0;
		return bf_errf(err, rc, "out of memory listing the stores");
	}
	return 0;
}
