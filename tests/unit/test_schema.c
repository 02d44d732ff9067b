/*
 * Tables of one's own: schemas in SQL column definitions, values from text
 * checked against their column, the catalog keeping new types, prefix
 * lengths and the hidden _tidb_rowid handle, and the loader through the
 * library (sorted rows from any order, repeated keys, a full buffer
 * spilling runs, atomicity, and the refusals).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/catalog.h"
#include "bfill/check.h"
#include "bfill/job.h"
#include "bfill/table.h"
#include "tests/support/support.h"

TestSuite(schema, .fini = t_scratch_remove);

#define FULL "id BIGINT PRIMARY KEY, a INT, b VARCHAR(64) NOT NULL, c BIGINT UNSIGNED, " \
	     "d DOUBLE, e DATETIME(3), f DECIMAL(12,2)"

Test(schema, parses_every_type)
{
	bf_table t;
	bf_err err = { 0 };
	char buf[32];
	static const char *const want[] = { "bigint", "int", "varchar(64)", "bigint unsigned",
					    "double", "datetime(3)", "decimal(12,2)" };

	cr_assert_eq(bf_schema_parse("t", FULL, &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(t.ncols, 7);
	cr_assert_eq(t.handle_col, 0);
	cr_assert(t.cols[0].not_null && t.cols[2].not_null && !t.cols[1].not_null);
	for (int i = 0; i < 7; i++) {
		cr_assert_str_eq(bf_coltype_format(&t.cols[i], buf, sizeof(buf)), want[i]);
		cr_assert_eq(t.cols[i].id, i + 1);
	}
	cr_assert_eq(t.cols[6].scale, 2);
}

Test(schema, table_level_key_rowid_and_quoting)
{
	bf_table t;
	bf_err err = { 0 };

	cr_assert_eq(bf_schema_parse("t", "`my col` int(11) unsigned, id integer not null,"
				     " primary key (id)", &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_str_eq(t.cols[0].name, "my col");
	cr_assert_eq(t.cols[0].type, BF_COL_UINT);
	cr_assert_eq(t.handle_col, 1);
	cr_assert_eq(bf_schema_parse("t", "a varchar(3), b decimal", &t, &err), 0);
	cr_assert_eq(t.handle_col, -1, "no primary key: the hidden handle");
	cr_assert_eq(t.cols[1].len, 10, "DECIMAL is DECIMAL(10,0)");
}

Test(schema, refusals_name_the_problem)
{
	static const struct { const char *schema, *says; } bad[] = {
		{ "", "no columns" },
		{ "a int,", "trailing" },
		{ "a float", "unknown type 'float'" },
		{ "a varchar", "VARCHAR(n)" },
		{ "a int, a bigint", "appears twice" },
		{ "a varchar(5) primary key", "must be a signed integer" },
		{ "a bigint unsigned primary key", "must be a signed integer" },
		{ "a int primary key, b int primary key", "more than one PRIMARY KEY" },
		{ "a int, b int, primary key (a, b)", "several columns" },
		{ "a decimal(66,2)", "DECIMAL(p,s)" },
		{ "a decimal(5,6)", "DECIMAL(p,s)" },
		{ "a datetime(7)", "0..6" },
		{ "_tidb_rowid int", "reserved" },
		{ "`a int", "not closed" },
		{ "a int b", "expected ','" },
		{ "a int not nul", "expected NULL" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bf_table t;
		bf_err err = { 0 };
		cr_assert_eq(bf_schema_parse("t", bad[i].schema, &t, &err), BF_EINVAL, "'%s'",
			     bad[i].schema);
		cr_assert(strstr(bf_err_text(&err), bad[i].says), "'%s': %s", bad[i].schema,
			  bf_err_text(&err));
	}
}

static bf_column col_of(const char *schema)
{
	bf_table t;
	bf_err err = { 0 };
	cr_assert_eq(bf_schema_parse("t", schema, &t, &err), 0, "%s", bf_err_text(&err));
	return t.cols[0];
}

Test(schema, values_from_text)
{
	uint8_t scratch[BF_DECIMAL_BIN_MAX];
	bf_err err = { 0 };
	bf_datum d;
	bf_column c;
	char out[64];

	c = col_of("a tinyint");
	cr_assert_eq(bf_column_parse_value(&c, "-128", 4, &d, scratch, &err), 0);
	cr_assert_eq(d.v.i, -128);
	cr_assert_eq(bf_column_parse_value(&c, "128", 3, &d, scratch, &err), BF_ERANGE);
	cr_assert_eq(bf_column_parse_value(&c, " 1", 2, &d, scratch, &err), BF_EINVAL);
	cr_assert_eq(bf_column_parse_value(&c, "1x", 2, &d, scratch, &err), BF_EINVAL);
	c = col_of("a bigint unsigned");
	cr_assert_eq(bf_column_parse_value(&c, "18446744073709551615", 20, &d, scratch, &err), 0);
	cr_assert_eq(d.v.u, UINT64_MAX);
	cr_assert_eq(bf_column_parse_value(&c, "18446744073709551616", 20, &d, scratch, &err),
		     BF_ERANGE);
	cr_assert_eq(bf_column_parse_value(&c, "-1", 2, &d, scratch, &err), BF_EINVAL);
	c = col_of("a varchar(2)");
	cr_assert_eq(bf_column_parse_value(&c, "\xc3\xa9\xc3\xa9", 4, &d, scratch, &err), 0,
		     "two characters of two bytes each fit VARCHAR(2)");
	cr_assert_eq(bf_column_parse_value(&c, "abc", 3, &d, scratch, &err), BF_ERANGE);
	cr_assert_eq(bf_column_parse_value(&c, "\xff", 1, &d, scratch, &err), BF_EINVAL);
	c = col_of("a double");
	cr_assert_eq(bf_column_parse_value(&c, "-2.5e3", 6, &d, scratch, &err), 0);
	cr_assert_eq(d.v.f, -2500.0);
	cr_assert_eq(bf_column_parse_value(&c, "nan", 3, &d, scratch, &err), BF_EINVAL);
	cr_assert_eq(bf_column_parse_value(&c, "inf", 3, &d, scratch, &err), BF_EINVAL);
	cr_assert_eq(bf_column_parse_value(&c, "1e999", 5, &d, scratch, &err), BF_ERANGE);
	bf_column_format_value(&c, &(bf_datum){ .kind = BF_DATUM_FLOAT, .v.f = 0.1 }, out,
			       sizeof(out));
	cr_assert_str_eq(out, "0.1", "the fewest digits that read back exactly");
	c = col_of("a datetime");
	cr_assert_eq(bf_column_parse_value(&c, "2024-02-29 23:59:59", 19, &d, scratch, &err), 0);
	bf_column_format_value(&c, &d, out, sizeof(out));
	cr_assert_str_eq(out, "2024-02-29 23:59:59");
	cr_assert_eq(bf_column_parse_value(&c, "2023-02-29 00:00:00", 19, &d, scratch, &err),
		     BF_EINVAL);
	c = col_of("a decimal(5,2)");
	cr_assert_eq(bf_column_parse_value(&c, "-1.005", 6, &d, scratch, &err), 0);
	bf_column_format_value(&c, &d, out, sizeof(out));
	cr_assert_str_eq(out, "-1.01", "half away from zero");
	cr_assert_eq(bf_column_parse_value(&c, "1000", 4, &d, scratch, &err), BF_ERANGE);
	cr_assert(strstr(bf_err_text(&err), "out of range for DECIMAL(5,2)"), "%s",
		  bf_err_text(&err));
}

Test(schema, catalog_keeps_types_prefixes_and_rowid)
{
	char *dir = t_scratch_new("schema-cat");
	char *path = t_path_in(dir, "s");
	bf_store *st = NULL;
	bf_table t, back;
	bf_err err = { 0 };

	cr_assert_eq(bf_store_open(path, BF_STORE_CREATE, &st, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_schema_parse("t", "a varchar(20), d double, e datetime(6),"
				     " f decimal(30,10)", &t, &err), 0);
	t.nindexes = 1;
	t.next_index_id = 2;
	snprintf(t.indexes[0].name, sizeof(t.indexes[0].name), "i");
	t.indexes[0].id = 1;
	t.indexes[0].ncols = 2;
	t.indexes[0].cols[0] = 0;
	t.indexes[0].prefix[0] = 5;
	t.indexes[0].cols[1] = 3;
	t.indexes[0].state = BF_INDEX_PUBLIC;
	cr_assert_eq(bf_table_create_in(bf_store_catalog(st), &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "t", &back, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(back.handle_col, -1);
	cr_assert_eq(back.cols[2].type, BF_COL_DATETIME);
	cr_assert_eq(back.cols[2].len, 6);
	cr_assert_eq(back.cols[3].len, 30);
	cr_assert_eq(back.cols[3].scale, 10);
	cr_assert_eq(back.indexes[0].prefix[0], 5);
	cr_assert_eq(back.indexes[0].prefix[1], 0);
	cr_assert_eq(bf_table_create_in(bf_store_catalog(st), &t, &err), BF_EEXIST);
	/* A prefix on a number is refused on the way in. */
	back.indexes[0].prefix[1] = 3;
	cr_assert_eq(bf_catalog_put_table(bf_store_catalog(st), &back, &err), BF_EINVAL);
	bf_store_close(st);
	free(path);
}

/* Loads rows 0..n-1 (in reverse order) of (id, v VARCHAR, f DECIMAL). */
static int load_rows(bf_store *st, int n, int dup_at, uint64_t mem, bf_err *err)
{
	bf_loader *ld = NULL;
	bf_load_opts o = { .mem_bytes = mem };
	bf_gen_stats stats;
	int rc = bf_loader_open_store(st, "t", &o, &ld, err);

	for (int i = n - 1; rc == 0 && i >= 0; i--) {
		char v[32];
		uint8_t bin[BF_DECIMAL_BIN_MAX];
		int id = i == dup_at ? 0 : i;
		int len = snprintf(v, sizeof(v), "value %09d", (i * 7919) % n);
		cr_assert_eq(bf_decimal_parse(v + 6, 9, 12, 2, bin), 0);
		bf_datum vals[3] = { bf_datum_int(id), bf_datum_bytes(v, (size_t)len),
				     bf_datum_decimal(bin, bf_decimal_bin_len(12, 2), 12, 2) };
		rc = bf_loader_add(ld, vals, 3, err);
	}
	if (rc == 0)
		rc = bf_loader_finish(ld, &stats, err);
	if (rc == 0)
		cr_assert_eq(stats.rows, (uint64_t)n);
	bf_loader_destroy(ld);
	return rc;
}

static bf_store *table_store(const char *tag)
{
	char *path = t_path_in(t_scratch_new(tag), "s");
	bf_store *st = NULL;
	bf_err err = { 0 };
	cr_assert_eq(bf_store_open(path, BF_STORE_CREATE, &st, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_table_create(st, "t", "id int primary key, v varchar(20) not null,"
				     " f decimal(12,2)", NULL, &err), 0, "%s", bf_err_text(&err));
	free(path);
	return st;
}

Test(schema, loader_sorts_spills_and_indexes)
{
	bf_store *st = table_store("schema-load");
	bf_add_index_opts ao = { .table = "t", .nspecs = 1, .mem = 64 << 20, .workers = 2 };
	bf_add_index_result res;
	bf_check_result cres;
	bf_err err = { 0 };

	/* 4 MiB of budget (3 for sorting) for 150k rows of ~60 bytes: runs merged. */
	cr_assert_eq(load_rows(st, 150000, -1, 4 << 20, &err), 0, "%s", bf_err_text(&err));
	ao.specs[0] = (bf_index_spec){ .name = "iv", .columns = "f,v(7)" };
	cr_assert_eq(bf_add_index(st, &ao, &res, &err), 0, "%s", bf_err_text(&err));
	char *tmp = t_path_in(t_scratch_dir, "check");
	cr_assert_eq(bf_check_index(st, NULL, "t", "iv", tmp, 64 << 20, &cres, &err), 0, "%s",
		     bf_err_text(&err));
	free(tmp);
	cr_assert_eq(cres.rows, 150000);
	cr_assert_eq(cres.expected, 150000);
	cr_assert_eq(cres.found, 150000);
	cr_assert_eq(cres.missing + cres.extra + cres.wrong_value, 0, "%s", cres.examples[0]);
	/* A second load would repeat keys: the table is no longer empty. */
	cr_assert_eq(load_rows(st, 10, -1, 0, &err), BF_ESTATE);
	bf_store_close(st);
}

Test(schema, loader_refuses_a_repeated_key_and_leaves_nothing)
{
	bf_store *st = table_store("schema-dup");
	bf_loader *ld = NULL;
	bf_err err = { 0 };

	cr_assert_eq(load_rows(st, 5000, 1234, 8 << 20, &err), BF_EDUP);
	cr_assert(strstr(bf_err_text(&err), "duplicate primary key 0 in column 'id'"), "%s",
		  bf_err_text(&err));
	/* Nothing is visible: the same rows load now. */
	cr_assert_eq(load_rows(st, 5000, -1, 8 << 20, &err), 0, "%s", bf_err_text(&err));
	/* Values are checked against their columns. */
	cr_assert_eq(bf_table_create(st, "u", "a int not null, b varchar(2)", NULL, &err), 0);
	cr_assert_eq(bf_loader_open_store(st, "u", NULL, &ld, &err), 0, "%s", bf_err_text(&err));
	bf_datum row[2] = { bf_datum_null(), bf_datum_bytes("ab", 2) };
	cr_assert_eq(bf_loader_add(ld, row, 2, &err), BF_EINVAL);
	cr_assert(strstr(bf_err_text(&err), "column 'a': NULL in a NOT NULL column"), "%s",
		  bf_err_text(&err));
	row[0] = bf_datum_uint(1);
	cr_assert_eq(bf_loader_add(ld, row, 2, &err), BF_EINVAL, "an unsigned datum for INT");
	row[0] = bf_datum_int(1);
	row[1] = bf_datum_bytes("abc", 3);
	cr_assert_eq(bf_loader_add(ld, row, 2, &err), BF_ERANGE);
	cr_assert_eq(bf_loader_add(ld, row, 1, &err), BF_EINVAL, "a short row");
	bf_loader_destroy(ld);
	cr_assert_eq(bf_loader_open_store(st, "nope", NULL, &ld, &err), BF_ENOTFOUND);
	bf_store_close(st);
}
