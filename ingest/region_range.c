/*
 * Key ranges and regions (ingest/region_range.h).
 * Depends on: bfill/cluster.h, bfill/target.h, util.
 */
#include "ingest/region_range.h"
#include "util/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int bf_range_split(const void *lo, size_t lolen, const void *hi, size_t hilen,
		   const bf_region *regions, size_t n, bf_range_piece *pieces, size_t *npieces,
		   bf_err *err)
{
	const uint8_t *cur = lo;
	size_t curlen = lolen;
	char buf[64];

	*npieces = 0;
	for (size_t i = 0; i < n; i++) {
		const bf_region *r = &regions[i];
		bf_range_piece *p = &pieces[*npieces];
		bool last;

		/* A region wholly before what is left: not ours. */
		if (r->end_len && bf_key_cmp(r->end, r->end_len, cur, curlen) <= 0)
			continue;
		if (r->start_len && bf_key_cmp(r->start, r->start_len, cur, curlen) > 0)
			break; /* a gap before this region */
		p->region = r;
		p->lo = cur;
		p->lolen = curlen;
		last = !r->end_len || (hi && bf_key_cmp(hi, hilen, r->end, r->end_len) <= 0);
		p->hi = last ? hi : r->end;
		p->hilen = last ? hilen : r->end_len;
		(*npieces)++;
		if (last)
			return 0;
		cur = r->end;
		curlen = r->end_len;
	}
	*npieces = 0;
	return bf_errf(err, BF_ESTATE, "the region cache has no region for key %s",
		       bf_printable(cur, curlen, buf, sizeof(buf)));
}

int bf_range_split_points(const bf_region *regions, size_t n, const void *lo, size_t lolen,
			  const void *hi, size_t hilen, bf_keys *out, bf_err *err)
{
	memset(out, 0, sizeof(*out));
	out->keys = calloc(n ? n : 1, sizeof(*out->keys));
	out->lens = calloc(n ? n : 1, sizeof(*out->lens));
	if (!out->keys || !out->lens)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const bf_region *r = &regions[i];
		if (!r->start_len || bf_key_cmp(r->start, r->start_len, lo, lolen) <= 0 ||
		    (hi && bf_key_cmp(r->start, r->start_len, hi, hilen) >= 0))
			continue;
		if (!(out->keys[out->n] = malloc(r->start_len)))
			goto nomem;
		memcpy(out->keys[out->n], r->start, r->start_len);
		out->lens[out->n++] = r->start_len;
	}
	return 0;
nomem:
	bf_keys_free(out);
	return bf_errf(err, BF_ENOMEM, "split points: out of memory");
}
