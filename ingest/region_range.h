/*
 * Internal: key ranges and regions, pure functions over a list of regions
 * (as bf_cluster_regions gives them, in key order) so that they can be
 * tested without a cluster: cutting a range into one piece per region, and
 * the region boundaries inside a range.
 * Depends on: bfill/cluster.h (bf_region), bfill/target.h (bf_keys), util.
 */
#ifndef BFILL_INGEST_REGION_RANGE_H
#define BFILL_INGEST_REGION_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "bfill/cluster.h"
#include "bfill/target.h"

/* A piece of a key range inside one region; keys are borrowed from the
 * range or the region they come from. */
typedef struct bf_range_piece {
	const bf_region *region; /* borrowed */
	const uint8_t *lo, *hi;  /* raw [lo, hi); hi NULL: unbounded */
	size_t lolen, hilen;
} bf_range_piece;

/*
 * Cuts raw [lo, hi) (hi NULL: unbounded) by regions[0..n) into
 * pieces[0..*npieces), one per region it overlaps (pieces holds n).
 * BF_ESTATE when the regions leave part of the range uncovered (a gap, or
 * they end too soon): the cache needs a refresh.
 */
int bf_range_split(const void *lo, size_t lolen, const void *hi, size_t hilen,
		   const bf_region *regions, size_t n, bf_range_piece *pieces, size_t *npieces,
		   bf_err *err);

/*
 * The start keys of regions[0..n) that lie strictly inside (lo, hi) (hi
 * NULL: unbounded), in order, into *out (the caller's: bf_keys_free).
 */
int bf_range_split_points(const bf_region *regions, size_t n, const void *lo, size_t lolen,
			  const void *hi, size_t hilen, bf_keys *out, bf_err *err);

#endif
