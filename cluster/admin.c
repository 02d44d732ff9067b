/*
 * Changing the layout in etcd: a new cluster (one Txn), a region split and
 * a leader transfer (Txns fenced on the region record's mod revision).
 * None of them touches a handle's cache: it learns of the change as of
 * any other, by a refresh or its watch.
 *
 * The initial split (docs/cluster.md, "The initial split"): regions are
 * spread over the key space of the sbtest tables a test loads (ids from
 * BF_CLUSTER_FIRST_TABLE) with handles 1..rows.
 * Depends on: the etcd client, codec (TiDB keys), records.c.
 */
#include "cluster/cluster_impl.h"
#include "bfill/codec.h"
#include "util/endpoints.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* etcd's default --max-txn-ops; a larger init says so in its error. */
#define ETCD_DEFAULT_TXN_OPS 128

/* "<root>meta" into key (CLUSTER_KEY_MAX); returns key. */
static char *meta_key(char *key, const char *root)
{
	snprintf(key, CLUSTER_KEY_MAX, "%smeta", root);
	return key;
}

/* ---- the initial layout ---- */

typedef struct bound {
	uint8_t key[BF_RECORD_KEY_LEN];
	size_t len;
} bound;

/* The R-1 split points of init, in key order (*out malloc'd). */
static int split_points(const bf_cluster_init_opts *o, bound **out, size_t *n)
{
	int64_t nregions = o->nregions;
	int64_t tables = o->tables > 0 ? o->tables : 1;
	uint64_t rows = o->rows ? o->rows : BF_CLUSTER_ROWS_DEFAULT;
	bound *b = malloc((size_t)nregions * sizeof(*b));

	*out = b;
	*n = 0;
	if (!b)
		return BF_ENOMEM;
	if (tables > nregions)
		tables = nregions; /* the last tables share the last region */
	for (int64_t i = 0; i < tables; i++) {
		int64_t tid = BF_CLUSTER_FIRST_TABLE + i;
		/* Each table an equal share, the first ones the remainder. */
		int64_t q = nregions / tables + (i < nregions % tables);
		uint64_t prev = 0;

		if (i > 0) {
			bf_codec_table_prefix(b[*n].key, tid);
			b[(*n)++].len = BF_TABLE_PREFIX_LEN;
		}
		if (q < 2)
			continue; /* the table whole in one region */
		/* Its indexes in one region, its rows in q - 1 cut at even
		 * handle steps: handles 1 + rows*j/(q-1). */
		bf_codec_record_prefix(b[*n].key, tid);
		b[(*n)++].len = BF_RECORD_PREFIX_LEN;
		for (int64_t j = 1; j <= q - 2; j++) {
			uint64_t h = 1 + (uint64_t)((unsigned __int128)rows * (uint64_t)j /
						    (uint64_t)(q - 1));
			if (h <= prev)
				h = prev + 1; /* fewer rows than regions: keep them apart */
			if (h > INT64_MAX)
				h = INT64_MAX;
			prev = h;
			bf_codec_record_key(b[*n].key, tid, (int64_t)h);
			b[(*n)++].len = BF_RECORD_KEY_LEN;
		}
	}
	return 0;
}

static int check_init_opts(const bf_cluster_init_opts *o, bf_err *err)
{
	int max_replicas;

	if (!o || o->nstores < 1 || o->nstores > BF_CLUSTER_MAX_STORES || !o->store_addrs)
		return bf_errf(err, BF_EINVAL, "a cluster takes 1 to %d stores, got %d",
			       BF_CLUSTER_MAX_STORES, o ? o->nstores : 0);
	for (int i = 0; i < o->nstores; i++) {
		const char *a = o->store_addrs[i];
		if (!a || strlen(a) >= BF_CLUSTER_ADDR_MAX || strchr(a, ',') ||
		    bf_endpoints_check(a, NULL) || bf_endpoints_scheme_of(a) != BF_SCHEME_NONE)
			return bf_errf(err, BF_EINVAL, "store %d: address '%s' is not host:port", i + 1,
				       a ? a : "");
		for (int j = 0; j < i; j++)
			if (!strcmp(a, o->store_addrs[j]))
				return bf_errf(err, BF_EINVAL, "stores %d and %d both have address %s",
					       j + 1, i + 1, a);
	}
	if (o->nregions < 1)
		return bf_errf(err, BF_EINVAL, "a cluster needs at least one region, got %d",
			       o->nregions);
	if (o->tables < 0)
		return bf_errf(err, BF_EINVAL, "the split's table count is negative (%d)", o->tables);
	if (o->rows > INT64_MAX)
		return bf_errf(err, BF_EINVAL, "%" PRIu64 " rows do not fit a TiDB handle", o->rows);
	max_replicas = o->nstores < BF_CLUSTER_MAX_REPLICAS ? o->nstores : BF_CLUSTER_MAX_REPLICAS;
	if (o->replicas < 1 || o->replicas > max_replicas)
		return bf_errf(err, BF_EINVAL, "replicas must be 1..%d with %d store%s, got %d",
			       max_replicas, o->nstores, o->nstores > 1 ? "s" : "", o->replicas);
	return 0;
}

/* The records of a new cluster, as etcd Put ops; keys and values owned by
 * the returned arrays (free with free_ops). */
typedef struct init_ops {
	bf_etcd_op *ops;
	size_t n;
	char **keys;   /* n, malloc'd */
	void **values; /* n, malloc'd */
} init_ops;

static void free_ops(init_ops *io)
{
	for (size_t i = 0; i < io->n; i++) {
		free(io->keys[i]);
		free(io->values[i]);
	}
	free(io->ops);
	free(io->keys);
	free(io->values);
}

/* Adds a Put of key (copied) with value (taken: freed with io). */
static int add_put(init_ops *io, const char *key, void *value, size_t len)
{
	char *k = strdup(key);

	if (!k) {
		free(value);
		return BF_ENOMEM;
	}
	io->keys[io->n] = k;
	io->values[io->n] = value;
	io->ops[io->n] = (bf_etcd_op){ .kind = BF_ETCD_OP_PUT, .key = k, .value = value,
				       .value_len = len };
	io->n++;
	return 0;
}

static int decimal(uint64_t v, void **out, size_t *len)
{
	char *s = malloc(24);

	if (!s)
		return BF_ENOMEM;
	*len = (size_t)snprintf(s, 24, "%" PRIu64, v);
	*out = s;
	return 0;
}

static int layout_ops(const char *root, const char *uuid, const bf_cluster_init_opts *o,
		      init_ops *io, bf_err *err)
{
	size_t cap = 1 + (size_t)o->nstores + 2 * (size_t)o->nregions;
	bound *points = NULL;
	size_t npoints = 0;
	char key[CLUSTER_KEY_MAX];
	uint8_t *val = NULL;
	size_t len = 0;
	int rc;

	io->ops = calloc(cap, sizeof(*io->ops));
	io->keys = calloc(cap, sizeof(*io->keys));
	io->values = calloc(cap, sizeof(*io->values));
	if (!io->ops || !io->keys || !io->values || split_points(o, &points, &npoints)) {
		rc = bf_errf(err, BF_ENOMEM, "out of memory laying out %d regions", o->nregions);
		goto out;
	}
	rc = meta_record_make(uuid, o->replicas, (char **)&val, err);
	if (rc == 0)
		rc = add_put(io, meta_key(key, root), val, strlen((char *)val));
	for (int i = 0; i < o->nstores && rc == 0; i++) {
		bf_cluster_store s = { .id = (uint64_t)i + 1, .state = 0 };
		snprintf(s.address, sizeof(s.address), "%s", o->store_addrs[i]);
		rc = store_record_pack(&s, &val, &len, err);
		cluster_key(key, root, "store", s.id);
		if (rc == 0)
			rc = add_put(io, key, val, len);
	}
	for (int i = 0; i < o->nregions && rc == 0; i++) {
		const bound *lo = i > 0 ? &points[i - 1] : NULL;
		const bound *hi = i < o->nregions - 1 ? &points[i] : NULL;
		creg r = { .id = (uint64_t)i + 1, .conf_ver = 1, .version = 1,
			   .npeers = o->replicas };
		void *leader;
		/* Peers round robin over the stores; the first is the
		 * leader, so leaders go round the stores too. */
		for (int j = 0; j < o->replicas; j++) {
			r.peers[j].store_id = (uint64_t)((i + j) % o->nstores) + 1;
			r.peers[j].id = CLUSTER_PEER_ID(r.id, r.peers[j].store_id);
		}
		uint8_t keys[2 * BF_RECORD_KEY_LEN];
		r.keys = keys;
		r.start_len = lo ? lo->len : 0;
		r.end_len = hi ? hi->len : 0;
		if (lo)
			memcpy(keys, lo->key, lo->len);
		if (hi)
			memcpy(keys + r.start_len, hi->key, hi->len);
		rc = region_record_pack(&r, &val, &len, err);
		cluster_key(key, root, "region", r.id);
		if (rc == 0)
			rc = add_put(io, key, val, len);
		if (rc == 0 && (rc = decimal(r.peers[0].store_id, &leader, &len)) == 0) {
			cluster_key(key, root, "leader", r.id);
			rc = add_put(io, key, leader, len);
		}
	}
	if (rc == BF_ENOMEM)
		bf_errf(err, rc, "out of memory laying out %d regions", o->nregions);
out:
	free(points);
	return rc;
}

/* After a Txn whose outcome is unknown: did our meta record land? */
static bool meta_is_ours(bf_etcd *etcd, const char *root, const char *uuid)
{
	char key[CLUSTER_KEY_MAX], u[BF_UUID_LEN + 1];
	bf_etcd_range_result res = { 0 };
	bf_etcd_range_req req = { .key = key };
	int replicas;
	bool ours = false;

	meta_key(key, root);
	if (bf_etcd_range(etcd, &req, &res, NULL) == 0 && res.n_kvs == 1 &&
	    meta_record_parse(res.kvs[0].value, res.kvs[0].value_len, key, u, &replicas, NULL) == 0)
		ours = !strcmp(u, uuid);
	bf_etcd_range_result_free(&res);
	return ours;
}

int bf_cluster_init(bf_etcd *etcd, const char *name, const bf_cluster_init_opts *o,
		    bf_err *err)
{
	char root[CLUSTER_ROOT_MAX], meta[CLUSTER_KEY_MAX], uuid[BF_UUID_LEN + 1];
	init_ops io = { 0 };
	bf_etcd_txn_result res = { 0 };
	int rc;

	rc = cluster_name_check(name, err);
	if (rc == 0)
		rc = check_init_opts(o, err);
	if (rc == 0)
		rc = bf_uuid_new(uuid, err);
	if (rc)
		return rc;
	cluster_root(root, name);
	meta_key(meta, root);
	rc = layout_ops(root, uuid, o, &io, err);
	if (rc)
		goto out;
	/* All or nothing, and only where no cluster of that name is. */
	bf_etcd_compare absent = { .key = meta, .target = BF_ETCD_CMP_CREATE,
				   .result = BF_ETCD_EQUAL, .number = 0 };
	bf_etcd_txn_req req = { .compare = &absent, .n_compare = 1, .success = io.ops,
				.n_success = io.n };
	rc = bf_etcd_txn(etcd, &req, &res, err);
	if ((rc == BF_EUNKNOWN || rc == BF_ETIMEDOUT) && meta_is_ours(etcd, root, uuid))
		rc = 0;
	else if (rc && io.n > ETCD_DEFAULT_TXN_OPS)
		bf_err_prefix(err, rc,
			      "cluster %s: %d store%s and %d region%s take %zu operations in one "
			      "etcd Txn, more than etcd's default --max-txn-ops of %d",
			      name, o->nstores, o->nstores > 1 ? "s" : "", o->nregions,
			      o->nregions > 1 ? "s" : "", io.n, ETCD_DEFAULT_TXN_OPS);
	else if (rc)
		bf_err_prefix(err, rc, "cluster %s", name);
	else if (!res.succeeded)
		rc = bf_errf(err, BF_EEXIST, "cluster %s already exists (%s is in etcd)", name, meta);
out:
	bf_etcd_txn_result_free(&res);
	free_ops(&io);
	return rc;
}

/* ---- split and transfer-leader ---- */

/* One fenced Txn: the region record unchanged since the cache read it,
 * plus extra compares; then the puts. 1 when it applied, 0 when a compare
 * failed, negative on error. */
static int fenced_txn(bf_cluster *c, const creg *r, const bf_etcd_compare *extra, size_t nextra,
		      const bf_etcd_op *puts, size_t nputs, bf_err *err)
{
	char key[CLUSTER_KEY_MAX];
	bf_etcd_compare cmp[2];
	bf_etcd_txn_result res = { 0 };
	int rc;

	cluster_key(key, c->root, "region", r->id);
	cmp[0] = (bf_etcd_compare){ .key = key, .target = BF_ETCD_CMP_MOD,
				    .result = BF_ETCD_EQUAL, .number = r->mod_revision };
	if (nextra)
		cmp[1] = extra[0];
	bf_etcd_txn_req req = { .compare = cmp, .n_compare = 1 + (nextra > 0), .success = puts,
				.n_success = nputs };
	rc = bf_etcd_txn(c->etcd, &req, &res, err);
	if (rc == 0)
		rc = res.succeeded ? 1 : 0;
	bf_etcd_txn_result_free(&res);
	return rc;
}

/* Validates a split of r at k; 0 or BF_EINVAL. */
static int split_check(const bf_cluster *c, const creg *r, const void *k, size_t klen,
		       bf_err *err)
{
	char shown[160];
	bool inside = klen > 0 && klen <= BF_CLUSTER_KEY_MAX &&
		      cluster_key_cmp(k, klen, creg_start(r), r->start_len) > 0 &&
		      (r->end_len == 0 || cluster_key_cmp(k, klen, creg_end(r), r->end_len) < 0);

	if (inside)
		return 0;
	return bf_errf(err, BF_EINVAL,
		       "cluster %s: key %s is not strictly inside region %" PRIu64
		       " (a split key must lie after its start and before its end)",
		       c->name, bf_printable(k, klen, shown, sizeof(shown)), r->id);
}

/* One attempt at a split from what the cache holds: 1 done, 0 the region
 * moved in etcd, negative on error. */
static int split_once(bf_cluster *c, uint64_t region_id, const void *k, size_t klen,
		      bf_err *err)
{
	creg r = { 0 }, left = { 0 }, right = { 0 };
	char lkey[CLUSTER_KEY_MAX], rkey[CLUSTER_KEY_MAX], leader_key[CLUSTER_KEY_MAX];
	uint8_t *lval = NULL, *rval = NULL;
	size_t llen = 0, rlen = 0;
	char leader[24];
	int rc;

	rc = cluster_cached_region(c, region_id, &r, err);
	if (rc == 0)
		rc = split_check(c, &r, k, klen, err);
	if (rc)
		goto out;
	/* TiKV's rule: every region out of a split gets version + 1; the
	 * left part keeps the id, the right one gets a new id and peers on
	 * the same stores, and its leader where the left one's is. */
	left = r;
	left.keys = NULL;
	right = r;
	right.keys = NULL;
	right.id = cluster_max_region_id(c) + 1;
	left.version = right.version = r.version + 1;
	for (int i = 0; i < right.npeers; i++)
		right.peers[i].id = CLUSTER_PEER_ID(right.id, right.peers[i].store_id);
	left.keys = malloc(r.start_len + klen + 1);
	right.keys = malloc(klen + r.end_len + 1);
	if (!left.keys || !right.keys) {
		rc = bf_errf(err, BF_ENOMEM, "out of memory splitting region %" PRIu64, region_id);
		goto out;
	}
	memcpy(left.keys, creg_start(&r), r.start_len);
	memcpy(left.keys + r.start_len, k, klen);
	left.end_len = klen;
	memcpy(right.keys, k, klen);
	memcpy(right.keys + klen, creg_end(&r), r.end_len);
	right.start_len = klen;
	rc = region_record_pack(&left, &lval, &llen, err);
	if (rc == 0)
		rc = region_record_pack(&right, &rval, &rlen, err);
	if (rc)
		goto out;
	cluster_key(lkey, c->root, "region", left.id);
	cluster_key(rkey, c->root, "region", right.id);
	cluster_key(leader_key, c->root, "leader", right.id);
	snprintf(leader, sizeof(leader), "%" PRIu64, r.leader_store);
	bf_etcd_compare new_id_free = { .key = rkey, .target = BF_ETCD_CMP_CREATE,
					.result = BF_ETCD_EQUAL, .number = 0 };
	bf_etcd_op puts[] = {
		{ .kind = BF_ETCD_OP_PUT, .key = lkey, .value = lval, .value_len = llen },
		{ .kind = BF_ETCD_OP_PUT, .key = rkey, .value = rval, .value_len = rlen },
		{ .kind = BF_ETCD_OP_PUT, .key = leader_key, .value = leader,
		  .value_len = strlen(leader) },
	};
	/* A region without a known leader gives the new one none either. */
	rc = fenced_txn(c, &r, &new_id_free, 1, puts, r.leader_store ? 3 : 2, err);
	if (rc < 0)
		bf_err_prefix(err, rc, "cluster %s: split of region %" PRIu64, c->name, region_id);
out:
	free(lval);
	free(rval);
	creg_free(&left);
	creg_free(&right);
	creg_free(&r);
	return rc;
}

/*
 * Runs attempt(c, ...) on what the cache holds; when the region moved in
 * etcd (or the cache did not know it well enough to try), refreshes and
 * tries once more.
 */
typedef int (*admin_attempt)(bf_cluster *c, uint64_t region_id, const void *arg, size_t len,
			     bf_err *err);

static int with_one_retry(bf_cluster *c, uint64_t region_id, admin_attempt attempt,
			  const void *arg, size_t len, const char *what, bf_err *err)
{
	int rc = attempt(c, region_id, arg, len, err);

	if (rc == 1)
		return 0;
	/* The region moved, or a stale cache did not know it (or where its
	 * keys end) well enough: worth a fresh look. Anything else (etcd
	 * unreachable, an outcome unknown) is the answer. */
	if (rc != 0 && rc != BF_ENOTFOUND && rc != BF_EINVAL)
		return rc;
	rc = bf_cluster_refresh(c, err);
	if (rc)
		return rc;
	rc = attempt(c, region_id, arg, len, err);
	if (rc == 1)
		return 0;
	if (rc == 0)
		rc = bf_errf(err, BF_ESTATE,
			     "cluster %s: region %" PRIu64 " changed in etcd during the %s, twice",
			     c->name, region_id, what);
	return rc;
}

int bf_cluster_split(bf_cluster *c, uint64_t region_id, const void *k, size_t klen, bf_err *err)
{
	return with_one_retry(c, region_id, split_once, k, klen, "split", err);
}

static int transfer_attempt(bf_cluster *c, uint64_t region_id, const void *arg, size_t len,
			    bf_err *err)
{
	uint64_t store_id = *(const uint64_t *)arg;
	char key[CLUSTER_KEY_MAX], value[24];
	creg r = { 0 };
	bool peer = false;
	int rc;

	(void)len;
	rc = cluster_cached_region(c, region_id, &r, err);
	if (rc)
		return rc;
	for (int i = 0; i < r.npeers; i++)
		peer |= r.peers[i].store_id == store_id;
	if (!peer) {
		rc = bf_errf(err, BF_EINVAL,
			     "cluster %s: store %" PRIu64 " holds no peer of region %" PRIu64,
			     c->name, store_id, region_id);
		goto out;
	}
	/* Leadership moves without an epoch change, as in TiKV. */
	cluster_key(key, c->root, "leader", region_id);
	snprintf(value, sizeof(value), "%" PRIu64, store_id);
	bf_etcd_op put = { .kind = BF_ETCD_OP_PUT, .key = key, .value = value,
			   .value_len = strlen(value) };
	rc = fenced_txn(c, &r, NULL, 0, &put, 1, err);
	if (rc < 0)
		bf_err_prefix(err, rc, "cluster %s: leader transfer of region %" PRIu64, c->name,
			      region_id);
out:
	creg_free(&r);
	return rc;
}

int bf_cluster_transfer_leader(bf_cluster *c, uint64_t region_id, uint64_t store_id, bf_err *err)
{
	return with_one_retry(c, region_id, transfer_attempt, &store_id, sizeof(store_id),
			      "leader transfer", err);
}
