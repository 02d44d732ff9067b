/*
 * The local store as an import target (include/bfill/target.h): the
 * embedded default. Ingest is the store's atomic IngestExternalFile,
 * fenced by a record per lock key in the store's catalog; the table scan
 * is a store iterator on a store snapshot.
 * Depends on engine (store, catalog), util and libc.
 */
#include "bfill/catalog.h"
#include "bfill/fault.h"
#include "bfill/target.h"
#include "util/trace.h"
#include "util/util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct local_target {
	bf_store *st;          /* borrowed */
	pthread_mutex_t fence_mu; /* a fence check and its record go together */
	atomic_uint_fast64_t ingests, files, probes, probe_reads, refusals;
} local_target;

/* ---- scan iterators: the store's, behind the generic ops ---- */

static bool it_valid(void *it) { return bf_store_iter_valid(it); }
static void it_next(void *it) { bf_store_iter_next(it); }
static void it_seek_last(void *it) { bf_store_iter_seek_last(it); }
static const uint8_t *it_key(void *it, size_t *len) { return bf_store_iter_key(it, len); }
static const uint8_t *it_value(void *it, size_t *len) { return bf_store_iter_value(it, len); }
static int it_status(void *it, bf_err *err) { return bf_store_iter_status(it, err); }
static void it_destroy(void *it) { bf_store_iter_destroy(it); }

static const bf_target_iter_ops store_iter_ops = {
	.valid = it_valid, .next = it_next, .seek_last = it_seek_last, .key = it_key,
	.value = it_value, .status = it_status, .destroy = it_destroy,
};

static int local_scan(void *impl, const void *lo, size_t lolen, const void *hi, size_t hilen,
		      const bf_scan_opts *opts, const bf_target_iter_ops **ops, void **it,
		      bf_err *err)
{
	local_target *t = impl;
	bf_iter_opts io = { .fill_cache = true };
	bf_store_iter *si = NULL;
	int rc;

	if (opts) {
		io.snap = (const bf_store_snap *)opts->snap;
		io.readahead = opts->readahead;
		io.fill_cache = opts->fill_cache;
		io.forward_only = opts->forward_only;
	}
	rc = bf_store_iter_create(t->st, lo, lolen, hi, hilen, &io, &si, err);
	if (rc)
		return rc;
	*ops = &store_iter_ops;
	*it = si;
	return 0;
}

static bf_target_snap *local_snapshot(void *impl)
{
	return (bf_target_snap *)bf_store_snapshot(((local_target *)impl)->st);
}

static void local_snapshot_release(void *impl, bf_target_snap *snap)
{
	bf_store_snapshot_release(((local_target *)impl)->st, (bf_store_snap *)snap);
}

static int local_approx_size(void *impl, const void *lo, size_t lolen, const void *hi,
			     size_t hilen, uint64_t *bytes, bf_err *err)
{
	return bf_store_approx_size(((local_target *)impl)->st, lo, lolen, hi, hilen, bytes, err);
}

/* ---- ingest, fenced ---- */

/*
 * The store remembers the highest fence revision it ingested under for
 * each lock key, durably, before the files go in: a holder whose lock has
 * passed on shows a lower revision and is refused, even if its own check
 * passed just before its lease ran out.
 */
static int check_fence(local_target *t, const bf_fence_token *token, bf_err *err)
{
	int64_t highest = 0;
	int rc;

	if (!token || token->revision == 0)
		return 0;
	rc = bf_catalog_get_fence(bf_store_catalog(t->st), token->key, &highest, err);
	if (rc)
		return rc;
	if (token->revision < highest) {
		atomic_fetch_add(&t->refusals, 1);
		return bf_errf(err, BF_EFENCED,
			       "store %s refused an ingest under lock %s: revision %" PRId64
			       " is older than %" PRId64 ", which has ingested already",
			       bf_store_path(t->st), token->key, token->revision, highest);
	}
	if (token->revision > highest)
		rc = bf_catalog_put_fence(bf_store_catalog(t->st), token->key, token->revision, err);
	return rc;
}

static int local_ingest(void *impl, const char *const *paths, size_t n,
			const bf_fence_token *token, bf_err *err)
{
	local_target *t = impl;
	int rc;

	pthread_mutex_lock(&t->fence_mu);
	rc = check_fence(t, token, err);
	if (rc == 0 && bf_fault_hit("store.ingest"))
		rc = bf_errf(err, BF_EFAULT, "store: injected ingest failure");
	if (rc == 0)
		rc = bf_store_ingest(t->st, paths, n, err);
	pthread_mutex_unlock(&t->fence_mu);
	if (rc == 0) {
		atomic_fetch_add(&t->ingests, 1);
		atomic_fetch_add(&t->files, n);
		bf_trace("ingest", "files=%zu lock=%s revision=%" PRId64, n,
			 token ? token->key : "", token ? token->revision : 0);
	}
	return rc;
}

/* ---- exists ---- */

/*
 * One iterator bounded by the batch's first and last keys, so nothing
 * outside the batch's own range is ever read; each probe seeks only when
 * the iterator is behind it.
 */
static int local_exists(void *impl, bf_probe *probes, size_t n, bf_err *err)
{
	local_target *t = impl;
	const bf_probe *last = &probes[n - 1];
	uint8_t *hi = malloc(last->klen + 1);
	bf_iter_opts io = { .fill_cache = false };
	bf_store_iter *it = NULL;
	uint64_t reads = 0;
	int rc;

	if (!hi)
		return bf_errf(err, BF_ENOMEM, "store: out of memory");
	/* last key + 0x00: the smallest key above the last one. */
	memcpy(hi, last->key, last->klen);
	hi[last->klen] = 0;
	rc = bf_store_iter_create(t->st, probes[0].key, probes[0].klen, hi, last->klen + 1, &io,
				  &it, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		bf_probe *p = &probes[i];
		size_t kl, vl;
		const uint8_t *k;
		p->result = BF_PROBE_ABSENT;
		if (!bf_store_iter_valid(it))
			continue; /* nothing left up to the last key */
		k = bf_store_iter_key(it, &kl);
		if (bf_key_cmp(k, kl, p->key, p->klen) < 0) {
			bf_store_iter_seek(it, p->key, p->klen);
			if (!bf_store_iter_valid(it))
				continue;
			k = bf_store_iter_key(it, &kl);
		}
		reads++;
		if (bf_key_cmp(k, kl, p->key, p->klen) != 0)
			continue;
		const uint8_t *v = bf_store_iter_value(it, &vl);
		p->result = vl == p->expect_len && !memcmp(v, p->expect, vl) ? BF_PROBE_SAME
									   : BF_PROBE_DIFFERENT;
	}
	if (rc == 0)
		rc = bf_store_iter_status(it, err);
	bf_store_iter_destroy(it);
	free(hi);
	atomic_fetch_add(&t->probes, n);
	atomic_fetch_add(&t->probe_reads, reads);
	return rc;
}

static int local_delete_range(void *impl, const void *lo, size_t lolen, const void *hi,
			      size_t hilen, bf_err *err)
{
	return bf_store_delete_range(((local_target *)impl)->st, lo, lolen, hi, hilen, err);
}

static void local_stats(void *impl, bf_target_stats *out)
{
	local_target *t = impl;
	out->ingests = atomic_load(&t->ingests);
	out->ingested_files = atomic_load(&t->files);
	out->probes = atomic_load(&t->probes);
	out->probe_keys_read = atomic_load(&t->probe_reads);
	out->fence_refusals = atomic_load(&t->refusals);
}

static void local_destroy(void *impl)
{
	local_target *t = impl;
	pthread_mutex_destroy(&t->fence_mu);
	free(t);
}

static const bf_target_ops local_ops = {
	.kind = "local",
	.split_points = NULL, /* one store: nothing to cut at */
	.ingest = local_ingest,
	.exists = local_exists,
	.delete_range = local_delete_range,
	.approx_size = local_approx_size,
	.snapshot = local_snapshot,
	.snapshot_release = local_snapshot_release,
	.scan = local_scan,
	.stats = local_stats,
	.destroy = local_destroy,
};

int bf_target_local_create(bf_store *st, bf_target **out, bf_err *err)
{
	local_target *t = calloc(1, sizeof(*t));
	int rc;

	*out = NULL;
	if (!t)
		return bf_errf(err, BF_ENOMEM, "target: out of memory");
	t->st = st;
	pthread_mutex_init(&t->fence_mu, NULL);
	rc = bf_target_create(&local_ops, t, out, err);
	if (rc)
		local_destroy(t);
	return rc;
}
