/*
 * The cluster in etcd (cluster/): init's records and its even split, read
 * back independently (metapb and codec, not the cache); lookups from the
 * cache; split and transfer-leader (epochs, ids, a cache stale until it
 * refreshes); what stores tell (learn_*); a refresh that fails while etcd
 * is down and the cache that keeps serving; the watch; readers running
 * while refreshes and learns replace the cache. A real etcd per test.
 */
#include "bfill/cluster.h"
#include "bfill/codec.h"
#include "bfill/etcd.h"
#include "proto/metapb.pb-c.h"
#include "tests/support/etcd.h"
#include "tests/support/support.h"
#include "util/util.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 1000

static t_etcd *etcd_srv;
static bf_etcd *client;

static const char *const addrs[] = { "127.0.0.1:20160", "127.0.0.1:20161", "127.0.0.1:20162" };

static void up(void)
{
	etcd_srv = t_etcd_start(1);
	client = t_etcd_client(etcd_srv, CALL_TIMEOUT_MS);
}

static void down(void)
{
	bf_etcd_destroy(client);
	client = NULL;
	t_etcd_destroy(etcd_srv);
	etcd_srv = NULL;
	t_etcd_stop_all();
}

TestSuite(cluster, .init = up, .fini = down, .timeout = 60);

/* ---- helpers ---------------------------------------------------------- */

static void init_cluster(const char *name, int nstores, int nregions, int replicas, int tables,
			 uint64_t rows)
{
	bf_cluster_init_opts o = { .store_addrs = addrs, .nstores = nstores, .nregions = nregions,
				   .replicas = replicas, .tables = tables, .rows = rows };
	bf_err err;

	cr_assert_eq(bf_cluster_init(client, name, &o, &err), 0, "init %s: %s", name,
		     bf_err_text(&err));
}

static bf_cluster *open_cluster(const char *name, bool watch)
{
	bf_cluster_opts o = { .watch = watch };
	bf_cluster *c = NULL;
	bf_err err;

	cr_assert_eq(bf_cluster_open(client, name, &o, &c, &err), 0, "open %s: %s", name,
		     bf_err_text(&err));
	return c;
}

static size_t record_key(uint8_t *k, int64_t tid, int64_t h)
{
	bf_codec_record_key(k, tid, h);
	return BF_RECORD_KEY_LEN;
}

static bf_region locate(bf_cluster *c, const void *k, size_t klen)
{
	bf_region r;
	bf_err err;

	cr_assert_eq(bf_cluster_locate(c, k, klen, &r, &err), 0, "%s", bf_err_text(&err));
	cr_assert(bf_region_contains(&r, k, klen));
	return r;
}

static bool same_key(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || !memcmp(a, b, alen));
}

/* A region record as etcd holds it, decoded here with metapb and the
 * codec rather than with the cache's own decoder. */
typedef struct raw_region {
	uint64_t id, conf_ver, version, leader;
	uint8_t start[64], end[64];
	size_t start_len, end_len;
	int npeers;
	uint64_t peer_ids[BF_CLUSTER_MAX_REPLICAS], peer_stores[BF_CLUSTER_MAX_REPLICAS];
} raw_region;

static void decode_boundary(const ProtobufCBinaryData *b, uint8_t *out, size_t *len)
{
	size_t used = 0;

	*len = 0;
	if (!b->len)
		return;
	cr_assert_leq(b->len, 64 * 2);
	uint8_t tmp[128];
	cr_assert_eq(bf_codec_get_bytes(b->data, b->len, tmp, len, &used), 0);
	cr_assert_eq(used, b->len, "trailing bytes after an encoded key");
	memcpy(out, tmp, *len);
}

static uint64_t leader_in_etcd(const char *name, uint64_t region_id)
{
	char key[160];
	bf_etcd_range_result res = { 0 };
	bf_err err;
	uint64_t store = 0;

	snprintf(key, sizeof(key), "/bfill/cluster/%s/leader/%020" PRIu64, name, region_id);
	bf_etcd_range_req req = { .key = key };
	cr_assert_eq(bf_etcd_range(client, &req, &res, &err), 0, "%s", bf_err_text(&err));
	if (res.n_kvs == 1)
		cr_assert_eq(bf_parse_u64(res.kvs[0].value, &store), 0);
	bf_etcd_range_result_free(&res);
	return store;
}

/* Every region record of cluster name, in id order; returns how many. */
static size_t raw_regions(const char *name, raw_region *out, size_t max)
{
	char prefix[128], *end = NULL;
	bf_etcd_range_result res = { 0 };
	bf_err err;
	size_t n = 0;

	snprintf(prefix, sizeof(prefix), "/bfill/cluster/%s/region/", name);
	cr_assert_eq(bf_etcd_prefix_end(prefix, &end, &err), 0);
	bf_etcd_range_req req = { .key = prefix, .range_end = end };
	cr_assert_eq(bf_etcd_range(client, &req, &res, &err), 0, "%s", bf_err_text(&err));
	for (size_t i = 0; i < res.n_kvs; i++) {
		Metapb__Region *m = metapb__region__unpack(NULL, res.kvs[i].value_len,
							   (const uint8_t *)res.kvs[i].value);
		raw_region *r = &out[n++];
		cr_assert_leq(n, max);
		cr_assert_not_null(m, "%s is not a metapb.Region", res.kvs[i].key);
		cr_assert_not_null(m->region_epoch);
		memset(r, 0, sizeof(*r));
		r->id = m->id;
		r->conf_ver = m->region_epoch->conf_ver;
		r->version = m->region_epoch->version;
		decode_boundary(&m->start_key, r->start, &r->start_len);
		decode_boundary(&m->end_key, r->end, &r->end_len);
		r->npeers = (int)m->n_peers;
		for (size_t j = 0; j < m->n_peers; j++) {
			r->peer_ids[j] = m->peers[j]->id;
			r->peer_stores[j] = m->peers[j]->store_id;
		}
		metapb__region__free_unpacked(m, NULL);
		r->leader = leader_in_etcd(name, r->id);
		char want[160];
		snprintf(want, sizeof(want), "%s%020" PRIu64, prefix, r->id);
		cr_assert_str_eq(res.kvs[i].key, want);
	}
	bf_etcd_range_result_free(&res);
	free(end);
	return n;
}

static int by_start(const void *x, const void *y)
{
	const raw_region *a = x, *b = y;
	size_t n = a->start_len < b->start_len ? a->start_len : b->start_len;
	int c = n ? memcmp(a->start, b->start, n) : 0;
	return c ? c : (a->start_len > b->start_len) - (a->start_len < b->start_len);
}

/* The regions cover the key space once: sorted, each starts where the
 * previous one ends, the first at "" and the last to "". */
static void assert_tiling(raw_region *r, size_t n)
{
	qsort(r, n, sizeof(*r), by_start);
	cr_assert_eq(r[0].start_len, 0);
	cr_assert_eq(r[n - 1].end_len, 0);
	for (size_t i = 1; i < n; i++)
		cr_assert(same_key(r[i - 1].end, r[i - 1].end_len, r[i].start, r[i].start_len),
			  "region %" PRIu64 " does not start where %" PRIu64 " ends", r[i].id,
			  r[i - 1].id);
}

/* ---- encoding ---------------------------------------------------------- */

Test(cluster, encode_key_is_codec_memcomparable_and_round_trips)
{
	uint64_t seed = 7;
	uint8_t raw[40], enc[64], ref[64], back[64];

	for (size_t len = 0; len <= sizeof(raw); len++) {
		for (int rep = 0; rep < 20; rep++) {
			for (size_t i = 0; i < len; i++)
				raw[i] = (uint8_t)t_xorshift64(&seed);
			size_t n = bf_region_encode_key(enc, raw, len);
			cr_assert_eq(n, (len / 8 + 1) * 9);
			cr_assert_eq(bf_codec_put_bytes(ref, raw, len), n);
			cr_assert(!memcmp(enc, ref, n));
			size_t outlen = 0, used = 0;
			cr_assert_eq(bf_codec_get_bytes(enc, n, back, &outlen, &used), 0);
			cr_assert_eq(used, n);
			cr_assert(same_key(back, outlen, raw, len));
		}
	}
	/* TiKV's examples (components/tikv_util/src/codec/bytes.rs). */
	cr_assert_eq(bf_region_encode_key(enc, "", 0), 9);
	cr_assert(!memcmp(enc, "\0\0\0\0\0\0\0\0\xf7", 9));
	cr_assert_eq(bf_region_encode_key(enc, "abc", 3), 9);
	cr_assert(!memcmp(enc, "abc\0\0\0\0\0\xfa", 9));
	/* Order is kept, a prefix before what extends it. */
	uint8_t a[64], b[64];
	size_t an = bf_region_encode_key(a, "abcdefgh", 8);
	size_t bn = bf_region_encode_key(b, "abcdefgh\0", 9);
	cr_assert_lt(memcmp(a, b, an < bn ? an : bn), 0);
}

Test(cluster, region_helpers)
{
	bf_region r = { .id = 1, .start_len = 1, .end_len = 1, .npeers = 2, .leader_store = 2 };
	r.start[0] = 'b';
	r.end[0] = 'd';
	r.peers[0] = (bf_region_peer){ 1001, 1 };
	r.peers[1] = (bf_region_peer){ 1002, 2 };
	cr_assert(bf_region_contains(&r, "b", 1));
	cr_assert(bf_region_contains(&r, "c\xff", 2));
	cr_assert_not(bf_region_contains(&r, "d", 1));
	cr_assert_not(bf_region_contains(&r, "a\xff", 2));
	cr_assert_eq(bf_region_leader(&r)->id, 1002);
	r.end_len = 0; /* unbounded */
	cr_assert(bf_region_contains(&r, "\xff\xff", 2));
	r.leader_store = 3;
	cr_assert_null(bf_region_leader(&r));
}

/* ---- init --------------------------------------------------------------- */

Test(cluster, init_writes_every_record)
{
	raw_region rs[16];
	int led[4] = { 0 };
	bf_etcd_range_result res = { 0 };
	bf_err err;

	init_cluster("rec", 3, 8, 3, 0, 0);
	size_t n = raw_regions("rec", rs, 16);
	cr_assert_eq(n, 8);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(rs[i].id, i + 1);
		cr_assert_eq(rs[i].conf_ver, 1);
		cr_assert_eq(rs[i].version, 1);
		cr_assert_eq(rs[i].npeers, 3);
		/* Peers round robin over the stores, the first one leads. */
		for (int j = 0; j < 3; j++) {
			cr_assert_eq(rs[i].peer_stores[j], (i + (size_t)j) % 3 + 1);
			cr_assert_eq(rs[i].peer_ids[j], rs[i].id * 1000 + rs[i].peer_stores[j]);
		}
		cr_assert_eq(rs[i].leader, rs[i].peer_stores[0]);
		led[rs[i].leader]++;
	}
	/* Leaders spread: 8 regions over 3 stores, 2 or 3 each. */
	for (int s = 1; s <= 3; s++)
		cr_assert(led[s] == 2 || led[s] == 3, "store %d leads %d regions", s, led[s]);
	assert_tiling(rs, n);

	bf_etcd_range_req meta = { .key = "/bfill/cluster/rec/meta" };
	cr_assert_eq(bf_etcd_range(client, &meta, &res, &err), 0);
	cr_assert_eq(res.n_kvs, 1);
	cJSON *o = t_json_parse(res.kvs[0].value, "meta");
	cr_assert_eq(t_json_num(o, "replicas"), 3);
	const char *uuid = t_json_str(o, "uuid");
	cr_assert(bf_uuid_well_formed(uuid, strlen(uuid)), "%s", uuid);
	cJSON_Delete(o);
	bf_etcd_range_result_free(&res);

	for (int s = 1; s <= 3; s++) {
		char key[64];
		snprintf(key, sizeof(key), "/bfill/cluster/rec/store/%d", s);
		bf_etcd_range_req req = { .key = key };
		cr_assert_eq(bf_etcd_range(client, &req, &res, &err), 0);
		cr_assert_eq(res.n_kvs, 1, "%s", key);
		Metapb__Store *m = metapb__store__unpack(NULL, res.kvs[0].value_len,
							 (const uint8_t *)res.kvs[0].value);
		cr_assert_not_null(m);
		cr_assert_eq(m->id, (uint64_t)s);
		cr_assert_str_eq(m->address, addrs[s - 1]);
		cr_assert_eq(m->state, METAPB__STORE_STATE__Up);
		metapb__store__free_unpacked(m, NULL);
		bf_etcd_range_result_free(&res);
	}
}

Test(cluster, init_splits_rows_evenly)
{
	raw_region rs[8];
	uint8_t k[BF_RECORD_KEY_LEN];

	/* One table of 1000 rows, 5 regions: its indexes, then its rows in
	 * four slices of 250 handles. */
	init_cluster("even", 3, 5, 1, 1, 1000);
	size_t n = raw_regions("even", rs, 8);
	cr_assert_eq(n, 5);
	assert_tiling(rs, n);
	uint8_t rp[BF_RECORD_PREFIX_LEN];
	bf_codec_record_prefix(rp, 100);
	cr_assert(same_key(rs[0].end, rs[0].end_len, rp, sizeof(rp)));
	const int64_t cuts[] = { 251, 501, 751 };
	for (int i = 0; i < 3; i++)
		cr_assert(same_key(rs[i + 2].start, rs[i + 2].start_len, k,
				   record_key(k, 100, cuts[i])), "cut %d", i);

	bf_cluster *c = open_cluster("even", false);
	int per_region[6] = { 0 };
	for (int64_t h = 1; h <= 1000; h++) {
		bf_region r = locate(c, k, record_key(k, 100, h));
		per_region[r.id]++;
	}
	cr_assert_eq(per_region[1], 0, "the index region holds no row");
	for (int id = 2; id <= 5; id++)
		cr_assert_eq(per_region[id], 250, "region %d holds %d rows", id, per_region[id]);
	/* Index keys of table 100 go to the first region. */
	uint8_t ip[BF_INDEX_PREFIX_LEN];
	bf_codec_index_prefix(ip, 100, 1);
	cr_assert_eq(locate(c, ip, sizeof(ip)).id, 1);
	bf_cluster_close(c);
}

Test(cluster, init_spreads_over_several_tables)
{
	raw_region rs[32];
	uint8_t tp[BF_TABLE_PREFIX_LEN], rp[BF_RECORD_PREFIX_LEN];

	/* 11 tables (100..110), 24 regions: 2 each, the first two tables 3. */
	init_cluster("tables", 3, 24, 2, 11, 600);
	size_t n = raw_regions("tables", rs, 32);
	cr_assert_eq(n, 24);
	assert_tiling(rs, n);
	bf_cluster *c = open_cluster("tables", false);
	for (int64_t tid = 100; tid <= 110; tid++) {
		bf_region table_start, rows;
		bf_codec_table_prefix(tp, tid);
		bf_codec_record_prefix(rp, tid);
		table_start = locate(c, tp, sizeof(tp));
		rows = locate(c, rp, sizeof(rp));
		/* Each table's indexes and rows apart, each starting a region
		 * (the first table's indexes share the first region with
		 * everything before it). */
		cr_assert_neq(table_start.id, rows.id, "table %" PRId64, tid);
		cr_assert(same_key(rows.start, rows.start_len, rp, sizeof(rp)));
		if (tid > 100)
			cr_assert(same_key(table_start.start, table_start.start_len, tp, sizeof(tp)));
	}
	uint8_t k[BF_RECORD_KEY_LEN];
	/* Tables 100 and 101 have their rows in two regions, cut at 301. */
	cr_assert_neq(locate(c, k, record_key(k, 101, 300)).id,
		      locate(c, k, record_key(k, 101, 301)).id);
	cr_assert_eq(locate(c, k, record_key(k, 102, 1)).id, locate(c, k, record_key(k, 102, 600)).id);
	bf_cluster_close(c);

	/* Fewer regions than tables: a table each, the last ones sharing. */
	init_cluster("few", 2, 3, 1, 11, 0);
	n = raw_regions("few", rs, 32);
	cr_assert_eq(n, 3);
	assert_tiling(rs, n);
	bf_codec_table_prefix(tp, 101);
	cr_assert(same_key(rs[1].start, rs[1].start_len, tp, sizeof(tp)));
	bf_codec_table_prefix(tp, 102);
	cr_assert(same_key(rs[2].start, rs[2].start_len, tp, sizeof(tp)));
}

Test(cluster, one_region_holds_everything)
{
	init_cluster("one", 1, 1, 1, 0, 0);
	bf_cluster *c = open_cluster("one", false);
	bf_region r = locate(c, "", 0);
	cr_assert_eq(r.start_len + r.end_len, 0);
	cr_assert_eq(locate(c, "\xff\xff\xff", 3).id, r.id);
	bf_cluster_close(c);
}

Test(cluster, second_init_is_refused)
{
	bf_cluster_init_opts o = { .store_addrs = addrs, .nstores = 2, .nregions = 4, .replicas = 1 };
	bf_err err;

	init_cluster("twice", 3, 3, 3, 0, 0);
	bf_cluster *c = open_cluster("twice", false);
	char uuid[BF_UUID_LEN + 1];
	snprintf(uuid, sizeof(uuid), "%s", bf_cluster_uuid(c));
	bf_cluster_close(c);

	cr_assert_eq(bf_cluster_init(client, "twice", &o, &err), BF_EEXIST);
	cr_assert(strstr(err.msg, "cluster twice already exists"), "%s", err.msg);
	/* Nothing of the second init landed. */
	c = open_cluster("twice", false);
	cr_assert_str_eq(bf_cluster_uuid(c), uuid);
	cr_assert_eq(bf_cluster_replicas(c), 3);
	bf_region *rs = NULL;
	size_t n = 0;
	cr_assert_eq(bf_cluster_regions(c, NULL, 0, NULL, 0, &rs, &n, &err), 0);
	cr_assert_eq(n, 3);
	free(rs);
	bf_cluster_close(c);
}

Test(cluster, bad_init_options_are_refused)
{
	const char *bad_addr[] = { "127.0.0.1:20160", "nohost" };
	const char *dup_addr[] = { "127.0.0.1:1", "127.0.0.1:1" };
	struct {
		const char *name;
		bf_cluster_init_opts o;
		const char *says;
	} cases[] = {
		{ "a", { addrs, 3, 2, 4, 0, 0 }, "replicas must be 1..3" },
		{ "a", { addrs, 3, 0, 1, 0, 0 }, "at least one region" },
		{ "a", { addrs, 0, 2, 1, 0, 0 }, "1 to 64 stores" },
		{ "a", { bad_addr, 2, 2, 1, 0, 0 }, "'nohost' is not host:port" },
		{ "a", { dup_addr, 2, 2, 1, 0, 0 }, "both have address" },
		{ "a/b", { addrs, 3, 2, 1, 0, 0 }, "only letters, digits" },
		{ "", { addrs, 3, 2, 1, 0, 0 }, "1 to 63 characters" },
	};
	bf_err err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(bf_cluster_init(client, cases[i].name, &cases[i].o, &err), BF_EINVAL,
			     "case %zu", i);
		cr_assert(strstr(err.msg, cases[i].says), "case %zu: %s", i, err.msg);
	}
	/* More records than etcd takes in one Txn: one clear line. */
	bf_cluster_init_opts big = { addrs, 3, 100, 1, 0, 0 };
	cr_assert_neq(bf_cluster_init(client, "big", &big, &err), 0);
	cr_assert(strstr(err.msg, "--max-txn-ops"), "%s", err.msg);
	cr_assert_null(strchr(err.msg, '\n'));
}

/* ---- open and lookups ------------------------------------------------------ */

Test(cluster, open_missing_cluster_is_not_found)
{
	bf_cluster *c = NULL;
	bf_err err;

	cr_assert_eq(bf_cluster_open(client, "nothere", NULL, &c, &err), BF_ENOTFOUND);
	cr_assert_null(c);
	cr_assert(strstr(err.msg, "cluster nothere does not exist"), "%s", err.msg);
}

Test(cluster, lookups_answer_from_the_cache)
{
	uint8_t k[BF_RECORD_KEY_LEN];
	bf_region r, *rs = NULL;
	bf_cluster_store st, *sts = NULL;
	size_t n = 0;
	bf_err err;

	init_cluster("look", 3, 6, 2, 1, 100);
	bf_cluster *c = open_cluster("look", false);
	cr_assert_str_eq(bf_cluster_name(c), "look");
	cr_assert_str_eq(bf_cluster_root(c), "/bfill/cluster/look/");
	cr_assert_eq(bf_cluster_replicas(c), 2);
	cr_assert_eq(bf_cluster_etcd(c), client);

	r = locate(c, k, record_key(k, 100, 50));
	cr_assert_eq(r.npeers, 2);
	cr_assert_not_null(bf_region_leader(&r));
	cr_assert_eq(bf_region_leader(&r)->store_id, r.peers[0].store_id);
	bf_region again;
	cr_assert_eq(bf_cluster_region(c, r.id, &again, &err), 0);
	cr_assert(same_key(again.start, again.start_len, r.start, r.start_len));
	cr_assert_eq(bf_cluster_region(c, 99, &again, &err), BF_ENOTFOUND);

	/* Rows 1..100 of table 100: regions 2..6. */
	uint8_t lo[BF_RECORD_KEY_LEN], hi[BF_RECORD_KEY_LEN];
	record_key(lo, 100, 1);
	record_key(hi, 100, 101);
	cr_assert_eq(bf_cluster_regions(c, lo, sizeof(lo), hi, sizeof(hi), &rs, &n, &err), 0);
	cr_assert_eq(n, 5);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(rs[i].id, i + 2);
	free(rs);
	cr_assert_eq(bf_cluster_regions(c, NULL, 0, NULL, 0, &rs, &n, &err), 0);
	cr_assert_eq(n, 6);
	free(rs);
	/* An empty range in the middle of a region still names it. */
	cr_assert_eq(bf_cluster_regions(c, lo, sizeof(lo), lo, sizeof(lo), &rs, &n, &err), 0);
	cr_assert_eq(n, 1);
	free(rs);

	cr_assert_eq(bf_cluster_store_get(c, 2, &st, &err), 0);
	cr_assert_str_eq(st.address, addrs[1]);
	cr_assert_eq(st.state, 0);
	cr_assert_eq(bf_cluster_store_get(c, 9, &st, &err), BF_ENOTFOUND);
	cr_assert(strstr(err.msg, "no store 9"), "%s", err.msg);
	cr_assert_eq(bf_cluster_stores(c, &sts, &n, &err), 0);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(sts[i].id, i + 1);
	free(sts);
	bf_cluster_close(c);
}

/* ---- split and transfer-leader ----------------------------------------- */

Test(cluster, split_bumps_versions_and_the_cache_sees_it_after_a_refresh)
{
	uint8_t k[BF_RECORD_KEY_LEN], at[BF_RECORD_KEY_LEN];
	bf_err err;

	/* Regions: 1 indexes, 2 rows 1..500, 3 rows from 501. */
	init_cluster("split", 3, 3, 3, 1, 1000);
	bf_cluster *admin = open_cluster("split", false);
	bf_cluster *c = open_cluster("split", false);
	bf_region before = locate(c, k, record_key(k, 100, 300));
	cr_assert_eq(before.id, 2);

	record_key(at, 100, 300);
	cr_assert_eq(bf_cluster_split(admin, 3, at, sizeof(at), &err), BF_EINVAL,
		     "region 3 does not hold handle 300");
	cr_assert(strstr(err.msg, "not strictly inside region 3"), "%s", err.msg);
	cr_assert_eq(bf_cluster_split(admin, 2, before.start, before.start_len, &err), BF_EINVAL);
	cr_assert_eq(bf_cluster_split(admin, 2, before.end, before.end_len, &err), BF_EINVAL);
	record_key(at, 100, 200);
	cr_assert_eq(bf_cluster_split(admin, 2, at, sizeof(at), &err), 0, "%s", bf_err_text(&err));

	/* The cache is stale until it refreshes. */
	bf_region stale = locate(c, k, record_key(k, 100, 300));
	cr_assert_eq(stale.id, 2);
	cr_assert_eq(stale.version, 1);
	cr_assert_eq(bf_cluster_refresh(c, &err), 0, "%s", bf_err_text(&err));

	bf_region left = locate(c, k, record_key(k, 100, 199));
	bf_region right = locate(c, k, record_key(k, 100, 200));
	cr_assert_eq(left.id, 2);
	cr_assert_eq(right.id, 4, "the right part takes the next id");
	cr_assert_eq(left.version, 2);
	cr_assert_eq(right.version, 2);
	cr_assert_eq(left.conf_ver, 1);
	cr_assert_eq(right.conf_ver, 1);
	cr_assert(same_key(left.start, left.start_len, before.start, before.start_len));
	cr_assert(same_key(left.end, left.end_len, at, sizeof(at)));
	cr_assert(same_key(right.start, right.start_len, at, sizeof(at)));
	cr_assert(same_key(right.end, right.end_len, before.end, before.end_len));
	cr_assert_eq(right.npeers, before.npeers);
	for (int i = 0; i < right.npeers; i++) {
		cr_assert_eq(right.peers[i].store_id, before.peers[i].store_id);
		cr_assert_eq(right.peers[i].id, 4000 + right.peers[i].store_id);
	}
	cr_assert_eq(right.leader_store, before.leader_store);
	cr_assert_eq(locate(c, k, record_key(k, 100, 300)).id, 4);

	/* The admin handle's cache still holds region 2 as it was: its next
	 * split of it is fenced out by the mod revision, refreshes, and
	 * succeeds on the second try. */
	record_key(at, 100, 100);
	cr_assert_eq(bf_cluster_split(admin, 2, at, sizeof(at), &err), 0, "%s", bf_err_text(&err));
	record_key(at, 100, 400);
	cr_assert_eq(bf_cluster_split(c, 4, at, sizeof(at), &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_cluster_refresh(c, &err), 0);
	bf_region r;
	r = locate(c, k, record_key(k, 100, 50));
	cr_assert(r.id == 2 && r.version == 3, "region %" PRIu64 " v%" PRIu64, r.id, r.version);
	r = locate(c, k, record_key(k, 100, 150));
	cr_assert(r.id == 5 && r.version == 3, "region %" PRIu64 " v%" PRIu64, r.id, r.version);
	r = locate(c, k, record_key(k, 100, 300));
	cr_assert(r.id == 4 && r.version == 3, "region %" PRIu64 " v%" PRIu64, r.id, r.version);
	r = locate(c, k, record_key(k, 100, 450));
	cr_assert(r.id == 6 && r.version == 3, "region %" PRIu64 " v%" PRIu64, r.id, r.version);
	raw_region rs[8];
	size_t n = raw_regions("split", rs, 8);
	cr_assert_eq(n, 6);
	assert_tiling(rs, n);
	bf_cluster_close(admin);
	bf_cluster_close(c);
}

Test(cluster, transfer_leader_moves_leadership_only)
{
	uint8_t k[BF_RECORD_KEY_LEN];
	bf_err err;

	init_cluster("tl", 3, 4, 2, 1, 100);
	bf_cluster *c = open_cluster("tl", false);
	bf_region r = locate(c, k, record_key(k, 100, 10));
	uint64_t follower = r.peers[1].store_id, outsider = 6 - r.peers[0].store_id - follower;

	cr_assert_eq(bf_cluster_transfer_leader(c, r.id, outsider, &err), BF_EINVAL);
	cr_assert(strstr(err.msg, "holds no peer of region"), "%s", err.msg);
	cr_assert_eq(bf_cluster_transfer_leader(c, 77, follower, &err), BF_ENOTFOUND);
	cr_assert_eq(bf_cluster_transfer_leader(c, r.id, follower, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(leader_in_etcd("tl", r.id), follower);
	cr_assert_eq(locate(c, k, record_key(k, 100, 10)).leader_store, r.leader_store,
		     "stale until refreshed");
	cr_assert_eq(bf_cluster_refresh(c, &err), 0);
	bf_region now = locate(c, k, record_key(k, 100, 10));
	cr_assert_eq(now.leader_store, follower);
	cr_assert_eq(bf_region_leader(&now)->id, now.peers[1].id);
	cr_assert_eq(now.version, r.version);
	cr_assert_eq(now.conf_ver, r.conf_ver);
	bf_cluster_close(c);
}

/* ---- learning from stores ------------------------------------------------ */

Test(cluster, learn_regions_takes_newer_epochs_and_drops_what_they_cover)
{
	uint8_t k[BF_RECORD_KEY_LEN], at[BF_RECORD_KEY_LEN];
	bf_err err;

	init_cluster("learn", 3, 3, 3, 1, 1000);
	bf_cluster *admin = open_cluster("learn", false);
	bf_cluster *c = open_cluster("learn", false);
	record_key(at, 100, 250);
	cr_assert_eq(bf_cluster_split(admin, 2, at, sizeof(at), &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_cluster_refresh(admin, &err), 0);
	bf_region cur[2];
	cur[0] = locate(admin, k, record_key(k, 100, 100));
	cur[1] = locate(admin, k, record_key(k, 100, 300));
	bf_region old = locate(c, k, record_key(k, 100, 300));

	/* etcd is gone: what c learns comes from the store alone. */
	t_etcd_kill(etcd_srv, 0);
	/* An answer about an older epoch changes nothing. */
	bf_cluster_learn_regions(c, &old, 1);
	cr_assert_eq(locate(c, k, record_key(k, 100, 300)).version, 1);

	/* Only the right part: it replaces the region it overlaps, and the
	 * keys left uncovered are not found until more is learned. */
	bf_cluster_learn_regions(c, &cur[1], 1);
	bf_region r = locate(c, k, record_key(k, 100, 300));
	cr_assert_eq(r.id, cur[1].id);
	cr_assert_eq(r.version, 2);
	cr_assert_eq(r.leader_store, cur[1].leader_store);
	cr_assert_eq(bf_cluster_locate(c, k, record_key(k, 100, 100), &r, &err), BF_ENOTFOUND);
	cr_assert(strstr(err.msg, "no cached region holds key"), "%s", err.msg);
	bf_cluster_learn_regions(c, cur, 2);
	r = locate(c, k, record_key(k, 100, 100));
	cr_assert_eq(r.id, 2);
	cr_assert_eq(r.version, 2);
	/* The old whole region, learned again, is older than both parts. */
	bf_cluster_learn_regions(c, &old, 1);
	cr_assert_eq(locate(c, k, record_key(k, 100, 100)).version, 2);
	cr_assert_eq(locate(c, k, record_key(k, 100, 300)).id, cur[1].id);
	/* A region learned without a leader keeps the one the cache knew. */
	bf_region noleader = cur[0];
	noleader.version = 3;
	noleader.leader_store = 0;
	bf_cluster_learn_regions(c, &noleader, 1);
	r = locate(c, k, record_key(k, 100, 100));
	cr_assert_eq(r.version, 3);
	cr_assert_eq(r.leader_store, cur[0].leader_store);
	/* A conf_ver bump alone is newer too. */
	noleader.conf_ver = 2;
	bf_cluster_learn_regions(c, &noleader, 1);
	cr_assert_eq(locate(c, k, record_key(k, 100, 100)).conf_ver, 2);
	bf_cluster_close(admin);
	bf_cluster_close(c);
}

Test(cluster, learn_leader_follows_the_hint_for_peers_only)
{
	uint8_t k[BF_RECORD_KEY_LEN];

	init_cluster("hint", 3, 2, 2, 1, 10);
	bf_cluster *c = open_cluster("hint", false);
	bf_region r = locate(c, k, record_key(k, 100, 5));
	uint64_t follower = r.peers[1].store_id;
	uint64_t outsider = 6 - r.peers[0].store_id - follower;

	t_etcd_kill(etcd_srv, 0);
	bf_cluster_learn_leader(c, r.id, follower);
	cr_assert_eq(locate(c, k, record_key(k, 100, 5)).leader_store, follower);
	bf_cluster_learn_leader(c, r.id, outsider);
	cr_assert_eq(locate(c, k, record_key(k, 100, 5)).leader_store, follower);
	bf_cluster_learn_leader(c, 999, follower); /* unknown region: ignored */
	cr_assert_eq(locate(c, k, record_key(k, 100, 5)).version, r.version);
	bf_cluster_close(c);
}

/* ---- etcd away, the watch ------------------------------------------------ */

Test(cluster, a_failed_refresh_keeps_the_cache)
{
	uint8_t k[BF_RECORD_KEY_LEN];
	bf_err err;

	init_cluster("down", 3, 4, 3, 1, 100);
	bf_cluster *c = open_cluster("down", false);
	bf_region before = locate(c, k, record_key(k, 100, 42));
	t_etcd_kill(etcd_srv, 0);
	int64_t t0 = bf_now_ms();
	int rc = bf_cluster_refresh(c, &err);
	cr_assert(rc == BF_EUNAVAIL || rc == BF_ETIMEDOUT, "refresh: %d %s", rc, bf_err_text(&err));
	cr_assert_leq(bf_now_ms() - t0, 3 * CALL_TIMEOUT_MS, "the etcd deadline bounds it");
	cr_assert(strstr(err.msg, "refresh (the cache keeps what it had)"), "%s", err.msg);
	cr_assert_null(strchr(err.msg, '\n'));
	bf_region after = locate(c, k, record_key(k, 100, 42));
	cr_assert_eq(after.id, before.id);
	cr_assert_eq(after.version, before.version);
	bf_cluster_store st;
	cr_assert_eq(bf_cluster_store_get(c, 1, &st, &err), 0);
	bf_cluster_close(c);
}

/* Polls until handle c sees region id at `version`, up to ms. */
static bool sees_version(bf_cluster *c, uint64_t id, uint64_t version, int64_t ms)
{
	int64_t until = bf_now_ms() + ms;
	bf_region r;

	do {
		if (bf_cluster_region(c, id, &r, NULL) == 0 && r.version == version)
			return true;
		bf_sleep_ms(20);
	} while (bf_now_ms() < until);
	return false;
}

Test(cluster, the_watch_picks_up_a_split_and_outlives_etcd)
{
	uint8_t at[BF_RECORD_KEY_LEN];
	bf_err err;

	init_cluster("watch", 3, 3, 3, 1, 1000);
	bf_cluster *c = open_cluster("watch", true);
	bf_cluster *admin = open_cluster("watch", false);
	/* Records under the root that are not the layout (a job's) are left
	 * to their owners by loads and by the watch. */
	cr_assert_eq(bf_etcd_put(client, "/bfill/cluster/watch/job/1", "{}", 2, 0, NULL, &err), 0);
	record_key(at, 100, 100);
	cr_assert_eq(bf_cluster_split(admin, 2, at, sizeof(at), &err), 0, "%s", bf_err_text(&err));
	cr_assert(sees_version(c, 2, 2, 5000), "the watch did not bring the split in");
	cr_assert(sees_version(c, 4, 2, 100));

	/* etcd down: the cache keeps serving; back up, the watch resumes. */
	t_etcd_kill(etcd_srv, 0);
	bf_sleep_ms(500);
	cr_assert(sees_version(c, 4, 2, 100));
	t_etcd_restart(etcd_srv, 0);
	record_key(at, 100, 200);
	/* The admin's own connection may take a moment to come back. */
	int rc;
	for (int64_t until = bf_now_ms() + 5000;
	     (rc = bf_cluster_split(admin, 4, at, sizeof(at), &err)) == BF_EUNAVAIL &&
	     bf_now_ms() < until;)
		bf_sleep_ms(100);
	cr_assert_eq(rc, 0, "%s", bf_err_text(&err));
	cr_assert(sees_version(c, 5, 3, 8000), "the watch did not come back after etcd did");
	bf_cluster_close(admin);
	int64_t t0 = bf_now_ms();
	bf_cluster_close(c);
	cr_assert_leq(bf_now_ms() - t0, 2 * CALL_TIMEOUT_MS, "closing waits for the watch");
}

/* ---- readers during refreshes -------------------------------------------- */

#define READERS 4

typedef struct reader_arg {
	bf_cluster *c;
	atomic_bool *stop;
	long lookups, whole, split; /* answers of each layout */
	char failure[256];
} reader_arg;

/*
 * Every answer must be one of the two layouts the writer flips between:
 * region 2 whole (version 1) or split at handle 500 into 2 and 4
 * (version 2); never a mix, never a region that does not hold the key.
 */
static void *reader_main(void *p)
{
	reader_arg *a = p;
	uint64_t seed = (uint64_t)(uintptr_t)p;
	uint8_t k[BF_RECORD_KEY_LEN];
	bf_region r;
	bf_err err;

	while (!atomic_load(a->stop) && !a->failure[0]) {
		int64_t h = 1 + (int64_t)(t_xorshift64(&seed) % 999);
		record_key(k, 100, h);
		if (bf_cluster_locate(a->c, k, sizeof(k), &r, &err)) {
			snprintf(a->failure, sizeof(a->failure), "handle %" PRId64 ": %s", h, err.msg);
			break;
		}
		bool whole = r.id == 2 && r.version == 1;
		bool left = r.id == 2 && r.version == 2 && h < 500;
		bool right = r.id == 4 && r.version == 2 && h >= 500;
		if (!bf_region_contains(&r, k, sizeof(k)) || !(whole || left || right))
			snprintf(a->failure, sizeof(a->failure),
				 "handle %" PRId64 ": region %" PRIu64 " version %" PRIu64, h, r.id,
				 r.version);
		a->lookups++;
		a->whole += whole;
		a->split += !whole;
	}
	return NULL;
}

Test(cluster, readers_see_one_whole_layout_while_it_is_replaced)
{
	uint8_t at[BF_RECORD_KEY_LEN];
	pthread_t th[READERS];
	reader_arg args[READERS];
	atomic_bool stop;
	bf_err err;

	/* Region 2 = table 100's rows; its split parts are learned, its
	 * whole form comes back with each refresh. */
	init_cluster("race", 3, 2, 3, 1, 1000);
	bf_cluster *c = open_cluster("race", false);
	bf_region whole, parts[2];
	cr_assert_eq(bf_cluster_region(c, 2, &whole, &err), 0);
	record_key(at, 100, 500);
	parts[0] = whole;
	parts[0].version = 2;
	parts[0].end_len = sizeof(at);
	memcpy(parts[0].end, at, sizeof(at));
	parts[1] = whole;
	parts[1].id = 4;
	parts[1].version = 2;
	parts[1].start_len = sizeof(at);
	memcpy(parts[1].start, at, sizeof(at));

	atomic_init(&stop, false);
	for (int i = 0; i < READERS; i++) {
		args[i] = (reader_arg){ .c = c, .stop = &stop };
		cr_assert_eq(pthread_create(&th[i], NULL, reader_main, &args[i]), 0);
	}
	int refreshes = 0;
	for (int64_t until = bf_now_ms() + 1500; bf_now_ms() < until;) {
		bf_cluster_learn_regions(c, parts, 2);
		bf_cluster_learn_leader(c, 4, parts[1].peers[1].store_id);
		cr_assert_eq(bf_cluster_refresh(c, &err), 0, "%s", bf_err_text(&err));
		refreshes++;
	}
	atomic_store(&stop, true);
	long lookups = 0, n_whole = 0, n_split = 0;
	for (int i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].failure[0], '\0', "reader %d: %s", i, args[i].failure);
		lookups += args[i].lookups;
		n_whole += args[i].whole;
		n_split += args[i].split;
	}
	cr_assert_gt(refreshes, 5);
	cr_assert_gt(lookups, 1000);
	cr_assert(n_whole > 0 && n_split > 0, "readers saw %ld whole, %ld split", n_whole, n_split);
	bf_cluster_close(c);
}
