/*
 * The region cache's versions: immutable snapshots (regions sorted by
 * start key, an id index, the stores), built whole and never changed once
 * published, so readers search them without a lock. What a store tells a
 * client (EpochNotMatch's current regions, a NotLeader hint) makes a new
 * snapshot from the current one.
 *
 * Readers use liburcu's default (memb) flavour: it needs no help from the
 * reading threads beyond being registered, which the cache does itself on
 * a thread's first read (QSBR would ask every region job to announce
 * quiescent states). Depends on: liburcu, records.c.
 */
#include "cluster/cluster_impl.h"
#include "util/tsan.h"

#include <stdlib.h>
#include <string.h>
#include <urcu.h>

/* ---- RCU readers ---- */

static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static int reader_key_rc;
static __thread bool reader_registered;

/* Runs in an exiting thread the cache registered. */
static void reader_exit(void *arg)
{
	(void)arg;
	rcu_unregister_thread();
	reader_registered = false;
}

static void reader_key_create(void)
{
	reader_key_rc = pthread_key_create(&reader_key, reader_exit);
}

int cache_setup(bf_err *err)
{
	pthread_once(&reader_once, reader_key_create);
	return reader_key_rc ? bf_errf(err, -reader_key_rc,
				       "region cache: no thread key for RCU readers") : 0;
}

bool cache_read_lock(void)
{
	bool temporary = false;

	/* A thread its owner registered itself is left alone: registering it
	 * twice would trip liburcu's assertion. */
	if (!reader_registered && !URCU_TLS(urcu_memb_reader).registered) {
		/* The exit hook goes in first: a thread that stayed registered
		 * after exiting would stall every grace period after it. */
		if (pthread_setspecific(reader_key, &reader_registered) == 0)
			reader_registered = true;
		else
			temporary = true; /* no memory for the hook: this read only */
		rcu_register_thread();
	}
	rcu_read_lock();
	return temporary;
}

/* Only its address matters: every read-side section's end releases on it
 * and the end of a grace period acquires it, the ordering liburcu gives
 * but ThreadSanitizer cannot see. */
static char grace_edge;

void cache_read_unlock(bool temporary)
{
	BF_TSAN_RELEASE(&grace_edge);
	rcu_read_unlock();
	if (temporary)
		rcu_unregister_thread();
}

void cache_synchronize(void)
{
	synchronize_rcu();
	BF_TSAN_ACQUIRE(&grace_edge);
}

/* ---- snapshots ---- */

/* a's epoch is newer than b's: version first (splits and merges), then
 * conf_ver (peer changes), as PD and TiKV compare them. */
static bool epoch_newer(const creg *a, const creg *b)
{
	return a->version > b->version || (a->version == b->version && a->conf_ver > b->conf_ver);
}

static bool overlap(const creg *a, const creg *b)
{
	bool a_before_b_end = b->end_len == 0 ||
			      cluster_key_cmp(creg_start(a), a->start_len, creg_end(b), b->end_len) < 0;
	bool b_before_a_end = a->end_len == 0 ||
			      cluster_key_cmp(creg_start(b), b->start_len, creg_end(a), a->end_len) < 0;
	return a_before_b_end && b_before_a_end;
}

static int by_start(const void *x, const void *y)
{
	const creg *a = x, *b = y;
	int c = cluster_key_cmp(creg_start(a), a->start_len, creg_start(b), b->start_len);
	return c ? c : (a->id > b->id) - (a->id < b->id);
}

static int by_region_id(const void *x, const void *y)
{
	const creg *a = x, *b = y;
	if (a->id != b->id)
		return (a->id > b->id) - (a->id < b->id);
	/* The newer of two records of one region first. */
	return epoch_newer(a, b) ? -1 : epoch_newer(b, a) ? 1 : 0;
}

static int by_indexed_id(const void *x, const void *y, void *regions)
{
	uint64_t a = ((const creg *)regions)[*(const size_t *)x].id;
	uint64_t b = ((const creg *)regions)[*(const size_t *)y].id;
	return (a > b) - (a < b);
}

static int by_store_id(const void *x, const void *y)
{
	const bf_cluster_store *a = x, *b = y;
	return (a->id > b->id) - (a->id < b->id);
}

/* Keeps rs[i] where keep[i], in order, and frees the others. */
static size_t drop_unkept(creg *rs, size_t n, const bool *keep)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		if (keep[i])
			rs[m++] = rs[i];
		else
			creg_free(&rs[i]);
	}
	return m;
}

/* Sorted by start, one region per id, no overlaps: the newer epoch stays. */
static int normalize(creg *rs, size_t *n)
{
	bool *keep = malloc(*n + 1);
	size_t last = 0;
	bool have_last = false;

	if (!keep)
		return BF_ENOMEM;
	qsort(rs, *n, sizeof(*rs), by_region_id);
	for (size_t i = 0; i < *n; i++)
		keep[i] = i == 0 || rs[i].id != rs[i - 1].id;
	*n = drop_unkept(rs, *n, keep);

	qsort(rs, *n, sizeof(*rs), by_start);
	/* Kept regions do not overlap and are sorted, so a region can only
	 * overlap the last one kept before it. */
	for (size_t i = 0; i < *n; i++) {
		keep[i] = true;
		if (have_last && overlap(&rs[last], &rs[i])) {
			if (epoch_newer(&rs[i], &rs[last])) {
				keep[last] = false;
			} else {
				keep[i] = false;
				continue;
			}
		}
		last = i;
		have_last = true;
	}
	*n = drop_unkept(rs, *n, keep);
	free(keep);
	return 0;
}

static void free_regions(creg *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		creg_free(&rs[i]);
	free(rs);
}

int snap_new(int64_t revision, creg *regions, size_t nregions, bf_cluster_store *stores,
	     size_t nstores, snap **out)
{
	snap *s = calloc(1, sizeof(*s));
	int rc = s ? normalize(regions, &nregions) : BF_ENOMEM;

	*out = NULL;
	if (rc == 0 && !(s->by_id = malloc((nregions + 1) * sizeof(*s->by_id))))
		rc = BF_ENOMEM;
	if (rc) {
		free(s);
		free_regions(regions, nregions);
		free(stores);
		return rc;
	}
	s->revision = revision;
	s->regions = regions;
	s->nregions = nregions;
	for (size_t i = 0; i < nregions; i++)
		s->by_id[i] = i;
	qsort_r(s->by_id, nregions, sizeof(*s->by_id), by_indexed_id, regions);
	s->stores = stores;
	s->nstores = nstores;
	qsort(s->stores, nstores, sizeof(*s->stores), by_store_id);
	*out = s;
	return 0;
}

void snap_free(snap *s)
{
	if (!s)
		return;
	free_regions(s->regions, s->nregions);
	free(s->by_id);
	free(s->stores);
	free(s);
}

/* How many regions start at or before k (the first of them at 0). */
static size_t starting_by(const snap *s, const void *k, size_t klen)
{
	size_t lo = 0, hi = s->nregions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const creg *r = &s->regions[mid];
		if (cluster_key_cmp(creg_start(r), r->start_len, k, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

long snap_locate(const snap *s, const void *k, size_t klen)
{
	size_t n = starting_by(s, k, klen);
	const creg *r = n ? &s->regions[n - 1] : NULL;

	/* The last region starting at or before k holds it, unless k lies
	 * past its end (a gap left by what was learned). */
	if (!r || (r->end_len && cluster_key_cmp(k, klen, creg_end(r), r->end_len) >= 0))
		return -1;
	return (long)(n - 1);
}

long snap_first_from(const snap *s, const void *k, size_t klen)
{
	long at = snap_locate(s, k, klen);

	return at >= 0 ? at : (long)starting_by(s, k, klen);
}

long snap_find_id(const snap *s, uint64_t id)
{
	size_t lo = 0, hi = s->nregions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t at = s->regions[s->by_id[mid]].id;
		if (at == id)
			return (long)s->by_id[mid];
		if (at < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

long snap_find_store(const snap *s, uint64_t id)
{
	size_t lo = 0, hi = s->nstores;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->stores[mid].id == id)
			return (long)mid;
		if (s->stores[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* A copy of s's regions and stores, for a new snapshot; extra free slots
 * at the end of the regions. */
static int snap_copy(const snap *s, size_t extra, creg **regions, size_t *n,
		     bf_cluster_store **stores)
{
	*regions = calloc(s->nregions + extra + 1, sizeof(**regions));
	*stores = malloc((s->nstores + 1) * sizeof(**stores));
	*n = 0;
	if (!*regions || !*stores)
		goto fail;
	for (; *n < s->nregions; (*n)++)
		if (creg_copy(&(*regions)[*n], &s->regions[*n]))
			goto fail;
	if (s->nstores)
		memcpy(*stores, s->stores, s->nstores * sizeof(**stores));
	return 0;
fail:
	if (*regions)
		free_regions(*regions, *n);
	free(*stores);
	*regions = NULL;
	*stores = NULL;
	return BF_ENOMEM;
}

static bool has_peer_on(const creg *r, uint64_t store_id)
{
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i].store_id == store_id)
			return true;
	return false;
}

static bool region_usable(const bf_region *r)
{
	return r->id && r->npeers >= 1 && r->npeers <= BF_CLUSTER_MAX_REPLICAS &&
	       r->start_len <= BF_CLUSTER_KEY_MAX && r->end_len <= BF_CLUSTER_KEY_MAX &&
	       (r->end_len == 0 || cluster_key_cmp(r->start, r->start_len, r->end, r->end_len) < 0);
}

/*
 * Whether learned region l replaces what rs[0..n) holds: not when the
 * cache has the same region at an epoch as new, nor when a region it
 * overlaps has a higher version (l is then older than a split or merge
 * already known). A replaced region's leader is kept when l names none.
 */
static bool learn_wins(const creg *rs, size_t n, creg *l)
{
	for (size_t i = 0; i < n; i++) {
		const creg *c = &rs[i];
		if (c->id == l->id) {
			if (!epoch_newer(l, c))
				return false;
			if (!has_peer_on(l, l->leader_store) && has_peer_on(l, c->leader_store))
				l->leader_store = c->leader_store;
		} else if (overlap(c, l) && c->version > l->version) {
			return false;
		}
	}
	return true;
}

snap *snap_learn_regions(const snap *s, const bf_region *r, size_t n)
{
	creg *rs = NULL;
	bf_cluster_store *stores = NULL;
	size_t nrs = 0, added = 0;
	snap *next = NULL;

	if (!n || snap_copy(s, n, &rs, &nrs, &stores))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		creg l;
		if (!region_usable(&r[i]) || creg_from_region(&l, &r[i]))
			continue;
		if (!has_peer_on(&l, l.leader_store))
			l.leader_store = 0;
		if (!learn_wins(rs, nrs, &l)) {
			creg_free(&l);
			continue;
		}
		/* What it replaces goes: the same region and what it overlaps. */
		size_t m = 0;
		for (size_t j = 0; j < nrs; j++) {
			if (rs[j].id == l.id || overlap(&rs[j], &l))
				creg_free(&rs[j]);
			else
				rs[m++] = rs[j];
		}
		nrs = m;
		rs[nrs++] = l;
		added++;
	}
	if (!added) {
		free_regions(rs, nrs);
		free(stores);
		return NULL;
	}
	if (snap_new(s->revision, rs, nrs, stores, s->nstores, &next))
		return NULL;
	return next;
}

snap *snap_learn_leader(const snap *s, uint64_t region_id, uint64_t store_id)
{
	long at = snap_find_id(s, region_id);
	creg *rs = NULL;
	bf_cluster_store *stores = NULL;
	size_t nrs = 0;
	snap *next = NULL;

	/* A hint naming a store that is not a peer comes from a layout newer
	 * than the cache: a refresh, not this, brings it in. */
	if (at < 0 || s->regions[at].leader_store == store_id ||
	    !has_peer_on(&s->regions[at], store_id))
		return NULL;
	if (snap_copy(s, 0, &rs, &nrs, &stores))
		return NULL;
	rs[at].leader_store = store_id;
	if (snap_new(s->revision, rs, nrs, stores, s->nstores, &next))
		return NULL;
	return next;
}
