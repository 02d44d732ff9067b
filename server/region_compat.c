/*
 * Stand-ins for the region helpers of bfill/cluster.h until the cluster
 * module provides them; removed when it does.
 */
#include "bfill/cluster.h"
#include "bfill/codec.h"

#include <string.h>

static int key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

bool bf_region_contains(const bf_region *r, const void *k, size_t klen)
{
	if (r->start_len && key_cmp(k, klen, r->start, r->start_len) < 0)
		return false;
	return !r->end_len || key_cmp(k, klen, r->end, r->end_len) < 0;
}

const bf_region_peer *bf_region_leader(const bf_region *r)
{
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i].store_id == r->leader_store)
			return &r->peers[i];
	return NULL;
}

size_t bf_region_encode_key(uint8_t *out, const void *k, size_t klen)
{
	return bf_codec_put_bytes(out, k, klen);
}
