/*
 * CRC-32C against RFC 3720's check values and against a bit-at-a-time
 * reference written here, over lengths on both sides of the three-stripe
 * loop's thresholds, at every alignment, and extended piece by piece.
 */
#include "util/crc32c.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static uint32_t bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
}

static uint8_t *random_bytes(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);
	cr_assert_not_null(p);
	srand(seed);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
	return p;
}

Test(crc32c, rfc3720_check_values)
{
	uint8_t buf[32];
	cr_expect_eq(bf_crc32c(0, "123456789", 9), 0xE3069283u);
	memset(buf, 0, sizeof(buf));
	cr_expect_eq(bf_crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	cr_expect_eq(bf_crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	cr_expect_eq(bf_crc32c(0, buf, 32), 0x46DD794Eu);
	cr_expect_eq(bf_crc32c(0, buf, 0), 0u);
}

Test(crc32c, long_inputs_match_the_reference)
{
	const size_t max = 40000;
	uint8_t *p = random_bytes(max + 8, 7);
	const size_t lens[] = { 1, 7, 8, 1023, 3071, 3072, 3073, 3079, 6143, 6144, 6151,
				16384, 16400, 16415, 32768 + 5, max };
	for (size_t a = 0; a < 8; a++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			cr_expect_eq(bf_crc32c(0, p + a, lens[i]), bitwise(p + a, lens[i]),
				     "length %zu at offset %zu", lens[i], a);
	for (unsigned r = 0; r < 200; r++) {
		size_t n = (size_t)rand() % max;
		cr_expect_eq(bf_crc32c(0, p, n), bitwise(p, n), "length %zu", n);
	}
	free(p);
}

Test(crc32c, extending_piece_by_piece_is_the_same)
{
	const size_t n = 20000;
	uint8_t *p = random_bytes(n, 11);
	uint32_t whole = bitwise(p, n);
	for (unsigned r = 0; r < 100; r++) {
		size_t cut = (size_t)rand() % n;
		uint32_t c = bf_crc32c(bf_crc32c(0, p, cut), p + cut, n - cut);
		cr_expect_eq(c, whole, "cut at %zu", cut);
	}
	free(p);
}
