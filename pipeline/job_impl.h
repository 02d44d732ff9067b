/*
 * Internal: the state of one add-index run, shared by the job's parts:
 * pipeline/job.c (lifecycle: options, creating or resuming, running),
 * pipeline/job_checkpoint.c (where a run starts, the checkpoint hooks) and
 * pipeline/job_rollback.c (failure, cancel, drop). Not a public interface.
 */
#ifndef BFILL_PIPELINE_JOB_IMPL_H
#define BFILL_PIPELINE_JOB_IMPL_H

#include "bfill/job.h"

#include <limits.h>
#include <pthread.h>

typedef struct job_run {
	const bf_job_env *env;     /* borrowed */
	bf_catalog *cat;           /* env->catalog */
	bf_target *target;         /* env->target */
	const bf_add_index_opts *o;
	bf_table table;
	bf_job job;
	pthread_mutex_t mu;        /* job, table and their persistence */
	bf_backend *backend;
	char job_dir[PATH_MAX];
	int64_t last_save_ms;
	int64_t rate_ms, snap_ms;  /* the rate is rows since rate_ms; snap_ms is next */
	uint64_t rate_rows, snap_rows;
	uint64_t peak_sort;
	int persist_rc;            /* a failed status write, reported at the end */
	bf_err persist_err;
	bool committed;            /* the last import made the indexes public */
	int live_fd;               /* held while the job runs (job_live) */
} job_run;

/* "<sort_dir>/job-<id>". */
void job_dir_of(const bf_job *job, char *out, size_t n);
/* Writes the job record. Status writes are advisory while the job runs: a
 * failure is remembered until a later write succeeds, and reported when
 * the run ends with it still standing. Caller holds r->mu. */
void job_save_locked(job_run *r);

/* ---- job_checkpoint.c ---- */

/*
 * Where this run starts: after the flushed checkpoint when every engine
 * generation it names is on disk (*first_gen, *gen say which), else after
 * the imported one, else at the beginning. Removes engine files the
 * checkpoint does not name. Returns the rows already done.
 */
uint64_t job_plan_start(job_run *r, uint8_t *start, bool *has_start, uint64_t *first_gen,
			uint64_t *gen);
/* Pipeline hooks: everything before key is durable in the engines / in
 * the target. */
int job_hook_flushed(void *arg, const uint8_t *key, uint64_t rows, bf_err *err);
int job_hook_imported(void *arg, const uint8_t *key, uint64_t rows, bool final, bf_err *err);

/* ---- job_rollback.c ---- */

/* Records a failed run and does what the failure calls for (see
 * bf_add_index); returns rc. */
int job_handle_failure(job_run *r, int rc, bf_err *err);
/* Deletes every entry of the job's indexes from the target. */
int job_delete_entries(bf_target *t, const bf_job *job, bf_err *err);
/* Takes the job's indexes out of the table. */
void job_drop_indexes(bf_table *t, const bf_job *job);

#endif
