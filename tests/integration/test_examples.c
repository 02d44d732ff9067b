/*
 * The programs in examples/ as a reader runs them (built by `make examples`
 * into bin/examples/, or the directory in BFILL_EXAMPLES): each succeeds,
 * prints its figures, fails with one line on stderr and leaves nothing
 * behind. Then the installed library (scripts/install-check.sh): `make
 * install` into a scratch prefix, the examples built there with nothing but
 * pkg-config, dynamically and statically, and libbfill.so's exports.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/support.h"

TestSuite(examples, .fini = t_scratch_remove);

/* Absolute path of example `name` (a static buffer, one per call site's
 * use: copied by t_exec before the next call). */
static const char *example(const char *name)
{
	static char path[PATH_MAX];
	const char *dir = getenv("BFILL_EXAMPLES");
	char abs[PATH_MAX];

	if (!dir || !*dir)
		dir = realpath("./bin/examples", abs) ? abs : "./bin/examples";
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(access(path, X_OK), 0, "example %s: %s (make examples builds it)", path,
		     strerror(errno));
	return path;
}

/* Runs example `name` with its arguments (NULL-terminated) and the extra
 * environment entries env (may be NULL). */
static t_run run_example(const char *name, char *const env[], const char *arg1,
			 const char *arg2, const char *arg3)
{
	char *argv[] = { (char *)example(name), (char *)arg1, (char *)arg2, (char *)arg3, NULL };
	return t_exec(argv, env);
}

/* Asserts that dir holds nothing: the example removed its own directory. */
static void assert_empty(const char *dir, const char *who)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		cr_assert(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."),
			  "%s left %s/%s behind", who, dir, e->d_name);
	closedir(d);
}

/* Asserts a successful run: exit 0, nothing on stderr, and each needle
 * (NULL: none) in stdout. Frees r's output. */
static void expect_ok(t_run *r, const char *who, const char *needle1, const char *needle2,
		      const char *needle3)
{
	const char *needles[] = { needle1, needle2, needle3 };

	cr_assert_eq(r->status, 0, "%s: exit %d\nstdout: %s\nstderr: %s", who, r->status, r->out,
		     r->err);
	cr_assert_str_empty(r->err, "%s wrote to stderr: %s", who, r->err);
	for (int i = 0; i < 3; i++)
		cr_assert(!needles[i] || strstr(r->out, needles[i]), "%s: no '%s' in: %s", who,
			  needles[i], r->out);
	t_run_free(r);
}

Test(examples, sort_engine_sorts_within_its_budget)
{
	char *dir = t_scratch_new("ex-sort");
	t_run r = run_example("sort_engine", NULL, dir, "200000", NULL);

	cr_assert_eq(t_count_lines(r.out), 1, "one line of figures: %s", r.out);
	expect_ok(&r, "sort_engine", "sort_engine: 200000 keys, budget 1024 KiB",
		  "in order, none lost", NULL);
	assert_empty(dir, "sort_engine");
}

Test(examples, custom_target_sees_every_index_entry)
{
	char *dir = t_scratch_new("ex-target");
	t_run r = run_example("custom_target", NULL, dir, "30000", NULL);
	const char *saw = strstr(r.out, "saw ");
	long ingests = saw ? strtol(saw + 4, NULL, 10) : 0;

	/* How many import rounds a build makes depends on how the scan
	 * goes; that the target saw them all, the example checks itself. */
	cr_assert_geq(ingests, 1, "ingests through the target: %s", r.out);
	expect_ok(&r, "custom_target", "custom_target: 30000 rows; index k_1: 30000 keys",
		  "target 'counting' saw", "check-index: 30000 found: OK");
	assert_empty(dir, "custom_target");
}

Test(examples, build_index_loads_builds_and_checks)
{
	char *dir = t_scratch_new("ex-build");
	t_run r = run_example("build_index", NULL, dir, "5000", NULL);
	const char *p = r.out;
	int ok = 0;

	while ((p = strstr(p, " found: OK\n"))) {
		ok++;
		p++;
	}
	cr_assert_eq(ok, 3, "three indexes checked OK: %s", r.out);
	expect_ok(&r, "build_index", "5000 rows loaded", "job 1 done: 5000 rows scanned, 15000 "
		  "index keys", "check uk_email (public): 5000 rows, 5000 expected, 5000 found: OK");
	assert_empty(dir, "build_index");
}

/* Asserts a failed run: exit code `code` and exactly one line on stderr,
 * starting with prefix and holding needle (NULL: none). What the program
 * printed before it failed may stand on stdout. Frees r's output. */
static void expect_fail(t_run *r, int code, const char *prefix, const char *needle)
{
	cr_assert_eq(r->status, code, "exit %d, not %d\nstdout: %s\nstderr: %s", r->status, code,
		     r->out, r->err);
	cr_assert_eq(t_count_lines(r->err), 1, "one line on stderr: %s", r->err);
	cr_assert(!strncmp(r->err, prefix, strlen(prefix)), "'%s' does not start with '%s'",
		  r->err, prefix);
	cr_assert(!needle || strstr(r->err, needle), "no '%s' in: %s", needle, r->err);
	t_run_free(r);
}

/* Bad usage is exit 2; a failure is exit 1 with one line on stderr naming
 * the program, and nothing left behind. */
Test(examples, failures_are_one_line_and_clean_up)
{
	static const char *const names[] = { "sort_engine", "custom_target", "build_index" };
	char *dir = t_scratch_new("ex-fail");
	char *missing = t_path_in(dir, "no-such-dir");
	char prefix[64];

	for (int i = 0; i < 3; i++) {
		snprintf(prefix, sizeof(prefix), "%s: ", names[i]);
		t_run r = run_example(names[i], NULL, dir, "12", "extra");
		expect_fail(&r, 2, "usage: ", names[i]);
		r = run_example(names[i], NULL, missing, NULL, NULL);
		expect_fail(&r, 1, prefix, "no-such-dir");
	}
	/* Failures inside the library, through its fault seams: a sort run
	 * that cannot be written; an index ingest refused by the store (the
	 * first ingest is the table's rows). */
	t_run r = run_example("sort_engine", (char *const[]){ "BFILL_FAULT=engine.write", NULL },
			      dir, NULL, NULL);
	expect_fail(&r, 1, "sort_engine: writing a run: ", NULL);
	r = run_example("custom_target", (char *const[]){ "BFILL_FAULT=store.ingest@2", NULL }, dir,
			"20000", NULL);
	expect_fail(&r, 1, "custom_target: add-index: ", NULL);
	r = run_example("build_index", (char *const[]){ "BFILL_FAULT=store.ingest@2", NULL }, dir,
			"2000", NULL);
	expect_fail(&r, 1, "build_index: add-index: ", NULL);
	free(missing);
	assert_empty(dir, "a failed example");
}

Test(examples, installed_library_builds_with_pkg_config)
{
	char *dir;
	t_run r;

	if (system("command -v pkg-config >/dev/null 2>&1") != 0)
		cr_skip_test("pkg-config is not installed (Debian: pkg-config): cannot build against "
			     "the installed library");
	cr_assert_eq(access("scripts/install-check.sh", X_OK), 0,
		     "scripts/install-check.sh: %s (run from the top of the tree)", strerror(errno));
	dir = t_scratch_new("ex-install");
	r = t_exec((char *const[]){ "scripts/install-check.sh", dir, NULL }, NULL);
	cr_assert_eq(r.status, 0, "install-check failed (exit %d):\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "install-check: ok\n"), "%s", r.out);
	cr_assert(strstr(r.out, "dynamic: sort_engine:") && strstr(r.out, "static: sort_engine:"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "all bf_*"), "%s", r.out);
	t_run_free(&r);
}
