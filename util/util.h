/*
 * Small internal helpers used across layers: clocks, file-system chores,
 * size parsing. Not part of the public API.
 */
#ifndef BFILL_UTIL_H
#define BFILL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bfill/error.h"

/* Monotonic milliseconds / nanoseconds, and wall-clock milliseconds. */
int64_t bf_now_ms(void);
int64_t bf_now_ns(void);
int64_t bf_wall_ms(void);
void bf_sleep_ms(int64_t ms);

/* Online CPUs, at least 1. */
int bf_ncpu(void);

/* mkdir -p. */
int bf_mkdirs(const char *path, bf_err *err);
/* rm -rf that never follows symlinks; a missing path is success. */
int bf_rmtree(const char *path, bf_err *err);
/* Bytes available to unprivileged users on path's file system. */
int bf_fs_avail(const char *path, uint64_t *bytes, bf_err *err);
/* Total size of regular files under path (0 when missing). */
uint64_t bf_du(const char *path);
/* Directory part of a path into out ("." for a bare name). */
void bf_dirname(const char *path, char *out, size_t n);

/* Parses "512M", "1G", "64k", "1000" (bytes; K/M/G/T are powers of 1024). */
int bf_parse_size(const char *s, uint64_t *out);
/* Parses a non-negative decimal integer that fits in int64. */
int bf_parse_u64(const char *s, uint64_t *out);
/* Parses a decimal integer, optionally negative, that fits in int64
 * (INT64_MIN excepted). */
int bf_parse_i64(const char *s, int64_t *out);
/*
 * s[0..n) made fit for a one-line message, into buf (cap > 4 bytes):
 * bytes outside printable ASCII become \xNN and a backslash \\; what
 * does not fit ends in "...". Returns buf.
 */
char *bf_printable(const void *s, size_t n, char *buf, size_t cap);
/* b[0..n) as lower-case hex into out (2n + 1 bytes, NUL-terminated). */
void bf_hex_encode(const void *b, size_t n, char *out);
/* Hex text s (even length, either case) into out (cap bytes): its length,
 * or -1 when s is not hex or does not fit. */
long bf_hex_decode(const char *s, uint8_t *out, size_t cap);
/* "1.5 GiB"-style rendering into buf; returns buf. */
char *bf_fmt_bytes(uint64_t v, char *buf, size_t n);

/* -1, 0 or 1 as byte strings a and b compare: bytewise, a prefix first
 * (RocksDB's and TiKV's key order). */
static inline int bf_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	return (alen > blen) - (alen < blen);
}

/* A malloc'd copy of n bytes (at least one byte allocated, so an empty
 * key is not NULL); NULL when out of memory. */
void *bf_memdup(const void *p, size_t n);

#define BF_UUID_LEN 36
/* 16 random bytes shaped as a version 4 UUID (TiKV's SST uuids). */
int bf_uuid_bytes(uint8_t b[16], bf_err *err);
/* A random (version 4) UUID in lower-case hex with dashes, NUL-terminated
 * (stores and clusters are named by one). */
int bf_uuid_new(char out[BF_UUID_LEN + 1], bf_err *err);
/* True when v[0..n) is a UUID as bf_uuid_new writes one. */
bool bf_uuid_well_formed(const char *v, size_t n);

/* 64-bit mixing PRNG (splitmix64): fast, seedable, stateless per call. */
static inline uint64_t bf_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

#endif
