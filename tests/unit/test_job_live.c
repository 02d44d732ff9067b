/*
 * job_live: a job's liveness is the lock file its process holds, so a
 * lock nobody holds is a dead job whatever its pid, and the kernel frees
 * the lock of a process that dies.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfill/error.h"
#include "bfill/job_live.h"
#include "tests/support/support.h"

TestSuite(job_live, .fini = t_scratch_remove);

static int hold_or_die(const char *dir, int64_t id)
{
	bf_err err = { 0 };
	int fd = -1;
	cr_assert_eq(bf_job_live_hold(dir, id, &fd, &err), 0, "hold job %lld: %s", (long long)id,
		     bf_err_text(&err));
	cr_assert_geq(fd, 0);
	return fd;
}

Test(job_live, hold_release_and_probe)
{
	char *dir = t_scratch_new("live");
	char *lockfile = t_path_in(dir, BF_JOB_LIVE_DIR "/3.lock");

	cr_assert_not(bf_job_live(dir, 3), "no lock file: not alive");
	cr_assert_not(t_path_exists(lockfile), "a probe creates nothing");

	int fd = hold_or_die(dir, 3);
	cr_assert(t_path_exists(lockfile));
	cr_assert(bf_job_live(dir, 3), "held: alive");
	cr_assert(bf_job_live(dir, 3), "a probe does not take the lock away");
	cr_assert_not(bf_job_live(dir, 4), "another job is not alive");
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "children of the job do not inherit the lock");

	bf_job_live_release(fd);
	cr_assert_not(bf_job_live(dir, 3), "released: not alive");
	cr_assert(t_path_exists(lockfile), "the file stays");
	fd = hold_or_die(dir, 3);
	bf_job_live_release(fd);
	bf_job_live_release(-1);
	free(lockfile);
}

Test(job_live, another_process_holding_is_elocked)
{
	char *dir = t_scratch_new("live");
	int pipefd[2], st;
	char c;

	cr_assert_eq(pipe(pipefd), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		bf_err err = { 0 };
		int fd = -1;
		close(pipefd[0]);
		if (bf_job_live_hold(dir, 9, &fd, &err))
			_exit(1);
		if (write(pipefd[1], "h", 1) != 1)
			_exit(1);
		pause(); /* holds until killed */
		_exit(0);
	}
	close(pipefd[1]);
	cr_assert_eq(read(pipefd[0], &c, 1), 1, "the child took the lock");
	close(pipefd[0]);

	bf_err err = { 0 };
	int fd = 123;
	int rc = bf_job_live_hold(dir, 9, &fd, &err);
	bool live = bf_job_live(dir, 9);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	cr_assert_eq(rc, BF_ELOCKED, "a second holder: %s", bf_err_text(&err));
	cr_assert_eq(fd, -1);
	cr_assert_not_null(strstr(err.msg, "job 9"), "%s", err.msg);
	cr_assert(live, "the child's lock makes the job alive");
	cr_assert_not(bf_job_live(dir, 9), "a killed holder leaves the job not alive");
	fd = hold_or_die(dir, 9);
	bf_job_live_release(fd);
}

Test(job_live, bad_arguments)
{
	char *dir = t_scratch_new("live");
	char *missing = t_path_in(dir, "no-such-store");
	bf_err err = { 0 };
	int fd = 5;

	cr_assert_eq(bf_job_live_hold(dir, 0, &fd, &err), BF_EINVAL);
	cr_assert_eq(fd, -1);
	cr_assert_not(bf_job_live(dir, 0));
	cr_assert_neq(bf_job_live_hold(missing, 1, &fd, &err), 0, "a missing store is not created");
	cr_assert_not(t_path_exists(missing));
	cr_assert_not(bf_job_live(missing, 1));
	free(missing);
}
