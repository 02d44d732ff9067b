/*
 * Memcomparable primitives, datums in keys, record and index keys, and
 * index values, byte-compatible with TiDB's codec and tablecodec packages.
 * Depends on libc only.
 */
#include "bfill/codec.h"
#include "bfill/error.h"

#include <string.h>

#define SIGN_MASK 0x8000000000000000ULL
#define GROUP 8
#define MARKER 0xFF

static inline void put_be64(uint8_t *dst, uint64_t v)
{
	v = __builtin_bswap64(v);
	memcpy(dst, &v, 8);
}

static inline uint64_t get_be64(const uint8_t *src)
{
	uint64_t v;
	memcpy(&v, src, 8);
	return __builtin_bswap64(v);
}

void bf_codec_put_int(uint8_t dst[8], int64_t v) { put_be64(dst, (uint64_t)v ^ SIGN_MASK); }
int64_t bf_codec_get_int(const uint8_t src[8]) { return (int64_t)(get_be64(src) ^ SIGN_MASK); }
void bf_codec_put_uint(uint8_t dst[8], uint64_t v) { put_be64(dst, v); }
uint64_t bf_codec_get_uint(const uint8_t src[8]) { return get_be64(src); }

/* The IEEE bits of a positive double order like its value and those of a
 * negative one backwards: setting the sign bit of positives and inverting
 * negatives whole puts every positive above every negative, each side in
 * value order. */
void bf_codec_put_float(uint8_t dst[8], double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	put_be64(dst, v >= 0 ? u | SIGN_MASK : ~u);
}

double bf_codec_get_float(const uint8_t src[8])
{
	uint64_t u = get_be64(src);
	double v;
	u = (u & SIGN_MASK) ? u & ~SIGN_MASK : ~u;
	memcpy(&v, &u, 8);
	return v;
}

int bf_codec_decode_float(const uint8_t src[8], double *out)
{
	uint8_t back[8];
	double v = bf_codec_get_float(src);
	bf_codec_put_float(back, v);
	if (v != v || memcmp(back, src, 8) != 0)
		return BF_ECORRUPT;
	*out = v;
	return 0;
}

size_t bf_codec_put_bytes(uint8_t *dst, const void *src, size_t n)
{
	const uint8_t *s = src;
	size_t out = 0;

	/* Full groups first; the loop runs while idx <= n so a length that is a
	 * multiple of 8 (including 0) still ends with an all-padding group. */
	for (size_t idx = 0; idx <= n; idx += GROUP) {
		size_t remain = n - idx;
		uint8_t pad = 0;
		if (remain >= GROUP) {
			memcpy(dst + out, s + idx, GROUP);
		} else {
			pad = (uint8_t)(GROUP - remain);
			memcpy(dst + out, s + idx, remain);
			memset(dst + out + remain, 0, pad);
		}
		dst[out + GROUP] = (uint8_t)(MARKER - pad);
		out += GROUP + 1;
	}
	return out;
}

int bf_codec_get_bytes(const uint8_t *src, size_t srclen, uint8_t *out,
		       size_t *outlen, size_t *consumed)
{
	size_t pos = 0, n = 0;

	for (;;) {
		if (srclen - pos < GROUP + 1)
			return BF_ECORRUPT;
		uint8_t marker = src[pos + GROUP];
		uint8_t pad = (uint8_t)(MARKER - marker);
		if (pad > GROUP)
			return BF_ECORRUPT;
		size_t real = GROUP - pad;
		/* Padding bytes must be zero, or two encodings would decode alike. */
		for (size_t i = real; i < GROUP; i++)
			if (src[pos + i] != 0)
				return BF_ECORRUPT;
		if (out)
			memcpy(out + n, src + pos, real);
		n += real;
		pos += GROUP + 1;
		if (pad != 0)
			break;
	}
	*outlen = n;
	*consumed = pos;
	return 0;
}

size_t bf_codec_datum_key_len(const bf_datum *d)
{
	switch (d->kind) {
	case BF_DATUM_NULL: return 1;
	case BF_DATUM_INT:
	case BF_DATUM_UINT:
	case BF_DATUM_FLOAT: return 9;
	case BF_DATUM_BYTES: return 1 + bf_codec_bytes_len(d->v.b.len);
	case BF_DATUM_DECIMAL: return 3 + d->v.dec.len;
	}
	return 0;
}

size_t bf_codec_put_datum_key(uint8_t *dst, const bf_datum *d)
{
	switch (d->kind) {
	case BF_DATUM_NULL:
		dst[0] = BF_FLAG_NIL;
		return 1;
	case BF_DATUM_INT:
		dst[0] = BF_FLAG_INT;
		bf_codec_put_int(dst + 1, d->v.i);
		return 9;
	case BF_DATUM_UINT:
		dst[0] = BF_FLAG_UINT;
		bf_codec_put_uint(dst + 1, d->v.u);
		return 9;
	case BF_DATUM_BYTES:
		dst[0] = BF_FLAG_BYTES;
		return 1 + bf_codec_put_bytes(dst + 1, d->v.b.ptr, d->v.b.len);
	case BF_DATUM_FLOAT:
		dst[0] = BF_FLAG_FLOAT;
		bf_codec_put_float(dst + 1, d->v.f);
		return 9;
	case BF_DATUM_DECIMAL:
		/* TiDB's EncodeDecimal: precision, fraction, then the binary form. */
		dst[0] = BF_FLAG_DECIMAL;
		dst[1] = d->v.dec.prec;
		dst[2] = d->v.dec.frac;
		memcpy(dst + 3, d->v.dec.ptr, d->v.dec.len);
		return 3 + d->v.dec.len;
	}
	return 0;
}

int bf_codec_get_datum_key(const uint8_t *src, size_t srclen, bf_datum *d,
			   uint8_t *scratch, size_t *consumed)
{
	size_t n, used;
	double f;
	int rc;

	if (srclen < 1)
		return BF_ECORRUPT;
	switch (src[0]) {
	case BF_FLAG_NIL:
		*d = bf_datum_null();
		*consumed = 1;
		return 0;
	case BF_FLAG_INT:
		if (srclen < 9)
			return BF_ECORRUPT;
		*d = bf_datum_int(bf_codec_get_int(src + 1));
		*consumed = 9;
		return 0;
	case BF_FLAG_UINT:
		if (srclen < 9)
			return BF_ECORRUPT;
		*d = bf_datum_uint(bf_codec_get_uint(src + 1));
		*consumed = 9;
		return 0;
	case BF_FLAG_BYTES:
		rc = bf_codec_get_bytes(src + 1, srclen - 1, scratch, &n, &used);
		if (rc)
			return rc;
		*d = bf_datum_bytes(scratch, n);
		*consumed = 1 + used;
		return 0;
	case BF_FLAG_FLOAT:
		if (srclen < 9)
			return BF_ECORRUPT;
		rc = bf_codec_decode_float(src + 1, &f);
		if (rc)
			return rc;
		*d = bf_datum_float(f);
		*consumed = 9;
		return 0;
	case BF_FLAG_DECIMAL:
		if (srclen < 3)
			return BF_ECORRUPT;
		n = bf_decimal_bin_len(src[1], src[2]);
		if (n == 0 || srclen - 3 < n)
			return BF_ECORRUPT;
		rc = bf_decimal_check(src + 3, n, src[1], src[2]);
		if (rc)
			return rc;
		/* No markers to strip: the datum points into the key itself. */
		*d = bf_datum_decimal(src + 3, n, src[1], src[2]);
		*consumed = 3 + n;
		return 0;
	default:
		return BF_ECORRUPT;
	}
}

void bf_codec_table_prefix(uint8_t out[BF_TABLE_PREFIX_LEN], int64_t table_id)
{
	out[0] = 't';
	bf_codec_put_int(out + 1, table_id);
}

void bf_codec_record_prefix(uint8_t out[BF_RECORD_PREFIX_LEN], int64_t table_id)
{
	bf_codec_table_prefix(out, table_id);
	out[9] = '_';
	out[10] = 'r';
}

void bf_codec_record_key(uint8_t out[BF_RECORD_KEY_LEN], int64_t table_id, int64_t handle)
{
	bf_codec_record_prefix(out, table_id);
	bf_codec_put_int(out + BF_RECORD_PREFIX_LEN, handle);
}

int bf_codec_decode_record_key(const uint8_t *key, size_t len, int64_t *table_id,
			       int64_t *handle)
{
	if (len != BF_RECORD_KEY_LEN || key[0] != 't' || key[9] != '_' || key[10] != 'r')
		return BF_ECORRUPT;
	if (table_id)
		*table_id = bf_codec_get_int(key + 1);
	if (handle)
		*handle = bf_codec_get_int(key + BF_RECORD_PREFIX_LEN);
	return 0;
}

void bf_codec_index_prefix(uint8_t out[BF_INDEX_PREFIX_LEN], int64_t table_id,
			   int64_t index_id)
{
	bf_codec_table_prefix(out, table_id);
	out[9] = '_';
	out[10] = 'i';
	bf_codec_put_int(out + 11, index_id);
}

size_t bf_codec_index_key_len(const bf_datum *cols, int ncols, bool with_handle)
{
	size_t n = BF_INDEX_PREFIX_LEN;
	for (int i = 0; i < ncols; i++)
		n += bf_codec_datum_key_len(&cols[i]);
	return n + (with_handle ? 9 : 0);
}

size_t bf_codec_index_key(uint8_t *dst, int64_t table_id, int64_t index_id,
			  const bf_datum *cols, int ncols, bool with_handle,
			  int64_t handle)
{
	size_t n = BF_INDEX_PREFIX_LEN;

	bf_codec_index_prefix(dst, table_id, index_id);
	for (int i = 0; i < ncols; i++)
		n += bf_codec_put_datum_key(dst + n, &cols[i]);
	if (with_handle) {
		dst[n] = BF_FLAG_INT;
		bf_codec_put_int(dst + n + 1, handle);
		n += 9;
	}
	return n;
}

int bf_codec_decode_index_key(const uint8_t *key, size_t len, int64_t *table_id,
			      int64_t *index_id, bf_datum *cols, int ncols,
			      uint8_t *scratch, bool *has_handle, int64_t *handle)
{
	size_t pos = BF_INDEX_PREFIX_LEN, used;
	size_t scratch_used = 0;
	int rc;

	if (len < BF_INDEX_PREFIX_LEN || key[0] != 't' || key[9] != '_' || key[10] != 'i')
		return BF_ECORRUPT;
	if (table_id)
		*table_id = bf_codec_get_int(key + 1);
	if (index_id)
		*index_id = bf_codec_get_int(key + 11);
	for (int i = 0; i < ncols; i++) {
		rc = bf_codec_get_datum_key(key + pos, len - pos, &cols[i],
					    scratch + scratch_used, &used);
		if (rc)
			return rc;
		if (cols[i].kind == BF_DATUM_BYTES)
			scratch_used += cols[i].v.b.len;
		pos += used;
	}
	*has_handle = false;
	if (pos == len)
		return 0;
	if (len - pos != 9 || key[pos] != BF_FLAG_INT)
		return BF_ECORRUPT;
	*has_handle = true;
	if (handle)
		*handle = bf_codec_get_int(key + pos + 1);
	return 0;
}

bool bf_codec_index_needs_handle(bool unique, const bf_datum *cols, int ncols)
{
	if (!unique)
		return true;
	for (int i = 0; i < ncols; i++)
		if (cols[i].kind == BF_DATUM_NULL)
			return true;
	return false;
}

size_t bf_codec_prefix_next(uint8_t *key, size_t len)
{
	while (len > 0) {
		if (key[len - 1] != 0xFF) {
			key[len - 1]++;
			return len;
		}
		len--;
	}
	return 0;
}

size_t bf_codec_index_value(uint8_t dst[BF_INDEX_VALUE_MAX], bool handle_in_key,
			    int64_t handle)
{
	if (handle_in_key) {
		dst[0] = '0';
		return 1;
	}
	/* Plain two's complement, not sign-flipped: TiDB's EncodeHandle. */
	put_be64(dst, (uint64_t)handle);
	return 8;
}

int bf_codec_decode_index_value(const uint8_t *val, size_t len, bool *has_handle,
				int64_t *handle)
{
	/* An optional trailing "untouched" flag byte may follow either form. */
	if (len >= 1 && len <= 2 && val[0] == '0') {
		*has_handle = false;
		return 0;
	}
	if (len == 8 || len == 9) {
		*has_handle = true;
		if (handle)
			*handle = (int64_t)get_be64(val);
		return 0;
	}
	return BF_ECORRUPT;
}
