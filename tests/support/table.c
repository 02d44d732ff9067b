/*
 * Test tables: catalog records and rows written through the library, and
 * an index reader that checks entries by decoding them. Depends on the
 * codec, the store, the catalog and the sysbench row function.
 */
#include "tests/support/table.h"
#include "bfill/check.h"
#include "bfill/gen.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (1u << 20)
#define INSERT_BATCH_ROWS 4096

struct t_rows_chunk {
	t_rows_chunk *next;
	size_t used, cap;
	uint8_t data[];
};

void t_rows_init(t_rows *r, const bf_table *t)
{
	memset(r, 0, sizeof(*r));
	r->ncols = t->ncols;
	r->handle_col = t->handle_col;
}

/* A stable copy of n bytes in the set's chunks. */
static const uint8_t *rows_keep(t_rows *r, const uint8_t *p, size_t n)
{
	t_rows_chunk *c = r->chunks;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
		c = malloc(sizeof(*c) + cap);
		cr_assert_not_null(c, "out of memory for test rows");
		c->next = r->chunks;
		c->used = 0;
		c->cap = cap;
		r->chunks = c;
	}
	uint8_t *dst = c->data + c->used;
	if (n)
		memcpy(dst, p, n);
	c->used += n;
	return dst;
}

void t_rows_add(t_rows *r, int64_t handle, const bf_datum *vals)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		int64_t *h = realloc(r->handles, cap * sizeof(*h));
		cr_assert_not_null(h, "out of memory for test rows");
		r->handles = h;
		bf_datum *v = realloc(r->vals, cap * (size_t)r->ncols * sizeof(*v));
		cr_assert_not_null(v, "out of memory for test rows");
		r->vals = v;
		r->cap = cap;
	}
	bf_datum *row = &r->vals[r->n * (size_t)r->ncols];
	for (int c = 0; c < r->ncols; c++) {
		row[c] = vals[c];
		if (row[c].kind == BF_DATUM_BYTES)
			row[c].v.b.ptr = rows_keep(r, vals[c].v.b.ptr, vals[c].v.b.len);
		else if (row[c].kind == BF_DATUM_DECIMAL)
			row[c].v.dec.ptr = rows_keep(r, vals[c].v.dec.ptr, vals[c].v.dec.len);
	}
	row[r->handle_col] = bf_datum_int(handle);
	r->handles[r->n++] = handle;
}

const bf_datum *t_rows_get(const t_rows *r, size_t i)
{
	return &r->vals[i * (size_t)r->ncols];
}

void t_rows_free(t_rows *r)
{
	while (r->chunks) {
		t_rows_chunk *next = r->chunks->next;
		free(r->chunks);
		r->chunks = next;
	}
	free(r->handles);
	free(r->vals);
	memset(r, 0, sizeof(*r));
}

void t_rows_sbtest(t_rows *r, const bf_table *t, uint64_t seed, uint64_t n)
{
	int kc = bf_table_column(t, "k"), cc = bf_table_column(t, "c"), pc = bf_table_column(t, "pad");
	bf_datum vals[BF_MAX_COLUMNS];

	cr_assert(kc >= 0 && cc >= 0 && pc >= 0, "table %s is not an sbtest table", t->name);
	t_rows_init(r, t);
	for (uint64_t h = 1; h <= n; h++) {
		char c[BF_SBTEST_C_LEN], pad[BF_SBTEST_PAD_LEN];
		int64_t k;
		bf_gen_sbtest_row(seed, (int64_t)h, n, &k, c, pad);
		vals[kc] = bf_datum_int(k);
		vals[cc] = bf_datum_bytes(c, sizeof(c));
		vals[pc] = bf_datum_bytes(pad, sizeof(pad));
		t_rows_add(r, (int64_t)h, vals);
	}
}

void t_table_get(bf_store *st, const char *name, bf_table *out)
{
	bf_err err = { 0 };
	int rc = bf_catalog_get_table(bf_store_catalog(st), name, out, &err);
	cr_assert_eq(rc, 0, "table %s: %s", name, bf_err_text(&err));
}

void t_table_create(bf_store *st, const char *name, const t_coldef *cols, int ncols,
		    int handle_col, bf_table *out)
{
	bf_table t;
	bf_err err = { 0 };
	int rc;

	cr_assert(ncols > 0 && ncols <= BF_MAX_COLUMNS, "1..%d columns", BF_MAX_COLUMNS);
	cr_assert(handle_col >= 0 && handle_col < ncols);
	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "%s", name);
	t.ncols = ncols;
	for (int i = 0; i < ncols; i++) {
		bf_column *c = &t.cols[i];
		snprintf(c->name, sizeof(c->name), "%s", cols[i].name);
		c->id = i + 1;
		cr_assert_eq(bf_coltype_parse(cols[i].type, c), 0, "column %s: bad type '%s'",
			     cols[i].name, cols[i].type);
		c->not_null = cols[i].not_null;
	}
	cr_assert(t.cols[handle_col].type == BF_COL_INT, "the handle column must be a signed integer");
	t.cols[handle_col].not_null = true;
	t.handle_col = handle_col;
	t.next_index_id = 1;
	rc = bf_catalog_next_id(bf_store_catalog(st), "table", &t.id, &err);
	cr_assert_eq(rc, 0, "table id: %s", bf_err_text(&err));
	rc = bf_catalog_put_table(bf_store_catalog(st), &t, &err);
	cr_assert_eq(rc, 0, "create table %s: %s", name, bf_err_text(&err));
	if (out)
		t_table_get(st, name, out);
}

void t_table_insert(bf_store *st, const bf_table *t, const t_rows *rows)
{
	bf_row_col cols[BF_MAX_COLUMNS];
	int order[BF_MAX_COLUMNS];
	uint8_t key[BF_RECORD_KEY_LEN];
	uint8_t *val = NULL;
	size_t valcap = 0;
	bf_store_batch *b = NULL;
	size_t pending = 0;
	bf_err err = { 0 };
	bf_table cur;
	int rc;

	cr_assert_eq(rows->ncols, t->ncols, "rows shaped for another table");
	for (size_t i = 0; i < rows->n; i++) {
		const bf_datum *row = t_rows_get(rows, i);
		int n = 0;
		/* The handle lives in the key only, as in TiDB. */
		for (int c = 0; c < t->ncols; c++) {
			if (c == t->handle_col)
				continue;
			cols[n].col_id = t->cols[c].id;
			cols[n].val = row[c];
			n++;
		}
		size_t len = bf_codec_row_len(cols, n);
		cr_assert_gt(len, 0, "row %" PRId64 " can't be encoded", rows->handles[i]);
		if (len > valcap) {
			valcap = len * 2;
			val = realloc(val, valcap);
			cr_assert_not_null(val);
		}
		long wrote = bf_codec_row_encode(val, cols, n, order);
		cr_assert_eq(wrote, (long)len, "row %" PRId64 ": encoded %ld bytes, want %zu",
			     rows->handles[i], wrote, len);
		bf_codec_record_key(key, t->id, rows->handles[i]);
		if (!b)
			b = bf_store_batch_create();
		bf_store_batch_put(b, key, sizeof(key), val, len);
		if (++pending == INSERT_BATCH_ROWS || i + 1 == rows->n) {
			rc = bf_store_batch_commit(st, b, &err);
			cr_assert_eq(rc, 0, "insert into %s: %s", t->name, bf_err_text(&err));
			bf_store_batch_destroy(b);
			b = NULL;
			pending = 0;
		}
	}
	free(val);
	t_table_get(st, t->name, &cur);
	cur.rows_hint += rows->n;
	rc = bf_catalog_put_table(bf_store_catalog(st), &cur, &err);
	cr_assert_eq(rc, 0, "table %s: %s", t->name, bf_err_text(&err));
}

uint64_t t_table_index_count(bf_store *st, int64_t table_id, int64_t index_id)
{
	uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
	size_t lolen = sizeof(lo), hilen = sizeof(hi);
	bf_store_iter *it = NULL;
	bf_iter_opts io = { 0 };
	bf_err err = { 0 };
	uint64_t n = 0;

	if (index_id > 0) {
		bf_codec_index_prefix(lo, table_id, index_id);
		bf_codec_index_prefix(hi, table_id, index_id + 1);
	} else {
		/* "t{tid}_i" up to "t{tid}_j" */
		bf_codec_table_prefix(lo, table_id);
		memcpy(lo + BF_TABLE_PREFIX_LEN, "_i", 2);
		memcpy(hi, lo, BF_TABLE_PREFIX_LEN + 2);
		hi[BF_TABLE_PREFIX_LEN + 1] = 'j';
		lolen = hilen = BF_TABLE_PREFIX_LEN + 2;
	}
	int rc = bf_store_iter_create(st, lo, lolen, hi, hilen, &io, &it, &err);
	cr_assert_eq(rc, 0, "index iterator: %s", bf_err_text(&err));
	for (; bf_store_iter_valid(it); bf_store_iter_next(it))
		n++;
	rc = bf_store_iter_status(it, &err);
	bf_store_iter_destroy(it);
	cr_assert_eq(rc, 0, "index scan: %s", bf_err_text(&err));
	return n;
}

/* ---- verification by decoding ---- */

typedef struct verify_ctx {
	const t_rows *rows;
	size_t *by_handle; /* row positions sorted by handle */
} verify_ctx;

static const t_rows *sort_rows;

static int cmp_pos_by_handle(const void *a, const void *b)
{
	int64_t x = sort_rows->handles[*(const size_t *)a], y = sort_rows->handles[*(const size_t *)b];
	return (x > y) - (x < y);
}

/* Position of the row with this handle, or -1. */
static long find_row(const verify_ctx *v, int64_t handle)
{
	size_t lo = 0, hi = v->rows->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t h = v->rows->handles[v->by_handle[mid]];
		if (h == handle)
			return (long)v->by_handle[mid];
		if (h < handle)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool datum_eq(const bf_datum *a, const bf_datum *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case BF_DATUM_NULL: return true;
	case BF_DATUM_INT: return a->v.i == b->v.i;
	case BF_DATUM_UINT: return a->v.u == b->v.u;
	case BF_DATUM_BYTES:
		return a->v.b.len == b->v.b.len &&
		       (a->v.b.len == 0 || !memcmp(a->v.b.ptr, b->v.b.ptr, a->v.b.len));
	case BF_DATUM_FLOAT: return a->v.f == b->v.f;
	case BF_DATUM_DECIMAL:
		return a->v.dec.prec == b->v.dec.prec && a->v.dec.frac == b->v.dec.frac &&
		       a->v.dec.len == b->v.dec.len && !memcmp(a->v.dec.ptr, b->v.dec.ptr, a->v.dec.len);
	}
	return false;
}

static int64_t read_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* The memcomparable int of the key layout, decoded by hand. */
static int64_t read_key_int(const uint8_t *p)
{
	return (int64_t)((uint64_t)read_be64(p) ^ 0x8000000000000000ULL);
}

uint64_t t_table_verify_index(bf_store *st, const char *table, const char *index,
			      const t_rows *rows)
{
	bf_table t;
	uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
	bf_store_iter *it = NULL;
	bf_iter_opts io = { 0 };
	bf_err err = { 0 };
	verify_ctx v = { .rows = rows };
	bool *seen = NULL;
	uint8_t *scratch = NULL, *prev = NULL;
	size_t scratch_cap = 0, prevlen = 0;
	uint64_t n = 0;

	t_table_get(st, table, &t);
	int pos = bf_table_index(&t, index);
	cr_assert_geq(pos, 0, "index %s.%s is not in the catalog", table, index);
	const bf_index *x = &t.indexes[pos];
	cr_assert_eq(rows->ncols, t.ncols, "rows shaped for another table");

	v.by_handle = malloc((rows->n ? rows->n : 1) * sizeof(size_t));
	seen = calloc(rows->n ? rows->n : 1, sizeof(bool));
	cr_assert(v.by_handle && seen, "out of memory");
	for (size_t i = 0; i < rows->n; i++)
		v.by_handle[i] = i;
	sort_rows = rows;
	qsort(v.by_handle, rows->n, sizeof(size_t), cmp_pos_by_handle);

	bf_codec_index_prefix(lo, t.id, x->id);
	bf_codec_index_prefix(hi, t.id, x->id + 1);
	int rc = bf_store_iter_create(st, lo, sizeof(lo), hi, sizeof(hi), &io, &it, &err);
	cr_assert_eq(rc, 0, "index iterator: %s", bf_err_text(&err));
	for (; bf_store_iter_valid(it); bf_store_iter_next(it), n++) {
		size_t kl, vl;
		const uint8_t *k = bf_store_iter_key(it, &kl), *val = bf_store_iter_value(it, &vl);
		bf_datum cols[BF_MAX_INDEX_COLUMNS];
		int64_t tid = 0, iid = 0, khandle = 0, handle;
		bool has_handle = false, any_null = false;

		/* The prefix, by hand: 't' + int(tid) + "_i" + int(iid). */
		cr_assert(kl > BF_INDEX_PREFIX_LEN && k[0] == 't' && k[9] == '_' && k[10] == 'i',
			  "%s.%s entry %" PRIu64 ": not an index key", table, index, n);
		cr_assert_eq(read_key_int(k + 1), t.id, "entry %" PRIu64 ": table id", n);
		cr_assert_eq(read_key_int(k + 11), x->id, "entry %" PRIu64 ": index id", n);
		if (prev)
			cr_assert(prevlen != kl || memcmp(prev, k, kl) != 0, "entry %" PRIu64 " repeats a key", n);
		if (kl > scratch_cap) {
			scratch_cap = kl * 2;
			free(scratch);
			free(prev);
			scratch = malloc(scratch_cap);
			prev = malloc(scratch_cap);
			cr_assert(scratch && prev);
		}
		memcpy(prev, k, kl);
		prevlen = kl;

		rc = bf_codec_decode_index_key(k, kl, &tid, &iid, cols, x->ncols, scratch, &has_handle,
					       &khandle);
		cr_assert_eq(rc, 0, "%s.%s entry %" PRIu64 ": undecodable key", table, index, n);
		cr_assert(tid == t.id && iid == x->id);
		for (int c = 0; c < x->ncols; c++)
			any_null |= cols[c].kind == BF_DATUM_NULL;
		cr_assert_eq(has_handle, !x->unique || any_null,
			     "%s.%s entry %" PRIu64 ": handle %s the key (unique %d, NULL column %d)", table,
			     index, n, has_handle ? "in" : "not in", x->unique, any_null);
		if (has_handle) {
			cr_assert(vl == 1 && val[0] == '0',
				  "%s.%s entry %" PRIu64 ": value of %zu bytes, want '0'", table, index, n, vl);
			/* The handle in the key is 0x03 + int(handle), last in the key. */
			cr_assert(kl >= 9 && k[kl - 9] == BF_FLAG_INT && read_key_int(k + kl - 8) == khandle,
				  "entry %" PRIu64 ": handle suffix", n);
			handle = khandle;
		} else {
			cr_assert_eq(vl, 8, "%s.%s entry %" PRIu64 ": unique value of %zu bytes, want 8",
				     table, index, n, vl);
			handle = read_be64(val);
		}
		long row = find_row(&v, handle);
		cr_assert_geq(row, 0, "%s.%s entry %" PRIu64 ": handle %" PRId64 " names no row", table,
			      index, n, handle);
		cr_assert(!seen[row], "%s.%s: two entries for the row with handle %" PRId64, table, index,
			  handle);
		seen[row] = true;
		const bf_datum *want = t_rows_get(rows, (size_t)row);
		for (int c = 0; c < x->ncols; c++)
			cr_assert(datum_eq(&cols[c], &want[x->cols[c]]),
				  "%s.%s entry for handle %" PRId64 ": column %s differs from the row", table,
				  index, handle, t.cols[x->cols[c]].name);
	}
	rc = bf_store_iter_status(it, &err);
	bf_store_iter_destroy(it);
	cr_assert_eq(rc, 0, "index scan: %s", bf_err_text(&err));
	for (size_t i = 0; i < rows->n; i++)
		cr_assert(seen[i], "%s.%s has no entry for the row with handle %" PRId64, table, index,
			  rows->handles[i]);
	cr_assert_eq(n, rows->n, "%s.%s: %" PRIu64 " entries for %zu rows", table, index, n, rows->n);
	free(v.by_handle);
	free(seen);
	free(scratch);
	free(prev);
	return n;
}

bf_store *t_table_open_store(const char *dir)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	int rc = bf_store_open(dir, BF_STORE_CREATE, &st, &err);
	cr_assert_eq(rc, 0, "open store %s: %s", dir, bf_err_text(&err));
	return st;
}

void t_table_gen_sbtest(bf_store *st, const char *name, uint64_t rows, uint64_t seed,
			bf_table *out)
{
	bf_gen_opts go = { .table = name, .rows = rows, .seed = seed, .threads = 2,
			   .compression = BF_COMPRESS_NONE };
	bf_gen_stats gs;
	bf_err err = { 0 };
	int rc = bf_gen_sbtest(st, &go, &gs, &err);
	cr_assert_eq(rc, 0, "gen %s (%" PRIu64 " rows): %s", name, rows, bf_err_text(&err));
	if (out)
		t_table_get(st, name, out);
}

void t_table_expect_exact(bf_store *st, const char *table, const char *index,
			  const char *tmp_dir, uint64_t entries)
{
	bf_check_result cr;
	bf_err err = { 0 };
	int rc = bf_check_index(st, NULL, table, index, tmp_dir, 32ULL << 20, &cr, &err);

	cr_assert_eq(rc, 0, "check %s.%s: %s", table, index, bf_err_text(&err));
	cr_assert_str_eq(cr.index_state, "public", "%s.%s is %s", table, index, cr.index_state);
	cr_assert(cr.missing == 0 && cr.extra == 0 && cr.wrong_value == 0,
		  "%s.%s: %" PRIu64 " missing, %" PRIu64 " extra, %" PRIu64 " wrong value (first: %s)",
		  table, index, cr.missing, cr.extra, cr.wrong_value,
		  cr.nexamples ? cr.examples[0] : "-");
	cr_assert_eq(cr.expected, entries, "%s.%s: %" PRIu64 " expected entries, want %" PRIu64,
		     table, index, cr.expected, entries);
	cr_assert_eq(cr.found, entries, "%s.%s: %" PRIu64 " entries found, want %" PRIu64, table,
		     index, cr.found, entries);
}
