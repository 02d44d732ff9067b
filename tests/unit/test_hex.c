/*
 * Unit tests of the hex helpers (util/util.c) that subtask records,
 * checkpoints and `bfill cluster` keys are written and read with.
 */
#include "util/util.h"

#include <criterion/criterion.h>
#include <string.h>

Test(hex, round_trips_every_byte)
{
	uint8_t b[256], back[256];
	char text[2 * sizeof(b) + 1];

	for (int i = 0; i < 256; i++)
		b[i] = (uint8_t)i;
	bf_hex_encode(b, sizeof(b), text);
	cr_assert_eq(strlen(text), 2 * sizeof(b));
	cr_assert_eq(strncmp(text, "000102", 6), 0);
	cr_assert_eq(strcmp(text + 2 * 250, "fafbfcfdfeff"), 0);
	cr_assert_eq(bf_hex_decode(text, back, sizeof(back)), 256);
	cr_assert_eq(memcmp(b, back, sizeof(b)), 0);
	cr_assert_eq(bf_hex_decode("ABcd", back, 2), 2, "either case");
	cr_assert(back[0] == 0xab && back[1] == 0xcd);
	cr_assert_eq(bf_hex_decode("", back, 1), 0, "empty is the empty key");
}

Test(hex, refuses_what_is_not_hex_or_does_not_fit)
{
	uint8_t out[4];

	cr_assert_eq(bf_hex_decode("abc", out, sizeof(out)), -1, "odd length");
	cr_assert_eq(bf_hex_decode("zz", out, sizeof(out)), -1);
	cr_assert_eq(bf_hex_decode("0g", out, sizeof(out)), -1);
	cr_assert_eq(bf_hex_decode("0011223344", out, sizeof(out)), -1, "5 bytes into 4");
	cr_assert_eq(bf_hex_decode("00112233", out, sizeof(out)), 4);
}
