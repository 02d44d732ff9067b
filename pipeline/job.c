/*
 * Add-index jobs, their lifecycle: every option checked before any work,
 * the job record created or resumed, the pipeline run with the hooks that
 * keep the record truthful, and the clean-up of a finished job. Where a
 * run starts and how checkpoints move is in job_checkpoint.c; failure,
 * cancel and drop in job_rollback.c.
 * Depends on the pipeline, ingest (backend, target), engine (store,
 * catalog), codec and util.
 */
#include "pipeline/job_impl.h"
#include "bfill/codec.h"
#include "bfill/job_live.h"
#include "pipeline/pipe.h"
#include "bfill/worker.h"
#include "util/endpoints.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MEM (512ULL << 20)
/* What the process needs besides the sort buffers: row batches, RocksDB
 * table readers and caches, the import's merge buffers and SST writers.
 * A budget under twice the reserve gives the sort buffers half of it. */
#define MEM_RESERVE (64ULL << 20)
/* Often enough for a status sampled every 250 ms to see progress in each sample. */
#define STATUS_SAVE_MS 200
#define RATE_WINDOW_MS 2000

void bf_job_default_sort_dir(const char *store_dir, char *out, size_t n)
{
	size_t len = strlen(store_dir);
	while (len > 1 && store_dir[len - 1] == '/')
		len--;
	snprintf(out, n, "%.*s.sort", (int)len, store_dir);
}

void job_dir_of(const bf_job *job, char *out, size_t n)
{
	snprintf(out, n, "%s/job-%" PRId64, job->cfg.sort_dir, job->id);
}

void job_save_locked(job_run *r)
{
	bf_err e = { 0 };

	if (r->part) {
		/* Other workers write this job too: a part shows its status in
		 * its subtask's progress record, never in the job's. */
		job_part_show_locked(r);
		r->last_save_ms = bf_now_ms();
		return;
	}
	r->job.update_ms = bf_wall_ms();
	int rc = bf_catalog_put_job(r->cat, &r->job, &e);
	/* Only the latest write counts: a catalog in etcd may be out of reach
	 * for a while, and the next write puts everything right. */
	r->persist_rc = rc;
	r->persist_err = e;
	r->last_save_ms = bf_now_ms();
}

/* ---- options ---- */

/* Copies src into a record field, refusing what does not fit rather than
 * cutting it. */
static int set_field(char *dst, size_t n, const char *src, const char *what, bf_err *err)
{
	if (strlen(src) >= n)
		return bf_errf(err, BF_EINVAL, "%s is longer than %zu bytes", what, n - 1);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* An absolute path for dir, which need not exist yet: a job recorded with
 * a relative one would mean another directory to a resume or a cancel run
 * from elsewhere. */
static int absolute_dir(const char *dir, char *out, size_t n, bf_err *err)
{
	char cwd[PATH_MAX];
	if (dir[0] == '/')
		return set_field(out, n, dir, "--sort-dir", err);
	if (!getcwd(cwd, sizeof(cwd)))
		return bf_errf(err, -errno, "cannot tell the working directory: %s", strerror(errno));
	if ((size_t)snprintf(out, n, "%s/%s", cwd, dir) >= n)
		return bf_errf(err, BF_EINVAL, "--sort-dir is longer than %zu bytes", n - 1);
	return 0;
}

/*
 * The job's parameters: on a resume a stored value stays unless the
 * caller gives a new one. Checked here, before the job record is written
 * or any work starts.
 */
static int fill_config(bf_job_config *cfg, const bf_add_index_opts *o, const bf_job_env *env,
		       bool resuming, bf_err *err)
{
	int rc = 0;

	if (o->workers < 0 || o->workers > BF_JOB_WORKERS_MAX)
		return bf_errf(err, BF_EINVAL, "workers must be 1..%d", BF_JOB_WORKERS_MAX);
	if (o->lock_ttl_s < 0 || o->lock_ttl_s > 3600)
		return bf_errf(err, BF_EINVAL, "the lock TTL must be 1..3600 seconds");
	if (o->lock_timeout_s < 0 || o->lock_timeout_s > 86400)
		return bf_errf(err, BF_EINVAL, "the lock timeout must be 1..86400 seconds");
	if (o->workers > 0 || !resuming)
		cfg->workers = o->workers > 0 ? o->workers : (bf_ncpu() < BF_JOB_WORKERS_MAX ? bf_ncpu() : BF_JOB_WORKERS_MAX);
	if (o->mem > 0 || !resuming)
		cfg->mem_bytes = o->mem > 0 ? o->mem : DEFAULT_MEM;
	/* A local import is a cheap step at the end. Into store nodes it is
	 * the longer half of the build (every byte goes to every replica), so
	 * it runs alongside the scan, every quarter of --mem: a 10M-row
	 * build takes about a quarter less time (docs/bench/remote.md). */
	if (o->import_every > 0 || !resuming)
		cfg->import_every = o->import_every > 0 ? o->import_every
				  : strcmp(bf_target_kind(env->target), "local") ? cfg->mem_bytes / 4
										   : 0;
	if (o->sort_dir && *o->sort_dir) {
		rc = absolute_dir(o->sort_dir, cfg->sort_dir, sizeof(cfg->sort_dir), err);
	} else if (!resuming) {
		rc = set_field(cfg->sort_dir, sizeof(cfg->sort_dir), env->default_sort_dir,
			       "the sort dir", err);
	}
	/* etcd: NULL keeps what a resumed job has; "" is the in-process lock. */
	if (rc == 0 && o->etcd && *o->etcd)
		rc = bf_endpoints_check(o->etcd, err);
	if (rc == 0 && (o->etcd || !resuming))
		rc = set_field(cfg->etcd, sizeof(cfg->etcd), o->etcd ? o->etcd : "", "--etcd", err);
	/* The endpoints may be the stored ones: an https:// job resumed
	 * without its CA is refused here, not when the first import waits. */
	if (rc == 0 && *cfg->etcd)
		rc = bf_etcd_security_check(cfg->etcd, o->etcd_security, err);
	if (rc == 0 && ((o->lock_prefix && *o->lock_prefix) || !resuming)) {
		const char *pfx = o->lock_prefix && *o->lock_prefix ? o->lock_prefix : "/bfill/lock";
		if (pfx[0] != '/' || !pfx[strspn(pfx, "/")])
			return bf_errf(err, BF_EINVAL, "--lock-prefix must start with '/' and name something");
		rc = set_field(cfg->lock_prefix, sizeof(cfg->lock_prefix), pfx, "--lock-prefix", err);
	}
	if (rc)
		return rc;
	if (o->lock_ttl_s > 0 || !resuming)
		cfg->lock_ttl_s = o->lock_ttl_s > 0 ? o->lock_ttl_s : 10;
	if (o->lock_timeout_s > 0 || !resuming)
		cfg->lock_timeout_s = o->lock_timeout_s > 0 ? o->lock_timeout_s : 60;
	if (o->run_compression >= 0 || !resuming)
		cfg->run_compression = o->run_compression >= 0 ? o->run_compression : BF_COMPRESS_NONE;
	if (o->target_compression >= 0 || !resuming)
		cfg->target_compression = o->target_compression >= 0 ? o->target_compression : BF_COMPRESS_NONE;
	return 0;
}

/* A column by name, or "name(N)" for a prefix of N characters (a column
 * whose own name ends that way wins). Cuts c at the parenthesis. */
static int column_prefix(const bf_table *t, char *c, int *prefix)
{
	int pos = bf_table_column(t, c), n = 0, end = 0;
	char *open = strrchr(c, '(');

	*prefix = 0;
	if (pos >= 0 || !open || open == c)
		return pos;
	if (sscanf(open, "(%d)%n", &n, &end) != 1 || open[end] || n <= 0)
		return -1;
	*open = '\0';
	while (open > c && isspace((unsigned char)open[-1]))
		*--open = '\0';
	*prefix = n;
	return bf_table_column(t, c);
}

static int parse_columns(const bf_table *t, const char *list, bf_index *x, bf_err *err)
{
	char buf[1024];

	if (!list || !*list)
		return bf_errf(err, BF_EINVAL, "index '%s' needs --columns", x->name);
	if (strlen(list) >= sizeof(buf))
		return bf_errf(err, BF_EINVAL, "--columns list is too long");
	snprintf(buf, sizeof(buf), "%s", list);
	x->ncols = 0;
	/* strsep, not strtok: an empty element ("c," or "a,,b") is a mistake
	 * to report, not something to skip. */
	for (char *rest = buf, *c; (c = strsep(&rest, ","));) {
		while (isspace((unsigned char)*c))
			c++;
		char *end = c + strlen(c);
		while (end > c && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*c)
			return bf_errf(err, BF_EINVAL, "--columns '%s' has an empty column name", list);
		int prefix = 0, pos = column_prefix(t, c, &prefix);
		if (pos < 0)
			return bf_errf(err, BF_EINVAL, "column '%s' does not exist in table '%s'", c, t->name);
		if (prefix && !bf_index_prefix_fits(&t->cols[pos], prefix))
			return bf_errf(err, BF_EINVAL, "column '%s' cannot have a prefix of %d characters: "
				       "prefixes are for CHAR and VARCHAR columns, at most their length",
				       t->cols[pos].name, prefix);
		if (x->ncols == BF_MAX_INDEX_COLUMNS)
			return bf_errf(err, BF_EINVAL, "an index has at most %d columns", BF_MAX_INDEX_COLUMNS);
		for (int k = 0; k < x->ncols; k++)
			if (x->cols[k] == pos)
				return bf_errf(err, BF_EINVAL, "column '%s' appears twice in index '%s'", c, x->name);
		x->prefix[x->ncols] = prefix;
		x->cols[x->ncols++] = pos;
	}
	return 0;
}

/* ---- creating or resuming ---- */

static int add_spec(job_run *r, const bf_index_spec *s, int first_new, bf_err *err)
{
	bf_table *t = &r->table;
	bf_job *job = &r->job;
	bf_index x = { .unique = s->unique, .state = BF_INDEX_WRITE_REORG };
	int rc;

	if (!bf_name_valid(s->name))
		return bf_errf(err, BF_EINVAL, "index name '%s' must be 1..%d characters, no control "
			       "characters and no trailing space", s->name ? s->name : "", BF_NAME_CHARS);
	snprintf(x.name, sizeof(x.name), "%s", s->name);
	int pos = bf_table_index(t, s->name);
	/* An earlier spec of this job: no job exists yet to name. */
	if (pos >= first_new)
		return bf_errf(err, BF_EINVAL, "index '%s' is named twice in this job", s->name);
	if (pos >= 0) {
		const bf_index *old = &t->indexes[pos];
		if (old->state == BF_INDEX_PUBLIC)
			return bf_errf(err, BF_EEXIST, "index '%s' already exists on table '%s'", s->name,
				       t->name);
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
	return 0;
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
	memset(job, 0, sizeof(*job));
	rc = fill_config(&job->cfg, o, r->env, false, err);
	if (rc)
		return rc;
	rc = bf_catalog_get_table(r->cat, o->table, t, err);
	if (rc)
		return rc;
	if (t->nindexes + o->nspecs > BF_MAX_INDEXES)
		return bf_errf(err, BF_EINVAL, "table '%s' can't have more than %d indexes", t->name,
			       BF_MAX_INDEXES);
	int first_new = t->nindexes;
	for (int i = 0; i < o->nspecs && rc == 0; i++)
		rc = add_spec(r, &o->specs[i], first_new, err);
	if (rc)
		return rc;
	if (o->job_id > 0) {
		rc = bf_catalog_get_job(r->cat, o->job_id, &existing, err);
		if (rc == 0)
			return bf_errf(err, BF_EEXIST, "job %" PRId64 " already exists (use --resume to continue it)",
				       o->job_id);
		/* Not knowing (a catalog out of reach) is not "it exists". */
		if (rc != BF_ENOTFOUND)
			return rc;
		job->id = o->job_id;
		/* Automatic ids never come back to one given by hand. */
		rc = bf_catalog_reserve_id(r->cat, "job", job->id, err);
	} else {
		rc = bf_catalog_next_id(r->cat, "job", &job->id, err);
	}
	if (rc)
		return rc;
	for (int i = first_new; i < t->nindexes; i++)
		t->indexes[i].job_id = job->id;
	snprintf(job->table, sizeof(job->table), "%s", t->name);
	job->table_id = t->id;
	job->state = BF_JOB_QUEUEING;
	snprintf(job->phase, sizeof(job->phase), "queued");
	job->start_ms = bf_wall_ms();
	job->rows_total = t->rows_hint;
	/* The job and the table naming its indexes appear together, so an
	 * index in write-reorg always has a job to resume or cancel. */
	return bf_catalog_put_table_and_job(r->cat, t, job, err);
}

static int load_job(job_run *r, bool *noop, bf_err *err)
{
	bf_job *job = &r->job;
	int rc = bf_catalog_get_job(r->cat, r->o->job_id, job, err);

	*noop = false;
	if (rc)
		return rc;
	if (job->state == BF_JOB_DONE) {
		*noop = true;
		return 0;
	}
	if (job->state == BF_JOB_CANCELLED)
		return bf_errf(err, BF_ESTATE, "job %" PRId64 " was cancelled; start a new one", job->id);
	if (job->rolled_back)
		return bf_errf(err, BF_ESTATE, "job %" PRId64 " failed and was rolled back; start a new one",
			       job->id);
	rc = bf_catalog_get_table(r->cat, job->table, &r->table, err);
	if (rc)
		return rc;
	for (int i = 0; i < job->nindexes; i++) {
		int pos = bf_table_index_by_id(&r->table, job->index_ids[i]);
		if (pos < 0 || r->table.indexes[pos].state == BF_INDEX_PUBLIC)
			return bf_errf(err, BF_ESTATE, "job %" PRId64 ": index '%s' is not awaiting a build",
				       job->id, job->index_names[i]);
	}
	return fill_config(&job->cfg, r->o, r->env, true, err);
}

/* Rough bytes of one entry of an index in the engine, for the disk check. */
static uint64_t entry_estimate(const bf_table *t, const bf_index *x)
{
	uint64_t n = BF_INDEX_PREFIX_LEN + 9 + 8 + BF_INDEX_VALUE_MAX + 16;
	for (int c = 0; c < x->ncols; c++) {
		const bf_column *col = &t->cols[x->cols[c]];
		size_t chars = (size_t)(x->prefix[c] ? x->prefix[c] : col->len);
		switch (col->type) {
		case BF_COL_CHAR:
			n += 1 + bf_codec_bytes_len(chars);
			break;
		case BF_COL_VARCHAR:
			n += 1 + bf_codec_bytes_len(chars / 2);
			break;
		case BF_COL_DECIMAL:
			n += 3 + bf_decimal_bin_len(col->len, col->scale);
			break;
		default: /* integers, DOUBLE, DATETIME: a flag and 8 bytes */
			n += 9;
			break;
		}
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

/* ---- hooks called by the pipeline and the lock ---- */

bool job_target_waiting(bf_target *t, char *out, size_t n)
{
	char tw[BF_ERR_MSG_MAX];

	if (!bf_target_waiting(t, tw, sizeof(tw))) {
		if (n)
			out[0] = '\0';
		return false;
	}
	snprintf(out, n, "waiting for the store nodes: %s", tw);
	return true;
}

static void hook_progress(void *arg, uint64_t rows, const char *phase, bool importing)
{
	job_run *r = arg;
	int64_t now = bf_now_ms();
	bf_job copy;

	pthread_mutex_lock(&r->mu);
	r->job.rows_scanned += rows - r->job.rows_done;
	r->job.rows_done = rows;
	r->job.importing = importing;
	if (r->job.rows_done > r->job.rows_total && r->job.rows_total)
		r->job.rows_total = r->job.rows_done;
	/* Status tells what the store nodes make the job wait for, unless it
	 * waits for the lock. */
	if (!r->lock_waiting)
		job_target_waiting(r->target, r->job.waiting, sizeof(r->job.waiting));
	if (!r->job.waiting[0])
		snprintf(r->job.phase, sizeof(r->job.phase), "%s", phase);
	/* Rows per second since the snapshot before last: over two to four
	 * seconds once the run is under way, and from its very first tick
	 * (counted from the start of the run) before that. */
	if (now > r->rate_ms)
		r->job.rate = (double)(rows - r->rate_rows) * 1000.0 / (double)(now - r->rate_ms);
	if (now - r->snap_ms >= RATE_WINDOW_MS) {
		r->rate_ms = r->snap_ms;
		r->rate_rows = r->snap_rows;
		r->snap_ms = now;
		r->snap_rows = rows;
	}
	/* A handful of files: cheap enough to measure on every tick. */
	uint64_t du = bf_du(r->job_dir);
	if (du > r->peak_sort)
		r->peak_sort = du;
	if (now - r->last_save_ms >= STATUS_SAVE_MS)
		job_save_locked(r);
	copy = r->job;
	pthread_mutex_unlock(&r->mu);
	if (r->o->progress)
		r->o->progress(&copy, r->o->progress_arg);
}

static bool hook_interrupted(void *arg)
{
	job_run *r = arg;
	return (r->o->interrupt && *r->o->interrupt) || (r->part && atomic_load(&r->part->stop));
}

static void on_lock_wait(const char *reason, void *arg)
{
	job_run *r = arg;
	pthread_mutex_lock(&r->mu);
	r->lock_waiting = reason != NULL;
	if (reason)
		snprintf(r->job.waiting, sizeof(r->job.waiting), "waiting for etcd lock: %s", reason);
	else
		r->job.waiting[0] = '\0';
	/* Always written at once: this is what `bfill status` must show. */
	job_save_locked(r);
	pthread_mutex_unlock(&r->mu);
}

/* A new lock session's lease goes on record before any key is put under
 * it: if this process dies holding the lock, a resume revokes the lease
 * instead of queueing behind its key until the TTL runs out. */
static void on_lock_lease(int ix, int64_t lease, void *arg)
{
	job_run *r = arg;
	pthread_mutex_lock(&r->mu);
	r->job.lock_leases[ix] = lease;
	job_save_locked(r);
	pthread_mutex_unlock(&r->mu);
}

/* ---- the run ---- */

/* "<prefix>/<store uuid>/<job>" and the lock scope "<uuid>/<job>": job
 * ids are per store, so the store's UUID keeps two stores sharing one etcd
 * off each other's locks. */
static void lock_names(job_run *r, char *scope, size_t n)
{
	const char *uuid = r->env->lock_scope ? r->env->lock_scope : "";
	size_t plen = strlen(r->job.cfg.lock_prefix);
	while (plen > 1 && r->job.cfg.lock_prefix[plen - 1] == '/')
		plen--;
	if (*uuid)
		snprintf(scope, n, "%s/%" PRId64, uuid, r->job.id);
	else
		snprintf(scope, n, "%" PRId64, r->job.id);
	snprintf(r->job.lock_key, sizeof(r->job.lock_key), "%.*s/%s", (int)plen,
		 r->job.cfg.lock_prefix, scope);
}

static int open_backend(job_run *r, uint64_t first_gen, uint64_t gen, const int64_t *stale,
			bf_err *err)
{
	bf_job *job = &r->job;
	bf_backend_index bidx[BF_MAX_JOB_INDEXES];
	char scope[BF_FENCE_KEY_MAX];

	for (int i = 0; i < job->nindexes; i++) {
		const bf_index *x = &r->table.indexes[bf_table_index_by_id(&r->table, job->index_ids[i])];
		bidx[i].index_id = x->id;
		bidx[i].unique = x->unique;
	}
	lock_names(r, scope, sizeof(scope));
	bf_backend_opts bo = {
		.target = r->target, .table_id = job->table_id, .job_id = job->id,
		.job_dir = r->job_dir, .first_gen = first_gen, .generation = gen,
		.nindexes = job->nindexes, .indexes = bidx,
		.run_compression = job->cfg.run_compression,
		.target_compression = job->cfg.target_compression,
		.import_threads = job->cfg.workers,
		.has_imported = job->cp.has_imported || job->cp.imports > 0,
		.lock_scope = scope,
		.lock = {
			.endpoints = job->cfg.etcd, .etcd_security = r->o->etcd_security,
			.prefix = job->cfg.lock_prefix,
			.ttl_s = job->cfg.lock_ttl_s, .timeout_s = job->cfg.lock_timeout_s,
			.on_wait = on_lock_wait, .on_wait_arg = r,
		},
		.on_lease = on_lock_lease,
		.stale_leases = stale,
	};
	return bf_backend_open(&bo, &r->backend, err);
}

static int run_job(job_run *r, bf_add_index_result *res, bf_err *err)
{
	bf_job *job = &r->job;
	bf_pipe_index pidx[BF_MAX_JOB_INDEXES];
	int64_t stale[BF_MAX_JOB_INDEXES];
	run_plan plan = { 0 };
	bf_pipe_stats ps;
	int rc;

	if (r->part) {
		job_part_plan(r, &plan);
	} else {
		bool has_start;
		job_dir_of(job, r->job_dir, sizeof(r->job_dir));
		plan.base_rows = job_plan_start(r, plan.start, &has_start, &plan.first_gen, &plan.gen);
		plan.start_len = has_start ? BF_RECORD_KEY_LEN : 0;
	}
	uint64_t base_rows = plan.base_rows;

	/* The leases of a run that died are revoked, not waited out. */
	memcpy(stale, job->lock_leases, sizeof(stale));
	memset(job->lock_leases, 0, sizeof(job->lock_leases));
	/* A part's job names no leases of its own: those there may be live
	 * workers'. */
	if (r->part)
		memset(stale, 0, sizeof(stale));
	job->state = BF_JOB_RUNNING;
	snprintf(job->phase, sizeof(job->phase), "scan");
	job->waiting[0] = '\0';
	job->last_error[0] = '\0';
	job->pid = getpid();
	job->end_ms = 0;
	job->rows_done = base_rows;
	job->rows_scanned = 0;
	job->importing = false;
	r->rate_ms = r->snap_ms = bf_now_ms();
	r->rate_rows = r->snap_rows = base_rows;
	job->rate = 0;
	rc = open_backend(r, plan.first_gen, plan.gen, stale, err);
	if (rc)
		return rc;
	/* Running from the first moment: nothing before the scan waits on etcd. */
	pthread_mutex_lock(&r->mu);
	job_save_locked(r);
	pthread_mutex_unlock(&r->mu);
	if (r->persist_rc)
		return bf_errf(err, r->persist_rc, "%s", bf_err_text(&r->persist_err));

	/* A part's share of the rows is not known before its scan. */
	uint64_t rows_left = job->rows_total > base_rows && !r->part ? job->rows_total - base_rows : 0;
	rc = check_disk(r, rows_left, err);
	if (rc)
		return rc;
	for (int i = 0; i < job->nindexes; i++) {
		const bf_index *x = &r->table.indexes[bf_table_index_by_id(&r->table, job->index_ids[i])];
		pidx[i].id = x->id;
		pidx[i].unique = x->unique;
		pidx[i].ncols = x->ncols;
		memcpy(pidx[i].cols, x->cols, sizeof(x->cols));
		memcpy(pidx[i].prefix, x->prefix, sizeof(x->prefix));
		pidx[i].has_prefix = false;
		for (int k = 0; k < x->ncols; k++)
			pidx[i].has_prefix |= x->prefix[k] != 0;
	}
	uint64_t mem = job->cfg.mem_bytes;
	uint64_t budget = mem >= 2 * MEM_RESERVE ? mem - MEM_RESERVE : mem / 2;
	bf_pipe_opts po = {
		.target = r->target, .table = &r->table, .nindexes = job->nindexes, .indexes = pidx,
		.readers = job->cfg.workers, .writers = job->cfg.workers,
		.sort_budget = (size_t)budget, .backend = r->backend,
		.import_every = job->cfg.import_every,
		.start_key = plan.start_len ? plan.start : NULL, .start_len = plan.start_len,
		.end_key = plan.end, .end_len = plan.end_len, .base_rows = base_rows,
		.hooks = {
			.arg = r, .progress = hook_progress,
			.flushed = r->part ? job_part_flushed : job_hook_flushed,
			.imported = r->part ? job_part_imported : job_hook_imported,
			.interrupted = hook_interrupted,
		},
	};
	rc = bf_pipe_run(&po, &ps, err);
	res->rows = ps.rows;
	res->scan_seconds = ps.scan_seconds;
	res->import_seconds = ps.import_seconds;
	bf_backend_stats_get(r->backend, &res->backend);
	res->index_keys = res->backend.imported_keys;
	res->index_bytes = res->backend.imported_bytes;
	pthread_mutex_lock(&r->mu);
	job->rows_scanned = ps.rows;
	pthread_mutex_unlock(&r->mu);
	if (rc == 0 && r->persist_rc)
		rc = bf_errf(err, r->persist_rc, "%s", bf_err_text(&r->persist_err));
	return rc;
}

/* A job that is over (done now, or found done) leaves no sort files. */
static void remove_sort_files(job_run *r)
{
	if (r->backend)
		bf_backend_remove_engines(r->backend, NULL);
	job_dir_of(&r->job, r->job_dir, sizeof(r->job_dir));
	bf_rmtree(r->job_dir, NULL);
	rmdir(r->job.cfg.sort_dir); /* only if no other job uses it */
}

int bf_job_env_store(bf_store *st, bf_target *target, bf_job_env *env, char *sort_buf,
		     size_t sort_buf_len, bf_target **own_target, bf_err *err)
{
	int rc = 0;

	*own_target = NULL;
	memset(env, 0, sizeof(*env)); /* what a store does not use stays NULL */
	if (!target) {
		rc = bf_target_local_create(st, own_target, err);
		target = *own_target;
	}
	bf_job_default_sort_dir(bf_store_path(st), sort_buf, sort_buf_len);
	env->catalog = bf_store_catalog(st);
	env->target = target;
	env->lock_scope = bf_store_uuid(st);
	env->live_dir = bf_store_path(st);
	env->default_sort_dir = sort_buf;
	return rc;
}

int bf_add_index(bf_store *st, const bf_add_index_opts *opts, bf_add_index_result *res, bf_err *err)
{
	char sort[PATH_MAX];
	bf_target *own = NULL;
	bf_job_env env;
	int rc = bf_job_env_store(st, opts->target, &env, sort, sizeof(sort), &own, err);

	if (rc)
		memset(res, 0, sizeof(*res));
	else
		rc = bf_add_index_in(&env, opts, res, err);
	bf_target_destroy(own);
	return rc;
}

/* What every run reports at its end; the run is over after this. */
static void run_end(job_run *r, bool noop, int64_t t0, bf_add_index_result *res)
{
	res->job = r->job;
	res->noop = noop;
	res->peak_sort_bytes = r->peak_sort;
	res->seconds = (double)(bf_now_ms() - t0) / 1e3;
	pthread_mutex_destroy(&r->mu);
}

int bf_add_index_in(const bf_job_env *env, const bf_add_index_opts *opts, bf_add_index_result *res,
		    bf_err *err)
{
	job_run r = { .env = env, .cat = env->catalog, .target = env->target, .o = opts,
		      .live_fd = -1 };
	int64_t t0 = bf_now_ms();
	void *presence = NULL;
	bool noop = false;
	int rc = 0;

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
	if (noop)
		/* A process that died between the last commit and its clean-up
		 * left sort files; the job is done, so they can go. */
		remove_sort_files(&r);
	if (rc || noop)
		goto out;
	/* Held while the job runs: how status tells a live job from one whose
	 * process is gone (a pid can be reused). Another holder means the job
	 * is running elsewhere right now. */
	rc = bf_job_live_hold(env->live_dir, r.job.id, &r.live_fd, err);
	if (rc == BF_ELOCKED) {
		rc = bf_errf(err, BF_ESTATE, "job %" PRId64 " is running in another process (pid %" PRId64 ")",
			     r.job.id, r.job.pid);
		goto out;
	}
	if (rc)
		goto out;
	if (env->announce)
		presence = env->announce(env->announce_arg, r.job.id);
	rc = run_job(&r, res, err);
	if (rc && r.committed) {
		/* An interrupt or error that came after the last import had
		 * committed changes nothing: the job is done, and failure
		 * handling would contradict the record. */
		rc = 0;
		bf_err_clear(err);
	}
	if (rc) {
		/* Setup errors before the job ran still mark it failed. */
		rc = job_handle_failure(&r, rc, err);
		goto out;
	}
	remove_sort_files(&r);
out:
	if (r.backend)
		bf_backend_close(r.backend);
	if (presence)
		env->withdraw(env->announce_arg, presence);
	bf_job_live_release(r.live_fd);
	run_end(&r, noop, t0, res);
	return rc;
}

/* ---- shared jobs: submitting, and one subtask's run ---- */

/* The table's first and last handles, for cutting a table in few regions. */
static int handle_span(bf_target *t, int64_t table_id, int64_t *first, int64_t *last,
		       bf_err *err)
{
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN];
	bf_target_iter *it = NULL;
	bf_scan_opts so = { 0 };
	size_t kl;
	int rc;

	*first = *last = 0;
	bf_pipe_record_range(table_id, lo, hi);
	rc = bf_target_scan(t, lo, sizeof(lo), hi, sizeof(hi), &so, &it, err);
	if (rc)
		return rc;
	if (bf_target_iter_valid(it)) {
		const uint8_t *k = bf_target_iter_key(it, &kl);
		rc = bf_codec_decode_record_key(k, kl, NULL, first);
		bf_target_iter_seek_last(it);
		if (rc == 0 && bf_target_iter_valid(it)) {
			k = bf_target_iter_key(it, &kl);
			rc = bf_codec_decode_record_key(k, kl, NULL, last);
		}
		if (rc)
			rc = bf_errf(err, rc, "malformed record key in table %" PRId64, table_id);
	}
	if (rc == 0)
		rc = bf_target_iter_status(it, err);
	bf_target_iter_destroy(it);
	return rc;
}

/* The subtasks of a new job: a few regions each, or even steps of the
 * table's handles where its regions are too few. */
static int put_subtasks(const bf_job_env *env, const bf_job *job, size_t *n, bf_err *err)
{
	bf_subtask *s = NULL;
	int64_t first, last;
	int rc = bf_subtask_plan(env->cluster, job->id, job->table_id, 2, &s, n, err);

	if (rc == 0 && *n < BF_WORKER_SUBTASKS)
		rc = handle_span(env->target, job->table_id, &first, &last, err);
	if (rc == 0 && *n < BF_WORKER_SUBTASKS)
		rc = bf_subtask_refine(&s, n, job->table_id, first, last, BF_WORKER_SUBTASKS, err);
	if (rc == 0)
		rc = bf_subtask_put_all(env->etcd, bf_cluster_root(env->cluster), s, *n, err);
	free(s);
	return rc;
}

int bf_job_submit_in(const bf_job_env *env, const bf_add_index_opts *opts, int64_t *job_id,
		     size_t *nsubtasks, bf_err *err)
{
	job_run r = { .env = env, .cat = env->catalog, .target = env->target, .o = opts,
		      .live_fd = -1 };
	int rc;

	*job_id = 0;
	*nsubtasks = 0;
	if (!env->etcd || !env->cluster)
		return bf_errf(err, BF_EINVAL, "only a cluster's jobs are shared by workers");
	pthread_mutex_init(&r.mu, NULL);
	rc = new_job(&r, err);
	if (rc == 0) {
		*job_id = r.job.id;
		/* A job without its subtasks (etcd failed in between) gets
		 * them from the first worker that finds it: submitted all the
		 * same. */
		bf_err e = { 0 };
		rc = put_subtasks(env, &r.job, nsubtasks, &e);
		if (rc == BF_EUNAVAIL || rc == BF_ETIMEDOUT || rc == BF_EUNKNOWN)
			rc = 0;
		else if (rc)
			*err = e;
	}
	pthread_mutex_destroy(&r.mu);
	return rc;
}

int job_submit_missing(const bf_job_env *env, const bf_job *job, bf_err *err)
{
	size_t n;
	int rc = put_subtasks(env, job, &n, err);
	return rc == BF_EEXIST ? 0 : rc;
}

int job_part_run(const bf_job_env *env, const bf_add_index_opts *opts, job_part *part,
		 bf_add_index_result *res, bf_err *err)
{
	job_run r = { .env = env, .cat = env->catalog, .target = env->target, .o = opts,
		      .live_fd = -1, .part = part };
	int64_t t0 = bf_now_ms();
	bool noop = false;
	int rc;

	memset(res, 0, sizeof(*res));
	pthread_mutex_init(&r.mu, NULL);
	rc = load_job(&r, &noop, err);
	if (rc == 0 && !noop)
		rc = run_job(&r, res, err);
	if (rc && r.committed) {
		rc = 0; /* the final import made it: what came after changes nothing */
		bf_err_clear(err);
	}
	if (rc)
		rc = job_handle_failure(&r, rc, err);
	if (r.backend) {
		bf_backend_remove_engines(r.backend, NULL);
		bf_backend_close(r.backend);
	}
	/* A part starts over from its subtask's checkpoint wherever it runs
	 * next: its engines are of no use to anyone. */
	if (r.job_dir[0])
		bf_rmtree(r.job_dir, NULL);
	run_end(&r, noop, t0, res);
	return rc;
}
