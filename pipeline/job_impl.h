/*
 * Internal: the state of one add-index run, shared by the job's parts:
 * pipeline/job.c (lifecycle: options, creating or resuming, running),
 * pipeline/job_checkpoint.c (where a run starts, the checkpoint hooks) and
 * pipeline/job_rollback.c (failure, cancel, drop). Not a public interface.
 */
#ifndef BFILL_PIPELINE_JOB_IMPL_H
#define BFILL_PIPELINE_JOB_IMPL_H

#include "bfill/job.h"
#include "bfill/subtask.h"
#include "pipeline/pipe.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

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
	struct job_part *part;     /* NULL: the whole job runs here */
	bool lock_waiting;         /* job.waiting tells of the lock (else of the target) */
} job_run;

/*
 * One subtask of a shared job run by a worker (pipeline/job_part.c): the
 * run scans [next, hi) of the subtask into its own engines, checkpoints the
 * subtask instead of the job, and writes no job record but the last.
 */
typedef struct job_part {
	bf_etcd *etcd;             /* borrowed */
	const char *root;
	const char *worker;
	bf_subtask sub;            /* as claimed; next and rows follow the imports */
	atomic_int stop;           /* set by the worker's watcher: leave the subtask now */
	/* What status shows of the run (sub's live_* fields), under mu. */
	pthread_mutex_t mu;
	bf_subtask shown;
} job_part;

/* Where a run scans and what it has done before. */
typedef struct run_plan {
	uint8_t start[BF_SCAN_BOUND_MAX];
	size_t start_len;          /* 0: the table's start */
	const uint8_t *end;        /* NULL: the table's end */
	size_t end_len;
	uint64_t base_rows, first_gen, gen;
} run_plan;

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

/* Makes the indexes public and the job done, fenced by the locks held now
 * (called from the final import). Caller holds r->mu. */
int job_finish_locked(job_run *r, uint64_t rows, bf_err *err);
/* Maps a catalog write that may not have landed to a lost lock: the import
 * round starts over. */
int job_commit_result(int rc, bf_err *err);

/* ---- job_part.c ---- */

/* The part's range and directory ("<sort_dir>/job-<id>-part-<seq>", emptied). */
void job_part_plan(job_run *r, run_plan *plan);
/* The part's pipeline hooks (see bf_pipe_hooks). */
int job_part_flushed(void *arg, const uint8_t *key, uint64_t rows, bf_err *err);
int job_part_imported(void *arg, const uint8_t *key, uint64_t rows, bool final, bf_err *err);
/* What job_save_locked does for a part: status goes to the part's progress,
 * not the job record. Caller holds r->mu. */
void job_part_show_locked(job_run *r);
/* What the store nodes make a run wait for, as status says it ("waiting for
 * the store nodes: store 2 unreachable"), into out; "" and false when the
 * target waits for nothing (job.c). */
bool job_target_waiting(bf_target *t, char *out, size_t n);
/* Writes the subtasks of a submitted job that has none (job.c). */
int job_submit_missing(const bf_job_env *env, const bf_job *job, bf_err *err);
/* Runs one claimed subtask of job_id (opts as for a resume). */
int job_part_run(const bf_job_env *env, const bf_add_index_opts *opts, job_part *part,
		 bf_add_index_result *res, bf_err *err);

/* ---- job_rollback.c ---- */

/* Records a failed run and does what the failure calls for (see
 * bf_add_index); returns rc. A part records nothing: a duplicate rolls
 * the whole job back once every worker has left it, anything else is the
 * worker's to retry. */
int job_handle_failure(job_run *r, int rc, bf_err *err);
/* Deletes every entry of the job's indexes from the target. */
int job_delete_entries(bf_target *t, const bf_job *job, bf_err *err);
/* Takes the job's indexes out of the table. */
void job_drop_indexes(bf_table *t, const bf_job *job);

#endif
