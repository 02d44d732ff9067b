/*
 * Custom tables for tests: create a table through the catalog and load
 * rows as TiDB record keys with row-format-v2 values, so that tests can
 * hold what `bfill gen` never writes (NULLs, extreme integers, empty and
 * long strings, many duplicates). Also an index reader that decodes every
 * entry of an index range by itself and compares it with what the rows
 * call for, independent of the build and of check-index.
 *
 * Failures end the test through Criterion assertions.
 */
#ifndef BFILL_TEST_TABLE_H
#define BFILL_TEST_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/store.h"

/* A column to create: type text as bf_coltype_parse reads it ("bigint",
 * "int", "bigint unsigned", "char(10)", "varchar(3000)"). */
typedef struct t_coldef {
	const char *name;
	const char *type;
	bool not_null;
} t_coldef;

/* The test's own copy of a table's rows: one datum per table column (in
 * column position order) per row. Byte values live in chunks owned by the
 * set, so datums stay valid until t_rows_free. */
typedef struct t_rows_chunk t_rows_chunk;
typedef struct t_rows {
	int ncols;
	int handle_col;
	size_t n, cap;
	int64_t *handles;
	bf_datum *vals;        /* n x ncols */
	t_rows_chunk *chunks;  /* owned byte storage */
} t_rows;

/* An empty set shaped like table t. */
void t_rows_init(t_rows *r, const bf_table *t);
/* Appends a row; vals holds ncols datums (the handle column's is replaced
 * by bf_datum_int(handle)). Byte values are copied. */
void t_rows_add(t_rows *r, int64_t handle, const bf_datum *vals);
/* Row i's ncols datums; borrowed. */
const bf_datum *t_rows_get(const t_rows *r, size_t i);
void t_rows_free(t_rows *r);
/* The rows `bfill gen --seed seed --rows n` writes into sbtest table t,
 * computed from the generator's row function, not read from the store. */
void t_rows_sbtest(t_rows *r, const bf_table *t, uint64_t seed, uint64_t n);

/* Opens the store in dir, creating it; asserts. Close with bf_store_close. */
bf_store *t_table_open_store(const char *dir);
/* Loads the sysbench table `name` with handles 1..rows through
 * bf_gen_sbtest; *out (may be NULL) gets the table. */
void t_table_gen_sbtest(bf_store *st, const char *name, uint64_t rows, uint64_t seed,
			bf_table *out);

/* Reads table `name` from the catalog (asserting that it exists). */
void t_table_get(bf_store *st, const char *name, bf_table *out);
/*
 * Creates table `name` with cols (ids 1..ncols in order); column
 * handle_col, an integer, is the int handle. *out (may be NULL) gets the
 * table as stored.
 */
void t_table_create(bf_store *st, const char *name, const t_coldef *cols, int ncols,
		    int handle_col, bf_table *out);
/* Writes every row of rows into table t (existing handles are replaced)
 * in synced batches, and adds rows->n to the table's rows_hint. */
void t_table_insert(bf_store *st, const bf_table *t, const t_rows *rows);

/* Keys in index index_id's range of table table_id; index_id 0 counts
 * every index key of the table ("t{tid}_i" prefix). */
uint64_t t_table_index_count(bf_store *st, int64_t table_id, int64_t index_id);

/*
 * Decodes every entry of index `index` of `table` and asserts that the
 * range holds exactly one entry per row of rows, with TiDB's layout:
 * key 't'+int(tid)+"_i"+int(iid)+datums, plus the int handle when the
 * index is not unique or a column is NULL; value '0' when the handle is in
 * the key, else the handle as 8 bytes big-endian. Returns entries seen.
 */
uint64_t t_table_verify_index(bf_store *st, const char *table, const char *index,
			      const t_rows *rows);

/*
 * Runs bf_check_index (its throwaway engine in tmp_dir) and asserts that
 * the index is public and holds exactly `entries` entries, none missing,
 * extra or with a wrong value.
 */
void t_table_expect_exact(bf_store *st, const char *table, const char *index,
			  const char *tmp_dir, uint64_t entries);

#endif
