/*
 * Jobs on a cluster of store nodes through the CLI (`--etcd EPS --cluster
 * NAME`): a real etcd, three real bfill-store processes, three replicas.
 * gen loads through Write/MultiIngest, add-index scans the stores and
 * imports into them, check-index verifies every replica; the build goes on
 * through a leader transfer and a split, a store killed and restarted, and
 * etcd stopped for a while; a failed build resumes; a duplicate rolls back;
 * status and cancel work on the cluster's catalog in etcd.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfill/catalog_etcd.h"
#include "bfill/cluster.h"
#include "bfill/etcd.h"
#include "bfill/codec.h"
#include "tests/support/etcd.h"
#include "tests/support/stores.h"
#include "tests/support/support.h"
#include "tests/support/cluster_world.h"
#include "util/util.h"

#define ROWS 100000L

static pid_t bg;

static void down(void)
{
	t_kill_reap(&bg);
	t_world_stop();
}

TestSuite(remote_job, .init = t_need_bfill, .fini = down, .timeout = 240);

Test(remote_job, gen_add_index_and_every_replica_exact)
{
	t_world w;
	t_world_start(&w, "remote", 6, ROWS);
	t_run r = t_bfillf("add-index %s --table sbtest1 --name c1 --columns c --name upad"
			   " --columns pad --unique --import-every 4M --json", w.where);
	cr_assert_eq(r.status, 0, "add-index on the cluster: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	cr_assert_eq((long)t_json_num(j, "rows_scanned"), ROWS);
	cr_assert_geq((long)t_json_num(j, "imports"), 2, "%s", r.out);
	cr_assert_not_null(strstr(t_json_str(j, "lock_key"), "/bfill/lock/"), "%s", r.out);
	cJSON_Delete(j);
	t_run_free(&r);
	t_world_expect_exact(&w, "c1", ROWS);
	t_world_expect_exact(&w, "upad", ROWS);

	/* The job record lives in the cluster's etcd. */
	cJSON *s = t_world_job(&w, 1);
	cr_assert_str_eq(t_json_str(s, "state"), "done");
	cJSON_Delete(s);
	r = t_bfillf("dump %s --table sbtest1 --limit 3", w.where);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(t_count_lines(r.out), 4, "a header and three rows: %s", r.out);
	t_run_free(&r);
	r = t_bfillf("drop-index %s --table sbtest1 --name c1", w.where);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	r = t_bfillf("check-index %s --table sbtest1 --name c1", w.where);
	t_expect_cli_error(&r, 1, "bfill check-index: ", "a dropped index", "does not exist", NULL);

	/* Without --import-every a cluster job imports every quarter of --mem. */
	r = t_bfillf("add-index %s --table sbtest1 --name c2 --columns c --mem 128M --json", w.where);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	bf_etcd *client = t_etcd_client(w.e, 0);
	bf_catalog *cat = NULL;
	bf_job job;
	bf_err err;
	cr_assert_eq(bf_catalog_etcd_create(client, bf_cluster_root(t_stores_cluster(w.s)), &cat, &err),
		     0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_job(cat, 2, &job, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(job.cfg.import_every, 32ULL << 20);
	bf_catalog_destroy(cat);
	bf_etcd_destroy(client);
}

Test(remote_job, a_duplicate_rolls_back_and_a_failed_build_resumes)
{
	t_world w;
	t_world_start(&w, "remote", 4, ROWS);
	/* k repeats: a unique index on it can't be built. */
	t_run r = t_bfillf("add-index %s --table sbtest1 --name uk --columns k --unique", w.where);
	t_expect_cli_error(&r, 1, "bfill add-index: ", "a duplicate", "Duplicate entry", NULL);
	cJSON *s = t_world_job(&w, 1);
	cr_assert_str_eq(t_json_str(s, "state"), "failed");
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "resumable")));
	cJSON_Delete(s);

	/* The lock is lost at every check: the build fails, resumable. */
	r = t_bfill_faultf("import.fence", "add-index %s --table sbtest1 --name c1 --columns c"
			   " --lock-timeout 2", w.where);
	cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
	cr_assert_not_null(strstr(r.err, "--resume --job-id 2"), "%s", r.err);
	t_run_free(&r);
	r = t_bfillf("add-index %s --resume --job-id 2 --json", w.where);
	cr_assert_eq(r.status, 0, "resume on the cluster: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	t_world_expect_exact(&w, "c1", ROWS);
}

/* Starts add-index in the background, imports stalling a little so that
 * the build is still running when the test acts. */
static void build_in_background(t_world *w, const char *fault, const char *extra)
{
	char *log = t_path_in(t_scratch_dir, "build.log");
	bg = t_spawn_bfill_faultf(fault, log, "add-index %s --table sbtest1 --name c1 --columns c"
				  " --import-every 2M --lock-timeout 60 --json %s", w->where, extra);
	free(log);
}

static void wait_build(void)
{
	int st;
	cr_assert_eq(waitpid(bg, &st, 0), bg);
	bg = 0;
	char *log = t_path_in(t_scratch_dir, "build.log");
	char *text = t_read_file(log);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the build failed: %s", text);
	free(text);
	free(log);
}

Test(remote_job, leader_transfer_and_split_during_the_build)
{
	t_world w;
	t_world_start(&w, "remote", 4, ROWS);
	build_in_background(&w, "scan.slow~2,import.stall~300", "");
	t_world_wait_import(&w, 1);
	/* The region of the table's indexes moves its leader, then splits:
	 * the build's cache is stale for both. */
	uint8_t k[BF_INDEX_PREFIX_LEN + 1];
	bf_codec_index_prefix(k, 100, 1);
	k[BF_INDEX_PREFIX_LEN] = 0x80;
	bf_region r = t_stores_locate(w.s, k, BF_INDEX_PREFIX_LEN);
	uint64_t other = r.leader_store % 3 + 1;
	bf_err err = { 0 };
	cr_assert_eq(bf_cluster_transfer_leader(t_stores_cluster(w.s), r.id, other, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(bf_cluster_split(t_stores_cluster(w.s), r.id, k, sizeof(k), &err), 0, "%s",
		     bf_err_text(&err));
	wait_build();
	t_world_expect_exact(&w, "c1", ROWS);
}

Test(remote_job, a_store_killed_and_restarted_mid_build)
{
	t_world w;
	t_world_start(&w, "remote", 4, ROWS);
	build_in_background(&w, "scan.slow~2,import.stall~300", "");
	t_world_wait_import(&w, 1);
	t_stores_kill(w.s, 2);
	bf_sleep_ms(2000);
	t_stores_restart(w.s, 2, NULL);
	wait_build();
	t_world_expect_exact(&w, "c1", ROWS);
}

Test(remote_job, etcd_stopped_mid_build)
{
	t_world w;
	t_world_start(&w, "remote", 4, ROWS);
	build_in_background(&w, "scan.slow~2,import.stall~300", "");
	t_world_wait_import(&w, 1);
	/* The stores and the build keep their region caches; only the lock
	 * waits. */
	t_etcd_kill(w.e, 0);
	bf_sleep_ms(10000);
	t_etcd_restart(w.e, 0);
	wait_build();
	t_world_expect_exact(&w, "c1", ROWS);
}

Test(remote_job, cancel_rolls_back_on_every_replica)
{
	t_world w;
	t_world_start(&w, "remote", 4, ROWS);
	t_run r = t_bfill_faultf("import.fence@3", "add-index %s --table sbtest1 --name c1"
				 " --columns c --import-every 2M --lock-timeout 2", w.where);
	cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
	t_run_free(&r);
	r = t_bfillf("cancel %s --job 1", w.where);
	cr_assert_eq(r.status, 0, "cancel: %s", r.err);
	t_run_free(&r);
	/* No store holds an index key of the table any more. */
	for (int id = 1; id <= 3; id++)
		cr_assert_eq(t_world_index_keys(&w, id, 1), 0, "store %d keeps index entries", id);
	cJSON *s = t_world_job(&w, 1);
	cr_assert_str_eq(t_json_str(s, "state"), "cancelled");
	cJSON_Delete(s);
}

Test(remote_job, sigterm_with_a_store_down_pauses_at_once)
{
	t_world w;
	int st;
	t_world_start(&w, "remote", 4, ROWS);
	build_in_background(&w, "scan.slow~2,import.stall~300", "");
	t_world_wait_import(&w, 1);
	/* The next imports retry store 2 for up to five minutes; a stop must
	 * not wait for that. */
	t_stores_kill(w.s, 2);
	bf_sleep_ms(1500);
	int64_t t0 = bf_now_ms();
	cr_assert_eq(kill(bg, SIGTERM), 0);
	cr_assert_eq(waitpid(bg, &st, 0), bg);
	bg = 0;
	int64_t took = bf_now_ms() - t0;
	char *log = t_path_in(t_scratch_dir, "build.log");
	char *text = t_read_file(log);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit: %s", text);
	cr_assert_lt(took, 15000, "SIGTERM took %lld ms: %s", (long long)took, text);
	free(text);
	free(log);
	cJSON *o = t_world_job(&w, 1);
	cr_assert_str_eq(t_json_str(o, "state"), "paused");
	cJSON_Delete(o);

	/* With the store back, the resume finishes it. */
	t_stores_restart(w.s, 2, NULL);
	t_run r = t_bfillf("add-index %s --resume --job-id 1 --json", w.where);
	cr_assert_eq(r.status, 0, "resume: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	t_world_expect_exact(&w, "c1", ROWS);
}

Test(remote_job, status_on_another_machine_sees_a_running_job_alive)
{
	t_world w;
	t_world_start(&w, "remote", 4, ROWS);
	build_in_background(&w, "scan.slow~20", "");
	/* Another machine: no live lock of this job in its temporary directory. */
	char *other = t_path_in(t_scratch_dir, "other-machine");
	const char *was = getenv("TMPDIR");
	char *mine = was ? strdup(was) : NULL;
	cr_assert_eq(mkdir(other, 0700), 0);
	setenv("TMPDIR", other, 1);
	int64_t deadline = bf_now_ms() + 30000;
	bool alive = false;
	while (!alive && bf_now_ms() < deadline) {
		/* Until the build has written its record, there is no job 1. */
		t_run r = t_bfillf("status %s --job 1 --json", w.where);
		if (r.status == 0) {
			cJSON *o = t_json_parse(r.out, "status --json");
			alive = !strcmp(t_json_str(o, "state"), "running") &&
				cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "alive"));
			cJSON_Delete(o);
		}
		t_run_free(&r);
		if (!alive)
			bf_sleep_ms(200);
	}
	cr_assert(alive, "a running job is alive from another machine");

	/* Killed: not alive once its presence's lease ends (10 s). */
	kill(bg, SIGKILL);
	waitpid(bg, NULL, 0);
	bg = 0;
	deadline = bf_now_ms() + 20000;
	while (alive && bf_now_ms() < deadline) {
		cJSON *o = t_world_job(&w, 1);
		alive = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "alive"));
		cr_assert_str_eq(t_json_str(o, "state"), "running", "the record still says so");
		cJSON_Delete(o);
		if (alive)
			bf_sleep_ms(500);
	}
	cr_assert_not(alive, "a killed job is not alive 20 s later");
	if (mine)
		setenv("TMPDIR", mine, 1);
	else
		unsetenv("TMPDIR");
	free(mine);
	free(other);
}
