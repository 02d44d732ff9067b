/*
 * libFuzzer target: the key decoders of codec/keys.c. The first byte
 * picks one: record keys, index keys (the second byte gives the number of
 * columns), group-encoded bytes, one key datum, memcomparable ints, index
 * values. Whatever a decoder accepts must encode back to exactly the bytes
 * it read, since TiDB's key encodings have one form per value; anything
 * else, or a read past the input, is a crash.
 */
#include "bfill/catalog.h"
#include "bfill/codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void same(const uint8_t *a, const uint8_t *b, size_t n)
{
	if (memcmp(a, b, n))
		abort();
}

static void record_key(const uint8_t *in, size_t n)
{
	uint8_t back[BF_RECORD_KEY_LEN];
	int64_t tid, handle;

	if (bf_codec_decode_record_key(in, n, &tid, &handle))
		return;
	bf_codec_record_key(back, tid, handle);
	same(back, in, BF_RECORD_KEY_LEN);
}

static void index_key(const uint8_t *in, size_t n, uint8_t *scratch, uint8_t *back)
{
	bf_datum cols[BF_MAX_INDEX_COLUMNS];
	int ncols = n ? in[0] % (BF_MAX_INDEX_COLUMNS + 1) : 0;
	int64_t tid, iid, handle = 0;
	bool has_handle;

	if (n == 0 || bf_codec_decode_index_key(in + 1, n - 1, &tid, &iid, cols, ncols, scratch,
						&has_handle, &handle))
		return;
	size_t len = bf_codec_index_key_len(cols, ncols, has_handle);
	if (len != n - 1 ||
	    bf_codec_index_key(back, tid, iid, cols, ncols, has_handle, handle) != len)
		abort();
	same(back, in + 1, len);
}

static void group_bytes(const uint8_t *in, size_t n, uint8_t *scratch, uint8_t *back)
{
	size_t outlen, used;

	if (bf_codec_get_bytes(in, n, scratch, &outlen, &used))
		return;
	if (used > n || outlen > used || bf_codec_bytes_len(outlen) != used ||
	    bf_codec_put_bytes(back, scratch, outlen) != used)
		abort();
	same(back, in, used);
}

static void datum_key(const uint8_t *in, size_t n, uint8_t *scratch, uint8_t *back)
{
	size_t used;
	bf_datum d;

	if (bf_codec_get_datum_key(in, n, &d, scratch, &used))
		return;
	if (used > n || bf_codec_datum_key_len(&d) != used || bf_codec_put_datum_key(back, &d) != used)
		abort();
	same(back, in, used);
}

/* Memcomparable: bytes compare as the values do. */
static void ints(const uint8_t *in, size_t n)
{
	uint8_t back[8];

	if (n < 16)
		return;
	int64_t a = bf_codec_get_int(in), b = bf_codec_get_int(in + 8);
	uint64_t ua = bf_codec_get_uint(in), ub = bf_codec_get_uint(in + 8);
	int order = memcmp(in, in + 8, 8);
	if ((order < 0) != (a < b) || (order < 0) != (ua < ub))
		abort();
	bf_codec_put_int(back, a);
	same(back, in, 8);
	bf_codec_put_uint(back, ub);
	same(back, in + 8, 8);
}

static void index_value(const uint8_t *in, size_t n, uint8_t *back)
{
	uint8_t val[BF_INDEX_VALUE_MAX];
	bool has_handle;
	int64_t handle = 0;

	if (bf_codec_decode_index_value(in, n, &has_handle, &handle))
		return;
	size_t len = bf_codec_index_value(val, !has_handle, handle);
	/* A trailing flag byte may follow either form. */
	if (len > n || (n != len && n != len + 1))
		abort();
	same(val, in, len);
	/* The key after every key with this prefix. */
	memcpy(back, in, n);
	size_t next = bf_codec_prefix_next(back, n);
	if (next > n || (next && memcmp(back, in, next) <= 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Decoders copy bytes datums into scratch, as long as the input. */
	uint8_t *scratch, *back;

	if (size == 0)
		return 0;
	scratch = malloc(size);
	back = malloc(size + 64);
	if (!scratch || !back)
		abort();
	const uint8_t *in = data + 1;
	size_t n = size - 1;
	switch (data[0] % 6) {
	case 0: record_key(in, n); break;
	case 1: index_key(in, n, scratch, back); break;
	case 2: group_bytes(in, n, scratch, back); break;
	case 3: datum_key(in, n, scratch, back); break;
	case 4: ints(in, n); break;
	default: index_value(in, n, back); break;
	}
	free(scratch);
	free(back);
	return 0;
}
