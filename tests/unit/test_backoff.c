/*
 * Unit tests of full-jitter exponential backoff (util/backoff.c): waits
 * stay under a ceiling that doubles from the base up to the cap, cover
 * that range, repeat from the same seed, start over on reset, and are cut
 * to the time left before a deadline.
 */
#include "util/backoff.h"
#include "util/util.h"

#include <criterion/criterion.h>

Test(backoff, ceilings_double_up_to_the_cap)
{
	bf_backoff b;
	int64_t wait;
	const int64_t want[] = { 100, 200, 400, 800, 1600, 2000, 2000, 2000 };

	bf_backoff_init(&b, 100, 2000, 42, 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_eq(bf_backoff_ceiling(&b), want[i], "attempt %zu", i);
		cr_assert_eq(bf_backoff_next(&b, &wait), 0);
		cr_assert(wait >= 0 && wait <= want[i], "attempt %zu: %lld", i, (long long)wait);
	}
	bf_backoff_reset(&b);
	cr_assert_eq(bf_backoff_ceiling(&b), 100);
}

Test(backoff, full_jitter_covers_the_whole_range)
{
	bf_backoff b;
	int64_t wait, lo = INT64_MAX, hi = 0;

	/* At the cap every draw is uniform in [0, 1000]. */
	bf_backoff_init(&b, 1000, 1000, 7, 0);
	for (int i = 0; i < 2000; i++) {
		cr_assert_eq(bf_backoff_next(&b, &wait), 0);
		cr_assert(wait >= 0 && wait <= 1000);
		lo = wait < lo ? wait : lo;
		hi = wait > hi ? wait : hi;
	}
	cr_assert_leq(lo, 20, "lowest wait %lld", (long long)lo);
	cr_assert_geq(hi, 980, "highest wait %lld", (long long)hi);
}

Test(backoff, same_seed_same_waits)
{
	bf_backoff a, b, c;
	int64_t wa, wb, wc;
	bool differs = false;

	bf_backoff_init(&a, 100, 2000, 1234, 0);
	bf_backoff_init(&b, 100, 2000, 1234, 0);
	bf_backoff_init(&c, 100, 2000, 4321, 0);
	for (int i = 0; i < 20; i++) {
		bf_backoff_next(&a, &wa);
		bf_backoff_next(&b, &wb);
		bf_backoff_next(&c, &wc);
		cr_assert_eq(wa, wb);
		differs |= wa != wc;
	}
	cr_assert(differs);
}

Test(backoff, the_deadline_cuts_waits_and_ends_them)
{
	bf_backoff b;
	int64_t wait;

	bf_backoff_init(&b, 10000, 10000, 9, bf_now_ms() + 150);
	for (int i = 0; i < 50; i++) {
		cr_assert_eq(bf_backoff_next(&b, &wait), 0);
		cr_assert_leq(wait, 150);
	}
	bf_sleep_ms(200);
	cr_assert_eq(bf_backoff_next(&b, &wait), BF_ETIMEDOUT);
	cr_assert_eq(wait, 0);
}

Test(backoff, odd_arguments_are_made_sane)
{
	bf_backoff b;
	int64_t wait;

	bf_backoff_init(&b, 0, -5, 1, 0);
	cr_assert_eq(bf_backoff_ceiling(&b), 1);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(bf_backoff_next(&b, &wait), 0);
		cr_assert(wait == 0 || wait == 1);
	}
	/* Many attempts never overflow the ceiling. */
	bf_backoff_init(&b, 3, INT64_MAX, 1, 0);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(bf_backoff_next(&b, &wait), 0);
	cr_assert_gt(bf_backoff_ceiling(&b), 0);
	cr_assert_geq(wait, 0);
}
