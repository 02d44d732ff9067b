/*
 * The ingest backend: per-index sort engines in generations, the writers
 * that fill them, and sealing a generation for import (see
 * include/bfill/ingest.h and ingest/backend_impl.h). Import rounds are in
 * ingest/import.c.
 * Depends on engine (engines, sort buffers), lock, ingest/target and util.
 */
#include "ingest/backend_impl.h"
#include "bfill/fault.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMPORT_THREADS 16

static void engine_dir(const bf_backend *b, int i, uint64_t gen, char *out, size_t n)
{
	snprintf(out, n, "%s/idx-%" PRId64 "-g%" PRIu64, b->job_dir, b->idx[i].id, gen);
}

static int open_engine(bf_backend *b, int i, uint64_t gen, bf_engine **out, bf_err *err)
{
	bf_engine_opts eo = { .run_compression = b->o.run_compression };
	char dir[PATH_MAX];
	engine_dir(b, i, gen, dir, sizeof(dir));
	return bf_engine_open(dir, &eo, out, err);
}

bf_engine *backend_engine(bf_backend *b, int i, uint64_t gen)
{
	backend_index *x = &b->idx[i];
	if (gen == atomic_load(&b->gen))
		return x->engine;
	if (gen >= b->first_gen && gen - b->first_gen < x->nsealed)
		return x->sealed[gen - b->first_gen];
	return NULL;
}

/* Room for one more sealed engine, reserved before the writers are held. */
static int reserve_sealed(backend_index *x, bf_err *err)
{
	if (x->nsealed < x->sealed_cap)
		return 0;
	size_t cap = x->sealed_cap ? x->sealed_cap * 2 : 4;
	bf_engine **s = realloc(x->sealed, cap * sizeof(*s));
	if (!s)
		return bf_errf(err, BF_ENOMEM, "backend: out of memory");
	x->sealed = s;
	x->sealed_cap = cap;
	return 0;
}

/* Opens the generations a resumed job left: first_gen .. gen-1 sealed,
 * gen being filled. */
static int open_generations(bf_backend *b, bf_err *err)
{
	uint64_t gen = atomic_load(&b->gen);
	int rc = 0;
	for (int i = 0; i < b->n && rc == 0; i++) {
		backend_index *x = &b->idx[i];
		for (uint64_t g = b->first_gen; g < gen && rc == 0; g++) {
			rc = reserve_sealed(x, err);
			if (rc == 0)
				rc = open_engine(b, i, g, &x->sealed[x->nsealed], err);
			if (rc == 0)
				x->nsealed++;
		}
		if (rc == 0)
			rc = open_engine(b, i, gen, &x->engine, err);
	}
	return rc;
}

/* The lock's callbacks carry the index, so the job knows which lease is
 * whose; they forward to the job's own. */
static void index_on_wait(const char *reason, void *arg)
{
	backend_index *x = arg;
	if (x->b->o.lock.on_wait)
		x->b->o.lock.on_wait(reason, x->b->o.lock.on_wait_arg);
}

static void index_on_session(int64_t lease, void *arg)
{
	backend_index *x = arg;
	if (x->b->o.on_lease)
		x->b->o.on_lease(x->pos, lease, x->b->o.lock.on_wait_arg);
}

static int create_locks(bf_backend *b, bf_err *err)
{
	char scope[BF_FENCE_KEY_MAX];
	int rc = 0;

	if (b->o.lock_scope && *b->o.lock_scope)
		snprintf(scope, sizeof(scope), "%s", b->o.lock_scope);
	else
		snprintf(scope, sizeof(scope), "%" PRId64, b->o.job_id);
	for (int i = 0; i < b->n && rc == 0; i++) {
		backend_index *x = &b->idx[i];
		bf_lock_opts lo = b->o.lock;
		if ((size_t)snprintf(x->lock_name, sizeof(x->lock_name), "%s/%" PRId64, scope, x->id) >=
		    sizeof(x->lock_name))
			return bf_errf(err, BF_EINVAL, "backend: lock name %s/... is too long", scope);
		lo.on_wait = index_on_wait;
		lo.on_session = index_on_session;
		lo.on_wait_arg = x;
		rc = bf_lock_create(&lo, &x->lock, err);
		if (rc == 0 && b->o.stale_leases && b->o.stale_leases[i])
			bf_lock_revoke_stale(x->lock, b->o.stale_leases[i]);
	}
	return rc;
}

int bf_backend_open(const bf_backend_opts *opts, bf_backend **out, bf_err *err)
{
	bf_backend *b = calloc(1, sizeof(*b));
	pthread_rwlockattr_t ra;
	int rc = 0;

	*out = NULL;
	if (!b)
		return bf_errf(err, BF_ENOMEM, "backend: out of memory");
	if (opts->nindexes < 1 || opts->nindexes > BF_BACKEND_MAX_INDEXES || !opts->target ||
	    opts->first_gen > opts->generation) {
		free(b);
		return bf_errf(err, BF_EINVAL, "backend: a target, 1..%d indexes and first_gen <= generation",
			       BF_BACKEND_MAX_INDEXES);
	}
	b->o = *opts;
	/* A target a cancelled job left cancelled works again for this one. */
	bf_target_cancel(opts->target, false);
	snprintf(b->job_dir, sizeof(b->job_dir), "%s", opts->job_dir);
	b->o.job_dir = b->job_dir;
	b->o.indexes = NULL;
	b->o.lock_scope = NULL; /* used once, below, while the caller's string lives */
	b->o.stale_leases = NULL;
	snprintf(b->lock_endpoints, sizeof(b->lock_endpoints), "%s",
		 opts->lock.endpoints ? opts->lock.endpoints : "");
	snprintf(b->lock_prefix, sizeof(b->lock_prefix), "%s",
		 opts->lock.prefix ? opts->lock.prefix : "/bfill/lock");
	b->o.lock.endpoints = b->lock_endpoints;
	b->o.lock.prefix = b->lock_prefix;
	if (!b->o.max_sst_bytes)
		b->o.max_sst_bytes = BF_IMPORT_MAX_BYTES;
	if (!b->o.max_sst_keys)
		b->o.max_sst_keys = BF_IMPORT_MAX_KEYS;
	if (b->o.import_threads <= 0)
		b->o.import_threads = bf_ncpu();
	if (b->o.import_threads > MAX_IMPORT_THREADS)
		b->o.import_threads = MAX_IMPORT_THREADS;
	atomic_init(&b->gen, opts->generation);
	b->first_gen = opts->first_gen;
	b->stats.first_gen = opts->first_gen;
	b->n = opts->nindexes;
	pthread_rwlockattr_init(&ra);
	/* A seal must not starve behind a stream of writers' batches. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&b->flush_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&b->mu, NULL);
	for (int i = 0; i < b->n; i++) {
		b->idx[i].b = b;
		b->idx[i].pos = i;
		b->idx[i].id = opts->indexes[i].index_id;
		b->idx[i].unique = opts->indexes[i].unique;
	}
	rc = bf_mkdirs(b->job_dir, err);
	if (rc == 0)
		rc = open_generations(b, err);
	if (rc == 0) {
		b->o.lock_scope = opts->lock_scope;
		b->o.stale_leases = opts->stale_leases;
		rc = create_locks(b, err);
		b->o.lock_scope = NULL;
		b->o.stale_leases = NULL;
	}
	b->o.lock.etcd_security = NULL; /* read by the locks' creates, not kept */
	if (rc) {
		bf_backend_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

void bf_backend_close(bf_backend *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->n; i++) {
		backend_index *x = &b->idx[i];
		if (x->held)
			bf_lock_release(x->lock, NULL);
		bf_lock_destroy(x->lock);
		bf_engine_close(x->engine);
		for (size_t k = 0; k < x->nsealed; k++)
			bf_engine_close(x->sealed[k]);
		free(x->sealed);
	}
	pthread_rwlock_destroy(&b->flush_lock);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

int bf_backend_remove_engines(bf_backend *b, bf_err *err)
{
	int rc = 0;
	for (int i = 0; i < b->n; i++) {
		backend_index *x = &b->idx[i];
		for (size_t k = 0; k <= x->nsealed; k++) {
			bf_engine *e = k < x->nsealed ? x->sealed[k] : x->engine;
			int r = e ? bf_engine_remove(e, NULL, err) : 0;
			if (r && !rc)
				rc = r;
		}
		x->engine = NULL;
		x->nsealed = 0;
	}
	return rc;
}

void bf_backend_stats_get(bf_backend *b, bf_backend_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->stats;
	pthread_mutex_unlock(&b->mu);
	out->runs = atomic_load(&b->runs);
	out->generation = atomic_load(&b->gen);
}

void bf_backend_cancel(bf_backend *b)
{
	atomic_store(&b->cancelled, 1);
	bf_target_cancel(b->o.target, true);
	for (int i = 0; i < b->n; i++)
		if (b->idx[i].lock)
			bf_lock_cancel(b->idx[i].lock);
}

uint64_t bf_backend_pending_bytes(bf_backend *b) { return atomic_load(&b->pending); }

/* ---- writers ---- */

int bf_backend_writer_create(bf_backend *b, size_t budget, bf_backend_writer **out, bf_err *err)
{
	bf_backend_writer *w = calloc(1, sizeof(*w));
	int rc = 0;

	*out = NULL;
	if (!w)
		return bf_errf(err, BF_ENOMEM, "backend: out of memory");
	w->b = b;
	pthread_mutex_init(&w->mu, NULL);
	w->gen = atomic_load(&b->gen);
	for (int i = 0; i < b->n && rc == 0; i++)
		rc = bf_sortbuf_create(budget / (size_t)b->n, &w->bufs[i], err);
	pthread_mutex_lock(&b->mu);
	if (rc == 0 && b->nwriters == MAX_WRITERS)
		rc = bf_errf(err, BF_EINVAL, "backend: more than %d writers", MAX_WRITERS);
	w->buf_budget = budget / (size_t)b->n;
	if (rc == 0)
		b->writers[b->nwriters++] = w;
	pthread_mutex_unlock(&b->mu);
	if (rc) {
		bf_backend_writer_destroy(w);
		return rc;
	}
	*out = w;
	return 0;
}

void bf_backend_writer_destroy(bf_backend_writer *w)
{
	bf_backend *b;
	if (!w)
		return;
	b = w->b;
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < b->nwriters; i++) {
		if (b->writers[i] == w) {
			b->writers[i] = b->writers[--b->nwriters];
			break;
		}
	}
	pthread_mutex_unlock(&b->mu);
	for (int i = 0; i < b->n; i++)
		bf_sortbuf_destroy(w->bufs[i]);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

uint64_t bf_backend_writer_flushes(bf_backend_writer *w) { return atomic_load(&w->flushes); }

/* Writes the writer's buffers as runs of the generation they belong to;
 * the caller holds w->mu. */
static int writer_flush(bf_backend_writer *w, bf_err *err)
{
	bf_backend *b = w->b;
	for (int i = 0; i < b->n; i++) {
		bool empty = bf_sortbuf_count(w->bufs[i]) == 0;
		bf_engine *e = backend_engine(b, i, w->gen);
		if (empty)
			continue;
		if (!e)
			return bf_errf(err, BF_ESTATE, "index %" PRId64 ": generation %" PRIu64 " is gone",
				       b->idx[i].id, w->gen);
		int rc = bf_engine_write_run(e, w->bufs[i], err);
		if (rc)
			return bf_err_prefix(err, rc, "index %" PRId64, b->idx[i].id);
		atomic_fetch_add(&b->runs, 1);
	}
	atomic_fetch_add(&w->flushes, 1);
	return 0;
}

/* Catches the writer up with the generation being filled: entries of a
 * sealed generation become a run of it first. Caller holds w->mu. */
static int writer_catch_up(bf_backend_writer *w, bf_err *err)
{
	uint64_t gen = atomic_load(&w->b->gen);
	int rc = 0;
	if (w->gen != gen) {
		rc = writer_flush(w, err);
		if (rc == 0)
			w->gen = gen;
	}
	return rc;
}

int bf_backend_writer_begin(bf_backend_writer *w, bf_err *err)
{
	int rc;
	pthread_rwlock_rdlock(&w->b->flush_lock);
	pthread_mutex_lock(&w->mu);
	rc = writer_catch_up(w, err);
	if (rc) {
		pthread_mutex_unlock(&w->mu);
		pthread_rwlock_unlock(&w->b->flush_lock);
	}
	return rc;
}

void bf_backend_writer_end(bf_backend_writer *w)
{
	/* One shared update per batch, not per entry. */
	atomic_fetch_add(&w->b->pending, w->added);
	w->added = 0;
	pthread_mutex_unlock(&w->mu);
	pthread_rwlock_unlock(&w->b->flush_lock);
}

void bf_backend_writer_stagger(bf_backend_writer *w)
{
	for (int i = 0; i < w->b->n; i++)
		bf_sortbuf_limit(w->bufs[i], w->buf_budget / 2);
}

void bf_backend_writer_finish(bf_backend_writer *w)
{
	for (int i = 0; i < w->b->n; i++)
		bf_sortbuf_sort(w->bufs[i]);
}

int bf_backend_writer_put(bf_backend_writer *w, int ix, const void *key, size_t klen,
			  const void *val, size_t vlen, bf_err *err)
{
	w->added += klen + vlen;
	if (bf_sortbuf_add(w->bufs[ix], key, klen, val, vlen))
		return 0;
	int rc = writer_flush(w, err);
	if (rc)
		return rc;
	if (!bf_sortbuf_add(w->bufs[ix], key, klen, val, vlen))
		return bf_errf(err, BF_ENOMEM, "an index entry of %zu bytes does not fit the sort buffer",
			       klen + vlen);
	return 0;
}

/* ---- generations ---- */

/* Runs fn on every writer, each under its own lock, until one fails. */
static int each_writer(bf_backend *b, int (*fn)(bf_backend_writer *w, bf_err *err), bf_err *err)
{
	int rc = 0;
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < b->nwriters && rc == 0; i++) {
		bf_backend_writer *w = b->writers[i];
		pthread_mutex_lock(&w->mu);
		rc = fn(w, err);
		pthread_mutex_unlock(&w->mu);
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int backend_flush_writers(bf_backend *b, bf_err *err)
{
	return each_writer(b, writer_flush, err);
}

int backend_seal(bf_backend *b, bool flush_writers, bf_err *err)
{
	bf_engine *next[BF_BACKEND_MAX_INDEXES] = { 0 };
	uint64_t gen = atomic_load(&b->gen);
	int rc = 0;

	/* The slow part, opening the new engines, comes before the writers
	 * are held. */
	if (bf_fault_hit("engine.seal"))
		rc = bf_errf(err, BF_EFAULT, "backend: injected failure opening generation %" PRIu64,
			     gen + 1);
	for (int i = 0; i < b->n && rc == 0; i++)
		rc = open_engine(b, i, gen + 1, &next[i], err);
	int64_t t0 = bf_now_ns();
	pthread_rwlock_wrlock(&b->flush_lock);
	/* Writers look sealed engines up under the lock, so the arrays may
	 * only move while it is held exclusively. */
	for (int i = 0; i < b->n && rc == 0; i++)
		rc = reserve_sealed(&b->idx[i], err);
	if (rc == 0) {
		for (int i = 0; i < b->n; i++) {
			backend_index *x = &b->idx[i];
			x->sealed[x->nsealed++] = x->engine;
			x->engine = next[i];
		}
		atomic_store(&b->gen, gen + 1);
		/* Everything added so far is in what this import takes. */
		atomic_store(&b->pending, 0);
	}
	pthread_rwlock_unlock(&b->flush_lock);
	if (rc) {
		/* Nothing changed: the generation being filled goes on. */
		for (int i = 0; i < b->n; i++)
			if (next[i])
				bf_engine_remove(next[i], NULL, NULL);
		return rc;
	}
	pthread_mutex_lock(&b->mu);
	b->stats.seal_wait_us += (uint64_t)((bf_now_ns() - t0) / 1000);
	pthread_mutex_unlock(&b->mu);
	/* Idle writers' entries of the sealed generation are written here: a
	 * writer waiting for rows would otherwise hold them back from the
	 * import. */
	return flush_writers ? each_writer(b, writer_catch_up, err) : 0;
}

void backend_drop_sealed(bf_backend *b)
{
	bf_engine **gone[BF_BACKEND_MAX_INDEXES];
	size_t ngone[BF_BACKEND_MAX_INDEXES];

	/* Detached in an instant under the writers' lock (a writer resolves
	 * its generation's engine under it); closed and deleted after. */
	pthread_rwlock_wrlock(&b->flush_lock);
	for (int i = 0; i < b->n; i++) {
		backend_index *x = &b->idx[i];
		gone[i] = x->sealed;
		ngone[i] = x->nsealed;
		x->sealed = NULL;
		x->nsealed = x->sealed_cap = 0;
	}
	b->first_gen = atomic_load(&b->gen);
	pthread_rwlock_unlock(&b->flush_lock);
	for (int i = 0; i < b->n; i++) {
		/* The import is committed: a directory that will not go away is
		 * only disk space, and a resume removes what it does not need. */
		for (size_t k = 0; k < ngone[i]; k++)
			bf_engine_remove(gone[i][k], NULL, NULL);
		free(gone[i]);
	}
}
