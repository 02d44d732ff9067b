/*
 * gen: the sbtest generator. Same seed, same bytes, however the rows are
 * split between threads; every row has sysbench's shape; an existing table
 * is refused without touching the store.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/error.h"
#include "bfill/gen.h"
#include "bfill/store.h"
#include "tests/support/support.h"

/* Each test's scratch directory goes in the suite's fini, even when an
 * assertion ends the test early. */
TestSuite(gen, .fini = t_scratch_remove);

/* Every key and value of a store, length-prefixed, in key order. */
typedef struct scan {
	uint8_t *buf;
	size_t len, cap;
	size_t keys, record_keys, other_data_keys;
} scan;

static void scan_append(scan *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
		cr_assert_not_null(s->buf);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

#define UUID_RECORD BF_CATALOG_PREFIX "uuid"

static scan scan_store(bf_store *st)
{
	scan s = { 0 };
	bf_store_iter *it = NULL;
	bf_err err = { 0 };

	cr_assert_eq(bf_store_iter_create(st, NULL, 0, NULL, 0, NULL, &it, &err), 0, "%s",
		     bf_err_text(&err));
	for (; bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = bf_store_iter_key(it, &klen), *v = bf_store_iter_value(it, &vlen);
		uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
		/* Every store has a UUID of its own; the data is what must agree. */
		if (klen == strlen(UUID_RECORD) && !memcmp(k, UUID_RECORD, klen))
			continue;
		scan_append(&s, &kl, sizeof(kl));
		scan_append(&s, k, klen);
		scan_append(&s, &vl, sizeof(vl));
		scan_append(&s, v, vlen);
		s.keys++;
		if (klen && k[0] == 't') {
			if (bf_codec_decode_record_key(k, klen, NULL, NULL) == 0)
				s.record_keys++;
			else
				s.other_data_keys++;
		}
	}
	cr_assert_eq(bf_store_iter_status(it, &err), 0, "%s", bf_err_text(&err));
	bf_store_iter_destroy(it);
	return s;
}

static scan scan_dir(const char *dir)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	cr_assert_eq(bf_store_open(dir, BF_STORE_READONLY, &st, &err), 0, "%s", bf_err_text(&err));
	scan s = scan_store(st);
	bf_store_close(st);
	return s;
}

static bool scans_equal(const scan *a, const scan *b)
{
	return a->len == b->len && a->keys == b->keys && memcmp(a->buf, b->buf, a->len) == 0;
}

/* Generates into a new store at <tmp>/<name>; returns its path (malloc'd). */
static char *gen_store(const char *tmp, const char *name, const bf_gen_opts *o,
		       bf_gen_stats *stats)
{
	char *dir = NULL;
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_gen_stats local;

	cr_assert_geq(asprintf(&dir, "%s/%s", tmp, name), 0);
	cr_assert_eq(bf_store_open(dir, BF_STORE_CREATE, &st, &err), 0, "%s", bf_err_text(&err));
	int rc = bf_gen_sbtest(st, o, stats ? stats : &local, &err);
	cr_assert_eq(rc, 0, "gen: %s", bf_err_text(&err));
	bf_store_close(st);
	return dir;
}

/* No "bfill-gen.*" scratch directory may be left in a store. */
static void expect_no_scratch(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		cr_assert_null(strstr(e->d_name, "bfill-gen"), "left behind: %s/%s", dir, e->d_name);
	closedir(d);
}

Test(gen, row_function_is_deterministic)
{
	int64_t k1, k2;
	char c1[BF_SBTEST_C_LEN], c2[BF_SBTEST_C_LEN], p1[BF_SBTEST_PAD_LEN], p2[BF_SBTEST_PAD_LEN];

	bf_gen_sbtest_row(5, 1234, 1000000, &k1, c1, p1);
	bf_gen_sbtest_row(5, 1234, 1000000, &k2, c2, p2);
	cr_assert(k1 == k2 && !memcmp(c1, c2, sizeof(c1)) && !memcmp(p1, p2, sizeof(p1)));
	cr_assert(t_is_digit_groups(c1, sizeof(c1), 10));
	cr_assert(t_is_digit_groups(p1, sizeof(p1), 5));
	cr_assert_eq(BF_SBTEST_C_LEN, 119);
	cr_assert_eq(BF_SBTEST_PAD_LEN, 59);

	/* Another seed or another handle gives another row. */
	bf_gen_sbtest_row(6, 1234, 1000000, &k2, c2, p2);
	cr_assert(memcmp(c1, c2, sizeof(c1)) != 0, "seed changes c");
	bf_gen_sbtest_row(5, 1235, 1000000, &k2, c2, p2);
	cr_assert(memcmp(c1, c2, sizeof(c1)) != 0, "handle changes c");
	cr_assert(memcmp(p1, p2, sizeof(p1)) != 0, "handle changes pad");
	/* A one-row table can only have k = 1. */
	for (int64_t h = 1; h < 100; h++) {
		bf_gen_sbtest_row(h * 31, h, 1, &k1, c1, p1);
		cr_assert_eq(k1, 1);
	}
}

Test(gen, same_seed_same_store)
{
	char *tmp = t_scratch_new("gen");
	bf_gen_opts o = { .rows = 20000, .seed = 7 };
	char *a = gen_store(tmp, "a", &o, NULL);
	char *b = gen_store(tmp, "b", &o, NULL);
	o.seed = 8;
	char *c = gen_store(tmp, "c", &o, NULL);

	scan sa = scan_dir(a), sb = scan_dir(b), sc = scan_dir(c);
	cr_assert_eq(sa.record_keys, 20000);
	cr_assert(scans_equal(&sa, &sb), "same seed: stores differ (%zu vs %zu bytes)", sa.len, sb.len);
	/* Another seed: the same keys and catalog, other values. */
	cr_assert_eq(sc.record_keys, 20000);
	cr_assert_eq(sc.keys, sa.keys);
	cr_assert(!scans_equal(&sa, &sc), "different seeds gave identical stores");
	free(sa.buf);
	free(sb.buf);
	free(sc.buf);
	free(a);
	free(b);
	free(c);
}

Test(gen, thread_split_does_not_change_data)
{
	char *tmp = t_scratch_new("gen");
	/* An odd count, so the split leaves a remainder. */
	bf_gen_opts o = { .rows = 10007, .seed = 99, .threads = 1 };
	bf_gen_stats s1, s2, s3;
	char *one = gen_store(tmp, "one", &o, &s1);
	o.threads = 2;
	char *two = gen_store(tmp, "two", &o, &s2);
	o.threads = 3;
	o.compression = BF_COMPRESS_LZ4;
	char *three = gen_store(tmp, "three", &o, &s3);

	scan a = scan_dir(one), b = scan_dir(two), c = scan_dir(three);
	cr_assert_eq(a.record_keys, 10007);
	cr_assert(scans_equal(&a, &b), "threads=1 and threads=2 differ");
	cr_assert(scans_equal(&a, &c), "threads=1 and threads=3 (lz4) differ");
	cr_assert_eq(s1.bytes, s2.bytes);
	cr_assert_eq(s1.bytes, s3.bytes);
	cr_assert_geq(s2.files, 2, "two threads write at least two files");
	cr_assert_geq(s3.files, 3);
	free(a.buf);
	free(b.buf);
	free(c.buf);
	free(one);
	free(two);
	free(three);
}

struct progress_log {
	int calls;
	uint64_t last_done, last_total;
	bool monotonic;
};

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
	struct progress_log *p = arg;
	if (p->calls && done < p->last_done)
		p->monotonic = false;
	p->calls++;
	p->last_done = done;
	p->last_total = total;
}

Test(gen, rows_have_sysbench_shape)
{
	enum { N = 50000 };
	char *tmp = t_scratch_new("gen");
	struct progress_log prog = { .monotonic = true };
	bf_gen_opts o = { .rows = N, .seed = 2024, .progress = on_progress, .progress_arg = &prog };
	bf_gen_stats stats;
	char *dir = gen_store(tmp, "s", &o, &stats);
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_table t;

	cr_assert_eq(stats.table_id, 100, "the first table gets id 100");
	cr_assert_eq(stats.rows, N);
	cr_assert_geq(stats.files, 1);
	cr_assert_gt(stats.seconds, 0);
	cr_assert_geq(prog.calls, 1, "progress was reported");
	cr_assert(prog.monotonic, "progress went backwards");
	cr_assert_eq(prog.last_done, N);
	cr_assert_eq(prog.last_total, N);
	expect_no_scratch(dir);

	cr_assert_eq(bf_store_open(dir, BF_STORE_READONLY, &st, &err), 0);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "sbtest1", &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(t.id, 100);
	cr_assert_eq(t.rows_hint, N);
	cr_assert_eq(t.ncols, 4);
	cr_assert_eq(t.nindexes, 0);

	uint8_t lo[BF_TABLE_PREFIX_LEN], hi[BF_TABLE_PREFIX_LEN];
	bf_codec_table_prefix(lo, t.id);
	bf_codec_table_prefix(hi, t.id + 1);
	bf_store_iter *it = NULL;
	cr_assert_eq(bf_store_iter_create(st, lo, sizeof(lo), hi, sizeof(hi), NULL, &it, &err), 0);
	int64_t want = 1, kmin = INT64_MAX, kmax = 0;
	double ksum = 0;
	uint64_t digits[10] = { 0 }, bytes = 0, distinct_k = 0;
	uint8_t *seen = calloc(N + 1, 1);
	for (; bf_store_iter_valid(it); bf_store_iter_next(it), want++) {
		size_t klen, vlen;
		const uint8_t *k = bf_store_iter_key(it, &klen), *v = bf_store_iter_value(it, &vlen);
		int64_t tid, h;
		bf_row_view rv;
		bytes += klen + vlen;
		cr_assert_eq(bf_codec_decode_record_key(k, klen, &tid, &h), 0, "row %lld key", (long long)want);
		cr_assert_eq(tid, 100);
		cr_assert_eq(h, want, "handles are 1..N without gaps");
		cr_assert_eq(bf_codec_row_view(&rv, v, vlen), 0, "row %lld value", (long long)h);
		cr_assert_eq(rv.n_notnull, 3, "row %lld: id lives in the key, k/c/pad in the value", (long long)h);
		cr_assert_eq(rv.n_null, 0);
		cr_assert(!rv.large);

		bf_datum d[4];
		for (int col = 0; col < 4; col++)
			cr_assert_eq(bf_table_decode_column(&t, col, &rv, h, &d[col]), 0);
		cr_assert(d[0].kind == BF_DATUM_INT && d[0].v.i == h);
		cr_assert_eq(d[1].kind, BF_DATUM_INT);
		cr_assert(d[1].v.i >= 1 && d[1].v.i <= N, "row %lld: k = %lld", (long long)h, (long long)d[1].v.i);
		cr_assert_eq(d[2].kind, BF_DATUM_BYTES);
		cr_assert_eq(d[2].v.b.len, 119, "row %lld: c length %zu", (long long)h, d[2].v.b.len);
		cr_assert(t_is_digit_groups(d[2].v.b.ptr, d[2].v.b.len, 10), "row %lld: c = %.*s",
			  (long long)h, (int)d[2].v.b.len, d[2].v.b.ptr);
		cr_assert_eq(d[3].v.b.len, 59, "row %lld: pad length %zu", (long long)h, d[3].v.b.len);
		cr_assert(t_is_digit_groups(d[3].v.b.ptr, d[3].v.b.len, 5), "row %lld: pad = %.*s",
			  (long long)h, (int)d[3].v.b.len, d[3].v.b.ptr);

		/* The stored row is exactly the row function's. */
		int64_t gk;
		char gc[BF_SBTEST_C_LEN], gp[BF_SBTEST_PAD_LEN];
		bf_gen_sbtest_row(2024, h, N, &gk, gc, gp);
		cr_assert_eq(gk, d[1].v.i);
		cr_assert(!memcmp(gc, d[2].v.b.ptr, sizeof(gc)) && !memcmp(gp, d[3].v.b.ptr, sizeof(gp)));

		int64_t kv = d[1].v.i;
		kmin = kv < kmin ? kv : kmin;
		kmax = kv > kmax ? kv : kmax;
		ksum += (double)kv;
		if (!seen[kv]++)
			distinct_k++;
		for (int s = 2; s < 4; s++)
			for (size_t i = 0; i < d[s].v.b.len; i++)
				if (d[s].v.b.ptr[i] != '-')
					digits[d[s].v.b.ptr[i] - '0']++;
	}
	cr_assert_eq(bf_store_iter_status(it, &err), 0);
	bf_store_iter_destroy(it);
	bf_store_close(st);
	free(seen);

	cr_assert_eq(want - 1, N, "%lld rows, want %d", (long long)(want - 1), N);
	cr_assert_eq(stats.bytes, bytes, "stats.bytes %llu, scanned %llu",
		     (unsigned long long)stats.bytes, (unsigned long long)bytes);
	/* Uniform k over [1, N]: full spread, mean near N/2, and about
	 * N(1 - 1/e) distinct values as for independent uniform draws. */
	cr_assert_leq(kmin, N / 100, "kmin %lld", (long long)kmin);
	cr_assert_geq(kmax, N - N / 100, "kmax %lld", (long long)kmax);
	cr_assert_float_eq(ksum / N, N / 2.0, N * 0.01, "mean k %.1f", ksum / N);
	cr_assert(distinct_k > N * 0.62 && distinct_k < N * 0.645, "%llu distinct k",
		  (unsigned long long)distinct_k);
	/* Uniform digits: 110 + 55 per row, each within 1% of a tenth. */
	double total = 165.0 * N;
	for (int dgt = 0; dgt < 10; dgt++)
		cr_assert_float_eq(digits[dgt] / total, 0.1, 0.001, "digit %d: %.4f", dgt,
				   digits[dgt] / total);
	free(dir);
}

Test(gen, zero_rows_is_an_empty_table)
{
	char *tmp = t_scratch_new("gen");
	bf_gen_opts o = { .rows = 0, .seed = 1 };
	bf_gen_stats stats;
	char *dir = gen_store(tmp, "s", &o, &stats);
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_table t;

	cr_assert_eq(stats.rows, 0);
	cr_assert_eq(stats.bytes, 0);
	cr_assert_eq(stats.files, 0);
	expect_no_scratch(dir);
	cr_assert_eq(bf_store_open(dir, 0, &st, &err), 0);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "sbtest1", &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(t.id, stats.table_id);
	cr_assert_eq(t.rows_hint, 0);
	scan s = scan_store(st);
	cr_assert_eq(s.record_keys, 0);
	cr_assert_eq(s.other_data_keys, 0);
	free(s.buf);

	/* The empty table still exists: a second load of it is refused. */
	cr_assert_eq(bf_gen_sbtest(st, &o, &stats, &err), BF_EEXIST);
	bf_store_close(st);
	free(dir);
}

Test(gen, one_row)
{
	char *tmp = t_scratch_new("gen");
	bf_gen_opts o = { .rows = 1, .seed = 3, .threads = 4 };
	bf_gen_stats stats;
	char *dir = gen_store(tmp, "s", &o, &stats);
	bf_store *st = NULL;
	bf_err err = { 0 };
	char *val = NULL;
	size_t vlen;
	uint8_t key[BF_RECORD_KEY_LEN];
	bf_row_view rv;
	const uint8_t *p;
	size_t n;
	int64_t k;

	cr_assert_eq(stats.rows, 1);
	cr_assert_eq(stats.files, 1, "more threads than rows: one file");
	cr_assert_eq(bf_store_open(dir, BF_STORE_READONLY, &st, &err), 0);
	scan s = scan_store(st);
	cr_assert_eq(s.record_keys, 1);
	cr_assert_eq(s.other_data_keys, 0);
	free(s.buf);
	bf_codec_record_key(key, stats.table_id, 1);
	cr_assert_eq(bf_store_get(st, key, sizeof(key), &val, &vlen, &err), 0);
	cr_assert_eq(bf_codec_row_view(&rv, (uint8_t *)val, vlen), 0);
	cr_assert_eq(bf_codec_row_find(&rv, 2, &p, &n), BF_ROW_PRESENT);
	cr_assert_eq(bf_codec_row_decode_int(p, n, &k), 0);
	cr_assert_eq(k, 1, "k is in [1, 1]");
	cr_assert_eq(stats.bytes, sizeof(key) + vlen);
	free(val);
	bf_store_close(st);
	free(dir);
}

Test(gen, existing_table_leaves_store_unchanged)
{
	char *tmp = t_scratch_new("gen");
	bf_gen_opts o = { .rows = 3000, .seed = 11 };
	bf_gen_stats stats;
	char *dir = gen_store(tmp, "s", &o, &stats);
	bf_store *st = NULL;
	bf_err err = { 0 };

	cr_assert_eq(bf_store_open(dir, 0, &st, &err), 0);
	scan before = scan_store(st);

	/* Same table, other rows and seed: refused, nothing written, no id used. */
	bf_gen_opts again = { .rows = 10, .seed = 12 };
	cr_assert_eq(bf_gen_sbtest(st, &again, &stats, &err), BF_EEXIST);
	cr_assert_not_null(strstr(err.msg, "sbtest1"), "message names the table: %s", err.msg);
	cr_assert_not_null(strstr(err.msg, "exists"), "message: %s", err.msg);
	scan after = scan_store(st);
	cr_assert(scans_equal(&before, &after), "a refused gen changed the store");
	expect_no_scratch(dir);

	/* Bad names are refused before anything happens. */
	again.table = "";
	cr_assert_eq(bf_gen_sbtest(st, &again, &stats, &err), BF_EINVAL);
	again.table = "a_table_name_that_is_far_too_long_for_the_catalog_to_hold_it_at_all";
	cr_assert_eq(bf_gen_sbtest(st, &again, &stats, &err), BF_EINVAL);
	scan after_bad = scan_store(st);
	cr_assert(scans_equal(&before, &after_bad), "a refused name changed the store");

	/* Another table in the same store: the next id, its own key range. */
	again.table = "sbtest2";
	cr_assert_eq(bf_gen_sbtest(st, &again, &stats, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(stats.table_id, 101);
	scan both = scan_store(st);
	cr_assert_eq(both.record_keys, 3010);
	bf_store_close(st);
	free(before.buf);
	free(after.buf);
	free(after_bad.buf);
	free(both.buf);
	free(dir);
}

Test(gen, read_only_store_is_refused)
{
	char *tmp = t_scratch_new("gen");
	bf_gen_opts o = { .rows = 100, .seed = 1, .table = "first" };
	char *dir = gen_store(tmp, "s", &o, NULL);
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_gen_stats stats;
	bf_table t;

	scan before = scan_dir(dir);
	cr_assert_eq(bf_store_open(dir, BF_STORE_READONLY, &st, &err), 0);
	o.table = "second";
	cr_assert_neq(bf_gen_sbtest(st, &o, &stats, &err), 0, "gen into a read-only store");
	cr_assert_neq(err.msg[0], '\0');
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "second", &t, NULL), BF_ENOTFOUND);
	bf_store_close(st);
	scan after = scan_dir(dir);
	cr_assert(scans_equal(&before, &after));
	expect_no_scratch(dir);
	free(before.buf);
	free(after.buf);
	free(dir);
}
