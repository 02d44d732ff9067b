/*
 * The ingest backend: per-index sort engines, the writers that fill them,
 * and the flush/import that moves them into the target store under the
 * import lock, with fencing before and after every ingest step.
 * Depends on engine (engines, export, store), lock and util.
 */
#include "bfill/ingest.h"
#include "bfill/codec.h"
#include "bfill/fault.h"
#include "util/util.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WRITERS 128
#define MAX_IMPORT_THREADS 16
#define DUP_KEY_MAX 4096
#define HANDLE_SUFFIX 8
#define FENCE_RETRY_MS 200

typedef struct backend_index {
	int64_t id;
	bool unique;
	bf_engine *engine;
	bf_lock *lock;
	bool held;
	char lock_name[64];
} backend_index;

struct bf_backend_writer {
	bf_backend *b;
	bf_sortbuf *bufs[BF_BACKEND_MAX_INDEXES];
	atomic_uint_fast64_t flushes;
	uint64_t added; /* bytes added in the current begin/end span */
};

struct bf_backend {
	bf_backend_opts o;
	char job_dir[PATH_MAX];
	char lock_endpoints[512], lock_prefix[256];
	int n;
	backend_index idx[BF_BACKEND_MAX_INDEXES];
	pthread_rwlock_t flush_lock;
	pthread_mutex_t mu; /* writers list and stats */
	bf_backend_writer *writers[MAX_WRITERS];
	int nwriters;
	bf_backend_stats stats;
	atomic_int cancelled;
	atomic_uint_fast64_t pending; /* bytes added since the last import */
	atomic_uint_fast64_t runs;    /* runs written, all engines and generations */
	int dup_index;
	uint8_t dup_key[DUP_KEY_MAX];
	size_t dup_len;
};

static void engine_dir(const bf_backend *b, int i, uint64_t gen, char *out, size_t n)
{
	snprintf(out, n, "%s/idx-%" PRId64 "-g%" PRIu64, b->job_dir, b->idx[i].id, gen);
}

static int open_engines(bf_backend *b, bf_err *err)
{
	bf_engine_opts eo = { .run_compression = b->o.run_compression };
	char dir[PATH_MAX];
	for (int i = 0; i < b->n; i++) {
		engine_dir(b, i, b->stats.generation, dir, sizeof(dir));
		int rc = bf_engine_open(dir, &eo, &b->idx[i].engine, err);
		if (rc)
			return rc;
	}
	return 0;
}

int bf_backend_open(const bf_backend_opts *opts, bf_backend **out, bf_err *err)
{
	bf_backend *b = calloc(1, sizeof(*b));
	pthread_rwlockattr_t ra;
	int rc = 0;

	*out = NULL;
	if (!b)
		return bf_errf(err, BF_ENOMEM, "backend: out of memory");
	if (opts->nindexes < 1 || opts->nindexes > BF_BACKEND_MAX_INDEXES) {
		free(b);
		return bf_errf(err, BF_EINVAL, "backend: 1..%d indexes per job", BF_BACKEND_MAX_INDEXES);
	}
	b->o = *opts;
	snprintf(b->job_dir, sizeof(b->job_dir), "%s", opts->job_dir);
	b->o.job_dir = b->job_dir;
	b->o.indexes = NULL;
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
	b->stats.generation = opts->generation;
	b->n = opts->nindexes;
	pthread_rwlockattr_init(&ra);
	/* A flush must not starve behind a stream of writers' batches. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&b->flush_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&b->mu, NULL);
	for (int i = 0; i < b->n; i++) {
		b->idx[i].id = opts->indexes[i].index_id;
		b->idx[i].unique = opts->indexes[i].unique;
		snprintf(b->idx[i].lock_name, sizeof(b->idx[i].lock_name), "%" PRId64 "/%" PRId64,
			 opts->job_id, b->idx[i].id);
	}
	rc = bf_mkdirs(b->job_dir, err);
	if (rc == 0)
		rc = open_engines(b, err);
	for (int i = 0; rc == 0 && i < b->n; i++)
		rc = bf_lock_create(&b->o.lock, &b->idx[i].lock, err);
	if (rc) {
		bf_backend_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

static void release_locks(bf_backend *b)
{
	int64_t t0 = bf_now_ms();
	for (int i = 0; i < b->n; i++) {
		if (b->idx[i].held) {
			bf_lock_release(b->idx[i].lock, NULL);
			b->idx[i].held = false;
		}
	}
	pthread_mutex_lock(&b->mu);
	b->stats.lock_release_ms += (uint64_t)(bf_now_ms() - t0);
	pthread_mutex_unlock(&b->mu);
}

void bf_backend_close(bf_backend *b)
{
	if (!b)
		return;
	release_locks(b);
	for (int i = 0; i < b->n; i++) {
		bf_lock_destroy(b->idx[i].lock);
		bf_engine_close(b->idx[i].engine);
	}
	pthread_rwlock_destroy(&b->flush_lock);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

int bf_backend_remove_engines(bf_backend *b, bf_err *err)
{
	int rc = 0;
	for (int i = 0; i < b->n; i++) {
		int r = bf_engine_remove(b->idx[i].engine, NULL, err);
		b->idx[i].engine = NULL;
		if (r && !rc)
			rc = r;
	}
	return rc;
}

void bf_backend_stats_get(bf_backend *b, bf_backend_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->stats;
	pthread_mutex_unlock(&b->mu);
	out->runs = atomic_load(&b->runs);
}

void bf_backend_cancel(bf_backend *b)
{
	atomic_store(&b->cancelled, 1);
	for (int i = 0; i < b->n; i++)
		if (b->idx[i].lock)
			bf_lock_cancel(b->idx[i].lock);
}

/* ---- writers ---- */

int bf_backend_writer_create(bf_backend *b, size_t budget, bf_backend_writer **out, bf_err *err)
{
	bf_backend_writer *w = calloc(1, sizeof(*w));
	int rc = 0;

	*out = NULL;
	if (!w)
		return bf_errf(err, BF_ENOMEM, "backend: out of memory");
	w->b = b;
	for (int i = 0; i < b->n && rc == 0; i++)
		rc = bf_sortbuf_create(budget / (size_t)b->n, &w->bufs[i], err);
	pthread_mutex_lock(&b->mu);
	if (rc == 0 && b->nwriters == MAX_WRITERS)
		rc = bf_errf(err, BF_EINVAL, "backend: more than %d writers", MAX_WRITERS);
	if (rc == 0)
		b->writers[b->nwriters++] = w;
	pthread_mutex_unlock(&b->mu);
	if (rc) {
		for (int i = 0; i < b->n; i++)
			bf_sortbuf_destroy(w->bufs[i]);
		free(w);
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
	free(w);
}

void bf_backend_writer_begin(bf_backend_writer *w) { pthread_rwlock_rdlock(&w->b->flush_lock); }

void bf_backend_writer_end(bf_backend_writer *w)
{
	/* One shared update per batch, not per entry. */
	atomic_fetch_add(&w->b->pending, w->added);
	w->added = 0;
	pthread_rwlock_unlock(&w->b->flush_lock);
}

uint64_t bf_backend_pending_bytes(bf_backend *b) { return atomic_load(&b->pending); }
uint64_t bf_backend_writer_flushes(bf_backend_writer *w) { return atomic_load(&w->flushes); }

int bf_backend_writer_flush(bf_backend_writer *w, bf_err *err)
{
	bf_backend *b = w->b;
	for (int i = 0; i < b->n; i++) {
		bool empty = bf_sortbuf_count(w->bufs[i]) == 0;
		int rc = bf_engine_write_run(b->idx[i].engine, w->bufs[i], err);
		if (rc)
			return bf_err_prefix(err, rc, "index %" PRId64, b->idx[i].id);
		if (!empty)
			atomic_fetch_add(&b->runs, 1);
	}
	atomic_fetch_add(&w->flushes, 1);
	return 0;
}

void bf_backend_writer_seal(bf_backend_writer *w)
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
	int rc = bf_backend_writer_flush(w, err);
	if (rc)
		return rc;
	if (!bf_sortbuf_add(w->bufs[ix], key, klen, val, vlen))
		return bf_errf(err, BF_ENOMEM, "an index entry of %zu bytes does not fit the sort buffer",
			       klen + vlen);
	return 0;
}

/* Every writer's buffers to the engines; caller holds flush_lock
 * exclusively, so no writer is between begin and end. */
static int flush_all_writers(bf_backend *b, bf_err *err)
{
	int rc = 0;
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < b->nwriters && rc == 0; i++)
		rc = bf_backend_writer_flush(b->writers[i], err);
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/* ---- import ---- */

typedef struct export_part {
	bf_backend *b;
	int ix;
	int part;
	uint8_t *lo, *hi;
	size_t lolen, hilen;
	pthread_mutex_t *files_mu;
	char ***files;
	size_t *nfiles, *cap;
	atomic_int *stop;
	bf_sortbuf *const *extra;
	int nextra;
	uint64_t keys, bytes;
	uint8_t dup[DUP_KEY_MAX];
	size_t duplen;
	int rc;
	bf_err err;
	pthread_t thread;
} export_part;

static int collect_file(const char *path, uint64_t keys, uint64_t bytes, void *arg, bf_err *err)
{
	export_part *p = arg;
	int rc = 0;
	(void)keys;
	(void)bytes;
	pthread_mutex_lock(p->files_mu);
	if (*p->nfiles == *p->cap) {
		size_t cap = *p->cap ? *p->cap * 2 : 16;
		char **f = realloc(*p->files, cap * sizeof(*f));
		if (!f)
			rc = bf_errf(err, BF_ENOMEM, "import: out of memory");
		else {
			*p->files = f;
			*p->cap = cap;
		}
	}
	if (rc == 0) {
		(*p->files)[*p->nfiles] = strdup(path);
		if ((*p->files)[*p->nfiles])
			(*p->nfiles)++;
		else
			rc = bf_errf(err, BF_ENOMEM, "import: out of memory");
	}
	pthread_mutex_unlock(p->files_mu);
	return rc;
}

static void *export_thread(void *arg)
{
	export_part *p = arg;
	bf_backend *b = p->b;
	char tag[64], outdir[PATH_MAX];
	snprintf(tag, sizeof(tag), "i%" PRId64 "-p%02d", b->idx[p->ix].id, p->part);
	snprintf(outdir, sizeof(outdir), "%s/import", b->job_dir);
	bf_export_opts eo = {
		.lo = p->lo, .lolen = p->lolen, .hi = p->hi, .hilen = p->hilen,
		.out_dir = outdir, .file_tag = tag,
		.max_bytes = b->o.max_sst_bytes, .max_keys = b->o.max_sst_keys,
		.compression = b->o.target_compression,
		.handle_suffix = b->idx[p->ix].unique,
		.dup_key = p->dup, .dup_key_cap = sizeof(p->dup),
		.existing = b->idx[p->ix].unique && (b->o.has_imported || b->stats.imports > 0)
				    ? b->o.store : NULL,
		.on_file = collect_file, .arg = p, .stop = (volatile int *)p->stop,
		.extra = p->extra, .nextra = p->nextra,
	};
	p->rc = bf_engine_export(b->idx[p->ix].engine, &eo, &p->keys, &p->bytes, &p->err);
	p->duplen = eo.dup_key_len;
	if (p->rc)
		atomic_store(p->stop, 1);
	return NULL;
}

static int fence(bf_backend *b, int ix, const char *when, bf_err *err)
{
	int rc = bf_lock_check(b->idx[ix].lock, err);
	if (rc)
		return bf_err_prefix(err, BF_ELOCKLOST, "import of index %" PRId64 " stopped %s",
				     b->idx[ix].id, when);
	return 0;
}

static void remove_files(char **files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		remove(files[i]);
		free(files[i]);
	}
	free(files);
}

/* Exports index ix's engine (plus, for the last import, the writers'
 * sorted buffers) in parallel parts and ingests the files in one atomic
 * step, fenced before and after. */
static int import_index(bf_backend *b, int ix, bool last, bf_err *err)
{
	bf_sortbuf *extra[MAX_WRITERS];
	int nextra = 0;
	export_part parts[MAX_IMPORT_THREADS];
	pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;
	char **files = NULL, outdir[PATH_MAX];
	size_t nfiles = 0, cap = 0;
	uint8_t **splits = NULL;
	size_t *splitlens = NULL;
	int nsplits = 0, nparts, started = 0, rc;
	atomic_int stop = 0;
	uint64_t keys = 0, bytes = 0;
	bf_engine *e = b->idx[ix].engine;

	memset(parts, 0, sizeof(parts));
	snprintf(outdir, sizeof(outdir), "%s/import", b->job_dir);
	rc = bf_mkdirs(outdir, err);
	if (rc)
		goto out;
	if (last) {
		pthread_mutex_lock(&b->mu);
		for (int w = 0; w < b->nwriters; w++)
			if (bf_sortbuf_count(b->writers[w]->bufs[ix]))
				extra[nextra++] = b->writers[w]->bufs[ix];
		pthread_mutex_unlock(&b->mu);
	}
	if (nextra == 0 && bf_engine_keys(e) == 0 && bf_engine_runs(e) == 0 && bf_engine_bytes(e) == 0)
		goto out;
	rc = bf_engine_split_keys(e, extra, nextra, b->o.import_threads,
				  b->idx[ix].unique ? HANDLE_SUFFIX : 0, &splits, &splitlens, &nsplits, err);
	if (rc)
		goto out;
	nparts = nsplits + 1;
	for (int i = 0; i < nparts; i++) {
		export_part *p = &parts[i];
		p->b = b;
		p->ix = ix;
		p->part = i;
		p->lo = i > 0 ? splits[i - 1] : NULL;
		p->lolen = i > 0 ? splitlens[i - 1] : 0;
		p->hi = i < nsplits ? splits[i] : NULL;
		p->hilen = i < nsplits ? splitlens[i] : 0;
		p->files_mu = &files_mu;
		p->files = &files;
		p->nfiles = &nfiles;
		p->cap = &cap;
		p->stop = &stop;
		p->extra = extra;
		p->nextra = nextra;
		if (pthread_create(&p->thread, NULL, export_thread, p)) {
			rc = bf_errf(err, BF_ENOMEM, "import: cannot start a thread");
			atomic_store(&stop, 1);
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(parts[i].thread, NULL);
	/* A duplicate explains everything else; then the first real error. */
	for (int i = 0; i < started && rc == 0; i++) {
		if (parts[i].rc == BF_EDUP) {
			rc = BF_EDUP;
			b->dup_index = ix;
			b->dup_len = parts[i].duplen;
			memcpy(b->dup_key, parts[i].dup, parts[i].duplen);
			bf_errf(err, rc, "duplicate entry in index %" PRId64, b->idx[ix].id);
		}
	}
	for (int i = 0; i < started && rc == 0; i++) {
		if (parts[i].rc && parts[i].rc != BF_ECANCELLED) {
			rc = parts[i].rc;
			if (err)
				*err = parts[i].err;
		}
	}
	if (rc == 0 && atomic_load(&b->cancelled))
		rc = bf_errf(err, BF_ECANCELLED, "import cancelled");
	if (rc)
		goto out;
	for (int i = 0; i < started; i++) {
		keys += parts[i].keys;
		bytes += parts[i].bytes;
	}
	if (nfiles == 0)
		goto out;
	bf_fault_pause("import.stall");
	rc = fence(b, ix, "before ingest", err);
	if (rc)
		goto out;
	if (bf_fault_hit("store.ingest")) {
		rc = bf_errf(err, BF_EFAULT, "store: injected ingest failure");
		goto out;
	}
	rc = bf_store_ingest(b->o.store, (const char *const *)files, nfiles, err);
	if (rc)
		goto out;
	pthread_mutex_lock(&b->mu);
	b->stats.imported_keys += keys;
	b->stats.imported_bytes += bytes;
	b->stats.sst_files += nfiles;
	pthread_mutex_unlock(&b->mu);
	/* The files were moved into the store; nothing left to remove. */
	for (size_t i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	files = NULL;
	nfiles = 0;
	rc = fence(b, ix, "after ingest", err);
out:
	remove_files(files, nfiles);
	for (int i = 0; i < nsplits; i++)
		free(splits[i]);
	free(splits);
	free(splitlens);
	return rc;
}

static int acquire_locks(bf_backend *b, bf_err *err)
{
	for (int i = 0; i < b->n; i++) {
		if (b->idx[i].held)
			continue;
		bf_fence_token token;
		int64_t t0 = bf_now_ms();
		int rc = bf_lock_acquire(b->idx[i].lock, b->idx[i].lock_name, &token, err);
		uint64_t waited = (uint64_t)(bf_now_ms() - t0);
		pthread_mutex_lock(&b->mu);
		b->stats.lock_wait_ms += waited;
		if (waited > b->stats.lock_wait_max_ms)
			b->stats.lock_wait_max_ms = waited;
		if (rc == 0)
			b->stats.lock_acquires++;
		pthread_mutex_unlock(&b->mu);
		if (rc)
			return rc;
		b->idx[i].held = true;
	}
	return 0;
}

/* After a successful import the engines start over empty, in a new
 * generation, so that a crash never mixes old and new data. */
static int reset_engines(bf_backend *b, bf_err *err)
{
	char dir[PATH_MAX];
	int rc;
	for (int i = 0; i < b->n; i++) {
		engine_dir(b, i, b->stats.generation - 1, dir, sizeof(dir));
		rc = bf_engine_remove(b->idx[i].engine, dir, err);
		b->idx[i].engine = NULL;
		if (rc)
			return rc;
	}
	return open_engines(b, err);
}

static int import_round(bf_backend *b, bool last, bf_backend_commit_fn commit, void *arg,
			bf_err *err)
{
	int rc = 0;

	pthread_rwlock_wrlock(&b->flush_lock);
	if (!last)
		rc = flush_all_writers(b, err);
	/* Everything added so far is in this import. */
	atomic_store(&b->pending, 0);
	for (int i = 0; rc == 0 && i < b->n; i++)
		rc = import_index(b, i, last, err);
	for (int i = 0; rc == 0 && i < b->n; i++)
		rc = fence(b, i, "before commit", err);
	if (rc == 0) {
		pthread_mutex_lock(&b->mu);
		b->stats.generation++;
		b->stats.imports++;
		pthread_mutex_unlock(&b->mu);
		if (commit)
			rc = commit(arg, err);
		if (rc == 0)
			rc = reset_engines(b, err);
		/* The buffers' entries are in the store now. */
		pthread_mutex_lock(&b->mu);
		for (int w = 0; rc == 0 && last && w < b->nwriters; w++)
			for (int i = 0; i < b->n; i++)
				bf_sortbuf_reset(b->writers[w]->bufs[i]);
		pthread_mutex_unlock(&b->mu);
	}
	pthread_rwlock_unlock(&b->flush_lock);
	return rc;
}

int bf_backend_flush(bf_backend *b, bf_flush_mode mode, bf_backend_commit_fn commit,
		     void *commit_arg, bool *imported, bf_err *err)
{
	bool last = mode == BF_FLUSH_IMPORT_LAST;
	int rc;

	*imported = false;
	int64_t first_loss = 0;
	for (;;) {
		if (atomic_load(&b->cancelled))
			return bf_errf(err, BF_ECANCELLED, "import cancelled");
		/* Locks first, without holding the backend: writers keep going
		 * however long etcd takes. */
		rc = acquire_locks(b, err);
		if (rc == 0)
			rc = import_round(b, last, commit, commit_arg, err);
		release_locks(b);
		if (rc != BF_ELOCKLOST)
			break;
		/* The lock was lost mid-import: nothing is committed, and a new
		 * holder may be importing. Start the round over, for as long as
		 * acquiring itself would be allowed to take. */
		pthread_mutex_lock(&b->mu);
		b->stats.fence_losses++;
		pthread_mutex_unlock(&b->mu);
		if (!first_loss)
			first_loss = bf_now_ms();
		int timeout_s = b->o.lock.timeout_s > 0 ? b->o.lock.timeout_s : 60;
		if (bf_now_ms() - first_loss > (int64_t)timeout_s * 1000)
			break;
		bf_sleep_ms(FENCE_RETRY_MS);
	}
	if (rc == 0) {
		*imported = true;
	} else if (last && rc != BF_EDUP) {
		/* Keep what the writers sorted: as runs it survives for --resume. */
		bf_err ignored = { 0 };
		pthread_rwlock_wrlock(&b->flush_lock);
		flush_all_writers(b, &ignored);
		pthread_rwlock_unlock(&b->flush_lock);
	}
	return rc;
}

int bf_backend_dup_key(bf_backend *b, const uint8_t **key, size_t *len)
{
	*key = b->dup_key;
	*len = b->dup_len;
	return b->dup_index;
}

int bf_backend_delete_imported(bf_backend *b, bf_err *err)
{
	bf_store_batch *batch = bf_store_batch_create();
	int rc;
	for (int i = 0; i < b->n; i++) {
		uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
		bf_codec_index_prefix(lo, b->o.table_id, b->idx[i].id);
		bf_codec_index_prefix(hi, b->o.table_id, b->idx[i].id + 1);
		bf_store_batch_delete_range(batch, lo, sizeof(lo), hi, sizeof(hi));
	}
	rc = bf_store_batch_commit(b->o.store, batch, err);
	bf_store_batch_destroy(batch);
	return rc;
}
