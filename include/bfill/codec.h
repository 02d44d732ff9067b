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
} bf_datum_kind;

typedef struct bf_datum {
	bf_datum_kind kind;
	union {
		int64_t i;
		uint64_t u;
		struct {
			const uint8_t *ptr; /* not owned */
			size_t len;
		} b;
	} v;
} bf_datum;

static inline bf_datum bf_datum_null(void) { bf_datum d = { .kind = BF_DATUM_NULL }; return d; }
static inline bf_datum bf_datum_int(int64_t i) { bf_datum d = { .kind = BF_DATUM_INT, .v.i = i }; return d; }
static inline bf_datum bf_datum_uint(uint64_t u) { bf_datum d = { .kind = BF_DATUM_UINT, .v.u = u }; return d; }
static inline bf_datum bf_datum_bytes(const void *p, size_t n)
{
	bf_datum d = { .kind = BF_DATUM_BYTES };
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
 * then points into scratch.
 */
int bf_codec_get_datum_key(const uint8_t *src, size_t srclen, bf_datum *d,
			   uint8_t *scratch, size_t *consumed);

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
 * scratch (>= len bytes). *has_handle tells whether a handle followed.
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
 * (negative ids, more than 65535 columns); duplicate ids are caught by
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

/* Decodes raw row bytes of a signed / unsigned int column (1,2,4,8 bytes). */
int bf_codec_row_decode_int(const uint8_t *p, size_t n, int64_t *out);
int bf_codec_row_decode_uint(const uint8_t *p, size_t n, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
