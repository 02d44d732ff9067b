/*
 * Job-level tests of the etcd import lock (issue #4): `bfill add-index
 * --etcd` run as a user runs it, against real etcd clusters started by the
 * test harness, with faults injected through BFILL_FAULT. Covered: several
 * imports taking the lock once each; etcd unreachable from the start (a
 * clean failure, then a resume that re-scans nothing); what `bfill status`
 * says while the lock is awaited (TiDB #47918); session creation failing
 * (TiDB #49265); the lease lost while holding (fencing stops the ingest);
 * etcd killed and restarted mid-job; two processes on two stores contending
 * for one lock key; failover in a 3-member cluster.
 *
 * What a process did is read back from outside it: its --json line, the job
 * record (`bfill status --json`), the index range of the store (opened
 * read-only with the library after the writer exited), the ingests RocksDB
 * logged in the store's LOG files, and the lock keys left in etcd
 * (etcdctl, so the test process itself never starts gRPC).
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/store.h"
#include "tests/support/etcd.h"
#include "tests/support/support.h"
#include "util/util.h"

#define MAX_BG 4
#define ROWS_SMALL 100000L
#define ROWS_IMPORTS 200000L

static pid_t bg_pids[MAX_BG];

static void teardown(void)
{
	for (int i = 0; i < MAX_BG; i++)
		t_kill_reap(&bg_pids[i]);
	t_etcd_stop_all();
	t_scratch_remove();
}

TestSuite(etcd_job, .init = t_need_bfill, .fini = teardown, .timeout = 90);

static void need_etcd(void)
{
	if (!t_etcd_available())
		cr_skip_test("etcd/etcdctl not installed (Debian: apt-get install etcd-server "
			     "etcd-client); the job-level etcd lock tests need a real etcd");
}

/* ---- time, files, processes ------------------------------------------- */

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A path in this test's scratch dir (created on first use, with the
 * bfill processes' trace file in it); malloc'd. */
static char *path_in(const char *name)
{
	if (!t_scratch_dir) {
		t_scratch_new("etcdjob");
		char *trace = t_path_in(t_scratch_dir, "trace.log");
		setenv("BFILL_TRACE", trace, 1);
		free(trace);
	}
	return t_path_in(t_scratch_dir, name);
}

/* The whole file, or "" when there is none (a process that never started
 * leaves no output); malloc'd. */
static char *slurp(const char *path)
{
	return t_path_exists(path) ? t_read_file(path) : strdup("");
}

/* A sysbench store of `rows` rows, in the scratch dir; malloc'd. */
static char *new_store(const char *name, long rows)
{
	char *store = path_in(name);
	t_bfill_gen(store, rows, 7);
	return store;
}

/* Starts `bfill <args>` in the background with BFILL_FAULT=fault, stdout
 * and stderr to files; the pid is remembered so teardown kills it. */
static pid_t spawn_bfill(const char *fault, const char *out_path, const char *err_path,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static pid_t spawn_bfill(const char *fault, const char *out_path, const char *err_path,
			 const char *fmt, ...)
{
	char *args = NULL, *cmd = NULL;
	va_list ap;
	int slot = -1;
	pid_t pid;

	for (int i = 0; i < MAX_BG && slot < 0; i++)
		if (bg_pids[i] == 0)
			slot = i;
	cr_assert_geq(slot, 0, "too many background processes");
	va_start(ap, fmt);
	cr_assert_geq(vasprintf(&args, fmt, ap), 0);
	va_end(ap);
	cr_assert_geq(asprintf(&cmd, "exec '%s' %s >'%s' 2>'%s' </dev/null", t_bfill(), args,
			       out_path, err_path), 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Dies with the test process even when teardown can't run (a
		 * Criterion timeout kills the test). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("BFILL_FAULT", fault ? fault : "", 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	bg_pids[slot] = pid;
	free(args);
	free(cmd);
	return pid;
}

typedef struct bg_exit {
	int status; /* exit code, or 128+signal */
	bool signaled;
} bg_exit;

/* Waits for background process pid at most timeout_ms; fails the test
 * (teardown kills it) when it is still running then. */
static bg_exit wait_bg(pid_t pid, int timeout_ms)
{
	int64_t deadline = bf_now_ms() + timeout_ms;
	bg_exit ex = { 0 };
	int st = 0;

	for (;;) {
		pid_t got = waitpid(pid, &st, WNOHANG);
		if (got == pid)
			break;
		cr_assert(got == 0 || errno == EINTR, "waitpid %d: %s", (int)pid, strerror(errno));
		cr_assert_lt(bf_now_ms(), deadline, "bfill (pid %d) still running after %d ms", (int)pid,
			     timeout_ms);
		bf_sleep_ms(20);
	}
	for (int i = 0; i < MAX_BG; i++)
		if (bg_pids[i] == pid)
			bg_pids[i] = 0;
	ex.signaled = WIFSIGNALED(st);
	ex.status = ex.signaled ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
	return ex;
}

/* ---- what a run left behind ------------------------------------------- */

static long jlong(const cJSON *o, const char *key)
{
	return (long)t_json_num(o, key);
}

/* The job record as `bfill status --json --job id` shows it; NULL when the
 * job does not exist (yet). */
static cJSON *job_status(const char *store, long id)
{
	t_run r = t_bfillf("status --store '%s' --json --job %ld", store, id);
	cJSON *o = NULL;
	if (r.status == 0)
		o = t_json_parse(r.out, "status --json");
	t_run_free(&r);
	return o;
}

/*
 * Entries in the store under the indexes of job job_id, read with the
 * library from a read-only open (so only after the writer has exited, or
 * it would see the store as it was when opened). *index_id (may be NULL)
 * gets the job's first index id.
 */
static uint64_t job_index_entries(const char *store, long job_id, int64_t *index_id)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_job job;
	uint64_t n = 0;

	cr_assert_eq(bf_store_open(store, BF_STORE_READONLY, &st, &err), 0, "open %s: %s", store,
		     bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), job_id, &job, &err), 0, "job %ld: %s", job_id,
		     bf_err_text(&err));
	cr_assert_gt(job.nindexes, 0);
	if (index_id)
		*index_id = job.index_ids[0];
	for (int i = 0; i < job.nindexes; i++) {
		uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
		bf_store_iter *it = NULL;
		bf_codec_index_prefix(lo, job.table_id, job.index_ids[i]);
		bf_codec_index_prefix(hi, job.table_id, job.index_ids[i] + 1);
		cr_assert_eq(bf_store_iter_create(st, lo, sizeof(lo), hi, sizeof(hi), NULL, &it, &err),
			     0, "%s", bf_err_text(&err));
		for (; bf_store_iter_valid(it); bf_store_iter_next(it))
			n++;
		cr_assert_eq(bf_store_iter_status(it, &err), 0, "%s", bf_err_text(&err));
		bf_store_iter_destroy(it);
	}
	bf_store_close(st);
	return n;
}

/*
 * Wall-clock times (µs) of the ingests bfill traced (BFILL_TRACE, which
 * every test of this suite points at its scratch dir: see teardown and
 * trace_path) at or after since_us, ascending: every ingest into the store,
 * whoever held the lock. Returns how many.
 */
static size_t store_ingests(const char *store, int64_t since_us, int64_t *out, size_t cap)
{
	size_t n = 0;
	(void)store;
	if (!t_path_exists(getenv("BFILL_TRACE")))
		return 0;
	char *text = slurp(getenv("BFILL_TRACE")), *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long long us;
		char event[32];
		if (sscanf(line, "%lld %31s", &us, event) != 2 || strcmp(event, "ingest") != 0)
			continue;
		if (us >= since_us) {
			cr_assert_lt(n, cap, "more ingests than expected");
			out[n++] = us;
		}
	}
	free(text);
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && out[k - 1] > out[k]; k--) {
			int64_t tmp = out[k];
			out[k] = out[k - 1];
			out[k - 1] = tmp;
		}
	return n;
}

/* Keys under prefix in etcd (`etcdctl get --prefix --keys-only`). */
static int etcd_keys(const char *endpoints, const char *prefix)
{
	char *ep = NULL;
	int n = 0;

	cr_assert_geq(asprintf(&ep, "--endpoints=%s", endpoints), 0);
	char *argv[] = { "etcdctl", ep, "--dial-timeout=1s", "--command-timeout=2s", "get",
			 "--prefix", "--keys-only", (char *)prefix, NULL };
	char *env[] = { "ETCDCTL_API=3", NULL };
	t_run r = t_exec(argv, env);
	cr_assert_eq(r.status, 0, "etcdctl get: %s", r.err);
	for (char *p = r.out; (p = strstr(p, prefix)); p += strlen(prefix))
		n++;
	t_run_free(&r);
	free(ep);
	return n;
}

/* Waits up to timeout_ms for no key to be left under prefix. */
static void expect_no_keys(const char *endpoints, const char *prefix, int timeout_ms)
{
	int64_t deadline = bf_now_ms() + timeout_ms;
	int n;
	while ((n = etcd_keys(endpoints, prefix)) > 0 && bf_now_ms() < deadline)
		bf_sleep_ms(200);
	cr_assert_eq(n, 0, "%d lock key(s) still under %s after %d ms", n, prefix, timeout_ms);
}

/* A failed run as the CLI must report it: exit 1 (not a signal), one line
 * on stderr containing each needle, the --json line on stdout. */
static cJSON *expect_failed_run(const t_run *r, const char *what, const char *needle1,
				const char *needle2)
{
	cr_assert(!r->signaled, "%s: killed by signal %d; stderr: %s", what, r->status - 128, r->err);
	cr_assert_eq(r->status, 1, "%s: exit %d, want 1; stderr: %s", what, r->status, r->err);
	cr_assert_eq(t_count_lines(r->err), 1, "%s: want one line on stderr, got: [%s]", what,
		     r->err);
	if (needle1)
		cr_assert_not_null(strstr(r->err, needle1), "%s: '%s' not in: %s", what, needle1, r->err);
	if (needle2)
		cr_assert_not_null(strstr(r->err, needle2), "%s: '%s' not in: %s", what, needle2, r->err);
	cJSON *j = t_json_parse(r->out, what);
	cr_assert_str_eq(t_json_str(j, "state"), "failed", "%s: %s", what, r->out);
	cr_assert_eq(jlong(j, "imports"), 0, "%s: %s", what, r->out);
	cr_assert_eq(jlong(j, "index_keys"), 0, "%s: %s", what, r->out);
	return j;
}

/* The job record of a failed job: failed, not waiting, the error kept. */
static void expect_failed_record(const char *store, long id, const char *needle)
{
	cJSON *s = job_status(store, id);
	cr_assert_not_null(s, "job %ld has no record", id);
	cr_assert_str_eq(t_json_str(s, "state"), "failed");
	cr_assert_str_eq(t_json_str(s, "waiting"), "", "a failed job waits for nothing");
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "alive")));
	const char *e = t_json_str(s, "last_error");
	cr_assert_not_null(strstr(e, needle), "last_error lacks '%s': %s", needle, e);
	cJSON_Delete(s);
}

#define ADD_C1 "add-index --store '%s' --table sbtest1 --name c1 --columns c"

/* ---- 1. several imports, one lock acquisition each --------------------- */

Test(etcd_job, several_imports_take_the_lock_once_each)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store = new_store("s", ROWS_IMPORTS);
	int64_t t0 = wall_us(), times[64];

	t_run r = t_bfill_faultf(NULL, ADD_C1 " --etcd %s --import-every 8M --lock-ttl 3"
				    " --lock-timeout 10 --json", store, t_etcd_endpoints(e));
	cr_assert_eq(r.status, 0, "add-index: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	long imports = jlong(j, "imports");
	cr_assert_geq(imports, 2, "8M per import over ~33 MB of entries: %s", r.out);
	cr_assert_eq(jlong(j, "lock_acquires"), imports, "one acquisition per import: %s", r.out);
	cr_assert_eq(jlong(j, "fence_losses"), 0, "%s", r.out);
	cr_assert_eq(jlong(j, "rows"), ROWS_IMPORTS);
	cr_assert_eq(jlong(j, "index_keys"), ROWS_IMPORTS);
	/* Each import is at most one atomic ingest (none when it found
	 * nothing left to import). */
	size_t ningest = store_ingests(store, t0, times, 64);
	cr_assert(ningest >= 1 && ningest <= (size_t)imports, "%zu ingests for %ld imports", ningest,
		  imports);
	t_check_index_ok(store, "c1", ROWS_IMPORTS);
	/* Unlocked and revoked after every import: nothing left in etcd. */
	cr_assert_eq(etcd_keys(t_etcd_endpoints(e), "/bfill/lock/"), 0);
	cJSON_Delete(j);
	t_run_free(&r);
	free(store);
	t_etcd_destroy(e);
}

/* ---- 2. etcd unreachable from the start -------------------------------- */

Test(etcd_job, unreachable_etcd_fails_cleanly_and_resume_rescans_nothing)
{
	need_etcd();
	char *store = new_store("s", ROWS_SMALL);
	char dead[64];
	snprintf(dead, sizeof(dead), "%s", t_etcd_dead_endpoint());

	int64_t t0 = bf_now_ms();
	t_run r = t_bfill_faultf(NULL, ADD_C1 " --etcd %s --lock-timeout 3 --json", store, dead);
	int64_t took = bf_now_ms() - t0;
	cJSON *j = expect_failed_run(&r, "add-index, etcd unreachable", "etcd", dead);
	cr_assert_not_null(strstr(r.err, "gave up after 3 s"), "the cause: %s", r.err);
	cr_assert_eq(jlong(j, "lock_acquires"), 0);
	cr_assert_geq(took, 2900, "gave up after %" PRId64 " ms, before --lock-timeout", took);
	cr_assert_lt(took, 15000, "gave up only after %" PRId64 " ms", took);
	long id = jlong(j, "job_id");

	expect_failed_record(store, id, dead);
	cJSON *s = job_status(store, id);
	const cJSON *cp = cJSON_GetObjectItemCaseSensitive(s, "checkpoint");
	cr_assert_eq(jlong(cp, "flushed_rows"), ROWS_SMALL,
		     "the sorted data was kept for a resume: flushed_rows %ld", jlong(cp, "flushed_rows"));
	cJSON_Delete(s);
	cr_assert_eq(job_index_entries(store, id, NULL), 0, "nothing was imported without the lock");

	/* etcd is back: the resume imports what was sorted, scanning nothing. */
	t_etcd *e = t_etcd_start(1);
	t_run r2 = t_bfill_faultf(NULL, "add-index --store '%s' --resume --job-id %ld --etcd %s --json",
			       store, id, t_etcd_endpoints(e));
	cr_assert_eq(r2.status, 0, "resume: exit %d: %s", r2.status, r2.err);
	cJSON *j2 = t_json_parse(r2.out, "resume --json");
	cr_assert_str_eq(t_json_str(j2, "state"), "done");
	cr_assert_eq(jlong(j2, "rows"), 0, "resume re-scanned rows: %s", r2.out);
	cr_assert_eq(jlong(j2, "lock_acquires"), 1);
	t_check_index_ok(store, "c1", ROWS_SMALL);
	cJSON_Delete(j);
	cJSON_Delete(j2);
	t_run_free(&r);
	t_run_free(&r2);
	free(store);
	t_etcd_destroy(e);
}

/* ---- 2b. an outage longer than --lock-timeout after imports ------------ */

Test(etcd_job, outage_after_imports_keeps_them_for_the_resume, .timeout = 120)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store = new_store("s", ROWS_IMPORTS);
	char *out = path_in("add.out"), *errp = path_in("add.err");

	/* Each import stalls 1 s holding its lock, so the kill below lands
	 * between the first import's commit and the next import. */
	pid_t pid = spawn_bfill("import.stall~1000", out, errp,
				ADD_C1 " --etcd %s --import-every 8M --lock-ttl 3 --lock-timeout 3 --json",
				store, t_etcd_endpoints(e));
	int64_t t0 = bf_now_ms();
	long imported = 0;
	/* An import moves the imported checkpoint only as far as every row
	 * before it is in: the first one may commit with it still at 0 (its
	 * generation sealed before the first task was whole). Wait for one
	 * that moved it. */
	while (imported < 1) {
		cr_assert_lt(bf_now_ms() - t0, 30000, "no import moved the checkpoint within 30 s");
		cJSON *s = job_status(store, 1);
		if (s) {
			imported = jlong(cJSON_GetObjectItemCaseSensitive(s, "checkpoint"),
					 "imported_rows");
			cJSON_Delete(s);
		}
		if (imported < 1)
			bf_sleep_ms(50);
	}
	t_etcd_kill(e, 0);
	bg_exit ex = wait_bg(pid, 60000);
	char *o = slurp(out), *er = slurp(errp);
	cr_assert(!ex.signaled, "killed by signal %d", ex.status - 128);
	cr_assert_eq(ex.status, 1, "the job outlived the outage? exit %d: %s", ex.status, er);
	cJSON *j = t_json_parse(o, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "failed");
	cr_assert_geq(jlong(j, "imports"), 1, "%s", o);

	/* What was imported stays in the store, unreadable while the index is
	 * not public; the checkpoints stay too. */
	cJSON *s = job_status(store, 1);
	const cJSON *cp = cJSON_GetObjectItemCaseSensitive(s, "checkpoint");
	imported = jlong(cp, "imported_rows");
	long flushed = jlong(cp, "flushed_rows");
	char *shown = cJSON_PrintUnformatted(s);
	cr_assert_gt(imported, 0, "the imported checkpoint is kept: %s", shown);
	free(shown);
	cr_assert_geq(flushed, imported);
	cJSON_Delete(s);
	uint64_t kept = job_index_entries(store, 1, NULL);
	cr_assert_gt(kept, 0, "the entries of the committed import are kept");
	t_run r = t_bfillf("check-index --store '%s' --table sbtest1 --name c1", store);
	cr_assert_eq(r.status, 1, "an index being built is not readable");
	t_run_free(&r);

	/* etcd back: the resume scans only past the flushed checkpoint and
	 * imports only what is not in the store yet. */
	t_etcd_restart(e, 0);
	t_run r2 = t_bfill_faultf(NULL, "add-index --store '%s' --resume --job-id 1 --json", store);
	cr_assert_eq(r2.status, 0, "resume: exit %d: %s", r2.status, r2.err);
	cJSON *j2 = t_json_parse(r2.out, "resume --json");
	cr_assert_str_eq(t_json_str(j2, "state"), "done");
	cr_assert_eq(jlong(j2, "rows"), ROWS_IMPORTS - flushed, "resume scanned %ld rows, flushed %ld",
		     jlong(j2, "rows"), flushed);
	cr_assert_lt(jlong(j2, "index_keys"), ROWS_IMPORTS, "the resume imported everything again: %s",
		     r2.out);
	t_check_index_ok(store, "c1", ROWS_IMPORTS);
	cJSON_Delete(j);
	cJSON_Delete(j2);
	t_run_free(&r2);
	free(o);
	free(er);
	free(out);
	free(errp);
	free(store);
	t_etcd_destroy(e);
}

/* ---- 3. status while the lock is awaited (TiDB #47918) ----------------- */

Test(etcd_job, status_while_waiting_says_running_and_why)
{
	need_etcd();
	char *store = new_store("s", ROWS_SMALL);
	char *out = path_in("add.out"), *errp = path_in("add.err");
	char dead[64];
	snprintf(dead, sizeof(dead), "%s", t_etcd_dead_endpoint());

	pid_t pid = spawn_bfill(NULL, out, errp, ADD_C1 " --etcd %s --lock-timeout 15 --json",
				store, dead);
	int64_t t0 = bf_now_ms();
	bool seen_running = false, seen_waiting = false;
	int polls = 0;
	char last[1024] = "";
	while (bf_now_ms() - t0 < 5000 && !seen_waiting) {
		cJSON *s = job_status(store, 1);
		polls++;
		if (s) {
			const char *state = t_json_str(s, "state");
			const char *waiting = t_json_str(s, "waiting");
			snprintf(last, sizeof(last), "%s / %s", state, waiting);
			/* queueing is the instant between creating the job and
			 * starting it, never a place to wait in. */
			if (seen_running)
				cr_assert_str_neq(state, "queueing", "back to queueing after running");
			cr_assert(!strcmp(state, "queueing") || !strcmp(state, "running"),
				  "state %s while waiting for the lock", state);
			if (!strcmp(state, "running")) {
				seen_running = true;
				cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "alive")));
				cr_assert_eq(jlong(s, "pid"), (long)pid);
				if (!strncmp(waiting, "waiting for etcd lock:", 22)) {
					seen_waiting = true;
					cr_assert_not_null(strstr(waiting, dead),
							   "what it waits for names the endpoint: %s", waiting);
				}
			}
			cJSON_Delete(s);
		}
		if (!seen_waiting)
			bf_sleep_ms(100);
	}
	cr_assert(seen_waiting, "after %d polls in 5 s status never said it waits for the lock; "
		  "last: %s", polls, last);

	/* Interrupted while waiting: paused at once, and resumable. */
	kill(pid, SIGTERM);
	int64_t t1 = bf_now_ms();
	bg_exit ex = wait_bg(pid, 10000);
	cr_assert(!ex.signaled, "SIGTERM killed it instead of pausing the job");
	cr_assert_eq(ex.status, 1);
	cr_assert_lt(bf_now_ms() - t1, 5000, "took %" PRId64 " ms to stop", bf_now_ms() - t1);
	cJSON *s = job_status(store, 1);
	cr_assert_str_eq(t_json_str(s, "state"), "paused");
	cr_assert_str_eq(t_json_str(s, "waiting"), "");
	/* The scan was over: what it sorted is kept, on record, for --resume. */
	const cJSON *cp = cJSON_GetObjectItemCaseSensitive(s, "checkpoint");
	cr_assert_eq(jlong(cp, "flushed_rows"), ROWS_SMALL,
		     "pausing in the lock wait dropped the sorted rows from the checkpoint "
		     "(flushed_rows %ld)", jlong(cp, "flushed_rows"));
	cJSON_Delete(s);
	cr_assert_eq(job_index_entries(store, 1, NULL), 0);

	t_etcd *e = t_etcd_start(1);
	t_run r = t_bfill_faultf(NULL, "add-index --store '%s' --resume --job-id 1 --etcd %s --json",
			      store, t_etcd_endpoints(e));
	cr_assert_eq(r.status, 0, "resume: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "resume --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	cr_assert_eq(jlong(j, "rows"), 0, "resume re-scanned rows: %s", r.out);
	cJSON_Delete(j);
	t_check_index_ok(store, "c1", ROWS_SMALL);
	t_run_free(&r);
	free(out);
	free(errp);
	free(store);
	t_etcd_destroy(e);
}

/* ---- 4. session creation failing (TiDB #49265) ------------------------- */

Test(etcd_job, session_creation_always_failing_is_a_clean_failure)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store = new_store("s", ROWS_SMALL);

	int64_t t0 = bf_now_ms();
	t_run r = t_bfill_faultf("lock.session", ADD_C1 " --etcd %s --lock-timeout 3 --json", store,
			      t_etcd_endpoints(e));
	int64_t took = bf_now_ms() - t0;
	cJSON *j = expect_failed_run(&r, "add-index, no session", "etcd", "session");
	cr_assert_eq(jlong(j, "lock_acquires"), 0);
	cr_assert_geq(took, 2900, "gave up after %" PRId64 " ms", took);
	long id = jlong(j, "job_id");
	expect_failed_record(store, id, "session");
	cr_assert_eq(job_index_entries(store, id, NULL), 0, "nothing was imported without the lock");
	/* No session was made, so nothing was written to etcd either. */
	cr_assert_eq(etcd_keys(t_etcd_endpoints(e), "/bfill/lock/"), 0);
	cJSON_Delete(j);
	t_run_free(&r);
	free(store);
	t_etcd_destroy(e);
}

Test(etcd_job, session_creation_failing_at_first_then_working_succeeds)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store = new_store("s", ROWS_SMALL);

	t_run r = t_bfill_faultf("lock.session@1-3", ADD_C1 " --etcd %s --lock-timeout 10 --json",
			      store, t_etcd_endpoints(e));
	cr_assert(!r.signaled, "killed by signal %d", r.status - 128);
	cr_assert_eq(r.status, 0, "add-index: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	cr_assert_eq(jlong(j, "lock_acquires"), 1);
	cr_assert_eq(jlong(j, "imports"), 1);
	t_check_index_ok(store, "c1", ROWS_SMALL);
	cJSON_Delete(j);
	t_run_free(&r);
	free(store);
	t_etcd_destroy(e);
}

/* ---- 5. the lease lost while the lock is held: fencing ----------------- */

Test(etcd_job, lease_lost_every_time_fencing_stops_every_ingest)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store = new_store("s", ROWS_SMALL);
	int64_t t0 = wall_us(), times[8];

	/* Keepalives never sent, and 3 s between acquiring and the fencing
	 * check: the 2 s lease is always gone by then. */
	t_run r = t_bfill_faultf("lock.keepalive,import.stall~3000",
			      ADD_C1 " --etcd %s --lock-ttl 2 --lock-timeout 8 --json", store,
			      t_etcd_endpoints(e));
	cJSON *j = expect_failed_run(&r, "add-index, lease always lost", "stopped before ingest",
				     "lost");
	long losses = jlong(j, "fence_losses");
	cr_assert_geq(losses, 2, "retried while the lock timeout allowed: %s", r.out);
	cr_assert_eq(jlong(j, "lock_acquires"), losses, "every acquisition ended in a loss: %s",
		     r.out);
	long id = jlong(j, "job_id");
	expect_failed_record(store, id, "lost");
	cr_assert_eq(job_index_entries(store, id, NULL), 0, "nothing was imported without the lock");
	cr_assert_eq(store_ingests(store, t0, times, 8), 0, "a holder without a lease ingested");
	expect_no_keys(t_etcd_endpoints(e), "/bfill/lock/", 5000);
	cJSON_Delete(j);
	t_run_free(&r);
	free(store);
	t_etcd_destroy(e);
}

Test(etcd_job, lease_lost_once_then_the_new_holder_ingests)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store = new_store("s", ROWS_SMALL);
	int64_t t0 = wall_us(), times[8];

	t_run r = t_bfill_faultf("lock.keepalive@1-4,import.stall~3000",
			      ADD_C1 " --etcd %s --lock-ttl 2 --lock-timeout 10 --json", store,
			      t_etcd_endpoints(e));
	cr_assert(!r.signaled, "killed by signal %d", r.status - 128);
	cr_assert_eq(r.status, 0, "add-index: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	long losses = jlong(j, "fence_losses");
	cr_assert_geq(losses, 1, "the first lease must have expired: %s", r.out);
	cr_assert_eq(jlong(j, "imports"), 1);
	cr_assert_eq(jlong(j, "lock_acquires"), losses + 1, "%s", r.out);
	cr_assert_eq(jlong(j, "index_keys"), ROWS_SMALL);
	/* Only the holder that kept its lease ingested: one ingest in all. */
	cr_assert_eq(store_ingests(store, t0, times, 8), 1);
	t_check_index_ok(store, "c1", ROWS_SMALL);
	cJSON_Delete(j);
	t_run_free(&r);
	free(store);
	t_etcd_destroy(e);
}

/* ---- 6. etcd killed while the lock is held, then restarted ------------- */

Test(etcd_job, etcd_killed_while_held_then_restarted_job_recovers, .timeout = 120)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store = new_store("s", ROWS_IMPORTS);
	char *out = path_in("add.out"), *errp = path_in("add.err");
	int64_t t0 = wall_us(), times[64];

	pid_t pid = spawn_bfill("import.stall~2000", out, errp,
				ADD_C1 " --etcd %s --import-every 8M --lock-ttl 2 --lock-timeout 30"
				" --json", store, t_etcd_endpoints(e));
	/* The lock key appears when the first import holds the lock; its
	 * stall keeps it held for 2 s. */
	int64_t deadline = bf_now_ms() + 10000;
	while (etcd_keys(t_etcd_endpoints(e), "/bfill/lock/") == 0) {
		cr_assert_lt(bf_now_ms(), deadline, "the job never took the lock");
		bf_sleep_ms(50);
	}
	bf_sleep_ms(300);
	int64_t killed_us = wall_us();
	t_etcd_kill(e, 0);
	bf_sleep_ms(3000);
	t_etcd_restart(e, 0);
	int64_t back_us = wall_us();

	bg_exit ex = wait_bg(pid, 60000);
	char *o = slurp(out), *er = slurp(errp);
	cr_assert(!ex.signaled, "killed by signal %d", ex.status - 128);
	cr_assert_eq(ex.status, 0, "the job did not recover from the etcd restart: exit %d: %s",
		     ex.status, er);
	cJSON *j = t_json_parse(o, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	cr_assert_geq(jlong(j, "fence_losses"), 1, "the holder could not have kept the lock: %s", o);
	/* Every key was ingested once: the round that lost the lock ingested
	 * nothing (had it, the retried round would count its keys again). */
	cr_assert_eq(jlong(j, "index_keys"), ROWS_IMPORTS, "%s", o);
	long imports = jlong(j, "imports");
	size_t ningest = store_ingests(store, t0, times, 64);
	cr_assert(ningest >= 1 && ningest <= (size_t)imports, "%zu ingests for %ld imports: %s",
		  ningest, imports, o);
	/* Nobody can hold the lock while etcd is down: no ingest then. The
	 * holder stalled past the kill and must have been fenced off. */
	for (size_t i = 0; i < ningest; i++)
		cr_assert(times[i] < killed_us || times[i] > back_us,
			  "an ingest %.3f s after etcd was killed, before it was back (%.3f s)",
			  (double)(times[i] - killed_us) / 1e6, (double)(back_us - killed_us) / 1e6);
	t_check_index_ok(store, "c1", ROWS_IMPORTS);
	cJSON_Delete(j);
	free(o);
	free(er);
	free(out);
	free(errp);
	free(store);
	t_etcd_destroy(e);
}

/* ---- 7. two stores, one etcd, the same job id ------------------------- */

/* The job record's lock key, read with the library after the job ended. */
static void job_lock_key(const char *store, long job_id, char *out, size_t n)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_job job;

	cr_assert_eq(bf_store_open(store, BF_STORE_READONLY, &st, &err), 0, "open %s: %s", store,
		     bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), job_id, &job, &err), 0, "%s", bf_err_text(&err));
	snprintf(out, n, "%s", job.lock_key);
	bf_store_close(st);
}

Test(etcd_job, two_stores_same_job_id_do_not_collide)
{
	need_etcd();
	t_etcd *e = t_etcd_start(1);
	char *store[2] = { new_store("a", ROWS_SMALL), new_store("b", ROWS_SMALL) };
	char *out[2] = { path_in("a.out"), path_in("b.out") };
	char *errp[2] = { path_in("a.err"), path_in("b.err") };
	char key[2][BF_FENCE_KEY_MAX];
	cJSON *j[2];
	pid_t pid[2];

	/* Job ids are per store: both jobs are number 77 under one prefix, and
	 * each holds its lock 2 s before its ingest. Keyed by store UUID, the
	 * locks are two different keys, so neither waits for the other. */
	for (int i = 0; i < 2; i++)
		pid[i] = spawn_bfill("import.stall~2000", out[i], errp[i],
				     ADD_C1 " --etcd %s --job-id 77 --lock-prefix /bfill/t7"
				     " --lock-ttl 3 --lock-timeout 20 --json", store[i],
				     t_etcd_endpoints(e));
	for (int i = 0; i < 2; i++) {
		bg_exit ex = wait_bg(pid[i], 40000);
		char *o = slurp(out[i]), *er = slurp(errp[i]);
		cr_assert(!ex.signaled, "process %d: killed by signal %d", i, ex.status - 128);
		cr_assert_eq(ex.status, 0, "process %d: exit %d: %s", i, ex.status, er);
		j[i] = t_json_parse(o, "add-index --json");
		cr_assert_str_eq(t_json_str(j[i], "state"), "done");
		cr_assert_eq(jlong(j[i], "lock_acquires"), 1);
		cr_assert_lt(jlong(j[i], "lock_wait_ms"), 1000,
			     "process %d waited %ld ms for a lock: the stores collide", i,
			     jlong(j[i], "lock_wait_ms"));
		job_lock_key(store[i], 77, key[i], sizeof(key[i]));
		cr_assert(!strncmp(key[i], "/bfill/t7/", 10) && strstr(key[i], "/77"),
			  "lock key %s", key[i]);
		free(o);
		free(er);
	}
	cr_assert_str_neq(key[0], key[1], "each store has its own lock key");
	for (int i = 0; i < 2; i++) {
		t_check_index_ok(store[i], "c1", ROWS_SMALL);
		cJSON_Delete(j[i]);
		free(store[i]);
		free(out[i]);
		free(errp[i]);
	}
	expect_no_keys(t_etcd_endpoints(e), "/bfill/t7/", 3000);
	t_etcd_destroy(e);
}

/* ---- 8. failover in a 3-member cluster --------------------------------- */

Test(etcd_job, three_members_one_stopped_build_succeeds)
{
	need_etcd();
	t_etcd *e = t_etcd_start(3);
	char *store = new_store("s", ROWS_IMPORTS);

	/* The first endpoint the client tries is the dead one. */
	t_etcd_kill(e, 0);
	t_run r = t_bfill_faultf(NULL, ADD_C1 " --etcd %s --import-every 8M --lock-ttl 3"
				    " --lock-timeout 15 --json", store, t_etcd_endpoints(e));
	cr_assert(!r.signaled, "killed by signal %d", r.status - 128);
	cr_assert_eq(r.status, 0, "add-index: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	long imports = jlong(j, "imports");
	cr_assert_geq(imports, 2, "%s", r.out);
	cr_assert_eq(jlong(j, "lock_acquires"), imports, "%s", r.out);
	/* A dead member answers "connection refused" at once: the client
	 * moves on without waiting out a deadline. */
	cr_assert_lt(jlong(j, "lock_wait_max_ms"), 3000, "slow failover: %s", r.out);
	t_check_index_ok(store, "c1", ROWS_IMPORTS);
	char live[80];
	snprintf(live, sizeof(live), "%s,%s", t_etcd_endpoint(e, 1), t_etcd_endpoint(e, 2));
	cr_assert_eq(etcd_keys(live, "/bfill/lock/"), 0);
	cJSON_Delete(j);
	t_run_free(&r);
	free(store);
	t_etcd_destroy(e);
}
