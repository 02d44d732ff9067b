/*
 * Shared jobs (DESIGN §7a) through the CLI: `add-index --detach` submits a
 * job's subtasks to a cluster's etcd and real `bfill worker` processes
 * share it over three real bfill-store nodes. Every replica is checked
 * exact; a worker killed loses its subtask to another; cancel and a
 * duplicate stop every worker's part and leave no entry; add-index works
 * on its own job beside the workers.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/support.h"
#include "tests/support/cluster_world.h"
#include "util/util.h"

#define ROWS 100000L
#define MAX_WORKERS 3

static pid_t workers[MAX_WORKERS];

static void down(void)
{
	for (int i = 0; i < MAX_WORKERS; i++)
		t_kill_reap(&workers[i]);
	t_world_stop();
}

TestSuite(worker, .init = t_need_bfill, .fini = down, .timeout = 240);

static char *log_of(int i)
{
	char name[32];
	snprintf(name, sizeof(name), "w%d.log", i + 1);
	return t_path_in(t_scratch_dir, name);
}

/* Worker i ("w<i+1>", its own sort dir) with fault armed. */
static void start_worker(const t_world *w, int i, const char *fault, const char *extra)
{
	char *log = log_of(i);
	workers[i] = t_spawn_bfill_faultf(fault, log, "worker %s --name w%d --sort-dir sort-w%d"
					  " --mem 128M --threads 2 %s", w->where, i + 1, i + 1,
					  extra ? extra : "");
	free(log);
}

/* SIGTERM: the worker gives its subtask back and exits 0. */
static void stop_worker(int i)
{
	int st;
	cr_assert_eq(kill(workers[i], SIGTERM), 0);
	cr_assert_eq(waitpid(workers[i], &st, 0), workers[i]);
	workers[i] = 0;
	char *log = log_of(i);
	char *text = t_read_file(log);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d: %s", i + 1, text);
	free(text);
	free(log);
}

static char *worker_log(int i)
{
	char *log = log_of(i);
	char *text = t_read_file(log);
	free(log);
	return text;
}

/* Submits `--name name --columns cols [extra]` detached; returns the job id. */
static int64_t submit(const t_world *w, const char *name, const char *cols, const char *extra)
{
	t_run r = t_bfillf("add-index %s --table sbtest1 --name %s --columns %s --detach --json %s",
			   w->where, name, cols, extra ? extra : "");
	cr_assert_eq(r.status, 0, "submit: exit %d: %s", r.status, r.err);
	cJSON *o = t_json_parse(r.out, "add-index --detach --json");
	int64_t id = (int64_t)t_json_num(o, "job_id");
	cr_assert_geq(t_json_num(o, "subtasks"), 3, "several subtasks for the workers: %s", r.out);
	cJSON_Delete(o);
	t_run_free(&r);
	return id;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

Test(worker, three_workers_share_a_job_and_every_replica_is_exact)
{
	t_world w;
	t_world_start(&w, "worker", 4, ROWS);
	int64_t id = submit(&w, "c1", "c", NULL);
	cJSON *o = t_world_job(&w, id);
	cr_assert_str_eq(t_json_str(o, "state"), "queueing", "no worker yet");
	cJSON_Delete(o);
	for (int i = 0; i < 3; i++)
		start_worker(&w, i, "scan.slow~100", NULL);
	int seq = t_world_wait_busy(&w, id, NULL);
	o = t_world_job(&w, id);
	cr_assert_str_eq(t_json_str(o, "state"), "running", "subtask %d runs", seq);
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "alive")));
	cJSON_Delete(o);
	t_world_wait_state(&w, id, "done");
	t_world_expect_exact(&w, "c1", ROWS);

	int busy = 0;
	for (int i = 0; i < 3; i++) {
		stop_worker(i);
		char *text = worker_log(i);
		busy += count(text, " done (") > 0;
		free(text);
	}
	cr_assert_geq(busy, 2, "the subtasks went to more than one worker");
	o = t_world_job(&w, id);
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "subtasks"))
		cr_assert_str_eq(t_json_str(it, "state"), "done");
	cr_assert_eq((long)t_json_num(o, "rows_done"), ROWS);
	cJSON_Delete(o);
}

Test(worker, a_killed_worker_s_subtask_is_taken_over)
{
	t_world w;
	t_world_start(&w, "worker", 4, ROWS);
	int64_t id = submit(&w, "c1", "c", "--import-every 1M");
	/* Slow enough that the subtask seen under way is still under way
	 * when the worker is killed: the pipeline does one of these 8,333-row
	 * subtasks in well under a second when not held back. */
	start_worker(&w, 0, "scan.slow~100", "--lease-ttl 3");
	int seq = t_world_wait_busy(&w, id, "w1");
	cr_assert_geq(seq, 0);
	cr_assert_eq(kill(workers[0], SIGKILL), 0);
	waitpid(workers[0], NULL, 0);
	workers[0] = 0;
	start_worker(&w, 1, NULL, "--lease-ttl 3");
	t_world_wait_state(&w, id, "done");
	t_world_expect_exact(&w, "c1", ROWS);
	stop_worker(1);
	char *text = worker_log(1), needle[64];
	snprintf(needle, sizeof(needle), "claimed job %" PRId64 " subtask %d ", id, seq);
	cr_assert(strstr(text, needle), "w2 took over subtask %d: %s", seq, text);
	free(text);
}

Test(worker, cancel_stops_every_worker_and_leaves_no_entry)
{
	t_world w;
	t_world_start(&w, "worker", 4, ROWS);
	int64_t id = submit(&w, "c1", "c", "--import-every 1M");
	for (int i = 0; i < 2; i++)
		start_worker(&w, i, "scan.slow~100", NULL);
	t_world_wait_import(&w, id);
	t_run r = t_bfillf("cancel %s --job %" PRId64, w.where, id);
	cr_assert_eq(r.status, 0, "cancel: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	cJSON *o = t_world_job(&w, id);
	cr_assert_str_eq(t_json_str(o, "state"), "cancelled");
	cJSON_Delete(o);
	for (int id_ = 1; id_ <= 3; id_++)
		cr_assert_eq(t_world_index_keys(&w, id_, 1), 0, "store %d keeps index entries", id_);
	/* The workers left the job, not the cluster. */
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(kill(workers[i], 0), 0, "worker %d is still up", i + 1);
		stop_worker(i);
	}
	int left = 0;
	for (int i = 0; i < 2; i++) {
		char *text = worker_log(i);
		left += strstr(text, "a cancel is under way") != NULL;
		free(text);
	}
	cr_assert_geq(left, 1, "a worker said why it left");
}

Test(worker, a_duplicate_seen_by_one_worker_rolls_the_job_back)
{
	t_world w;
	t_world_start(&w, "worker", 4, ROWS);
	/* k repeats: a unique index on it can't be built. */
	int64_t id = submit(&w, "uk", "k", "--unique");
	for (int i = 0; i < 2; i++)
		start_worker(&w, i, NULL, NULL);
	t_world_wait_state(&w, id, "failed");
	cJSON *o = t_world_job(&w, id);
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "resumable")));
	cr_assert(strstr(t_json_str(o, "last_error"), "Duplicate entry"), "%s",
		  t_json_str(o, "last_error"));
	cJSON_Delete(o);
	for (int s = 1; s <= 3; s++)
		cr_assert_eq(t_world_index_keys(&w, s, 1), 0, "store %d keeps index entries", s);
	for (int i = 0; i < 2; i++)
		stop_worker(i);
}

Test(worker, add_index_works_on_its_job_beside_a_worker)
{
	t_world w;
	t_world_start(&w, "worker", 4, ROWS);
	start_worker(&w, 0, "scan.slow~5", NULL);
	t_run r = t_bfill_faultf("scan.slow~5", "add-index %s --table sbtest1 --name c1 --columns c"
				 " --json", w.where);
	cr_assert_eq(r.status, 0, "add-index: exit %d: %s", r.status, r.err);
	cJSON *o = t_json_parse(r.out, "add-index --json");
	cr_assert_str_eq(t_json_str(o, "state"), "done");
	cr_assert_gt(t_json_num(o, "rows_scanned"), 0, "add-index did a share: %s", r.out);
	cJSON_Delete(o);
	t_run_free(&r);
	t_world_expect_exact(&w, "c1", ROWS);
	stop_worker(0);
}

Test(worker, bad_usage_is_one_line)
{
	t_run r = t_bfillf("worker --cluster c");
	t_expect_cli_error(&r, 2, "bfill worker: ", "no etcd", "--etcd", NULL);
	r = t_bfillf("worker --etcd 127.0.0.1:1 --cluster c --name a/b");
	t_expect_cli_error(&r, 2, "bfill worker: ", "a name with '/'", "--name", NULL);
	r = t_bfillf("worker --etcd 127.0.0.1:1 --cluster c --mem 1M");
	t_expect_cli_error(&r, 2, "bfill worker: ", "too little --mem", "--mem", NULL);
	r = t_bfillf("add-index --store x --table t --name i --columns c --detach");
	t_expect_cli_error(&r, 2, "bfill add-index: ", "--detach without a cluster", "--cluster", NULL);
}

static bool waits_for_stores(const cJSON *job, char *seen, size_t n)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(job, "subtasks")) {
		const char *why = t_json_str(it, "waiting");
		if (strstr(why, "waiting for the store nodes")) {
			snprintf(seen, n, "%s", why);
			return true;
		}
	}
	return false;
}

Test(worker, status_says_a_subtask_waits_for_a_store_node)
{
	t_world w;
	t_world_start(&w, "worker", 4, ROWS);
	int64_t id = submit(&w, "c1", "c", "--import-every 1M");
	start_worker(&w, 0, "scan.slow~100", NULL);
	t_world_wait_import(&w, id);
	t_stores_kill(w.s, 2);
	char seen[512] = "";
	char *last = NULL;
	int64_t deadline = bf_now_ms() + 60000;
	while (!seen[0] && bf_now_ms() < deadline) {
		cJSON *o = t_world_job(&w, id);
		waits_for_stores(o, seen, sizeof(seen));
		free(last);
		last = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (!seen[0])
			bf_sleep_ms(200);
	}
	cr_assert(seen[0], "no subtask said it waits for the store nodes; the last status: %s", last);
	free(last);
	cr_log_info("status said: %s", seen);
	t_stores_restart(w.s, 2, NULL);
	t_world_wait_state(&w, id, "done");
	t_world_expect_exact(&w, "c1", ROWS);
	stop_worker(0);
}
