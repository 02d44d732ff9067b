/*
 * Add-index jobs: validation, the job record and its checkpoint, the run
 * of the pipeline, and what happens on success, failure and cancel.
 * Depends on the pipeline, ingest (backend), engine (store, catalog),
 * codec and util.
 */
#include "bfill/job.h"
#include "bfill/codec.h"
#include "pipeline/pipe.h"
#include "util/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MEM (512ULL << 20)
/* What the process needs besides the sort buffers: row batches, RocksDB
 * table readers and caches, import iterators and SST writers. */
#define MEM_RESERVE (64ULL << 20)
#define MIN_SORT_BUDGET (16ULL << 20)
#define STATUS_SAVE_MS 1000
#define RATE_WINDOW_MS 2000

typedef struct job_run {
	bf_store *st;
	const bf_add_index_opts *o;
	bf_table table;
	bf_job job;
	pthread_mutex_t mu; /* job, table and their persistence */
	bf_backend *backend;
	char job_dir[PATH_MAX];
	int64_t last_save_ms, rate_ms;
	uint64_t rate_rows;
	uint64_t peak_sort;
	int persist_rc;      /* a failed status write, reported at the end */
	bf_err persist_err;
	bool committed;      /* the last import made the indexes public */
} job_run;

void bf_job_default_sort_dir(const char *store_dir, char *out, size_t n)
{
	size_t len = strlen(store_dir);
	while (len > 1 && store_dir[len - 1] == '/')
		len--;
	snprintf(out, n, "%.*s.sort", (int)len, store_dir);
}

static void job_dir_of(const bf_job *job, char *out, size_t n)
{
	snprintf(out, n, "%s/job-%" PRId64, job->cfg.sort_dir, job->id);
}

/* Status writes are advisory: a failure is remembered, not fatal at once. */
static void save_job_locked(job_run *r)
{
	bf_err e = { 0 };
	r->job.update_ms = bf_wall_ms();
	int rc = bf_catalog_put_job(r->st, &r->job, &e);
	if (rc && !r->persist_rc) {
		r->persist_rc = rc;
		r->persist_err = e;
	}
	r->last_save_ms = bf_now_ms();
}

/* ---- validation and setup ---- */

/* MySQL's unquoted identifiers: letters, digits, '_' and '$'. */
static bool valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= BF_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '$')
			return false;
	return true;
}

static int parse_columns(const bf_table *t, const char *list, bf_index *x, bf_err *err)
{
	char buf[1024], *save = NULL;

	if (!list || !*list)
		return bf_errf(err, BF_EINVAL, "index '%s' needs --columns", x->name);
	if (strlen(list) >= sizeof(buf))
		return bf_errf(err, BF_EINVAL, "--columns list is too long");
	snprintf(buf, sizeof(buf), "%s", list);
	x->ncols = 0;
	for (char *c = strtok_r(buf, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*c))
			c++;
		char *end = c + strlen(c);
		while (end > c && isspace((unsigned char)end[-1]))
			*--end = '\0';
		int pos = bf_table_column(t, c);
		if (pos < 0)
			return bf_errf(err, BF_EINVAL, "column '%s' does not exist in table '%s'", c, t->name);
		if (x->ncols == BF_MAX_INDEX_COLUMNS)
			return bf_errf(err, BF_EINVAL, "an index has at most %d columns", BF_MAX_INDEX_COLUMNS);
		for (int k = 0; k < x->ncols; k++)
			if (x->cols[k] == pos)
				return bf_errf(err, BF_EINVAL, "column '%s' appears twice in index '%s'", c, x->name);
		x->cols[x->ncols++] = pos;
	}
	if (x->ncols == 0)
		return bf_errf(err, BF_EINVAL, "index '%s' needs at least one column", x->name);
	return 0;
}

static void fill_config(bf_job_config *cfg, const bf_add_index_opts *o, const char *store_dir,
			bool resuming)
{
	/* One worker per core by default, up to what a job may have. */
	int cores = bf_ncpu() < BF_JOB_WORKERS_MAX ? bf_ncpu() : BF_JOB_WORKERS_MAX;

	/* On resume a stored value stays unless the caller gives a new one. */
	if (o->workers > 0 || !resuming)
		cfg->workers = o->workers > 0 ? o->workers : cores;
	if (o->mem > 0 || !resuming)
		cfg->mem_bytes = o->mem > 0 ? o->mem : DEFAULT_MEM;
	if (o->import_every > 0 || !resuming)
		cfg->import_every = o->import_every;
	if ((o->sort_dir && *o->sort_dir) || !resuming) {
		if (o->sort_dir && *o->sort_dir)
			snprintf(cfg->sort_dir, sizeof(cfg->sort_dir), "%s", o->sort_dir);
		else
			bf_job_default_sort_dir(store_dir, cfg->sort_dir, sizeof(cfg->sort_dir));
	}
	if ((o->etcd && *o->etcd) || !resuming)
		snprintf(cfg->etcd, sizeof(cfg->etcd), "%s", o->etcd ? o->etcd : "");
	if ((o->lock_prefix && *o->lock_prefix) || !resuming)
		snprintf(cfg->lock_prefix, sizeof(cfg->lock_prefix), "%s",
			 o->lock_prefix && *o->lock_prefix ? o->lock_prefix : "/bfill/lock");
	if (o->lock_ttl_s > 0 || !resuming)
		cfg->lock_ttl_s = o->lock_ttl_s > 0 ? o->lock_ttl_s : 10;
	if (o->lock_timeout_s > 0 || !resuming)
		cfg->lock_timeout_s = o->lock_timeout_s > 0 ? o->lock_timeout_s : 60;
	if (o->run_compression >= 0 || !resuming)
		cfg->run_compression = o->run_compression >= 0 ? o->run_compression : BF_COMPRESS_NONE;
	if (o->target_compression >= 0 || !resuming)
		cfg->target_compression = o->target_compression >= 0 ? o->target_compression : BF_COMPRESS_NONE;
}

static int new_job(job_run *r, bf_err *err)
{
	const bf_add_index_opts *o = r->o;
	bf_table *t = &r->table;
	bf_job *job = &r->job;
	bf_job existing;
	int rc;

	if (o->nspecs < 1 || o->nspecs > BF_MAX_JOB_INDEXES)
		return bf_errf(err, BF_EINVAL, "a job builds 1 to %d indexes", BF_MAX_JOB_INDEXES);
	rc = bf_catalog_get_table(r->st, o->table, t, err);
	if (rc)
		return rc;
	if (t->nindexes + o->nspecs > BF_MAX_INDEXES)
		return bf_errf(err, BF_EINVAL, "table '%s' can't have more than %d indexes", t->name,
			       BF_MAX_INDEXES);
	memset(job, 0, sizeof(*job));
	int first_new = t->nindexes;
	for (int i = 0; i < o->nspecs; i++) {
		const bf_index_spec *s = &o->specs[i];
		bf_index x = { .unique = s->unique, .state = BF_INDEX_WRITE_REORG };
		if (!valid_name(s->name))
			return bf_errf(err, BF_EINVAL, "index name '%s' must be 1..%d letters, digits, '_' or '$'",
				       s->name ? s->name : "", BF_NAME_MAX - 1);
		snprintf(x.name, sizeof(x.name), "%s", s->name);
		int pos = bf_table_index(t, s->name);
		/* An earlier spec of this job: no job exists yet to name. */
		if (pos >= first_new)
			return bf_errf(err, BF_EINVAL, "index '%s' is named twice in this job", s->name);
		if (pos >= 0) {
			const bf_index *old = &t->indexes[pos];
			if (old->state == BF_INDEX_PUBLIC)
				return bf_errf(err, BF_EEXIST, "index '%s' already exists on table '%s'",
					       s->name, t->name);
			return bf_errf(err, BF_EEXIST, "index '%s' on table '%s' is being built by job %" PRId64
				       " (bfill add-index --resume --job-id %" PRId64 ", or bfill cancel --job %" PRId64 ")",
				       s->name, t->name, old->job_id, old->job_id, old->job_id);
		}
		rc = parse_columns(t, s->columns, &x, err);
		if (rc)
			return rc;
		x.id = t->next_index_id++;
		t->indexes[t->nindexes++] = x;
		job->index_ids[job->nindexes] = x.id;
		snprintf(job->index_names[job->nindexes], BF_NAME_MAX, "%s", x.name);
		job->nindexes++;
	}
	if (o->job_id > 0) {
		if (bf_catalog_get_job(r->st, o->job_id, &existing, NULL) == 0)
			return bf_errf(err, BF_EEXIST, "job %" PRId64 " already exists (use --resume to continue it)",
				       o->job_id);
		job->id = o->job_id;
	} else {
		rc = bf_catalog_next_id(r->st, "job", &job->id, err);
		if (rc)
			return rc;
	}
	for (int i = 0; i < t->nindexes; i++)
		if (t->indexes[i].state != BF_INDEX_PUBLIC && t->indexes[i].job_id == 0)
			t->indexes[i].job_id = job->id;
	snprintf(job->table, sizeof(job->table), "%s", t->name);
	job->table_id = t->id;
	job->state = BF_JOB_QUEUEING;
	snprintf(job->phase, sizeof(job->phase), "queued");
	job->start_ms = bf_wall_ms();
	job->rows_total = t->rows_hint;
	fill_config(&job->cfg, o, bf_store_path(r->st), false);
	/* The job and the table naming its indexes appear together, so an
	 * index in write-reorg always has a job to resume or cancel. */
	return bf_catalog_put_table_and_job(r->st, t, job, err);
}

static int load_job(job_run *r, bool *noop, bf_err *err)
{
	bf_job *job = &r->job;
	int rc = bf_catalog_get_job(r->st, r->o->job_id, job, err);

	*noop = false;
	if (rc)
		return rc;
	if (job->state == BF_JOB_DONE) {
		*noop = true;
		return 0;
	}
	if (job->state == BF_JOB_CANCELLED)
		return bf_errf(err, BF_ESTATE, "job %" PRId64 " was cancelled; start a new one", job->id);
	rc = bf_catalog_get_table(r->st, job->table, &r->table, err);
	if (rc)
		return rc;
	for (int i = 0; i < job->nindexes; i++) {
		int pos = bf_table_index_by_id(&r->table, job->index_ids[i]);
		if (pos < 0 || r->table.indexes[pos].state == BF_INDEX_PUBLIC)
			return bf_errf(err, BF_ESTATE, "job %" PRId64 ": index '%s' is not awaiting a build",
				       job->id, job->index_names[i]);
	}
	fill_config(&job->cfg, r->o, bf_store_path(r->st), true);
	return 0;
}

/* Rough bytes of one entry of an index in the engine, for the disk check. */
static uint64_t entry_estimate(const bf_table *t, const bf_index *x)
{
	uint64_t n = BF_INDEX_PREFIX_LEN + 9 + 8 + BF_INDEX_VALUE_MAX + 16;
	for (int c = 0; c < x->ncols; c++) {
		const bf_column *col = &t->cols[x->cols[c]];
		if (col->type == BF_COL_INT || col->type == BF_COL_UINT)
			n += 9;
		else
			n += 1 + bf_codec_bytes_len((size_t)(col->type == BF_COL_CHAR ? col->len : col->len / 2));
	}
	return n;
}

static int check_disk(job_run *r, uint64_t rows_left, bf_err *err)
{
	uint64_t avail = 0, per_row = 0;
	char need_s[32], avail_s[32];
	int rc = bf_mkdirs(r->job.cfg.sort_dir, err);

	if (rc)
		return rc;
	rc = bf_fs_avail(r->job.cfg.sort_dir, &avail, err);
	if (rc)
		return rc;
	for (int i = 0; i < r->job.nindexes; i++) {
		int pos = bf_table_index_by_id(&r->table, r->job.index_ids[i]);
		per_row += entry_estimate(&r->table, &r->table.indexes[pos]);
	}
	/* The engines hold the index once, and the import writes it once more
	 * before the store takes the files over. */
	uint64_t need = rows_left * per_row * 2;
	if (need > avail)
		return bf_errf(err, BF_ENOSPC,
			       "sort dir %s has %s free, but building needs about %s; free space or use --sort-dir",
			       r->job.cfg.sort_dir, bf_fmt_bytes(avail, avail_s, sizeof(avail_s)),
			       bf_fmt_bytes(need, need_s, sizeof(need_s)));
	return 0;
}

static bool dir_exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Chooses where the scan starts: the engines' checkpoint when they
 * survived, else the store's, else the beginning. */
static uint64_t plan_start(job_run *r, uint8_t *start, bool *has_start)
{
	bf_checkpoint *cp = &r->job.cp;
	uint64_t gen = 0;
	bool engines = cp->has_flushed && sscanf(cp->engine_id, "g%" SCNu64, &gen) == 1;

	for (int i = 0; engines && i < r->job.nindexes; i++) {
		char dir[PATH_MAX + 64];
		snprintf(dir, sizeof(dir), "%s/idx-%" PRId64 "-g%" PRIu64, r->job_dir, r->job.index_ids[i], gen);
		engines = dir_exists(dir);
	}
	*has_start = false;
	if (engines) {
		memcpy(start, cp->flushed_key, BF_RECORD_KEY_LEN);
		*has_start = true;
		return cp->flushed_rows;
	}
	/* Whatever engine files exist are not the ones the checkpoint names. */
	bf_rmtree(r->job_dir, NULL);
	cp->has_flushed = false;
	cp->flushed_rows = 0;
	snprintf(cp->engine_id, sizeof(cp->engine_id), "g%" PRIu64, cp->imports);
	if (cp->has_imported) {
		memcpy(start, cp->imported_key, BF_RECORD_KEY_LEN);
		*has_start = true;
		return cp->imported_rows;
	}
	return 0;
}

/* ---- hooks called by the pipeline ---- */

static void hook_progress(void *arg, uint64_t rows, const char *phase)
{
	job_run *r = arg;
	int64_t now = bf_now_ms();
	bf_job copy;

	pthread_mutex_lock(&r->mu);
	r->job.rows_done = rows;
	if (r->job.rows_done > r->job.rows_total && r->job.rows_total)
		r->job.rows_total = r->job.rows_done;
	if (!r->job.waiting[0])
		snprintf(r->job.phase, sizeof(r->job.phase), "%s", phase);
	if (now - r->rate_ms >= RATE_WINDOW_MS) {
		if (r->rate_ms)
			r->job.rate = (double)(rows - r->rate_rows) * 1000.0 / (double)(now - r->rate_ms);
		r->rate_ms = now;
		r->rate_rows = rows;
	}
	/* A handful of files: cheap enough to measure on every tick. */
	uint64_t du = bf_du(r->job_dir);
	if (du > r->peak_sort)
		r->peak_sort = du;
	if (now - r->last_save_ms >= STATUS_SAVE_MS)
		save_job_locked(r);
	copy = r->job;
	pthread_mutex_unlock(&r->mu);
	if (r->o->progress)
		r->o->progress(&copy, r->o->progress_arg);
}

static int hook_flushed(void *arg, const uint8_t key[BF_RECORD_KEY_LEN], uint64_t rows, bf_err *err)
{
	job_run *r = arg;
	bf_backend_stats bs;
	int rc;

	bf_backend_stats_get(r->backend, &bs);
	pthread_mutex_lock(&r->mu);
	r->job.cp.has_flushed = true;
	memcpy(r->job.cp.flushed_key, key, BF_RECORD_KEY_LEN);
	r->job.cp.flushed_rows = rows;
	snprintf(r->job.cp.engine_id, sizeof(r->job.cp.engine_id), "g%" PRIu64, bs.generation);
	r->job.update_ms = bf_wall_ms();
	rc = bf_catalog_put_job(r->st, &r->job, err);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int hook_imported(void *arg, const uint8_t key[BF_RECORD_KEY_LEN], uint64_t rows, bool final,
			 bf_err *err)
{
	job_run *r = arg;
	bf_checkpoint *cp = &r->job.cp;
	bf_backend_stats bs;
	int rc;

	bf_backend_stats_get(r->backend, &bs);
	pthread_mutex_lock(&r->mu);
	cp->has_imported = true;
	memcpy(cp->imported_key, key, BF_RECORD_KEY_LEN);
	cp->imported_rows = rows;
	cp->imports = bs.imports;
	/* Everything the engines held is now in the store, so a flushed
	 * checkpoint behind the import moves up to it. */
	if (!cp->has_flushed || memcmp(cp->flushed_key, key, BF_RECORD_KEY_LEN) < 0) {
		memcpy(cp->flushed_key, key, BF_RECORD_KEY_LEN);
		cp->flushed_rows = rows;
	}
	cp->has_flushed = true;
	snprintf(cp->engine_id, sizeof(cp->engine_id), "g%" PRIu64, bs.generation);
	r->job.update_ms = bf_wall_ms();
	if (final) {
		for (int i = 0; i < r->job.nindexes; i++) {
			int pos = bf_table_index_by_id(&r->table, r->job.index_ids[i]);
			r->table.indexes[pos].state = BF_INDEX_PUBLIC;
			r->table.indexes[pos].job_id = 0;
		}
		r->job.state = BF_JOB_DONE;
		r->job.rows_done = rows;
		if (rows > r->job.rows_total)
			r->job.rows_total = rows;
		r->job.waiting[0] = '\0';
		snprintf(r->job.phase, sizeof(r->job.phase), "done");
		r->job.end_ms = bf_wall_ms();
		r->job.pid = 0;
		/* Public index and finished job become visible together. */
		rc = bf_catalog_put_table_and_job(r->st, &r->table, &r->job, err);
		r->committed = rc == 0;
	} else {
		rc = bf_catalog_put_job(r->st, &r->job, err);
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static bool hook_interrupted(void *arg)
{
	job_run *r = arg;
	return r->o->interrupt && *r->o->interrupt;
}

static void on_lock_wait(const char *reason, void *arg)
{
	job_run *r = arg;
	pthread_mutex_lock(&r->mu);
	if (reason)
		snprintf(r->job.waiting, sizeof(r->job.waiting), "waiting for etcd lock: %s", reason);
	else
		r->job.waiting[0] = '\0';
	/* Always written at once: this is what `bfill status` must show. */
	save_job_locked(r);
	pthread_mutex_unlock(&r->mu);
}

/* ---- failure ---- */

static void format_datum(const bf_datum *d, char *out, size_t n)
{
	switch (d->kind) {
	case BF_DATUM_NULL: snprintf(out, n, "NULL"); break;
	case BF_DATUM_INT: snprintf(out, n, "%" PRId64, d->v.i); break;
	case BF_DATUM_UINT: snprintf(out, n, "%" PRIu64, d->v.u); break;
	case BF_DATUM_BYTES: snprintf(out, n, "%.*s", (int)d->v.b.len, (const char *)d->v.b.ptr); break;
	}
}

/* TiDB's wording: Duplicate entry '<v1-v2>' for key '<table>.<index>'. */
static void duplicate_message(job_run *r, bf_err *err)
{
	const uint8_t *key;
	size_t len;
	int ix = bf_backend_dup_key(r->backend, &key, &len);
	int pos = bf_table_index_by_id(&r->table, r->job.index_ids[ix]);
	const bf_index *x = &r->table.indexes[pos];
	bf_datum cols[BF_MAX_INDEX_COLUMNS];
	uint8_t scratch[4096];
	char value[1024] = "", part[512];
	bool has;
	int64_t h;

	if (bf_codec_decode_index_key(key, len, NULL, NULL, cols, x->ncols, scratch, &has, &h) == 0) {
		for (int c = 0; c < x->ncols; c++) {
			format_datum(&cols[c], part, sizeof(part));
			snprintf(value + strlen(value), sizeof(value) - strlen(value), "%s%s", c ? "-" : "", part);
		}
	}
	bf_errf(err, BF_EDUP, "Duplicate entry '%s' for key '%s.%s'", value, r->table.name, x->name);
}

/* Takes the job's indexes out of the table (a rollback). */
static void drop_indexes(bf_table *t, const bf_job *job)
{
	for (int i = 0; i < job->nindexes; i++) {
		int pos = bf_table_index_by_id(t, job->index_ids[i]);
		if (pos < 0)
			continue;
		t->indexes[pos] = t->indexes[--t->nindexes];
	}
}

static int handle_failure(job_run *r, int rc, bf_err *err)
{
	bf_checkpoint *cp = &r->job.cp;
	bool interrupted = rc == BF_ECANCELLED && hook_interrupted(r);
	bf_err e2 = { 0 };

	if (rc == BF_EDUP && r->backend)
		duplicate_message(r, err);
	pthread_mutex_lock(&r->mu);
	r->job.end_ms = bf_wall_ms();
	r->job.pid = 0;
	r->job.waiting[0] = '\0';
	snprintf(r->job.last_error, sizeof(r->job.last_error), "%s", bf_err_text(err));
	if (interrupted) {
		/* Paused: everything stays as it is for --resume. */
		r->job.state = BF_JOB_PAUSED;
		snprintf(r->job.phase, sizeof(r->job.phase), "paused");
		save_job_locked(r);
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	r->job.state = BF_JOB_FAILED;
	snprintf(r->job.phase, sizeof(r->job.phase), "failed");
	/* No entry of a failed build stays in the store. An import round
	 * ingests index by index, so a round that failed part-way has left
	 * entries although no import is on record: always delete. */
	if (r->backend && bf_backend_delete_imported(r->backend, &e2))
		snprintf(r->job.last_error + strlen(r->job.last_error),
			 sizeof(r->job.last_error) - strlen(r->job.last_error),
			 " (and removing its entries failed: %s)", bf_err_text(&e2));
	if (r->backend && (cp->has_imported || cp->imports > 0 || rc == BF_EDUP)) {
		/* What had been imported must be scanned again; the engines
		 * may keep their runs, re-adding the same keys is harmless. */
		cp->has_imported = false;
		cp->imported_rows = 0;
		cp->has_flushed = false;
		cp->flushed_rows = 0;
	}
	if (rc == BF_EDUP) {
		/* The data itself forbids the index: roll it back entirely. */
		drop_indexes(&r->table, &r->job);
		bf_catalog_put_table_and_job(r->st, &r->table, &r->job, NULL);
		pthread_mutex_unlock(&r->mu);
		bf_backend_remove_engines(r->backend, NULL);
		bf_rmtree(r->job_dir, NULL);
		return rc;
	}
	save_job_locked(r);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* ---- entry points ---- */

static int run_job(job_run *r, bf_add_index_result *res, bf_err *err)
{
	bf_job *job = &r->job;
	bf_backend_index bidx[BF_MAX_JOB_INDEXES];
	bf_pipe_index pidx[BF_MAX_JOB_INDEXES];
	uint8_t start[BF_RECORD_KEY_LEN];
	bool has_start;
	bf_pipe_stats ps;
	uint64_t gen = 0;
	int rc;

	job_dir_of(job, r->job_dir, sizeof(r->job_dir));
	uint64_t base_rows = plan_start(r, start, &has_start);
	sscanf(job->cp.engine_id, "g%" SCNu64, &gen);

	job->state = BF_JOB_RUNNING;
	snprintf(job->phase, sizeof(job->phase), "scan");
	job->waiting[0] = '\0';
	job->last_error[0] = '\0';
	job->pid = getpid();
	job->end_ms = 0;
	job->rows_done = base_rows;
	/* Running from the first moment: nothing before the scan waits on etcd. */
	pthread_mutex_lock(&r->mu);
	save_job_locked(r);
	pthread_mutex_unlock(&r->mu);
	if (r->persist_rc)
		return bf_errf(err, r->persist_rc, "%s", bf_err_text(&r->persist_err));

	uint64_t rows_left = job->rows_total > base_rows ? job->rows_total - base_rows : 0;
	rc = check_disk(r, rows_left, err);
	if (rc)
		return rc;

	for (int i = 0; i < job->nindexes; i++) {
		const bf_index *x = &r->table.indexes[bf_table_index_by_id(&r->table, job->index_ids[i])];
		bidx[i].index_id = x->id;
		bidx[i].unique = x->unique;
		pidx[i].id = x->id;
		pidx[i].unique = x->unique;
		pidx[i].ncols = x->ncols;
		memcpy(pidx[i].cols, x->cols, sizeof(x->cols));
	}
	bf_backend_opts bo = {
		.store = r->st, .table_id = job->table_id, .job_id = job->id, .job_dir = r->job_dir,
		.generation = gen, .nindexes = job->nindexes, .indexes = bidx,
		.run_compression = job->cfg.run_compression,
		.target_compression = job->cfg.target_compression,
		.import_threads = job->cfg.workers,
		.has_imported = job->cp.has_imported || job->cp.imports > 0,
		.lock = {
			.endpoints = job->cfg.etcd, .prefix = job->cfg.lock_prefix,
			.ttl_s = job->cfg.lock_ttl_s, .timeout_s = job->cfg.lock_timeout_s,
			.on_wait = on_lock_wait, .on_wait_arg = r,
		},
	};
	rc = bf_backend_open(&bo, &r->backend, err);
	if (rc)
		return rc;

	uint64_t mem = job->cfg.mem_bytes;
	uint64_t budget = mem > MEM_RESERVE + MIN_SORT_BUDGET ? mem - MEM_RESERVE : MIN_SORT_BUDGET;
	bf_pipe_opts po = {
		.store = r->st, .table = &r->table, .nindexes = job->nindexes, .indexes = pidx,
		.readers = job->cfg.workers, .writers = job->cfg.workers,
		.sort_budget = (size_t)budget, .backend = r->backend,
		.import_every = job->cfg.import_every,
		.start_key = has_start ? start : NULL, .base_rows = base_rows,
		.hooks = {
			.arg = r, .progress = hook_progress, .flushed = hook_flushed,
			.imported = hook_imported, .interrupted = hook_interrupted,
		},
	};
	rc = bf_pipe_run(&po, &ps, err);
	res->rows = ps.rows;
	res->scan_seconds = ps.scan_seconds;
	res->import_seconds = ps.import_seconds;
	bf_backend_stats_get(r->backend, &res->backend);
	res->index_keys = res->backend.imported_keys;
	res->index_bytes = res->backend.imported_bytes;
	if (rc == 0 && r->persist_rc)
		rc = bf_errf(err, r->persist_rc, "%s", bf_err_text(&r->persist_err));
	return rc;
}

int bf_add_index(bf_store *st, const bf_add_index_opts *opts, bf_add_index_result *res, bf_err *err)
{
	job_run r = { .st = st, .o = opts };
	int64_t t0 = bf_now_ms();
	bool noop = false;
	int rc;

	memset(res, 0, sizeof(*res));
	pthread_mutex_init(&r.mu, NULL);
	if (opts->resume) {
		if (opts->job_id <= 0) {
			rc = bf_errf(err, BF_EINVAL, "--resume needs --job-id");
			goto out;
		}
		rc = load_job(&r, &noop, err);
	} else {
		rc = new_job(&r, err);
	}
	if (noop) {
		/* A process that died between the last commit and its clean-up
		 * left sort files; the job is done, so they can go. */
		job_dir_of(&r.job, r.job_dir, sizeof(r.job_dir));
		bf_rmtree(r.job_dir, NULL);
		rmdir(r.job.cfg.sort_dir);
	}
	if (rc || noop)
		goto out;
	rc = run_job(&r, res, err);
	if (rc && r.committed) {
		/* An interrupt or error that came after the last import had
		 * committed changes nothing: the job is done, and failure
		 * handling would contradict the record (or delete the entries
		 * of a public index). */
		rc = 0;
		bf_err_clear(err);
	}
	if (rc) {
		/* Setup errors before the job ran still mark it failed. */
		rc = handle_failure(&r, rc, err);
		goto out;
	}
	bf_backend_remove_engines(r.backend, NULL);
	bf_rmtree(r.job_dir, NULL);
	rmdir(r.job.cfg.sort_dir); /* only if no other job uses it */
out:
	if (r.backend)
		bf_backend_close(r.backend);
	res->job = r.job;
	res->noop = noop;
	res->peak_sort_bytes = r.peak_sort;
	res->seconds = (double)(bf_now_ms() - t0) / 1e3;
	pthread_mutex_destroy(&r.mu);
	return rc;
}

int bf_job_cancel(bf_store *st, int64_t job_id, bf_err *err)
{
	bf_job job;
	bf_table t;
	char dir[PATH_MAX];
	int rc = bf_catalog_get_job(st, job_id, &job, err);

	if (rc)
		return rc;
	if (job.state == BF_JOB_DONE)
		return bf_errf(err, BF_ESTATE, "job %" PRId64 " is done; its indexes are public", job_id);
	if (job.state == BF_JOB_CANCELLED)
		return 0;
	rc = bf_catalog_get_table(st, job.table, &t, err);
	if (rc)
		return rc;
	bf_store_batch *b = bf_store_batch_create();
	for (int i = 0; i < job.nindexes; i++) {
		uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
		bf_codec_index_prefix(lo, job.table_id, job.index_ids[i]);
		bf_codec_index_prefix(hi, job.table_id, job.index_ids[i] + 1);
		bf_store_batch_delete_range(b, lo, sizeof(lo), hi, sizeof(hi));
	}
	rc = bf_store_batch_commit(st, b, err);
	bf_store_batch_destroy(b);
	if (rc)
		return rc;
	drop_indexes(&t, &job);
	job.state = BF_JOB_CANCELLED;
	snprintf(job.phase, sizeof(job.phase), "cancelled");
	job.waiting[0] = '\0';
	job.pid = 0;
	job.end_ms = bf_wall_ms();
	memset(&job.cp, 0, sizeof(job.cp));
	rc = bf_catalog_put_table_and_job(st, &t, &job, err);
	if (rc)
		return rc;
	job_dir_of(&job, dir, sizeof(dir));
	bf_rmtree(dir, NULL);
	rmdir(job.cfg.sort_dir);
	return 0;
}

int bf_index_drop(bf_store *st, const char *table, const char *index, bf_err *err)
{
	uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
	bf_table t;
	int rc = bf_catalog_get_table(st, table, &t, err);
	int pos;

	if (rc)
		return rc;
	pos = bf_table_index(&t, index);
	if (pos < 0)
		return bf_errf(err, BF_ENOTFOUND, "index '%s' does not exist on table '%s'", index, table);
	if (t.indexes[pos].state != BF_INDEX_PUBLIC)
		return bf_errf(err, BF_ESTATE, "index '%s' is being built by job %" PRId64 "; cancel the job instead",
			       index, t.indexes[pos].job_id);
	bf_codec_index_prefix(lo, t.id, t.indexes[pos].id);
	bf_codec_index_prefix(hi, t.id, t.indexes[pos].id + 1);
	/* Entries first: a crash in between leaves an index record whose
	 * entries are gone (check-index says so), never orphaned entries. */
	rc = bf_store_delete_range(st, lo, sizeof(lo), hi, sizeof(hi), err);
	if (rc)
		return rc;
	t.indexes[pos] = t.indexes[--t.nindexes];
	return bf_catalog_put_table(st, &t, err);
}
