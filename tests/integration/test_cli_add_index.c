/*
 * `bfill add-index`, `check-index`, `status` and `cancel` as a user runs
 * them: usage errors (exit 2) and failures (exit 1) as one line on stderr
 * naming the cause, --json output, check-index catching tampered entries,
 * status answering while a job runs in another process, cancel of a
 * failed job, and the memory budget of a build that spills.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/store.h"
#include "tests/support/support.h"
#include "tests/support/table.h"

static pid_t bg_pid;

static void teardown(void)
{
	t_kill_reap(&bg_pid);
	t_scratch_remove();
}

TestSuite(cli_add_index, .init = t_need_bfill, .fini = teardown, .timeout = 120);

/* A fresh scratch dir with a sysbench store of `rows` rows in it; the
 * store's path is malloc'd. */
static char *new_store(long rows)
{
	return t_scratch_store("cliadd", rows, 9);
}

static int job_count(const char *store)
{
	t_run r = t_bfillf("status --store '%s' --json", store);
	cr_assert_eq(r.status, 0, "status: %s", r.err);
	cJSON *o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "status --json: %s", r.out);
	const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(o, "jobs");
	cr_assert(cJSON_IsArray(jobs), "status --json has a jobs array: %s", r.out);
	int n = cJSON_GetArraySize(jobs);
	cJSON_Delete(o);
	t_run_free(&r);
	return n;
}

/* ---- usage errors and failures ---- */

/* "<c> x n" as a string; malloc'd. */
static char *repeat(char c, size_t n)
{
	char *p = malloc(n + 1);
	cr_assert_not_null(p);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}

/*
 * Every flag is checked before any work, each bad value refused with one
 * line (exit 2): the etcd list (once found only after the whole scan),
 * values too long for the job record (once cut silently), a --mem the
 * machine does not have, an empty column name, and values that are not
 * numbers (once two lines).
 */
static void flag_errors(const char *store)
{
	static const struct { const char *flags, *needle1, *needle2; } cases[] = {
		{ "--etcd garbage", "--etcd", "host:port" },
		{ "--etcd https://127.0.0.1:2379", "TLS", "needs --etcd-cacert" },
		{ "--etcd http://a:1,https://b:2", "--etcd", "mixes http:// and https://" },
		{ "--etcd http://a:1 --etcd-cacert /etc/hostname", "plain text", "--etcd-cacert" },
		{ "--etcd-cacert /etc/hostname", "--etcd-cacert", "--etcd EPS" },
		{ "--etcd 127.0.0.1:99999", "127.0.0.1:99999", "1..65535" },
		{ "--etcd 127.0.0.1:2379,,127.0.0.1:2380", "--etcd", "empty" },
		{ "--etcd 127.0.0.1:2379,", "--etcd", "empty" },
		{ "--etcd ''", "--etcd", "empty" },
		{ "--etcd :2379", "--etcd", "host is empty" },
		{ "--lock-prefix bfill/lock", "--lock-prefix", "start with '/'" },
		{ "--lock-prefix /", "--lock-prefix", "start with '/'" },
		{ "--mem 100T", "--mem", "memory" },
		{ "--mem 31M", "--mem", "at least 32M" },
		{ "--lock-timeout abc", "--lock-timeout", "abc" },
		{ "--lock-timeout 0", "--lock-timeout", "1..86400" },
		{ "--lock-ttl abc", "--lock-ttl", "abc" },
		{ "--lock-ttl 3601", "--lock-ttl", "1..3600" },
		{ "--job-id abc", "--job-id", "abc" },
		{ "--job-id 0", "--job-id", "positive" },
		{ "--run-compression gzip", "--run-compression", "gzip" },
	};
	static const char *const columns[] = { "c,", ",c", "c,,k", "", " ", "c, ,k" };
	char *long_dir = repeat('d', 1100), *long_etcd = repeat('a', 600), *long_prefix = repeat('p', 200);
	t_run r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = t_bfillf("add-index --store '%s' --table sbtest1 --name x --columns c %s", store,
			     cases[i].flags);
		t_expect_cli_error(&r, 2, "bfill add-index: ", cases[i].flags, cases[i].needle1,
				   cases[i].needle2);
	}
	/* A resume is checked the same way before its job is read. */
	r = t_bfillf("add-index --store '%s' --resume --job-id 1 --etcd garbage", store);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "--resume --etcd garbage", "--etcd", NULL);
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		r = t_bfillf("add-index --store '%s' --table sbtest1 --name x --columns '%s'", store,
			     columns[i]);
		t_expect_cli_error(&r, 2, "bfill add-index: ", columns[i], "--columns", "empty column");
	}
	r = t_bfillf("add-index --store '%s' --table sbtest1 --name x --columns c --sort-dir /tmp/%s",
		     store, long_dir);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "long --sort-dir", "--sort-dir", "at most 1023");
	r = t_bfillf("add-index --store '%s' --table sbtest1 --name x --columns c --etcd %s:2379",
		     store, long_etcd);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "long --etcd", "--etcd", "at most 511");
	r = t_bfillf("add-index --store '%s' --table sbtest1 --name x --columns c --lock-prefix /%s",
		     store, long_prefix);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "long --lock-prefix", "--lock-prefix",
			   "at most 127");
	free(long_dir);
	free(long_etcd);
	free(long_prefix);
}

Test(cli_add_index, bad_usage_exits_2)
{
	char *store = new_store(100);
	t_run r;

#define ADD "add-index --store '%s' "
	r = t_bfillf("add-index --table sbtest1 --name x --columns c");
	t_expect_cli_error(&r, 2, "bfill ", "no --store", "--store", NULL);
	r = t_bfillf(ADD "--name x --columns c", store);
	t_expect_cli_error(&r, 2, "bfill ", "no --table", "--table", NULL);
	r = t_bfillf(ADD "--table sbtest1 --columns c", store);
	t_expect_cli_error(&r, 2, "bfill ", "--columns first", "--columns", "--name");
	r = t_bfillf(ADD "--table sbtest1", store);
	t_expect_cli_error(&r, 2, "bfill ", "no --name", "--name", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x", store);
	t_expect_cli_error(&r, 2, "bfill ", "no --columns", "'x'", "--columns");
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --bogus", store);
	t_expect_cli_error(&r, 2, "bfill ", "unknown option", "--bogus", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c extra", store);
	t_expect_cli_error(&r, 2, "bfill ", "positional argument", "extra", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --mem lots", store);
	t_expect_cli_error(&r, 2, "bfill ", "bad --mem", "--mem", "lots");
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --mem 16M", store);
	t_expect_cli_error(&r, 2, "bfill ", "tiny --mem", "--mem", "at least");
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --workers 0", store);
	t_expect_cli_error(&r, 2, "bfill ", "--workers 0", "--workers", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --workers two", store);
	t_expect_cli_error(&r, 2, "bfill ", "--workers two", "--workers", "two");
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --workers 1000", store);
	t_expect_cli_error(&r, 2, "bfill ", "--workers 1000", "--workers", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --import-every soon", store);
	t_expect_cli_error(&r, 2, "bfill ", "bad --import-every", "--import-every", NULL);
	r = t_bfillf(ADD "--resume", store);
	t_expect_cli_error(&r, 2, "bfill ", "--resume alone", "--job-id", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x --columns nope", store);
	t_expect_cli_error(&r, 2, "bfill ", "unknown column", "'nope'", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c,c", store);
	t_expect_cli_error(&r, 2, "bfill ", "column twice", "'c'", NULL);
	r = t_bfillf(ADD "--table sbtest1 --name x --columns c --name x --columns k", store);
	t_expect_cli_error(&r, 2, "bfill ", "index named twice", "'x'", NULL);
	flag_errors(store);
	r = t_bfillf("check-index --store '%s' --table sbtest1", store);
	t_expect_cli_error(&r, 2, "bfill ", "check-index without --name", "--name", NULL);
	r = t_bfillf("cancel --store '%s'", store);
	t_expect_cli_error(&r, 2, "bfill ", "cancel without --job", "--job", NULL);
#undef ADD
	cr_assert_eq(job_count(store), 0, "usage errors start no job");
	free(store);
}

Test(cli_add_index, failures_exit_1)
{
	char *store = new_store(100);
	char *missing = t_path_in(t_scratch_dir, "no-such-store");
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name k_idx --columns k", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);

	r = t_bfillf("add-index --store '%s' --table nosuch --name x --columns k", store);
	t_expect_cli_error(&r, 1, "bfill ", "unknown table", "'nosuch'", NULL);
	/* A newline in a value stays out of the one error line. */
	r = t_bfillf("add-index --store '%s' --table 'no\nsuch' --name x --columns k", store);
	t_expect_cli_error(&r, 1, "bfill ", "a table name with a newline", "'no\\x0asuch'", NULL);
	r = t_bfillf("add-index --store '%s' --table sbtest1 --name k_idx --columns c", store);
	t_expect_cli_error(&r, 1, "bfill ", "existing index", "'k_idx'", "already exists");
	r = t_bfillf("add-index --store '%s' --table sbtest1 --name x --columns k", missing);
	t_expect_cli_error(&r, 1, "bfill ", "missing store", "no-such-store", NULL);
	cr_assert_not(t_path_exists(missing), "a failed add-index creates no store");
	r = t_bfillf("check-index --store '%s' --table sbtest1 --name nosuch", store);
	t_expect_cli_error(&r, 1, "bfill ", "check of an unknown index", "'nosuch'", NULL);
	r = t_bfillf("status --store '%s' --job 42", store);
	t_expect_cli_error(&r, 1, "bfill ", "status of an unknown job", "42", NULL);
	r = t_bfillf("cancel --store '%s' --job 42", store);
	t_expect_cli_error(&r, 1, "bfill ", "cancel of an unknown job", "42", NULL);
	r = t_bfillf("cancel --store '%s' --job 1", store);
	t_expect_cli_error(&r, 1, "bfill ", "cancel of a done job", "done", NULL);

	cr_assert_eq(job_count(store), 1, "failed requests start no job");
	t_check_index_ok(store, "k_idx", 100);
	free(store);
	free(missing);
}

/* ---- --json ---- */

Test(cli_add_index, json_output_parses)
{
	char *store = new_store(5000);
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name c_idx --columns c"
			   " --name kc_idx --columns k,c --json", store);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	cr_assert_eq(t_count_lines(r.out), 1, "one JSON line: %s", r.out);
	cr_assert_str_eq(r.err, "");
	cJSON *o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "not JSON: %s", r.out);
	cr_assert_eq(t_json_num(o, "job_id"), 1);
	cr_assert_str_eq(t_json_field(o, "state")->valuestring, "done");
	cr_assert_str_eq(t_json_field(o, "table")->valuestring, "sbtest1");
	const cJSON *idx = t_json_field(o, "indexes");
	cr_assert(cJSON_IsArray(idx) && cJSON_GetArraySize(idx) == 2);
	cr_assert_str_eq(cJSON_GetArrayItem(idx, 0)->valuestring, "c_idx");
	cr_assert_str_eq(cJSON_GetArrayItem(idx, 1)->valuestring, "kc_idx");
	cr_assert(cJSON_IsFalse(t_json_field(o, "noop")));
	cr_assert_eq(t_json_num(o, "rows"), 5000);
	cr_assert_eq(t_json_num(o, "rows_total"), 5000);
	cr_assert_eq(t_json_num(o, "index_keys"), 10000);
	cr_assert_gt(t_json_num(o, "index_bytes"), 0);
	cr_assert_geq(t_json_num(o, "imports"), 1);
	cr_assert_geq(t_json_num(o, "sst_files"), 2, "at least one file per index");
	cr_assert_geq(t_json_num(o, "seconds"), 0);
	for (const char *const *k = (const char *const[]){ "scan_seconds", "import_seconds", "rows_per_s",
							   "mb_per_s", "peak_sort_dir_bytes", "lock_acquires",
							   "lock_wait_ms", "lock_wait_max_ms", "fence_losses",
							   NULL }; *k; k++)
		t_json_num(o, *k);
	cr_assert(cJSON_IsNull(t_json_field(o, "error")));
	cr_assert_eq(t_json_num(o, "rows_scanned"), 5000, "rows this run scanned");
	cr_assert(cJSON_IsString(t_json_field(o, "lock_key")));
	cr_assert(cJSON_IsNull(t_json_field(o, "outcome")), "a done job has no failure outcome");
	cr_assert(cJSON_IsFalse(t_json_field(o, "resumable")));
	cJSON_Delete(o);
	t_run_free(&r);

	/* A failed job in JSON: state and error, and still one line on stderr. */
	r = t_bfillf("add-index --store '%s' --table sbtest1 --name uk --columns k --unique --json", store);
	cr_assert_eq(r.status, 1, "unique k over duplicates: exit %d", r.status);
	cr_assert_eq(t_count_lines(r.err), 1, "one line on stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, "Duplicate entry '"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "' for key 'sbtest1.uk'"), "%s", r.err);
	o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "not JSON: %s", r.out);
	cr_assert_str_eq(t_json_field(o, "state")->valuestring, "failed");
	const cJSON *e = t_json_field(o, "error");
	cr_assert(cJSON_IsString(e) && !strncmp(e->valuestring, "Duplicate entry '", 17), "error: %s", r.out);
	cr_assert_str_eq(t_json_str(o, "outcome"), "rolled_back", "a duplicate is not resumable");
	cr_assert(cJSON_IsFalse(t_json_field(o, "resumable")));
	cr_assert_null(strstr(r.err, "--resume"), "no resume hint for a duplicate: %s", r.err);
	cJSON_Delete(o);
	t_run_free(&r);

	/* status --json and check-index --json parse too. */
	r = t_bfillf("status --store '%s' --json", store);
	cr_assert_eq(r.status, 0);
	o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "status: %s", r.out);
	const cJSON *jobs = t_json_field(o, "jobs");
	cr_assert_eq(cJSON_GetArraySize(jobs), 2);
	const cJSON *j1 = cJSON_GetArrayItem(jobs, 0), *j2 = cJSON_GetArrayItem(jobs, 1);
	cr_assert_str_eq(t_json_field(j1, "state")->valuestring, "done");
	cr_assert_eq(t_json_num(j1, "rows_done"), 5000);
	cr_assert_eq(t_json_num(t_json_field(j1, "checkpoint"), "imported_rows"), 5000);
	cr_assert_str_eq(t_json_field(j2, "state")->valuestring, "failed");
	cr_assert_not_null(strstr(t_json_field(j2, "last_error")->valuestring, "Duplicate entry"));
	cJSON_Delete(o);
	t_run_free(&r);

	r = t_bfillf("check-index --store '%s' --table sbtest1 --name kc_idx --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "check-index: %s", r.out);
	cr_assert(cJSON_IsTrue(t_json_field(o, "ok")));
	cr_assert_str_eq(t_json_field(o, "state")->valuestring, "public");
	cr_assert_eq(t_json_num(o, "expected"), 5000);
	cr_assert_eq(t_json_num(o, "found"), 5000);
	cr_assert_eq(t_json_num(o, "missing") + t_json_num(o, "extra") +
			     t_json_num(o, "wrong_value"), 0);
	cJSON_Delete(o);
	t_run_free(&r);

	/* A failure a retry can fix: resumable, and the line says how. */
	r = t_bfill_faultf("store.ingest", "add-index --store '%s' --table sbtest1 --name c2 --columns c"
			   " --json", store);
	cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
	cr_assert_eq(t_count_lines(r.err), 1, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "--resume --job-id 3"), "%s", r.err);
	o = t_json_parse(r.out, "add-index --json of a failed import");
	cr_assert_str_eq(t_json_str(o, "state"), "failed");
	cr_assert_str_eq(t_json_str(o, "outcome"), "resumable");
	cr_assert(cJSON_IsTrue(t_json_field(o, "resumable")));
	cr_assert_not_null(strstr(t_json_str(o, "error"), "injected"), "%s", r.out);
	cJSON_Delete(o);
	t_run_free(&r);
	free(store);
}

/* A table named we"ird\ (quote and backslash): every JSON output naming
 * it parses and gives the name back; an error naming it too. */
Test(cli_add_index, json_escapes_names)
{
	char *store = t_path_in(t_scratch_new("cliadd"), "store");
	const char *table = "we\"ird\\";
	t_run r = t_bfillf("gen --store '%s' --rows 300 --table 'we\"ird\\' --quiet", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);

	cJSON *o = t_bfill_jsonf("add-index --store '%s' --table 'we\"ird\\' --name c_idx --columns c"
				 " --json", store);
	cr_assert_str_eq(t_json_str(o, "table"), table);
	cr_assert_eq(t_json_num(o, "rows"), 300);
	cJSON_Delete(o);
	o = t_bfill_jsonf("status --store '%s' --json", store);
	cr_assert_str_eq(t_json_str(cJSON_GetArrayItem(t_json_field(o, "jobs"), 0), "table"), table);
	cJSON_Delete(o);
	o = t_bfill_jsonf("status --store '%s' --job 1 --json", store);
	cr_assert_str_eq(t_json_str(o, "table"), table);
	cJSON_Delete(o);
	o = t_bfill_jsonf("check-index --store '%s' --table 'we\"ird\\' --name c_idx --json", store);
	cr_assert(cJSON_IsTrue(t_json_field(o, "ok")));
	cJSON_Delete(o);

	/* A failure whose message quotes a name with a quote in it. */
	r = t_bfillf("add-index --store '%s' --table 'we\"ird\\' --name x --columns 'n\"o\\pe' --json",
		     store);
	cr_assert_eq(r.status, 2, "unknown column: exit %d: %s", r.status, r.err);
	cr_assert_eq(t_count_lines(r.err), 1, "%s", r.err);
	o = t_json_parse(r.out, "add-index --json of a refused spec");
	cr_assert_not_null(strstr(t_json_str(o, "error"), "n\"o\\pe"), "%s", r.out);
	cJSON_Delete(o);
	t_run_free(&r);

	/* --etcd none is the in-process lock. */
	r = t_bfillf("add-index --store '%s' --table 'we\"ird\\' --name k_idx --columns k --etcd none",
		     store);
	cr_assert_eq(r.status, 0, "--etcd none: %s", r.err);
	t_run_free(&r);
	free(store);
}

/* ---- check-index catches tampering ---- */

/* The index key of row `handle` in sbtest index `index` over column col. */
static size_t sbtest_key(const bf_table *t, const char *index, const t_rows *rows, int64_t handle,
			 uint8_t *key)
{
	int pos = bf_table_index(t, index);
	cr_assert_geq(pos, 0);
	const bf_index *x = &t->indexes[pos];
	const bf_datum *row = t_rows_get(rows, (size_t)(handle - 1));
	bf_datum cols[BF_MAX_INDEX_COLUMNS];
	for (int c = 0; c < x->ncols; c++)
		cols[c] = row[x->cols[c]];
	return bf_codec_index_key(key, t->id, x->id, cols, x->ncols, !x->unique, handle);
}

Test(cli_add_index, check_index_catches_tampering)
{
	char *store = new_store(2000);
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name c_idx --columns c"
			   " --name upad --columns pad --unique", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	t_check_index_ok(store, "c_idx", 2000);
	t_check_index_ok(store, "upad", 2000);

	/* Tamper through the library while no bfill process holds the store. */
	bf_store *st = t_table_open_store(store);
	bf_err err = { 0 };
	bf_table t;
	t_rows rows;
	uint8_t key[512], val[BF_INDEX_VALUE_MAX];
	t_table_get(st, "sbtest1", &t);
	t_rows_sbtest(&rows, &t, 9, 2000);
	size_t n = sbtest_key(&t, "c_idx", &rows, 10, key);
	char *got = NULL;
	size_t gotlen = 0;
	cr_assert_eq(bf_store_get(st, key, n, &got, &gotlen, NULL), 0, "the entry to delete is there");
	free(got);
	cr_assert_eq(bf_store_delete(st, key, n, &err), 0, "%s", bf_err_text(&err));
	/* An extra entry: row 11's key with a handle no row has. */
	n = sbtest_key(&t, "c_idx", &rows, 11, key);
	bf_codec_put_int(key + n - 8, 777777);
	cr_assert_eq(bf_store_put(st, key, n, "0", 1, &err), 0, "%s", bf_err_text(&err));
	/* A unique entry that names the wrong row. */
	n = sbtest_key(&t, "upad", &rows, 20, key);
	size_t vl = bf_codec_index_value(val, false, 21);
	cr_assert_eq(bf_store_put(st, key, n, val, vl, &err), 0, "%s", bf_err_text(&err));
	t_rows_free(&rows);
	bf_store_close(st);

	r = t_bfillf("check-index --store '%s' --table sbtest1 --name c_idx", store);
	cr_assert_eq(r.status, 1, "a damaged index fails the check: %s", r.out);
	cr_assert_not_null(strstr(r.out, "2000 rows"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "1 missing, 1 extra, 0 wrong value"), "counts: %s", r.out);
	cr_assert_not_null(strstr(r.out, "missing 74"), "an example key: %s", r.out);
	cr_assert_not_null(strstr(r.out, "extra 74"), "an example key: %s", r.out);
	cr_assert_eq(t_count_lines(r.err), 1, "one line on stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, "sbtest1.c_idx"), "%s", r.err);
	t_run_free(&r);

	r = t_bfillf("check-index --store '%s' --table sbtest1 --name upad", store);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.out, "0 missing, 0 extra, 1 wrong value"), "counts: %s", r.out);
	t_run_free(&r);

	r = t_bfillf("check-index --store '%s' --table sbtest1 --name c_idx --json", store);
	cr_assert_eq(r.status, 1);
	cJSON *o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "%s", r.out);
	cr_assert(cJSON_IsFalse(t_json_field(o, "ok")));
	cr_assert_eq(t_json_num(o, "rows"), 2000);
	cr_assert_eq(t_json_num(o, "expected"), 2000);
	cr_assert_eq(t_json_num(o, "found"), 2000);
	cr_assert_eq(t_json_num(o, "missing"), 1);
	cr_assert_eq(t_json_num(o, "extra"), 1);
	cr_assert_eq(t_json_num(o, "wrong_value"), 0);
	cr_assert_eq(cJSON_GetArraySize(t_json_field(o, "examples")), 2);
	cJSON_Delete(o);
	t_run_free(&r);
	free(store);
}

/* ---- status while a job runs in another process ---- */

/* A second add-index on a store that a running job holds is refused
 * with one line, unless the job ended in the meantime. */
static void second_writer_refused(const char *store, int *job_status)
{
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name k_idx --columns k", store);
	if (r.status == 0) {
		cr_assert_eq(waitpid(bg_pid, job_status, WNOHANG), bg_pid,
			     "a second add-index ran while the first job held the store");
		bg_pid = 0;
		t_run_free(&r);
		return;
	}
	t_expect_cli_error(&r, 1, "bfill ", "second writer", "another process", NULL);
}

Test(cli_add_index, status_while_running)
{
	char *store = new_store(1000000);
	char *log = t_path_in(t_scratch_dir, "job.log");
	int running = 0, calls = 0, st = 0;

	bg_pid = t_spawn_bfillf(log, "add-index --store '%s' --table sbtest1 --name c_idx --columns c"
				" --workers 1 --job-id 1 --quiet", store);
	for (;;) {
		if (!bg_pid || waitpid(bg_pid, &st, WNOHANG) == bg_pid) {
			bg_pid = 0;
			break;
		}
		t_run r = t_bfillf("status --store '%s' --json", store);
		calls++;
		cr_assert_eq(r.status, 0, "status while add-index runs: exit %d: %s", r.status, r.err);
		cJSON *o = cJSON_Parse(r.out);
		cr_assert_not_null(o, "status output is JSON: %s", r.out);
		const cJSON *jobs = t_json_field(o, "jobs");
		if (cJSON_GetArraySize(jobs) == 1) {
			const cJSON *j = cJSON_GetArrayItem(jobs, 0);
			const char *state = t_json_field(j, "state")->valuestring;
			if (!strcmp(state, "running")) {
				running++;
				cr_assert(cJSON_IsTrue(t_json_field(j, "alive")),
					  "the running job's process is alive");
				cr_assert_eq(t_json_num(j, "pid"), bg_pid);
				cr_assert_eq(t_json_num(j, "rows_total"), 1000000);
				if (running == 1)
					second_writer_refused(store, &st);
			} else {
				cr_assert(!strcmp(state, "queueing") || !strcmp(state, "done"),
					  "state %s while the job runs", state);
			}
		}
		cJSON_Delete(o);
		t_run_free(&r);
		usleep(50000);
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "add-index failed; see %s", log);
	cr_log_info("status answered %d times, %d of them 'running'", calls, running);
	cr_assert_geq(running, 2, "status saw the job running %d times in %d calls", running, calls);

	t_run r = t_bfillf("status --store '%s'", store);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "state done"), "%s", r.out);
	t_run_free(&r);
	free(log);
	free(store);
}

/* ---- cancel ---- */

Test(cli_add_index, cancel_failed_job)
{
	char *store = new_store(20000);
	char *jobdir = NULL;
	t_run r = t_bfill_faultf("store.ingest", "add-index --store '%s' --table sbtest1 --name c_idx"
				 " --columns c", store);
	t_expect_cli_error(&r, 1, "bfill ", "failed import", "injected", "--resume --job-id 1");

	/* A leftover entry in the failed index's range, as a crash between an
	 * ingest and the clean-up would leave it. */
	bf_store *st = t_table_open_store(store);
	bf_table t;
	uint8_t key[64];
	bf_err err = { 0 };
	t_table_get(st, "sbtest1", &t);
	int pos = bf_table_index(&t, "c_idx");
	cr_assert_geq(pos, 0);
	int64_t iid = t.indexes[pos].id;
	bf_datum d = bf_datum_bytes("leftover", 8);
	size_t n = bf_codec_index_key(key, t.id, iid, &d, 1, true, 5);
	cr_assert_eq(bf_store_put(st, key, n, "0", 1, &err), 0, "%s", bf_err_text(&err));
	bf_store_close(st);

	r = t_bfillf("cancel --store '%s' --job 1", store);
	cr_assert_eq(r.status, 0, "cancel: exit %d: %s", r.status, r.err);
	cr_assert_str_eq(r.out, "job 1 cancelled\n");
	cr_assert_str_eq(r.err, "");
	t_run_free(&r);

	st = t_table_open_store(store);
	t_table_get(st, "sbtest1", &t);
	cr_assert_lt(bf_table_index(&t, "c_idx"), 0, "cancel drops the index");
	cr_assert_eq(t_table_index_count(st, t.id, iid), 0, "cancel removes the index's entries");
	bf_store_close(st);
	cr_assert_geq(asprintf(&jobdir, "%s.sort/job-1", store), 0);
	cr_assert_not(t_path_exists(jobdir), "cancel removes the job's sort files");

	r = t_bfillf("status --store '%s'", store);
	cr_assert_not_null(strstr(r.out, "state cancelled"), "%s", r.out);
	t_run_free(&r);
	r = t_bfillf("check-index --store '%s' --table sbtest1 --name c_idx", store);
	t_expect_cli_error(&r, 1, "bfill ", "check of a cancelled index", "does not exist", NULL);
	r = t_bfillf("add-index --store '%s' --resume --job-id 1", store);
	t_expect_cli_error(&r, 1, "bfill ", "resume of a cancelled job", "cancelled", NULL);

	/* The name is free again. */
	r = t_bfillf("add-index --store '%s' --table sbtest1 --name c_idx --columns c", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	t_check_index_ok(store, "c_idx", 20000);
	free(jobdir);
	free(store);
}

/* Relative --store and --sort-dir are recorded as absolute paths, so a
 * resume or a cancel run from another directory finds the sort files. */
Test(cli_add_index, relative_paths_work_from_anywhere)
{
	char *dir = t_scratch_new("relpaths");
	char *store = t_path_in(dir, "rel");
	char *sortjob = t_path_in(dir, "relsort/job-1");
	char *cmd = NULL;
	t_bfill_gen(store, 5000, 2);

	cr_assert_geq(asprintf(&cmd, "cd '%s' && BFILL_FAULT=store.ingest '%s' add-index --store rel"
			       " --sort-dir relsort --table sbtest1 --name c_idx --columns c --json",
			       dir, t_bfill()), 0);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 1, "the injected failure: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "add-index --json");
	t_run_free(&r);
	cJSON_Delete(j);
	cr_assert(t_path_exists(sortjob), "the failed job keeps its sort files for a resume");

	r = t_bfillf("status --store '%s' --job 1 --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	/* From / : the job's paths still mean the same directories. */
	free(cmd);
	cr_assert_geq(asprintf(&cmd, "cd / && '%s' cancel --store '%s' --job 1", t_bfill(), store), 0);
	char *argv2[] = { "/bin/sh", "-c", cmd, NULL };
	r = t_exec(argv2, NULL);
	cr_assert_eq(r.status, 0, "cancel from /: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	cr_assert_not(t_path_exists(sortjob), "cancel from another directory removed the sort files");
	free(cmd);
	free(sortjob);
	free(store);
}

/* A job started against an etcd that never answered can be resumed with
 * the in-process lock: --resume overrides what the job recorded. */
Test(cli_add_index, resume_goes_back_to_the_in_process_lock)
{
	char *store = new_store(3000);
	t_run r = t_bfillf("add-index --store '%s' --table sbtest1 --name c_idx --columns c"
			   " --etcd 127.0.0.1:1 --lock-timeout 1", store);
	t_expect_cli_error(&r, 1, "bfill ", "unreachable etcd", "gave up", "--resume --job-id 1");
	r = t_bfillf("add-index --store '%s' --resume --job-id 1 --etcd none --json", store);
	cr_assert_eq(r.status, 0, "resume with --etcd none: exit %d: %s", r.status, r.err);
	cJSON *j = t_json_parse(r.out, "add-index --json");
	cr_assert_str_eq(t_json_str(j, "state"), "done");
	cJSON_Delete(j);
	t_run_free(&r);
	t_check_index_ok(store, "c_idx", 3000);
	free(store);
}

/* ---- memory budget ---- */

#define MEM_ROWS 1000000
#define MEM_BUDGET_MB 32 /* the smallest --mem */
#define MEM_SLACK_MB 64

/* Runs bfill with argv directly (no shell, so rusage is bfill's own),
 * stdout and stderr to out_path; returns the exit status and peak RSS in
 * KiB. */
static int run_measured(char *const argv[], const char *fault, const char *out_path, long *maxrss_kb)
{
	struct rusage ru;
	int st;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (!freopen(out_path, "w", stdout) || dup2(fileno(stdout), 2) < 0)
			_exit(126);
		if (fault)
			setenv("BFILL_FAULT", fault, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	bg_pid = pid;
	cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
	bg_pid = 0;
	*maxrss_kb = ru.ru_maxrss;
	cr_assert(WIFEXITED(st), "bfill died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

Test(cli_add_index, memory_budget_respected)
{
	char *store = new_store(MEM_ROWS);
	char *out = t_path_in(t_scratch_dir, "out.json");
	char bin[4096], mem[16];
	long rss_kb = 0;
	snprintf(bin, sizeof(bin), "%s", t_bfill());
	snprintf(mem, sizeof(mem), "%dM", MEM_BUDGET_MB);

	/* The c index of 1M rows is ~165 MB of entries; the sort buffers get
	 * half of a budget this small, so it spills some twenty runs. */
	char *argv[] = { bin, "add-index", "--store", store, "--table", "sbtest1", "--name", "c_idx",
			 "--columns", "c", "--mem", mem, "--workers", "2", "--json", NULL };
	int code = run_measured(argv, NULL, out, &rss_kb);
	char *json = t_read_file(out);
	cr_assert_eq(code, 0, "add-index --mem %s: exit %d: %s", mem, code, json);
	cr_assert_eq(t_count_lines(json), 1, "only the JSON line: %s", json);
	cJSON *o = cJSON_Parse(json);
	cr_assert_not_null(o, "%s", json);
	double bytes = t_json_num(o, "index_bytes");
	cr_assert_eq(t_json_num(o, "index_keys"), MEM_ROWS);
	cr_assert_gt(bytes, 1.2 * MEM_BUDGET_MB * 1048576, "the entries exceed the budget");
	cr_log_info("--mem %s: %.0f MB of entries, peak sort dir %.0f MB, peak RSS %ld MiB", mem,
		    bytes / 1e6, t_json_num(o, "peak_sort_dir_bytes") / 1e6, rss_kb / 1024);
	cJSON_Delete(o);
	free(json);
	t_check_index_ok(store, "c_idx", MEM_ROWS);

	/* The engine spilled: with the run writer failing at its 3rd write,
	 * the same build fails, so it wrote at least three runs (the last
	 * import merges what is left in memory without writing one). */
	char *argv2[] = { bin, "add-index", "--store", store, "--table", "sbtest1", "--name", "c2",
			  "--columns", "c", "--mem", mem, "--workers", "2", "--json", NULL };
	long rss2 = 0;
	code = run_measured(argv2, "engine.write@3", out, &rss2);
	json = t_read_file(out);
	cr_assert_eq(code, 1, "with engine.write@3 the build must reach a third run write: %s", json);
	cr_assert_not_null(strstr(json, "injected write failure"), "%s", json);

	cr_assert_leq(rss_kb, (long)(MEM_BUDGET_MB + MEM_SLACK_MB) * 1024,
		      "peak RSS %ld MiB exceeds --mem %dM + %d MiB", rss_kb / 1024, MEM_BUDGET_MB,
		      MEM_SLACK_MB);
	free(json);
	free(out);
	free(store);
}
