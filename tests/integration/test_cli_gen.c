/*
 * `bfill gen` and `bfill dump` as a user runs them: exit codes, one-line
 * errors on stderr, TSV output and --json.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/support.h"
#include "util/util.h"

/* Each test's scratch directory goes in the suite's fini, even when an
 * assertion ends the test early. */
TestSuite(cli_gen, .fini = t_scratch_remove);

/* Checks a dump of a sysbench table of `rows` rows, `lines` of them shown. */
static void check_dump(const char *out, long rows, long lines)
{
	const char *line = out, *nl;
	long n = 0;

	cr_assert_eq((long)t_count_lines(out), lines + 1, "header + %ld lines, got %zu", lines,
		     t_count_lines(out));
	nl = strchr(line, '\n');
	cr_assert(nl && (size_t)(nl - line) == strlen("id\tk\tc\tpad") &&
			  !strncmp(line, "id\tk\tc\tpad", (size_t)(nl - line)),
		  "header: %.*s", nl ? (int)(nl - line) : 40, line);
	for (line = nl + 1; *line; line = nl + 1, n++) {
		nl = strchr(line, '\n');
		cr_assert_not_null(nl);
		const char *f[4], *end[4], *p = line;
		for (int i = 0; i < 4; i++) {
			f[i] = p;
			while (p < nl && *p != '\t')
				p++;
			end[i] = p;
			cr_assert(i == 3 ? p == nl : *p == '\t', "line %ld: want 4 tab-separated fields: %.*s",
				  n + 1, (int)(nl - line), line);
			p++;
		}
		char *stop;
		long id = strtol(f[0], &stop, 10), k = strtol(f[1], NULL, 10);
		cr_assert(stop == end[0] && id == n + 1, "line %ld: id %.*s", n + 1,
			  (int)(end[0] - f[0]), f[0]);
		cr_assert(k >= 1 && k <= rows, "line %ld: k = %ld", n + 1, k);
		cr_assert(t_is_digit_groups(f[2], (size_t)(end[2] - f[2]), 10), "line %ld: c = %.*s",
			  n + 1, (int)(end[2] - f[2]), f[2]);
		cr_assert(t_is_digit_groups(f[3], (size_t)(end[3] - f[3]), 5), "line %ld: pad = %.*s",
			  n + 1, (int)(end[3] - f[3]), f[3]);
	}
	cr_assert_eq(n, lines);
}

Test(cli_gen, gen_then_dump, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");

	t_run r = t_bfillf("gen --store '%s' --rows 500 --seed 3", store);
	cr_assert_eq(r.status, 0, "gen: exit %d: %s", r.status, r.err);
	cr_assert_eq(t_count_lines(r.out), 1, "one summary line: %s", r.out);
	cr_assert_not_null(strstr(r.out, "500 rows"), "summary: %s", r.out);
	cr_assert_str_eq(r.err, "", "a short run prints nothing on stderr");
	t_run_free(&r);

	r = t_bfillf("dump --store '%s' --table sbtest1", store);
	cr_assert_eq(r.status, 0, "dump: exit %d: %s", r.status, r.err);
	check_dump(r.out, 500, 500);
	cr_assert_str_eq(r.err, "");
	char *full = r.out;
	r.out = NULL;
	t_run_free(&r);

	r = t_bfillf("dump --store '%s' --table sbtest1 --limit 7", store);
	cr_assert_eq(r.status, 0);
	check_dump(r.out, 500, 7);
	/* --limit shows a prefix of the full dump. */
	cr_assert(!strncmp(r.out, full, strlen(r.out)), "--limit 7 is the first 7 rows");
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table sbtest1 --limit 0", store);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "id\tk\tc\tpad\n");
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table sbtest1 --limit 100000", store);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, full, "a limit beyond the table shows it all");
	t_run_free(&r);

	/* The same seed in another store dumps the same rows; another seed does not. */
	char *same = t_path_in(tmp, "same"), *other = t_path_in(tmp, "other");
	r = t_bfillf("gen --store '%s' --rows 500 --seed 3 --threads 1 --quiet", same);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "", "--quiet prints nothing");
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table sbtest1", same);
	cr_assert_str_eq(r.out, full, "same seed, same rows");
	t_run_free(&r);
	r = t_bfillf("gen --store '%s' --rows 500 --seed 4 --quiet", other);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table sbtest1", other);
	check_dump(r.out, 500, 500);
	cr_assert_str_neq(r.out, full, "another seed, other rows");
	t_run_free(&r);

	free(full);
	free(same);
	free(other);
	free(store);
}

Test(cli_gen, named_table_and_empty_table, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");

	t_run r = t_bfillf("gen --store '%s' --rows 0 --table empty_one", store);
	cr_assert_eq(r.status, 0, "--rows 0: exit %d: %s", r.status, r.err);
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table empty_one", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "id\tk\tc\tpad\n", "an empty table dumps its header only");
	t_run_free(&r);

	/* A second table in the same store. */
	r = t_bfillf("gen --store '%s' --rows 20 --table t2 --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "\"table_id\":101"), "second table id: %s", r.out);
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table t2", store);
	check_dump(r.out, 20, 20);
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table sbtest1", store);
	t_expect_cli_error(&r, 1, "bfill", "dump of a table never made", "sbtest1", "does not exist");
	free(store);
}

Test(cli_gen, json_output_parses, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");

	t_run r = t_bfillf("gen --store '%s' --rows 1234 --seed 5 --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(t_count_lines(r.out), 1, "one JSON line: %s", r.out);
	cr_assert_str_eq(r.err, "", "--json keeps stderr quiet");
	cJSON *o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "not JSON: %s", r.out);
	const cJSON *table = cJSON_GetObjectItemCaseSensitive(o, "table");
	const cJSON *tid = cJSON_GetObjectItemCaseSensitive(o, "table_id");
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
	const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(o, "bytes");
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(o, "files");
	const cJSON *secs = cJSON_GetObjectItemCaseSensitive(o, "seconds");
	const cJSON *rate = cJSON_GetObjectItemCaseSensitive(o, "rows_per_s");
	cr_assert(cJSON_IsString(table) && !strcmp(table->valuestring, "sbtest1"));
	cr_assert(cJSON_IsNumber(tid) && tid->valuedouble == 100);
	cr_assert(cJSON_IsNumber(rows) && rows->valuedouble == 1234);
	/* Each row: a 19-byte key and a value of 6 + 3 + 6 + k + 119 + 59 bytes. */
	cr_assert(cJSON_IsNumber(bytes) && bytes->valuedouble >= 1234.0 * (19 + 6 + 3 + 6 + 1 + 178) &&
			  bytes->valuedouble <= 1234.0 * (19 + 6 + 3 + 6 + 2 + 178),
		  "bytes %.0f", bytes->valuedouble);
	cr_assert(cJSON_IsNumber(files) && files->valuedouble >= 1);
	cr_assert(cJSON_IsNumber(secs) && secs->valuedouble >= 0);
	cr_assert(cJSON_IsNumber(rate) && rate->valuedouble >= 0);
	cJSON_Delete(o);
	t_run_free(&r);
	free(store);
}

/* Names TiDB accepts quoted are kept as given, quotes and backslashes
 * included, and every JSON output that shows one still parses. */
Test(cli_gen, odd_table_name_round_trips, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");
	const char *name = "we\"ird\\ 'n' {}";

	/* The shell quoting: the name has single quotes of its own. */
	cJSON *o = t_bfill_jsonf("gen --store '%s' --rows 50 --table \"we\\\"ird\\\\ 'n' {}\" --json",
				 store);
	cr_assert_str_eq(t_json_str(o, "table"), name);
	cr_assert_eq(t_json_num(o, "rows"), 50);
	cJSON_Delete(o);
	t_run r = t_bfillf("dump --store '%s' --table \"we\\\"ird\\\\ 'n' {}\" --limit 3", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(t_count_lines(r.out), 4, "%s", r.out);
	t_run_free(&r);
	free(store);
}

Test(cli_gen, usage_errors_exit_2, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");
	static const struct { const char *args, *needle1, *needle2; } cases[] = {
		{ "gen", "--store", NULL },
		{ "gen --rows 10", "--store", NULL },
		{ "gen --store '%s'", "--rows", NULL },
		{ "gen --store '%s' --rows -5", "--rows", "-5" },
		{ "gen --store '%s' --rows abc", "--rows", "abc" },
		{ "gen --store '%s' --rows 12x", "--rows", "12x" },
		{ "gen --store '%s' --rows ''", "--rows", NULL },
		{ "gen --store '%s' --rows 1e6", "--rows", "1e6" },
		{ "gen --store '%s' --rows 99999999999999999999", "--rows", NULL },
		{ "gen --store '%s' --rows 10 --seed -1", "--seed", "-1" },
		{ "gen --store '%s' --rows 10 --bogus", "unknown option", "--bogus" },
		{ "gen --store '%s' --rows", "--rows", "value" },
		{ "gen --store '%s' --rows 10 extra", "unexpected argument", "extra" },
		{ "gen --store '%s' --rows 10 --compression gzip", "--compression", NULL },
		{ "gen --store '%s' --rows 10 --threads 65", "--threads", NULL },
		{ "gen --store '%s' --rows 10 --table ''", "--table", NULL },
		{ "gen --store '%s' --rows 10 --table 'a\tb'", "--table", "control character" },
		{ "gen --store '%s' --rows 10 --table 'a\nb'", "--table", "control character" },
		{ "gen --store '%s' --rows 10 --table 'trailing '", "--table", "trailing space" },
		{ "gen --store '%s' --rows 10 --table "
		  "'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm'", "--table", NULL },
		{ "gen --store '%s' --rows 10 --threads abc", "--threads", "abc" },
		{ "gen --store '%s' --rows 10 --threads -1", "--threads", "0..64" },
		{ "dump --store '%s'", "--table", NULL },
		{ "dump --table sbtest1", "--store", NULL },
		{ "dump --store '%s' --table sbtest1 --limit -1", "--limit", NULL },
		{ "frobnicate --store '%s'", "frobnicate", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char what[256];
		/* Every format has at most one %s: the store path. */
		snprintf(what, sizeof(what), cases[i].args, store);
		t_run r = t_bfillf(cases[i].args, store);
		t_expect_cli_error(&r, 2, "bfill", what, cases[i].needle1, cases[i].needle2);
		cr_assert(!t_path_exists(store), "%s: a usage error must not create the store", what);
	}

	/* bfill with no command is a usage error too (the usage text is several lines). */
	t_run r = t_bfillf("%s", "");
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
	r = t_bfillf("gen --help");
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "--rows"), "help text: %s", r.out);
	t_run_free(&r);
	free(store);
}

Test(cli_gen, more_rows_than_the_disk_holds_are_refused_at_once, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");
	/* ulimit -f only bounds the harm should the check go missing: the
	 * load would then write until the disk is full. */
	char *const argv[] = { "/bin/sh", "-c",
			       "ulimit -f 32768; exec \"$0\" gen --store \"$1\" --rows 9223372036854775807",
			       (char *)t_bfill(), store, NULL };
	int64_t t0 = bf_now_ms();
	t_run r = t_exec(argv, NULL);

	cr_assert(!r.signaled, "the load ran: %s", r.err);
	t_expect_cli_error(&r, 1, "bfill gen: ", "gen of 2^63-1 rows", "free on its file system",
			   "needs at least");
	cr_assert_lt(bf_now_ms() - t0, 5000, "refused at once");
	cr_assert_lt(bf_du(store), 1u << 20, "no row was written: %llu bytes",
		     (unsigned long long)bf_du(store));
	free(store);
}

Test(cli_gen, existing_table_fails_and_changes_nothing, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");

	t_run r = t_bfillf("gen --store '%s' --rows 300 --seed 1 --quiet", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	r = t_bfillf("dump --store '%s' --table sbtest1", store);
	cr_assert_eq(r.status, 0);
	char *before = r.out;
	r.out = NULL;
	t_run_free(&r);

	r = t_bfillf("gen --store '%s' --rows 10 --seed 2", store);
	t_expect_cli_error(&r, 1, "bfill", "gen over an existing table", "sbtest1", "already exists");
	r = t_bfillf("dump --store '%s' --table sbtest1", store);
	cr_assert_str_eq(r.out, before, "the refused gen changed the table");
	t_run_free(&r);
	/* A later table still gets the next id: the refusal used none. */
	r = t_bfillf("gen --store '%s' --rows 1 --table sbtest2 --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "\"table_id\":101"), "%s", r.out);
	t_run_free(&r);
	free(before);
	free(store);
}

Test(cli_gen, store_that_is_not_a_store_fails, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *file = t_path_in(tmp, "notes.txt");
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("keep me\n", f);
	fclose(f);

	t_run r = t_bfillf("gen --store '%s' --rows 10", tmp);
	t_expect_cli_error(&r, 1, "bfill", "gen into a directory of other files", tmp, "not a bfill store");
	r = t_bfillf("dump --store '%s' --table sbtest1", tmp);
	t_expect_cli_error(&r, 1, "bfill", "dump of a directory of other files", "not a bfill store", NULL);
	/* A regular file where the store should be. */
	r = t_bfillf("gen --store '%s' --rows 10", file);
	t_expect_cli_error(&r, 1, "bfill", "gen into a regular file", file, NULL);
	/* Dump never creates a store. */
	char *absent = t_path_in(tmp, "absent");
	r = t_bfillf("dump --store '%s' --table sbtest1", absent);
	t_expect_cli_error(&r, 1, "bfill", "dump of a missing store", absent, "does not exist");
	cr_assert(!t_path_exists(absent));

	/* Nothing was added next to the user's file. */
	DIR *d = opendir(tmp);
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	closedir(d);
	cr_assert_eq(entries, 1, "the directory gained files");
	free(absent);
	free(file);
}

/* True once the gen process `pid` has the store open and is loading: its
 * scratch directory bfill-gen.<pid>.tmp exists inside the store. */
static bool gen_is_loading(const char *store, int pid)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/bfill-gen.%d.tmp", store, pid);
	return t_path_exists(p);
}

Test(cli_gen, store_locked_by_running_gen_fails, .init = t_need_bfill)
{
	char *tmp = t_scratch_new("cli");
	char *store = t_path_in(tmp, "store");
	char *log = t_path_in(tmp, "bg.log");
	int status = 0;

	/* A long single-threaded load holds the store; it is killed as soon as
	 * the second process has been refused. No assertion runs while it
	 * lives, so a failure cannot leave it behind. */
	int pid = t_spawn_bfillf(log, "gen --store '%s' --rows 20000000 --threads 1 --quiet", store);
	bool loading = false;
	for (int waited = 0; waited < 10000 && !loading; waited += 5) {
		loading = gen_is_loading(store, pid);
		if (!loading) {
			if (waitpid(pid, &status, WNOHANG) == pid) {
				pid = -1;
				break;
			}
			bf_sleep_ms(5);
		}
	}
	t_run r = { 0 };
	bool still_loading = false;
	if (loading) {
		r = t_bfillf("gen --store '%s' --rows 10 --table other", store);
		still_loading = gen_is_loading(store, pid);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}

	cr_assert(loading, "the background gen never started loading (see %s)", log);
	cr_assert(still_loading, "the background gen finished before the check; the result "
				 "does not show locking");
	t_expect_cli_error(&r, 1, "bfill", "gen into a store another bfill holds", "another process", store);
	free(log);
	free(store);
}
