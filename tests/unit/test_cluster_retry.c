/*
 * The cluster target's retry policy (ingest/cluster_retry.c) against a
 * real etcd holding a cluster layout (no store nodes needed): what each
 * region error and each failed call leads to, what the cache learns from
 * it, how long it waits, and the final errors: a full disk and a stale
 * fence token at once, a node that stays down at the deadline, unknown
 * failures after a few tries.
 */
#include "bfill/cluster.h"
#include "bfill/codec.h"
#include "bfill/etcd.h"
#include "ingest/cluster_retry.h"
#include "tests/support/etcd.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static t_etcd *etcd_srv;
static bf_etcd *client;
static bf_cluster *cluster;

static const char *const addrs[] = { "127.0.0.1:20160", "127.0.0.1:20161", "127.0.0.1:20162" };

static void up(void)
{
	bf_cluster_init_opts io = { .store_addrs = addrs, .nstores = 3, .nregions = 4,
				    .replicas = 3 };
	bf_err err;

	etcd_srv = t_etcd_start(1);
	client = t_etcd_client(etcd_srv, 1000);
	cr_assert_eq(bf_cluster_init(client, "retry", &io, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_cluster_open(client, "retry", NULL, &cluster, &err), 0, "%s",
		     bf_err_text(&err));
}

static void down(void)
{
	bf_cluster_close(cluster);
	cluster = NULL;
	bf_etcd_destroy(client);
	client = NULL;
	t_etcd_destroy(etcd_srv);
	etcd_srv = NULL;
	t_etcd_stop_all();
}

TestSuite(cluster_retry, .init = up, .fini = down, .timeout = 60);

static void start(bf_retry *rt, int64_t budget_ms)
{
	bf_retry_opts o = { .base_ms = 5, .cap_ms = 50, .budget_ms = budget_ms,
			    .max_other_failures = 2 };
	bf_retry_init(rt, cluster, &o, 7);
}

/* The region holding table 100's first row. */
static bf_region some_region(void)
{
	uint8_t k[BF_RECORD_KEY_LEN];
	bf_region r;
	bf_err err;

	bf_codec_record_key(k, 100, 1);
	cr_assert_eq(bf_cluster_locate(cluster, k, sizeof(k), &r, &err), 0, "%s", bf_err_text(&err));
	return r;
}

static uint64_t follower_of(const bf_region *r)
{
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i].store_id != r->leader_store)
			return r->peers[i].store_id;
	cr_assert_fail("region %" PRIu64 " has no follower", r->id);
	return 0;
}

static bf_region cached(uint64_t id)
{
	bf_region r;
	cr_assert_eq(bf_cluster_region(cluster, id, &r, NULL), 0);
	return r;
}

Test(cluster_retry, not_leader_with_a_hint_is_learned_and_tried_again)
{
	bf_region r = some_region();
	uint64_t next = follower_of(&r);
	bf_tikv_error re = { .kind = BF_TIKV_NOT_LEADER, .region_id = r.id, .leader_store = next };
	bf_retry rt;
	int code;

	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_AGAIN);
	cr_assert_eq(cached(r.id).leader_store, next, "the hint went into the cache");
}

Test(cluster_retry, not_leader_without_a_hint_refreshes)
{
	bf_region r = some_region();
	uint64_t next = follower_of(&r);
	bf_tikv_error re = { .kind = BF_TIKV_NOT_LEADER, .region_id = r.id };
	bf_retry rt;
	bf_err err;
	int code;

	cr_assert_eq(bf_cluster_transfer_leader(cluster, r.id, next, &err), 0, "%s", err.msg);
	cr_assert_neq(cached(r.id).leader_store, next, "the cache learns only when asked");
	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_AGAIN);
	cr_assert_eq(cached(r.id).leader_store, next);
}

Test(cluster_retry, epoch_not_match_adopts_the_current_regions)
{
	bf_region r = some_region(), parts[2];
	uint8_t mid[BF_RECORD_KEY_LEN];
	bf_tikv_error re = { .kind = BF_TIKV_EPOCH_NOT_MATCH, .region_id = r.id };
	bf_retry rt;
	int code;

	/* What a node says after a split it knows of and the cache does not:
	 * two regions, a newer version, no leader named. */
	bf_codec_record_key(mid, 100, 50);
	parts[0] = r;
	parts[1] = r;
	parts[0].end_len = sizeof(mid);
	memcpy(parts[0].end, mid, sizeof(mid));
	parts[1].id = 999;
	parts[1].start_len = sizeof(mid);
	memcpy(parts[1].start, mid, sizeof(mid));
	for (int i = 0; i < 2; i++) {
		parts[i].version = r.version + 1;
		parts[i].leader_store = 0;
		for (int p = 0; p < parts[i].npeers; p++)
			parts[i].peers[p].id = parts[i].id * 1000 + parts[i].peers[p].store_id;
	}
	re.current = parts;
	re.ncurrent = 2;
	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_RESPLIT);

	bf_region right;
	cr_assert_eq(bf_cluster_locate(cluster, mid, sizeof(mid), &right, NULL), 0);
	cr_assert_eq(right.id, 999);
	cr_assert_eq(right.version, r.version + 1);
	cr_assert_eq(right.leader_store, r.leader_store, "the old leader's store leads on");
	cr_assert_eq(cached(r.id).version, r.version + 1);
}

Test(cluster_retry, server_is_busy_waits_for_its_hint)
{
	bf_region r = some_region();
	bf_tikv_error re = { .kind = BF_TIKV_SERVER_BUSY, .backoff_ms = 40 };
	bf_retry rt;
	int code;

	start(&rt, 5000);
	int64_t t0 = bf_now_ms();
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_AGAIN);
	cr_assert_geq(bf_now_ms() - t0, 40);
	/* A hint above the cap waits the cap only. */
	re.backoff_ms = 60000;
	t0 = bf_now_ms();
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_AGAIN);
	cr_assert_lt(bf_now_ms() - t0, 1000);
}

Test(cluster_retry, region_gone_and_lost_uploads)
{
	bf_region r = some_region();
	bf_tikv_error re = { .kind = BF_TIKV_REGION_NOT_FOUND, .region_id = r.id };
	bf_retry rt;
	bf_err err;
	int code;

	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_RESPLIT);
	re.kind = BF_TIKV_KEY_NOT_IN_REGION;
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_RESPLIT);
	re.kind = BF_TIKV_STALE_COMMAND;
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_REDO,
		     "a file the node lost is written again");
	/* A node that sees the region otherwise (Write's RequestTooOld). */
	bf_errf(&err, BF_ESTATE, "store 1 Write: UNKNOWN: RequestTooOld");
	cr_assert_eq(bf_retry_after(&rt, &r, BF_ESTATE, NULL, &code, &err), BF_RETRY_RESPLIT);
}

Test(cluster_retry, a_full_disk_is_final_and_names_the_store)
{
	bf_region r = some_region();
	bf_tikv_error re = { .kind = BF_TIKV_DISK_FULL, .nfull = 1, .full_stores = { 2 } };
	bf_retry rt;
	bf_err err = { 0 };
	int code;

	snprintf(re.message, sizeof(re.message), "disk almost full");
	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, &err), BF_RETRY_FAIL);
	cr_assert_eq(code, BF_ENOSPC);
	cr_assert(strstr(err.msg, "store 2 (127.0.0.1:20161) is out of disk space"), "%s", err.msg);
	/* The same from a node's error text (bf_tikv_status_code). */
	bf_errf(&err, BF_ENOSPC, "store 3 Write: UNKNOWN: No space left on device");
	cr_assert_eq(bf_retry_after(&rt, &r, BF_ENOSPC, NULL, &code, &err), BF_RETRY_FAIL);
	cr_assert_eq(code, BF_ENOSPC);
}

Test(cluster_retry, a_stale_fence_token_is_final)
{
	bf_region r = some_region();
	bf_retry rt;
	bf_err err;
	int code;

	bf_errf(&err, BF_EFENCED, "store 1 MultiIngest: UNKNOWN: stale fence token");
	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, BF_EFENCED, NULL, &code, &err), BF_RETRY_FAIL);
	cr_assert_eq(code, BF_EFENCED);
	cr_assert(strstr(err.msg, "stale fence token"));
}

Test(cluster_retry, a_node_that_stays_down_fails_at_the_deadline)
{
	bf_region r = some_region();
	bf_retry rt;
	bf_err err;
	int code = 0, tries = 0;
	bf_retry_next next;

	start(&rt, 300);
	int64_t t0 = bf_now_ms();
	do {
		bf_errf(&err, BF_EUNAVAIL,
			"store 3 127.0.0.1:20162 Write: UNAVAILABLE: failed to connect to all addresses");
		next = bf_retry_after(&rt, &r, BF_EUNAVAIL, NULL, &code, &err);
		tries++;
	} while (next == BF_RETRY_AGAIN && tries < 10000);
	cr_assert_eq(next, BF_RETRY_FAIL);
	cr_assert_eq(code, BF_EUNAVAIL);
	cr_assert_geq(bf_now_ms() - t0, 290, "it kept trying until the deadline");
	cr_assert_gt(tries, 3);
	cr_assert(strstr(err.msg, "gave up after"), "%s", err.msg);
	cr_assert(strstr(err.msg, "store 3 127.0.0.1:20162"), "%s", err.msg);
}

Test(cluster_retry, unknown_failures_are_redone_a_few_times)
{
	bf_region r = some_region();
	bf_tikv_error re = { .kind = BF_TIKV_OTHER };
	bf_retry rt;
	bf_err err;
	int code;

	snprintf(re.message, sizeof(re.message), "raft: proposal dropped");
	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, &err), BF_RETRY_REDO);
	bf_errf(&err, BF_EIO, "store 1 Write: UNKNOWN: keys out of order");
	cr_assert_eq(bf_retry_after(&rt, &r, BF_EIO, NULL, &code, &err), BF_RETRY_REDO);
	cr_assert_eq(bf_retry_after(&rt, &r, BF_EIO, NULL, &code, &err), BF_RETRY_FAIL);
	cr_assert_eq(code, BF_EIO);
	cr_assert(strstr(err.msg, "keys out of order"), "%s", err.msg);
	/* A success starts the count over. */
	bf_retry_success(&rt);
	cr_assert_eq(bf_retry_after(&rt, &r, BF_EIO, NULL, &code, &err), BF_RETRY_REDO);
}

Test(cluster_retry, with_etcd_down_the_cache_still_serves)
{
	bf_region r = some_region();
	bf_tikv_error re = { .kind = BF_TIKV_REGION_NOT_FOUND, .region_id = r.id };
	bf_retry rt;
	int code;

	t_etcd_kill(etcd_srv, 0);
	start(&rt, 5000);
	cr_assert_eq(bf_retry_after(&rt, &r, 0, &re, &code, NULL), BF_RETRY_RESPLIT);
	cr_assert_eq(cached(r.id).id, r.id, "a failed refresh leaves the cache as it was");
}
