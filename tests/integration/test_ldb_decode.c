/*
 * An independent reader agrees with bfill: tests/tools/ldb_decode.py reads a
 * generated store through RocksDB's `ldb --hex scan`, decodes TiDB record
 * keys and row-v2 values from the byte layouts alone, and must find exactly
 * the N sysbench rows that `bfill gen` wrote -- and must notice a bad one.
 *
 * In table mode it takes a table's schema from bfill's catalog records and
 * decodes rows and index entries of every type: tables made with `bfill
 * create-table`, `load` and `add-index` (an integer primary key as the
 * handle, or the hidden _tidb_rowid) must decode to exactly what the CSV
 * held, with every index entry the rows call for and no other; damage put
 * into the store with ldb itself must be named.
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

/* ---- user tables: the decoder reads the schema from the catalog ---- */

/* Writes text to <scratch>/name; the path is malloc'd. */
static char *write_text(const char *name, const char *text)
{
	char *path = t_path_in(t_scratch_dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	cr_assert_eq(fclose(f), 0);
	return path;
}

static void bfill_ok(t_run r, const char *what)
{
	cr_assert_eq(r.status, 0, "%s: exit %d:\n%s\n%s", what, r.status, r.out, r.err);
	t_run_free(&r);
}

/* Runs `ldb --db=store --hex <op> <args...>` (put, delete), asserting success. */
static void ldb_hex(const char *store, const char *op, const char *arg1, const char *arg2)
{
	char *db = NULL;
	cr_assert_geq(asprintf(&db, "--db=%s", store), 0);
	char *argv[] = { "ldb", db, "--hex", (char *)op, (char *)arg1, (char *)arg2, NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 0, "ldb %s %s: exit %d:\n%s\n%s", op, arg1, r.status, r.out, r.err);
	t_run_free(&r);
	free(db);
}

/* Runs the decoder on table `table` of store; with dump, --dump too. */
static t_run decode_table(const char *store, const char *table, bool dump)
{
	char *argv[] = { "python3", (char *)script(), "--db", (char *)store, "--table", (char *)table,
			 dump ? "--dump" : NULL, NULL };
	return t_exec(argv, NULL);
}

static void expect_in(const char *text, const char *needle, const t_run *r)
{
	cr_assert_not_null(strstr(text, needle), "'%s' missing from the decoder's output:\n%s\n%s",
			   needle, r->out, r->err);
}

/*
 * Table t has a column of each kind of type bfill knows, the integer
 * primary key as the handle. Its rows, in handle order: each is the CSV
 * record `bfill load` reads and the line `ldb_decode.py --dump` must print
 * for it, worked out
 * from the decoder's documented forms (DOUBLE as Python's repr, DATETIME(6)
 * with six fraction digits, DECIMAL(12,2) with two, NULL as \N, tabs and
 * backslashes escaped). Rows 1..GEN_ROWS are made by typed_row.
 */
#define TYPED_SCHEMA \
	"id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), c BIGINT UNSIGNED, d DOUBLE, " \
	"e DATETIME(6), f DECIMAL(12,2)"
#define TYPED_HEADER "id\ta\tb\tc\td\te\tf\n"
#define GEN_ROWS 30
#define Z64 "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"

typedef struct typed_line {
	const char *csv;
	const char *dump;
} typed_line;

/* Ids below 1: the smallest values; every nullable column NULL (\N and
 * empty unquoted fields); a tab, a 'T' in a datetime, negatives; zeros,
 * -0 as a DOUBLE (stored as 0.0) and -0.001 rounding to 0.00. */
static const typed_line typed_low[] = {
	{ "-9223372036854775808,-2147483648,\"comma, inside\",0,-1.7976931348623157e308,"
	  "1000-01-01 00:00:00,-9999999999.99",
	  "-9223372036854775808\t-2147483648\tcomma, inside\t0\t-1.7976931348623157e+308\t"
	  "1000-01-01 00:00:00.000000\t-9999999999.99" },
	{ "-5,\\N,,\\N,\\N,,\\N", "-5\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N" },
	{ "-1,-1,\"tab\there\",1,-0.5,1970-01-01T00:00:01.000001,-0.01",
	  "-1\t-1\ttab\\there\t1\t-0.5\t1970-01-01 00:00:01.000001\t-0.01" },
	{ "0,0,\"\",18446744073709551615,-0,2000-02-29 12:00:00.5,-0.001",
	  "0\t0\t\t18446744073709551615\t0.0\t2000-02-29 12:00:00.500000\t0.00" },
};

/* Ids above GEN_ROWS: a backslash, doubled quotes, the smallest DOUBLE, a
 * date alone, a plus sign, and the largest values (64 characters in b). */
static const typed_line typed_high[] = {
	{ "50,7,back\\slash,5,0.1,2021-03-04 05:06:07.123456,1234.5",
	  "50\t7\tback\\\\slash\t5\t0.1\t2021-03-04 05:06:07.123456\t1234.50" },
	{ "100,42,\"say \"\"hi\"\"\",42,5e-324,2024-02-29,+3",
	  "100\t42\tsay \"hi\"\t42\t5e-324\t2024-02-29 00:00:00.000000\t3.00" },
	{ "9223372036854775807,2147483647," Z64 ",18446744073709551614,1e300,"
	  "9999-12-31 23:59:59.999999,9999999999.99",
	  "9223372036854775807\t2147483647\t" Z64 "\t18446744073709551614\t1e+300\t"
	  "9999-12-31 23:59:59.999999\t9999999999.99" },
};

#define TYPED_ROWS (sizeof(typed_low) / sizeof(typed_low[0]) + GEN_ROWS + \
		    sizeof(typed_high) / sizeof(typed_high[0]))

/*
 * Row id i (1..GEN_ROWS): repeats in a (for the composite index), strings
 * sharing the prefix "abc", shorter than the prefix, and of two-byte
 * characters (b(3) keeps three characters, six bytes), a unique c, NULLs
 * in each column on their own rhythm. Both strings malloc'd.
 */
static void typed_row(int i, char **csv, char **dump)
{
	char a[16], b_csv[32], b_dump[32], c[24], d[24], e_csv[40], e_dump[40], f[24];
	long cents = (long)i * 12345 - 150000;

	if (i % 7 == 3)
		snprintf(a, sizeof(a), "\\N");
	else
		snprintf(a, sizeof(a), "%d", (i * 37) % 200 - 100);
	if (i % 9 == 4)
		snprintf(b_csv, sizeof(b_csv), "%s", "");        /* empty unquoted: NULL */
	else if (i == 10)
		snprintf(b_csv, sizeof(b_csv), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x");
	else if (i % 5 == 1)
		snprintf(b_csv, sizeof(b_csv), "ab");
	else if (i % 3 == 0)
		snprintf(b_csv, sizeof(b_csv), "abc%02d", i);
	else
		snprintf(b_csv, sizeof(b_csv), "k%c-%d", 'a' + i % 4, i);
	snprintf(b_dump, sizeof(b_dump), "%s", i % 9 == 4 ? "\\N" : b_csv);
	if (i % 6 == 5)
		snprintf(c, sizeof(c), "\\N");
	else
		snprintf(c, sizeof(c), "%d", i * 7919);
	if (i % 8 == 6)
		snprintf(d, sizeof(d), "\\N");
	else
		snprintf(d, sizeof(d), "%.1f", (i - 15) * 0.5); /* repr: -7.5, -7.0, 0.0, 7.5 */
	if (i % 10 == 7) {
		e_csv[0] = '\0';
		snprintf(e_dump, sizeof(e_dump), "\\N");
	} else {
		snprintf(e_csv, sizeof(e_csv), "2020-%02d-%02d %02d:%02d:%02d.%06d", 1 + i % 12,
			 1 + i % 28, i % 24, (i * 7) % 60, (i * 13) % 60, (i * 12345) % 1000000);
		snprintf(e_dump, sizeof(e_dump), "%s", e_csv);
	}
	if (i % 11 == 2)
		snprintf(f, sizeof(f), "\\N");
	else
		snprintf(f, sizeof(f), "%s%ld.%02ld", cents < 0 ? "-" : "", labs(cents) / 100,
			 labs(cents) % 100);
	cr_assert_geq(asprintf(csv, "%d,%s,%s,%s,%s,%s,%s", i, a, b_csv, c, d, e_csv, f), 0);
	cr_assert_geq(asprintf(dump, "%d\t%s\t%s\t%s\t%s\t%s\t%s", i, a, b_dump, c, d, e_dump, f), 0);
}

/*
 * A store with table t loaded from TYPED_ROWS records (written out of key
 * order) and indexes mixed (every column, non-unique), pb (prefix b(3))
 * and uc (unique c, with NULLs). *want gets the --dump text the decoder
 * must print (malloc'd). Returns the store's path (malloc'd).
 */
static char *typed_store(char **want)
{
	size_t n = TYPED_ROWS, nlow = sizeof(typed_low) / sizeof(typed_low[0]);
	char *csv_lines[TYPED_ROWS], *dump_lines[TYPED_ROWS];
	char *csv_text = NULL, *want_text = NULL;
	size_t csv_len = 0, want_len = 0;

	for (size_t i = 0; i < n; i++) {
		if (i < nlow) {
			csv_lines[i] = strdup(typed_low[i].csv);
			dump_lines[i] = strdup(typed_low[i].dump);
		} else if (i < nlow + GEN_ROWS) {
			typed_row((int)(i - nlow + 1), &csv_lines[i], &dump_lines[i]);
		} else {
			csv_lines[i] = strdup(typed_high[i - nlow - GEN_ROWS].csv);
			dump_lines[i] = strdup(typed_high[i - nlow - GEN_ROWS].dump);
		}
	}
	FILE *csv = open_memstream(&csv_text, &csv_len), *dump = open_memstream(&want_text, &want_len);
	cr_assert(csv && dump);
	cr_assert_eq(n % 7 == 0, false, "7 must step through every row");
	for (size_t k = 0; k < n; k++)                 /* a load order unlike key order */
		fprintf(csv, "%s\n", csv_lines[(k * 7) % n]);
	fputs(TYPED_HEADER, dump);
	for (size_t i = 0; i < n; i++) {
		fprintf(dump, "%s\n", dump_lines[i]);
		free(csv_lines[i]);
		free(dump_lines[i]);
	}
	cr_assert_eq(fclose(csv), 0);
	cr_assert_eq(fclose(dump), 0);

	char *store = t_path_in(t_scratch_new("ldb"), "store");
	char *path = write_text("typed.csv", csv_text);
	bfill_ok(t_bfillf("create-table --store '%s' --table t --schema '" TYPED_SCHEMA "'", store),
		 "create-table");
	bfill_ok(t_bfillf("load --store '%s' --table t --csv '%s' --quiet", store, path), "load");
	bfill_ok(t_bfillf("add-index --store '%s' --table t --name mixed --columns f,e,d,c,b,a "
			  "--name pb --columns 'b(3)' --name uc --columns c --unique --quiet", store),
		 "add-index");
	free(path);
	free(csv_text);
	*want = want_text;
	return store;
}

/* The decoder's summary of a well-formed table t of TYPED_ROWS rows. */
static void expect_typed_summary(const char *summary, const t_run *r)
{
	char line[160];

	snprintf(line, sizeof(line), "table t (id 100, handle id): %zu rows, 0 malformed\n",
		 TYPED_ROWS);
	expect_in(summary, line, r);
	static const char *const idx[] = { "mixed (id 1; f,e,d,c,b,a)", "pb (id 2; b(3))",
					   "uc (id 3; unique, c)" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(line, sizeof(line),
			 "index %s: %zu entries, %zu expected, 0 malformed, 0 missing, 0 extra\n",
			 idx[i], TYPED_ROWS, TYPED_ROWS);
		expect_in(summary, line, r);
	}
	expect_in(summary, "result: OK\n", r);
}

Test(ldb_decode, checks_a_table_of_every_type, .init = need_ldb_and_python, .timeout = 120)
{
	t_need_bfill();
	char *want = NULL, *store = typed_store(&want);

	/* The summary alone, on stdout; nothing to complain about. */
	t_run r = decode_table(store, "t", false);
	cr_assert_eq(r.status, 0, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	expect_typed_summary(r.out, &r);
	cr_assert_str_eq(r.err, "", "the decoder complained: %s", r.err);
	t_run_free(&r);

	/* --dump: the rows as loaded, on stdout; the summary on stderr. */
	r = decode_table(store, "t", true);
	cr_assert_eq(r.status, 0, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.out, want, "the decoded rows differ from the loaded ones");
	expect_typed_summary(r.err, &r);
	t_run_free(&r);

	/* --catalog finds the same table on its own. */
	char *argv[] = { "python3", (char *)script(), "--db", store, "--catalog", NULL };
	r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 0, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	expect_typed_summary(r.out, &r);
	t_run_free(&r);
	free(want);
	free(store);
}

/*
 * Table r has no primary key: rows get the hidden _tidb_rowid 1, 2, ... in
 * load order, which --dump prints first. Loaded with a header that lists
 * the columns in another order; DECIMAL(5,1) and DATETIME(3) round extra
 * digits (half away from zero; half up, carrying into the next year).
 */
#define ROWID_ROWS 25

static void rowid_row(int i, FILE *csv, FILE *dump)
{
	char x[16], at_csv[40], at_dump[40], name[32], n[8], score_csv[16], score_dump[16];

	if (i % 4 == 1)
		x[0] = '\0';
	else
		snprintf(x, sizeof(x), "%d", (i * 1237) % 65536 - 32768);
	if (i % 5 == 2) {
		snprintf(at_csv, sizeof(at_csv), "\\N");
		snprintf(at_dump, sizeof(at_dump), "\\N");
	} else if (i == 3) {
		snprintf(at_csv, sizeof(at_csv), "2023-12-31 23:59:59.9996");
		snprintf(at_dump, sizeof(at_dump), "2024-01-01 00:00:00.000");
	} else {
		snprintf(at_csv, sizeof(at_csv), "2023-%02d-%02d %02d:%02d:%02d.%03d", 1 + i % 12,
			 1 + i, i % 24, (i * 11) % 60, (i * 29) % 60, (i * 37) % 1000);
		snprintf(at_dump, sizeof(at_dump), "%s", at_csv);
	}
	if (i == 7)
		snprintf(name, sizeof(name), "\xc3\xb1" "and\xc3\xba");   /* ñandú */
	else
		snprintf(name, sizeof(name), "%c%c%02d", 'p' + i % 3, 'a' + i % 2, i);
	if (i % 6 == 0)
		snprintf(n, sizeof(n), "\\N");
	else
		snprintf(n, sizeof(n), "%d", (i * 17) % 256);     /* i = 15: 255 */
	if (i % 7 == 3) {
		snprintf(score_csv, sizeof(score_csv), "\\N");
		snprintf(score_dump, sizeof(score_dump), "\\N");
	} else if (i == 4 || i == 8) {
		snprintf(score_csv, sizeof(score_csv), "%s12.35", i == 8 ? "-" : "");
		snprintf(score_dump, sizeof(score_dump), "%s12.4", i == 8 ? "-" : "");
	} else {
		int tenths = (i * 379) % 19999 - 9999;
		snprintf(score_csv, sizeof(score_csv), "%s%d.%d", tenths < 0 ? "-" : "",
			 abs(tenths) / 10, abs(tenths) % 10);
		snprintf(score_dump, sizeof(score_dump), "%s", score_csv);
	}
	fprintf(csv, "%s,%s,%s,%s,%s\n", x, at_csv, name, n, score_csv);
	fprintf(dump, "%d\t%s\t%s\t%s\t%s\t%s\n", i + 1, name, score_dump, at_dump, n,
		x[0] ? x : "\\N");
}

Test(ldb_decode, checks_a_table_with_a_hidden_rowid, .init = need_ldb_and_python, .timeout = 120)
{
	t_need_bfill();
	char *csv_text = NULL, *want = NULL;
	size_t csv_len = 0, want_len = 0;
	FILE *csv = open_memstream(&csv_text, &csv_len), *dump = open_memstream(&want, &want_len);
	cr_assert(csv && dump);
	fputs("x,at,name,n,score\n", csv);
	fputs("_tidb_rowid\tname\tscore\tat\tn\tx\n", dump);
	for (int i = 0; i < ROWID_ROWS; i++)
		rowid_row(i, csv, dump);
	cr_assert_eq(fclose(csv), 0);
	cr_assert_eq(fclose(dump), 0);

	char *store = t_path_in(t_scratch_new("ldb"), "store");
	char *path = write_text("rowid.csv", csv_text);
	bfill_ok(t_bfillf("create-table --store '%s' --table r --schema 'name VARCHAR(20) NOT NULL, "
			  "score DECIMAL(5,1), at DATETIME(3), n TINYINT UNSIGNED, x SMALLINT'", store),
		 "create-table");
	bfill_ok(t_bfillf("load --store '%s' --table r --csv '%s' --header --quiet", store, path),
		 "load");
	bfill_ok(t_bfillf("add-index --store '%s' --table r --name sn --columns score,name "
			  "--name un --columns name --unique --name p2 --columns 'name(2)' "
			  "--name mix --columns n,x,at --name uat --columns at --unique --quiet", store),
		 "add-index");

	t_run r = decode_table(store, "r", true);
	cr_assert_eq(r.status, 0, "decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.out, want, "the decoded rows differ from the loaded ones");
	expect_in(r.err, "table r (id 100, handle _tidb_rowid): 25 rows, 0 malformed\n", &r);
	static const char *const idx[] = { "sn (id 1; score,name)", "un (id 2; unique, name)",
					   "p2 (id 3; name(2))", "mix (id 4; n,x,at)",
					   "uat (id 5; unique, at)" };
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		char line[160];
		snprintf(line, sizeof(line),
			 "index %s: 25 entries, 25 expected, 0 malformed, 0 missing, 0 extra\n", idx[i]);
		expect_in(r.err, line, &r);
	}
	expect_in(r.err, "result: OK\n", &r);
	t_run_free(&r);
	free(path);
	free(csv_text);
	free(want);
	free(store);
}

/* The decoder on table t of a typed store, expecting exit 1 and each of
 * the needles (NULL: none) in its stdout + stderr. */
static void expect_bad(const char *store, const char *what, const char *n1, const char *n2,
		       const char *n3)
{
	t_run r = decode_table(store, "t", false);
	cr_assert_eq(r.status, 1, "%s: decoder exit %d:\n%s\n%s", what, r.status, r.out, r.err);
	const char *needles[] = { n1, n2, n3 };
	for (int i = 0; i < 3; i++)
		if (needles[i])
			cr_assert(strstr(r.out, needles[i]) || strstr(r.err, needles[i]),
				  "%s: '%s' missing from the decoder's output:\n%s\n%s", what, needles[i],
				  r.out, r.err);
	t_run_free(&r);
}

/*
 * Damage written with ldb itself, each named by the decoder. Keys by hand:
 * 't' + table 100 + "_i" + index id (sign bit flipped), then the datums --
 * uc's entry for row 100 is c = 42 as a uint datum (0x04 + 8 bytes) with
 * the handle as its 8-byte value; pb's entries end with the handle as an
 * int datum (0x03 + 8 bytes, sign bit flipped) and hold '0'.
 */
#define UC_KEY_42 "0x7480000000000000645F698000000000000003" "04000000000000002A"
#define PB_KEY_ABD_3 "0x7480000000000000645F698000000000000002" \
		     "01616264" "0000000000FA" "038000000000000003"
#define ROW_KEY_100 "0x7480000000000000645F728000000000000064"

Test(ldb_decode, names_damage_in_a_table_and_its_indexes, .init = need_ldb_and_python,
     .timeout = 120)
{
	t_need_bfill();
	char *want = NULL, *store = typed_store(&want);
	char line[200];

	/* A missing unique entry. */
	ldb_hex(store, "delete", UC_KEY_42, NULL);
	snprintf(line, sizeof(line),
		 "index uc (id 3; unique, c): %zu entries, %zu expected, 0 malformed, 1 missing, 0 extra",
		 TYPED_ROWS - 1, TYPED_ROWS);
	expect_bad(store, "uc entry deleted", "index uc of t: missing entry (c=42) handle 100", line,
		   "result: FAILED, 1 problem\n");

	/* Back, but pointing at a row that does not exist: extra and missing. */
	ldb_hex(store, "put", UC_KEY_42, "0x0000000000000063");
	expect_bad(store, "uc entry for handle 99",
		   "index uc of t: extra entry " UC_KEY_42,
		   "(c=42) handle 99: there is no row 99", "missing entry (c=42) handle 100");

	/* Put right, the table is whole again. */
	ldb_hex(store, "put", UC_KEY_42, "0x0000000000000064");
	t_run r = decode_table(store, "t", false);
	cr_assert_eq(r.status, 0, "repaired: decoder exit %d:\n%s\n%s", r.status, r.out, r.err);
	t_run_free(&r);

	/* A prefix entry whose datum no row calls for: row 3 has b = 'abc03'. */
	ldb_hex(store, "put", PB_KEY_ABD_3, "0x30");
	expect_bad(store, "pb entry 'abd'", "(b=abd) handle 3: row 3 calls for (b=abc) handle 3",
		   "index pb (id 2; b(3))", NULL);
	ldb_hex(store, "delete", PB_KEY_ABD_3, NULL);

	/*
	 * Row 100 replaced by a row-v2 value whose b has 65 characters:
	 * version 128, flags 0, one not-null column (id 3), five NULLs (2, 4,
	 * 5, 6, 7), b's end offset 65 (u16 LE), then 65 bytes of 'x'.
	 */
	char val[2 + 2 * (14 + 65) + 1];
	int len = snprintf(val, sizeof(val), "0x%s", "8000" "0100" "0500" "03" "0204050607" "4100");
	for (int i = 0; i < 65; i++)
		len += snprintf(val + len, sizeof(val) - (size_t)len, "78");
	cr_assert_eq((size_t)len, sizeof(val) - 1);
	ldb_hex(store, "put", ROW_KEY_100, val);
	snprintf(line, sizeof(line), "table t (id 100, handle id): %zu rows, 1 malformed\n",
		 TYPED_ROWS - 1);
	expect_bad(store, "row 100 with a long b",
		   "malformed record " ROW_KEY_100 ": table t: ", line,
		   "column b VARCHAR(64): 65 characters are too many for VARCHAR(64)");
	free(want);
	free(store);
}
