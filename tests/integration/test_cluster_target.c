/*
 * The cluster as an import target (ingest/target_cluster.c) against real
 * processes: a real etcd and three bfill-store processes, three replicas.
 * Files written with the SST writer go in through bf_target_ingest, and
 * every replica is read back from its own store. Region errors the client
 * must get over: NotLeader after a leader transfer, EpochNotMatch after a
 * split, ServerIsBusy twice; a store SIGKILLed and restarted in the middle
 * of an ingest; etcd stopped (the ingest goes on from the cache and what
 * the stores tell); a stale fence token; a store that stays down. Then
 * exists, scan and delete_range across regions.
 */
#include "bfill/cluster.h"
#include "bfill/codec.h"
#include "bfill/etcd.h"
#include "bfill/fault.h"
#include "bfill/sst.h"
#include "bfill/target.h"
#include "ingest/tikv_client.h"
#include "tests/support/etcd.h"
#include "tests/support/stores.h"
#include "tests/support/support.h"
#include "tests/support/tikv.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE 100

static t_etcd *etcd;
static bf_etcd *tclient;     /* the target's own etcd client */
static bf_cluster *tcluster; /* and its cache, with no watch: it goes stale */
static bf_target *target;
static char trace_path[512];

static void down(void)
{
	bf_target_destroy(target);
	target = NULL;
	bf_cluster_close(tcluster);
	tcluster = NULL;
	bf_etcd_destroy(tclient);
	tclient = NULL;
	bf_fault_reset();
	unsetenv("BFILL_TRACE");
	t_tikv_close();
	t_stores_stop_all();
	t_etcd_stop_all();
	etcd = NULL;
	t_scratch_remove();
}

TestSuite(cluster_target, .fini = down, .timeout = 180);

/* Options the tests start from: short waits, small pages and batches so
 * that paging and batching are exercised. */
static bf_target_cluster_opts test_opts(void)
{
	bf_target_cluster_opts o = {
		.concurrency = 3,
		.batch_bytes = 64 << 10,
		.total_timeout_ms = 60000,
		.rpc_timeout_ms = 10000,
		.backoff_base_ms = 20,
		.backoff_cap_ms = 500,
		.scan_page_keys = 1000,
	};
	return o;
}

/* A target over cluster `name`, with a cache of its own. */
static void open_target(const char *name, bf_target_cluster_opts o)
{
	char work[512];
	bf_err err;

	tclient = t_etcd_client(etcd, 1000);
	cr_assert_eq(bf_cluster_open(tclient, name, NULL, &tcluster, &err), 0, "%s",
		     bf_err_text(&err));
	snprintf(work, sizeof(work), "%s/work", t_scratch_dir);
	o.work_dir = work;
	cr_assert_eq(bf_target_cluster_create(tcluster, &o, &target, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_str_eq(bf_target_kind(target), "cluster");
}

/*
 * etcd, three stores serving `name` with nregions regions (one for table
 * 100's indexes, the rest cut its handles 1..100000 evenly), three
 * replicas; the trace goes to the scratch directory.
 */
static t_stores *start(const char *name, int nregions)
{
	t_stores_opts so = { .nstores = 3, .nregions = nregions, .replicas = 3 };
	t_stores *s;

	t_scratch_new(name);
	etcd = t_etcd_start(1);
	s = t_stores_start(etcd, name, &so);
	snprintf(trace_path, sizeof(trace_path), "%s/trace", t_scratch_dir);
	setenv("BFILL_TRACE", trace_path, 1);
	return s;
}

static size_t record_key(uint8_t *k, int64_t h)
{
	bf_codec_record_key(k, TABLE, h);
	return BF_RECORD_KEY_LEN;
}

static void value_of(const char *tag, int64_t h, char *v, size_t n)
{
	snprintf(v, n, "%s-%" PRId64, tag, h);
}

/* SST files of table 100's records with handles [from, to), values
 * "<tag>-<h>", cut into nfiles of equal spans; the paths are malloc'd. */
static char **write_ssts(int64_t from, int64_t to, int nfiles, const char *tag)
{
	static int seq;
	char **paths = calloc((size_t)nfiles, sizeof(*paths));
	int64_t step = (to - from + nfiles - 1) / nfiles;

	cr_assert_not_null(paths);
	for (int f = 0; f < nfiles; f++) {
		bf_sst_writer *w = NULL;
		bf_err err;
		cr_assert_geq(asprintf(&paths[f], "%s/in-%d.sst", t_scratch_dir, seq++), 0);
		cr_assert_eq(bf_sst_writer_open(paths[f], BF_COMPRESS_NONE, 0, &w, &err), 0, "%s",
			     err.msg);
		for (int64_t h = from + f * step; h < to && h < from + (f + 1) * step; h++) {
			uint8_t k[BF_RECORD_KEY_LEN];
			char v[64];
			value_of(tag, h, v, sizeof(v));
			cr_assert_eq(bf_sst_writer_put(w, k, record_key(k, h), v, strlen(v), &err), 0);
		}
		cr_assert_eq(bf_sst_writer_finish(w, NULL, &err), 0);
		bf_sst_writer_destroy(w);
	}
	return paths;
}

static void free_paths(char **paths, int n)
{
	for (int i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* Ingests records [from, to) with tag in nfiles files under token. */
static int ingest_records(int64_t from, int64_t to, int nfiles, const char *tag,
			  const bf_fence_token *token, bf_err *err)
{
	char **paths = write_ssts(from, to, nfiles, tag);
	int rc = bf_target_ingest(target, (const char *const *)paths, (size_t)nfiles, token, err);
	free_paths(paths, nfiles);
	return rc;
}

/* The retries the last cluster ingest reported in the trace. */
static long last_ingest_retries(void)
{
	char *text = t_read_file(trace_path), *at = NULL, *p = text;
	long retries = -1;

	while ((p = strstr(p, " ingest files=")) != NULL)
		at = p++;
	cr_assert_not_null(at, "no ingest in the trace: %s", text);
	at = strstr(at, "retries=");
	cr_assert_not_null(at);
	retries = strtol(at + strlen("retries="), NULL, 10);
	free(text);
	return retries;
}

/* Where a replica check stands: the next record expected on one store. */
typedef struct replica_walk {
	int store;
	int64_t from, to, want;
	const char *tag;
} replica_walk;

static void check_pair(void *arg, const uint8_t *key, size_t klen, const uint8_t *value,
		       size_t vlen)
{
	replica_walk *w = arg;
	int64_t tid = 0, h = 0;
	char v[64];

	if (bf_codec_decode_record_key(key, klen, &tid, &h) || tid != TABLE || h < w->from ||
	    h >= w->to)
		return;
	cr_assert_eq(h, w->want, "store %d: record %" PRId64 " where %" PRId64 " should be",
		     w->store, h, w->want);
	value_of(w->tag, h, v, sizeof(v));
	cr_assert(vlen == strlen(v) && !memcmp(value, v, vlen),
		  "store %d: record %" PRId64 " has %.*s, not %s", w->store, h, (int)vlen, value, v);
	w->want++;
}

/*
 * Every store (each holds a replica of every region) has exactly the
 * records [from, to) with values tag, read from the store itself, region
 * by region as the test's own cache has them.
 */
static void check_replicas(t_stores *s, int64_t from, int64_t to, const char *tag)
{
	uint8_t lo[BF_RECORD_KEY_LEN], hi[BF_RECORD_KEY_LEN];
	bf_region *regions = NULL;
	size_t n = 0;
	bf_err err;

	record_key(lo, from);
	record_key(hi, to);
	cr_assert_eq(bf_cluster_regions(t_stores_cluster(s), lo, sizeof(lo), hi, sizeof(hi),
					 &regions, &n, &err), 0, "%s", bf_err_text(&err));
	for (int id = 1; id <= 3; id++) {
		replica_walk w = { .store = id, .from = from, .to = to, .want = from, .tag = tag };
		for (size_t i = 0; i < n; i++) {
			t_ctx ctx = t_stores_ctx(&regions[i]);
			t_tikv_each(t_stores_channel(s, id), &ctx, check_pair, &w);
		}
		cr_assert_eq(w.want, to, "store %d has records %" PRId64 "..%" PRId64 " only", id,
			     from, w.want);
	}
	free(regions);
}

/* The target's scan of records [from, to) sees exactly them, tag's. */
static void check_scan(int64_t from, int64_t to, const char *tag)
{
	uint8_t lo[BF_RECORD_KEY_LEN], hi[BF_RECORD_KEY_LEN];
	bf_scan_opts so = { .fill_cache = false };
	bf_target_iter *it = NULL;
	int64_t want = from;
	bf_err err;

	record_key(lo, from);
	record_key(hi, to);
	cr_assert_eq(bf_target_scan(target, lo, sizeof(lo), hi, sizeof(hi), &so, &it, &err), 0,
		     "%s", bf_err_text(&err));
	for (; bf_target_iter_valid(it); bf_target_iter_next(it), want++) {
		size_t kl, vl;
		const uint8_t *k = bf_target_iter_key(it, &kl), *v = bf_target_iter_value(it, &vl);
		int64_t h = 0;
		char expect[64];
		cr_assert_eq(bf_codec_decode_record_key(k, kl, NULL, &h), 0);
		cr_assert_eq(h, want);
		value_of(tag, h, expect, sizeof(expect));
		cr_assert(vl == strlen(expect) && !memcmp(v, expect, vl), "record %" PRId64, h);
	}
	cr_assert_eq(bf_target_iter_status(it, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(want, to, "the scan ended at %" PRId64, want);
	bf_target_iter_destroy(it);
}

/* The region holding record h, as the test's cache has it. */
static bf_region region_of(t_stores *s, int64_t h)
{
	uint8_t k[BF_RECORD_KEY_LEN];
	return t_stores_locate(s, k, record_key(k, h));
}

/* ---- the data lands everywhere, and reads go by region ---- */

Test(cluster_target, every_replica_gets_the_data_and_reads_go_region_by_region)
{
	t_stores *s = start("ct-basic", 4);
	bf_target_stats st;
	bf_err err;

	open_target("ct-basic", test_opts());
	cr_assert_neq(region_of(s, 1).id, region_of(s, 59999).id, "the data spans regions");
	cr_assert_eq(ingest_records(1, 60000, 4, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	bf_target_stats_get(target, &st);
	cr_assert_eq(st.ingests, 1);
	cr_assert_eq(st.ingested_files, 4);
	check_replicas(s, 1, 60000, "v");
	check_scan(1, 60000, "v");
	/* Ingesting the same keys again is harmless. */
	cr_assert_eq(ingest_records(1, 60000, 2, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	check_replicas(s, 1, 60000, "v");

	/* Split points are the region boundaries inside the range. */
	uint8_t lo[BF_RECORD_KEY_LEN], hi[BF_RECORD_KEY_LEN];
	bf_keys cuts;
	record_key(lo, 1);
	record_key(hi, 100001);
	cr_assert_eq(bf_target_split_points(target, lo, sizeof(lo), hi, sizeof(hi), &cuts, &err), 0);
	cr_assert_eq(cuts.n, 2, "three record regions, two cuts");
	for (size_t i = 0; i < cuts.n; i++) {
		bf_region r = t_stores_locate(s, cuts.keys[i], cuts.lens[i]);
		cr_assert_eq(r.start_len, cuts.lens[i]);
		cr_assert_eq(memcmp(r.start, cuts.keys[i], cuts.lens[i]), 0);
	}
	bf_keys_free(&cuts);

	/* The last key of a range across regions (a one-pair reverse scan). */
	bf_target_iter *it = NULL;
	size_t kl;
	int64_t h = 0;
	cr_assert_eq(bf_target_scan(target, lo, sizeof(lo), hi, sizeof(hi), NULL, &it, &err), 0);
	bf_target_iter_seek_last(it);
	cr_assert(bf_target_iter_valid(it), "%s", bf_err_text(&err));
	const uint8_t *last = bf_target_iter_key(it, &kl);
	cr_assert_eq(bf_codec_decode_record_key(last, kl, NULL, &h), 0);
	cr_assert_eq(h, 59999);
	bf_target_iter_next(it);
	cr_assert_not(bf_target_iter_valid(it));
	cr_assert_eq(bf_target_iter_status(it, &err), 0);
	bf_target_iter_destroy(it);
	/* Past the data: nothing. */
	record_key(lo, 70000);
	cr_assert_eq(bf_target_scan(target, lo, sizeof(lo), hi, sizeof(hi), NULL, &it, &err), 0);
	cr_assert_not(bf_target_iter_valid(it));
	bf_target_iter_seek_last(it);
	cr_assert_not(bf_target_iter_valid(it));
	bf_target_iter_destroy(it);

	/* exists, across regions: the same value, another one, none. */
	uint8_t keys[5][BF_RECORD_KEY_LEN];
	char vals[5][64];
	int64_t handles[5] = { 5, 33000, 40000, 59999, 70000 };
	bf_probe probes[5];
	for (int i = 0; i < 5; i++) {
		value_of(i == 2 ? "other" : "v", handles[i], vals[i], sizeof(vals[i]));
		probes[i] = (bf_probe){ .key = keys[i], .klen = record_key(keys[i], handles[i]),
					.expect = (const uint8_t *)vals[i],
					.expect_len = strlen(vals[i]) };
	}
	cr_assert_eq(bf_target_exists(target, probes, 5, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(probes[0].result, BF_PROBE_SAME);
	cr_assert_eq(probes[1].result, BF_PROBE_SAME);
	cr_assert_eq(probes[2].result, BF_PROBE_DIFFERENT);
	cr_assert_eq(probes[3].result, BF_PROBE_SAME);
	cr_assert_eq(probes[4].result, BF_PROBE_ABSENT);
	bf_target_stats_get(target, &st);
	cr_assert_eq(st.probes, 5);

	/* delete_range across a region boundary, on every replica. */
	record_key(lo, 30000);
	record_key(hi, 40000);
	cr_assert_eq(bf_target_delete_range(target, lo, sizeof(lo), hi, sizeof(hi), &err), 0, "%s",
		     bf_err_text(&err));
	check_replicas(s, 1, 30000, "v");
	check_replicas(s, 40000, 60000, "v");
	check_replicas(s, 30000, 30000, "v"); /* nothing left in between: */
	check_scan(40000, 60000, "v");
	record_key(lo, 30000);
	cr_assert_eq(bf_target_scan(target, lo, sizeof(lo), hi, sizeof(hi), NULL, &it, &err), 0);
	cr_assert_not(bf_target_iter_valid(it), "the deleted range is empty");
	bf_target_iter_destroy(it);
}

/* The reverse scan the target's seek_last uses, straight from a node. */
Test(cluster_target, a_reverse_scan_reads_down_from_its_start_key)
{
	t_stores *s = start("ct-reverse", 2);
	bf_tikv_client *c = NULL;
	bf_tikv_pairs *pairs = NULL;
	bf_tikv_error re;
	uint8_t lo[BF_RECORD_KEY_LEN], hi[BF_RECORD_KEY_LEN];
	bf_err err;
	size_t kl;
	int64_t h;

	open_target("ct-reverse", test_opts());
	cr_assert_eq(ingest_records(1, 100, 1, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	bf_region r = region_of(s, 1);
	cr_assert_eq(bf_tikv_client_create(tcluster, 5000, NULL, &c, &err), 0);
	record_key(lo, 10);
	record_key(hi, 50);
	cr_assert_eq(bf_tikv_scan(c, &r, 0, hi, sizeof(hi), lo, sizeof(lo), 3, true, &pairs, &re, &err),
		     0, "%s", bf_err_text(&err));
	cr_assert_eq(re.kind, BF_TIKV_OK);
	cr_assert_eq(bf_tikv_pairs_count(pairs), 3);
	for (size_t i = 0; i < 3; i++) {
		const uint8_t *k = bf_tikv_pairs_key(pairs, i, &kl);
		cr_assert_eq(bf_codec_decode_record_key(k, kl, NULL, &h), 0);
		cr_assert_eq(h, 49 - (int64_t)i, "largest first, below the exclusive start key");
	}
	bf_tikv_pairs_free(pairs);
	/* The lower bound is inclusive; empty bounds are the region's. */
	record_key(lo, 99);
	cr_assert_eq(bf_tikv_scan(c, &r, 0, NULL, 0, lo, sizeof(lo), 10, true, &pairs, &re, &err), 0);
	cr_assert_eq(bf_tikv_pairs_count(pairs), 1);
	bf_tikv_pairs_free(pairs);
	bf_tikv_client_destroy(c);
}

/* ---- region errors ---- */

Test(cluster_target, not_leader_after_a_transfer_ingests_on_the_new_leader)
{
	t_stores *s = start("ct-leader", 2);
	bf_region r = region_of(s, 1);
	uint64_t old = r.leader_store, next = old % 3 + 1;
	bf_err err;

	open_target("ct-leader", test_opts());
	cr_assert_eq(bf_cluster_transfer_leader(t_stores_cluster(s), r.id, next, &err), 0, "%s",
		     bf_err_text(&err));
	t_stores_wait_region(s, r.id, 0, next);
	/* The old leader must know it no longer leads, or it would just ingest. */
	bf_tikv_client *c = NULL;
	cr_assert_eq(bf_tikv_client_create(tcluster, 5000, NULL, &c, &err), 0);
	for (int64_t until = bf_now_ms() + 5000;; bf_sleep_ms(50)) {
		bf_tikv_error re;
		uint8_t k[BF_RECORD_KEY_LEN];
		record_key(k, 1);
		cr_assert_eq(bf_tikv_delete_range(c, &r, k, sizeof(k), k, sizeof(k), &re, &err), 0,
			     "%s", bf_err_text(&err));
		if (re.kind == BF_TIKV_NOT_LEADER)
			break;
		cr_assert_lt(bf_now_ms(), until, "store %" PRIu64 " still leads", old);
	}
	bf_tikv_client_destroy(c);
	bf_region cached;
	cr_assert_eq(bf_cluster_region(tcluster, r.id, &cached, NULL), 0);
	cr_assert_eq(cached.leader_store, old, "the target's cache is stale");

	cr_assert_eq(ingest_records(1, 5000, 2, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	cr_assert_geq(last_ingest_retries(), 1, "the first MultiIngest met NotLeader");
	cr_assert_eq(bf_cluster_region(tcluster, r.id, &cached, NULL), 0);
	cr_assert_eq(cached.leader_store, next, "the hint went into the target's cache");
	check_replicas(s, 1, 5000, "v");
}

Test(cluster_target, epoch_not_match_after_a_split_lands_in_both_halves)
{
	t_stores *s = start("ct-split", 2);
	bf_region r = region_of(s, 1);
	uint8_t mid[BF_RECORD_KEY_LEN];
	bf_err err;

	open_target("ct-split", test_opts());
	record_key(mid, 2500);
	cr_assert_eq(bf_cluster_split(t_stores_cluster(s), r.id, mid, sizeof(mid), &err), 0, "%s",
		     bf_err_text(&err));
	bf_region left = t_stores_wait_region(s, r.id, r.version + 1, 0);
	/* Until the stores see the split too, the old epoch still works. */
	for (int64_t until = bf_now_ms() + 5000;; bf_sleep_ms(50)) {
		bf_rpc_status st;
		t_ctx old = t_stores_ctx(&r);
		Kvrpcpb__ScanResponse *sr =
			t_tikv_scan(t_stores_channel(s, (int)r.leader_store), &old, NULL, 0, NULL, 0, 1,
				    &st);
		cr_assert_not_null(sr, "%s", st.details);
		bool seen = sr->region_error && sr->region_error->epoch_not_match;
		kvrpcpb__scan_response__free_unpacked(sr, NULL);
		if (seen)
			break;
		cr_assert_lt(bf_now_ms(), until, "the store never saw the split");
	}

	cr_assert_eq(ingest_records(1, 5000, 2, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	cr_assert_geq(last_ingest_retries(), 1, "the stale epoch was refused first");
	bf_region learned;
	cr_assert_eq(bf_cluster_locate(tcluster, mid, sizeof(mid), &learned, NULL), 0);
	cr_assert_neq(learned.id, r.id, "the target's cache has the right half");
	cr_assert_eq(learned.version, left.version);
	check_replicas(s, 1, 5000, "v");
	check_scan(1, 5000, "v");
}

Test(cluster_target, server_is_busy_twice_then_the_ingest_lands)
{
	t_stores *s = start("ct-busy", 2);
	bf_region r = region_of(s, 1);
	bf_err err;

	/* Its first two MultiIngests answer ServerIsBusy. */
	t_stores_kill(s, (int)r.leader_store);
	t_stores_restart(s, (int)r.leader_store, "store.busy@1-2");
	open_target("ct-busy", test_opts());
	int64_t t0 = bf_now_ms();
	cr_assert_eq(ingest_records(1, 3000, 1, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(last_ingest_retries(), 2);
	cr_assert_lt(bf_now_ms() - t0, 30000);
	check_replicas(s, 1, 3000, "v");
}

/* ---- stores and etcd going away ---- */

typedef struct bg_ingest {
	int64_t from, to;
	int rc;
	bf_err err;
	int64_t took_ms;
} bg_ingest;

static void *ingest_main(void *arg)
{
	bg_ingest *b = arg;
	int64_t t0 = bf_now_ms();
	b->rc = ingest_records(b->from, b->to, 3, "v", NULL, &b->err);
	b->took_ms = bf_now_ms() - t0;
	return NULL;
}

Test(cluster_target, a_store_killed_and_restarted_mid_ingest)
{
	t_stores *s = start("ct-kill", 4);
	bg_ingest b = { .from = 1, .to = 90000 };
	pthread_t th;

	bf_target_cluster_opts o = test_opts();
	o.batch_bytes = 16 << 10;
	open_target("ct-kill", o);
	/* Slow the Writes down (some 3 s in all) so that the kill lands in
	 * the middle. */
	bf_fault_arm_pause("cluster.write", 60);
	cr_assert_eq(pthread_create(&th, NULL, ingest_main, &b), 0);
	bf_sleep_ms(400);
	t_stores_kill(s, 2);
	bf_sleep_ms(1500);
	t_stores_restart(s, 2, NULL);
	pthread_join(th, NULL);
	cr_assert_eq(b.rc, 0, "%s", bf_err_text(&b.err));
	cr_assert_gt(b.took_ms, 1500, "the ingest was still running when the store came back");
	cr_assert_geq(last_ingest_retries(), 1);
	bf_fault_reset();
	check_replicas(s, 1, 90000, "v");
}

Test(cluster_target, with_etcd_stopped_ingests_go_on_from_the_cache)
{
	t_stores *s = start("ct-etcd", 4);
	bf_region r = region_of(s, 1);
	uint64_t next = r.leader_store % 3 + 1;
	bf_err err;

	open_target("ct-etcd", test_opts());
	/* A leader the target does not know of yet, then no etcd at all. */
	cr_assert_eq(bf_cluster_transfer_leader(t_stores_cluster(s), r.id, next, &err), 0, "%s",
		     bf_err_text(&err));
	t_stores_wait_region(s, r.id, 0, next);
	bf_sleep_ms(500); /* the stores' watches */
	t_etcd_kill(etcd, 0);

	cr_assert_eq(ingest_records(1, 60000, 3, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	check_replicas(s, 1, 60000, "v");
	check_scan(1, 60000, "v");
	cr_assert_eq(ingest_records(60000, 80000, 1, "w", NULL, &err), 0, "%s", bf_err_text(&err));
	check_replicas(s, 60000, 80000, "w");
}

Test(cluster_target, a_stale_fence_token_is_refused)
{
	t_stores *s = start("ct-fence", 2);
	bf_fence_token newer = { .revision = 20 }, older = { .revision = 10 }, none = { 0 };
	bf_target_stats st;
	bf_err err;

	open_target("ct-fence", test_opts());
	snprintf(newer.key, sizeof(newer.key), "/bfill/lock/%s/7/1", bf_cluster_uuid(tcluster));
	snprintf(older.key, sizeof(older.key), "%s", newer.key);
	cr_assert_eq(ingest_records(1, 1000, 1, "v", &newer, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(ingest_records(1000, 2000, 1, "v", &older, &err), BF_EFENCED);
	cr_assert(strstr(err.msg, "stale fence token"), "%s", err.msg);
	bf_target_stats_get(target, &st);
	cr_assert_eq(st.fence_refusals, 1);
	cr_assert_eq(st.ingests, 1);
	/* The same holder again, and an unfenced ingest, are taken. */
	cr_assert_eq(ingest_records(1000, 2000, 1, "v", &newer, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(ingest_records(2000, 3000, 1, "v", &none, &err), 0, "%s", bf_err_text(&err));
	check_replicas(s, 1, 3000, "v");
}

Test(cluster_target, a_store_that_stays_down_is_named_at_the_deadline)
{
	bf_target_cluster_opts o = test_opts();
	t_stores *s = start("ct-down", 2);
	bf_err err;

	o.total_timeout_ms = 1500;
	open_target("ct-down", o);
	t_stores_kill(s, 3);
	int64_t t0 = bf_now_ms();
	cr_assert_eq(ingest_records(1, 1000, 1, "v", NULL, &err), BF_EUNAVAIL, "%s",
		     bf_err_text(&err));
	cr_assert(strstr(err.msg, "gave up after"), "%s", err.msg);
	cr_assert(strstr(err.msg, "store 3"), "%s", err.msg);
	cr_assert_lt(bf_now_ms() - t0, 15000);
}

/* Cancels the global target after ms, from another thread. */
static void *cancel_later(void *arg)
{
	bf_sleep_ms((int64_t)(intptr_t)arg);
	bf_target_cancel(target, true);
	return NULL;
}

Test(cluster_target, a_cancel_stops_the_retries_at_once_and_clears)
{
	bf_target_cluster_opts o = test_opts();
	t_stores *s = start("ct-cancel", 2);
	pthread_t th;
	bf_err err;

	o.total_timeout_ms = 120000; /* far longer than the test may take */
	open_target("ct-cancel", o);
	t_stores_kill(s, 3);
	int64_t t0 = bf_now_ms();
	cr_assert_eq(pthread_create(&th, NULL, cancel_later, (void *)(intptr_t)500), 0);
	int rc = ingest_records(1, 1000, 1, "v", NULL, &err);
	pthread_join(th, NULL);
	cr_assert_eq(rc, BF_ECANCELLED, "%s", bf_err_text(&err));
	cr_assert(strstr(err.msg, "store 3"), "what was being retried is told: %s", err.msg);
	cr_assert_lt(bf_now_ms() - t0, 10000, "stopped within a call's time, not the budget");

	/* A rollback's delete_range is not stopped by it ... */
	uint8_t lo[BF_RECORD_KEY_LEN], hi[BF_RECORD_KEY_LEN];
	record_key(lo, 1);
	record_key(hi, 1000);
	t_stores_restart(s, 3, NULL);
	cr_assert_eq(bf_target_delete_range(target, lo, sizeof(lo), hi, sizeof(hi), &err), 0, "%s",
		     bf_err_text(&err));
	/* ... and once cleared the target works again. */
	bf_target_cancel(target, false);
	cr_assert_eq(ingest_records(1, 1000, 1, "v", NULL, &err), 0, "%s", bf_err_text(&err));
	check_replicas(s, 1, 1000, "v");
}
