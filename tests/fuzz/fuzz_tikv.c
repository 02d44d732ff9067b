/*
 * libFuzzer target: the store-node reply decoders of the cluster target
 * (ingest/tikv_wire.c, bf_tikv_unwire_*). The first byte picks the reply
 * type; the rest is the reply as it would come off the wire from a node
 * (or a real TiKV). Each decoder must refuse bad bytes with a one-line
 * BF_EPROTO, and what it accepts must be usable as is: 16-byte uuids in
 * Write metas, current regions of an EpochNotMatch with keys that fit and
 * a start below the end, pairs whose bytes can be read. Results are freed,
 * so LeakSanitizer checks the error paths too.
 */
#include "ingest/tikv_wire.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NKINDS 5

static void check_region_error(const bf_tikv_error *re)
{
	fuzz_one_line(re->message, sizeof(re->message));
	if (re->nfull < 0 || re->nfull > BF_TIKV_MAX_FULL_STORES)
		abort();
	if (re->ncurrent && (!re->current || re->kind != BF_TIKV_EPOCH_NOT_MATCH))
		abort();
	for (size_t i = 0; i < re->ncurrent; i++) {
		const bf_region *r = &re->current[i];
		if (r->id == 0 || r->npeers < 1 || r->npeers > BF_CLUSTER_MAX_REPLICAS ||
		    r->start_len > BF_CLUSTER_KEY_MAX || r->end_len > BF_CLUSTER_KEY_MAX)
			abort();
	}
}

static void check_pairs(const bf_tikv_pairs *p)
{
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < bf_tikv_pairs_count(p); i++) {
		size_t kl, vl;
		const uint8_t *k = bf_tikv_pairs_key(p, i, &kl), *v = bf_tikv_pairs_value(p, i, &vl);
		if (kl)
			sink ^= k[kl - 1];
		if (vl)
			sink ^= v[vl - 1];
	}
	(void)sink;
}

static int unwire(int kind, const uint8_t *in, size_t n)
{
	bf_tikv_metas *metas = NULL;
	bf_tikv_pairs *pairs = NULL;
	bf_tikv_error re;
	bf_err err = { 0 };
	int rc;

	memset(&re, 0, sizeof(re));
	switch (kind) {
	case 0:
		rc = bf_tikv_unwire_write(in, n, &metas, &re, &err);
		if (rc == 0 && !metas == (re.kind == BF_TIKV_OK))
			abort(); /* metas exactly when there is no error */
		break;
	case 1: rc = bf_tikv_unwire_ingest(in, n, &re, &err); break;
	case 2: rc = bf_tikv_unwire_scan(in, n, &pairs, &re, &err); break;
	case 3: rc = bf_tikv_unwire_batch_get(in, n, &pairs, &re, &err); break;
	default: rc = bf_tikv_unwire_delete_range(in, n, &re, &err); break;
	}
	if (rc == 0) {
		check_region_error(&re);
		check_pairs(pairs);
		if (pairs && re.kind != BF_TIKV_OK)
			abort();
	} else {
		if (rc != BF_EPROTO && rc != BF_ENOMEM)
			abort();
		if (!err.msg[0])
			abort();
		fuzz_one_line(err.msg, sizeof(err.msg));
		if (metas || pairs || re.current)
			abort(); /* a refused reply leaves nothing behind */
	}
	bf_tikv_metas_free(metas);
	bf_tikv_pairs_free(pairs);
	bf_tikv_error_free(&re);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unwire(data[0] % NKINDS, data + 1, size - 1);
	return 0;
}
