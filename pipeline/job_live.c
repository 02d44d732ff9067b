/*
 * Job liveness through a lock file the job holds (bfill/job_live.h).
 * Depends on util only.
 */
#include "bfill/job_live.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * bf_job_live probes with a shared lock held for two system calls; a job
 * starting at that moment must not mistake the probe for another run, so
 * it tries for this long before it answers BF_ELOCKED.
 */
#define HOLD_WAIT_MS 200
#define HOLD_RETRY_MS 5

/* "<store_dir>/bfill-jobs/<id>.lock" (dir_only: without the file name);
 * false when it does not fit. */
static bool live_path(const char *store_dir, int64_t job_id, bool dir_only, char *out, size_t n)
{
	int len = dir_only ? snprintf(out, n, "%s/%s", store_dir, BF_JOB_LIVE_DIR)
			   : snprintf(out, n, "%s/%s/%" PRId64 ".lock", store_dir, BF_JOB_LIVE_DIR, job_id);
	return len > 0 && (size_t)len < n;
}

/* flock with EINTR retried; 0 or errno. */
static int flock_nb(int fd, int op)
{
	while (flock(fd, op | LOCK_NB))
		if (errno != EINTR)
			return errno;
	return 0;
}

int bf_job_live_hold(const char *store_dir, int64_t job_id, int *fd, bf_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int64_t deadline = bf_now_ms() + HOLD_WAIT_MS;
	int f = -1, e, rc = 0;

	*fd = -1;
	if (job_id <= 0)
		return bf_errf(err, BF_EINVAL, "job id %" PRId64 " is not positive", job_id);
	if (!live_path(store_dir, job_id, true, dir, sizeof(dir)) ||
	    !live_path(store_dir, job_id, false, path, sizeof(path)))
		return bf_errf(err, BF_EINVAL, "store path %s is too long", store_dir);
	/* Only the last component: the store itself must already exist. */
	if (mkdir(dir, 0755) && errno != EEXIST) {
		rc = bf_errf(err, -errno, "job %" PRId64 ": mkdir %s: %s", job_id, dir, strerror(errno));
		goto out;
	}
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f < 0) {
		rc = bf_errf(err, -errno, "job %" PRId64 ": %s: %s", job_id, path, strerror(errno));
		goto out;
	}
	while ((e = flock_nb(f, LOCK_EX)) == EWOULDBLOCK && bf_now_ms() < deadline)
		bf_sleep_ms(HOLD_RETRY_MS);
	if (e == EWOULDBLOCK)
		rc = bf_errf(err, BF_ELOCKED, "job %" PRId64 " is running in another process (%s is locked)",
			     job_id, path);
	else if (e)
		rc = bf_errf(err, -e, "job %" PRId64 ": lock %s: %s", job_id, path, strerror(e));
	if (rc == 0) {
		*fd = f;
		f = -1;
	}
out:
	if (f >= 0)
		close(f);
	return rc;
}

void bf_job_live_release(int fd)
{
	if (fd < 0)
		return;
	/* close() drops the lock too; unlocking first makes the moment it
	 * goes explicit for readers of this code. */
	flock(fd, LOCK_UN);
	close(fd);
}

bool bf_job_live(const char *store_dir, int64_t job_id)
{
	char path[PATH_MAX];
	bool held = false;
	int f;

	if (job_id <= 0 || !live_path(store_dir, job_id, false, path, sizeof(path)))
		return false;
	/* Read-only: flock needs no write access, so status works on a store
	 * it may only read. */
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return false;
	int e = flock_nb(f, LOCK_SH);
	held = e == EWOULDBLOCK;
	if (e == 0)
		flock(f, LOCK_UN);
	close(f);
	return held;
}
