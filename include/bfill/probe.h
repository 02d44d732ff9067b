/*
 * A probe: one question of a batch asked of an import target before its
 * entries are ingested (`exists` in include/bfill/target.h) — is this key
 * already there, and with which value? For unique indexes the same value
 * means the same row (harmless: re-importing is idempotent), another value
 * means a duplicate entry.
 */
#ifndef BFILL_PROBE_H
#define BFILL_PROBE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bf_probe_result {
	BF_PROBE_ABSENT = 0,
	BF_PROBE_SAME,      /* present with the expected value */
	BF_PROBE_DIFFERENT, /* present with another value */
} bf_probe_result;

typedef struct bf_probe {
	const uint8_t *key; /* borrowed */
	size_t klen;
	const uint8_t *expect; /* borrowed */
	size_t expect_len;
	bf_probe_result result; /* out */
} bf_probe;

#ifdef __cplusplus
}
#endif
#endif
