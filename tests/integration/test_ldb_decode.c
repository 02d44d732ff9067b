/*
 * An independent reader agrees with bfill: tests/tools/ldb_decode.py reads a
 * generated store through RocksDB's `ldb --hex scan`, decodes TiDB record
 * keys and row-v2 values from the byte layouts alone, and must find exactly
 * the N sysbench rows that `bfill gen` wrote -- and must notice a bad one.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfill/codec.h"
#include "bfill/store.h"
#include "tests/support/support.h"

#define ROWS 20000

static bool have_tool(const char *name)
{
	char *cmd = NULL;
	cr_assert_geq(asprintf(&cmd, "command -v '%s' >/dev/null 2>&1", name), 0);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	t_run r = t_exec(argv, NULL);
	free(cmd);
	t_run_free(&r);
	return r.status == 0;
}

/* Skip the test unless the tools it runs are installed. */
static void need_python(void)
{
	if (!have_tool("python3"))
		cr_skip_test("python3 is not installed: cannot run tests/tools/ldb_decode.py");
}

static void need_ldb_and_python(void)
{
	if (!have_tool("ldb"))
		cr_skip_test("ldb (rocksdb-tools) is not installed: cannot read the store independently");
	need_python();
}

TestSuite(ldb_decode, .fini = t_scratch_remove);

/* tests/tools/ldb_decode.py next to the bfill binary's checkout, else
 * relative to the working directory. Static buffer. */
static const char *script(void)
{
	static char path[4096];
	const char *bin = getenv("BFILL_BIN");

	if (bin && bin[0] == '/') {
		char copy[4096];
		snprintf(copy, sizeof(copy), "%s", bin);
		char *bindir = dirname(copy);          /* <root>/bin */
		snprintf(path, sizeof(path), "%s/../tests/tools/ldb_decode.py", bindir);
		if (access(path, R_OK) == 0)
			return path;
	}
	snprintf(path, sizeof(path), "tests/tools/ldb_decode.py");
	cr_assert_eq(access(path, R_OK), 0, "%s: %s (run from the repository root or set BFILL_BIN)",
		     path, strerror(errno));
	return path;
}

static char *make_store(int rows)
{
	t_scratch_dir = t_tmpdir("ldb");
	char *store = t_path_in(t_scratch_dir, "store");
	t_bfill_gen(store, rows, 42);
	return store;
}

static void expect_line(const t_run *r, const char *line)
{
	cr_assert_not_null(strstr(r->out, line), "'%s' missing from the decoder's report:\n%s\n%s",
			   line, r->out, r->err);
}

Test(ldb_decode, finds_every_generated_row, .init = need_ldb_and_python)
{
	char *store = make_store(ROWS);
	char rows[32];
	snprintf(rows, sizeof(rows), "%d", ROWS);
	char *argv[] = { "python3", (char *)script(), "--db", store, "--rows", rows, "--expect", rows, NULL };

	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 0, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	expect_line(&r, "record keys found: 20000\n");
	expect_line(&r, "well-formed: 20000\n");
	expect_line(&r, "malformed: 0\n");
	expect_line(&r, "other data keys: 0\n");
	expect_line(&r, "table ids: 100\n");
	expect_line(&r, "table 100: 20000 rows, handles 1..20000 (contiguous from 1)");
	cr_assert_str_eq(r.err, "", "the decoder complained: %s", r.err);
	t_run_free(&r);
	free(store);
}

Test(ldb_decode, decoder_self_test, .init = need_python)
{
	char *argv[] = { "python3", (char *)script(), "--self-test", NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 0, "self-test exit %d:\n%s\n%s", r.status, r.out, r.err);
	t_run_free(&r);
}

/* Overwrites one row with a value whose c has a letter where a digit goes:
 * the decoder must count it as malformed and fail. */
Test(ldb_decode, notices_a_corrupted_row, .init = need_ldb_and_python)
{
	char *store = make_store(500);
	bf_store *st = NULL;
	bf_err err = { 0 };
	uint8_t key[BF_RECORD_KEY_LEN], val[256];
	char c[120], pad[60];
	int order[3];

	memset(c, '1', sizeof(c));
	memset(pad, '2', sizeof(pad));
	for (int i = 11; i < 119; i += 12)
		c[i] = '-';
	for (int i = 11; i < 59; i += 12)
		pad[i] = '-';
	c[40] = 'x';
	bf_row_col cols[3] = { { 2, bf_datum_int(5) }, { 3, bf_datum_bytes(c, 119) },
			       { 4, bf_datum_bytes(pad, 59) } };
	long n = bf_codec_row_encode(val, cols, 3, order);
	cr_assert_gt(n, 0);
	bf_codec_record_key(key, 100, 250);
	cr_assert_eq(bf_store_open(store, 0, &st, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_store_put(st, key, sizeof(key), val, (size_t)n, &err), 0);
	bf_store_close(st);

	char *argv[] = { "python3", (char *)script(), "--db", store, "--expect", "500", NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 1, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	expect_line(&r, "record keys found: 500\n");
	expect_line(&r, "well-formed: 499\n");
	expect_line(&r, "malformed: 1\n");
	cr_assert_not_null(strstr(r.err, "7480000000000000645F7280000000000000FA"),
			   "the bad key is named: %s", r.err);
	t_run_free(&r);
	free(store);
}

/* Hand-built `ldb --hex scan` lines: one good sbtest row and six bad ones. */
static void hex_line(FILE *f, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	fputs("0x", f);
	for (size_t i = 0; i < klen; i++)
		fprintf(f, "%02X", key[i]);
	fputs(" : 0x", f);
	for (size_t i = 0; i < vlen; i++)
		fprintf(f, "%02X", val[i]);
	fputc('\n', f);
}

/* key 't' + tid 100 + "_r" + handle, written out by hand (sign bit flipped). */
static void record_key(uint8_t k[20], uint8_t handle)
{
	static const uint8_t prefix[11] = { 't', 0x80, 0, 0, 0, 0, 0, 0, 100, '_', 'r' };
	memcpy(k, prefix, 11);
	memset(k + 11, 0, 8);
	k[11] = 0x80;
	k[18] = handle;
	k[19] = 0;
}

/* Row v2 by hand: header, ids 2 3 4, end offsets, data k | c | pad. */
static size_t sbtest_value(uint8_t *v, uint8_t kbyte, size_t clen, size_t padlen, char bad_c)
{
	size_t n, c_end = 1 + clen, pad_end = c_end + padlen;
	const uint8_t head[] = { 0x80, 0, 3, 0, 0, 0, 2, 3, 4, 1, 0,
				 (uint8_t)c_end, (uint8_t)(c_end >> 8), (uint8_t)pad_end,
				 (uint8_t)(pad_end >> 8) };
	memcpy(v, head, sizeof(head));
	n = sizeof(head);
	v[n++] = kbyte;
	for (size_t i = 0; i < clen; i++)
		v[n++] = i % 12 == 11 ? '-' : (uint8_t)('0' + i % 10);
	for (size_t i = 0; i < padlen; i++)
		v[n++] = i % 12 == 11 ? '-' : (uint8_t)('9' - i % 10);
	if (bad_c)
		v[sizeof(head) + 1 + 40] = (uint8_t)bad_c; /* a digit position of c */
	return n;
}

Test(ldb_decode, rejects_hand_made_bad_rows, .init = need_python)
{
	t_scratch_dir = t_tmpdir("ldb");
	char *input = t_path_in(t_scratch_dir, "scan.txt");
	FILE *f = fopen(input, "w");
	cr_assert_not_null(f);
	uint8_t key[20], val[256];
	size_t n;

	/* A catalog-like key and an index key are not records: counted apart. */
	hex_line(f, (const uint8_t *)"mbfill/store", 12, (const uint8_t *)"x", 1);
	record_key(key, 1);
	n = sbtest_value(val, 1, 119, 59, 0);
	hex_line(f, key, 19, val, n);                     /* good, k = 1 */
	record_key(key, 2);
	val[0] = 0x7f;
	hex_line(f, key, 19, val, n);                     /* wrong codec version */
	record_key(key, 3);
	n = sbtest_value(val, 1, 119, 59, 0);
	hex_line(f, key, 19, val, n - 1);                 /* truncated value */
	record_key(key, 4);
	n = sbtest_value(val, 1, 119, 59, 'x');
	hex_line(f, key, 19, val, n);                     /* a letter in c */
	record_key(key, 5);
	n = sbtest_value(val, 0, 119, 59, 0);
	hex_line(f, key, 19, val, n);                     /* k = 0, outside [1, N] */
	record_key(key, 6);
	n = sbtest_value(val, 1, 119, 59, 0);
	hex_line(f, key, 20, val, n);                     /* a 20-byte record key */
	record_key(key, 7);
	n = sbtest_value(val, 1, 119, 58, 0);
	hex_line(f, key, 19, val, n);                     /* pad one byte short */
	key[10] = 'i';
	hex_line(f, key, 19, (const uint8_t *)"0", 1); /* an index entry */
	fclose(f);

	char *argv[] = { "python3", (char *)script(), "--input", input, "--rows", "1", NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 1, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	expect_line(&r, "record keys found: 7\n");
	expect_line(&r, "well-formed: 1\n");
	expect_line(&r, "malformed: 6\n");
	expect_line(&r, "other data keys: 1\n");
	expect_line(&r, "non-data keys: 1\n");
	expect_line(&r, "table 100: 1 rows, handles 1..1 (contiguous from 1)");
	t_run_free(&r);

	/* The good line alone passes. */
	f = fopen(input, "w");
	record_key(key, 1);
	n = sbtest_value(val, 1, 119, 59, 0);
	hex_line(f, key, 19, val, n);
	fclose(f);
	char *argv2[] = { "python3", (char *)script(), "--input", input, "--expect", "1", NULL };
	r = t_exec(argv2, NULL);
	cr_assert_eq(r.status, 0, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	expect_line(&r, "well-formed: 1\n");
	t_run_free(&r);
	free(input);
}
