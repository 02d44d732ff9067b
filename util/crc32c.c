/*
 * CRC-32C. Every byte of a run is checksummed as it is written and read,
 * so the hardware path matters: the crc32 instruction takes 3 cycles to
 * give its result but can start one every cycle, so long inputs are cut
 * into three stripes checksummed side by side and the three results
 * joined; the table does a byte at a time. Depends on libc only.
 */
#include "util/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */
#define STRIPE 1024u     /* bytes per stream of the three-way loop */

static uint32_t table[256];
static bool have_hw;
/* The crc register after STRIPE zero bytes, by byte of the register
 * before: the map is linear, so the register is shifted past a stripe
 * with four lookups. */
static uint32_t past_stripe[4][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
#if defined(__x86_64__)
	have_hw = __builtin_cpu_supports("sse4.2");
#endif
	/* The same map in software: one zero byte shifts c to
	 * table[c & 0xFF] ^ (c >> 8). */
	uint32_t bit[32];
	for (int b = 0; b < 32; b++) {
		uint32_t c = 1u << b;
		for (unsigned z = 0; z < STRIPE; z++)
			c = table[c & 0xFF] ^ (c >> 8);
		bit[b] = c;
	}
	for (int byte = 0; byte < 4; byte++)
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t c = 0;
			for (int b = 0; b < 8; b++)
				if (v & (1u << b))
					c ^= bit[8 * byte + b];
			past_stripe[byte][v] = c;
		}
}

static inline uint32_t skip_stripe(uint32_t c)
{
	return past_stripe[0][c & 0xFF] ^ past_stripe[1][(c >> 8) & 0xFF] ^
	       past_stripe[2][(c >> 16) & 0xFF] ^ past_stripe[3][c >> 24];
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n--)
		c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c32, const uint8_t *p, size_t n)
{
	uint64_t c = c32;
	/* The register is linear in what it held: crc(c, A B) is crc(c, A)
	 * shifted past B's length, xor crc(0, B). */
	while (n >= 3 * STRIPE) {
		uint64_t c1 = 0, c2 = 0, w0, w1, w2;
		for (size_t i = 0; i < STRIPE; i += 8) {
			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + STRIPE + i, 8);
			memcpy(&w2, p + 2 * STRIPE + i, 8);
			c = __builtin_ia32_crc32di(c, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c = skip_stripe(skip_stripe((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * STRIPE;
		n -= 3 * STRIPE;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		n -= 8;
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t bf_crc32c(uint32_t crc, const void *p, size_t n)
{
	uint32_t c = ~crc;
	pthread_once(&once, init);
#if defined(__x86_64__)
	if (have_hw)
		return ~crc_hw(c, p, n);
#endif
	return ~crc_sw(c, p, n);
}
