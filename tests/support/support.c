/*
 * Test helpers: temp dirs, subprocesses with captured output, and checks
 * of what bfill printed.
 */
#include "tests/support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

char *t_path_in(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

bool t_path_exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0;
}

char *t_scratch_dir;

char *t_scratch_new(const char *tag)
{
	cr_assert_null(t_scratch_dir, "one scratch directory per test");
	t_scratch_dir = t_tmpdir(tag);
	return t_scratch_dir;
}

void t_scratch_remove(void)
{
	t_rmdir(t_scratch_dir);
	t_scratch_dir = NULL;
}

void t_kill_reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
}

const char *t_bfill(void)
{
	static char abs[PATH_MAX];
	const char *b = getenv("BFILL_BIN");
	if (b && *b)
		return b;
	/* Absolute, so a test may run it from another directory. */
	if (!abs[0] && !realpath("./bin/bfill", abs))
		snprintf(abs, sizeof(abs), "./bin/bfill");
	return abs;
}

void t_need_bfill(void)
{
	cr_assert_eq(access(t_bfill(), X_OK), 0, "bfill binary %s: %s (build bin/bfill first)",
		     t_bfill(), strerror(errno));
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

char *t_read_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	char *text = slurp_fd(fd);
	close(fd);
	return text;
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

/* "exec '<bfill>' <args>", plus redirect (may be NULL) after it: exec, so
 * that the pid the shell had is bfill's. malloc'd. */
static char *bfill_cmd(const char *redirect, const char *fmt, va_list ap)
{
	char *args = NULL, *cmd = NULL;

	if (vasprintf(&args, fmt, ap) < 0)
		cr_assert_fail("vasprintf failed");
	if (asprintf(&cmd, "exec '%s' %s%s", t_bfill(), args, redirect ? redirect : "") < 0)
		cr_assert_fail("asprintf failed");
	free(args);
	return cmd;
}

/* Runs cmd through /bin/sh -c with env (may be NULL); frees cmd. */
static t_run run_sh(char *cmd, char *const env[])
{
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	t_run r = t_exec(argv, env);
	free(cmd);
	return r;
}

t_run t_bfillf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	char *cmd = bfill_cmd(NULL, fmt, ap);
	va_end(ap);
	return run_sh(cmd, NULL);
}

t_run t_bfill_faultf(const char *fault, const char *fmt, ...)
{
	char *env0 = NULL;
	va_list ap;

	va_start(ap, fmt);
	char *cmd = bfill_cmd(NULL, fmt, ap);
	va_end(ap);
	cr_assert_geq(asprintf(&env0, "BFILL_FAULT=%s", fault ? fault : ""), 0);
	char *env[] = { env0, NULL };
	t_run r = run_sh(cmd, env);
	free(env0);
	return r;
}

/* Forks /bin/sh -c "<bfill> <args>" with output to logpath; set_fault puts
 * BFILL_FAULT=fault (NULL: empty) in its environment. */
static int spawn_bfill(bool set_fault, const char *fault, const char *logpath, const char *fmt,
		       va_list ap)
{
	char *redirect = NULL;
	pid_t pid;

	if (asprintf(&redirect, " >'%s' 2>&1 </dev/null", logpath) < 0)
		cr_assert_fail("asprintf failed");
	char *cmd = bfill_cmd(redirect, fmt, ap);
	free(redirect);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (set_fault)
			setenv("BFILL_FAULT", fault ? fault : "", 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	return (int)pid;
}

int t_spawn_bfillf(const char *logpath, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int pid = spawn_bfill(false, NULL, logpath, fmt, ap);
	va_end(ap);
	return pid;
}

int t_spawn_bfill_faultf(const char *fault, const char *logpath, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int pid = spawn_bfill(true, fault, logpath, fmt, ap);
	va_end(ap);
	return pid;
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

void t_bfill_gen(const char *store, long rows, int seed)
{
	t_run r = t_bfillf("gen --store '%s' --rows %ld --seed %d --quiet", store, rows, seed);
	cr_assert_eq(r.status, 0, "gen: %s", r.err);
	t_run_free(&r);
}

char *t_scratch_store(const char *tag, long rows, int seed)
{
	char *store = t_path_in(t_scratch_new(tag), "store");
	t_bfill_gen(store, rows, seed);
	return store;
}

void t_check_index_ok(const char *store, const char *index, long rows)
{
	char want[64];
	t_run r = t_bfillf("check-index --store '%s' --table sbtest1 --name %s", store, index);
	cr_assert_eq(r.status, 0, "check-index %s: exit %d: %s%s", index, r.status, r.out, r.err);
	snprintf(want, sizeof(want), "%ld found: OK", rows);
	cr_assert_not_null(strstr(r.out, want), "check-index %s: %s", index, r.out);
	t_run_free(&r);
}

void t_expect_cli_error(t_run *r, int code, const char *prefix, const char *what,
			const char *needle1, const char *needle2)
{
	cr_assert_eq(r->status, code, "%s: exit %d, want %d; stderr: %s", what, r->status, code, r->err);
	cr_assert_str_eq(r->out, "", "%s: stdout should be empty: %s", what, r->out);
	cr_assert_eq(t_count_lines(r->err), 1, "%s: want one line on stderr, got: [%s]", what, r->err);
	size_t n = strlen(r->err);
	cr_assert(n > 1 && r->err[n - 1] == '\n', "%s: the line is terminated", what);
	cr_assert(!strncmp(r->err, prefix, strlen(prefix)), "%s: the line starts with '%s': %s", what,
		  prefix, r->err);
	if (needle1)
		cr_assert_not_null(strstr(r->err, needle1), "%s: '%s' not in: %s", what, needle1, r->err);
	if (needle2)
		cr_assert_not_null(strstr(r->err, needle2), "%s: '%s' not in: %s", what, needle2, r->err);
	t_run_free(r);
}

cJSON *t_json_parse(const char *text, const char *what)
{
	cJSON *o = cJSON_Parse(text);
	cr_assert_not_null(o, "%s: not JSON: [%s]", what, text);
	return o;
}

cJSON *t_bfill_jsonf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	char *cmd = bfill_cmd(NULL, fmt, ap);
	va_end(ap);
	t_run r = run_sh(cmd, NULL);
	cr_assert_eq(r.status, 0, "bfill exited %d: %s", r.status, r.err);
	cr_assert_str_eq(r.err, "", "nothing on stderr");
	cJSON *o = t_json_parse(r.out, "bfill's output");
	t_run_free(&r);
	return o;
}

const cJSON *t_json_field(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	cr_assert_not_null(v, "JSON lacks '%s'", k);
	return v;
}

double t_json_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	cr_assert(cJSON_IsNumber(v), "no number \"%s\" in the JSON", k);
	return v->valuedouble;
}

const char *t_json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	cr_assert(cJSON_IsString(v), "no string \"%s\" in the JSON", k);
	return v->valuestring;
}

bool t_is_digit_groups(const void *p, size_t len, int groups)
{
	const unsigned char *s = p;
	if (len != (size_t)(groups * 12 - 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i % 12 == 11;
		if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return false;
	}
	return true;
}

uint64_t t_xorshift64(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

int t_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = 0;

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	cr_assert(port > 0, "no free loopback port");
	return port;
}

static char *small_fs_mounted;

char *t_small_fs(const char *name, int mib)
{
	char *dir = t_path_in(t_scratch_dir, name), opts[32];

	cr_assert_null(small_fs_mounted, "one small file system per test");
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(opts, sizeof(opts), "size=%dm", mib);
	if (mount("bfill-test", dir, "tmpfs", 0, opts) != 0) {
		int e = errno;
		free(dir);
		cr_skip_test("cannot mount a small tmpfs here (%s): needs root or CAP_SYS_ADMIN",
			     strerror(e));
	}
	small_fs_mounted = strdup(dir);
	return dir;
}

void t_small_fs_unmount(void)
{
	if (small_fs_mounted) {
		umount2(small_fs_mounted, MNT_DETACH);
		free(small_fs_mounted);
		small_fs_mounted = NULL;
	}
}

uint64_t t_free_bytes(const char *path)
{
	struct statvfs vfs;
	cr_assert_eq(statvfs(path, &vfs), 0, "statvfs %s: %s", path, strerror(errno));
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

void t_fill_up(const char *fs)
{
	char *path = t_path_in(fs, "filler");
	static char block[64 << 10];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	size_t chunk = sizeof(block);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	while (chunk >= 512) {
		if (write(fd, block, chunk) != (ssize_t)chunk)
			chunk /= 2;
	}
	close(fd);
	cr_assert_lt(t_free_bytes(fs), 4096, "%s is full", fs);
	free(path);
}
