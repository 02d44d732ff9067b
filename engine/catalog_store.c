/*
 * The store's own catalog (bf_store_catalog): catalog records as keys of
 * the store under BF_CATALOG_PREFIX, written with synced batches.
 * Depends on the store.
 */
#include "bfill/catalog.h"
#include "engine/catalog_store.h"

#include <stdlib.h>
#include <string.h>

static int store_get(void *impl, const char *key, char **val, size_t *vlen, bf_err *err)
{
	return bf_store_get(impl, key, strlen(key), val, vlen, err);
}

/* The store can't tell who holds an etcd lock: fences are for catalogs
 * that live in the lock's etcd. */
static int store_put(void *impl, const char *const *keys, char *const *vals, int n,
		     const bf_fence_token *fences, int nfences, bf_err *err)
{
	(void)fences;
	(void)nfences;
	bf_store_batch *b = bf_store_batch_create();
	int rc;

	/* The batch keeps its own copies. */
	for (int i = 0; i < n; i++)
		bf_store_batch_put(b, keys[i], strlen(keys[i]), vals[i], strlen(vals[i]));
	rc = bf_store_batch_commit(impl, b, err);
	bf_store_batch_destroy(b);
	return rc;
}

static int store_del(void *impl, const char *key, bf_err *err)
{
	return bf_store_delete(impl, key, strlen(key), err);
}

static int store_scan(void *impl, const char *lo, const char *hi,
		      int (*fn)(const char *key, size_t klen, const char *val, size_t vlen, void *arg),
		      void *arg, bf_err *err)
{
	bf_store_iter *it = NULL;
	int rc = bf_store_iter_create(impl, lo, strlen(lo), hi, strlen(hi), NULL, &it, err);

	for (; rc == 0 && bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = bf_store_iter_key(it, &klen);
		const uint8_t *v = bf_store_iter_value(it, &vlen);
		rc = fn((const char *)k, klen, (const char *)v, vlen, arg);
	}
	if (rc == 0 && it)
		rc = bf_store_iter_status(it, err);
	bf_store_iter_destroy(it);
	return rc;
}

static const bf_catalog_kv_ops store_ops = {
	.get = store_get, .put = store_put, .del = store_del, .scan = store_scan,
};

int bf_catalog_store_create(bf_store *st, bf_catalog **out, bf_err *err)
{
	return bf_catalog_create(&store_ops, st, out, err);
}
