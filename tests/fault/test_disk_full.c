/*
 * A full disk is bad input like any other: one clear error line, exit 1,
 * nothing half-written. Real small file systems (tmpfs mounts) stand in
 * for the full disk; the tests skip, saying why, where mounting isn't
 * allowed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfill/catalog.h"
#include "bfill/store.h"
#include "tests/support/support.h"

static void unmount_scratch(void)
{
	t_small_fs_unmount();
	t_scratch_remove();
}

TestSuite(disk_full, .init = t_need_bfill, .fini = unmount_scratch, .timeout = 120);

/* Runs `bfill <args>` and asserts the failure is one line, exit 1, that
 * starts "bfill <cmd>: " and says `needle`. */
#define expect_one_line(cmd, needle, ...)                                                   \
	do {                                                                                \
		t_run r_ = t_bfillf(cmd " " __VA_ARGS__);                                   \
		cr_assert(!r_.signaled, "%s: killed by a signal: %s", cmd, r_.err);         \
		t_expect_cli_error(&r_, 1, "bfill " cmd ": ", cmd " on a full store", needle, \
				   NULL);                                                   \
	} while (0)

Test(disk_full, every_command_on_a_full_store_works_or_fails_in_one_line)
{
	char *dir = t_scratch_new("diskfull-all");
	char *fs = t_small_fs("full", 24);
	char *store = t_path_in(fs, "store"), *fresh = t_path_in(fs, "fresh");
	char *sort = t_path_in(dir, "sort"), *log = t_path_in(store, "LOG");
	t_bfill_gen(store, 20000, 1);
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name k_idx --columns k --sort-dir '%s'",
			   store, sort);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	t_fill_up(fs);

	/* What writes says there is no room, before RocksDB's own writes
	 * could fail (its info log used to abort the process here). */
	expect_one_line("gen", "free on its file system", "--store '%s' --rows 10 --table t2", store);
	expect_one_line("gen", "free on its file system", "--store '%s' --rows 10", fresh);
	cr_assert(!t_path_exists(fresh), "a refused gen makes no store");
	expect_one_line("add-index", "free on its file system",
			"--store '%s' --table sbtest1 --name c_idx --columns c --sort-dir '%s'", store, sort);
	expect_one_line("cancel", "no room on its file system", "--store '%s' --job 1", store);
	expect_one_line("drop-index", "no room on its file system",
			"--store '%s' --table sbtest1 --name k_idx", store);
	/* check-index sorts beside the store by default: the same disk. */
	expect_one_line("check-index", "no room on its file system",
			"--store '%s' --table sbtest1 --name k_idx", store);

	/* What only reads works: a read-only open writes nothing. */
	r = t_bfillf("status --store '%s'", store);
	cr_assert(r.status == 0 && !*r.err, "status: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table sbtest1 --limit 2", store);
	cr_assert(r.status == 0 && !*r.err, "dump: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	r = t_bfillf("check-index --store '%s' --table sbtest1 --name k_idx --tmp-dir '%s'", store, sort);
	cr_assert(r.status == 0 && strstr(r.out, "20000 found: OK"), "check-index: %s%s", r.out, r.err);
	t_run_free(&r);

	/* RocksDB's info log is never written, so it cannot fail. */
	struct stat sb;
	cr_assert_eq(stat(log, &sb), 0);
	cr_assert_eq(sb.st_size, 0, "LOG holds %lld bytes", (long long)sb.st_size);
	free(store);
	free(fresh);
	free(sort);
	free(log);
	free(fs);
}

/* Room the store's own files may take between two measurements. */
#define SLACK (256u << 10)

Test(disk_full, cancel_and_drop_index_give_back_what_failed_attempts_took)
{
	char *dir = t_scratch_new("diskfull-reclaim");
	char *fs = t_small_fs("reclaim", 36);
	char *store = t_path_in(fs, "store"), *sort = t_path_in(dir, "sort");
	t_bfill_gen(store, 100000, 5);
	uint64_t after_gen = t_free_bytes(fs);
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name k_idx --columns k --sort-dir '%s'",
			   store, sort);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	uint64_t after_k = t_free_bytes(fs);

	/* c's entries (~16 MB) do not fit: imports of about 2 MB land until
	 * one fails for want of space. The scan is slowed down so that it
	 * can't outrun the imports (they run while it goes on) and leave the
	 * whole index to the first one. */
	r = t_bfill_faultf("scan.slow~2", "add-index --store '%s' --table sbtest1 --name c_idx --columns c --sort-dir '%s' "
		     "--import-every 2M", store, sort);
	cr_assert(!r.signaled, "killed by a signal: %s", r.err);
	t_expect_cli_error(&r, 1, "bfill add-index: ", "an index too big for the store", "space", NULL);
	uint64_t after_fail = t_free_bytes(fs);
	cr_assert_lt(after_fail + (1u << 20), after_k, "the failed attempt left entries behind (%llu free before, %llu after)", (unsigned long long)after_k, (unsigned long long)after_fail);

	/* On a store this full (under BF_STORE_MIN_FREE), still. */
	r = t_bfillf("drop-index --store '%s' --table sbtest1 --name k_idx", store);
	cr_assert_eq(r.status, 0, "drop-index: %s", r.err);
	t_run_free(&r);
	uint64_t after_drop = t_free_bytes(fs);
	cr_assert_geq(after_drop + SLACK, after_fail + (after_gen - after_k),
		      "drop-index gives k_idx's %llu bytes back: %llu -> %llu free",
		      (unsigned long long)(after_gen - after_k), (unsigned long long)after_fail,
		      (unsigned long long)after_drop);

	r = t_bfillf("cancel --store '%s' --job 2", store);
	cr_assert_eq(r.status, 0, "cancel: %s", r.err);
	t_run_free(&r);
	uint64_t after_cancel = t_free_bytes(fs);
	cr_assert_geq(after_cancel + SLACK, after_gen,
		      "cancel gives the failed attempt's bytes back: %llu free, %llu after gen",
		      (unsigned long long)after_cancel, (unsigned long long)after_gen);

	/* The rows are untouched. */
	r = t_bfillf("dump --store '%s' --table sbtest1 --limit 1", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	free(store);
	free(sort);
	free(fs);
}

Test(disk_full, gen_into_a_full_store_fails_cleanly)
{
	t_scratch_new("diskfull-gen");
	char *fs = t_small_fs("small", 8);
	char *store = t_path_in(fs, "store");
	/* ~21 MiB of rows into 8 MiB: refused before the first row. */
	t_run r = t_bfillf("gen --store '%s' --rows 100000", store);
	cr_assert(!r.signaled, "no crash");
	t_expect_cli_error(&r, 1, "bfill gen: ", "gen into a full file system", "space", NULL);

	/* The store is as it was: no table, the ingest was all or nothing. */
	bf_store *st;
	bf_table t;
	bf_err err = { 0 };
	cr_assert_eq(bf_store_open(store, BF_STORE_READONLY, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "sbtest1", &t, NULL), BF_ENOTFOUND);
	bf_store_close(st);
	free(store);
	free(fs);
}

Test(disk_full, a_sort_dir_too_small_fails_before_the_scan)
{
	char *dir = t_scratch_new("diskfull-sort");
	char *store = t_path_in(dir, "store");
	t_bfill_gen(store, 200000, 3);
	char *fs = t_small_fs("sort", 8);
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
