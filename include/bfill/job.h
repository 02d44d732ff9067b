/*
 * Add-index jobs (DESIGN §7): create or resume a job, run the pipeline,
 * keep the job record truthful, clean up. The library entry point behind
 * `bfill add-index`, `bfill cancel`.
 */
#ifndef BFILL_JOB_H
#define BFILL_JOB_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bfill/catalog.h"
#include "bfill/error.h"
#include "bfill/ingest.h"
#include "bfill/store.h"
#include "bfill/target.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_index_spec {
	const char *name;
	const char *columns; /* "a" or "a,b" */
	bool unique;
} bf_index_spec;

typedef struct bf_add_index_opts {
	const char *table;
	int nspecs;
	bf_index_spec specs[BF_MAX_JOB_INDEXES];
	int workers;              /* 0 = one per core */
	uint64_t mem;             /* 0 = 512 MiB */
	const char *sort_dir;     /* NULL = "<store>.sort"; kept as an absolute path */
	uint64_t import_every;    /* 0 = import once, at the end */
	/* etcd endpoints of the import lock; "" = the in-process lock. NULL =
	 * the in-process lock for a new job, what the job has on a resume. */
	const char *etcd;
	/* How the lock's client secures its connections to that etcd (TLS);
	 * NULL: plain text. Never stored in the job (only the endpoints
	 * are): each run, a resume or a worker gives its own, with paths of
	 * its own machine. Borrowed for the call. */
	const bf_etcd_security *etcd_security;
	const char *lock_prefix;  /* NULL = "/bfill/lock" (a resume: the job's) */
	int lock_ttl_s;           /* 0 = 10 */
	int lock_timeout_s;       /* 0 = 60 */
	int run_compression;      /* bf_compression; -1 = default (none) */
	int target_compression;   /* -1 = default (none) */
	int64_t job_id;           /* 0 = allocate */
	bool resume;              /* continue job_id */
	/* Where the table is read from and the index goes; NULL = the store
	 * itself (bf_target_local_create). Borrowed. */
	bf_target *target;
	/* Called about every 100 ms with the job as it stands; may be NULL. */
	void (*progress)(const bf_job *job, void *arg);
	void *progress_arg;
	/* Polled; when it reads non-zero the job stops and becomes paused. */
	const volatile sig_atomic_t *interrupt;
} bf_add_index_opts;

typedef struct bf_add_index_result {
	bf_job job;               /* the final record */
	bool noop;                /* resumed a job that was already done */
	double seconds;
	uint64_t rows;            /* rows scanned by this run (job.rows_scanned) */
	uint64_t index_keys, index_bytes;
	uint64_t peak_sort_bytes; /* largest sort-dir size seen */
	double scan_seconds, import_seconds;
	bf_backend_stats backend;
} bf_add_index_result;

/*
 * Where jobs live: the catalog holding their records and the table's, the
 * import target, the scope that keys their locks (the store's or the
 * cluster's UUID), a directory for the lock file a running job holds, and
 * the sort directory used when a job names none. bf_job_env_store fills
 * one for a local store; one made by hand starts zeroed (fields added
 * later are then NULL: unused). Everything is borrowed.
 */
typedef struct bf_job_env {
	bf_catalog *catalog;
	bf_target *target;
	const char *lock_scope;       /* "" = lock names start with the job id */
	const char *live_dir;         /* <live_dir>/bfill-jobs/<id>.lock */
	const char *default_sort_dir; /* absolute */
	/* Optional (NULL): tells other machines that a job runs here, for as
	 * long as it runs (a cluster's jobs: bfill/presence.h). announce's
	 * handle goes to withdraw; NULL when it could not start (the job
	 * goes on regardless). */
	void *(*announce)(void *arg, int64_t job_id);
	void (*withdraw)(void *arg, void *handle);
	void *announce_arg;
	/* A cluster's (NULL for a local store): its jobs are shared by
	 * workers through subtasks in this etcd (bfill/worker.h). */
	struct bf_etcd *etcd;
	struct bf_cluster *cluster;
} bf_job_env;

/* The environment of a local store: its catalog, target (or `target` when
 * not NULL), UUID, directory and "<store>.sort". sort_buf (at least
 * PATH_MAX bytes) holds the sort dir's name; *own_target gets a target
 * made here (free it with bf_target_destroy). */
int bf_job_env_store(bf_store *st, bf_target *target, bf_job_env *env, char *sort_buf,
		     size_t sort_buf_len, bf_target **own_target, bf_err *err);

/* bf_add_index, bf_job_cancel and bf_index_drop in an environment. */
int bf_add_index_in(const bf_job_env *env, const bf_add_index_opts *opts,
		    bf_add_index_result *res, bf_err *err);
int bf_job_cancel_in(const bf_job_env *env, int64_t job_id, bf_err *err);
int bf_index_drop_in(const bf_job_env *env, const char *table, const char *index, bf_err *err);

/*
 * Builds the indexes (or resumes a job). Every option is checked before
 * any work. On failure the job record says why. A failure a retry can fix
 * (the lock not had in time or lost, an I/O error, a full disk) keeps
 * what was imported (invisible: the indexes are not public), the engines
 * and both checkpoints, so --resume continues from the flushed checkpoint;
 * a duplicate in a unique index rolls the job back (job.rolled_back).
 * Errors: BF_EINVAL (bad spec or option), BF_ENOTFOUND (table or job),
 * BF_EEXIST (index name or job id), BF_EDUP, BF_ETIMEDOUT (import lock),
 * BF_ENOSPC, BF_ECANCELLED (interrupted), ...
 */
int bf_add_index(bf_store *st, const bf_add_index_opts *opts, bf_add_index_result *res,
		 bf_err *err);

/* Rolls back an unfinished job: deletes its index entries (giving the
 * space back) and sort files, removes its indexes from the table, marks it
 * cancelled. target NULL = the store itself. */
int bf_job_cancel(bf_store *st, bf_target *target, int64_t job_id, bf_err *err);

/* Drops an index: deletes its entries (giving the space back) and its
 * catalog record. An index a live job is building is refused (cancel the
 * job instead); one whose job is gone, damaged or over can always be
 * dropped. target NULL = the store itself. */
int bf_index_drop(bf_store *st, bf_target *target, const char *table, const char *index,
		  bf_err *err);

/* The sort directory a store uses by default ("<store>.sort"). */
void bf_job_default_sort_dir(const char *store_dir, char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
