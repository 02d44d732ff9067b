/*
 * libFuzzer target: the etcd reply handlers (lock/etcd_wire.c,
 * bf_etcd_unwire_*). The first byte picks the reply type (its low bits)
 * and the size limit (its top bit: a small limit, so that oversized
 * replies are refused too); the rest is the reply as it would come off
 * the wire. Every handler must refuse bad bytes with a one-line BF_EPROTO
 * or BF_EUNAVAIL, and what it accepts must keep etcd's contract: keys
 * present, revisions positive. Results are freed, so LeakSanitizer checks
 * the error paths as well.
 */
#include "lock/etcd_wire.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NKINDS 10

static void check_range(const bf_etcd_range_result *r)
{
	if (r->revision <= 0 || (r->n_kvs && !r->kvs))
		abort();
	for (size_t i = 0; i < r->n_kvs; i++) {
		const bf_etcd_kv *kv = &r->kvs[i];
		if (!kv->key || !kv->key_len || !kv->value || kv->create_revision <= 0 ||
		    kv->mod_revision < kv->create_revision)
			abort();
	}
}

static int unwire(int kind, const uint8_t *in, size_t n, size_t max)
{
	bf_etcd_range_result range;
	bf_etcd_txn_result txn;
	bf_etcd_watch_reply watch;
	bf_etcd_status_info status;
	int64_t a = 0, b = 0;
	bf_err err = { 0 };
	int rc;

	switch (kind) {
	case 0:
		rc = bf_etcd_unwire_range(in, n, max, &range, &err);
		if (rc == 0)
			check_range(&range);
		bf_etcd_range_result_free(&range);
		break;
	case 1:
		rc = bf_etcd_unwire_txn(in, n, max, &txn, &err);
		for (size_t i = 0; rc == 0 && i < txn.n_ops; i++)
			if (txn.ops[i].kind == BF_ETCD_OP_RANGE)
				check_range(&txn.ops[i].range);
		bf_etcd_txn_result_free(&txn);
		break;
	case 2: rc = bf_etcd_unwire_put(in, n, max, &a, &err); break;
	case 3: rc = bf_etcd_unwire_delete(in, n, max, &a, &b, &err); break;
	case 4:
		rc = bf_etcd_unwire_lease_grant(in, n, max, &a, &b, &err);
		if (rc == 0 && (a == 0 || b <= 0))
			abort();
		break;
	case 5: rc = bf_etcd_unwire_lease_revoke(in, n, max, &err); break;
	case 6: rc = bf_etcd_unwire_lease_ttl(in, n, max, &a, &err); break;
	case 7: rc = bf_etcd_unwire_keepalive(in, n, max, &a, &b, &err); break;
	case 8:
		rc = bf_etcd_unwire_watch(in, n, max, &watch, &err);
		if (rc == 0 && watch.revision <= 0)
			abort();
		if (rc == 0)
			fuzz_one_line(watch.cancel_reason, sizeof(watch.cancel_reason));
		break;
	default:
		rc = bf_etcd_unwire_status(in, n, max, &status, &err);
		if (rc == 0)
			fuzz_one_line(status.version, sizeof(status.version));
		break;
	}
	if (rc && rc != BF_EPROTO && rc != BF_EUNAVAIL && rc != BF_ENOMEM)
		abort();
	if (rc && !err.msg[0])
		abort();
	if (rc)
		fuzz_one_line(err.msg, sizeof(err.msg));
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unwire(data[0] % 0x80 % NKINDS, data + 1, size - 1, data[0] & 0x80 ? 64 : 1 << 20);
	return 0;
}
