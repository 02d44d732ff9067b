/*
 * A cluster's catalog in etcd (include/bfill/catalog_etcd.h). Record keys
 * come spelled as the store spells them ("mbfill/job/..."); here the store
 * prefix gives way to "<root>catalog/". Reads are linearizable; a write of
 * several records is one Txn. Every call is bounded by the etcd client's
 * deadline.
 * Depends on the etcd client and the catalog.
 */
#include "bfill/catalog_etcd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY 1024

typedef struct etcd_catalog {
	bf_etcd *etcd; /* borrowed */
	char root[512];
} etcd_catalog;

/* "mbfill/x" -> "<root>catalog/x". */
static int map_key(const etcd_catalog *c, const char *key, char out[MAX_KEY], bf_err *err)
{
	size_t p = strlen(BF_CATALOG_PREFIX);
	const char *rest = strncmp(key, BF_CATALOG_PREFIX, p) ? key : key + p;
	if ((size_t)snprintf(out, MAX_KEY, "%scatalog/%s", c->root, rest) >= MAX_KEY)
		return bf_errf(err, BF_EINVAL, "catalog key %s is too long", key);
	return 0;
}

static int cat_get(void *impl, const char *key, char **val, size_t *vlen, bf_err *err)
{
	etcd_catalog *c = impl;
	char k[MAX_KEY];
	bf_etcd_range_result res;
	bf_etcd_range_req req = { .key = k };
	int rc = map_key(c, key, k, err);

	if (rc == 0)
		rc = bf_etcd_range(c->etcd, &req, &res, err);
	if (rc)
		return rc;
	if (res.n_kvs == 0) {
		rc = bf_errf(err, BF_ENOTFOUND, "catalog: no record %s", k);
	} else {
		*val = malloc(res.kvs[0].value_len + 1);
		if (!*val) {
			rc = bf_errf(err, BF_ENOMEM, "catalog: out of memory");
		} else {
			memcpy(*val, res.kvs[0].value, res.kvs[0].value_len);
			(*val)[res.kvs[0].value_len] = '\0';
			*vlen = res.kvs[0].value_len;
		}
	}
	bf_etcd_range_result_free(&res);
	return rc;
}

static int cat_put(void *impl, const char *const *keys, char *const *vals, int n,
		   const bf_fence_token *fences, int nfences, bf_err *err)
{
	etcd_catalog *c = impl;
	char (*k)[MAX_KEY] = calloc((size_t)n, MAX_KEY);
	bf_etcd_op *ops = calloc((size_t)n, sizeof(*ops));
	bf_etcd_compare *cmp = calloc((size_t)(nfences > 0 ? nfences : 1), sizeof(*cmp));
	bf_etcd_txn_result res;
	int ncmp = 0;
	int rc = k && ops && cmp ? 0 : bf_errf(err, BF_ENOMEM, "catalog: out of memory");

	/* Each holder's key must still be there with the revision it was
	 * locked with: the change is fenced in etcd itself. */
	for (int i = 0; i < nfences && rc == 0; i++) {
		if (!fences[i].holder[0] || fences[i].revision == 0)
			continue;
		cmp[ncmp].key = fences[i].holder;
		cmp[ncmp].target = BF_ETCD_CMP_CREATE;
		cmp[ncmp].result = BF_ETCD_EQUAL;
		cmp[ncmp].number = fences[i].revision;
		ncmp++;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		rc = map_key(c, keys[i], k[i], err);
		ops[i].kind = BF_ETCD_OP_PUT;
		ops[i].key = k[i];
		ops[i].value = vals[i];
		ops[i].value_len = strlen(vals[i]);
	}
	if (rc == 0) {
		/* The records land together or not at all. */
		bf_etcd_txn_req req = { cmp, (size_t)ncmp, ops, (size_t)n, NULL, 0 };
		rc = bf_etcd_txn(c->etcd, &req, &res, err);
		if (rc == 0) {
			if (!res.succeeded)
				rc = bf_errf(err, BF_ELOCKLOST, "catalog: the import lock moved on "
					     "before %s could be written", keys[0]);
			bf_etcd_txn_result_free(&res);
		}
	}
	free(k);
	free(ops);
	free(cmp);
	return rc;
}

static int cat_del(void *impl, const char *key, bf_err *err)
{
	etcd_catalog *c = impl;
	char k[MAX_KEY];
	int rc = map_key(c, key, k, err);
	return rc ? rc : bf_etcd_delete(c->etcd, k, NULL, NULL, NULL, err);
}

/* Catalogs are small (tables and jobs): one Range holds them all, within
 * the client's reply limit. */
static int cat_scan(void *impl, const char *lo, const char *hi,
		    int (*fn)(const char *key, size_t klen, const char *val, size_t vlen, void *arg),
		    void *arg, bf_err *err)
{
	etcd_catalog *c = impl;
	char klo[MAX_KEY], khi[MAX_KEY];
	bf_etcd_range_result res;
	int rc = map_key(c, lo, klo, err);

	if (rc == 0)
		rc = map_key(c, hi, khi, err);
	if (rc)
		return rc;
	bf_etcd_range_req req = { .key = klo, .range_end = khi, .sort_order = BF_ETCD_SORT_ASCEND,
				  .sort_target = BF_ETCD_BY_KEY };
	rc = bf_etcd_range(c->etcd, &req, &res, err);
	if (rc)
		return rc;
	/* The callback sees keys as the store spells them. */
	size_t cut = strlen(c->root) + strlen("catalog/");
	for (size_t i = 0; i < res.n_kvs && rc == 0; i++) {
		char key[MAX_KEY];
		const bf_etcd_kv *kv = &res.kvs[i];
		if (kv->key_len < cut)
			continue;
		int n = snprintf(key, sizeof(key), "%s%.*s", BF_CATALOG_PREFIX, (int)(kv->key_len - cut),
				 kv->key + cut);
		rc = fn(key, (size_t)n, kv->value, kv->value_len, arg);
	}
	bf_etcd_range_result_free(&res);
	return rc;
}

static void cat_destroy(void *impl)
{
	free(impl);
}

static const bf_catalog_kv_ops etcd_ops = {
	.get = cat_get, .put = cat_put, .del = cat_del, .scan = cat_scan, .destroy = cat_destroy,
};

int bf_catalog_etcd_create(bf_etcd *etcd, const char *root, bf_catalog **out, bf_err *err)
{
	etcd_catalog *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return bf_errf(err, BF_ENOMEM, "catalog: out of memory");
	if (!root || strlen(root) >= sizeof(c->root) - 1) {
		free(c);
		return bf_errf(err, BF_EINVAL, "catalog: bad etcd root");
	}
	c->etcd = etcd;
	snprintf(c->root, sizeof(c->root), "%s", root);
	rc = bf_catalog_create(&etcd_ops, c, out, err);
	if (rc)
		free(c);
	return rc;
}
