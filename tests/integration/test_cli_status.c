/*
 * `bfill status` as a user runs it: it answers while a job runs in another
 * process (always, even while the job deletes files under it), shows a
 * real rate and ETA or says they are unknown, says whether a failed job
 * can be resumed, judges a job alive by the lock its process holds rather
 * than by a pid, shows every job a damaged record would have hidden, and
 * fails when its output can't be written.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfill/catalog.h"
#include "bfill/job_live.h"
#include "bfill/store.h"
#include "tests/support/support.h"
#include "tests/support/table.h"
#include "util/util.h"

static pid_t bg_pid;

static void teardown(void)
{
	t_kill_reap(&bg_pid);
	t_scratch_remove();
}

TestSuite(cli_status, .init = t_need_bfill, .fini = teardown, .timeout = 180);

/* A store holding one real, finished job (id 1), whose record the tests
 * then rewrite: a record the decoder accepts, as a job writes it. */
static char *store_with_job(bf_job *job)
{
	char *store = t_scratch_store("clistatus", 100, 4);
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name c_idx --columns c", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	bf_store *st = t_table_open_store(store);
	bf_err err = { 0 };
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 1, job, &err), 0, "%s", bf_err_text(&err));
	bf_store_close(st);
	return store;
}

static void put_job(const char *store, const bf_job *job)
{
	bf_store *st = t_table_open_store(store);
	bf_err err = { 0 };
	cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), job, &err), 0, "%s", bf_err_text(&err));
	bf_store_close(st);
}

/* `status --job id --json` (asserting exit 0); the caller frees it. */
static cJSON *status_json(const char *store, int64_t id)
{
	return t_bfill_jsonf("status --store '%s' --job %" PRId64 " --json", store, id);
}

/* store_with_job, with job 1 then recorded running in this process, whose
 * live lock *fd holds. */
static char *store_with_running_job(bf_job *job, int *fd)
{
	char *store = store_with_job(job);
	bf_err err = { 0 };

	job->state = BF_JOB_RUNNING;
	job->pid = getpid();
	job->end_ms = 0;
	put_job(store, job);
	cr_assert_eq(bf_job_live_hold(store, 1, fd, &err), 0, "%s", bf_err_text(&err));
	return store;
}

/* `status` as text (asserting exit 0); malloc'd. */
static char *status_text(const char *store)
{
	t_run r = t_bfillf("status --store '%s'", store);
	cr_assert_eq(r.status, 0, "status: exit %d: %s", r.status, r.err);
	char *out = r.out;
	r.out = NULL;
	t_run_free(&r);
	return out;
}

/* ---- a job that runs: status never fails, rate and ETA are real ---- */

/* Checks one `status --json` answer taken while a job runs; counts the
 * answers that showed the job scanning with a rate and an ETA. */
static void check_running_answer(const char *out, int *scanning)
{
	cJSON *o = t_json_parse(out, "status --json while a job runs");
	const cJSON *jobs = t_json_field(o, "jobs"), *j;
	cJSON_ArrayForEach(j, jobs) {
		const cJSON *rate = t_json_field(j, "rate"), *eta = t_json_field(j, "eta_s");
		cr_assert(cJSON_IsNull(rate) || (cJSON_IsNumber(rate) && rate->valuedouble > 0),
			  "a rate is real or null, never a made-up 0: %s", out);
		cr_assert(cJSON_IsNull(eta) || cJSON_IsNumber(eta), "%s", out);
		if (strcmp(t_json_str(j, "state"), "running") || strcmp(t_json_str(j, "phase"), "scan") ||
		    !cJSON_IsTrue(t_json_field(j, "alive")))
			continue;
		double done = t_json_num(j, "rows_done"), total = t_json_num(j, "rows_total");
		if (done > 0 && done < total) {
			cr_assert(cJSON_IsNumber(rate), "a job that scanned %.0f rows has a rate: %s", done, out);
			cr_assert(cJSON_IsNumber(eta), "a job with rows left and a rate has an ETA: %s", out);
			(*scanning)++;
		}
	}
	cJSON_Delete(o);
}

#define RACE_ROWS 300000
#define RACE_CALLS 500
/* A bound on the builds, high enough that a fast build still leaves room
 * for RACE_CALLS answers. */
#define RACE_ROUNDS 200

/*
 * The job deletes files (ingests, compactions, two indexes imported every
 * 8M) while status opens the store read-only, round after round (each
 * round builds two indexes and drops them), until status has answered a
 * few hundred times: every answer is exit 0 with parseable JSON or text.
 */
Test(cli_status, never_fails_while_a_job_runs)
{
	char *store = t_scratch_store("clistatus", RACE_ROWS, 4);
	char *log = t_path_in(t_scratch_dir, "job.log");
	int calls = 0, rounds = 0, scanning = 0, st = 0;

	while (calls < RACE_CALLS && rounds < RACE_ROUNDS) {
		rounds++;
		bg_pid = t_spawn_bfillf(log, "add-index --store '%s' --table sbtest1 --name c_idx --columns c"
					" --name k_idx --columns k --import-every 8M --workers 2 --quiet", store);
		while (waitpid(bg_pid, &st, WNOHANG) == 0) {
			bool json = calls % 4 != 3;
			t_run r = t_bfillf("status --store '%s'%s", store, json ? " --json" : "");
			calls++;
			cr_assert_eq(r.status, 0, "status call %d (round %d) while a job runs: exit %d: %s",
				     calls, rounds, r.status, r.err);
			cr_assert_str_eq(r.err, "", "call %d", calls);
			if (json)
				check_running_answer(r.out, &scanning);
			else
				cr_assert(strstr(r.out, "job ") || strstr(r.out, "no jobs"), "%s", r.out);
			t_run_free(&r);
		}
		bg_pid = 0;
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "add-index round %d failed: see %s",
			  rounds, log);
		t_run r = t_bfillf("drop-index --store '%s' --table sbtest1 --name c_idx", store);
		cr_assert_eq(r.status, 0, "%s", r.err);
		t_run_free(&r);
		r = t_bfillf("drop-index --store '%s' --table sbtest1 --name k_idx", store);
		cr_assert_eq(r.status, 0, "%s", r.err);
		t_run_free(&r);
	}
	cr_log_info("status answered %d times over %d builds; %d answers showed a scan with a rate",
		    calls, rounds, scanning);
	cr_assert_geq(calls, RACE_CALLS);
	free(log);
	free(store);
}

/* The retry, made certain with the "status.read" seam: a few failed reads
 * are waited out; a read that keeps failing is reported after a bounded
 * time, as one line. */
Test(cli_status, transient_read_errors_are_retried_then_reported)
{
	bf_job job;
	char *store = store_with_job(&job);

	t_run r = t_bfill_faultf("status.read@1-3", "status --store '%s' --json", store);
	cr_assert_eq(r.status, 0, "three failed reads, then one that works: exit %d: %s", r.status, r.err);
	cr_assert_str_eq(r.err, "");
	cJSON *o = t_json_parse(r.out, "status after retries");
	cr_assert_eq(cJSON_GetArraySize(t_json_field(o, "jobs")), 1);
	cJSON_Delete(o);
	t_run_free(&r);

	int64_t t0 = bf_now_ms();
	r = t_bfill_faultf("status.read", "status --store '%s' --json", store);
	int64_t took = bf_now_ms() - t0;
	t_expect_cli_error(&r, 1, "bfill status: ", "a read that keeps failing", "Can't access", NULL);
	cr_assert(took >= 1500 && took < 10000, "gave up after %lld ms, want about 2 s", (long long)took);
	free(store);
}

/* Rate and ETA from the record: the job's own rate, else rows over time
 * since the start; unknown ("-", null) rather than 0. */
Test(cli_status, rate_and_eta_are_real_or_unknown)
{
	bf_job job;
	int fd = -1;
	char *store = store_with_running_job(&job, &fd);

	snprintf(job.phase, sizeof(job.phase), "scan");
	job.rows_total = 1000;

	/* A job in its first seconds: no rate of its own yet. */
	job.rows_done = 500;
	job.rate = 0;
	job.update_ms = job.start_ms + 10000;
	put_job(store, &job);
	cJSON *o = status_json(store, 1);
	cr_assert(cJSON_IsTrue(t_json_field(o, "alive")));
	cr_assert_eq(t_json_num(o, "rate"), 50, "500 rows in 10 s");
	cr_assert_eq(t_json_num(o, "eta_s"), 10, "500 rows left at 50 rows/s");
	cJSON_Delete(o);
	char *text = status_text(store);
	cr_assert_not_null(strstr(text, "50 rows/s  ETA 10s"), "%s", text);
	free(text);

	/* The job's own recent rate wins. */
	job.rate = 250;
	put_job(store, &job);
	o = status_json(store, 1);
	cr_assert_eq(t_json_num(o, "rate"), 250);
	cr_assert_eq(t_json_num(o, "eta_s"), 2);
	cJSON_Delete(o);

	/* Nothing scanned yet: both unknown. */
	job.rate = 0;
	job.rows_done = 0;
	put_job(store, &job);
	o = status_json(store, 1);
	cr_assert(cJSON_IsNull(t_json_field(o, "rate")), "no rows, no rate");
	cr_assert(cJSON_IsNull(t_json_field(o, "eta_s")), "no rate, no ETA");
	cJSON_Delete(o);
	text = status_text(store);
	cr_assert_not_null(strstr(text, "- rows/s  ETA -"), "%s", text);
	free(text);

	/* Scan done, import running: how long the import takes is unknown. */
	job.rows_done = 1000;
	job.rate = 300;
	snprintf(job.phase, sizeof(job.phase), "import");
	put_job(store, &job);
	o = status_json(store, 1);
	cr_assert_eq(t_json_num(o, "rate"), 300);
	cr_assert(cJSON_IsNull(t_json_field(o, "eta_s")));
	cJSON_Delete(o);

	/* Nobody runs it: no ETA. */
	bf_job_live_release(fd);
	job.rows_done = 500;
	put_job(store, &job);
	o = status_json(store, 1);
	cr_assert(cJSON_IsFalse(t_json_field(o, "alive")));
	cr_assert(cJSON_IsNull(t_json_field(o, "eta_s")));
	cJSON_Delete(o);
	free(store);
}

/* ---- alive: the job's lock, not its pid ---- */

Test(cli_status, alive_means_the_job_lock_is_held)
{
	bf_job job;
	int fd = -1;
	/* Recorded running, its pid a live process (this test's own). */
	char *store = store_with_running_job(&job, &fd);

	cJSON *o = status_json(store, 1);
	cr_assert(cJSON_IsTrue(t_json_field(o, "alive")), "the job's lock is held");
	cr_assert(cJSON_IsFalse(t_json_field(o, "resumable")), "a live job is not to be resumed");
	cJSON_Delete(o);
	char *text = status_text(store);
	cr_assert_null(strstr(text, "gone"), "%s", text);
	free(text);

	/* The same pid is alive, but the job's lock is free: the process
	 * behind that pid is not running the job. */
	bf_job_live_release(fd);
	o = status_json(store, 1);
	cr_assert(cJSON_IsFalse(t_json_field(o, "alive")), "a live pid without the lock is not alive");
	cr_assert(cJSON_IsTrue(t_json_field(o, "resumable")));
	cJSON_Delete(o);
	text = status_text(store);
	cr_assert_not_null(strstr(text, "state running (its process is gone; resumable: "
					"bfill add-index --resume --job-id 1)"), "%s", text);
	free(text);

	/* A holder that dies (SIGKILL) frees the lock. */
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		int cfd = -1;
		if (bf_job_live_hold(store, 1, &cfd, NULL))
			_exit(1);
		pause();
		_exit(0);
	}
	bg_pid = child;
	bool seen = false;
	for (int i = 0; i < 200 && !seen; i++) {
		seen = bf_job_live(store, 1);
		if (!seen)
			bf_sleep_ms(10);
	}
	cr_assert(seen, "the child took the job's lock");
	o = status_json(store, 1);
	cr_assert(cJSON_IsTrue(t_json_field(o, "alive")), "a child process holds the lock");
	cJSON_Delete(o);
	t_kill_reap(&bg_pid);
	o = status_json(store, 1);
	cr_assert(cJSON_IsFalse(t_json_field(o, "alive")), "the killed holder's lock is gone");
	cJSON_Delete(o);
	free(store);
}

/* ---- what a failed job left: resumable or rolled back; the new fields ---- */

Test(cli_status, failed_job_says_resumable_or_rolled_back)
{
	bf_job job;
	char *store = store_with_job(&job);

	job.state = BF_JOB_FAILED;
	job.rolled_back = false;
	job.rows_scanned = 1234;
	snprintf(job.lock_key, sizeof(job.lock_key), "/bfill/lock/%s/1",
		 "0a1b2c3d-0000-4000-8000-00000000abcd");
	snprintf(job.last_error, sizeof(job.last_error), "lock \"x\" not had in time\\");
	put_job(store, &job);

	char *text = status_text(store);
	cr_assert_not_null(strstr(text, "state failed (resumable: bfill add-index --resume --job-id 1)"),
			   "%s", text);
	cr_assert_not_null(strstr(text, "  lock /bfill/lock/0a1b2c3d-0000-4000-8000-00000000abcd/1\n"),
			   "%s", text);
	cr_assert_not_null(strstr(text, "scanned 1234"), "%s", text);
	free(text);
	cJSON *o = status_json(store, 1);
	cr_assert(cJSON_IsTrue(t_json_field(o, "resumable")));
	cr_assert_str_eq(t_json_str(o, "outcome"), "resumable");
	cr_assert_str_eq(t_json_str(o, "lock_key"), job.lock_key);
	cr_assert_eq(t_json_num(o, "rows_scanned"), 1234);
	cr_assert(cJSON_IsFalse(t_json_field(o, "importing")));
	cr_assert_str_eq(t_json_str(o, "last_error"), job.last_error, "escaped and read back whole");
	cJSON_Delete(o);

	job.rolled_back = true;
	put_job(store, &job);
	text = status_text(store);
	cr_assert_not_null(strstr(text, "state failed (rolled back)"), "%s", text);
	cr_assert_null(strstr(text, "resumable"), "%s", text);
	free(text);
	o = status_json(store, 1);
	cr_assert(cJSON_IsFalse(t_json_field(o, "resumable")));
	cr_assert_str_eq(t_json_str(o, "outcome"), "rolled_back");
	cJSON_Delete(o);

	/* A done job has no outcome to tell; an import in progress shows. */
	job.state = BF_JOB_DONE;
	job.importing = true;
	put_job(store, &job);
	o = status_json(store, 1);
	cr_assert(cJSON_IsNull(t_json_field(o, "outcome")));
	cr_assert(cJSON_IsFalse(t_json_field(o, "resumable")));
	cr_assert(cJSON_IsTrue(t_json_field(o, "importing")));
	cJSON_Delete(o);
	text = status_text(store);
	cr_assert_not_null(strstr(text, "(importing)"), "%s", text);
	free(text);
	free(store);
}

/* ---- a damaged record hides nothing else ---- */

Test(cli_status, damaged_record_shows_the_others)
{
	char *store = t_scratch_store("clistatus", 100, 4);
	char key[64];
	bf_err err = { 0 };

	for (int i = 0; i < 3; i++) {
		t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name i%d --columns k", store, i);
		cr_assert_eq(r.status, 0, "%s", r.err);
		t_run_free(&r);
	}
	bf_store *st = t_table_open_store(store);
	snprintf(key, sizeof(key), "%sjob/%020d", BF_CATALOG_PREFIX, 2);
	cr_assert_eq(bf_store_put(st, key, strlen(key), "{\"id\":", 6, &err), 0, "%s", bf_err_text(&err));
	bf_store_close(st);

	t_run r = t_bfillf("status --store '%s'", store);
	cr_assert_eq(r.status, 1, "a damaged record is an error: %s", r.err);
	cr_assert_not_null(strstr(r.out, "job 1 "), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "job 3 "), "%s", r.out);
	cr_assert_null(strstr(r.out, "job 2 "), "%s", r.out);
	cr_assert_eq(t_count_lines(r.err), 1, "one line: %s", r.err);
	cr_assert_not_null(strstr(r.err, key), "the line names the record: %s", r.err);
	t_run_free(&r);

	r = t_bfillf("status --store '%s' --json", store);
	cr_assert_eq(r.status, 1);
	cr_assert_eq(t_count_lines(r.err), 1, "one line: %s", r.err);
	cJSON *o = t_json_parse(r.out, "status --json with a damaged record");
	const cJSON *jobs = t_json_field(o, "jobs");
	cr_assert_eq(cJSON_GetArraySize(jobs), 2);
	cr_assert_eq(t_json_num(cJSON_GetArrayItem(jobs, 0), "id"), 1);
	cr_assert_eq(t_json_num(cJSON_GetArrayItem(jobs, 1), "id"), 3);
	cJSON_Delete(o);
	t_run_free(&r);

	/* Asking for another job is not troubled by it; asking for it is. */
	o = status_json(store, 3);
	cr_assert_str_eq(t_json_str(o, "state"), "done");
	cJSON_Delete(o);
	r = t_bfillf("status --store '%s' --job 2", store);
	t_expect_cli_error(&r, 1, "bfill status: ", "status of the damaged job", key, "damaged");
	free(store);
}

/* ---- output that can't be written ---- */

Test(cli_status, unwritable_output_fails)
{
	static const struct { const char *cmd, *args; } cases[] = {
		{ "status", "" },
		{ "status", "--json" },
		{ "dump", "--table sbtest1" },
		{ "dump", "--table sbtest1 --limit 1" },
	};
	bf_job job;
	char *store = store_with_job(&job);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char prefix[32], what[64];
		snprintf(prefix, sizeof(prefix), "bfill %s: ", cases[i].cmd);
		snprintf(what, sizeof(what), "%s %s >/dev/full", cases[i].cmd, cases[i].args);
		t_run r = t_bfillf("%s --store '%s' %s >/dev/full", cases[i].cmd, store, cases[i].args);
		t_expect_cli_error(&r, 1, prefix, what, "could not write", NULL);
	}
	free(store);
}
