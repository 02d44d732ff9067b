/*
 * What happens when an add-index job does not finish (DESIGN §7): a failed
 * run is recorded as resumable, keeping everything it did, unless no retry
 * can fix it (a duplicate in a unique index), which rolls it back; cancel
 * and drop-index remove entries on request.
 * Depends on the ingest backend and target, the catalog, codec and util.
 */
#include "pipeline/job_impl.h"
#include "bfill/codec.h"
#include "bfill/table.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void job_drop_indexes(bf_table *t, const bf_job *job)
{
	for (int i = 0; i < job->nindexes; i++) {
		int pos = bf_table_index_by_id(t, job->index_ids[i]);
		if (pos < 0)
			continue;
		t->indexes[pos] = t->indexes[--t->nindexes];
	}
}

static int delete_index_entries(bf_target *t, int64_t table_id, int64_t index_id, bf_err *err)
{
	uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
	bf_codec_index_prefix(lo, table_id, index_id);
	bf_codec_index_prefix(hi, table_id, index_id + 1);
	return bf_target_delete_range(t, lo, sizeof(lo), hi, sizeof(hi), err);
}

int job_delete_entries(bf_target *t, const bf_job *job, bf_err *err)
{
	int rc = 0;
	for (int i = 0; i < job->nindexes && rc == 0; i++)
		rc = delete_index_entries(t, job->table_id, job->index_ids[i], err);
	return rc;
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
			bf_column_format_value(&r->table.cols[x->cols[c]], &cols[c], part, sizeof(part));
			snprintf(value + strlen(value), sizeof(value) - strlen(value), "%s%s", c ? "-" : "", part);
		}
	}
	bf_errf(err, BF_EDUP, "Duplicate entry '%s' for key '%s.%s'", value, r->table.name, x->name);
}

/* Appends " (and <what> failed: <why>)" to the job's last error. */
static void note_failure(job_run *r, const char *what, const bf_err *e)
{
	size_t n = strlen(r->job.last_error);
	snprintf(r->job.last_error + n, sizeof(r->job.last_error) - n, " (and %s failed: %s)", what,
		 bf_err_text(e));
}

/* The data forbids the index: no retry can fix it, so nothing of it
 * stays — entries, engines, the index records. Caller holds r->mu. */
static void roll_back_locked(job_run *r)
{
	bf_err e = { 0 };

	r->job.rolled_back = true;
	if (job_delete_entries(r->target, &r->job, &e))
		note_failure(r, "removing its entries", &e);
	memset(&r->job.cp, 0, sizeof(r->job.cp));
	job_drop_indexes(&r->table, &r->job);
	if (bf_catalog_put_table_and_job(r->cat, &r->table, &r->job, &e))
		r->persist_rc = e.code;
	if (r->backend)
		bf_backend_remove_engines(r->backend, NULL);
	bf_rmtree(r->job_dir, NULL);
	rmdir(r->job.cfg.sort_dir); /* only if no other job uses it */
}

/* How long a cancel or rollback waits for the workers of a shared job to
 * leave: a worker cut off from etcd loses its claim when its lease (10 s)
 * runs out, and its lock with it. */
#define LEAVE_WAIT_MS 30000

/* Every worker of a shared job off it before its entries go: a stop asked
 * for in etcd, then no claim left. Nothing to do for a local store's job. */
static int stop_workers(const bf_job_env *env, int64_t job_id, const char *why, bf_err *err)
{
	const char *root;
	int rc;

	if (!env->etcd || !env->cluster)
		return 0;
	root = bf_cluster_root(env->cluster);
	rc = bf_subtask_stop(env->etcd, root, job_id, why, err);
	return rc ? rc : bf_subtask_wait_unclaimed(env->etcd, root, job_id, LEAVE_WAIT_MS, err);
}

/* A duplicate met by one worker of a shared job: it gives its subtask
 * back, waits for the others to leave, and rolls the job back from the
 * records as they are then. */
static int part_roll_back(job_run *r, bf_err *err)
{
	job_part *p = r->part;
	bf_err e = { 0 };
	int rc = bf_subtask_release(p->etcd, p->root, &p->sub, p->worker, &e);

	if (rc == 0)
		rc = stop_workers(r->env, r->job.id, "rollback", &e);
	if (rc == 0)
		rc = bf_catalog_get_job(r->cat, r->job.id, &r->job, &e);
	if (rc == 0)
		rc = bf_catalog_get_table(r->cat, r->job.table, &r->table, &e);
	if (rc) {
		/* The next worker to meet the duplicate tries again. */
		bf_err_prefix(err, err->code, "and its rollback failed (%s)", bf_err_text(&e));
		return rc;
	}
	return 0;
}

int job_handle_failure(job_run *r, int rc, bf_err *err)
{
	bool interrupted = rc == BF_ECANCELLED && r->o->interrupt && *r->o->interrupt;

	if (rc == BF_EDUP && r->backend)
		duplicate_message(r, err);
	if (r->part && (rc != BF_EDUP || part_roll_back(r, err)))
		return rc;
	pthread_mutex_lock(&r->mu);
	r->part = NULL; /* the job's record from here on */
	r->job.end_ms = bf_wall_ms();
	r->job.pid = 0;
	r->job.waiting[0] = '\0';
	r->job.importing = false;
	snprintf(r->job.last_error, sizeof(r->job.last_error), "%s", bf_err_text(err));
	r->job.state = interrupted ? BF_JOB_PAUSED : BF_JOB_FAILED;
	snprintf(r->job.phase, sizeof(r->job.phase), "%s", interrupted ? "paused" : "failed");
	if (rc == BF_EDUP) {
		roll_back_locked(r);
	} else {
		/*
		 * Anything else a retry can fix: what was imported stays (it is
		 * invisible while the indexes are not public), and so do the
		 * engines and both checkpoints, for --resume. A round that failed
		 * part-way may have ingested some of its files; the resume imports
		 * the same generations again, which writes the same keys.
		 */
		job_save_locked(r);
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* ---- cancel and drop ---- */

int bf_job_cancel_in(const bf_job_env *env, int64_t job_id, bf_err *err)
{
	bf_catalog *cat = env->catalog;
	bf_job job;
	bf_table tab;
	char dir[PATH_MAX];
	int rc = bf_catalog_get_job(cat, job_id, &job, err);

	if (rc)
		return rc;
	if (job.state == BF_JOB_DONE)
		return bf_errf(err, BF_ESTATE, "job %" PRId64 " is done; its indexes are public", job_id);
	if (job.state == BF_JOB_CANCELLED)
		return 0;
	/* The workers of a shared job leave it first; one of them may have
	 * finished it meanwhile. */
	rc = stop_workers(env, job_id, "cancel", err);
	if (rc == 0 && env->etcd)
		rc = bf_catalog_get_job(cat, job_id, &job, err);
	if (rc == 0 && job.state == BF_JOB_DONE)
		return bf_errf(err, BF_ESTATE, "job %" PRId64 " is done; its indexes are public", job_id);
	if (rc == 0)
		rc = bf_catalog_get_table(cat, job.table, &tab, err);
	/* Entries first: a crash in between leaves a job to cancel again,
	 * never entries without an index record. */
	if (rc == 0)
		rc = job_delete_entries(env->target, &job, err);
	if (rc)
		goto out;
	job_drop_indexes(&tab, &job);
	job.state = BF_JOB_CANCELLED;
	snprintf(job.phase, sizeof(job.phase), "cancelled");
	job.waiting[0] = '\0';
	job.pid = 0;
	job.importing = false;
	job.end_ms = bf_wall_ms();
	memset(&job.cp, 0, sizeof(job.cp));
	rc = bf_catalog_put_table_and_job(cat, &tab, &job, err);
	if (rc)
		goto out;
	job_dir_of(&job, dir, sizeof(dir));
	bf_rmtree(dir, NULL);
	rmdir(job.cfg.sort_dir);
out:
	return rc;
}

/* Whether a job may still come back for index x of table t: an unfinished
 * job whose record names this very index. A missing, damaged or finished
 * job, or one that builds something else (its id was given to another job
 * once), leaves the index to whoever drops it. */
static bool index_has_live_job(bf_catalog *cat, const bf_table *t, const bf_index *x)
{
	bf_job job;
	if (x->state == BF_INDEX_PUBLIC || bf_catalog_get_job(cat, x->job_id, &job, NULL) ||
	    bf_job_state_final(job.state) || job.table_id != t->id)
		return false;
	for (int i = 0; i < job.nindexes; i++)
		if (job.index_ids[i] == x->id)
			return true;
	return false;
}

int bf_index_drop_in(const bf_job_env *env, const char *table, const char *index, bf_err *err)
{
	bf_catalog *cat = env->catalog;
	bf_table tab;
	int rc = bf_catalog_get_table(cat, table, &tab, err);
	int pos;

	if (rc)
		return rc;
	pos = bf_table_index(&tab, index);
	if (pos < 0)
		return bf_errf(err, BF_ENOTFOUND, "index '%s' does not exist on table '%s'", index, table);
	if (index_has_live_job(cat, &tab, &tab.indexes[pos]))
		return bf_errf(err, BF_ESTATE, "index '%s' is being built by job %" PRId64
			       "; cancel the job instead (bfill cancel --job %" PRId64 ")",
			       index, tab.indexes[pos].job_id, tab.indexes[pos].job_id);
	/* Entries first: a crash in between leaves an index record whose
	 * entries are gone (check-index says so), never orphaned entries. */
	rc = delete_index_entries(env->target, tab.id, tab.indexes[pos].id, err);
	if (rc == 0) {
		tab.indexes[pos] = tab.indexes[--tab.nindexes];
		rc = bf_catalog_put_table(cat, &tab, err);
	}
	return rc;
}

/* The local-store forms: the environment of st. */
static int in_store(bf_store *st, bf_target *target, int64_t job_id, const char *table,
		    const char *index, bf_err *err)
{
	char sort[PATH_MAX];
	bf_target *own = NULL;
	bf_job_env env;
	int rc = bf_job_env_store(st, target, &env, sort, sizeof(sort), &own, err);

	if (rc == 0)
		rc = table ? bf_index_drop_in(&env, table, index, err)
			   : bf_job_cancel_in(&env, job_id, err);
	bf_target_destroy(own);
	return rc;
}

int bf_job_cancel(bf_store *st, bf_target *target, int64_t job_id, bf_err *err)
{
	return in_store(st, target, job_id, NULL, NULL, err);
}

int bf_index_drop(bf_store *st, bf_target *target, const char *table, const char *index,
		  bf_err *err)
{
	return in_store(st, target, 0, table, index, err);
}
