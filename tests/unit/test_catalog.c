/*
 * catalog: column types, names, table and job records round-tripped
 * through a real store, damaged records, id counters that never hand an
 * id out twice, fences, and decoding a row's columns by the schema.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/error.h"
#include "bfill/store.h"
#include "tests/support/records.h"
#include "tests/support/support.h"

/* Each test's scratch directory goes in the suite's fini, even when an
 * assertion ends the test early. */
TestSuite(catalog, .fini = t_scratch_remove);

static bf_store *open_store(const char *dir, unsigned flags)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	cr_assert_eq(bf_store_open(dir, flags, &st, &err), 0, "open %s: %s", dir, bf_err_text(&err));
	return st;
}

/* ---- column types ---- */

Test(catalog, coltype_round_trips)
{
	static const struct { const char *text; bf_coltype type; int len; } cases[] = {
		{ "tinyint", BF_COL_INT, 1 },
		{ "smallint", BF_COL_INT, 2 },
		{ "mediumint", BF_COL_INT, 3 },
		{ "int", BF_COL_INT, 4 },
		{ "bigint", BF_COL_INT, 8 },
		{ "tinyint unsigned", BF_COL_UINT, 1 },
		{ "smallint unsigned", BF_COL_UINT, 2 },
		{ "mediumint unsigned", BF_COL_UINT, 3 },
		{ "int unsigned", BF_COL_UINT, 4 },
		{ "bigint unsigned", BF_COL_UINT, 8 },
		{ "char(1)", BF_COL_CHAR, 1 },
		{ "char(120)", BF_COL_CHAR, 120 },
		{ "char(255)", BF_COL_CHAR, 255 },
		{ "varchar(1)", BF_COL_VARCHAR, 1 },
		{ "varchar(64)", BF_COL_VARCHAR, 64 },
		{ "varchar(65535)", BF_COL_VARCHAR, 65535 },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bf_column c = { .type = BF_COL_VARCHAR, .len = -1 };
		cr_assert_eq(bf_coltype_parse(cases[i].text, &c), 0, "parse '%s'", cases[i].text);
		cr_assert_eq(c.type, cases[i].type, "'%s' type", cases[i].text);
		cr_assert_eq(c.len, cases[i].len, "'%s' len %d", cases[i].text, c.len);
		cr_assert_str_eq(bf_coltype_format(&c, buf, sizeof(buf)), cases[i].text);
	}
	/* Case does not matter on input; output is canonical lower case. */
	bf_column c;
	cr_assert_eq(bf_coltype_parse("BIGINT UNSIGNED", &c), 0);
	cr_assert_str_eq(bf_coltype_format(&c, buf, sizeof(buf)), "bigint unsigned");
	cr_assert_eq(bf_coltype_parse("Char(60)", &c), 0);
	cr_assert_str_eq(bf_coltype_format(&c, buf, sizeof(buf)), "char(60)");
	/* The formatter bounds its output. */
	char tiny[5];
	cr_assert_str_eq(bf_coltype_format(&c, tiny, sizeof(tiny)), "char");
}

Test(catalog, coltype_rejects)
{
	static const char *const bad[] = {
		"", "integer", "bigint signed", "bigint unsigned zerofill", "int(11)", " int",
		"int ", "bigintx", "text", "blob", "char", "char()", "char(0)", "char(256)",
		"char(-1)", "char(10", "char(10]", "char(10)x", "char(10) ", "char(x)",
		"varchar(0)", "varchar(65536)", "varchar(12", "varchar(12))", "varchar",
		"char(1)char(1)",
		"a type name far too long to fit in the parser's buffer of sixty-four chars",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bf_column c = { .type = BF_COL_INT, .len = 8 };
		cr_assert_eq(bf_coltype_parse(bad[i], &c), BF_EINVAL, "'%s' was accepted", bad[i]);
	}
}

Test(catalog, state_names)
{
	cr_assert_str_eq(bf_index_state_name(BF_INDEX_NONE), "none");
	cr_assert_str_eq(bf_index_state_name(BF_INDEX_WRITE_REORG), "write-reorg");
	cr_assert_str_eq(bf_index_state_name(BF_INDEX_PUBLIC), "public");
	cr_assert_str_eq(bf_index_state_name((bf_index_state)17), "unknown");

	const bf_job_state all[] = { BF_JOB_QUEUEING, BF_JOB_RUNNING, BF_JOB_DONE,
				     BF_JOB_FAILED, BF_JOB_CANCELLED, BF_JOB_PAUSED };
	const char *const names[] = { "queueing", "running", "done", "failed", "cancelled", "paused" };
	for (size_t i = 0; i < 6; i++) {
		bf_job_state s = (bf_job_state)-1;
		cr_assert_str_eq(bf_job_state_name(all[i]), names[i]);
		cr_assert_eq(bf_job_state_parse(names[i], &s), 0);
		cr_assert_eq(s, all[i]);
	}
	bf_job_state s = BF_JOB_PAUSED;
	cr_assert_eq(bf_job_state_parse("Done", &s), BF_EINVAL);
	cr_assert_eq(bf_job_state_parse("", &s), BF_EINVAL);
	cr_assert_eq(s, BF_JOB_PAUSED);
	cr_assert_str_eq(bf_job_state_name((bf_job_state)99), "unknown");
	/* Only done and cancelled are final; a failed or paused job can resume. */
	cr_assert(bf_job_state_final(BF_JOB_DONE));
	cr_assert(bf_job_state_final(BF_JOB_CANCELLED));
	cr_assert(!bf_job_state_final(BF_JOB_FAILED));
	cr_assert(!bf_job_state_final(BF_JOB_PAUSED));
	cr_assert(!bf_job_state_final(BF_JOB_RUNNING));
	cr_assert(!bf_job_state_final(BF_JOB_QUEUEING));
}

/* ---- names ---- */

static char *repeat(const char *unit, int n)
{
	size_t len = strlen(unit);
	char *s = malloc(len * (size_t)n + 1);
	for (int i = 0; i < n; i++)
		memcpy(s + len * (size_t)i, unit, len);
	s[len * (size_t)n] = '\0';
	return s;
}

Test(catalog, names_follow_tidb)
{
	static const char *const good[] = {
		"a", "sbtest1", "we\"ird\\", "it's", "`back`", " leading space", "in side", "$x",
		"a-b.c", "\xe5\x90\x8d\xe5\xad\x97", "emoji \xf0\x9f\x98\x80", "nbsp\xc2\xa0",
		"\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
	};
	static const char *const bad[] = {
		"", " ", "trailing ", "a\n", "a\tb", "\r", "x\x7f", "nel\xc2\x85", "c1\xc2\x80",
		"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xe5\x90", "\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80", "a\x01", "\x1b[31mred",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(bf_name_valid(good[i]), "\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!bf_name_valid(bad[i]), "bad name %zu accepted", i);
	cr_assert(!bf_name_valid(NULL));

	/* 64 characters, however many bytes each takes; not 65. */
	static const char *const units[] = { "x", "\xc3\xa9", "\xe5\x90\x8d", "\xf0\x9f\x98\x80" };
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		char *s = repeat(units[i], BF_NAME_CHARS);
		cr_assert(bf_name_valid(s), "64 x %zu-byte characters refused", i + 1);
		cr_assert_lt(strlen(s), (size_t)BF_NAME_MAX, "and it fits a name field");
		free(s);
		s = repeat(units[i], BF_NAME_CHARS + 1);
		cr_assert(!bf_name_valid(s), "65 x %zu-byte characters accepted", i + 1);
		free(s);
	}
}

/* ---- tables ---- */

Test(catalog, sbtest_schema)
{
	bf_table t;
	char buf[32];
	static const char *const names[] = { "id", "k", "c", "pad" };
	static const char *const types[] = { "bigint", "int", "char(120)", "char(60)" };

	bf_table_sbtest(&t, "sbtest7");
	cr_assert_str_eq(t.name, "sbtest7");
	cr_assert_eq(t.ncols, 4);
	cr_assert_eq(t.handle_col, 0);
	cr_assert_eq(t.nindexes, 0);
	cr_assert_eq(t.next_index_id, 1);
	for (int i = 0; i < 4; i++) {
		cr_assert_str_eq(t.cols[i].name, names[i]);
		cr_assert_eq(t.cols[i].id, i + 1, "column %s id", names[i]);
		cr_assert_str_eq(bf_coltype_format(&t.cols[i], buf, sizeof(buf)), types[i]);
		cr_assert(t.cols[i].not_null);
		cr_assert_eq(bf_table_column(&t, names[i]), i);
	}
	cr_assert_eq(bf_table_column(&t, "nope"), -1);
	cr_assert_eq(bf_table_index(&t, "k_1"), -1);
	cr_assert_eq(bf_table_index_by_id(&t, 1), -1);
}

Test(catalog, table_round_trip)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_table t, back;
	bf_err err = { 0 };

	t_sample_table(&t);
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "orders", &back, &err), 0, "%s", bf_err_text(&err));
	t_expect_same_table(&t, &back);
	cr_assert_eq(bf_table_index(&back, "uk_c_pad"), 1);
	cr_assert_eq(bf_table_index_by_id(&back, 5), 2);
	cr_assert_eq(bf_table_column(&back, "note"), 5);

	/* A second put replaces the record; another table is separate. */
	t.indexes[1].state = BF_INDEX_PUBLIC;
	t.indexes[1].job_id = 0;
	t.nindexes = 2;
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &t, &err), 0);
	bf_table other;
	bf_table_sbtest(&other, "sbtest1");
	other.id = 100;
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &other, &err), 0);
	bf_store_close(st);

	/* Durable and readable through a read-only open. */
	st = open_store(dir, BF_STORE_READONLY);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "orders", &back, &err), 0);
	t_expect_same_table(&t, &back);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "sbtest1", &back, &err), 0);
	t_expect_same_table(&other, &back);
	bf_store_close(st);
}

Test(catalog, missing_table_and_delete)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_table t;
	bf_err err = { 0 };

	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "no_such_table", &t, &err), BF_ENOTFOUND);
	cr_assert_eq(err.code, BF_ENOTFOUND);
	cr_assert_not_null(strstr(err.msg, "no_such_table"), "message names the table: %s", err.msg);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "no_such_table", &t, NULL), BF_ENOTFOUND);

	bf_table_sbtest(&t, "gone");
	t.id = 101;
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &t, &err), 0);
	/* Names are exact: a prefix or a longer name is another table. */
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "gon", &t, &err), BF_ENOTFOUND);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "gone2", &t, &err), BF_ENOTFOUND);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "gone", &t, &err), 0);
	cr_assert_eq(bf_catalog_delete_table(bf_store_catalog(st), "gone", &err), 0);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "gone", &t, &err), BF_ENOTFOUND);
	bf_store_close(st);
}

Test(catalog, malformed_table_record)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_table t;
	bf_err err = { 0 };
	static const struct { const char *name, *json; } bad[] = {
		{ "notjson", "{\"name\": \"notjson\", " },
		{ "nocols", "{\"name\":\"nocols\",\"id\":\"1\",\"handle\":\"id\",\"indexes\":[]}" },
		{ "badtype", "{\"name\":\"badtype\",\"id\":\"1\",\"handle\":\"id\",\"indexes\":[],"
			     "\"columns\":[{\"name\":\"id\",\"id\":\"1\",\"type\":\"float\"}]}" },
		{ "nohandle", "{\"name\":\"nohandle\",\"id\":\"1\",\"handle\":\"zz\",\"indexes\":[],"
			      "\"columns\":[{\"name\":\"id\",\"id\":\"1\",\"type\":\"bigint\"}]}" },
		{ "badidx", "{\"name\":\"badidx\",\"id\":\"1\",\"handle\":\"id\","
			    "\"columns\":[{\"name\":\"id\",\"id\":\"1\",\"type\":\"bigint\"}],"
			    "\"indexes\":[{\"name\":\"i\",\"id\":\"1\",\"columns\":[\"nope\"]}]}" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char key[128];
		snprintf(key, sizeof(key), "%stable/%s", BF_CATALOG_PREFIX, bad[i].name);
		cr_assert_eq(bf_store_put(st, key, strlen(key), bad[i].json, strlen(bad[i].json), &err), 0);
		bf_err_clear(&err);
		cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), bad[i].name, &t, &err), BF_ECORRUPT,
			     "record %s accepted", bad[i].name);
		cr_assert_neq(err.msg[0], '\0', "record %s: no message", bad[i].name);
	}
	bf_store_close(st);
}

/* ---- id counters ---- */

Test(catalog, next_id_counters)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_err err = { 0 };
	int64_t id = 0;

	/* Table ids start at 100 like TiDB's user tables; other counters at 1. */
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "table", &id, &err), 0);
	cr_assert_eq(id, 100);
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "table", &id, &err), 0);
	cr_assert_eq(id, 101);
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "job", &id, &err), 0);
	cr_assert_eq(id, 1);
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "job", &id, &err), 0);
	cr_assert_eq(id, 2);
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "table", &id, &err), 0);
	cr_assert_eq(id, 102);
	bf_store_close(st);

	/* Counters are durable. */
	st = open_store(dir, 0);
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "table", &id, &err), 0);
	cr_assert_eq(id, 103);
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "job", &id, &err), 0);
	cr_assert_eq(id, 3);
	bf_store_close(st);

	/* A read-only store cannot hand out ids, and does not pretend to. */
	st = open_store(dir, BF_STORE_READONLY);
	id = -7;
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "job", &id, &err), BF_ESTATE);
	cr_assert_eq(id, -7);
	bf_store_close(st);
}

/* ---- jobs ---- */

Test(catalog, job_round_trip)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_job j, back;
	bf_err err = { 0 };

	t_sample_job(&j, 12);
	cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 12, &back, &err), 0, "%s", bf_err_text(&err));
	t_expect_same_job(&j, &back);
	cr_assert(back.cp.has_flushed);
	cr_assert(!back.cp.has_imported, "no imported checkpoint yet");

	/* The job advances: both checkpoints set, a new state, every state survives. */
	j.cp.has_imported = true;
	bf_codec_record_key(j.cp.imported_key, 100, INT64_MIN);
	j.cp.imported_rows = 4999999;
	bf_codec_record_key(j.cp.flushed_key, 100, INT64_MAX);
	for (bf_job_state s = BF_JOB_QUEUEING; s <= BF_JOB_PAUSED; s++) {
		j.state = s;
		j.end_ms = s == BF_JOB_DONE ? 1700000009999LL : 0;
		cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), 0);
		cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 12, &back, &err), 0);
		t_expect_same_job(&j, &back);
	}

	/* Nothing flushed: both checkpoints absent again; one index; no engine yet. */
	j.cp.has_flushed = false;
	j.cp.has_imported = false;
	j.cp.flushed_rows = j.cp.imported_rows = 0;
	j.cp.engine_id[0] = '\0';
	j.cp.first_gen = 0;
	j.nindexes = 1;
	j.last_error[0] = '\0';
	cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), 0);
	bf_store_close(st);
	st = open_store(dir, BF_STORE_READONLY);
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 12, &back, &err), 0);
	t_expect_same_job(&j, &back);
	cr_assert(!back.cp.has_flushed && !back.cp.has_imported);
	bf_store_close(st);
}

Test(catalog, missing_and_malformed_job)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_job j;
	bf_err err = { 0 };
	char key[128];

	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 987654, &j, &err), BF_ENOTFOUND);
	cr_assert_not_null(strstr(err.msg, "987654"), "message names the job: %s", err.msg);

	/* Job 5 stored with an unknown state. */
	t_sample_job(&j, 5);
	cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), 0);
	bf_store_iter *it = NULL;
	const char *lo = BF_CATALOG_PREFIX "job/";
	cr_assert_eq(bf_store_iter_create(st, lo, strlen(lo), NULL, 0, NULL, &it, &err), 0);
	cr_assert(bf_store_iter_valid(it));
	size_t klen;
	const uint8_t *k = bf_store_iter_key(it, &klen);
	cr_assert_lt(klen, sizeof(key));
	memcpy(key, k, klen);
	key[klen] = '\0';
	bf_store_iter_destroy(it);
	const char *bad = "{\"id\":\"5\",\"state\":\"exploded\",\"indexes\":[],"
			  "\"checkpoint\":{},\"config\":{}}";
	cr_assert_eq(bf_store_put(st, key, klen, bad, strlen(bad), &err), 0);
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 5, &j, &err), BF_ECORRUPT);
	cr_assert_not_null(strstr(err.msg, "5"), "message: %s", err.msg);
	bf_store_close(st);
}

struct walk {
	int64_t ids[16];
	int n;
	int stop_after;
};

static int collect(const bf_job *job, void *arg)
{
	struct walk *w = arg;
	cr_assert_lt(w->n, 16);
	w->ids[w->n++] = job->id;
	cr_assert_str_eq(job->table, "sbtest1", "job %lld decoded", (long long)job->id);
	return w->stop_after && w->n == w->stop_after ? 42 : 0;
}

Test(catalog, foreach_job_in_id_order)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_err err = { 0 };
	struct walk w = { .n = 0 };
	bf_job j;
	bf_table t;

	/* No jobs: no calls. */
	cr_assert_eq(bf_catalog_foreach_job(bf_store_catalog(st), collect, NULL, &w, &err), 0);
	cr_assert_eq(w.n, 0);

	/* Put in scrambled order, with a table record alongside. */
	const int64_t ids[] = { 10, 2, 1000000000000LL, 100, 1, 99 };
	const int64_t sorted[] = { 1, 2, 10, 99, 100, 1000000000000LL };
	for (size_t i = 0; i < 6; i++) {
		t_sample_job(&j, ids[i]);
		cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), 0);
	}
	bf_table_sbtest(&t, "sbtest1");
	t.id = 100;
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &t, &err), 0);

	cr_assert_eq(bf_catalog_foreach_job(bf_store_catalog(st), collect, NULL, &w, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(w.n, 6);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(w.ids[i], sorted[i], "position %d: job %lld", i, (long long)w.ids[i]);

	/* A non-zero return stops the walk and comes back. */
	struct walk stop = { .stop_after = 2 };
	cr_assert_eq(bf_catalog_foreach_job(bf_store_catalog(st), collect, NULL, &stop, &err), 42);
	cr_assert_eq(stop.n, 2);
	bf_store_close(st);
}

/* ---- decoding a row by the schema ---- */

/* A table: id (handle), a INT, b BIGINT UNSIGNED, c CHAR(5), d VARCHAR(10),
 * e INT (added after the row was written: absent from it). */
static void decode_table(bf_table *t)
{
	static const char *const types[] = { "bigint", "int", "bigint unsigned", "char(5)",
					     "varchar(10)", "int" };
	static const char *const names[] = { "id", "a", "b", "c", "d", "e" };
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "dec");
	t->ncols = 6;
	for (int i = 0; i < 6; i++) {
		snprintf(t->cols[i].name, sizeof(t->cols[i].name), "%s", names[i]);
		t->cols[i].id = i + 1;
		cr_assert_eq(bf_coltype_parse(types[i], &t->cols[i]), 0);
	}
	t->handle_col = 0;
}

Test(catalog, decode_column)
{
	bf_table t;
	uint8_t row[256];
	int order[4];
	bf_row_view rv;
	bf_datum d;

	decode_table(&t);
	bf_row_col cols[4] = {
		{ 2, bf_datum_int(-5) },
		{ 3, bf_datum_uint(UINT64_MAX) },
		{ 4, bf_datum_bytes("abc", 3) },
		{ 5, bf_datum_null() },
	};
	long n = bf_codec_row_encode(row, cols, 4, order);
	cr_assert_gt(n, 0);
	cr_assert_eq(bf_codec_row_view(&rv, row, (size_t)n), 0);

	cr_assert_eq(bf_table_decode_column(&t, 0, &rv, 77, &d), 0);
	cr_assert(d.kind == BF_DATUM_INT && d.v.i == 77, "the handle comes from the key");
	cr_assert_eq(bf_table_decode_column(&t, 1, &rv, 77, &d), 0);
	cr_assert(d.kind == BF_DATUM_INT && d.v.i == -5);
	cr_assert_eq(bf_table_decode_column(&t, 2, &rv, 77, &d), 0);
	cr_assert(d.kind == BF_DATUM_UINT && d.v.u == UINT64_MAX);
	cr_assert_eq(bf_table_decode_column(&t, 3, &rv, 77, &d), 0);
	cr_assert_eq(d.kind, BF_DATUM_BYTES);
	cr_assert(d.v.b.len == 3 && memcmp(d.v.b.ptr, "abc", 3) == 0);
	cr_assert(d.v.b.ptr >= row && d.v.b.ptr < row + n, "strings are zero-copy");
	cr_assert_eq(bf_table_decode_column(&t, 4, &rv, 77, &d), 0);
	cr_assert_eq(d.kind, BF_DATUM_NULL, "stored NULL");
	cr_assert_eq(bf_table_decode_column(&t, 5, &rv, 77, &d), 0);
	cr_assert_eq(d.kind, BF_DATUM_NULL, "a column missing from the row reads as NULL");
}

Test(catalog, decode_column_rejects_bad_widths)
{
	bf_table t;
	uint8_t row[256];
	int order[3];
	bf_row_view rv;
	bf_datum d;

	decode_table(&t);
	/* Bytes of widths no integer has, and a CHAR(5) longer than 5 chars can be. */
	bf_row_col cols[3] = {
		{ 2, bf_datum_bytes("\x01\x02\x03", 3) },
		{ 3, bf_datum_bytes("\x01\x02\x03\x04\x05", 5) },
		{ 4, bf_datum_bytes("abcdefghijklmnopqrstu", 21) },
	};
	long n = bf_codec_row_encode(row, cols, 3, order);
	cr_assert_gt(n, 0);
	cr_assert_eq(bf_codec_row_view(&rv, row, (size_t)n), 0);
	cr_assert_eq(bf_table_decode_column(&t, 1, &rv, 1, &d), BF_ECORRUPT);
	cr_assert_eq(bf_table_decode_column(&t, 2, &rv, 1, &d), BF_ECORRUPT);
	cr_assert_eq(bf_table_decode_column(&t, 3, &rv, 1, &d), BF_ECORRUPT);

	/* Zero bytes is not an integer either; 20 bytes still fit CHAR(5) in UTF-8. */
	bf_row_col edge[2] = { { 2, bf_datum_bytes("", 0) }, { 4, bf_datum_bytes("abcdefghijklmnopqrst", 20) } };
	n = bf_codec_row_encode(row, edge, 2, order);
	cr_assert_eq(bf_codec_row_view(&rv, row, (size_t)n), 0);
	cr_assert_eq(bf_table_decode_column(&t, 1, &rv, 1, &d), BF_ECORRUPT);
	cr_assert_eq(bf_table_decode_column(&t, 3, &rv, 1, &d), 0);
	cr_assert_eq(d.v.b.len, 20);
}

/* ---- damaged records, id counters that never hand an id out twice ---- */

static void put_raw(bf_store *st, const char *key, const char *val)
{
	bf_err err = { 0 };
	cr_assert_eq(bf_store_put(st, key, strlen(key), val, strlen(val), &err), 0, "%s",
		     bf_err_text(&err));
}

static void job_record_key(char *key, size_t n, int64_t id)
{
	snprintf(key, n, "%sjob/%020lld", BF_CATALOG_PREFIX, (long long)id);
}

static void put_jobs(bf_store *st, int64_t from, int64_t to)
{
	bf_err err = { 0 };
	bf_job j;
	for (int64_t id = from; id <= to; id++) {
		t_sample_job(&j, id);
		cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), 0, "%s", bf_err_text(&err));
	}
}

static int64_t next_id(bf_store *st, const char *counter)
{
	bf_err err = { 0 };
	int64_t id = 0;
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), counter, &id, &err), 0, "%s", bf_err_text(&err));
	return id;
}

Test(catalog, job_ids_skip_existing_records)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);

	/* Job 1 made with --job-id 1: no counter yet, and 1 is taken. */
	put_jobs(st, 1, 1);
	cr_assert_eq(next_id(st, "job"), 2);
	cr_assert_eq(next_id(st, "job"), 3);
	/* Job 7 made with --job-id 7 behind the counter's back. */
	put_jobs(st, 7, 7);
	cr_assert_eq(next_id(st, "job"), 8);
	bf_store_close(st);
}

Test(catalog, damaged_counter_rebuilt_from_records)
{
	static const char *const damaged[] = { "garbage", "-4", "", "12x", "99999999999999999999",
					       "1.5" };
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	const char *key = BF_CATALOG_PREFIX "counter/job";

	put_jobs(st, 1, 5);
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		put_raw(st, key, damaged[i]);
		cr_assert_eq(next_id(st, "job"), 6, "counter \"%s\"", damaged[i]);
	}
	/* A NUL inside does not let "3" through. */
	bf_err err = { 0 };
	cr_assert_eq(bf_store_put(st, key, strlen(key), "3\0junk", 6, &err), 0);
	cr_assert_eq(next_id(st, "job"), 6);
	/* And the rebuilt counter goes on from there. */
	cr_assert_eq(next_id(st, "job"), 7);
	bf_store_close(st);
}

Test(catalog, table_ids_rebuilt_from_table_records)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_table t;
	bf_err err = { 0 };

	bf_table_sbtest(&t, "a");
	t.id = 140;
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &t, &err), 0, "%s", bf_err_text(&err));
	/* A damaged table record still has its id counted. */
	put_raw(st, BF_CATALOG_PREFIX "table/b", "{\"id\":\"150\",\"name\":7}");
	cr_assert_eq(next_id(st, "table"), 151);
	put_raw(st, BF_CATALOG_PREFIX "counter/table", "nonsense");
	cr_assert_eq(next_id(st, "table"), 151);
	bf_store_close(st);
}

Test(catalog, reserve_id_raises_the_counter)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_err err = { 0 };

	cr_assert_eq(bf_catalog_reserve_id(bf_store_catalog(st), "job", 10, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(next_id(st, "job"), 11);
	/* Never lowered. */
	cr_assert_eq(bf_catalog_reserve_id(bf_store_catalog(st), "job", 5, &err), 0);
	cr_assert_eq(next_id(st, "job"), 12);
	/* A damaged counter is mended to the larger of the records and the id. */
	put_raw(st, BF_CATALOG_PREFIX "counter/job", "junk");
	put_jobs(st, 20, 20);
	cr_assert_eq(bf_catalog_reserve_id(bf_store_catalog(st), "job", 15, &err), 0);
	cr_assert_eq(next_id(st, "job"), 21);
	cr_assert_eq(bf_catalog_reserve_id(bf_store_catalog(st), "job", 0, &err), BF_EINVAL);
	cr_assert_eq(bf_catalog_reserve_id(bf_store_catalog(st), "job", -3, &err), BF_EINVAL);
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "", &(int64_t){ 0 }, &err), BF_EINVAL);
	bf_store_close(st);
}

Test(catalog, id_counter_used_up)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_err err = { 0 };
	int64_t id = 0;

	put_raw(st, BF_CATALOG_PREFIX "counter/job", "9223372036854775807");
	cr_assert_eq(bf_catalog_next_id(bf_store_catalog(st), "job", &id, &err), BF_ERANGE);
	cr_assert_eq(id, 0);
	bf_store_close(st);
}

/* The walk goes past damaged records, says which and why, and shows the rest. */
struct damage {
	char records[4][64];
	char whys[4][BF_ERR_MSG_MAX];
	int n;
};

static void note_damage(const char *record, const char *why, void *arg)
{
	struct damage *d = ((void **)arg)[1];
	cr_assert_lt(d->n, 4);
	snprintf(d->records[d->n], sizeof(d->records[0]), "%s", record);
	snprintf(d->whys[d->n], sizeof(d->whys[0]), "%s", why);
	d->n++;
}

static int collect_both(const bf_job *job, void *arg)
{
	return collect(job, ((void **)arg)[0]);
}

Test(catalog, foreach_job_reports_damaged_records)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	struct walk w = { .n = 0 };
	struct damage d = { .n = 0 };
	void *both[2] = { &w, &d };
	char key2[64], key4[64], key5[64], text[64];
	bf_err err = { 0 };
	bf_job j;

	put_jobs(st, 1, 5);
	job_record_key(key2, sizeof(key2), 2);
	put_raw(st, key2, "{\"id\":");
	/* Job 4's record holds job 9. */
	job_record_key(key4, sizeof(key4), 4);
	t_sample_job(&j, 9);
	cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), 0);
	job_record_key(text, sizeof(text), 9);
	char *val = NULL;
	size_t vlen;
	cr_assert_eq(bf_store_get(st, text, strlen(text), &val, &vlen, &err), 0);
	cr_assert_eq(bf_store_put(st, key4, strlen(key4), val, vlen, &err), 0);
	free(val);
	cr_assert_eq(bf_store_delete(st, text, strlen(text), &err), 0);
	/* Job 5: workers 0, which would hang a resume. */
	job_record_key(key5, sizeof(key5), 5);
	cr_assert_eq(bf_store_get(st, key5, strlen(key5), &val, &vlen, &err), 0);
	char *w6 = strstr(val, "\"workers\":\"6\"");
	cr_assert_not_null(w6);
	w6[11] = '0';
	cr_assert_eq(bf_store_put(st, key5, strlen(key5), val, vlen, &err), 0);
	free(val);

	cr_assert_eq(bf_catalog_foreach_job(bf_store_catalog(st), collect_both, note_damage, both, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(w.n, 2, "the good jobs are shown");
	cr_assert_eq(w.ids[0], 1);
	cr_assert_eq(w.ids[1], 3);
	cr_assert_eq(d.n, 3);
	cr_assert_str_eq(d.records[0], key2);
	cr_assert_str_eq(d.whys[0], "it is not valid JSON");
	cr_assert_str_eq(d.records[1], key4);
	cr_assert_str_eq(d.whys[1], "id 9 is not the id in its key");
	cr_assert_str_eq(d.records[2], key5);
	cr_assert_str_eq(d.whys[2], "config.workers = 0 is out of range 1..64");

	/* Without a damaged callback the walk stops at the first, naming it. */
	struct walk stop = { .n = 0 };
	cr_assert_eq(bf_catalog_foreach_job(bf_store_catalog(st), collect, NULL, &stop, &err), BF_ECORRUPT);
	cr_assert_eq(stop.n, 1);
	cr_assert_str_eq(err.msg, "catalog record mbfill/job/00000000000000000002 is damaged: "
				  "it is not valid JSON");

	/* Reading one damaged job names its record and the field. */
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 5, &j, &err), BF_ECORRUPT);
	cr_assert_str_eq(err.msg, "catalog record mbfill/job/00000000000000000005 is damaged: "
				  "config.workers = 0 is out of range 1..64");
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 4, &j, &err), BF_ECORRUPT);
	cr_assert_not_null(strstr(err.msg, "id 9 is not the id in its key"), "%s", err.msg);
	bf_store_close(st);
}

/* A record written under another table's name, and names no table has. */
Test(catalog, table_names_and_keys)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_table t, back;
	bf_err err = { 0 };
	char *val = NULL;
	size_t vlen;

	t_sample_table(&t);
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &t, &err), 0);
	const char *orders = BF_CATALOG_PREFIX "table/orders", *other = BF_CATALOG_PREFIX "table/other";
	cr_assert_eq(bf_store_get(st, orders, strlen(orders), &val, &vlen, &err), 0);
	cr_assert_eq(bf_store_put(st, other, strlen(other), val, vlen, &err), 0);
	free(val);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "other", &back, &err), BF_ECORRUPT);
	cr_assert_str_eq(err.msg, "catalog record mbfill/table/other is damaged: its name is not the "
				  "one in its key");

	/* A name no table can have: not found, printed on one line. */
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "two\nlines", &back, &err), BF_ENOTFOUND);
	cr_assert_str_eq(err.msg, "table 'two\\x0alines' does not exist");
	cr_assert_eq(bf_catalog_delete_table(bf_store_catalog(st), "", &err), 0);

	/* Quotes and backslashes are names like any other. */
	bf_table_sbtest(&t, "we\"ird\\");
	t.id = 101;
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "we\"ird\\", &back, &err), 0, "%s", bf_err_text(&err));
	t_expect_same_table(&t, &back);
	bf_store_close(st);
}

/* A job or table the decoder would refuse is not written at all. */
Test(catalog, impossible_records_are_not_written)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	bf_table t;
	bf_job j;
	bf_err err = { 0 };

	t_sample_job(&j, 3);
	j.cfg.workers = 65;
	cr_assert_eq(bf_catalog_put_job(bf_store_catalog(st), &j, &err), BF_EINVAL);
	cr_assert_str_eq(err.msg, "job 3 can't be recorded: config.workers = 65 is out of range 1..64");
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 3, &j, &err), BF_ENOTFOUND);

	/* Neither half of a pair goes in when one half is impossible. */
	t_sample_table(&t);
	t_sample_job(&j, 3);
	j.cfg.mem_bytes = 1000;
	cr_assert_eq(bf_catalog_put_table_and_job(bf_store_catalog(st), &t, &j, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "config.mem_bytes = 1000"), "%s", err.msg);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "orders", &t, &err), BF_ENOTFOUND);
	t_sample_table(&t);
	t_sample_job(&j, 3);
	snprintf(t.cols[1].name, sizeof(t.cols[1].name), "k\t");
	cr_assert_eq(bf_catalog_put_table_and_job(bf_store_catalog(st), &t, &j, &err), BF_EINVAL);
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(st), 3, &j, &err), BF_ENOTFOUND);
	bf_store_close(st);
}

Test(catalog, fence_records)
{
	char *dir = t_scratch_new("catalog");
	bf_store *st = open_store(dir, BF_STORE_CREATE);
	const char *lock = "/bfill/lock/0c5b2d9e/7/3";
	char key[128];
	bf_err err = { 0 };
	int64_t rev = -1;

	cr_assert_eq(bf_catalog_get_fence(bf_store_catalog(st), lock, &rev, &err), 0);
	cr_assert_eq(rev, 0, "none yet");
	cr_assert_eq(bf_catalog_put_fence(bf_store_catalog(st), lock, 812, &err), 0);
	cr_assert_eq(bf_catalog_get_fence(bf_store_catalog(st), lock, &rev, &err), 0);
	cr_assert_eq(rev, 812);
	cr_assert_eq(bf_catalog_put_fence(bf_store_catalog(st), lock, -1, &err), BF_EINVAL);

	snprintf(key, sizeof(key), "%sfence/%s", BF_CATALOG_PREFIX, lock);
	put_raw(st, key, "812x");
	cr_assert_eq(bf_catalog_get_fence(bf_store_catalog(st), lock, &rev, &err), BF_ECORRUPT);
	cr_assert_eq(rev, 0);
	cr_assert_not_null(strstr(err.msg, key), "%s", err.msg);

	char long_key[BF_FENCE_KEY_MAX + 8];
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	cr_assert_eq(bf_catalog_put_fence(bf_store_catalog(st), long_key, 1, &err), BF_EINVAL);
	bf_store_close(st);
}
