/*
 * libFuzzer target: the strict catalog decoders (bf_catalog_decode_table,
 * bf_catalog_decode_job). The first byte picks the kind; the rest is the
 * record text. A record the decoder accepts must be one the encoder
 * writes (the encoder checks its output with the same decoder), and
 * decoding what it wrote must give a record that encodes to the same
 * text. A refusal must come with a one printable line of message.
 */
#include "bfill/catalog.h"
#include "engine/catalog_json.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*decode_fn)(const char *json, size_t len, const char *record, void *out,
			 bf_err *err);
typedef int (*encode_fn)(const void *in, char **text, bf_err *err);

static void round_trip(decode_fn decode, encode_fn encode, void *a, void *b)
{
	char *first = NULL, *second = NULL;
	bf_err err;

	if (encode(a, &first, &err) != 0)
		abort();
	if (decode(first, strlen(first), "re-read", b, &err) != 0 ||
	    encode(b, &second, &err) != 0 || strcmp(first, second))
		abort();
	free(first);
	free(second);
}

static int decode_table(const char *json, size_t len, const char *record, void *out,
			bf_err *err)
{
	return bf_catalog_decode_table(json, len, record, out, err);
}

static int decode_job(const char *json, size_t len, const char *record, void *out, bf_err *err)
{
	return bf_catalog_decode_job(json, len, record, out, err);
}

static int encode_table(const void *in, char **text, bf_err *err)
{
	return bf_catalog_encode_table(in, text, err);
}

static int encode_job(const void *in, char **text, bf_err *err)
{
	return bf_catalog_encode_job(in, text, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool job = size && (data[0] & 1);
	decode_fn decode = job ? decode_job : decode_table;
	encode_fn encode = job ? encode_job : encode_table;
	size_t n = job ? sizeof(bf_job) : sizeof(bf_table);
	void *a = malloc(n), *b = malloc(n);
	bf_err err = { 0 };

	if (!a || !b)
		abort();
	if (size && decode((const char *)data + 1, size - 1, "fuzz", a, &err) == 0)
		round_trip(decode, encode, a, b);
	else if (size && err.code != BF_ECORRUPT && err.code != BF_ENOMEM)
		abort();
	else if (size)
		fuzz_one_line(err.msg, sizeof(err.msg));
	free(a);
	free(b);
	return 0;
}
