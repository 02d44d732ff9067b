/*
 * Workers of shared jobs (DESIGN §7a): a cluster's add-index job is cut
 * into subtasks in etcd (bfill/subtask.h), and any number of workers, on
 * any machines that reach the cluster, take them one at a time.
 *
 * A worker keeps a lease in etcd ("<root>worker/<name>"); it claims a
 * subtask under that lease, runs the pipeline over the subtask's range
 * (scan from the store nodes, local sort, import under the job's lock),
 * checkpoints the subtask after every durable import and marks it done in
 * a Txn fenced by the lock. The worker that finishes the last subtask
 * makes the indexes public, fenced too. A worker whose lease is gone (it
 * was cut off from etcd longer than the TTL) leaves its subtask at once:
 * someone else may have it now. Nothing a worker meets in etcd or the
 * stores stops it: it says what it waits for, backs off and goes on.
 * Depends on: bfill/job.h, bfill/subtask.h, bfill/presence.h.
 */
#ifndef BFILL_WORKER_H
#define BFILL_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bfill/job.h"
#include "bfill/subtask.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Subtasks a job is cut into when its table has fewer regions than that:
 * several for each of a handful of workers. */
#define BF_WORKER_SUBTASKS 12

/*
 * Submits a job on a cluster (env has etcd and cluster set): the job and
 * table records as bf_add_index_in writes them, then its subtasks. opts
 * are those of bf_add_index_in; nothing runs. *job_id gets the job's id,
 * *nsubtasks how many subtasks were written: 0 when etcd failed after the
 * job was (the first worker to find the job writes them).
 */
int bf_job_submit_in(const bf_job_env *env, const bf_add_index_opts *opts, int64_t *job_id,
		     size_t *nsubtasks, bf_err *err);

typedef struct bf_worker_opts {
	int64_t job_id;        /* 0: any job of the cluster, as long as it runs */
	/* Leave when job_id is over (done, failed, cancelled), and stop the job
	 * (paused, or failed with the error) when this worker can't go on
	 * and no other works on it: add-index without --detach. */
	bool until_done;
	const char *name;      /* NULL: "<host>:<pid>" */
	/* The job's lock's etcd as this worker reaches it (NULL: as the job
	 * was submitted with). */
	const char *etcd;
	/* How this worker's job locks reach that etcd securely, as
	 * bf_add_index_opts.etcd_security (borrowed for the run). The
	 * worker's other etcd calls go through env->etcd, already secured. */
	const bf_etcd_security *etcd_security;
	int lease_ttl_s;       /* 0: 10 */
	/* Per subtask run, as for add-index: threads (0: this machine's
	 * cores), mem (0: the job's), sort_dir (NULL: env's default, never
	 * the submitter's), import_every (0: the job's). */
	int threads;
	uint64_t mem;
	const char *sort_dir;
	uint64_t import_every;
	/* Called about every 500 ms with the job as the whole cluster works on
	 * it (rows of every subtask, rate of every worker); may be NULL. */
	void (*progress)(const bf_job *job, void *arg);
	void *progress_arg;
	/* One line for each thing the worker does or waits for ("claimed job
	 * 3 subtask 4", "etcd unreachable since ..."); may be NULL. */
	void (*log)(const char *line, void *arg);
	void *log_arg;
	/* Polled; non-zero: checkpoint the subtask, give it back, return. */
	const volatile sig_atomic_t *interrupt;
} bf_worker_opts;

typedef struct bf_worker_result {
	bf_job job;            /* job_id's record at the end (until_done) */
	uint64_t subtasks;     /* finished by this worker */
	uint64_t rows;         /* scanned by this worker */
	bf_backend_stats backend; /* summed over its subtask runs */
	double seconds;
} bf_worker_result;

/*
 * Works until interrupted (BF_ECANCELLED) or, with until_done, until
 * job_id is over: 0 when it is done, its failure otherwise (BF_EDUP for a
 * duplicate, the error that stopped this worker when it stopped the job).
 */
int bf_worker_run(const bf_job_env *env, const bf_worker_opts *opts, bf_worker_result *res,
		  bf_err *err);

/*
 * A shared job as the whole cluster works on it: *job is its record with
 * rows_done, rate, phase and waiting summed up from its subtasks, and its
 * state `running` while any subtask is claimed or has made progress
 * (whatever the record says: it is written at the start and the end);
 * *subs (malloc'd, free(); NULL and 0 for a job without subtasks) the
 * subtasks. BF_ENOTFOUND when there is no such job.
 */
int bf_job_shared_view(const bf_job_env *env, int64_t job_id, bf_job *job, bf_subtask **subs,
		       size_t *n, bf_err *err);

#ifdef __cplusplus
}
#endif

#endif
