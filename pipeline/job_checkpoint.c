/*
 * Checkpoints of an add-index job (DESIGN §7): where a run starts, and the
 * hooks that advance the flushed and imported checkpoints as data becomes
 * durable in the engines and in the target.
 *
 * The flushed checkpoint names a range of engine generations,
 * cp.first_gen .. cp.engine_id ("g<N>"): an import seals the generation
 * being filled and imports it while the next fills, so data before the
 * flushed key may sit in any of them (or in the target already). Only a
 * committed import moves first_gen.
 * Depends on the ingest backend, the catalog and util.
 */
#include "pipeline/job_impl.h"
#include "util/util.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool dir_exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool parse_gen(const char *engine_id, uint64_t *gen)
{
	return sscanf(engine_id, "g%" SCNu64, gen) == 1;
}

/* True when every index has every generation first..last on disk. */
static bool generations_on_disk(const job_run *r, uint64_t first, uint64_t last)
{
	char dir[PATH_MAX + 64];
	for (int i = 0; i < r->job.nindexes; i++) {
		for (uint64_t g = first; g <= last; g++) {
			snprintf(dir, sizeof(dir), "%s/idx-%" PRId64 "-g%" PRIu64, r->job_dir,
				 r->job.index_ids[i], g);
			if (!dir_exists(dir))
				return false;
		}
	}
	return true;
}

/* Removes what a dead run left that the checkpoint does not name: newer
 * generations (their data is after the checkpoint and is scanned again),
 * older ones (imported already) and half-written import files. */
static void remove_unnamed(const job_run *r, uint64_t first, uint64_t last)
{
	char path[PATH_MAX + 300];
	DIR *d = opendir(r->job_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		int64_t id;
		uint64_t g;
		int end = 0;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (sscanf(e->d_name, "idx-%" SCNd64 "-g%" SCNu64 "%n", &id, &g, &end) == 2 &&
		    !e->d_name[end] && g >= first && g <= last)
			continue;
		snprintf(path, sizeof(path), "%s/%s", r->job_dir, e->d_name);
		bf_rmtree(path, NULL);
	}
	closedir(d);
}

uint64_t job_plan_start(job_run *r, uint8_t *start, bool *has_start, uint64_t *first_gen,
			uint64_t *gen)
{
	bf_checkpoint *cp = &r->job.cp;
	uint64_t last = 0;
	bool engines = cp->has_flushed && parse_gen(cp->engine_id, &last) && cp->first_gen <= last &&
		       generations_on_disk(r, cp->first_gen, last);

	*has_start = false;
	if (engines) {
		remove_unnamed(r, cp->first_gen, last);
		*first_gen = cp->first_gen;
		*gen = last;
		memcpy(start, cp->flushed_key, BF_RECORD_KEY_LEN);
		*has_start = true;
		return cp->flushed_rows;
	}
	/* Whatever engine files exist are not the ones the checkpoint names:
	 * start over from what the target holds, in a fresh generation. */
	bf_rmtree(r->job_dir, NULL);
	parse_gen(cp->engine_id, &last);
	*first_gen = *gen = last + 1;
	cp->has_flushed = false;
	cp->flushed_rows = 0;
	cp->first_gen = *gen;
	snprintf(cp->engine_id, sizeof(cp->engine_id), "g%" PRIu64, *gen);
	if (cp->has_imported) {
		memcpy(start, cp->imported_key, BF_RECORD_KEY_LEN);
		*has_start = true;
		return cp->imported_rows;
	}
	return 0;
}

int job_hook_flushed(void *arg, const uint8_t *key, uint64_t rows, bf_err *err)
{
	job_run *r = arg;
	bf_backend_stats bs;

	/* Read after the pipeline computed what is durable: a generation
	 * sealed before that is counted in. */
	(void)err;
	bf_backend_stats_get(r->backend, &bs);
	pthread_mutex_lock(&r->mu);
	r->job.cp.has_flushed = true;
	memcpy(r->job.cp.flushed_key, key, BF_RECORD_KEY_LEN);
	r->job.cp.flushed_rows = rows;
	snprintf(r->job.cp.engine_id, sizeof(r->job.cp.engine_id), "g%" PRIu64, bs.generation);
	/* A flushed checkpoint that can't be written now (a catalog in etcd
	 * out of reach) costs a resume some rescanning, nothing else: the
	 * next one carries it. */
	job_save_locked(r);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* A catalog write that may not have reached the catalog (etcd out of reach
 * or slow) can't commit an import; the round starts over as if its lock
 * were lost (re-importing is idempotent), for as long as the lock timeout
 * allows. */
int job_commit_result(int rc, bf_err *err)
{
	if (rc == BF_EUNAVAIL || rc == BF_ETIMEDOUT || rc == BF_EUNKNOWN)
		return bf_err_prefix(err, BF_ELOCKLOST, "the import could not be recorded");
	return rc;
}

/* The final import: the indexes turn public and the job is done, in one
 * catalog write. */
int job_finish_locked(job_run *r, uint64_t rows, bf_err *err)
{
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
	r->job.importing = false;
	snprintf(r->job.phase, sizeof(r->job.phase), "done");
	r->job.end_ms = bf_wall_ms();
	r->job.pid = 0;
	/* Fenced: where the catalog lives in the lock's etcd, the indexes turn
	 * public only while every lock is still this job's. */
	bf_fence_token tokens[BF_MAX_JOB_INDEXES];
	int ntokens = bf_backend_tokens(r->backend, tokens, BF_MAX_JOB_INDEXES);
	int rc = bf_catalog_put_table_and_job_fenced(r->cat, &r->table, &r->job, tokens, ntokens, err);
	r->committed = rc == 0;
	if (rc == 0)
		r->persist_rc = 0;
	return job_commit_result(rc, err);
}

int job_hook_imported(void *arg, const uint8_t *key, uint64_t rows, bool final, bf_err *err)
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
	/* Every sealed generation is in the target now. */
	cp->first_gen = bs.generation;
	/* A flushed checkpoint behind the import moves up to it. */
	if (!cp->has_flushed || memcmp(cp->flushed_key, key, BF_RECORD_KEY_LEN) < 0) {
		memcpy(cp->flushed_key, key, BF_RECORD_KEY_LEN);
		cp->flushed_rows = rows;
	}
	cp->has_flushed = true;
	snprintf(cp->engine_id, sizeof(cp->engine_id), "g%" PRIu64, bs.generation);
	r->job.update_ms = bf_wall_ms();
	if (final)
		rc = job_finish_locked(r, rows, err);
	else
		rc = job_commit_result(bf_catalog_put_job(r->cat, &r->job, err), err);
	pthread_mutex_unlock(&r->mu);
	return rc;
}
