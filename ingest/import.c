/*
 * Import rounds of the ingest backend (include/bfill/ingest.h): take every
 * index's lock, seal the generation being filled, export the sealed
 * generations in parallel parts into target SSTs, and ingest them into the
 * target with fencing before and after; then commit and drop what was
 * imported. The writers are held only while a generation is sealed.
 * Depends on engine (export), lock, ingest/target and util.
 */
#include "ingest/backend_impl.h"
#include "bfill/codec.h"
#include "bfill/fault.h"
#include "util/trace.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMPORT_THREADS 16
#define FENCE_RETRY_MS 200
#define MAX_MERGE_RUNS 64 /* runs of one index merged at once */

/* What one import round added, counted into the stats only once the round
 * has committed: a round started over after a lost lock counts once. */
typedef struct round_stats {
	uint64_t keys, bytes, files;
} round_stats;

typedef struct export_part {
	bf_backend *b;
	int ix;
	int part;
	bf_engine *const *engines;
	int nengines;
	uint8_t *lo, *hi;
	size_t lolen, hilen;
	pthread_mutex_t *files_mu;
	char ***files;
	size_t *nfiles, *cap;
	atomic_int *stop;
	bf_sortbuf *const *extra;
	int nextra;
	bool probe;
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

/* Unique keys already in the target from earlier rounds: asked of the
 * target itself, so a cluster answers as well as the local store. */
static int probe_target(void *arg, bf_probe *probes, size_t n, bf_err *err)
{
	export_part *p = arg;
	return bf_target_exists(p->b->o.target, probes, n, err);
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
		.probe = p->probe ? probe_target : NULL, .probe_arg = p,
		.on_file = collect_file, .arg = p, .stop = (volatile int *)p->stop,
		.extra = p->extra, .nextra = p->nextra,
	};
	p->rc = bf_engine_export(p->engines, p->nengines, &eo, &p->keys, &p->bytes, &p->err);
	p->duplen = eo.dup_key_len;
	if (p->rc)
		atomic_store(p->stop, 1);
	return NULL;
}

static int fence(bf_backend *b, int ix, const char *when, bf_err *err)
{
	int rc = bf_fault_hit("import.fence")
			 ? bf_errf(err, BF_ELOCKLOST, "lock check failed (fault import.fence)")
			 : bf_lock_check(b->idx[ix].lock, err);
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

/* Split keys for index ix's parts: the engines' own (equal parts for the
 * threads) and wherever the target says ranges must be cut, merged. */
static int plan_parts(bf_backend *b, int ix, bf_sortbuf *const *extra, int nextra,
		      uint8_t ***splits, size_t **lens, int *nsplits, bf_err *err)
{
	backend_index *x = &b->idx[ix];
	uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
	bf_keys cuts = { 0 };
	int rc;

	rc = bf_engine_split_keys(x->sealed, (int)x->nsealed, extra, nextra, b->o.import_threads,
				  x->unique ? HANDLE_SUFFIX : 0, splits, lens, nsplits, err);
	if (rc)
		return rc;
	bf_codec_index_prefix(lo, b->o.table_id, x->id);
	bf_codec_index_prefix(hi, b->o.table_id, x->id + 1);
	rc = bf_target_split_points(b->o.target, lo, sizeof(lo), hi, sizeof(hi), &cuts, err);
	if (rc || cuts.n == 0)
		return rc;
	/* Every cut of the target becomes a part boundary too. */
	size_t total = (size_t)*nsplits + cuts.n;
	uint8_t **all = malloc(total * sizeof(*all));
	size_t *alllen = malloc(total * sizeof(*alllen));
	if (!all || !alllen) {
		free(all);
		free(alllen);
		bf_keys_free(&cuts);
		return bf_errf(err, BF_ENOMEM, "import: out of memory");
	}
	size_t n = 0, a = 0, c = 0;
	while (a < (size_t)*nsplits || c < cuts.n) {
		bool take_cut = a == (size_t)*nsplits;
		if (!take_cut && c < cuts.n) {
			size_t m = (*lens)[a] < cuts.lens[c] ? (*lens)[a] : cuts.lens[c];
			int cmp = memcmp((*splits)[a], cuts.keys[c], m);
			take_cut = cmp > 0 || (cmp == 0 && (*lens)[a] > cuts.lens[c]);
		}
		if (take_cut) {
			all[n] = cuts.keys[c];
			alllen[n++] = cuts.lens[c];
			cuts.keys[c++] = NULL;
		} else {
			all[n] = (*splits)[a];
			alllen[n++] = (*lens)[a++];
		}
	}
	free(*splits);
	free(*lens);
	bf_keys_free(&cuts);
	*splits = all;
	*lens = alllen;
	*nsplits = (int)n;
	return 0;
}

/* Exports index ix's sealed generations (plus, for the last import, the
 * writers' sorted buffers) in parallel parts and ingests the files in one
 * atomic step, fenced before and after. */
static int import_index(bf_backend *b, int ix, bool last, round_stats *rs, bf_err *err)
{
	backend_index *x = &b->idx[ix];
	bf_sortbuf *extra[MAX_WRITERS];
	int nextra = 0;
	export_part *parts = NULL;
	pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;
	char **files = NULL, outdir[PATH_MAX];
	size_t nfiles = 0, cap = 0;
	uint8_t **splits = NULL;
	size_t *splitlens = NULL;
	int nsplits = 0, nparts, started = 0, rc;
	atomic_int stop = 0;
	uint64_t keys = 0, bytes = 0, held = 0;

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
	/* However many runs a small budget made, the export opens a bounded
	 * number per part. */
	for (size_t k = 0; k < x->nsealed && rc == 0; k++)
		rc = bf_engine_reduce(x->sealed[k], MAX_MERGE_RUNS / x->nsealed,
				      (volatile int *)&b->cancelled, err);
	if (rc)
		goto out;
	for (size_t k = 0; k < x->nsealed; k++)
		held += bf_engine_keys(x->sealed[k]) + bf_engine_runs(x->sealed[k]) +
			bf_engine_bytes(x->sealed[k]);
	if (nextra == 0 && held == 0)
		goto out;
	rc = plan_parts(b, ix, extra, nextra, &splits, &splitlens, &nsplits, err);
	if (rc)
		goto out;
	nparts = nsplits + 1;
	parts = calloc((size_t)nparts, sizeof(*parts));
	if (!parts) {
		rc = bf_errf(err, BF_ENOMEM, "import: out of memory");
		goto out;
	}
	for (int i = 0; i < nparts; i++) {
		export_part *p = &parts[i];
		p->b = b;
		p->ix = ix;
		p->part = i;
		p->engines = x->sealed;
		p->nengines = (int)x->nsealed;
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
		/* Only entries committed by earlier rounds can clash in the
		 * target; a round that failed part-way ingested a subset of
		 * these very generations. */
		p->probe = x->unique && (b->o.has_imported || b->stats.imports > 0);
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
			bf_errf(err, rc, "duplicate entry in index %" PRId64, x->id);
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
	rc = bf_target_ingest(b->o.target, (const char *const *)files, nfiles, &x->token, err);
	if (rc)
		goto out;
	rs->keys += keys;
	rs->bytes += bytes;
	rs->files += nfiles;
	/* The target took the files over; nothing left to remove. */
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
	free(parts);
	return rc;
}

static int acquire_locks(bf_backend *b, bf_err *err)
{
	for (int i = 0; i < b->n; i++) {
		backend_index *x = &b->idx[i];
		if (x->held)
			continue;
		int64_t t0 = bf_now_ms();
		int rc = bf_lock_acquire(x->lock, x->lock_name, &x->token, err);
		uint64_t waited = (uint64_t)(bf_now_ms() - t0);
		/* Each wait on its own, for the lock-latency percentiles of
		 * bench/partition_workers.sh. */
		bf_trace("lock-wait", "job=%" PRId64 " index=%d ms=%" PRIu64 " rc=%d", b->o.job_id, i,
			 waited, rc);
		pthread_mutex_lock(&b->mu);
		b->stats.lock_wait_ms += waited;
		if (waited > b->stats.lock_wait_max_ms)
			b->stats.lock_wait_max_ms = waited;
		if (rc == 0)
			b->stats.lock_acquires++;
		pthread_mutex_unlock(&b->mu);
		if (rc)
			return rc;
		x->held = true;
	}
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

static int import_round(bf_backend *b, bool last, bf_backend_commit_fn commit, void *arg,
			bf_err *err)
{
	round_stats rs = { 0 };
	int rc;

	/* The last import merges the finished writers' buffers from memory;
	 * any other has them written as runs of the sealed generation. */
	rc = backend_seal(b, !last, err);
	for (int i = 0; rc == 0 && i < b->n; i++)
		rc = import_index(b, i, last, &rs, err);
	for (int i = 0; rc == 0 && i < b->n; i++)
		rc = fence(b, i, "before commit", err);
	if (rc)
		return rc;
	pthread_mutex_lock(&b->mu);
	b->stats.imports++;
	b->stats.first_gen = atomic_load(&b->gen);
	b->stats.imported_keys += rs.keys;
	b->stats.imported_bytes += rs.bytes;
	b->stats.sst_files += rs.files;
	pthread_mutex_unlock(&b->mu);
	if (commit)
		rc = commit(arg, err);
	if (rc)
		return rc;
	backend_drop_sealed(b);
	if (last) {
		/* The buffers' entries are in the target now. */
		pthread_mutex_lock(&b->mu);
		for (int w = 0; w < b->nwriters; w++)
			for (int i = 0; i < b->n; i++)
				bf_sortbuf_reset(b->writers[w]->bufs[i]);
		pthread_mutex_unlock(&b->mu);
	}
	return 0;
}

int bf_backend_flush(bf_backend *b, bf_flush_mode mode, bf_backend_commit_fn commit,
		     void *commit_arg, bool *imported, bf_err *err)
{
	bool last = mode == BF_FLUSH_IMPORT_LAST;
	int64_t first_loss = 0;
	int rc;

	*imported = false;
	for (;;) {
		if (atomic_load(&b->cancelled))
			return bf_errf(err, BF_ECANCELLED, "import cancelled");
		/* Locks first, holding nothing of the writers': they keep going
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
		/* Keep what the writers sorted: as runs of their generations it
		 * survives for --resume. */
		bf_err ignored = { 0 };
		backend_flush_writers(b, &ignored);
	}
	return rc;
}

int bf_backend_dup_key(bf_backend *b, const uint8_t **key, size_t *len)
{
	*key = b->dup_key;
	*len = b->dup_len;
	return b->dup_index;
}

int bf_backend_tokens(bf_backend *b, bf_fence_token *out, int max)
{
	int n = 0;
	for (int i = 0; i < b->n && n < max; i++)
		if (b->idx[i].held)
			out[n++] = b->idx[i].token;
	return n;
}
