/*
 * Subtasks of a job shared by several workers (DESIGN §7a): record-key
 * ranges of a few regions each, kept in the cluster's etcd, claimed by one
 * worker at a time with a key bound to that worker's lease.
 *
 * Records, under the cluster's root (bf_cluster_root):
 *   "<root>subtask/<job 20 digits>/<seq 8 digits>"  JSON {"lo","hi","next" (hex raw
 *        keys: the range and where its scan goes on), "rows" (rows done), "done",
 *        "claims" (times claimed)}
 *   "<root>claim/<job 20 digits>/<seq 8 digits>"    the claiming worker's name, put
 *        with its lease: a worker that dies loses its claims when its lease ends.
 *   "<root>progress/<job 20 digits>/<seq 8 digits>" what the claiming worker is
 *        doing now (rows, rate, phase, what it waits for), under its lease: for
 *        status only, never trusted for a resume.
 *   "<root>stop/<job 20 digits>"  a cancel or a rollback under way: every worker
 *        leaves the job's subtasks.
 *
 * Every change is a Txn that compares what makes it safe: a claim is taken
 * only while none exists and the record is as listed; a checkpoint is
 * written only under the writer's own claim; a subtask is marked done only
 * under its claim and while the job's lock key still has the revision the
 * worker's fence token names. Functions return 0 or a negative BF_E* with
 * err set; BF_EFENCED when a compare failed (the claim or the lock went
 * to someone else), BF_ENOTFOUND when nothing was there to claim.
 * Depends on: bfill/etcd.h, bfill/cluster.h.
 */
#ifndef BFILL_SUBTASK_H
#define BFILL_SUBTASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/cluster.h"
#include "bfill/error.h"
#include "bfill/etcd.h"
#include "bfill/fence.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BF_SUBTASK_KEY_MAX 256  /* a raw range bound; longer region bounds are refused */
#define BF_SUBTASK_WORKER_MAX 128

typedef struct bf_subtask {
	int64_t job_id;
	int seq; /* 0, 1, ... in key order */
	uint8_t lo[BF_SUBTASK_KEY_MAX], hi[BF_SUBTASK_KEY_MAX], next[BF_SUBTASK_KEY_MAX];
	size_t lolen, hilen, nextlen; /* [lo, hi); next: the scan's checkpoint in it */
	uint64_t rows;                /* rows done up to next */
	bool done;
	int claims;                   /* times a worker has claimed it */
	/* As listed: who holds the claim ("" none) and the record's revision
	 * (the claim compares it). */
	char worker[BF_SUBTASK_WORKER_MAX];
	int64_t mod_revision;
	/* The claimer's progress record, as listed (live false: none). */
	bool live;
	uint64_t live_rows;
	double live_rate;             /* rows/s */
	char live_phase[32];
	char live_waiting[256];
	int64_t live_ms;              /* wall clock of the record */
} bf_subtask;

/*
 * The subtasks of a job over table table_id's rows: the table's record
 * range cut at the cluster's cached region boundaries, regions_per
 * regions a subtask (at least 1). *out is malloc'd (free()), n >= 1.
 */
int bf_subtask_plan(bf_cluster *c, int64_t job_id, int64_t table_id, int regions_per,
		    bf_subtask **out, size_t *n, bf_err *err);

/*
 * Cuts the subtasks of a table held by too few regions (a fresh table sits
 * in one) further, at even steps of its handles first..last, into about
 * `want` in all, so that every worker gets several. *s is reallocated.
 */
int bf_subtask_refine(bf_subtask **s, size_t *n, int64_t table_id, int64_t first, int64_t last,
		      int want, bf_err *err);

/* Writes a job's subtasks, all or none (one Txn): BF_EEXIST when the job
 * has subtasks already. */
int bf_subtask_put_all(bf_etcd *etcd, const char *root, const bf_subtask *s, size_t n,
		       bf_err *err);

/* A job's subtasks in seq order with their claims; *out malloc'd. A
 * damaged record is an error naming its key. */
int bf_subtask_list(bf_etcd *etcd, const char *root, int64_t job_id, bf_subtask **out,
		    size_t *n, bf_err *err);

/* Claims the first subtask that is neither done nor claimed by another
 * worker (a claim of worker's own is taken again), for worker under lease;
 * *out is it as claimed. BF_ENOTFOUND: none left to claim. Worker names
 * must be unique among the cluster's workers. */
int bf_subtask_claim(bf_etcd *etcd, const char *root, int64_t job_id, const char *worker,
		     int64_t lease, bf_subtask *out, bf_err *err);

/* Writes s's checkpoint (next, rows) while worker holds its claim. */
int bf_subtask_checkpoint(bf_etcd *etcd, const char *root, const bf_subtask *s,
			  const char *worker, bf_err *err);

/*
 * Marks s done and drops the claim, while worker holds the claim and each
 * fence's holder key still has the fence's create revision (the job's
 * locks as the worker took them; fences with no holder are not compared).
 * *all_done: whether every subtask of the job is done now.
 */
int bf_subtask_finish(bf_etcd *etcd, const char *root, const bf_subtask *s, const char *worker,
		      const bf_fence_token *fences, int nfences, bool *all_done, bf_err *err);

/* Puts the progress record of s (its live_* fields) for worker, under
 * lease. */
int bf_subtask_progress(bf_etcd *etcd, const char *root, const bf_subtask *s, const char *worker,
			int64_t lease, bf_err *err);

/* Asks every worker to leave job_id's subtasks (why: "cancel",
 * "rollback"); bf_subtask_stopping tells whether that was asked (1, why
 * copied), 0 not, negative when etcd can't tell. */
int bf_subtask_stop(bf_etcd *etcd, const char *root, int64_t job_id, const char *why,
		    bf_err *err);
int bf_subtask_stopping(bf_etcd *etcd, const char *root, int64_t job_id, char *why, size_t cap,
			bf_err *err);

/* Waits until no subtask of job_id is claimed (the workers left, or their
 * leases ran out), for at most timeout_ms: BF_ETIMEDOUT naming a claimer
 * after that. */
int bf_subtask_wait_unclaimed(bf_etcd *etcd, const char *root, int64_t job_id, int timeout_ms,
			      bf_err *err);

/* Gives s's claim back (a worker leaving on SIGTERM); nothing when the
 * claim is not worker's. */
int bf_subtask_release(bf_etcd *etcd, const char *root, const bf_subtask *s, const char *worker,
		       bf_err *err);

#ifdef __cplusplus
}
#endif

#endif
