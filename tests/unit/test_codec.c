/*
 * codec: golden vectors from TiDB's encodings, random round trips over edge
 * values, and malformed inputs that must be rejected without over-reads.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/codec.h"
#include "bfill/error.h"
#include "tests/support/support.h"

static void expect_bytes(const uint8_t *got, size_t gotlen, const char *hex)
{
	uint8_t want[512];
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		want[i] = (uint8_t)v;
	}
	cr_assert_eq(gotlen, n, "length %zu, want %zu", gotlen, n);
	cr_assert(memcmp(got, want, n) == 0, "bytes differ from %s", hex);
}

Test(codec, bytes_golden)
{
	uint8_t buf[64];
	const uint8_t in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	expect_bytes(buf, bf_codec_put_bytes(buf, "", 0), "0000000000000000f7");
	expect_bytes(buf, bf_codec_put_bytes(buf, in, 3), "0102030000000000fa");
	expect_bytes(buf, bf_codec_put_bytes(buf, in, 8), "0102030405060708ff0000000000000000f7");
	expect_bytes(buf, bf_codec_put_bytes(buf, "abc", 3), "6162630000000000fa");
	cr_assert_eq(bf_codec_bytes_len(0), 9);
	cr_assert_eq(bf_codec_bytes_len(8), 18);
	cr_assert_eq(bf_codec_bytes_len(119), 135);
}

Test(codec, int_golden)
{
	uint8_t buf[8];
	bf_codec_put_int(buf, 0);
	expect_bytes(buf, 8, "8000000000000000");
	bf_codec_put_int(buf, -1);
	expect_bytes(buf, 8, "7fffffffffffffff");
	bf_codec_put_int(buf, INT64_MIN);
	expect_bytes(buf, 8, "0000000000000000");
	bf_codec_put_int(buf, INT64_MAX);
	expect_bytes(buf, 8, "ffffffffffffffff");
	bf_codec_put_uint(buf, 1);
	expect_bytes(buf, 8, "0000000000000001");
}

Test(codec, record_key_golden)
{
	uint8_t k[BF_RECORD_KEY_LEN];
	int64_t tid, h;
	bf_codec_record_key(k, 1, 1);
	expect_bytes(k, sizeof(k), "7480000000000000015f728000000000000001");
	bf_codec_record_key(k, 100, -5);
	cr_assert_eq(bf_codec_decode_record_key(k, sizeof(k), &tid, &h), 0);
	cr_assert_eq(tid, 100);
	cr_assert_eq(h, -5);
	cr_assert_eq(bf_codec_decode_record_key(k, sizeof(k) - 1, &tid, &h), BF_ECORRUPT);
	k[10] = 'i';
	cr_assert_eq(bf_codec_decode_record_key(k, sizeof(k), &tid, &h), BF_ECORRUPT);
}

Test(codec, index_key_golden)
{
	uint8_t k[128];
	bf_datum cols[2] = { bf_datum_int(7), bf_datum_bytes("abc", 3) };
	size_t n = bf_codec_index_key(k, 1, 2, cols, 2, true, 9);
	/* t{1}_i{2} 03{7} 01"abc"pad fa 03{9} */
	expect_bytes(k, n, "748000000000000001" "5f69" "8000000000000002"
			   "038000000000000007" "016162630000000000fa" "038000000000000009");
	cr_assert_eq(n, bf_codec_index_key_len(cols, 2, true));

	bf_datum nul = bf_datum_null();
	n = bf_codec_index_key(k, 1, 2, &nul, 1, false, 0);
	expect_bytes(k, n, "7480000000000000015f69800000000000000200");
	bf_datum u = bf_datum_uint(UINT64_MAX);
	n = bf_codec_index_key(k, 1, 2, &u, 1, false, 0);
	expect_bytes(k, n, "7480000000000000015f69800000000000000204ffffffffffffffff");
}

/* DOUBLE, DECIMAL and DATETIME in keys and rows; test_codec_types.c has
 * the rest of their cases. */
Test(codec, float_golden)
{
	uint8_t k[64];
	bf_datum f = bf_datum_float(1.5);
	size_t n = bf_codec_index_key(k, 1, 2, &f, 1, false, 0);
	expect_bytes(k, n, "7480000000000000015f698000000000000002" "05bff8000000000000");
	f = bf_datum_float(-2.5);
	n = bf_codec_index_key(k, 1, 2, &f, 1, false, 0);
	expect_bytes(k, n, "7480000000000000015f698000000000000002" "053ffbffffffffffff");
	f = bf_datum_float(-0.0);
	n = bf_codec_index_key(k, 1, 2, &f, 1, false, 0);
	expect_bytes(k, n, "7480000000000000015f698000000000000002" "058000000000000000");
}

Test(codec, decimal_golden)
{
	/* MySQL's documented example: 1234567890.1234 as DECIMAL(14,4). */
	uint8_t bin[BF_DECIMAL_BIN_MAX], k[64], row[64];
	int order[1];
	cr_assert_eq(bf_decimal_parse("1234567890.1234", 15, 14, 4, bin), 0);
	expect_bytes(bin, bf_decimal_bin_len(14, 4), "810dfb38d204d2");
	bf_datum d = bf_datum_decimal(bin, 7, 14, 4);
	size_t n = bf_codec_index_key(k, 1, 2, &d, 1, false, 0);
	expect_bytes(k, n, "7480000000000000015f698000000000000002" "060e04810dfb38d204d2");
	bf_row_col c = { 1, d };
	long rn = bf_codec_row_encode(row, &c, 1, order);
	expect_bytes(row, (size_t)rn, "800001000000" "01" "0900" "0e04810dfb38d204d2");

	cr_assert_eq(bf_decimal_parse("-1234567890.1234", 16, 14, 4, bin), 0);
	expect_bytes(bin, 7, "7ef204c72dfb2d");
	cr_assert_eq(bf_decimal_parse("-10.55", 6, 4, 2, bin), 0);
	expect_bytes(bin, 2, "75c8");
	cr_assert_eq(bf_decimal_parse("-0.00", 5, 4, 2, bin), 0);
	expect_bytes(bin, 2, "8000");
}

Test(codec, datetime_golden)
{
	/* A DATETIME is the uint of its packed value: 8 bytes big-endian in
	 * keys, little-endian in rows. */
	uint8_t k[64], row[64];
	int order[1];
	uint64_t p;
	cr_assert_eq(bf_datetime_parse("2020-12-31 23:59:59.999999", 26, 6, &p), 0);
	cr_assert_eq(p, 0x19a83f7efb0f423fULL);
	bf_datum d = bf_datum_uint(p);
	size_t n = bf_codec_index_key(k, 1, 2, &d, 1, false, 0);
	expect_bytes(k, n, "7480000000000000015f698000000000000002" "0419a83f7efb0f423f");
	bf_row_col c = { 1, d };
	long rn = bf_codec_row_encode(row, &c, 1, order);
	expect_bytes(row, (size_t)rn, "800001000000" "01" "0800" "3f420ffb7e3fa819");
	cr_assert_eq(bf_datetime_parse("1000-01-01", 10, 0, &p), 0);
	cr_assert_eq(p, 0x0cb2420000000000ULL);
}

Test(codec, index_value_golden)
{
	uint8_t v[BF_INDEX_VALUE_MAX];
	bool has;
	int64_t h;
	expect_bytes(v, bf_codec_index_value(v, true, 5), "30");
	expect_bytes(v, bf_codec_index_value(v, false, 1), "0000000000000001");
	expect_bytes(v, bf_codec_index_value(v, false, -1), "ffffffffffffffff");
	cr_assert_eq(bf_codec_decode_index_value(v, 8, &has, &h), 0);
	cr_assert(has);
	cr_assert_eq(h, -1);
	cr_assert_eq(bf_codec_decode_index_value((const uint8_t *)"0", 1, &has, &h), 0);
	cr_assert(!has);
	cr_assert_eq(bf_codec_decode_index_value(v, 5, &has, &h), BF_ECORRUPT);
	cr_assert_eq(bf_codec_decode_index_value(v, 0, &has, &h), BF_ECORRUPT);
}

Test(codec, needs_handle)
{
	bf_datum a[2] = { bf_datum_int(1), bf_datum_null() };
	cr_assert(bf_codec_index_needs_handle(false, a, 1));
	cr_assert(!bf_codec_index_needs_handle(true, a, 1));
	cr_assert(bf_codec_index_needs_handle(true, a, 2));
}

Test(codec, prefix_next)
{
	uint8_t a[] = { 1, 2, 0xff, 0xff };
	cr_assert_eq(bf_codec_prefix_next(a, 4), 2);
	cr_assert_eq(a[1], 3);
	uint8_t b[] = { 0xff, 0xff };
	cr_assert_eq(bf_codec_prefix_next(b, 2), 0);
}

Test(codec, rowv2_golden)
{
	uint8_t buf[64];
	int order[3];
	bf_row_col cols[3] = {
		{ 4, bf_datum_null() },
		{ 3, bf_datum_bytes("abc", 3) },
		{ 2, bf_datum_int(5) },
	};
	long n = bf_codec_row_encode(buf, cols, 3, order);
	cr_assert_gt(n, 0);
	expect_bytes(buf, (size_t)n, "800002000100" "020304" "01000400" "05616263");
	cr_assert_eq((size_t)n, bf_codec_row_len(cols, 3));

	bf_row_view rv;
	const uint8_t *p;
	size_t len;
	int64_t i;
	cr_assert_eq(bf_codec_row_view(&rv, buf, (size_t)n), 0);
	cr_assert_eq(bf_codec_row_find(&rv, 2, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(bf_codec_row_decode_int(p, len, &i), 0);
	cr_assert_eq(i, 5);
	cr_assert_eq(bf_codec_row_find(&rv, 3, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(len, 3);
	cr_assert(p >= buf && p < buf + n, "string must point into the row");
	cr_assert_eq(bf_codec_row_find(&rv, 4, &p, &len), BF_ROW_NULL);
	cr_assert_eq(bf_codec_row_find(&rv, 9, &p, &len), BF_ROW_ABSENT);
}

Test(codec, rowv2_int_widths)
{
	const int64_t vals[] = { 0, -1, 127, 128, -128, -129, 32767, 32768, -32769,
				 INT32_MAX, (int64_t)INT32_MAX + 1, INT32_MIN, INT64_MIN, INT64_MAX };
	const size_t widths[] = { 1, 1, 1, 2, 1, 2, 2, 4, 4, 4, 8, 4, 8, 8 };
	for (size_t t = 0; t < sizeof(vals) / sizeof(vals[0]); t++) {
		uint8_t buf[64];
		int order[1];
		bf_row_col c = { 1, bf_datum_int(vals[t]) };
		long n = bf_codec_row_encode(buf, &c, 1, order);
		bf_row_view rv;
		const uint8_t *p;
		size_t len;
		int64_t got;
		cr_assert_eq(bf_codec_row_view(&rv, buf, (size_t)n), 0);
		cr_assert_eq(bf_codec_row_find(&rv, 1, &p, &len), BF_ROW_PRESENT);
		cr_assert_eq(len, widths[t], "value %lld width %zu", (long long)vals[t], len);
		cr_assert_eq(bf_codec_row_decode_int(p, len, &got), 0);
		cr_assert_eq(got, vals[t]);
	}
	uint64_t u;
	uint8_t ub[64];
	int order[1];
	bf_row_col c = { 1, bf_datum_uint(UINT64_MAX) };
	long n = bf_codec_row_encode(ub, &c, 1, order);
	bf_row_view rv;
	const uint8_t *p;
	size_t len;
	cr_assert_eq(bf_codec_row_view(&rv, ub, (size_t)n), 0);
	cr_assert_eq(bf_codec_row_find(&rv, 1, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(bf_codec_row_decode_uint(p, len, &u), 0);
	cr_assert_eq(u, UINT64_MAX);
}

Test(codec, rowv2_large_forms)
{
	/* An id above 255 forces the large form; so does > 64 KiB of data. */
	static uint8_t big[70000], buf[70100];
	int order[2];
	memset(big, 'x', sizeof(big));
	bf_row_col cols[2] = { { 300, bf_datum_int(-7) }, { 2, bf_datum_bytes(big, sizeof(big)) } };
	long n = bf_codec_row_encode(buf, cols, 2, order);
	cr_assert_gt(n, 0);
	cr_assert_eq(buf[1] & 1, 1, "large flag");
	bf_row_view rv;
	const uint8_t *p;
	size_t len;
	int64_t v;
	cr_assert_eq(bf_codec_row_view(&rv, buf, (size_t)n), 0);
	cr_assert(rv.large);
	cr_assert_eq(bf_codec_row_find(&rv, 2, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(len, sizeof(big));
	cr_assert_eq(bf_codec_row_find(&rv, 300, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(bf_codec_row_decode_int(p, len, &v), 0);
	cr_assert_eq(v, -7);

	bf_row_col one = { 256, bf_datum_bytes("", 0) };
	n = bf_codec_row_encode(buf, &one, 1, order);
	expect_bytes(buf, (size_t)n, "800101000000" "00010000" "00000000");
}

Test(codec, rowv2_rejects_duplicates)
{
	uint8_t buf[64];
	int order[2];
	bf_row_col cols[2] = { { 3, bf_datum_int(1) }, { 3, bf_datum_int(2) } };
	cr_assert_eq(bf_codec_row_encode(buf, cols, 2, order), BF_EINVAL);
	bf_row_col neg = { -1, bf_datum_int(1) };
	cr_assert_eq(bf_codec_row_encode(buf, &neg, 1, order), BF_EINVAL);
}

static uint64_t rng = 0x1234567;
static uint64_t next_rand(void) { return t_xorshift64(&rng); }

Test(codec, bytes_round_trip_random)
{
	uint8_t in[64], enc[128], out[128];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = next_rand() % 40, got, used;
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)next_rand();
		size_t e = bf_codec_put_bytes(enc, in, n);
		cr_assert_eq(e, bf_codec_bytes_len(n));
		cr_assert_eq(bf_codec_get_bytes(enc, e, out, &got, &used), 0);
		cr_assert_eq(got, n);
		cr_assert_eq(used, e);
		cr_assert(memcmp(in, out, n) == 0);
	}
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

Test(codec, keys_preserve_order)
{
	/* Encoded keys must sort exactly like the values they encode. */
	for (int iter = 0; iter < 20000; iter++) {
		int64_t a = (int64_t)next_rand(), b = (int64_t)next_rand();
		if (iter % 3 == 0)
			b = a + (int64_t)(next_rand() % 3) - 1;
		uint8_t ka[8], kb[8];
		bf_codec_put_int(ka, a);
		bf_codec_put_int(kb, b);
		int c = memcmp(ka, kb, 8);
		cr_assert((a < b && c < 0) || (a == b && c == 0) || (a > b && c > 0));

		uint8_t sa[24], sb[24], ea[64], eb[64];
		size_t na = next_rand() % 20, nb = next_rand() % 20;
		for (size_t i = 0; i < 20; i++) {
			sa[i] = (uint8_t)(next_rand() % 3);
			sb[i] = (uint8_t)(next_rand() % 3);
		}
		size_t la = bf_codec_put_bytes(ea, sa, na), lb = bf_codec_put_bytes(eb, sb, nb);
		int want = cmp_bytes(sa, na, sb, nb), got = cmp_bytes(ea, la, eb, lb);
		cr_assert((want < 0) == (got < 0) && (want == 0) == (got == 0));
	}
}

Test(codec, index_key_round_trip_random)
{
	uint8_t key[512], scratch[512], strs[3][40];
	for (int iter = 0; iter < 5000; iter++) {
		bf_datum cols[3], back[3];
		int ncols = 1 + (int)(next_rand() % 3);
		for (int c = 0; c < ncols; c++) {
			switch (next_rand() % 4) {
			case 0: cols[c] = bf_datum_null(); break;
			case 1: cols[c] = bf_datum_int(iter % 2 ? INT64_MIN : (int64_t)next_rand()); break;
			case 2: cols[c] = bf_datum_uint(iter % 2 ? UINT64_MAX : next_rand()); break;
			default: {
				size_t n = (size_t)(next_rand() % 3) * 8 + next_rand() % 2; /* 8/16 boundaries */
				for (size_t i = 0; i < n; i++)
					strs[c][i] = (uint8_t)next_rand();
				cols[c] = bf_datum_bytes(strs[c], n);
			}
			}
		}
		bool unique = next_rand() % 2, with = bf_codec_index_needs_handle(unique, cols, ncols);
		int64_t h = (int64_t)next_rand(), tid, iid, gh = 0;
		size_t n = bf_codec_index_key(key, 42, 3, cols, ncols, with, h);
		bool has;
		cr_assert_eq(bf_codec_decode_index_key(key, n, &tid, &iid, back, ncols, scratch, &has, &gh), 0);
		cr_assert_eq(tid, 42);
		cr_assert_eq(iid, 3);
		cr_assert_eq(has, with);
		if (with)
			cr_assert_eq(gh, h);
		for (int c = 0; c < ncols; c++) {
			cr_assert_eq(back[c].kind, cols[c].kind);
			if (cols[c].kind == BF_DATUM_INT)
				cr_assert_eq(back[c].v.i, cols[c].v.i);
			if (cols[c].kind == BF_DATUM_UINT)
				cr_assert_eq(back[c].v.u, cols[c].v.u);
			if (cols[c].kind == BF_DATUM_BYTES) {
				cr_assert_eq(back[c].v.b.len, cols[c].v.b.len);
				cr_assert(memcmp(back[c].v.b.ptr, cols[c].v.b.ptr, cols[c].v.b.len) == 0);
			}
		}
	}
}

Test(codec, row_round_trip_random)
{
	uint8_t buf[4096], strs[8][300];
	int order[8];
	for (int iter = 0; iter < 5000; iter++) {
		bf_row_col cols[8];
		int ncols = (int)(next_rand() % 8);
		for (int c = 0; c < ncols; c++) {
			cols[c].col_id = c * (iter % 5 == 0 ? 97 : 1) + 1;
			switch (next_rand() % 4) {
			case 0: cols[c].val = bf_datum_null(); break;
			case 1: cols[c].val = bf_datum_int((int64_t)next_rand() >> (next_rand() % 64)); break;
			case 2: cols[c].val = bf_datum_uint(next_rand() >> (next_rand() % 64)); break;
			default: {
				size_t n = next_rand() % 300;
				for (size_t i = 0; i < n; i++)
					strs[c][i] = (uint8_t)next_rand();
				cols[c].val = bf_datum_bytes(strs[c], n);
			}
			}
		}
		long n = bf_codec_row_encode(buf, cols, ncols, order);
		cr_assert_geq(n, 6);
		bf_row_view rv;
		cr_assert_eq(bf_codec_row_view(&rv, buf, (size_t)n), 0);
		for (int c = 0; c < ncols; c++) {
			const uint8_t *p;
			size_t len;
			int r = bf_codec_row_find(&rv, cols[c].col_id, &p, &len);
			if (cols[c].val.kind == BF_DATUM_NULL) {
				cr_assert_eq(r, BF_ROW_NULL);
				continue;
			}
			cr_assert_eq(r, BF_ROW_PRESENT);
			if (cols[c].val.kind == BF_DATUM_INT) {
				int64_t v;
				cr_assert_eq(bf_codec_row_decode_int(p, len, &v), 0);
				cr_assert_eq(v, cols[c].val.v.i);
			} else if (cols[c].val.kind == BF_DATUM_UINT) {
				uint64_t v;
				cr_assert_eq(bf_codec_row_decode_uint(p, len, &v), 0);
				cr_assert_eq(v, cols[c].val.v.u);
			} else {
				cr_assert_eq(len, cols[c].val.v.b.len);
				cr_assert(memcmp(p, cols[c].val.v.b.ptr, len) == 0);
			}
		}
	}
}

/* Every truncation and many single-byte corruptions of valid encodings
 * must either decode consistently or be rejected; ASan catches over-reads
 * because each input is copied into an exactly sized heap buffer. */
Test(codec, malformed_inputs)
{
	uint8_t row[128], key[128], scratch[256];
	int order[3];
	bf_row_col cols[3] = { { 2, bf_datum_int(300) }, { 3, bf_datum_bytes("hello world", 11) },
			       { 4, bf_datum_null() } };
	long rn = bf_codec_row_encode(row, cols, 3, order);
	bf_datum kc[2] = { bf_datum_bytes("abcdefghij", 10), bf_datum_int(5) };
	size_t kn = bf_codec_index_key(key, 1, 1, kc, 2, true, 77);

	for (size_t cut = 0; cut < (size_t)rn; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, row, cut);
		bf_row_view rv;
		cr_assert_eq(bf_codec_row_view(&rv, copy, cut), BF_ECORRUPT, "truncated row at %zu", cut);
		free(copy);
	}
	for (size_t cut = 0; cut < kn; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, key, cut);
		bf_datum back[2];
		bool has;
		int64_t h;
		int rc = bf_codec_decode_index_key(copy, cut, NULL, NULL, back, 2, scratch, &has, &h);
		if (cut == kn - 9) /* exactly the columns: a key without a handle */
			cr_assert(rc == 0 && !has);
		else
			cr_assert_eq(rc, BF_ECORRUPT, "truncated key at %zu", cut);
		free(copy);
	}
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t *copy = malloc((size_t)rn);
		memcpy(copy, row, (size_t)rn);
		copy[next_rand() % (size_t)rn] = (uint8_t)next_rand();
		bf_row_view rv;
		if (bf_codec_row_view(&rv, copy, (size_t)rn) == 0) {
			const uint8_t *p;
			size_t len;
			for (int64_t id = 0; id < 8; id++)
				if (bf_codec_row_find(&rv, id, &p, &len) == BF_ROW_PRESENT)
					cr_assert(p >= copy && p + len <= copy + rn);
		}
		free(copy);

		uint8_t *kcopy = malloc(kn);
		memcpy(kcopy, key, kn);
		kcopy[next_rand() % kn] = (uint8_t)next_rand();
		bf_datum back[2];
		bool has;
		int64_t h;
		(void)bf_codec_decode_index_key(kcopy, kn, NULL, NULL, back, 2, scratch, &has, &h);
		free(kcopy);
	}
	/* Specific bad forms. */
	const uint8_t badver[] = { 0x7f, 0, 0, 0, 0, 0 };
	const uint8_t badflag[] = { 0x80, 0x10, 0, 0, 0, 0 };
	const uint8_t badoff[] = { 0x80, 0, 1, 0, 0, 0, 1, 9, 0 }; /* offset past end */
	const uint8_t unsorted[] = { 0x80, 0, 2, 0, 0, 0, 3, 2, 1, 0, 2, 0, 'a', 'b' };
	const uint8_t trailing[] = { 0x80, 0, 0, 0, 0, 0, 0xAA };
	bf_row_view rv;
	cr_assert_eq(bf_codec_row_view(&rv, badver, sizeof(badver)), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_view(&rv, badflag, sizeof(badflag)), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_view(&rv, badoff, sizeof(badoff)), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_view(&rv, unsorted, sizeof(unsorted)), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_view(&rv, trailing, sizeof(trailing)), BF_ECORRUPT);
	int64_t v;
	cr_assert_eq(bf_codec_row_decode_int((const uint8_t *)"abc", 3, &v), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_decode_int((const uint8_t *)"", 0, &v), BF_ECORRUPT);

	/* Group encoding: bad marker, non-zero padding, missing terminator. */
	const uint8_t badmark[] = { 1, 2, 3, 0, 0, 0, 0, 0, 0xF0 };
	const uint8_t badpad[] = { 1, 2, 3, 0, 0, 0, 0, 9, 0xFA };
	const uint8_t noterm[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0xFF };
	size_t got, used;
	cr_assert_eq(bf_codec_get_bytes(badmark, 9, scratch, &got, &used), BF_ECORRUPT);
	cr_assert_eq(bf_codec_get_bytes(badpad, 9, scratch, &got, &used), BF_ECORRUPT);
	cr_assert_eq(bf_codec_get_bytes(noterm, 9, scratch, &got, &used), BF_ECORRUPT);
	bf_datum d;
	const uint8_t badflagkey[] = { 0x09, 1, 2 };
	cr_assert_eq(bf_codec_get_datum_key(badflagkey, 3, &d, scratch, &used), BF_ECORRUPT);
	cr_assert_eq(bf_codec_get_datum_key((const uint8_t *)"\x03\x80", 2, &d, scratch, &used), BF_ECORRUPT);
}

/* The prefix builders and the plain readers that the tests above only
 * reach indirectly. */
Test(codec, prefixes_and_readers)
{
	uint8_t tp[BF_TABLE_PREFIX_LEN], rp[BF_RECORD_PREFIX_LEN], ip[BF_INDEX_PREFIX_LEN];
	uint8_t rk[BF_RECORD_KEY_LEN], ik[64];
	bf_codec_table_prefix(tp, 100);
	expect_bytes(tp, sizeof(tp), "748000000000000064");
	bf_codec_record_prefix(rp, 100);
	expect_bytes(rp, sizeof(rp), "7480000000000000645f72");
	bf_codec_index_prefix(ip, 100, 3);
	expect_bytes(ip, sizeof(ip), "7480000000000000645f698000000000000003");
	/* Keys start with their prefixes. */
	bf_codec_record_key(rk, 100, 42);
	cr_assert(memcmp(rk, rp, sizeof(rp)) == 0);
	bf_datum one = bf_datum_int(1);
	size_t n = bf_codec_index_key(ik, 100, 3, &one, 1, false, 0);
	cr_assert(n > sizeof(ip) && memcmp(ik, ip, sizeof(ip)) == 0);
	/* A record key of another shape is refused. */
	rk[0] = 'u';
	cr_assert_eq(bf_codec_decode_record_key(rk, sizeof(rk), NULL, NULL), BF_ECORRUPT);

	const int64_t ints[] = { 0, 1, -1, INT64_MIN, INT64_MAX, 1234567890123LL };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		uint8_t b[8];
		bf_codec_put_int(b, ints[i]);
		cr_assert_eq(bf_codec_get_int(b), ints[i]);
		bf_codec_put_uint(b, (uint64_t)ints[i]);
		cr_assert_eq(bf_codec_get_uint(b), (uint64_t)ints[i]);
	}

	uint64_t u;
	cr_assert_eq(bf_codec_row_decode_uint((const uint8_t *)"abc", 3, &u), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_decode_uint((const uint8_t *)"", 0, &u), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_decode_uint((const uint8_t *)"\x01\x02", 2, &u), 0);
	cr_assert_eq(u, 0x0201);
	/* bf_codec_row_len reports a negative id as 0 (duplicates are left to
	 * the encoder, which refuses them: rowv2_rejects_duplicates). */
	bf_row_col neg = { -2, bf_datum_int(1) };
	cr_assert_eq(bf_codec_row_len(&neg, 1), 0);
	cr_assert_eq(bf_codec_row_len(NULL, 0), 6, "an empty row is its header");
}

Test(codec, datum_key_round_trip)
{
	const uint8_t s16[16] = "0123456789abcdef";
	const bf_datum ds[] = {
		bf_datum_null(), bf_datum_int(-7), bf_datum_int(INT64_MAX), bf_datum_uint(0),
		bf_datum_uint(UINT64_MAX), bf_datum_bytes("", 0), bf_datum_bytes("abc", 3),
		bf_datum_bytes(s16, 8), bf_datum_bytes(s16, 16),
	};
	const size_t lens[] = { 1, 9, 9, 9, 9, 10, 10, 19, 28 };
	for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
		uint8_t enc[64], scratch[64];
		size_t n = bf_codec_put_datum_key(enc, &ds[i]), used = 0;
		cr_assert_eq(n, lens[i], "datum %zu: %zu bytes", i, n);
		cr_assert_eq(n, bf_codec_datum_key_len(&ds[i]));
		/* Trailing bytes are left for the next datum. */
		enc[n] = 0x03;
		bf_datum back;
		cr_assert_eq(bf_codec_get_datum_key(enc, n + 1, &back, scratch, &used), 0, "datum %zu", i);
		cr_assert_eq(used, n);
		cr_assert_eq(back.kind, ds[i].kind);
		if (ds[i].kind == BF_DATUM_INT)
			cr_assert_eq(back.v.i, ds[i].v.i);
		else if (ds[i].kind == BF_DATUM_UINT)
			cr_assert_eq(back.v.u, ds[i].v.u);
		else if (ds[i].kind == BF_DATUM_BYTES)
			cr_assert(back.v.b.len == ds[i].v.b.len &&
				  !memcmp(back.v.b.ptr, ds[i].v.b.ptr, ds[i].v.b.len));
		/* Every truncation is refused, except what still holds a whole datum. */
		for (size_t cut = 0; cut < n; cut++)
			cr_assert_eq(bf_codec_get_datum_key(enc, cut, &back, scratch, &used), BF_ECORRUPT,
				     "datum %zu cut at %zu", i, cut);
	}
}
