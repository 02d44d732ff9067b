/*
 * Library hygiene: jobs run one after another in one process leave no
 * thread, file descriptor or heap memory behind, failed jobs included;
 * and no member of lib/libbfill.a exits, aborts or prints on its own, so
 * every error reaches the caller as a status with a message.
 *
 * Counts are taken with the store closed, after a warm-up of a few jobs:
 * RocksDB keeps process-wide state (its Env's thread pools, caches made on
 * first use) that the first jobs bring up and no later job adds to.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfill/check.h"
#include "bfill/error.h"
#include "bfill/fault.h"
#include "bfill/gen.h"
#include "bfill/job.h"
#include "bfill/store.h"
#include "tests/support/support.h"

TestSuite(hygiene, .fini = t_scratch_remove, .timeout = 300);

#define TABLE "sbtest1"
#define ROWS 2000
/* Heap growth tolerated between two counts: one-off allocations made on
 * first use somewhere in the process (about 2 KiB is seen now and then),
 * not a number that grows with the jobs run in between; 90 jobs leaking
 * 200 bytes each fail. */
#define HEAP_SLACK (16 << 10)
/* glibc keeps freed chunks in per-thread caches that it counts as in use;
 * RocksDB's pool threads live on and fill theirs slowly, by up to a few
 * hundred KiB. Without them the count is the bytes the process holds. */
#define NO_TCACHE "glibc.malloc.tcache_count=0"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
/* ASan replaces malloc, so glibc's counters see nothing; its own do. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* ---- what a process holds ---- */

typedef struct held {
	long threads;
	long fds;
	size_t heap;
} held;

/* Entries of a /proc directory ("." and ".." not counted). The directory's
 * own descriptor is counted in /proc/self/fd, the same in every count. */
static long count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	cr_assert_not_null(d, "opendir %s", dir);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static size_t heap_in_use(void)
{
#ifdef __SANITIZE_ADDRESS__
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	/* Small chunks in the arenas plus the large ones mapped on their own. */
	return mi.uordblks + mi.hblkhd;
#endif
}

static held count_held(void)
{
	return (held){ .threads = count_entries("/proc/self/task"),
		       .fds = count_entries("/proc/self/fd"), .heap = heap_in_use() };
}

/* Same threads and descriptors; heap grown by at most HEAP_SLACK. */
static void expect_nothing_left(const held *before, const held *after, const char *what)
{
	long long grown = (long long)after->heap - (long long)before->heap;

	cr_log_info("%s: threads %ld -> %ld, fds %ld -> %ld, heap %zu -> %zu (%+lld bytes)", what,
		    before->threads, after->threads, before->fds, after->fds, before->heap,
		    after->heap, grown);
	cr_expect_eq(after->threads, before->threads, "%s: threads %ld -> %ld", what,
		     before->threads, after->threads);
	cr_expect_eq(after->fds, before->fds, "%s: file descriptors %ld -> %ld", what, before->fds,
		     after->fds);
	cr_expect_leq(grown, HEAP_SLACK, "%s: the heap grew by %lld bytes", what, grown);
}

/*
 * What the process writes to stdout and stderr while jobs run: nothing is
 * printed on the library's own account. Not in the sanitizer build, whose
 * reports go to stderr and must reach the log.
 */
typedef struct capture {
	int saved_out, saved_err;
	char *path;
} capture;

static void capture_start(capture *c, const char *dir)
{
#ifndef __SANITIZE_ADDRESS__
	c->path = t_path_in(dir, "printed");
	int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s", c->path);
	fflush(stdout);
	fflush(stderr);
	c->saved_out = dup(STDOUT_FILENO);
	c->saved_err = dup(STDERR_FILENO);
	cr_assert(c->saved_out >= 0 && c->saved_err >= 0);
	cr_assert(dup2(fd, STDOUT_FILENO) >= 0 && dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
#else
	(void)dir;
	*c = (capture){ .saved_out = -1, .saved_err = -1 };
#endif
}

static void capture_end(capture *c, const char *what)
{
	if (!c->path)
		return;
	fflush(stdout);
	fflush(stderr);
	dup2(c->saved_out, STDOUT_FILENO);
	dup2(c->saved_err, STDERR_FILENO);
	close(c->saved_out);
	close(c->saved_err);
	char *printed = t_read_file(c->path);
	cr_expect_eq(printed[0], '\0', "%s: printed on the library's own account:\n%.2000s", what,
		     printed);
	free(printed);
	free(c->path);
	c->path = NULL;
}

/* ---- a store and the jobs run on it ---- */

typedef struct bench {
	char *store_dir, *sort_dir, *check_dir;
	bf_store *st;
} bench;

static void store_open(bench *b)
{
	bf_err err = { 0 };
	cr_assert_eq(bf_store_open(b->store_dir, 0, &b->st, &err), 0, "open: %s", bf_err_text(&err));
}

static void store_close(bench *b)
{
	bf_store_close(b->st);
	b->st = NULL;
}

/* A store with ROWS sbtest rows, open. */
static void bench_setup(bench *b)
{
	char *tmp = t_scratch_new("hygiene");
	bf_gen_opts go = { .table = TABLE, .rows = ROWS, .seed = 12, .threads = 2 };
	bf_gen_stats gs;
	bf_err err = { 0 };

	b->store_dir = t_path_in(tmp, "store");
	b->sort_dir = t_path_in(tmp, "sort");
	b->check_dir = t_path_in(tmp, "check");
	cr_assert_eq(bf_store_open(b->store_dir, BF_STORE_CREATE, &b->st, &err), 0, "create: %s",
		     bf_err_text(&err));
	cr_assert_eq(bf_gen_sbtest(b->st, &go, &gs, &err), 0, "gen: %s", bf_err_text(&err));
	cr_assert_eq(gs.rows, ROWS);
}

static void bench_teardown(bench *b)
{
	store_close(b);
	free(b->store_dir);
	free(b->sort_dir);
	free(b->check_dir);
}

/* A job with the in-process lock and the store as its target, small
 * enough for the sanitizer build. */
static bf_add_index_opts job_opts(const bench *b)
{
	return (bf_add_index_opts){
		.table = TABLE, .workers = 2, .mem = 32ULL << 20, .sort_dir = b->sort_dir,
		.etcd = "", .run_compression = -1, .target_compression = -1,
	};
}

/* The indexes job i builds: one or two, unique and not, in turn. */
static void job_specs(int i, bf_add_index_opts *o)
{
	static const bf_index_spec shapes[4][2] = {
		{ { "x1", "k", false } },
		{ { "x1", "c", true } },
		{ { "x1", "k", false }, { "x2", "c", true } },
		{ { "x1", "pad", true }, { "x2", "k,pad", false } },
	};
	const bf_index_spec *s = shapes[i % 4];

	o->nspecs = s[1].name ? 2 : 1;
	for (int n = 0; n < o->nspecs; n++)
		o->specs[n] = s[n];
}

/* Builds job i's indexes, checks each against the rows and drops it, so
 * the next job builds under the same names. */
static void run_good_job(bench *b, int i)
{
	bf_add_index_opts o = job_opts(b);
	bf_add_index_result res;
	bf_check_result cr;
	bf_err err = { 0 };

	job_specs(i, &o);
	cr_assert_eq(bf_add_index(b->st, &o, &res, &err), 0, "job %d: %s", i, bf_err_text(&err));
	cr_assert_eq(res.rows, ROWS, "job %d scanned %" PRIu64 " rows", i, res.rows);
	for (int n = 0; n < o.nspecs; n++) {
		const char *name = o.specs[n].name;
		cr_assert_eq(bf_check_index(b->st, NULL, TABLE, name, b->check_dir, 8ULL << 20, &cr,
					    &err), 0, "job %d: check %s: %s", i, name, bf_err_text(&err));
		cr_assert(cr.missing == 0 && cr.extra == 0 && cr.wrong_value == 0 &&
			  cr.found == ROWS && cr.expected == ROWS,
			  "job %d: index %s: %" PRIu64 " found, %" PRIu64 " missing, %" PRIu64
			  " extra, %" PRIu64 " wrong", i, name, cr.found, cr.missing, cr.extra,
			  cr.wrong_value);
		cr_assert_eq(bf_index_drop(b->st, NULL, TABLE, name, &err), 0, "job %d: drop %s: %s",
			     i, name, bf_err_text(&err));
	}
}

/* rc is an error, and err says what went wrong in words. */
static void expect_error(int rc, int code, const bf_err *err, const char *what, int i)
{
	cr_assert_eq(rc, code, "job %d: %s: %d, not %d (%s)", i, what, rc, code, bf_err_text(err));
	cr_assert(err->msg[0], "job %d: %s: %s, with no message", i, what, bf_strerror(rc));
}

/*
 * Job i fails. Even jobs build a unique index over k, which the generator
 * repeats: the duplicate rolls the job back, which frees the name again.
 * Odd ones fail their import (a fault seam) and keep what they built for a
 * resume, until a cancel rolls them back. Around them, calls refused at
 * once: each must come back as a status with a message.
 */
static void run_failing_job(bench *b, int i)
{
	bf_add_index_opts o = job_opts(b);
	bf_add_index_result res;
	bf_check_result cr;
	bf_store *other = NULL;
	char *missing = t_path_in(b->store_dir, "no-such-store");
	bf_err err = { 0 };
	int rc;

	o.nspecs = 1;
	o.specs[0] = (bf_index_spec){ "kdup", "k", i % 2 == 0 };
	if (i % 2)
		bf_fault_arm("store.ingest", 1);
	rc = bf_add_index(b->st, &o, &res, &err);
	bf_fault_reset();
	if (i % 2 == 0) {
		expect_error(rc, BF_EDUP, &err, "unique index over k", i);
		cr_assert(strstr(err.msg, "Duplicate entry"), "job %d: message '%s'", i, err.msg);
		cr_assert(res.job.rolled_back, "job %d was not rolled back", i);
	} else {
		expect_error(rc, BF_EFAULT, &err, "failed ingest", i);
		cr_assert_eq(res.job.state, BF_JOB_FAILED, "job %d: state %d", i, res.job.state);
		cr_assert_eq(bf_job_cancel(b->st, NULL, res.job.id, &err), 0, "job %d: cancel: %s", i,
			     bf_err_text(&err));
	}

	o = job_opts(b);
	o.nspecs = 1;
	o.specs[0] = (bf_index_spec){ "bad", "no_such_column", false };
	expect_error(bf_add_index(b->st, &o, &res, &err), BF_EINVAL, &err, "unknown column", i);
	o.table = "no_such_table";
	expect_error(bf_add_index(b->st, &o, &res, &err), BF_ENOTFOUND, &err, "unknown table", i);
	expect_error(bf_check_index(b->st, NULL, TABLE, "kdup", b->check_dir, 8ULL << 20, &cr, &err),
		     BF_ENOTFOUND, &err, "check of a missing index", i);
	expect_error(bf_index_drop(b->st, NULL, TABLE, "kdup", &err), BF_ENOTFOUND, &err,
		     "drop of a missing index", i);
	expect_error(bf_store_open(missing, 0, &other, &err), BF_ENOTFOUND, &err,
		     "open of a missing store", i);
	cr_assert_null(other);
	free(missing);
}

/*
 * Runs `jobs` jobs through `run`, closing and opening the store again
 * every `every` jobs; counts what the process holds, with the store
 * closed, after `warm` jobs and after the last.
 */
static void jobs_leave_nothing(int jobs, int every, int warm, void (*run)(bench *, int),
			       const char *what)
{
	bench b = { 0 };
	held after_warm = { 0 }, after_all;
	capture printed = { 0 };

	cr_assert(warm % every == 0 && jobs % every == 0 && warm < jobs);
	bench_setup(&b);
	capture_start(&printed, t_scratch_dir);
	for (int i = 0; i < jobs; i++) {
		run(&b, i);
		if ((i + 1) % every)
			continue;
		store_close(&b);
		if (i + 1 == warm)
			after_warm = count_held();
		if (i + 1 == jobs)
			break;
		store_open(&b);
	}
	after_all = count_held();
	capture_end(&printed, what);
	char label[96];
	snprintf(label, sizeof(label), "%s (after %d jobs, then after %d)", what, warm, jobs);
	expect_nothing_left(&after_warm, &after_all, label);
	bench_teardown(&b);
#ifdef __SANITIZE_ADDRESS__
	/* Asked here, not left to the exit of the test's process: a leak
	 * then fails this test, by name (tests/lsan.supp applies). */
	cr_expect_eq(__lsan_do_recoverable_leak_check(), 0,
		     "%s: LeakSanitizer found leaks (its report is above)", what);
#endif
}

Test(hygiene, jobs_leave_nothing_behind)
{
	jobs_leave_nothing(100, 10, 10, run_good_job, "100 jobs");
}

Test(hygiene, failed_jobs_leave_nothing_behind)
{
	jobs_leave_nothing(20, 5, 5, run_failing_job, "20 failed jobs");
}

/* ---- nothing in the library exits, aborts or prints on its own ---- */

#define LIBRARY "lib/libbfill.a"

/*
 * Symbols no member may reference: ending the process, or printing where
 * the caller did not ask (stdout and stderr are named through their
 * symbols, so any fprintf(stderr, ...) shows up as "stderr"). Printing to
 * a FILE * the caller handed in is the caller's choice and is not listed.
 */
static const char *const forbidden[] = {
	"exit", "_exit", "_Exit", "quick_exit", "abort", "__assert_fail",
	"__assert_perror_fail", "__assert", "printf", "vprintf", "__printf_chk",
	"__vprintf_chk", "puts", "putchar", "putchar_unlocked", "perror", "psignal",
	"psiginfo", "herror", "err", "errx", "verr", "verrx", "warn", "warnx", "vwarn",
	"vwarnx", "error", "error_at_line", "syslog", "vsyslog", "stdout", "stderr",
	NULL,
};

/*
 * Members allowed a forbidden symbol, and why. Only code that is not
 * bfill's own: each entry names a member by its ending.
 */
static const struct {
	const char *member_suffix;
	const char *symbol;
} allowed[] = {
	/* protoc-c's generated pack/unpack helpers assert that a message
	 * handed to them is of their own type, which the C types already
	 * guarantee; the code is generated by the build, not written here. */
	{ ".pb-c.o", "__assert_fail" },
};

static bool is_allowed(const char *member, const char *sym)
{
	size_t ml = strlen(member);

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		size_t sl = strlen(allowed[i].member_suffix);
		if (ml >= sl && !strcmp(member + ml - sl, allowed[i].member_suffix) &&
		    !strcmp(sym, allowed[i].symbol))
			return true;
	}
	return false;
}

static bool is_forbidden(const char *sym)
{
	for (int i = 0; forbidden[i]; i++)
		if (!strcmp(sym, forbidden[i]))
			return true;
	return false;
}

Test(hygiene, library_never_exits_aborts_or_prints)
{
	char line[1024], found[4096] = "";
	size_t refs = 0, bad = 0;
	FILE *p;

	if (system("command -v nm >/dev/null 2>&1") != 0)
		cr_skip_test("nm (binutils) is not installed: cannot list " LIBRARY "'s references");
	cr_assert(t_path_exists(LIBRARY), LIBRARY " is missing (run from the repository root, "
		  "after make " LIBRARY ")");
	/* POSIX format: "lib/libbfill.a[member.o]: symbol U" */
	p = popen("nm -u -A -P " LIBRARY " 2>/dev/null", "r");
	cr_assert_not_null(p, "popen nm");
	while (fgets(line, sizeof(line), p)) {
		char *open = strchr(line, '['), *close = strstr(line, "]: ");
		char member[256], sym[256];

		if (!open || !close || close < open)
			continue;
		snprintf(member, sizeof(member), "%.*s", (int)(close - open - 1), open + 1);
		if (sscanf(close + 3, "%255s", sym) != 1)
			continue;
		refs++;
		/* A versioned reference ("abort@GLIBC_2.2.5") is the same call. */
		sym[strcspn(sym, "@")] = '\0';
		if (!is_forbidden(sym) || is_allowed(member, sym))
			continue;
		bad++;
		snprintf(found + strlen(found), sizeof(found) - strlen(found), " %s:%s", member, sym);
	}
	int status = pclose(p);
	cr_assert_eq(status, 0, "nm " LIBRARY " failed (status %d)", status);
	cr_assert_gt(refs, 0, "nm listed no references in " LIBRARY);
	cr_expect_eq(bad, 0, "members that exit, abort or print on their own:%s", found);
}

/*
 * Criterion's own main, after making sure the process runs without glibc's
 * thread caches: tunables are read when a process starts, so the first
 * start execs itself again with NO_TCACHE added to GLIBC_TUNABLES. The
 * sanitizer build counts through ASan's allocator and needs none of this.
 */
int main(int argc, char *argv[])
{
#ifndef __SANITIZE_ADDRESS__
	const char *tunables = getenv("GLIBC_TUNABLES");

	if (!tunables || !strstr(tunables, NO_TCACHE)) {
		char *value = NULL;
		if (asprintf(&value, "%s%s" NO_TCACHE, tunables ? tunables : "",
			     tunables && *tunables ? ":" : "") >= 0 &&
		    setenv("GLIBC_TUNABLES", value, 1) == 0)
			execv("/proc/self/exe", argv);
		/* Still here: the heap counts include the caches, and may fail. */
		free(value);
	}
#endif
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
