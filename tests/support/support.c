/*
 * Test helpers: temp dirs and subprocesses with captured output.
 */
#include "tests/support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *t_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&path, "%s/bfill-%s-XXXXXX", base, tag) < 0)
		cr_assert_fail("asprintf failed");
	cr_assert_not_null(mkdtemp(path), "mkdtemp %s: %s", path, strerror(errno));
	return path;
}

void t_rmdir(char *path)
{
	char *cmd = NULL;
	if (!path)
		return;
	if (asprintf(&cmd, "rm -rf '%s'", path) >= 0) {
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", path);
	}
	free(cmd);
	free(path);
}

const char *t_bfill(void)
{
	const char *b = getenv("BFILL_BIN");
	return b && *b ? b : "./bin/bfill";
}

static char *slurp_fd(int fd)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	ssize_t r;
	lseek(fd, 0, SEEK_SET);
	while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (cap - n < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	buf[n] = '\0';
	return buf;
}

t_run t_exec(char *const argv[], char *const env[])
{
	t_run r = { 0 };
	FILE *out = tmpfile(), *err = tmpfile();
	pid_t pid;
	int st;

	cr_assert(out && err, "tmpfile failed");
	pid = fork();
	cr_assert_geq(pid, 0, "fork failed");
	if (pid == 0) {
		dup2(fileno(out), 1);
		dup2(fileno(err), 2);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		for (int i = 0; env && env[i]; i++)
			putenv(env[i]);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st)) {
		r.signaled = true;
		r.status = 128 + WTERMSIG(st);
	} else {
		r.status = WEXITSTATUS(st);
	}
	r.out = slurp_fd(fileno(out));
	r.err = slurp_fd(fileno(err));
	fclose(out);
	fclose(err);
	return r;
}

t_run t_bfillf(const char *fmt, ...)
{
	char *args = NULL, *cmd = NULL;
	va_list ap;
	t_run r;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		cr_assert_fail("vasprintf failed");
	va_end(ap);
	if (asprintf(&cmd, "exec '%s' %s", t_bfill(), args) < 0)
		cr_assert_fail("asprintf failed");
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	r = t_exec(argv, NULL);
	free(args);
	free(cmd);
	return r;
}

int t_spawn_bfillf(const char *logpath, const char *fmt, ...)
{
	char *args = NULL, *cmd = NULL;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		cr_assert_fail("vasprintf failed");
	va_end(ap);
	if (asprintf(&cmd, "exec '%s' %s >'%s' 2>&1 </dev/null", t_bfill(), args, logpath) < 0)
		cr_assert_fail("asprintf failed");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(args);
	free(cmd);
	return (int)pid;
}

void t_run_free(t_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

size_t t_count_lines(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++)
		if (*s == '\n')
			n++;
	return n;
}
