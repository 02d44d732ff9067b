/*
 * Is a job's process alive? Judged by something the job holds rather than
 * by its pid (a pid is reused once the process is gone, so kill(pid, 0)
 * can call a dead job alive): while a job runs, its process holds an
 * exclusive flock(2) on <store_dir>/bfill-jobs/<id>.lock. The kernel drops
 * the lock when the process ends, however it ends (a crash, SIGKILL), so a
 * lock nobody holds means nobody runs the job.
 */
#ifndef BFILL_JOB_LIVE_H
#define BFILL_JOB_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The directory in a store that holds the jobs' lock files. */
#define BF_JOB_LIVE_DIR "bfill-jobs"

/*
 * Creates <store_dir>/bfill-jobs/<job_id>.lock if needed and takes its
 * lock. *fd is the open descriptor that holds it (-1 on failure): keep it
 * open while the job runs, give it to bf_job_live_release at the end. It
 * is close-on-exec, so processes the job starts do not inherit the lock.
 * BF_ELOCKED when another process holds it (the job runs elsewhere).
 */
int bf_job_live_hold(const char *store_dir, int64_t job_id, int *fd, bf_err *err);
/* Drops the lock taken by bf_job_live_hold and closes fd (-1 is a no-op).
 * The file stays: removing it could let two processes lock two different
 * files of the same name. */
void bf_job_live_release(int fd);
/*
 * True when some process holds job_id's lock. Needs only read access to
 * the store directory (it takes and drops a shared lock for a moment,
 * which a job starting at that instant waits out). False when the lock
 * file is missing or cannot be opened.
 */
bool bf_job_live(const char *store_dir, int64_t job_id);

#ifdef __cplusplus
}
#endif
#endif
