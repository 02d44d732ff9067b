/*
 * Exponential backoff with full jitter (DESIGN §5, §6 rule 4): the n-th
 * wait (n from 0) is uniform in [0, min(cap, base * 2^n)], cut to what is
 * left before an optional deadline. Full jitter spreads contenders that
 * failed together, so they do not retry in lockstep.
 *
 * A plain value, not a handle: it lives in its user's struct or on the
 * stack, and a seeded generator makes its waits reproducible in tests.
 * Depends on: util (clocks, splitmix64).
 */
#ifndef BFILL_BACKOFF_H
#define BFILL_BACKOFF_H

#include <stdint.h>

#include "bfill/error.h"

typedef struct bf_backoff {
	int64_t base_ms;     /* first ceiling, > 0 */
	int64_t cap_ms;      /* largest ceiling, >= base_ms */
	int64_t deadline_ms; /* monotonic (bf_now_ms); 0 = none */
	uint64_t rng;        /* splitmix64 state */
	int attempt;         /* waits handed out since the last reset */
} bf_backoff;

/* Sets b up; base_ms < 1 counts as 1 and cap_ms below base_ms as base_ms. */
void bf_backoff_init(bf_backoff *b, int64_t base_ms, int64_t cap_ms, uint64_t seed,
		     int64_t deadline_ms);
/* Starts the ceilings over from base_ms (after a success, say). */
void bf_backoff_reset(bf_backoff *b);
/* The ceiling the next wait is drawn under: min(cap, base * 2^attempt). */
int64_t bf_backoff_ceiling(const bf_backoff *b);
/*
 * The next wait in *wait_ms, cut to the time left before the deadline:
 * 0, or BF_ETIMEDOUT (and *wait_ms = 0) when the deadline has passed.
 */
int bf_backoff_next(bf_backoff *b, int64_t *wait_ms);

#endif
