/*
 * Failure and recovery of add-index jobs: every fault seam makes the job
 * fail cleanly (one error, a truthful job record, nothing of the index
 * readable, the process alive) and keeps its progress, in-process and
 * through the CLI; `--resume` then continues from the flushed checkpoint
 * and finishes the index exactly. Jobs killed with SIGKILL at a checkpoint
 * and at arbitrary moments (imports included) resume to an exact index;
 * `bfill cancel` rolls a killed job back.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bfill/catalog.h"
#include "bfill/check.h"
#include "bfill/fault.h"
#include "bfill/job.h"
#include "bfill/store.h"
#include "tests/support/support.h"
#include "tests/support/table.h"

static pid_t bg_pid;

static void teardown(void)
{
	t_kill_reap(&bg_pid);
	t_scratch_remove();
}

TestSuite(faults, .fini = teardown, .timeout = 240);

static void new_scratch(void)
{
	bf_fault_reset();
	t_scratch_new("faults");
}

/* ---- in-process: each seam fails the job cleanly, resume finishes ---- */

#define SEAM_ROWS 100000

/*
 * Builds c_idx and a unique pad index over SEAM_ROWS rows with one writer,
 * the smallest sort budget and frequent imports, so that every seam is
 * on the path: runs are spilled mid-scan and imported while scanning.
 */
static void seam_fails_then_resumes(const char *seam, long nth)
{
	bf_add_index_result res;
	bf_err err = { 0 };
	bf_table t;
	bf_job rec;

	new_scratch();
	char *store_dir = t_path_in(t_scratch_dir, "store");
	char *sort_dir = t_path_in(t_scratch_dir, "sort"), *check_dir = t_path_in(t_scratch_dir, "check");
	bf_store *st = t_table_open_store(store_dir);
	t_table_gen_sbtest(st, "sbtest1", SEAM_ROWS, 21, &t);

	bf_add_index_opts o = {
		.table = "sbtest1", .workers = 1, .mem = 64ULL << 20, .sort_dir = sort_dir,
		.import_every = 1ULL << 20, .run_compression = -1, .target_compression = -1,
		.nspecs = 2,
		.specs = { { .name = "c_idx", .columns = "c" },
			   { .name = "upad", .columns = "pad", .unique = true } },
	};
	bf_fault_arm(seam, nth);
	int rc = bf_add_index(st, &o, &res, &err);
	bf_fault_reset();
	cr_assert_eq(rc, BF_EFAULT, "%s@%ld: bf_add_index returned %d (%s: %s), want the injected fault",
		     seam, nth, rc, bf_strerror(rc), bf_err_text(&err));
	cr_assert_not_null(strstr(err.msg, "injected"), "the error says what failed: %s", err.msg);
	cr_assert_null(strchr(err.msg, '\n'), "one line: %s", err.msg);
	cr_assert_eq(res.job.state, BF_JOB_FAILED, "%s: job is %s", seam, bf_job_state_name(res.job.state));

	/* The record tells the truth. */
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), res.job.id, &rec, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(rec.state, BF_JOB_FAILED, "record says %s", bf_job_state_name(rec.state));
	cr_assert_not_null(strstr(rec.last_error, "injected"), "last_error: '%s'", rec.last_error);
	cr_assert_eq(rec.pid, 0, "a failed job names no process");
	cr_assert_gt(rec.end_ms, 0);

	/* A retry can fix it: nothing is rolled back, and nothing of the
	 * indexes is readable; they wait in write-reorg. */
	cr_assert_not(rec.rolled_back, "%s: a retryable failure is not rolled back", seam);
	t_table_get(st, "sbtest1", &t);
	cr_assert_eq(t.nindexes, 2);
	for (int i = 0; i < t.nindexes; i++) {
		cr_assert_eq(t.indexes[i].state, BF_INDEX_WRITE_REORG, "%s after %s: %s", t.indexes[i].name,
			     seam, bf_index_state_name(t.indexes[i].state));
		cr_assert_eq(t.indexes[i].job_id, res.job.id);
	}
	bf_check_result cr;
	cr_assert_eq(bf_check_index(st, NULL, "sbtest1", "c_idx", check_dir, 32ULL << 20, &cr, &err),
		     BF_ESTATE, "%s: entries of an index being built are not readable", seam);
	cr_assert_not_null(strstr(err.msg, "being built by job"), "%s", err.msg);

	/* Resumed without the fault, the job scans only what its flushed
	 * checkpoint does not cover, and finishes exactly. */
	uint64_t kept = rec.cp.has_flushed ? rec.cp.flushed_rows
					   : rec.cp.has_imported ? rec.cp.imported_rows : 0;
	bf_add_index_opts ro = { .resume = true, .job_id = res.job.id, .run_compression = -1,
				 .target_compression = -1 };
	bf_err_clear(&err);
	rc = bf_add_index(st, &ro, &res, &err);
	cr_assert_eq(rc, 0, "resume after %s: %s", seam, bf_err_text(&err));
	cr_assert_eq(res.job.state, BF_JOB_DONE);
	cr_assert_eq(res.rows, SEAM_ROWS - kept, "%s@%ld: the resume scanned %" PRIu64 " rows, want %" PRIu64,
		     seam, nth, res.rows, (uint64_t)SEAM_ROWS - kept);
	cr_assert_eq(res.job.rows_scanned, res.rows);
	cr_assert_not(t_path_exists(sort_dir), "sort dir removed once the job is done");
	t_rows rows;
	t_rows_sbtest(&rows, &t, 21, SEAM_ROWS);
	t_table_verify_index(st, "sbtest1", "c_idx", &rows);
	t_table_verify_index(st, "sbtest1", "upad", &rows);
	t_table_expect_exact(st, "sbtest1", "c_idx", check_dir, SEAM_ROWS);
	t_table_expect_exact(st, "sbtest1", "upad", check_dir, SEAM_ROWS);
	t_rows_free(&rows);
	bf_store_close(st);
	free(store_dir);
	free(sort_dir);
	free(check_dir);
}

Test(faults, engine_write) { seam_fails_then_resumes("engine.write", 1); }
Test(faults, engine_write_later) { seam_fails_then_resumes("engine.write", 3); }
Test(faults, engine_ingest) { seam_fails_then_resumes("engine.ingest", 1); }
Test(faults, import_write) { seam_fails_then_resumes("import.write", 1); }
Test(faults, import_write_later) { seam_fails_then_resumes("import.write", 3); }
Test(faults, store_ingest) { seam_fails_then_resumes("store.ingest", 1); }
/* The first index of a round is in the store when the second one fails. */
Test(faults, store_ingest_mid_round) { seam_fails_then_resumes("store.ingest", 2); }
Test(faults, store_ingest_later) { seam_fails_then_resumes("store.ingest", 3); }
Test(faults, scan_read) { seam_fails_then_resumes("scan.read", 1); }
Test(faults, scan_read_mid_scan) { seam_fails_then_resumes("scan.read", 60000); }

/* ---- the CLI: status through `bfill status --json` ---- */

typedef struct job_view {
	char state[32], phase[32];
	char last_error[1024];
	bool alive;
	uint64_t rows_done, flushed_rows, imported_rows, imports;
} job_view;

/* `bfill status --job id --json`; false when it answers that there is no
 * such job (yet), with must_exist an assertion. */
static bool try_status(const char *store, int64_t id, bool must_exist, job_view *out)
{
	job_view v = { 0 };
	t_run r = t_bfillf("status --store '%s' --job %" PRId64 " --json", store, id);
	if (!must_exist && r.status == 1 && strstr(r.err, "does not exist")) {
		t_run_free(&r);
		return false;
	}
	cr_assert_eq(r.status, 0, "status: exit %d: %s", r.status, r.err);
	cJSON *o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "status output is JSON: %s", r.out);
	snprintf(v.state, sizeof(v.state), "%s", t_json_str(o, "state"));
	snprintf(v.phase, sizeof(v.phase), "%s", t_json_str(o, "phase"));
	snprintf(v.last_error, sizeof(v.last_error), "%s", t_json_str(o, "last_error"));
	v.alive = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "alive"));
	v.rows_done = (uint64_t)t_json_num(o, "rows_done");
	const cJSON *cp = cJSON_GetObjectItemCaseSensitive(o, "checkpoint");
	cr_assert(cJSON_IsObject(cp), "status JSON has a checkpoint");
	v.flushed_rows = (uint64_t)t_json_num(cp, "flushed_rows");
	v.imported_rows = (uint64_t)t_json_num(cp, "imported_rows");
	v.imports = (uint64_t)t_json_num(cp, "imports");
	cJSON_Delete(o);
	t_run_free(&r);
	*out = v;
	return true;
}

static job_view status_of(const char *store, int64_t id)
{
	job_view v;
	try_status(store, id, true, &v);
	return v;
}

/* Entries in the range of index `index` (0 if the index is gone) and its
 * catalog state, read with the library from a read-only open. */
static uint64_t entries_of(const char *store, const char *table, const char *index,
			   bf_index_state *state, bool *exists)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_table t;
	uint64_t n = 0;
	int rc = bf_store_open(store, BF_STORE_READONLY, &st, &err);
	cr_assert_eq(rc, 0, "open %s: %s", store, bf_err_text(&err));
	t_table_get(st, table, &t);
	int pos = bf_table_index(&t, index);
	*exists = pos >= 0;
	if (pos >= 0) {
		*state = t.indexes[pos].state;
		n = t_table_index_count(st, t.id, t.indexes[pos].id);
	}
	bf_store_close(st);
	return n;
}

/* A job failure on the CLI: exit 1, nothing on stdout, one line on stderr
 * with every needle. */
static void expect_one_line_failure(const t_run *r, const char *what, const char *n1, const char *n2)
{
	cr_assert_eq(r->status, 1, "%s: exit %d, want 1; stderr: %s", what, r->status, r->err);
	cr_assert_str_eq(r->out, "", "%s: stdout: %s", what, r->out);
	cr_assert_eq(t_count_lines(r->err), 1, "%s: want one line on stderr: [%s]", what, r->err);
	cr_assert(!strncmp(r->err, "bfill add-index: ", 17), "%s: %s", what, r->err);
	if (n1)
		cr_assert_not_null(strstr(r->err, n1), "%s: '%s' not in: %s", what, n1, r->err);
	if (n2)
		cr_assert_not_null(strstr(r->err, n2), "%s: '%s' not in: %s", what, n2, r->err);
}

Test(faults, cli_each_seam, .init = t_need_bfill)
{
	static const char *const seams[] = { "engine.write", "engine.ingest", "import.write",
					     "store.ingest", "scan.read" };
	new_scratch();
	char *store = t_path_in(t_scratch_dir, "store");
	t_bfill_gen(store, SEAM_ROWS, 5);

	for (int i = 0; i < 5; i++) {
		char index[32], resume_hint[64];
		int64_t id = i + 1;
		snprintf(index, sizeof(index), "f%d", i);
		t_run r = t_bfill_faultf(seams[i], "add-index --store '%s' --table sbtest1 --name %s"
					 " --columns c --workers 1 --mem 128M --import-every 1M"
					 " --job-id %" PRId64, store, index, id);
		snprintf(resume_hint, sizeof(resume_hint), "--resume --job-id %" PRId64, id);
		expect_one_line_failure(&r, seams[i], "injected", resume_hint);
		t_run_free(&r);

		job_view v = status_of(store, id);
		cr_assert_str_eq(v.state, "failed", "%s: status says %s", seams[i], v.state);
		cr_assert_not_null(strstr(v.last_error, "injected"), "%s: last_error '%s'", seams[i],
				   v.last_error);
		cr_assert_not(v.alive);
		bf_index_state state = BF_INDEX_NONE;
		bool exists = false;
		entries_of(store, "sbtest1", index, &state, &exists);
		cr_assert(exists && state == BF_INDEX_WRITE_REORG, "%s: index kept for a resume", seams[i]);

		r = t_bfillf("add-index --store '%s' --resume --job-id %" PRId64, store, id);
		cr_assert_eq(r.status, 0, "resume after %s: exit %d: %s", seams[i], r.status, r.err);
		t_run_free(&r);
		t_check_index_ok(store, index, SEAM_ROWS);
		cr_assert_str_eq(status_of(store, id).state, "done");
	}
	free(store);
}

Test(faults, cli_resume_done_and_unknown, .init = t_need_bfill)
{
	new_scratch();
	char *store = t_path_in(t_scratch_dir, "store");
	t_bfill_gen(store, 1000, 5);
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name k_idx --columns k", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);

	r = t_bfillf("add-index --store '%s' --resume --job-id 1", store);
	cr_assert_eq(r.status, 0, "resuming a done job: exit %d: %s", r.status, r.err);
	cr_assert_str_eq(r.out, "job 1 is already done\n");
	cr_assert_str_eq(r.err, "");
	t_run_free(&r);
	r = t_bfillf("add-index --store '%s' --resume --job-id 1 --json", store);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "\"noop\":true"), "%s", r.out);
	t_run_free(&r);

	r = t_bfillf("add-index --store '%s' --resume --job-id 99", store);
	cr_assert_eq(r.status, 1, "unknown job: exit %d", r.status);
	cr_assert_str_eq(r.out, "");
	cr_assert_eq(t_count_lines(r.err), 1, "one line: %s", r.err);
	cr_assert_not_null(strstr(r.err, "99"), "names the job: %s", r.err);
	t_run_free(&r);
	t_check_index_ok(store, "k_idx", 1000);
	free(store);
}

/* ---- SIGKILL and --resume ---- */

typedef bool (*view_pred)(const job_view *v);

/* Polls status until pred holds, the job stops running, or timeout_ms. */
static job_view wait_for(const char *store, int64_t id, view_pred pred, int timeout_ms)
{
	struct timespec t0, now;
	job_view v = { 0 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		/* The job record appears once the job has started; it is
		 * queueing until the job has its lock. */
		if (try_status(store, id, false, &v) && strcmp(v.state, "queueing") != 0 &&
		    (pred(&v) || strcmp(v.state, "running") != 0))
			return v;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		cr_assert_lt(ms, timeout_ms, "job %" PRId64 " never reached the awaited point (state %s)",
			     id, v.state);
		usleep(30000);
	}
}

/* SIGKILLs the background job; true when the kill ended it, false when it
 * had already exited (then it must have succeeded). */
static bool kill_job(void)
{
	int st;
	cr_assert_gt(bg_pid, 0);
	kill(bg_pid, SIGKILL);
	cr_assert_eq(waitpid(bg_pid, &st, 0), bg_pid);
	bg_pid = 0;
	if (WIFSIGNALED(st))
		return true;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the job exited with %d before the kill",
		  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return false;
}

static bool on_record(const job_view *v) { (void)v; return true; }
static bool has_flushed(const job_view *v) { return v->flushed_rows > 0; }
static bool has_imported(const job_view *v) { return v->imports > 0 && v->imported_rows > 0; }

#define KILL_ROWS 1000000L

Test(faults, kill_at_checkpoint_then_resume, .init = t_need_bfill)
{
	new_scratch();
	char *store = t_path_in(t_scratch_dir, "store"), *log = t_path_in(t_scratch_dir, "job.log");
	char *sort = NULL;
	t_bfill_gen(store, KILL_ROWS, 5);

	bg_pid = t_spawn_bfillf(log, "add-index --store '%s' --table sbtest1 --name c_idx --columns c"
				" --workers 1 --mem 128M --job-id 1 --quiet", store);
	job_view v = wait_for(store, 1, has_flushed, 60000);
	cr_assert_str_eq(v.state, "running", "the job ended (%s) before a checkpoint was seen", v.state);
	cr_assert(v.alive, "status sees the running process");
	cr_assert(kill_job(), "the job was still running at the kill");
	cr_log_info("killed with %" PRIu64 " rows flushed, %" PRIu64 " done", v.flushed_rows, v.rows_done);

	v = status_of(store, 1);
	cr_assert_str_eq(v.state, "running", "the record of a killed job still says running");
	cr_assert_not(v.alive, "status sees that the process is gone");
	uint64_t flushed = v.flushed_rows;
	cr_assert_gt(flushed, 0);

	t_run r = t_bfillf("add-index --store '%s' --resume --job-id 1 --json", store);
	cr_assert_eq(r.status, 0, "resume: exit %d: %s", r.status, r.err);
	cJSON *o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "resume --json: %s", r.out);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
	cr_assert(cJSON_IsNumber(rows));
	cr_assert_leq((uint64_t)rows->valuedouble, (uint64_t)KILL_ROWS - flushed,
		      "the resume scanned %.0f rows: it did not start from the checkpoint (%" PRIu64
		      " flushed)", rows->valuedouble, flushed);
	cJSON_Delete(o);
	t_run_free(&r);
	t_check_index_ok(store, "c_idx", KILL_ROWS);
	cr_assert_str_eq(status_of(store, 1).state, "done");
	cr_assert_geq(asprintf(&sort, "%s.sort", store), 0);
	cr_assert_not(t_path_exists(sort), "the sort dir is removed when the resumed job ends");
	free(sort);
	free(store);
	free(log);
}

#define RANDOM_ROWS 600000L

Test(faults, kill_at_random_moments_then_resume, .init = t_need_bfill)
{
	/* Delays from the moment the job is on record (a kill before that
	 * leaves nothing to resume); the later ones land in imports. */
	static const int delays_ms[] = { 60, 250, 450, 700 };
	static const char *const columns[] = { "c", "k,c", "pad", "pad" };
	static const bool unique[] = { false, false, true, true };
	unsigned seed = (unsigned)time(NULL);
	int killed = 0;
	bool resume_killed = false;

	new_scratch();
	char *store = t_path_in(t_scratch_dir, "store"), *log = t_path_in(t_scratch_dir, "job.log");
	t_bfill_gen(store, RANDOM_ROWS, 5);
	srand(seed);
	cr_log_info("kill jitter seed %u", seed);

	for (int i = 0; i < 4; i++) {
		int64_t id = i + 1;
		char index[16];
		int delay = delays_ms[i] + rand() % 60;
		snprintf(index, sizeof(index), "r%d", i);
		bg_pid = t_spawn_bfillf(log, "add-index --store '%s' --table sbtest1 --name %s --columns %s%s"
					" --workers 1 --mem 128M --import-every 8M --job-id %" PRId64 " --quiet",
					store, index, columns[i], unique[i] ? " --unique" : "", id);
		wait_for(store, id, on_record, 60000);
		usleep((useconds_t)delay * 1000);
		bool was_killed = kill_job();
		killed += was_killed;
		cr_log_info("iteration %d: %s after %d ms", i, was_killed ? "killed" : "finished", delay);
		if (was_killed && !resume_killed) {
			/* Kill the resume too, once. */
			resume_killed = true;
			bg_pid = t_spawn_bfillf(log, "add-index --store '%s' --resume --job-id %" PRId64 " --quiet",
						store, id);
			usleep(250000);
			killed += kill_job();
		}
		t_run r = t_bfillf("add-index --store '%s' --resume --job-id %" PRId64, store, id);
		cr_assert_eq(r.status, 0, "iteration %d: resume: exit %d: %s", i, r.status, r.err);
		t_run_free(&r);
		t_check_index_ok(store, index, RANDOM_ROWS);
	}
	cr_assert_geq(killed, 3, "only %d of the jobs were still running at their kill", killed);
	free(store);
	free(log);
}

Test(faults, cancel_killed_job_with_imports, .init = t_need_bfill)
{
	new_scratch();
	char *store = t_path_in(t_scratch_dir, "store"), *log = t_path_in(t_scratch_dir, "job.log");
	char *jobdir = NULL;
	t_bfill_gen(store, RANDOM_ROWS, 5);

	bg_pid = t_spawn_bfillf(log, "add-index --store '%s' --table sbtest1 --name c_idx --columns c"
				" --workers 1 --mem 128M --import-every 2M --job-id 1 --quiet", store);
	job_view v = wait_for(store, 1, has_imported, 60000);
	cr_assert_str_eq(v.state, "running", "the job ended (%s) before an import was seen", v.state);
	cr_assert(kill_job(), "the job was still running at the kill");

	bf_index_state state = BF_INDEX_NONE;
	bool exists = false;
	uint64_t n = entries_of(store, "sbtest1", "c_idx", &state, &exists);
	cr_assert(exists && state == BF_INDEX_WRITE_REORG, "a killed job's index stays write-reorg");
	cr_assert_gt(n, 0, "imported entries are in the store after the kill");

	t_run r = t_bfillf("cancel --store '%s' --job 1", store);
	cr_assert_eq(r.status, 0, "cancel: exit %d: %s", r.status, r.err);
	cr_assert_str_eq(r.out, "job 1 cancelled\n");
	t_run_free(&r);
	n = entries_of(store, "sbtest1", "c_idx", &state, &exists);
	cr_assert_not(exists, "cancel drops the index");
	cr_assert_str_eq(status_of(store, 1).state, "cancelled");
	cr_assert_geq(asprintf(&jobdir, "%s.sort/job-1", store), 0);
	cr_assert_not(t_path_exists(jobdir), "cancel removes the sort files");

	/* Every index key of the table is gone. */
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_table t;
	cr_assert_eq(bf_store_open(store, BF_STORE_READONLY, &st, &err), 0, "%s", bf_err_text(&err));
	t_table_get(st, "sbtest1", &t);
	cr_assert_eq(t_table_index_count(st, t.id, 0), 0, "cancel left index entries behind");
	bf_store_close(st);

	r = t_bfillf("add-index --store '%s' --resume --job-id 1", store);
	cr_assert_eq(r.status, 1, "a cancelled job can't be resumed");
	t_run_free(&r);
	free(jobdir);
	free(store);
	free(log);
}

/* ---- SIGTERM: pause, or done if the last import already committed ---- */

static bool scanning(const job_view *v) { return !strcmp(v->phase, "scan"); }
static bool importing(const job_view *v) { return !strcmp(v->phase, "import"); }

/* SIGTERMs the background job and returns its exit status. */
static int term_job(void)
{
	int st;
	cr_assert_gt(bg_pid, 0);
	kill(bg_pid, SIGTERM);
	cr_assert_eq(waitpid(bg_pid, &st, 0), bg_pid);
	bg_pid = 0;
	cr_assert(WIFEXITED(st), "SIGTERM is handled: the job ends by itself, not by the signal");
	return WEXITSTATUS(st);
}

Test(faults, sigterm_during_scan_pauses, .init = t_need_bfill)
{
	new_scratch();
	char *store = t_path_in(t_scratch_dir, "store"), *log = t_path_in(t_scratch_dir, "job.log");
	t_bfill_gen(store, KILL_ROWS, 5);
	bg_pid = t_spawn_bfillf(log, "add-index --store '%s' --table sbtest1 --name c_idx --columns c"
				" --workers 1 --job-id 1 --quiet", store);
	job_view v = wait_for(store, 1, scanning, 60000);
	cr_assert_str_eq(v.state, "running", "the job ended (%s) before its scan was seen", v.state);
	int code = term_job();
	char *out = t_read_file(log);
	cr_assert_eq(code, 1, "an interrupted job exits 1: %s", out);
	cr_assert_eq(t_count_lines(out), 1, "one line: %s", out);
	cr_assert_not_null(strstr(out, "paused"), "%s", out);
	cr_assert_not_null(strstr(out, "--resume --job-id 1"), "%s", out);
	v = status_of(store, 1);
	cr_assert_str_eq(v.state, "paused");
	cr_assert_not(v.alive);
	bf_index_state state = BF_INDEX_NONE;
	bool exists = false;
	entries_of(store, "sbtest1", "c_idx", &state, &exists);
	cr_assert(exists && state == BF_INDEX_WRITE_REORG, "a paused job's index is not public");

	t_run r = t_bfillf("add-index --store '%s' --resume --job-id 1", store);
	cr_assert_eq(r.status, 0, "resume of a paused job: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	t_check_index_ok(store, "c_idx", KILL_ROWS);
	free(out);
	free(store);
	free(log);
}

/*
 * SIGTERM while the last import is held just before its ingest: the import
 * still commits. Whatever the outcome, job record and index must agree and
 * a resume must succeed.
 */
Test(faults, sigterm_during_last_import, .init = t_need_bfill)
{
	new_scratch();
	char *store = t_path_in(t_scratch_dir, "store"), *log = t_path_in(t_scratch_dir, "job.log");
	t_bfill_gen(store, 200000, 5);
	bg_pid = t_spawn_bfill_faultf("import.stall~1500", log, "add-index --store '%s' --table sbtest1"
				      " --name c_idx --columns c --workers 1 --job-id 1 --quiet", store);
	job_view v = wait_for(store, 1, importing, 60000);
	cr_assert_str_eq(v.state, "running", "the job ended (%s) before its import was seen", v.state);
	int code = term_job();
	char *out = t_read_file(log);

	v = status_of(store, 1);
	bf_index_state state = BF_INDEX_NONE;
	bool exists = false;
	uint64_t n = entries_of(store, "sbtest1", "c_idx", &state, &exists);
	cr_assert(exists, "the index is still there");
	cr_log_info("SIGTERM in the last import: exit %d, job %s, index %s, %" PRIu64 " entries", code,
		    v.state, bf_index_state_name(state), n);
	if (state == BF_INDEX_PUBLIC) {
		cr_assert_str_eq(v.state, "done", "the index is public, but the job says %s (exit %d: %s)",
				 v.state, code, out);
		cr_assert_eq(code, 0, "the job is done, yet bfill exited %d: %s", code, out);
	} else {
		cr_assert_str_eq(v.state, "paused", "exit %d: %s", code, out);
		cr_assert_eq(code, 1);
	}
	t_run r = t_bfillf("add-index --store '%s' --resume --job-id 1", store);
	cr_assert_eq(r.status, 0, "resume after SIGTERM in the last import: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	t_check_index_ok(store, "c_idx", 200000);
	free(out);
	free(store);
	free(log);
}
