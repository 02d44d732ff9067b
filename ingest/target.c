/*
 * The import target interface (include/bfill/target.h): dispatch through
 * the implementation's ops table, and the generic scan iterator.
 * Depends on libc only.
 */
#include "bfill/target.h"

#include <stdlib.h>
#include <string.h>

struct bf_target {
	const bf_target_ops *ops;
	void *impl;
};

struct bf_target_iter {
	const bf_target_iter_ops *ops;
	void *impl;
};

void bf_keys_free(bf_keys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		free(k->keys[i]);
	free(k->keys);
	free(k->lens);
	memset(k, 0, sizeof(*k));
}

int bf_target_create(const bf_target_ops *ops, void *impl, bf_target **out, bf_err *err)
{
	bf_target *t;

	*out = NULL;
	if (!ops || !ops->ingest || !ops->exists || !ops->delete_range || !ops->scan)
		return bf_errf(err, BF_EINVAL, "target: ingest, exists, delete_range and scan are required");
	t = calloc(1, sizeof(*t));
	if (!t)
		return bf_errf(err, BF_ENOMEM, "target: out of memory");
	t->ops = ops;
	t->impl = impl;
	*out = t;
	return 0;
}

void bf_target_destroy(bf_target *t)
{
	if (!t)
		return;
	if (t->ops->destroy)
		t->ops->destroy(t->impl);
	free(t);
}

void *bf_target_impl(const bf_target *t) { return t->impl; }
const char *bf_target_kind(const bf_target *t) { return t->ops->kind ? t->ops->kind : "custom"; }

int bf_target_split_points(bf_target *t, const void *lo, size_t lolen, const void *hi,
			   size_t hilen, bf_keys *out, bf_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!t->ops->split_points)
		return 0;
	return t->ops->split_points(t->impl, lo, lolen, hi, hilen, out, err);
}

int bf_target_ingest(bf_target *t, const char *const *paths, size_t n,
		     const bf_fence_token *token, bf_err *err)
{
	if (n == 0)
		return 0;
	return t->ops->ingest(t->impl, paths, n, token, err);
}

int bf_target_exists(bf_target *t, bf_probe *probes, size_t n, bf_err *err)
{
	if (n == 0)
		return 0;
	return t->ops->exists(t->impl, probes, n, err);
}

int bf_target_delete_range(bf_target *t, const void *lo, size_t lolen, const void *hi,
			   size_t hilen, bf_err *err)
{
	return t->ops->delete_range(t->impl, lo, lolen, hi, hilen, err);
}

int bf_target_approx_size(bf_target *t, const void *lo, size_t lolen, const void *hi,
			  size_t hilen, uint64_t *bytes, bf_err *err)
{
	*bytes = 0;
	if (!t->ops->approx_size)
		return 0;
	return t->ops->approx_size(t->impl, lo, lolen, hi, hilen, bytes, err);
}

bf_target_snap *bf_target_snapshot(bf_target *t)
{
	return t->ops->snapshot ? t->ops->snapshot(t->impl) : NULL;
}

void bf_target_snapshot_release(bf_target *t, bf_target_snap *snap)
{
	if (snap && t->ops->snapshot_release)
		t->ops->snapshot_release(t->impl, snap);
}

void bf_target_cancel(bf_target *t, bool on)
{
	if (t->ops->cancel)
		t->ops->cancel(t->impl, on);
}

bool bf_target_waiting(bf_target *t, char *out, size_t n)
{
	if (n)
		out[0] = '\0';
	return t->ops->waiting && t->ops->waiting(t->impl, out, n);
}

void bf_target_stats_get(bf_target *t, bf_target_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (t->ops->stats)
		t->ops->stats(t->impl, out);
}

int bf_target_scan(bf_target *t, const void *lo, size_t lolen, const void *hi, size_t hilen,
		   const bf_scan_opts *opts, bf_target_iter **out, bf_err *err)
{
	bf_target_iter *it = calloc(1, sizeof(*it));
	int rc;

	*out = NULL;
	if (!it)
		return bf_errf(err, BF_ENOMEM, "target: out of memory");
	rc = t->ops->scan(t->impl, lo, lolen, hi, hilen, opts, &it->ops, &it->impl, err);
	if (rc) {
		free(it);
		return rc;
	}
	*out = it;
	return 0;
}

bool bf_target_iter_valid(const bf_target_iter *it) { return it->ops->valid(it->impl); }
void bf_target_iter_next(bf_target_iter *it) { it->ops->next(it->impl); }
void bf_target_iter_seek_last(bf_target_iter *it) { it->ops->seek_last(it->impl); }

const uint8_t *bf_target_iter_key(const bf_target_iter *it, size_t *len)
{
	return it->ops->key(it->impl, len);
}

const uint8_t *bf_target_iter_value(const bf_target_iter *it, size_t *len)
{
	return it->ops->value(it->impl, len);
}

int bf_target_iter_status(const bf_target_iter *it, bf_err *err)
{
	return it->ops->status(it->impl, err);
}

void bf_target_iter_destroy(bf_target_iter *it)
{
	if (!it)
		return;
	it->ops->destroy(it->impl);
	free(it);
}
