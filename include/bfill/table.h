/*
 * Tables of your own: a schema written as SQL column definitions, created
 * in a catalog, and rows loaded into it from the program's own values or
 * from a CSV file. Loads go through sorted SSTs ingested in one atomic step,
 * as `bfill gen` does: every row becomes visible or none does.
 */
#ifndef BFILL_TABLE_H
#define BFILL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/error.h"
#include "bfill/gen.h"
#include "bfill/sst.h"
#include "bfill/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parses column definitions into *out (named name, no id yet):
 *   "id BIGINT PRIMARY KEY, a INT, b VARCHAR(64) NOT NULL, c BIGINT UNSIGNED,
 *    d DOUBLE, e DATETIME, f DECIMAL(12,2)"
 * Types: TINYINT, SMALLINT, MEDIUMINT, INT/INTEGER, BIGINT (each optionally
 * UNSIGNED), CHAR(n), VARCHAR(n), DOUBLE, DATETIME[(fsp)], DECIMAL(p[,s]).
 * Keywords are case-insensitive; names may be `quoted`. One column may be
 * PRIMARY KEY (a trailing "PRIMARY KEY (col)" works too); it must be an
 * integer and becomes the handle. Without one, rows get a hidden
 * _tidb_rowid handle (1, 2, ... in load order), as TiDB does.
 * BF_EINVAL with the offending column named in err.
 */
int bf_schema_parse(const char *name, const char *schema, bf_table *out, bf_err *err);

/* Creates table t (its id is allocated and written back); BF_EEXIST when
 * a table of that name exists (nothing written). */
int bf_table_create_in(bf_catalog *cat, bf_table *t, bf_err *err);
/* bf_schema_parse + bf_table_create_in on a local store; *out may be NULL. */
int bf_table_create(bf_store *st, const char *name, const char *schema, bf_table *out,
		    bf_err *err);

/*
 * Converts the text form of a value of column c into a datum: integers in
 * range, strings of at most c->len characters of UTF-8, DOUBLE (finite),
 * DATETIME and DECIMAL as bf_datetime_parse / bf_decimal_parse take them.
 * Byte and decimal datums point into s or into scratch (BF_DECIMAL_BIN_MAX
 * bytes), which must outlive the datum. BF_EINVAL / BF_ERANGE with why in
 * err (the caller adds where).
 */
int bf_column_parse_value(const bf_column *c, const char *s, size_t n, bf_datum *out,
			  uint8_t *scratch, bf_err *err);
/* Checks that a datum fits column c (kind, range, length); BF_EINVAL or
 * BF_ERANGE with why in err. */
int bf_column_check_value(const bf_column *c, const bf_datum *d, bf_err *err);

/* The text of a value of column c, as bf_column_parse_value reads it back
 * (DATETIME as its date and time, DOUBLE in the fewest digits that read
 * back exactly); NULL is "NULL", a string is copied as it is. Cut to n. */
void bf_column_format_value(const bf_column *c, const bf_datum *d, char *out, size_t n);

typedef struct bf_load_opts {
	uint64_t mem_bytes;          /* sort budget; 0 = 256 MiB */
	bf_compression compression; /* of the loaded SSTs */
	/* Called about every 100 ms from the loading thread; may be NULL. */
	void (*progress)(uint64_t rows_done, void *arg);
	void *progress_arg;
} bf_load_opts;

/*
 * A load into one empty table without indexes (BF_ESTATE otherwise: rows
 * loaded under an index would leave it incomplete). Rows may come in any
 * order; a repeated primary key fails the load with BF_EDUP naming it.
 * Nothing is visible until bf_loader_finish succeeds. Not thread-safe: one
 * thread drives a loader.
 */
typedef struct bf_loader bf_loader;

/* pl's catalog and target are borrowed for the loader's life; pl and o
 * themselves are copied (o may be NULL). */
int bf_loader_open(const bf_gen_place *pl, const char *table, const bf_load_opts *o,
		   bf_loader **out, bf_err *err);
/* bf_loader_open on a local store (borrowed; it must outlive the loader). */
int bf_loader_open_store(bf_store *st, const char *table, const bf_load_opts *o,
			 bf_loader **out, bf_err *err);
/* The table being loaded (borrowed). */
const bf_table *bf_loader_table(const bf_loader *ld);
/* Adds one row: vals[i] is column i of the table (n == ncols); NULL datums
 * for nullable columns. Checked with bf_column_check_value. */
int bf_loader_add(bf_loader *ld, const bf_datum *vals, int n, bf_err *err);
/* Sorts, writes and ingests every row added, then records the row count. */
int bf_loader_finish(bf_loader *ld, bf_gen_stats *stats, bf_err *err);
/* NULL is allowed; a loader not finished leaves the table as it was. */
void bf_loader_destroy(bf_loader *ld);

typedef struct bf_csv_opts {
	bool header; /* the first record names the columns, in any order */
} bf_csv_opts;

/*
 * Loads an RFC 4180 CSV file (path "-" = standard input): comma-separated,
 * fields optionally in double quotes ("" for a quote, line breaks allowed
 * inside), CRLF or LF line ends. \N or an empty unquoted field is NULL; a
 * quoted empty field is the empty string. Without a header the fields are
 * the table's columns in order. A bad record fails the load (nothing
 * loaded) with BF_EINVAL naming the line and the column.
 */
int bf_load_csv(const bf_gen_place *pl, const char *table, const char *path,
		const bf_csv_opts *csv, const bf_load_opts *o, bf_gen_stats *stats, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
