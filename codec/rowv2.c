/*
 * Row format v2 (TiDB rowcodec): encoder and a zero-copy, validating view.
 *
 * A column's bytes are, as TiDB's encodeValueDatum writes them: an int or
 * unsigned int (DATETIME's packed value among them) little-endian in the
 * fewest of 1, 2, 4 or 8 bytes; a string as is; a DOUBLE in 8 bytes of
 * codec.EncodeFloat's memcomparable form; a DECIMAL as codec.EncodeDecimal
 * writes it, a precision byte, a fraction byte and the binary form. The
 * float and decimal forms are those of keys without the flag byte.
 *
 * Depends on libc only.
 */
#include "bfill/codec.h"
#include "bfill/error.h"

#include <string.h>

#define CODEC_VER 128
#define FLAG_LARGE 0x01
#define FLAG_CHECKSUM 0x02
#define HEADER_LEN 6
#define SMALL_ID_MAX 255
#define SMALL_DATA_MAX 65535

static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Shortest little-endian width that round-trips a signed value. */
static size_t int_width(int64_t v)
{
	if (v >= INT8_MIN && v <= INT8_MAX) return 1;
	if (v >= INT16_MIN && v <= INT16_MAX) return 2;
	if (v >= INT32_MIN && v <= INT32_MAX) return 4;
	return 8;
}

static size_t uint_width(uint64_t v)
{
	if (v <= UINT8_MAX) return 1;
	if (v <= UINT16_MAX) return 2;
	if (v <= UINT32_MAX) return 4;
	return 8;
}

static size_t value_len(const bf_datum *d)
{
	switch (d->kind) {
	case BF_DATUM_INT: return int_width(d->v.i);
	case BF_DATUM_UINT: return uint_width(d->v.u);
	case BF_DATUM_BYTES: return d->v.b.len;
	case BF_DATUM_FLOAT: return 8;
	case BF_DATUM_DECIMAL: return 2 + d->v.dec.len;
	case BF_DATUM_NULL: return 0;
	}
	return 0;
}

static void put_le_n(uint8_t *dst, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (uint8_t)(v >> (8 * i));
}

/* Writes a not-null value's bytes (value_len of them). */
static void put_value(uint8_t *dst, const bf_datum *d)
{
	switch (d->kind) {
	case BF_DATUM_INT:
		put_le_n(dst, (uint64_t)d->v.i, int_width(d->v.i));
		break;
	case BF_DATUM_UINT:
		put_le_n(dst, d->v.u, uint_width(d->v.u));
		break;
	case BF_DATUM_BYTES:
		if (d->v.b.len)
			memcpy(dst, d->v.b.ptr, d->v.b.len);
		break;
	case BF_DATUM_FLOAT:
		bf_codec_put_float(dst, d->v.f);
		break;
	case BF_DATUM_DECIMAL:
		dst[0] = d->v.dec.prec;
		dst[1] = d->v.dec.frac;
		memcpy(dst + 2, d->v.dec.ptr, d->v.dec.len);
		break;
	case BF_DATUM_NULL:
		break;
	}
}

/* A decimal datum's length sizes the row, so it must be its type's. */
static bool decimal_len_valid(const bf_datum *d)
{
	size_t want = bf_decimal_bin_len(d->v.dec.prec, d->v.dec.frac);
	return want != 0 && d->v.dec.len == want;
}

/* Shape of an encoded row, shared by bf_codec_row_len and the encoder. */
typedef struct row_shape {
	size_t n_notnull, n_null, data_len;
	bool large;
} row_shape;

static int row_shape_of(const bf_row_col *cols, int ncols, row_shape *s)
{
	memset(s, 0, sizeof(*s));
	if (ncols < 0 || ncols > UINT16_MAX)
		return BF_EINVAL;
	for (int i = 0; i < ncols; i++) {
		if (cols[i].col_id < 0 || cols[i].col_id > (int64_t)UINT32_MAX)
			return BF_EINVAL;
		if (cols[i].col_id > SMALL_ID_MAX)
			s->large = true;
		if (cols[i].val.kind == BF_DATUM_DECIMAL && !decimal_len_valid(&cols[i].val))
			return BF_EINVAL;
		if (cols[i].val.kind == BF_DATUM_NULL) {
			s->n_null++;
		} else {
			s->n_notnull++;
			s->data_len += value_len(&cols[i].val);
		}
	}
	if (s->data_len > SMALL_DATA_MAX)
		s->large = true;
	if (s->data_len > UINT32_MAX)
		return BF_ERANGE;
	return 0;
}

static size_t row_total(const row_shape *s)
{
	size_t id_w = s->large ? 4 : 1, off_w = s->large ? 4 : 2;
	return HEADER_LEN + (s->n_notnull + s->n_null) * id_w + s->n_notnull * off_w + s->data_len;
}

size_t bf_codec_row_len(const bf_row_col *cols, int ncols)
{
	row_shape s;
	if (row_shape_of(cols, ncols, &s))
		return 0;
	return row_total(&s);
}

static inline bool id_less(const bf_row_col *cols, int a, int b)
{
	return cols[a].col_id < cols[b].col_id;
}

static void sift_down(const bf_row_col *cols, int *order, int root, int n)
{
	for (;;) {
		int child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && id_less(cols, order[child], order[child + 1]))
			child++;
		if (!id_less(cols, order[root], order[child]))
			return;
		int t = order[root];
		order[root] = order[child];
		order[child] = t;
		root = child;
	}
}

/* Sorts column positions by id without a comparator context (qsort has
 * none in C11), so the encoder stays reentrant: insertion sort for the
 * usual few columns, heap sort for wide rows. */
static void order_by_id(const bf_row_col *cols, int ncols, int *order)
{
	for (int i = 0; i < ncols; i++)
		order[i] = i;
	if (ncols <= 32) {
		for (int i = 1; i < ncols; i++) {
			int cur = order[i], j = i;
			while (j > 0 && id_less(cols, cur, order[j - 1])) {
				order[j] = order[j - 1];
				j--;
			}
			order[j] = cur;
		}
		return;
	}
	for (int i = ncols / 2 - 1; i >= 0; i--)
		sift_down(cols, order, i, ncols);
	for (int n = ncols - 1; n > 0; n--) {
		int t = order[0];
		order[0] = order[n];
		order[n] = t;
		sift_down(cols, order, 0, n);
	}
}

long bf_codec_row_encode(uint8_t *dst, const bf_row_col *cols, int ncols, int *tmp_order)
{
	row_shape s;
	int rc = row_shape_of(cols, ncols, &s);
	if (rc)
		return rc;
	order_by_id(cols, ncols, tmp_order);
	for (int i = 1; i < ncols; i++)
		if (cols[tmp_order[i]].col_id == cols[tmp_order[i - 1]].col_id)
			return BF_EINVAL;

	size_t id_w = s.large ? 4 : 1, off_w = s.large ? 4 : 2;
	uint8_t *ids = dst + HEADER_LEN;
	uint8_t *offs = ids + (s.n_notnull + s.n_null) * id_w;
	uint8_t *data = offs + s.n_notnull * off_w;
	size_t nn = 0, nl = 0, end = 0;

	dst[0] = CODEC_VER;
	dst[1] = s.large ? FLAG_LARGE : 0;
	put_le16(dst + 2, (uint16_t)s.n_notnull);
	put_le16(dst + 4, (uint16_t)s.n_null);
	for (int k = 0; k < ncols; k++) {
		const bf_row_col *c = &cols[tmp_order[k]];
		size_t slot;
		if (c->val.kind == BF_DATUM_NULL) {
			slot = s.n_notnull + nl++;
		} else {
			put_value(data + end, &c->val);
			end += value_len(&c->val);
			if (s.large)
				put_le32(offs + nn * 4, (uint32_t)end);
			else
				put_le16(offs + nn * 2, (uint16_t)end);
			slot = nn++;
		}
		if (s.large)
			put_le32(ids + slot * 4, (uint32_t)c->col_id);
		else
			ids[slot] = (uint8_t)c->col_id;
	}
	return (long)row_total(&s);
}

static inline uint32_t id_at(const bf_row_view *rv, size_t i)
{
	return rv->large ? get_le32(rv->ids + i * 4) : rv->ids[i];
}

static inline uint32_t off_at(const bf_row_view *rv, size_t i)
{
	return rv->large ? get_le32(rv->offsets + i * 4) : get_le16(rv->offsets + i * 2);
}

int bf_codec_row_view(bf_row_view *rv, const uint8_t *val, size_t len)
{
	if (len < HEADER_LEN || val[0] != CODEC_VER)
		return BF_ECORRUPT;
	if (val[1] & ~(FLAG_LARGE | FLAG_CHECKSUM))
		return BF_ECORRUPT;
	rv->large = val[1] & FLAG_LARGE;
	rv->n_notnull = get_le16(val + 2);
	rv->n_null = get_le16(val + 4);
	size_t id_w = rv->large ? 4 : 1, off_w = rv->large ? 4 : 2;
	size_t meta = HEADER_LEN + ((size_t)rv->n_notnull + rv->n_null) * id_w +
		      (size_t)rv->n_notnull * off_w;
	if (meta > len)
		return BF_ECORRUPT;
	rv->ids = val + HEADER_LEN;
	rv->offsets = rv->ids + ((size_t)rv->n_notnull + rv->n_null) * id_w;
	rv->data = val + meta;

	uint32_t prev = 0;
	for (size_t i = 0; i < rv->n_notnull; i++) {
		uint32_t o = off_at(rv, i);
		if (o < prev)
			return BF_ECORRUPT;
		prev = o;
	}
	if (prev > len - meta)
		return BF_ECORRUPT;
	rv->data_len = prev;
	/* Anything after the data is only allowed as a checksum trailer. */
	if (!(val[1] & FLAG_CHECKSUM) && meta + prev != len)
		return BF_ECORRUPT;
	/* Lookups binary-search the ids, so each group must be ascending. */
	for (size_t i = 1; i < rv->n_notnull; i++)
		if (id_at(rv, i) <= id_at(rv, i - 1))
			return BF_ECORRUPT;
	for (size_t i = 1; i < rv->n_null; i++)
		if (id_at(rv, rv->n_notnull + i) <= id_at(rv, rv->n_notnull + i - 1))
			return BF_ECORRUPT;
	return 0;
}

static long search_ids(const bf_row_view *rv, size_t lo, size_t hi, uint32_t id)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t v = id_at(rv, mid);
		if (v == id)
			return (long)mid;
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int bf_codec_row_find(const bf_row_view *rv, int64_t col_id, const uint8_t **ptr,
		      size_t *len)
{
	if (col_id < 0 || col_id > (int64_t)UINT32_MAX)
		return BF_ROW_ABSENT;
	long i = search_ids(rv, 0, rv->n_notnull, (uint32_t)col_id);
	if (i >= 0) {
		uint32_t start = i == 0 ? 0 : off_at(rv, (size_t)i - 1);
		*ptr = rv->data + start;
		*len = off_at(rv, (size_t)i) - start;
		return BF_ROW_PRESENT;
	}
	if (search_ids(rv, rv->n_notnull, (size_t)rv->n_notnull + rv->n_null, (uint32_t)col_id) >= 0)
		return BF_ROW_NULL;
	return BF_ROW_ABSENT;
}

int bf_codec_row_decode_int(const uint8_t *p, size_t n, int64_t *out)
{
	switch (n) {
	case 1: *out = (int8_t)p[0]; return 0;
	case 2: *out = (int16_t)get_le16(p); return 0;
	case 4: *out = (int32_t)get_le32(p); return 0;
	case 8: *out = (int64_t)((uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32)); return 0;
	default: return BF_ECORRUPT;
	}
}

int bf_codec_row_decode_uint(const uint8_t *p, size_t n, uint64_t *out)
{
	switch (n) {
	case 1: *out = p[0]; return 0;
	case 2: *out = get_le16(p); return 0;
	case 4: *out = get_le32(p); return 0;
	case 8: *out = (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32); return 0;
	default: return BF_ECORRUPT;
	}
}

int bf_codec_row_decode_float(const uint8_t *p, size_t n, double *out)
{
	if (n != 8)
		return BF_ECORRUPT;
	return bf_codec_decode_float(p, out);
}

int bf_codec_row_decode_decimal(const uint8_t *p, size_t n, int prec, int frac, bf_datum *out)
{
	size_t bin_len = bf_decimal_bin_len(prec, frac);

	/* The bytes carry their own precision and fraction; a value of another
	 * DECIMAL type than the column's is not one bfill can index as is. */
	if (bin_len == 0 || n != 2 + bin_len || p[0] != prec || p[1] != frac)
		return BF_ECORRUPT;
	int rc = bf_decimal_check(p + 2, bin_len, prec, frac);
	if (rc)
		return rc;
	*out = bf_datum_decimal(p + 2, bin_len, prec, frac);
	return 0;
}
