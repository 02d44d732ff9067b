/*
 * libFuzzer target: the row-v2 decoder (codec/rowv2.c) and the column
 * decoding on top of it (bf_table_decode_column). Any bytes are a row
 * value: the view refuses them or describes them without reading past
 * the end, every column it lists is found again with its bytes inside
 * the data area, and every column of a schema decodes or is refused.
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include "bfill/catalog.h"
#include "bfill/codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t id_at(const bf_row_view *rv, size_t i)
{
	const uint8_t *p = rv->ids + i * 4;
	return rv->large ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				   (uint32_t)p[3] << 24
			 : rv->ids[i];
}

/* A table whose columns take every decoder: ints of each width, unsigned,
 * CHAR and VARCHAR, DOUBLE, DATETIME and DECIMAL, with small ids and one
 * past the small-id range. */
static const bf_table *schema(void)
{
	static bf_table t;
	static const char *const types[] = { "bigint", "tinyint", "int unsigned", "char(5)",
					     "varchar(300)", "smallint", "bigint unsigned", "double",
					     "datetime(3)", "decimal(12,2)" };
	static const int64_t ids[] = { 1, 2, 3, 4, 5, 6, 300, 7, 8, 9 };
	const int n = (int)(sizeof(ids) / sizeof(ids[0]));

	if (t.ncols)
		return &t;
	for (int i = 0; i < n; i++) {
		t.cols[i].name[0] = (char)('a' + i);
		t.cols[i].id = ids[i];
		bf_coltype_parse(types[i], &t.cols[i]);
	}
	t.ncols = n;
	return &t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const bf_table *t = schema();
	const uint8_t *p;
	bf_row_view rv;
	size_t len;
	bf_datum d;

	if (bf_codec_row_view(&rv, data, size) != 0)
		return 0;
	for (size_t i = 0; i < (size_t)rv.n_notnull + rv.n_null; i++) {
		int found = bf_codec_row_find(&rv, id_at(&rv, i), &p, &len);
		/* An id may sit in both groups; the not-null one wins. */
		if (i < rv.n_notnull && found != BF_ROW_PRESENT)
			abort();
		if (found == BF_ROW_ABSENT)
			abort();
		if (found == BF_ROW_PRESENT && (p < rv.data || p + len > rv.data + rv.data_len))
			abort();
		if (found == BF_ROW_PRESENT) {
			int64_t v;
			uint64_t u;
			bf_codec_row_decode_int(p, len, &v);
			bf_codec_row_decode_uint(p, len, &u);
		}
	}
	if (bf_codec_row_find(&rv, -1, &p, &len) != BF_ROW_ABSENT ||
	    bf_codec_row_find(&rv, (int64_t)UINT32_MAX + 1, &p, &len) != BF_ROW_ABSENT)
		abort();
	for (int c = 0; c < t->ncols; c++) {
		if (bf_table_decode_column(t, c, &rv, 7, &d) != 0)
			continue;
		if (d.kind == BF_DATUM_BYTES &&
		    (d.v.b.ptr < rv.data || d.v.b.ptr + d.v.b.len > rv.data + rv.data_len))
			abort();
		/* A decimal that decodes is a valid value of its column's type. */
		if (d.kind == BF_DATUM_DECIMAL &&
		    (d.v.dec.ptr < rv.data || d.v.dec.ptr + d.v.dec.len > rv.data + rv.data_len ||
		     bf_decimal_check(d.v.dec.ptr, d.v.dec.len, d.v.dec.prec, d.v.dec.frac)))
			abort();
	}
	return 0;
}
