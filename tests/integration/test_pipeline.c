/*
 * The embedded add-index pipeline through the library (bf_add_index,
 * bf_check_index, bf_job_cancel) over real stores: table sizes, edge
 * values, duplicates, several indexes per job, repeated imports, unique
 * violations, catalog states and clean-up. Every built index is checked
 * twice: by check-index, and by decoding the index range entry by entry
 * against the rows the test wrote.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/catalog.h"
#include "bfill/check.h"
#include "bfill/codec.h"
#include "bfill/fault.h"
#include "bfill/job.h"
#include "bfill/store.h"
#include "tests/support/support.h"
#include "tests/support/table.h"
#include "tests/support/world.h"

TestSuite(pipeline, .fini = t_scratch_remove, .timeout = 120);

/* ---- hand-written key bytes, for golden checks without the codec ---- */

static size_t put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
	return 8;
}

static size_t put_key_int(uint8_t *p, int64_t v)
{
	return put_be64(p, (uint64_t)v ^ 0x8000000000000000ULL);
}

static size_t put_prefix(uint8_t *p, int64_t tid, int64_t iid)
{
	size_t n = 0;
	p[n++] = 't';
	n += put_key_int(p + n, tid);
	p[n++] = '_';
	p[n++] = 'i';
	n += put_key_int(p + n, iid);
	return n;
}

/* Group encoding of a short string written out by hand: 8-byte groups,
 * zero padding, marker 0xFF - pad. */
static size_t put_group_bytes(uint8_t *p, const char *s, size_t len)
{
	size_t n = 0, i = 0;
	for (;;) {
		size_t take = len - i < 8 ? len - i : 8;
		memset(p + n, 0, 8);
		memcpy(p + n, s + i, take);
		n += 8;
		p[n++] = (uint8_t)(0xFF - (8 - take));
		i += take;
		if (take < 8)
			return n;
	}
}

static int64_t index_id(bf_store *st, const char *table, const char *index)
{
	bf_table t;
	t_table_get(st, table, &t);
	int pos = bf_table_index(&t, index);
	cr_assert_geq(pos, 0, "index %s", index);
	return t.indexes[pos].id;
}

/* The entry under exactly this key has exactly this value. */
static void expect_entry(bf_store *st, const uint8_t *key, size_t klen, const uint8_t *val,
			 size_t vlen, const char *what)
{
	char *got = NULL;
	size_t glen = 0;
	bf_err err = { 0 };
	int rc = bf_store_get(st, key, klen, &got, &glen, &err);
	cr_assert_eq(rc, 0, "%s: no entry under the hand-built key (%s)", what, bf_err_text(&err));
	cr_assert(glen == vlen && !memcmp(got, val, vlen), "%s: value of %zu bytes differs", what, glen);
	free(got);
}

/* ---- tables of 0, 1 and 10k rows ---- */

static const t_coldef small_cols[] = {
	{ "id", "bigint", true }, { "a", "int", false }, { "s", "varchar(64)", false },
};

Test(pipeline, empty_tables)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_create(w.st, "t0", small_cols, 3, 0, &t);
	bf_add_index_opts o = opts_for(&w, "t0");
	add_spec(&o, "a_idx", "a", false);
	add_spec(&o, "s_uniq", "s", true);
	build_ok(&w, &o, &res);
	cr_assert_eq(res.rows, 0);
	cr_assert_eq(res.index_keys, 0);
	cr_assert_eq(res.job.rows_done, 0);
	cr_assert_eq(t_table_index_count(w.st, t.id, 0), 0, "an empty table has no index entries");
	t_table_expect_exact(w.st, "t0", "a_idx", w.check_dir, 0);
	t_table_expect_exact(w.st, "t0", "s_uniq", w.check_dir, 0);
	t_rows_init(&rows, &t);
	t_table_verify_index(w.st, "t0", "a_idx", &rows);
	t_rows_free(&rows);

	/* An empty sysbench table, as `bfill gen --rows 0` makes it. */
	t_table_gen_sbtest(w.st, "sb0", 0, 1, &t);
	o = opts_for(&w, "sb0");
	add_spec(&o, "c_idx", "c", false);
	build_ok(&w, &o, &res);
	cr_assert_eq(t_table_index_count(w.st, t.id, 0), 0);
	t_table_expect_exact(w.st, "sb0", "c_idx", w.check_dir, 0);
	world_close(&w);
}

Test(pipeline, one_row)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_create(w.st, "t1", small_cols, 3, 0, &t);
	t_rows_init(&rows, &t);
	bf_datum v[3] = { bf_datum_null(), bf_datum_int(-42), bf_datum_bytes("only", 4) };
	t_rows_add(&rows, 7, v);
	t_table_insert(w.st, &t, &rows);

	bf_add_index_opts o = opts_for(&w, "t1");
	add_spec(&o, "a_idx", "a", false);
	add_spec(&o, "s_uniq", "s", true);
	build_ok(&w, &o, &res);
	cr_assert_eq(res.rows, 1);
	cr_assert_eq(res.index_keys, 2, "one entry per index");
	cr_assert_eq(t_table_index_count(w.st, t.id, 0), 2);
	cr_assert_eq(t_table_verify_index(w.st, "t1", "a_idx", &rows), 1);
	cr_assert_eq(t_table_verify_index(w.st, "t1", "s_uniq", &rows), 1);
	t_table_expect_exact(w.st, "t1", "a_idx", w.check_dir, 1);
	t_table_expect_exact(w.st, "t1", "s_uniq", w.check_dir, 1);

	/* Byte for byte: t{tid}_i{iid} 03 int(-42) 03 int(7) -> '0', and
	 * t{tid}_i{iid} 01 "only" -> handle 7 as 8 bytes big-endian. */
	uint8_t key[128], val[8];
	size_t n = put_prefix(key, t.id, index_id(w.st, "t1", "a_idx"));
	key[n++] = 0x03;
	n += put_key_int(key + n, -42);
	key[n++] = 0x03;
	n += put_key_int(key + n, 7);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "a_idx row 7");
	n = put_prefix(key, t.id, index_id(w.st, "t1", "s_uniq"));
	key[n++] = 0x01;
	n += put_group_bytes(key + n, "only", 4);
	put_be64(val, 7);
	expect_entry(w.st, key, n, val, 8, "s_uniq row 7");
	t_rows_free(&rows);
	world_close(&w);
}

Test(pipeline, ten_thousand_rows)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 10000, 7, &t);
	t_rows_sbtest(&rows, &t, 7, 10000);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	/* The default sort dir, <store>.sort, must be gone afterwards too. */
	o.sort_dir = NULL;
	add_spec(&o, "c_idx", "c", false);
	bf_err err = { 0 };
	int rc = bf_add_index(w.st, &o, &res, &err);
	cr_assert_eq(rc, 0, "%s", bf_err_text(&err));
	char def_sort[4096];
	bf_job_default_sort_dir(w.store_dir, def_sort, sizeof(def_sort));
	cr_assert_not(t_path_exists(def_sort), "default sort dir %s is removed", def_sort);
	cr_assert_eq(res.rows, 10000);
	cr_assert_eq(res.index_keys, 10000);
	cr_assert_eq(res.job.rows_done, 10000);
	cr_assert_eq(res.job.rows_total, 10000);
	cr_assert_geq(res.backend.imports, 1);
	cr_assert_eq(t_table_verify_index(w.st, "sbtest1", "c_idx", &rows), 10000);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 10000);
	t_rows_free(&rows);
	world_close(&w);
}

/* ---- NULLs, extreme integers, empty and long strings ---- */

enum { E_ID, E_A, E_B, E_U, E_S, E_CH, E_NCOLS };

static const t_coldef edge_cols[E_NCOLS] = {
	{ "id", "bigint", true },           { "a", "int", false },
	{ "b", "bigint", false },           { "u", "bigint unsigned", false },
	{ "s", "varchar(3000)", false },    { "ch", "char(16)", false },
};

static char long1[3000], long2[3000], long_gen[400][3000];

static void edge_row(t_rows *r, int64_t h, bf_datum a, bf_datum b, bf_datum u, bf_datum s,
		     bf_datum ch)
{
	bf_datum v[E_NCOLS] = { bf_datum_null(), a, b, u, s, ch };
	t_rows_add(r, h, v);
}

#define NUL bf_datum_null()
#define I(x) bf_datum_int(x)
#define U(x) bf_datum_uint(x)
#define S(x) bf_datum_bytes(x, sizeof(x) - 1)

static void edge_rows(t_rows *r)
{
	memset(long1, 'x', sizeof(long1));
	memset(long2, 'x', sizeof(long2));
	long2[sizeof(long2) - 1] = 'y';
	edge_row(r, INT64_MIN, NUL, I(INT64_MIN), U(0), S(""), S(""));
	edge_row(r, INT64_MIN + 1, I(INT32_MIN), NUL, U(UINT64_MAX),
		 bf_datum_bytes(long1, sizeof(long1)), S("zzzzzzzzzzzzzzzz"));
	edge_row(r, -1, I(INT32_MIN), I(-1), NUL, S("abc"), S("abc"));
	edge_row(r, 0, I(0), I(0), U(1), S("abc\0"), NUL);
	edge_row(r, 1, I(INT32_MAX), I(INT64_MAX), U(UINT64_MAX - 1), S("abcdefgh"), S("\xff"));
	edge_row(r, 2, I(-1), NUL, U(1ULL << 63), S("abcdefg"), S("abc"));
	edge_row(r, 3, I(1), I(1), NUL, S("abcdefghi"), S(""));
	edge_row(r, 4, I(2), I(2), U(2), S("\0\xff\0"), S("\0\0"));
	edge_row(r, INT64_MAX - 1, NUL, NUL, NUL, NUL, NUL);
	edge_row(r, INT64_MAX, I(INT32_MAX), I(INT64_MIN + 1), U(0),
		 bf_datum_bytes(long2, sizeof(long2)), S("\xff\xff\xff\xff\xff\xff\xff\xff\xff"));
	/* 2000 more, positive and negative handles; b stays unique where set. */
	for (int i = 0; i < 2000; i++) {
		int64_t h = 1000 + (int64_t)i * 13;
		char s[32], ch[16];
		bf_datum sv;
		if (i % 2)
			h = -h;
		if (i % 5 == 0) {
			char *l = long_gen[i / 5];
			int n = snprintf(l, 32, "long-%05d-", i);
			for (size_t k = (size_t)n; k < sizeof(long_gen[0]); k++)
				l[k] = (char)('a' + (k * 7 + (size_t)i) % 26);
			sv = bf_datum_bytes(l, sizeof(long_gen[0]) - (size_t)(i % 3));
		} else {
			sv = bf_datum_bytes(s, (size_t)snprintf(s, sizeof(s), "s%04d", i % 700));
		}
		if (i % 13 == 0)
			sv = NUL;
		edge_row(r, h, i % 9 == 0 ? NUL : I(i % 50 - 25), i % 10 == 0 ? NUL : I(-3 * (int64_t)i - 5),
			 i % 11 == 0 ? NUL : U((uint64_t)i * 0x9E3779B97F4A7C15ULL), sv,
			 bf_datum_bytes(ch, (size_t)snprintf(ch, sizeof(ch), "c%d", i % 100)));
	}
}

Test(pipeline, nulls_extremes_long_strings)
{
	static const char *const names[] = { "i_a", "i_b", "i_u", "i_s", "i_ch", "i_bs", "u_b", "u_bu" };
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_create(w.st, "edge", edge_cols, E_NCOLS, E_ID, &t);
	t_rows_init(&rows, &t);
	edge_rows(&rows);
	t_table_insert(w.st, &t, &rows);

	bf_add_index_opts o = opts_for(&w, "edge");
	add_spec(&o, "i_a", "a", false);
	add_spec(&o, "i_b", "b", false);
	add_spec(&o, "i_u", "u", false);
	add_spec(&o, "i_s", "s", false);
	add_spec(&o, "i_ch", "ch", false);
	add_spec(&o, "i_bs", "b,s", false);
	add_spec(&o, "u_b", "b", true);    /* NULLs repeat: not duplicates */
	add_spec(&o, "u_bu", "b, u", true);
	build_ok(&w, &o, &res);
	cr_assert_eq(res.rows, rows.n);
	cr_assert_eq(res.index_keys, 8 * rows.n);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(t_table_verify_index(w.st, "edge", names[i], &rows), rows.n, "%s", names[i]);
		t_table_expect_exact(w.st, "edge", names[i], w.check_dir, rows.n);
	}

	/* A few entries byte for byte, written out by hand. */
	uint8_t key[4096], val[8];
	size_t n = put_prefix(key, t.id, index_id(w.st, "edge", "i_a"));
	key[n++] = 0x03;
	n += put_key_int(key + n, INT32_MIN);
	key[n++] = 0x03;
	n += put_key_int(key + n, -1);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "i_a: a = INT32_MIN, handle -1");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "u_b"));
	key[n++] = 0x03;
	memset(key + n, 0xff, 8);
	n += 8;
	put_be64(val, 1);
	expect_entry(w.st, key, n, val, 8, "u_b: b = INT64_MAX -> handle 1");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "u_b"));
	key[n++] = 0x00;
	key[n++] = 0x03;
	n += put_key_int(key + n, INT64_MIN + 1);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "u_b: b NULL keeps the handle in the key");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "u_b"));
	key[n++] = 0x03;
	n += put_key_int(key + n, INT64_MIN);
	put_be64(val, (uint64_t)INT64_MIN);
	expect_entry(w.st, key, n, val, 8, "u_b: b = INT64_MIN -> handle INT64_MIN");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "i_u"));
	key[n++] = 0x04;
	memset(key + n, 0xff, 8);
	n += 8;
	key[n++] = 0x03;
	n += put_key_int(key + n, INT64_MIN + 1);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "i_u: u = UINT64_MAX");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "i_s"));
	key[n++] = 0x01;
	n += put_group_bytes(key + n, "", 0);
	key[n++] = 0x03;
	n += put_key_int(key + n, INT64_MIN);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "i_s: empty string");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "i_s"));
	key[n++] = 0x01;
	n += put_group_bytes(key + n, "abcdefgh", 8);
	key[n++] = 0x03;
	n += put_key_int(key + n, 1);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "i_s: 8 bytes take two groups");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "i_s"));
	key[n++] = 0x01;
	n += put_group_bytes(key + n, long2, sizeof(long2));
	key[n++] = 0x03;
	n += put_key_int(key + n, INT64_MAX);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "i_s: 3000-byte string");

	n = put_prefix(key, t.id, index_id(w.st, "edge", "i_bs"));
	key[n++] = 0x00;
	key[n++] = 0x00;
	key[n++] = 0x03;
	n += put_key_int(key + n, INT64_MAX - 1);
	expect_entry(w.st, key, n, (const uint8_t *)"0", 1, "i_bs: (NULL, NULL)");
	t_rows_free(&rows);
	world_close(&w);
}

/* ---- duplicates ---- */

static const t_coldef dup_cols[] = {
	{ "id", "bigint", true }, { "k", "int", false }, { "s", "varchar(32)", false },
	{ "v", "bigint", false }, { "w", "int", false },
};

Test(pipeline, many_duplicate_values)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_create(w.st, "dupes", dup_cols, 5, 0, &t);
	t_rows_init(&rows, &t);
	for (int i = 0; i < 10000; i++) {
		bf_datum v[5] = { NUL, i % 7 == 0 ? NUL : I(i % 3), i % 2 ? S("same") : S("other"),
				  I(i), I(0) };
		t_rows_add(&rows, i + 1, v);
	}
	t_table_insert(w.st, &t, &rows);
	bf_add_index_opts o = opts_for(&w, "dupes");
	add_spec(&o, "k_idx", "k", false);
	add_spec(&o, "ks_idx", "k,s", false);
	add_spec(&o, "w_idx", "w", false);
	build_ok(&w, &o, &res);
	cr_assert_eq(res.index_keys, 30000, "every row has its entry in every index");
	cr_assert_eq(t_table_verify_index(w.st, "dupes", "k_idx", &rows), 10000);
	cr_assert_eq(t_table_verify_index(w.st, "dupes", "ks_idx", &rows), 10000);
	cr_assert_eq(t_table_verify_index(w.st, "dupes", "w_idx", &rows), 10000);
	t_table_expect_exact(w.st, "dupes", "k_idx", w.check_dir, 10000);
	t_table_expect_exact(w.st, "dupes", "ks_idx", w.check_dir, 10000);
	t_table_expect_exact(w.st, "dupes", "w_idx", w.check_dir, 10000);
	t_rows_free(&rows);
	world_close(&w);
}

/* A unique build over dupes: fails with TiDB's message, leaves nothing of
 * the index behind and frees its name. */
static void expect_unique_violation(world *w, const bf_table *t, const char *name,
				    const char *columns, const char *message)
{
	bf_add_index_result res;
	bf_err err;
	bf_add_index_opts o = opts_for(w, t->name);
	int jobs_before = count_jobs(w->st);

	add_spec(&o, name, columns, true);
	bf_job job = build_fails(w, &o, BF_EDUP, &err, &res);
	cr_assert_str_eq(err.msg, message);
	cr_assert_eq(job.state, BF_JOB_FAILED);
	cr_assert_str_eq(job.last_error, message);
	cr_assert_eq(count_jobs(w->st), jobs_before + 1, "the failed job stays on record");

	bf_job rec;
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(w->st), job.id, &rec, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(rec.state, BF_JOB_FAILED, "job record says %s", bf_job_state_name(rec.state));
	cr_assert_str_eq(rec.last_error, message);

	bf_table now;
	t_table_get(w->st, t->name, &now);
	cr_assert_lt(bf_table_index(&now, name), 0, "the index is removed from the table");
	cr_assert_eq(t_table_index_count(w->st, t->id, job.index_ids[0]), 0,
		     "no entry of the index stays in the store");
	char jobdir[4200];
	snprintf(jobdir, sizeof(jobdir), "%s/job-%" PRId64, w->sort_dir, job.id);
	cr_assert_not(t_path_exists(jobdir), "the job's sort files are removed");
}

Test(pipeline, unique_duplicates)
{
	world w;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_create(w.st, "dups", dup_cols, 5, 0, &t);
	t_rows_init(&rows, &t);
	for (int i = 0; i < 1000; i++) {
		char s[32];
		bf_datum v[5] = { NUL, I(i), bf_datum_bytes(s, (size_t)snprintf(s, sizeof(s), "s-%d", i)),
				  I(i == 10 || i == 900 ? -7 : i * 3), I(i) };
		if (i == 333 || i == 777) {
			v[2] = S("dup-value");
			v[4] = I(12345);
		}
		if (i % 50 == 1)
			v[1] = NUL; /* NULLs never collide */
		t_rows_add(&rows, i + 1, v);
	}
	t_table_insert(w.st, &t, &rows);

	expect_unique_violation(&w, &t, "u_v", "v", "Duplicate entry '-7' for key 'dups.u_v'");
	expect_unique_violation(&w, &t, "u_s", "s", "Duplicate entry 'dup-value' for key 'dups.u_s'");
	expect_unique_violation(&w, &t, "u_ws", "w,s", "Duplicate entry '12345-dup-value' for key 'dups.u_ws'");
	cr_assert_eq(t_table_index_count(w.st, t.id, 0), 0, "no index entries at all");

	/* Unique over duplicate-free data (with NULLs) succeeds, and a failed
	 * name can be used again. */
	bf_add_index_result res;
	bf_add_index_opts o = opts_for(&w, "dups");
	add_spec(&o, "u_k", "k", true);
	add_spec(&o, "u_v", "v", false);
	build_ok(&w, &o, &res);
	cr_assert_eq(t_table_verify_index(w.st, "dups", "u_k", &rows), 1000);
	cr_assert_eq(t_table_verify_index(w.st, "dups", "u_v", &rows), 1000);
	t_table_expect_exact(w.st, "dups", "u_k", w.check_dir, 1000);
	t_rows_free(&rows);
	world_close(&w);
}

/* ---- several indexes in one job ---- */

Test(pipeline, several_indexes_one_job)
{
	static const char *const names[] = { "c_idx", "k_idx", "kc_idx", "uc", "upad" };
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 10000, 11, &t);
	t_rows_sbtest(&rows, &t, 11, 10000);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "c_idx", "c", false);
	add_spec(&o, "k_idx", "k", false);
	add_spec(&o, "kc_idx", "k,c", false);
	add_spec(&o, "uc", "c", true);
	add_spec(&o, "upad", "pad", true);
	build_ok(&w, &o, &res);
	cr_assert_eq(res.job.nindexes, 5);
	cr_assert_eq(res.rows, 10000, "one scan for all five");
	cr_assert_eq(res.index_keys, 50000);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(t_table_verify_index(w.st, "sbtest1", names[i], &rows), 10000, "%s", names[i]);
		t_table_expect_exact(w.st, "sbtest1", names[i], w.check_dir, 10000);
	}
	t_rows_free(&rows);
	world_close(&w);
}

/* ---- repeated imports ---- */

Test(pipeline, import_every_small)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 200000, 3, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	/* One writer with the smallest sort budget spills a run every few
	 * MiB; each run pushes the engines past --import-every. */
	o.workers = 1;
	o.mem = 64ULL << 20;
	o.import_every = 256ULL << 10;
	add_spec(&o, "c_idx", "c", false);
	add_spec(&o, "uc", "c", true);
	build_ok(&w, &o, &res);
	cr_assert_gt(res.backend.imports, 1, "several imports: %" PRIu64, res.backend.imports);
	cr_assert_eq(res.job.cp.imports, res.backend.imports, "the checkpoint counts the imports");
	cr_assert_eq(res.index_keys, 400000, "every entry imported once");
	t_rows_sbtest(&rows, &t, 3, 200000);
	cr_assert_eq(t_table_verify_index(w.st, "sbtest1", "c_idx", &rows), 200000);
	cr_assert_eq(t_table_verify_index(w.st, "sbtest1", "uc", &rows), 200000);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 200000);
	t_table_expect_exact(w.st, "sbtest1", "uc", w.check_dir, 200000);
	t_rows_free(&rows);
	world_close(&w);
}

Test(pipeline, writers_out_of_step)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 200000, 5, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	/* A table larger than the sort budget: the second writer writes its
	 * first run at half a buffer, and every run after it out of step. */
	o.workers = 2;
	o.mem = 32ULL << 20;
	add_spec(&o, "c_idx", "c", false);
	build_ok(&w, &o, &res);
	cr_assert_gt(res.backend.runs, 2, "both writers spilled: %" PRIu64 " runs", res.backend.runs);
	cr_assert_eq(res.index_keys, 200000);
	t_rows_sbtest(&rows, &t, 5, 200000);
	cr_assert_eq(t_table_verify_index(w.st, "sbtest1", "c_idx", &rows), 200000);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 200000);
	t_rows_free(&rows);
	world_close(&w);
}

Test(pipeline, unique_duplicate_across_imports)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	t_rows rows, extra;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 200000, 5, &t);
	/* Row 200001 repeats row 1's c: the two land in different imports. */
	t_rows_sbtest(&rows, &t, 5, 1);
	t_rows_init(&extra, &t);
	t_rows_add(&extra, 200001, t_rows_get(&rows, 0));
	t_table_insert(w.st, &t, &extra);

	bf_add_index_opts o = opts_for(&w, "sbtest1");
	o.workers = 1;
	o.mem = 64ULL << 20;
	o.import_every = 256ULL << 10;
	add_spec(&o, "uc", "c", true);
	bf_err err;
	bf_job job = build_fails(&w, &o, BF_EDUP, &err, &res);
	const bf_datum *c = &t_rows_get(&rows, 0)[bf_table_column(&t, "c")];
	char want[512];
	snprintf(want, sizeof(want), "Duplicate entry '%.*s' for key 'sbtest1.uc'", (int)c->v.b.len,
		 (const char *)c->v.b.ptr);
	cr_assert_str_eq(err.msg, want);
	cr_assert_geq(res.backend.imports, 1,
		      "the duplicate was meant to span imports, but none completed before it");
	cr_assert_eq(t_table_index_count(w.st, t.id, job.index_ids[0]), 0,
		     "entries of earlier imports are removed");
	t_table_get(w.st, "sbtest1", &t);
	cr_assert_lt(bf_table_index(&t, "uc"), 0);
	t_rows_free(&rows);
	t_rows_free(&extra);
	world_close(&w);
}

/* ---- catalog states ---- */

typedef struct state_watch {
	bf_store *st;
	const char *table, *index;
	uint64_t entries;    /* what the finished index holds */
	int calls, reorg, public_seen, public_partial, other;
	uint64_t max_imports_seen;
} state_watch;

/* Runs in the job's sink thread: what does the catalog say right now? */
static void watch_states(const bf_job *job, void *arg)
{
	state_watch *s = arg;
	bf_table t;
	s->calls++;
	if (bf_catalog_get_table(bf_store_catalog(s->st), s->table, &t, NULL) != 0) {
		s->other++;
		return;
	}
	int pos = bf_table_index(&t, s->index);
	if (pos < 0)
		s->other++;
	else if (t.indexes[pos].state == BF_INDEX_WRITE_REORG && t.indexes[pos].job_id == job->id)
		s->reorg++;
	else if (t.indexes[pos].state == BF_INDEX_PUBLIC) {
		/* Public only after the last import: every entry is there. */
		s->public_seen++;
		if (t_table_index_count(s->st, t.id, t.indexes[pos].id) != s->entries)
			s->public_partial++;
	}
	else
		s->other++;
	if (job->cp.imports > s->max_imports_seen)
		s->max_imports_seen = job->cp.imports;
}

Test(pipeline, catalog_states)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 100000, 9, &t);
	state_watch s = { .st = w.st, .table = "sbtest1", .index = "c_idx", .entries = 100000 };
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	o.workers = 1;
	o.mem = 64ULL << 20;
	o.import_every = 256ULL << 10;
	o.progress = watch_states;
	o.progress_arg = &s;
	add_spec(&o, "c_idx", "c", false);
	build_ok(&w, &o, &res);
	cr_assert_gt(s.calls, 0, "progress was reported");
	cr_assert_gt(s.reorg, 0, "the index was write-reorg while the job ran");
	cr_assert_eq(s.other, 0, "the index was only ever write-reorg or public");
	cr_assert_eq(s.reorg + s.public_seen, s.calls);
	cr_assert_eq(s.public_partial, 0, "the index was public before all its entries were imported");
	cr_assert_gt(res.backend.imports, 1, "imports during the scan: %" PRIu64, res.backend.imports);
	t_table_get(w.st, "sbtest1", &t);
	cr_assert_eq(t.indexes[bf_table_index(&t, "c_idx")].state, BF_INDEX_PUBLIC);

	/* The final import fails: the index must not become public, and no
	 * entry of it stays. */
	bf_fault_arm("store.ingest", 1);
	o = opts_for(&w, "sbtest1");
	add_spec(&o, "k_idx", "k", false);
	bf_job job = build_fails(&w, &o, BF_EFAULT, &err, &res);
	bf_fault_reset();
	cr_assert_eq(job.state, BF_JOB_FAILED);
	t_table_get(w.st, "sbtest1", &t);
	int pos = bf_table_index(&t, "k_idx");
	cr_assert_geq(pos, 0, "a retryable failure keeps the index for --resume");
	cr_assert_eq(t.indexes[pos].state, BF_INDEX_WRITE_REORG, "index is %s after a failed import",
		     bf_index_state_name(t.indexes[pos].state));
	cr_assert_eq(t.indexes[pos].job_id, job.id);
	cr_assert_eq(t_table_index_count(w.st, t.id, t.indexes[pos].id), 0);

	/* Resumed, it ends public and exact. */
	o = opts_for(&w, NULL);
	o.resume = true;
	o.job_id = job.id;
	build_ok(&w, &o, &res);
	t_table_expect_exact(w.st, "sbtest1", "k_idx", w.check_dir, 100000);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 100000);
	world_close(&w);
}

/* ---- resume and cancel through the library ---- */

Test(pipeline, resume_done_and_unknown)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 1000, 1, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "k_idx", "k", false);
	build_ok(&w, &o, &res);
	int64_t id = res.job.id;

	/* Sort files a process killed between its last commit and its
	 * clean-up would leave behind. */
	char *leftover = NULL;
	cr_assert_geq(asprintf(&leftover, "%s/job-%" PRId64 "/idx-1-g1", w.sort_dir, id), 0);
	char *cmd = NULL;
	cr_assert_geq(asprintf(&cmd, "mkdir -p '%s' && touch '%s/run-1.sst'", leftover, leftover), 0);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	free(leftover);

	o = opts_for(&w, NULL);
	o.resume = true;
	o.job_id = id;
	bf_err_clear(&err);
	cr_assert_eq(bf_add_index(w.st, &o, &res, &err), 0, "resuming a done job: %s", bf_err_text(&err));
	cr_assert_not(t_path_exists(w.sort_dir), "resuming a done job removes its leftover sort files");
	cr_assert(res.noop, "resuming a done job is a no-op");
	cr_assert_eq(res.job.state, BF_JOB_DONE);
	cr_assert_eq(res.rows, 0);
	t_table_expect_exact(w.st, "sbtest1", "k_idx", w.check_dir, 1000);

	o.job_id = id + 100;
	build_fails(&w, &o, BF_ENOTFOUND, &err, &res);
	o.job_id = 0;
	build_fails(&w, &o, BF_EINVAL, &err, &res);
	cr_assert_eq(count_jobs(w.st), 1, "failed resumes create no job");
	world_close(&w);
}

Test(pipeline, cancel_failed_job)
{
	world w;
	bf_add_index_result res;
	bf_table t;
	bf_err err;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 20000, 1, &t);
	bf_fault_arm("store.ingest", 1);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "c_idx", "c", false);
	add_spec(&o, "upad", "pad", true);
	bf_job job = build_fails(&w, &o, BF_EFAULT, &err, &res);
	bf_fault_reset();

	bf_err_clear(&err);
	cr_assert_eq(bf_job_cancel(w.st, NULL, job.id, &err), 0, "cancel: %s", bf_err_text(&err));
	bf_job rec;
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(w.st), job.id, &rec, &err), 0);
	cr_assert_eq(rec.state, BF_JOB_CANCELLED, "job is %s", bf_job_state_name(rec.state));
	t_table_get(w.st, "sbtest1", &t);
	cr_assert_eq(t.nindexes, 0, "the job's indexes are dropped");
	cr_assert_eq(t_table_index_count(w.st, t.id, 0), 0);
	cr_assert_not(t_path_exists(w.sort_dir), "sort files removed");
	cr_assert_eq(bf_job_cancel(w.st, NULL, job.id, &err), 0, "cancelling twice is harmless");

	/* A cancelled job can't be resumed; its names are free again. */
	o = opts_for(&w, NULL);
	o.resume = true;
	o.job_id = job.id;
	build_fails(&w, &o, BF_ESTATE, &err, &res);
	o = opts_for(&w, "sbtest1");
	add_spec(&o, "c_idx", "c", false);
	build_ok(&w, &o, &res);
	t_table_expect_exact(w.st, "sbtest1", "c_idx", w.check_dir, 20000);
	cr_assert_eq(bf_job_cancel(w.st, NULL, res.job.id, &err), BF_ESTATE, "a done job can't be cancelled");
	cr_assert_eq(bf_job_cancel(w.st, NULL, 999, &err), BF_ENOTFOUND);
	world_close(&w);
}

/* ---- bad specifications ---- */

Test(pipeline, bad_specs_change_nothing)
{
	world w;
	bf_add_index_result res;
	bf_table t, after;
	bf_err err;

	world_open(&w);
	t_table_gen_sbtest(w.st, "sbtest1", 100, 1, &t);
	bf_add_index_opts o = opts_for(&w, "sbtest1");
	add_spec(&o, "k_idx", "k", false);
	build_ok(&w, &o, &res);
	t_table_get(w.st, "sbtest1", &t);

	o = opts_for(&w, "nosuch");
	add_spec(&o, "x", "k", false);
	build_fails(&w, &o, BF_ENOTFOUND, &err, &res);
	cr_assert_not_null(strstr(err.msg, "nosuch"), "names the table: %s", err.msg);

	o = opts_for(&w, "sbtest1");
	add_spec(&o, "x", "k,nope", false);
	build_fails(&w, &o, BF_EINVAL, &err, &res);
	cr_assert_not_null(strstr(err.msg, "'nope'"), "names the column: %s", err.msg);

	o = opts_for(&w, "sbtest1");
	add_spec(&o, "x", "k,k", false);
	build_fails(&w, &o, BF_EINVAL, &err, &res);

	o = opts_for(&w, "sbtest1");
	add_spec(&o, "x", "", false);
	build_fails(&w, &o, BF_EINVAL, &err, &res);

	o = opts_for(&w, "sbtest1");
	add_spec(&o, "k_idx", "c", false);
	build_fails(&w, &o, BF_EEXIST, &err, &res);
	cr_assert_not_null(strstr(err.msg, "'k_idx'"), "names the index: %s", err.msg);

	/* The same new name twice in one job. */
	o = opts_for(&w, "sbtest1");
	add_spec(&o, "twice", "c", false);
	add_spec(&o, "twice", "pad", false);
	build_fails(&w, &o, BF_EINVAL, &err, &res);
	cr_assert_not_null(strstr(err.msg, "'twice'"), "names the index: %s", err.msg);
	cr_assert_null(strstr(err.msg, "job 0"), "no job 0 exists to resume or cancel: %s", err.msg);

	cr_assert_eq(count_jobs(w.st), 1, "rejected specs leave no job behind");
	t_table_get(w.st, "sbtest1", &after);
	cr_assert_eq(after.nindexes, t.nindexes, "rejected specs leave the table alone");
	cr_assert_eq(after.next_index_id, t.next_index_id);
	world_close(&w);
}
