/*
 * The import path through the library, over real stores: imports run on
 * sealed engine generations while the scan goes on, a failed import keeps
 * its generations for the resume, the target fences stale tokens, unique
 * checks read only their own range, counts stay exact across lost locks,
 * job ids are never reused and an index left in write-reorg can always be
 * dropped.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/catalog.h"
#include "bfill/check.h"
#include "bfill/codec.h"
#include "bfill/fault.h"
#include "bfill/job.h"
#include "bfill/sst.h"
#include "bfill/store.h"
#include "bfill/target.h"
#include "tests/support/support.h"
#include "tests/support/table.h"
#include "tests/support/world.h"
#include "util/util.h"

TestSuite(import_path, .fini = t_scratch_remove, .timeout = 180);

/* A build that imports often: one writer, the smallest budget. */
static bf_add_index_opts frequent_imports(const world *w)
{
	bf_add_index_opts o = opts_for(w, "sbtest1");
	o.workers = 1;
	o.mem = 64ULL << 20;
	o.import_every = 512ULL << 10;
	return o;
}

/* ---- sealing a generation fails: nothing is dereferenced, all is kept ---- */

static void seal_fails_then_resumes(long nth, uint64_t import_every)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 100000, 7, &t);
	bf_add_index_opts o = frequent_imports(&w);
	o.import_every = import_every;
	add_spec(&o, "c_idx", "c", false);
	add_spec(&o, "upad", "pad", true);
	bf_fault_arm("engine.seal", nth);
	bf_job job = build_fails(&w, &o, BF_EFAULT, &err, &res);
	bf_fault_reset();
	cr_assert_not(job.rolled_back);
	t_table_get(w.st, "sbtest1", &t);
	for (int i = 0; i < t.nindexes; i++)
		cr_assert_eq(t.indexes[i].state, BF_INDEX_WRITE_REORG, "%s is %s", t.indexes[i].name,
			     bf_index_state_name(t.indexes[i].state));

	bf_add_index_opts ro = opts_for(&w, NULL);
	ro.resume = true;
	ro.job_id = job.id;
	build_ok(&w, &ro, &res);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 100000);
	t_table_expect_exact(w.st, "sbtest1", "upad", w.check_dir, 100000);
	world_close(&w);
}

/* The second import's new generation can't be opened. */
Test(import_path, seal_failure_mid_scan) { seal_fails_then_resumes(2, 512ULL << 10); }
/* The only import, the last one: its new generation can't be opened. */
Test(import_path, seal_failure_at_the_last_import) { seal_fails_then_resumes(1, 0); }

/* ---- a lock lost after an ingest: the round starts over, counted once ---- */

Test(import_path, fence_loss_after_ingest_counts_keys_once)
{
	world w;
	bf_add_index_result res;
	bf_table t;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 50000, 3, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "c_idx", "c", false);
	/* One import, one index: check 1 is before the ingest, check 2 after
	 * it — the files are in the store when the lock turns out lost. */
	bf_fault_arm_range("import.fence", 2, 2);
	build_ok(&w, &o, &res);
	bf_fault_reset();
	cr_assert_eq(res.backend.fence_losses, 1, "the round was started over once");
	cr_assert_eq(res.backend.imports, 1);
	cr_assert_eq(res.index_keys, 50000, "imported keys counted once, not per attempt");
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 50000);
	world_close(&w);
}

/* ---- a lost lock for good: the round is retried with new generations ---- */

Test(import_path, lost_lock_keeps_every_generation_for_the_resume)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 150000, 9, &t);
	bf_add_index_opts o = frequent_imports(&w);
	o.lock_timeout_s = 1;
	add_spec(&o, "c_idx", "c", false);
	add_spec(&o, "uc", "c", true);
	/* From the third lock check on, the lock is always lost: rounds are
	 * retried (each sealing a new generation) until the lock timeout. */
	bf_fault_arm("import.fence", 3);
	bf_job job = build_fails(&w, &o, BF_ELOCKLOST, &err, &res);
	bf_fault_reset();
	cr_assert_gt(res.backend.fence_losses, 1);
	cr_assert_not(job.rolled_back);
	bf_job rec;
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(w.st), job.id, &rec, &err), 0, "%s", bf_err_text(&err));
	uint64_t last;
	cr_assert_eq(sscanf(rec.cp.engine_id, "g%" SCNu64, &last), 1);
	cr_assert_gt(last, rec.cp.first_gen + 1, "several generations wait for import (%" PRIu64
		     "..%" PRIu64 ")", rec.cp.first_gen, last);

	bf_add_index_opts ro = opts_for(&w, NULL);
	ro.resume = true;
	ro.job_id = job.id;
	build_ok(&w, &ro, &res);
	cr_assert_eq(res.rows, 150000 - rec.cp.flushed_rows, "the resume starts at the flushed checkpoint");
	t_rows rows;
	t_rows_sbtest(&rows, &t, 9, 150000);
	cr_assert_eq(t_table_verify_index(w.st, "sbtest1", "c_idx", &rows), 150000);
	cr_assert_eq(t_table_verify_index(w.st, "sbtest1", "uc", &rows), 150000);
	t_table_expect_exact(w.st, "sbtest1", "uc", w.check_dir, 150000);
	t_rows_free(&rows);
	world_close(&w);
}

/* ---- the scan goes on while an import runs ---- */

Test(import_path, scan_goes_on_during_an_import)
{
	world w;
	bf_add_index_result res;
	bf_table t;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 300000, 4, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	o.import_every = 4ULL << 20;
	add_spec(&o, "c_idx", "c", false);
	/* Every import stalls 4 s before its ingest, holding its lock. The
	 * first one starts after a few MiB of entries; held writers would
	 * keep the scan from ending before it does. */
	bf_fault_arm_pause("import.stall", 4000);
	build_ok(&w, &o, &res);
	bf_fault_reset();
	cr_assert_geq(res.backend.imports, 2, "an import ran during the scan, and the last one");
	cr_assert_lt(res.scan_seconds, 4.0, "the scan took %.2f s: it waited for an import",
		     res.scan_seconds);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 300000);
	world_close(&w);
}

/* ---- unique checks read only their own range of the target ---- */

Test(import_path, unique_checks_stay_inside_the_index)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_target *target = NULL;
	bf_err err = { 0 };

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 100000, 2, &t);
	/* A public index whose 100k entries sort before the new one's. */
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "k_idx", "k", false);
	build_ok(&w, &o, &res);

	cr_assert_eq(bf_target_local_create(w.st, &target, &err), 0, "%s", bf_err_text(&err));
	o = frequent_imports(&w);
	o.target = target;
	add_spec(&o, "upad", "pad", true);
	build_ok(&w, &o, &res);
	cr_assert_gt(res.backend.imports, 1);
	bf_target_stats ts;
	bf_target_stats_get(target, &ts);
	cr_assert_gt(ts.probes, 0, "later imports ask the target about earlier ones");
	cr_assert_leq(ts.probe_keys_read, ts.probes,
		      "%" PRIu64 " keys read to answer %" PRIu64 " probes: the check strayed outside "
		      "the index", ts.probe_keys_read, ts.probes);
	bf_target_destroy(target);
	t_table_expect_exact(w.st, "sbtest1", "upad", w.check_dir, 100000);
	world_close(&w);
}

/* ---- the local target refuses a stale fence token ---- */

static char *one_sst(const char *dir, const char *name, const char *key)
{
	char *path = t_path_in(dir, name);
	bf_sst_writer *sw = NULL;
	bf_err err = { 0 };
	cr_assert_eq(bf_sst_writer_open(path, BF_COMPRESS_NONE, 4096, &sw, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_sst_writer_put(sw, key, strlen(key), "v", 1, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_sst_writer_finish(sw, NULL, &err), 0, "%s", err.msg);
	bf_sst_writer_destroy(sw);
	return path;
}

static int ingest_with(bf_target *t, const char *dir, const char *key, const char *lock,
		       int64_t revision, bf_err *err)
{
	char *path = one_sst(dir, key, key);
	const char *paths[1] = { path };
	bf_fence_token tok = { .revision = revision };
	snprintf(tok.key, sizeof(tok.key), "%s", lock);
	int rc = bf_target_ingest(t, paths, 1, &tok, err);
	remove(path);
	free(path);
	return rc;
}

Test(import_path, local_target_refuses_a_stale_fence_token)
{
	world w;
	bf_target *t = NULL;
	bf_err err = { 0 };
	char *dir;

	world_open(&w);
	dir = t_path_in(t_scratch_dir, "ssts");
	cr_assert_eq(bf_mkdirs(dir, NULL), 0);
	cr_assert_eq(bf_target_local_create(w.st, &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(ingest_with(t, dir, "t1", "/bfill/lock/u/1/1", 100, &err), 0, "%s", err.msg);
	cr_assert_eq(ingest_with(t, dir, "t2", "/bfill/lock/u/1/1", 100, &err), 0,
		     "the same holder again: %s", err.msg);
	/* A holder whose lease ran out shows an older revision. */
	cr_assert_eq(ingest_with(t, dir, "t3", "/bfill/lock/u/1/1", 99, &err), BF_EFENCED);
	cr_assert_not_null(strstr(err.msg, "/bfill/lock/u/1/1"), "names the lock: %s", err.msg);
	cr_assert_eq(ingest_with(t, dir, "t4", "/bfill/lock/u/1/1", 101, &err), 0, "%s", err.msg);
	/* Another lock key has its own record; revision 0 is not fenced. */
	cr_assert_eq(ingest_with(t, dir, "t5", "/bfill/lock/u/2/1", 5, &err), 0, "%s", err.msg);
	cr_assert_eq(ingest_with(t, dir, "t6", "/bfill/lock/u/1/1", 0, &err), 0, "%s", err.msg);
	bf_target_stats ts;
	bf_target_stats_get(t, &ts);
	cr_assert_eq(ts.fence_refusals, 1);
	bf_target_destroy(t);

	/* The record is durable: a reopened store still refuses. */
	bf_store_close(w.st);
	w.st = t_table_open_store(w.store_dir);
	cr_assert_eq(bf_target_local_create(w.st, &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(ingest_with(t, dir, "t7", "/bfill/lock/u/1/1", 100, &err), BF_EFENCED);
	char *v = NULL;
	size_t vl;
	cr_assert_eq(bf_store_get(w.st, "t3", 2, &v, &vl, NULL), BF_ENOTFOUND, "the refused file is not in");
	cr_assert_eq(bf_store_get(w.st, "t4", 2, &v, &vl, NULL), 0);
	free(v);
	bf_target_destroy(t);
	free(dir);
	world_close(&w);
}

/* ---- job ids ---- */

Test(import_path, automatic_job_ids_never_reuse_a_given_one)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 2000, 1, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	o.job_id = 1;
	add_spec(&o, "c_idx", "c", false);
	bf_fault_arm("store.ingest", 1);
	build_fails(&w, &o, BF_EFAULT, &err, &res);
	bf_fault_reset();

	/* An automatic id next: not 1, which is taken. (Its own sort dir:
	 * job 1 keeps its files for the resume.) */
	o = opts_for(&w, "sbtest1");
	add_spec(&o, "k_idx", "k", false);
	char *sort2 = t_path_in(t_scratch_dir, "sort2");
	o.sort_dir = sort2;
	cr_assert_eq(bf_add_index(w.st, &o, &res, &err), 0, "%s", bf_err_text(&err));
	free(sort2);
	cr_assert_eq(res.job.id, 2, "automatic id %" PRId64 ", want 2", res.job.id);
	bf_job one;
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(w.st), 1, &one, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(one.state, BF_JOB_FAILED, "job 1 is untouched");
	cr_assert_str_eq(one.index_names[0], "c_idx");

	/* Job 1 still resumes to an exact index. */
	o = opts_for(&w, NULL);
	o.resume = true;
	o.job_id = 1;
	build_ok(&w, &o, &res);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 2000);
	world_close(&w);
}

/* ---- an index stuck in write-reorg ---- */

Test(import_path, an_orphaned_write_reorg_index_can_be_dropped)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err = { 0 };

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 3000, 1, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "c_idx", "c", false);
	bf_fault_arm("store.ingest", 1);
	bf_job job = build_fails(&w, &o, BF_EFAULT, &err, &res);
	bf_fault_reset();

	/* While its job lives, the index is the job's to cancel. */
	cr_assert_eq(bf_index_drop(w.st, NULL, "sbtest1", "c_idx", &err), BF_ESTATE);
	cr_assert_not_null(strstr(err.msg, "cancel"), "%s", err.msg);

	/* The job record is overwritten by one building something else (what
	 * a reused id did): the index has no job left to cancel it. */
	bf_job other = job;
	other.index_ids[0] = 99;
	snprintf(other.index_names[0], BF_NAME_MAX, "other");
	cr_assert_eq(bf_catalog_put_job(bf_store_catalog(w.st), &other, &err), 0);
	cr_assert_eq(bf_index_drop(w.st, NULL, "sbtest1", "c_idx", &err), 0, "%s", bf_err_text(&err));
	t_table_get(w.st, "sbtest1", &t);
	cr_assert_lt(bf_table_index(&t, "c_idx"), 0, "the index is gone");
	cr_assert_eq(t_table_index_count(w.st, t.id, 0), 0, "and so are its entries");

	/* An index whose job record is gone entirely. */
	o = opts_for(&w, "sbtest1");
	add_spec(&o, "k_idx", "k", false);
	bf_fault_arm("store.ingest", 1);
	job = build_fails(&w, &o, BF_EFAULT, &err, &res);
	bf_fault_reset();
	char key[64];
	snprintf(key, sizeof(key), "%sjob/%020" PRId64, BF_CATALOG_PREFIX, job.id);
	cr_assert_eq(bf_store_delete(w.st, key, strlen(key), &err), 0);
	cr_assert_eq(bf_index_drop(w.st, NULL, "sbtest1", "k_idx", &err), 0, "%s", bf_err_text(&err));
	world_close(&w);
}

/* ---- a corrupt row ---- */

Test(import_path, corrupt_row_fails_with_its_handle_and_resumes_once_mended)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err;
	uint8_t key[BF_RECORD_KEY_LEN];

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 20000, 6, &t);
	bf_codec_record_key(key, t.id, 12345);
	cr_assert_eq(bf_store_put(w.st, key, sizeof(key), "\x80\x01garbage", 9, NULL), 0);

	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "c_idx", "c", false);
	bf_job job = build_fails(&w, &o, BF_ECORRUPT, &err, &res);
	cr_assert_not_null(strstr(err.msg, "handle 12345"), "the error names the row: %s", err.msg);
	cr_assert_not(job.rolled_back, "a mended row can be resumed");

	/* The row is written again as it should be; the job finishes. */
	t_rows rows, one;
	t_rows_sbtest(&rows, &t, 6, 20000);
	t_rows_init(&one, &t);
	t_rows_add(&one, 12345, t_rows_get(&rows, 12344));
	t_table_insert(w.st, &t, &one);
	o = opts_for(&w, NULL);
	o.resume = true;
	o.job_id = job.id;
	build_ok(&w, &o, &res);
	cr_assert_eq(t_table_verify_index(w.st, "sbtest1", "c_idx", &rows), 20000);
	t_rows_free(&one);
	t_rows_free(&rows);
	world_close(&w);
}
