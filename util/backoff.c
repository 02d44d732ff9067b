/*
 * Full-jitter exponential backoff (see backoff.h).
 */
#include "util/backoff.h"
#include "util/util.h"

void bf_backoff_init(bf_backoff *b, int64_t base_ms, int64_t cap_ms, uint64_t seed,
		     int64_t deadline_ms)
{
	b->base_ms = base_ms < 1 ? 1 : base_ms;
	b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
	b->deadline_ms = deadline_ms;
	b->rng = seed;
	b->attempt = 0;
}

void bf_backoff_reset(bf_backoff *b)
{
	b->attempt = 0;
}

int64_t bf_backoff_ceiling(const bf_backoff *b)
{
	int64_t ceiling = b->base_ms;

	/* Doubling stops at the cap, so it never overflows. */
	for (int i = 0; i < b->attempt && ceiling < b->cap_ms; i++)
		ceiling = ceiling > b->cap_ms / 2 ? b->cap_ms : ceiling * 2;
	return ceiling;
}

int bf_backoff_next(bf_backoff *b, int64_t *wait_ms)
{
	int64_t ceiling = bf_backoff_ceiling(b);
	int64_t wait = (int64_t)(bf_splitmix64(&b->rng) % ((uint64_t)ceiling + 1));

	*wait_ms = 0;
	if (b->deadline_ms > 0) {
		int64_t left = b->deadline_ms - bf_now_ms();
		if (left <= 0)
			return BF_ETIMEDOUT;
		if (wait > left)
			wait = left;
	}
	if (b->attempt < 62)
		b->attempt++;
	*wait_ms = wait;
	return 0;
}
