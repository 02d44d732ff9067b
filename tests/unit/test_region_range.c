/*
 * Unit tests of cutting key ranges by regions (ingest/region_range.c):
 * one piece per region, bounds from the range or the regions, unbounded
 * ends, regions outside the range ignored, gaps refused; and the split
 * points a target reports inside a range.
 */
#include "ingest/region_range.h"

#include <criterion/criterion.h>
#include <string.h>

/* Regions [""..b), [b..d), [d..f), [f..""). */
static bf_region regions[4];

static void set_bound(uint8_t *dst, size_t *len, const char *k)
{
	*len = strlen(k);
	memcpy(dst, k, *len);
}

static void setup(void)
{
	const char *bounds[] = { "", "b", "d", "f", "" };
	memset(regions, 0, sizeof(regions));
	for (int i = 0; i < 4; i++) {
		regions[i].id = (uint64_t)i + 1;
		set_bound(regions[i].start, &regions[i].start_len, bounds[i]);
		set_bound(regions[i].end, &regions[i].end_len, bounds[i + 1]);
	}
}

TestSuite(region_range, .init = setup);

static void expect_piece(const bf_range_piece *p, uint64_t region, const char *lo,
			 const char *hi)
{
	cr_assert_eq(p->region->id, region);
	cr_assert_eq(p->lolen, strlen(lo));
	cr_assert_eq(memcmp(p->lo, lo, p->lolen), 0, "piece of region %lu starts at %.*s",
		     (unsigned long)region, (int)p->lolen, p->lo);
	if (!hi) {
		cr_assert_null(p->hi);
		return;
	}
	cr_assert_not_null(p->hi);
	cr_assert_eq(p->hilen, strlen(hi));
	cr_assert_eq(memcmp(p->hi, hi, p->hilen), 0);
}

Test(region_range, a_range_across_three_regions)
{
	bf_range_piece pieces[4];
	size_t n;
	bf_err err;

	cr_assert_eq(bf_range_split("a", 1, "e", 1, regions, 4, pieces, &n, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(n, 3);
	expect_piece(&pieces[0], 1, "a", "b");
	expect_piece(&pieces[1], 2, "b", "d");
	expect_piece(&pieces[2], 3, "d", "e");
}

Test(region_range, inside_one_region_and_on_its_bounds)
{
	bf_range_piece pieces[4];
	size_t n;

	cr_assert_eq(bf_range_split("bb", 2, "c", 1, regions, 4, pieces, &n, NULL), 0);
	cr_assert_eq(n, 1);
	expect_piece(&pieces[0], 2, "bb", "c");
	/* Exactly a region: one piece, no empty one after it. */
	cr_assert_eq(bf_range_split("b", 1, "d", 1, regions, 4, pieces, &n, NULL), 0);
	cr_assert_eq(n, 1);
	expect_piece(&pieces[0], 2, "b", "d");
	/* Regions wholly before the range are skipped. */
	cr_assert_eq(bf_range_split("d", 1, "d\x01", 2, regions, 4, pieces, &n, NULL), 0);
	cr_assert_eq(n, 1);
	expect_piece(&pieces[0], 3, "d", "d\x01");
}

Test(region_range, unbounded_ends)
{
	bf_range_piece pieces[4];
	size_t n;

	/* To the end of the key space: the last piece is unbounded too. */
	cr_assert_eq(bf_range_split("e", 1, NULL, 0, regions, 4, pieces, &n, NULL), 0);
	cr_assert_eq(n, 2);
	expect_piece(&pieces[0], 3, "e", "f");
	expect_piece(&pieces[1], 4, "f", NULL);
	/* The whole key space. */
	cr_assert_eq(bf_range_split("", 0, NULL, 0, regions, 4, pieces, &n, NULL), 0);
	cr_assert_eq(n, 4);
	expect_piece(&pieces[0], 1, "", "b");
	expect_piece(&pieces[3], 4, "f", NULL);
	/* A bounded range in the last region ends at its own bound. */
	cr_assert_eq(bf_range_split("g", 1, "h", 1, regions, 4, pieces, &n, NULL), 0);
	cr_assert_eq(n, 1);
	expect_piece(&pieces[0], 4, "g", "h");
}

Test(region_range, gaps_mean_the_cache_needs_a_refresh)
{
	bf_range_piece pieces[4];
	bf_region some[2] = { regions[0], regions[2] }; /* [b, d) is missing */
	size_t n = 99;
	bf_err err;

	cr_assert_eq(bf_range_split("a", 1, "e", 1, some, 2, pieces, &n, &err), BF_ESTATE);
	cr_assert_eq(n, 0);
	cr_assert(strstr(err.msg, "no region for key b"), "%s", err.msg);
	/* Regions that end before the range does. */
	cr_assert_eq(bf_range_split("a", 1, "z", 1, regions, 3, pieces, &n, &err), BF_ESTATE);
	cr_assert(strstr(err.msg, "no region for key f"), "%s", err.msg);
	/* None at all. */
	cr_assert_eq(bf_range_split("a", 1, "z", 1, regions, 0, pieces, &n, &err), BF_ESTATE);
	/* A first region that starts after the range does. */
	cr_assert_eq(bf_range_split("a", 1, "c", 1, regions + 1, 1, pieces, &n, &err), BF_ESTATE);
}

Test(region_range, split_points_strictly_inside)
{
	bf_keys k;
	bf_err err;

	cr_assert_eq(bf_range_split_points(regions, 4, "a", 1, "f", 1, &k, &err), 0);
	cr_assert_eq(k.n, 2, "b and d; f is the upper bound itself");
	cr_assert_eq(k.lens[0], 1);
	cr_assert_eq(k.keys[0][0], 'b');
	cr_assert_eq(k.keys[1][0], 'd');
	bf_keys_free(&k);
	/* A lower bound on a boundary is not a cut. */
	cr_assert_eq(bf_range_split_points(regions, 4, "b", 1, NULL, 0, &k, &err), 0);
	cr_assert_eq(k.n, 2);
	cr_assert_eq(k.keys[0][0], 'd');
	cr_assert_eq(k.keys[1][0], 'f');
	bf_keys_free(&k);
	/* Inside one region: none. */
	cr_assert_eq(bf_range_split_points(regions, 4, "bb", 2, "c", 1, &k, &err), 0);
	cr_assert_eq(k.n, 0);
	bf_keys_free(&k);
}
