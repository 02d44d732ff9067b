/*
 * TiDB-compatible key and value codecs (tablecodec, codec, rowcodec v2).
 *
 * Everything here is pure byte manipulation: no allocation, no I/O. Encoders
 * write into caller buffers sized with the matching *_len function; decoders
 * validate every length against the input and return BF_ECORRUPT on
 * malformed bytes without reading past the end. Decoded byte datums point
 * into the input (no copy) unless a function says otherwise.
 */
#ifndef BFILL_CODEC_H
#define BFILL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Datum flags, as TiDB writes them in keys. */
enum {
	BF_FLAG_NIL = 0x00,
	BF_FLAG_BYTES = 0x01,
	BF_FLAG_COMPACT_BYTES = 0x02,
	BF_FLAG_INT = 0x03,
	BF_FLAG_UINT = 0x04,
	BF_FLAG_FLOAT = 0x05,
	BF_FLAG_DECIMAL = 0x06,
};

#define BF_RECORD_KEY_LEN 19   /* 't' + tid + "_r" + handle */
#define BF_RECORD_PREFIX_LEN 11 /* 't' + tid + "_r" */
#define BF_INDEX_PREFIX_LEN 19 /* 't' + tid + "_i" + index id */
#define BF_TABLE_PREFIX_LEN 9  /* 't' + tid */

/* ---- memcomparable primitives ---- */

/* 8 bytes, sign bit flipped, big-endian: orders like the signed value. */
void bf_codec_put_int(uint8_t dst[8], int64_t v);
int64_t bf_codec_get_int(const uint8_t src[8]);
/* 8 bytes big-endian. */
void bf_codec_put_uint(uint8_t dst[8], uint64_t v);
uint64_t bf_codec_get_uint(const uint8_t src[8]);

/* Bytes needed by bf_codec_put_bytes for n input bytes: (n/8 + 1) * 9. */
static inline size_t bf_codec_bytes_len(size_t n) { return (n / 8 + 1) * 9; }

/* Group encoding (8 bytes + marker 0xFF - pad). Returns bytes written. */
size_t bf_codec_put_bytes(uint8_t *dst, const void *src, size_t n);

/*
 * Decodes one group-encoded string from src[0..srclen). Writes the decoded
 * bytes to out (may be NULL to only measure), sets *outlen and *consumed.
 * out, when given, must hold at least srclen bytes.
 */
int bf_codec_get_bytes(const uint8_t *src, size_t srclen, uint8_t *out,
		       size_t *outlen, size_t *consumed);

/* ---- datums ---- */

typedef enum bf_datum_kind {
	BF_DATUM_NULL = 0,
	BF_DATUM_INT,
	BF_DATUM_UINT,
	BF_DATUM_BYTES,
	BF_DATUM_FLOAT,   /* DOUBLE */
	BF_DATUM_DECIMAL, /* DECIMAL(prec,frac) in its binary form */
} bf_datum_kind;

/*
 * DATETIME has no datum kind of its own: TiDB keeps it as a packed
 * unsigned integer (bf_datetime_parse makes one) in keys and rows alike, so
 * it is a BF_DATUM_UINT holding the packed value.
 */

typedef struct bf_datum {
	bf_datum_kind kind;
	union {
		int64_t i;
		uint64_t u;
		double f;
		struct {
			const uint8_t *ptr; /* not owned */
			size_t len;
		} b;
		/* MySQL's binary decimal (bf_decimal_bin_len(prec, frac) bytes,
		 * memcomparable for one prec and frac); not owned. */
		struct {
			const uint8_t *ptr;
			size_t len;
			uint8_t prec, frac;
		} dec;
	} v;
} bf_datum;

/*
 * Plain assignments rather than designated initializers: the header is
 * also read by C++ programs, which accept neither nested designators nor
 * (before C++20) any.
 */
static inline bf_datum bf_datum_null(void)
{
	bf_datum d;
	memset(&d, 0, sizeof d);
	d.kind = BF_DATUM_NULL;
	return d;
}
static inline bf_datum bf_datum_int(int64_t i)
{
	bf_datum d = bf_datum_null();
	d.kind = BF_DATUM_INT;
	d.v.i = i;
	return d;
}
static inline bf_datum bf_datum_uint(uint64_t u)
{
	bf_datum d = bf_datum_null();
	d.kind = BF_DATUM_UINT;
	d.v.u = u;
	return d;
}
static inline bf_datum bf_datum_float(double f)
{
	bf_datum d = bf_datum_null();
	d.kind = BF_DATUM_FLOAT;
	d.v.f = f;
	return d;
}
static inline bf_datum bf_datum_decimal(const uint8_t *bin, size_t len, int prec, int frac)
{
	bf_datum d = bf_datum_null();
	d.kind = BF_DATUM_DECIMAL;
	d.v.dec.ptr = bin;
	d.v.dec.len = len;
	d.v.dec.prec = (uint8_t)prec;
	d.v.dec.frac = (uint8_t)frac;
	return d;
}
static inline bf_datum bf_datum_bytes(const void *p, size_t n)
{
	bf_datum d = bf_datum_null();
	d.kind = BF_DATUM_BYTES;
	d.v.b.ptr = (const uint8_t *)p;
	d.v.b.len = n;
	return d;
}

/* Key-encoded size of one datum (flag byte included). */
size_t bf_codec_datum_key_len(const bf_datum *d);
/* Writes flag + memcomparable body. Returns bytes written. */
size_t bf_codec_put_datum_key(uint8_t *dst, const bf_datum *d);
/*
 * Decodes one key datum. Byte datums are copied into scratch (which must
 * hold srclen bytes) because group encoding interleaves markers; d->v.b.ptr
 * then points into scratch. Decimal datums need no copy: d->v.dec.ptr
 * points into src. Floats and decimals are validated as
 * bf_codec_decode_float and bf_decimal_check do.
 */
int bf_codec_get_datum_key(const uint8_t *src, size_t srclen, bf_datum *d,
			   uint8_t *scratch, size_t *consumed);

/* ---- DOUBLE, DECIMAL, DATETIME ---- */

/* 8 bytes, memcomparable: the sign bit set for v >= 0 (so -0.0 and 0.0
 * encode alike), every bit inverted for v < 0; big-endian. TiDB uses this
 * form in keys (after BF_FLAG_FLOAT) and as a DOUBLE's row-v2 value. */
void bf_codec_put_float(uint8_t dst[8], double v);
double bf_codec_get_float(const uint8_t src[8]);
/* bf_codec_get_float for stored bytes: BF_ECORRUPT for a NaN (MySQL stores
 * none) and for bytes bf_codec_put_float never writes (the one such finite
 * value is -0.0's bit pattern), so every value has one encoding. */
int bf_codec_decode_float(const uint8_t src[8], double *out);

#define BF_DECIMAL_MAX_PREC 65
#define BF_DECIMAL_MAX_FRAC 30
#define BF_DECIMAL_BIN_MAX 32 /* bf_decimal_bin_len(65, 30) and below */
#define BF_DECIMAL_TEXT_MAX 68 /* bf_decimal_format's longest text, NUL included */
#define BF_DATETIME_TEXT_MAX 27 /* bf_datetime_format's, fsp 6, NUL included */

/* Bytes of the binary form of DECIMAL(prec, frac): 9 digits per 4 bytes,
 * the leftover digits of each side in 1..4 bytes, as MySQL stores it.
 * 0 when 1 <= prec <= 65 and 0 <= frac <= min(prec, 30) does not hold. */
size_t bf_decimal_bin_len(int prec, int frac);
/* 0 when bin (len bytes) is a value of DECIMAL(prec, frac); BF_ECORRUPT for
 * a wrong length or type, a group holding more digits than it may, or a
 * negative zero (TiDB writes zero only as positive). */
int bf_decimal_check(const uint8_t *bin, size_t len, int prec, int frac);
/*
 * Parses decimal text ("-12.5", "+3", ".75", "1e3" is refused) into the
 * binary form of DECIMAL(prec, frac) in bin (bf_decimal_bin_len bytes).
 * Extra fraction digits are rounded half away from zero, as MySQL does;
 * a zero is always written positive. BF_EINVAL when s is not a number or
 * (prec, frac) no DECIMAL type, BF_ERANGE when the integer part has more
 * than prec - frac digits (after rounding); bin is untouched on error.
 */
int bf_decimal_parse(const char *s, size_t n, int prec, int frac, uint8_t *bin);
/* Formats a binary decimal as text with exactly frac fraction digits
 * ("-0.50"); BF_ECORRUPT when bin is not a valid value of that type
 * (bf_decimal_check), BF_ERANGE when out (n bytes, NUL written) is too
 * small. */
int bf_decimal_format(const uint8_t *bin, size_t len, int prec, int frac, char *out, size_t n);

/*
 * DATETIME(fsp) as TiDB packs it: ((year*13 + month) << 5 | day) << 17 |
 * hour << 12 | minute << 6 | second, shifted left 24, | microseconds.
 * Parses "YYYY-MM-DD HH:MM:SS[.ffffff]" (or a 'T' for the space, or a
 * date alone; every field its full width); fraction digits past fsp
 * (0..6) are rounded half up, as MySQL does, carrying into the seconds and
 * on up to the year. BF_EINVAL for anything else or a date that does not
 * exist (month 1..12, the month's days, leap years; 0000-00-00 is
 * refused); years 1000..9999 as MySQL documents, after rounding too.
 * *packed is untouched on error.
 */
int bf_datetime_parse(const char *s, size_t n, int fsp, uint64_t *packed);
/* "YYYY-MM-DD HH:MM:SS" plus "." and fsp digits when fsp > 0; BF_ECORRUPT
 * when packed is not a datetime bf_datetime_parse could give for this fsp
 * (TiDB's zero datetime, packed 0, among them), BF_EINVAL for an fsp
 * outside 0..6, BF_ERANGE when out is too small. */
int bf_datetime_format(uint64_t packed, int fsp, char *out, size_t n);

/* ---- keys ---- */

void bf_codec_table_prefix(uint8_t out[BF_TABLE_PREFIX_LEN], int64_t table_id);
void bf_codec_record_prefix(uint8_t out[BF_RECORD_PREFIX_LEN], int64_t table_id);
void bf_codec_record_key(uint8_t out[BF_RECORD_KEY_LEN], int64_t table_id, int64_t handle);
int bf_codec_decode_record_key(const uint8_t *key, size_t len, int64_t *table_id,
			       int64_t *handle);
void bf_codec_index_prefix(uint8_t out[BF_INDEX_PREFIX_LEN], int64_t table_id,
			   int64_t index_id);

/*
 * Index key length for the given column datums; with_handle appends the int
 * handle (non-unique indexes, or unique ones where a column is NULL).
 */
size_t bf_codec_index_key_len(const bf_datum *cols, int ncols, bool with_handle);
/* Writes the index key; returns bytes written (== bf_codec_index_key_len). */
size_t bf_codec_index_key(uint8_t *dst, int64_t table_id, int64_t index_id,
			  const bf_datum *cols, int ncols, bool with_handle,
			  int64_t handle);
/*
 * Decodes an index key with ncols columns. Byte datums are copied into
 * scratch (>= len bytes); decimal datums point into key. *has_handle tells
 * whether a handle followed.
 */
int bf_codec_decode_index_key(const uint8_t *key, size_t len, int64_t *table_id,
			      int64_t *index_id, bf_datum *cols, int ncols,
			      uint8_t *scratch, bool *has_handle, int64_t *handle);

/* True when a unique index stores the handle in the key (a NULL column). */
bool bf_codec_index_needs_handle(bool unique, const bf_datum *cols, int ncols);

/*
 * Smallest key greater than every key with this prefix, in place: increments
 * the last byte that is not 0xFF and truncates after it. Returns the new
 * length, or 0 when every byte is 0xFF (no such key: the range is open).
 */
size_t bf_codec_prefix_next(uint8_t *key, size_t len);

/* ---- index values (TiDB's old format) ---- */

#define BF_INDEX_VALUE_MAX 9
/* '0' when the handle is in the key; else the 8-byte big-endian handle. */
size_t bf_codec_index_value(uint8_t dst[BF_INDEX_VALUE_MAX], bool handle_in_key,
			    int64_t handle);
/* Reads a handle from a unique value; *has_handle false for '0'. */
int bf_codec_decode_index_value(const uint8_t *val, size_t len, bool *has_handle,
				int64_t *handle);

/* ---- row format v2 ---- */

/* A column to encode: its id, value and whether an int is unsigned. */
typedef struct bf_row_col {
	int64_t col_id;
	bf_datum val;
} bf_row_col;

/* Encoded size of a row; cols need not be sorted. Returns 0 on bad input
 * (negative ids, more than 65535 columns, a decimal datum whose len is not
 * bf_decimal_bin_len of its prec and frac); duplicate ids are caught by
 * bf_codec_row_encode. */
size_t bf_codec_row_len(const bf_row_col *cols, int ncols);
/*
 * Encodes a row into dst (>= bf_codec_row_len bytes). cols need not be
 * sorted; tmp_order must hold ncols ints (scratch for the sort order).
 * Returns bytes written or a negative error.
 */
long bf_codec_row_encode(uint8_t *dst, const bf_row_col *cols, int ncols,
			 int *tmp_order);

/* A validated, zero-copy view of one row v2 value. */
typedef struct bf_row_view {
	const uint8_t *ids;     /* column ids: not-null then null */
	const uint8_t *offsets; /* end offsets of not-null columns */
	const uint8_t *data;    /* data area */
	uint32_t data_len;
	uint16_t n_notnull;
	uint16_t n_null;
	bool large;
} bf_row_view;

/* Parses and validates the header, ids and offsets. */
int bf_codec_row_view(bf_row_view *rv, const uint8_t *val, size_t len);

/* Result of looking a column up in a row. */
typedef enum bf_row_lookup {
	BF_ROW_ABSENT = 0, /* id not in the row (column added later) */
	BF_ROW_NULL = 1,
	BF_ROW_PRESENT = 2,
} bf_row_lookup;

/*
 * Finds a column's raw bytes (zero-copy: *ptr points into the row). Returns
 * a bf_row_lookup value (>= 0).
 */
int bf_codec_row_find(const bf_row_view *rv, int64_t col_id, const uint8_t **ptr,
		      size_t *len);

/* Decodes raw row bytes of a signed / unsigned int column (1,2,4,8 bytes).
 * A DATETIME column's bytes are an unsigned int: the packed value. */
int bf_codec_row_decode_int(const uint8_t *p, size_t n, int64_t *out);
int bf_codec_row_decode_uint(const uint8_t *p, size_t n, uint64_t *out);
/* A DOUBLE column's bytes: 8, in bf_codec_put_float's form (as in keys). */
int bf_codec_row_decode_float(const uint8_t *p, size_t n, double *out);
/*
 * A DECIMAL(prec, frac) column's bytes: prec, frac, then the binary form
 * (as in keys after the flag). BF_ECORRUPT when the bytes are another
 * type's or not a valid value (bf_decimal_check). out->v.dec.ptr points
 * into p.
 */
int bf_codec_row_decode_decimal(const uint8_t *p, size_t n, int prec, int frac, bf_datum *out);

#ifdef __cplusplus
}
#endif
#endif
