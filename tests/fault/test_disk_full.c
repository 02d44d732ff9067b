/*
 * A full disk is bad input like any other: one clear error line, exit 1,
 * nothing half-written. Real small file systems (tmpfs mounts) stand in
 * for the full disk; the tests skip, saying why, where mounting isn't
 * allowed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "bfill/catalog.h"
#include "bfill/store.h"
#include "tests/support/support.h"

static char *mounted;

static void unmount_scratch(void)
{
	if (mounted) {
		umount2(mounted, MNT_DETACH);
		free(mounted);
		mounted = NULL;
	}
	t_scratch_remove();
}

TestSuite(disk_full, .init = t_need_bfill, .fini = unmount_scratch, .timeout = 120);

/* A tmpfs of `mib` MiB at <scratch>/<name>; skips when it can't mount. */
static char *small_fs(const char *name, int mib)
{
	char *dir = t_path_in(t_scratch_dir, name), opts[32];
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(opts, sizeof(opts), "size=%dm", mib);
	if (mount("bfill-test", dir, "tmpfs", 0, opts) != 0) {
		int e = errno;
		free(dir);
		cr_skip_test("cannot mount a small tmpfs here (%s): needs root or CAP_SYS_ADMIN",
			     strerror(e));
	}
	mounted = strdup(dir);
	return dir;
}

Test(disk_full, gen_into_a_full_store_fails_cleanly)
{
	t_scratch_new("diskfull-gen");
	char *fs = small_fs("small", 8);
	char *store = t_path_in(fs, "store");
	/* ~21 MiB of rows into 8 MiB. */
	t_run r = t_bfillf("gen --store '%s' --rows 100000", store);
	cr_assert(!r.signaled, "no crash");
	t_expect_cli_error(&r, 1, "bfill gen: ", "gen into a full file system", "space", NULL);

	/* The store is as it was: no table, the ingest was all or nothing. */
	bf_store *st;
	bf_table t;
	bf_err err = { 0 };
	cr_assert_eq(bf_store_open(store, BF_STORE_READONLY, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_catalog_get_table(st, "sbtest1", &t, NULL), BF_ENOTFOUND);
	bf_store_close(st);
	free(store);
	free(fs);
}

Test(disk_full, a_sort_dir_too_small_fails_before_the_scan)
{
	char *dir = t_scratch_new("diskfull-sort");
	char *store = t_path_in(dir, "store");
	t_bfill_gen(store, 200000, 3);
	char *fs = small_fs("sort", 8);
	/* The c index of 200k rows is ~33 MB; the check wants about twice that. */
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name c_idx --columns c --sort-dir '%s'",
			   store, fs);
	cr_assert(!r.signaled, "no crash");
	t_expect_cli_error(&r, 1, "bfill add-index: ", "sort dir too small", "free", "--sort-dir");

	/* The job says why, and the index is not public. */
	r = t_bfillf("status --store '%s' --job 1 --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "\"state\":\"failed\""), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "free"), "%s", r.out);
	t_run_free(&r);
	r = t_bfillf("check-index --store '%s' --table sbtest1 --name c_idx --json", store);
	t_expect_cli_error(&r, 1, "bfill check-index: ", "an index being built is not readable",
			   "being built by job 1", "write-reorg");
	free(store);
	free(fs);
}
