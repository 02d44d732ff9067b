/*
 * Subtasks and claims in a real etcd (cluster/subtask.c): a plan cut at the
 * cluster's region boundaries, written all or none, claimed by one worker
 * at a time (two racing workers never share one), a claim lost with its
 * lease and taken over with the checkpoint, checkpoints and finishing
 * refused to a worker whose claim or lock is gone, the last subtask done
 * said so, and a damaged record named.
 */
#include "bfill/cluster.h"
#include "bfill/codec.h"
#include "bfill/etcd.h"
#include "bfill/subtask.h"
#include "tests/support/etcd.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define TABLE 100

static t_etcd *srv;
static bf_etcd *client;
static bf_cluster *cluster;
static const char *root;

static const char *const addrs[] = { "127.0.0.1:20160", "127.0.0.1:20161", "127.0.0.1:20162" };

static void up(void)
{
	bf_cluster_init_opts io = { .store_addrs = addrs, .nstores = 3, .nregions = 9,
				    .replicas = 3, .rows = 8000 };
	bf_err err;

	if (!t_etcd_available())
		cr_skip_test("etcd/etcdctl not installed (Debian: etcd-server etcd-client)");
	srv = t_etcd_start(1);
	client = t_etcd_client(srv, 2000);
	cr_assert_eq(bf_cluster_init(client, "st", &io, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_cluster_open(client, "st", NULL, &cluster, &err), 0, "%s", bf_err_text(&err));
	root = bf_cluster_root(cluster);
}

static void down(void)
{
	bf_cluster_close(cluster);
	bf_etcd_destroy(client);
	t_etcd_stop_all();
}

TestSuite(subtask, .init = up, .fini = down, .timeout = 60);

/* Plans and writes job's subtasks, 3 regions each; returns how many. */
static size_t plan_and_put(int64_t job)
{
	bf_subtask *s = NULL;
	size_t n = 0;
	bf_err err;

	cr_assert_eq(bf_subtask_plan(cluster, job, TABLE, 3, &s, &n, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_subtask_put_all(client, root, s, n, &err), 0, "%s", bf_err_text(&err));
	free(s);
	return n;
}

Test(subtask, a_plan_covers_the_rows_cut_at_region_boundaries)
{
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN];
	bf_subtask *s = NULL;
	size_t n = 0;
	bf_err err;

	cr_assert_eq(bf_subtask_plan(cluster, 1, TABLE, 3, &s, &n, &err), 0, "%s", bf_err_text(&err));
	/* 9 regions: one for the indexes, 8 for the rows; 3 a subtask. */
	cr_assert_eq(n, 3);
	bf_codec_record_prefix(lo, TABLE);
	bf_codec_record_prefix(hi, TABLE);
	hi[BF_RECORD_PREFIX_LEN - 1]++;
	cr_assert_eq(bf_key_cmp(s[0].lo, s[0].lolen, lo, sizeof(lo)), 0);
	cr_assert_eq(bf_key_cmp(s[n - 1].hi, s[n - 1].hilen, hi, sizeof(hi)), 0);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(s[i].seq, (int)i);
		cr_assert_lt(bf_key_cmp(s[i].lo, s[i].lolen, s[i].hi, s[i].hilen), 0);
		cr_assert_eq(bf_key_cmp(s[i].next, s[i].nextlen, s[i].lo, s[i].lolen), 0);
		if (i > 0) {
			cr_assert_eq(bf_key_cmp(s[i].lo, s[i].lolen, s[i - 1].hi, s[i - 1].hilen), 0,
				     "subtasks meet");
			/* A cut is a region's start. */
			bf_region r;
			cr_assert_eq(bf_cluster_locate(cluster, s[i].lo, s[i].lolen, &r, &err), 0);
			cr_assert_eq(bf_key_cmp(r.start, r.start_len, s[i].lo, s[i].lolen), 0);
		}
	}
	free(s);
}

Test(subtask, written_all_or_none_and_listed_back)
{
	size_t n = plan_and_put(2);
	bf_subtask *s = NULL, *again = NULL;
	size_t m = 0, k = 0;
	bf_err err;

	cr_assert_eq(bf_subtask_list(client, root, 2, &s, &m, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(m, n);
	for (size_t i = 0; i < m; i++) {
		cr_assert_eq(s[i].seq, (int)i);
		cr_assert_not(s[i].done);
		cr_assert_str_empty(s[i].worker);
	}
	cr_assert_eq(bf_subtask_plan(cluster, 2, TABLE, 3, &again, &k, &err), 0);
	cr_assert_eq(bf_subtask_put_all(client, root, again, k, &err), BF_EEXIST);
	free(again);
	free(s);
}

typedef struct racer {
	const char *name;
	int64_t lease;
	bf_subtask got[8];
	int n;
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	bf_err err;
	/* A worker's own claim is its to take again: one it gets twice means
	 * nothing else is left for it. */
	while (r->n < 8 && bf_subtask_claim(client, root, 3, r->name, r->lease, &r->got[r->n], &err) == 0) {
		bool again = false;
		for (int i = 0; i < r->n; i++)
			again = again || r->got[i].seq == r->got[r->n].seq;
		if (again)
			break;
		r->n++;
	}
	return NULL;
}

Test(subtask, racing_workers_never_share_a_subtask)
{
	size_t n = plan_and_put(3);
	racer a = { .name = "worker-a" }, b = { .name = "worker-b" };
	pthread_t ta, tb;
	bf_err err;

	cr_assert_eq(bf_etcd_lease_grant(client, 30, 0, &a.lease, NULL, &err), 0);
	cr_assert_eq(bf_etcd_lease_grant(client, 30, 0, &b.lease, NULL, &err), 0);
	pthread_create(&ta, NULL, race, &a);
	pthread_create(&tb, NULL, race, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	cr_assert_eq((size_t)(a.n + b.n), n, "every subtask claimed once: %d + %d of %zu", a.n, b.n, n);
	for (int i = 0; i < a.n; i++)
		for (int j = 0; j < b.n; j++)
			cr_assert_neq(a.got[i].seq, b.got[j].seq, "subtask %d claimed twice", a.got[i].seq);

	bf_subtask *s = NULL;
	size_t m = 0;
	cr_assert_eq(bf_subtask_list(client, root, 3, &s, &m, &err), 0);
	for (size_t i = 0; i < m; i++)
		cr_assert(!strcmp(s[i].worker, "worker-a") || !strcmp(s[i].worker, "worker-b"),
			  "subtask %zu: '%s'", i, s[i].worker);
	bf_subtask none;
	cr_assert_eq(bf_subtask_claim(client, root, 3, "worker-c", a.lease, &none, &err), BF_ENOTFOUND);
	/* A claim worker-a could not give back is still its own to take. */
	bf_subtask again;
	cr_assert_eq(bf_subtask_claim(client, root, 3, "worker-a", a.lease, &again, &err), 0, "%s",
		     bf_err_text(&err));
	bool found = false;
	for (int i = 0; i < a.n; i++)
		found = found || a.got[i].seq == again.seq;
	cr_assert(found, "subtask %d is not one of worker-a's", again.seq);
	cr_assert_geq(again.claims, 2, "every claim is counted");
	free(s);
}

Test(subtask, a_lost_lease_frees_the_claim_and_the_checkpoint_carries_over)
{
	plan_and_put(4);
	int64_t la, lb;
	bf_subtask mine, theirs;
	bf_err err;

	cr_assert_eq(bf_etcd_lease_grant(client, 30, 0, &la, NULL, &err), 0);
	cr_assert_eq(bf_etcd_lease_grant(client, 30, 0, &lb, NULL, &err), 0);
	cr_assert_eq(bf_subtask_claim(client, root, 4, "a", la, &mine, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(mine.seq, 0);
	/* Half-way: a checkpoint. */
	memcpy(mine.next, mine.hi, mine.hilen);
	mine.next[mine.hilen - 1]--;
	mine.nextlen = mine.hilen;
	mine.rows = 1234;
	cr_assert_eq(bf_subtask_checkpoint(client, root, &mine, "a", &err), 0, "%s", bf_err_text(&err));
	/* Someone else's checkpoint is refused. */
	cr_assert_eq(bf_subtask_checkpoint(client, root, &mine, "b", &err), BF_EFENCED);
	cr_assert(strstr(err.msg, "not this worker's"), "%s", err.msg);

	/* Worker a dies: its lease goes, and b takes subtask 0 where a left it. */
	cr_assert_eq(bf_etcd_lease_revoke(client, la, &err), 0);
	cr_assert_eq(bf_subtask_claim(client, root, 4, "b", lb, &theirs, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(theirs.seq, 0);
	cr_assert_eq(theirs.rows, 1234);
	cr_assert_eq(bf_key_cmp(theirs.next, theirs.nextlen, mine.next, mine.nextlen), 0);
	/* a, back late, can neither checkpoint nor finish it. */
	bool all = true;
	cr_assert_eq(bf_subtask_checkpoint(client, root, &mine, "a", &err), BF_EFENCED);
	bf_fence_token none = { .key = "/nokey", .holder = "/nokey", .revision = 1 };
	cr_assert_eq(bf_subtask_finish(client, root, &mine, "a", &none, 1, &all, &err), BF_EFENCED);
	cr_assert_not(all);
	/* Released, it is free again. */
	cr_assert_eq(bf_subtask_release(client, root, &theirs, "b", &err), 0);
	cr_assert_eq(bf_subtask_claim(client, root, 4, "c", lb, &theirs, &err), 0);
	cr_assert_eq(theirs.seq, 0);
}

Test(subtask, finishing_is_fenced_by_the_lock_and_the_last_one_says_so)
{
	size_t n = plan_and_put(5);
	const char *lock = "/bfill/lock/test/5";
	int64_t lease, rev = 0;
	bf_subtask s;
	bf_err err;

	cr_assert_eq(bf_etcd_lease_grant(client, 30, 0, &lease, NULL, &err), 0);
	cr_assert_eq(bf_etcd_put(client, lock, "holder", 6, 0, &rev, &err), 0);
	for (size_t i = 0; i < n; i++) {
		bool all = true;
		cr_assert_eq(bf_subtask_claim(client, root, 5, "w", lease, &s, &err), 0, "%s",
			     bf_err_text(&err));
		/* A stale token: the lock key was made again since. */
		bf_fence_token stale = { .revision = rev - 1 }, good = { .revision = rev };
		snprintf(stale.holder, sizeof(stale.holder), "%s", lock);
		snprintf(good.holder, sizeof(good.holder), "%s", lock);
		cr_assert_eq(bf_subtask_finish(client, root, &s, "w", &stale, 1, &all, &err),
			     BF_EFENCED);
		cr_assert_eq(bf_subtask_finish(client, root, &s, "w", &good, 1, &all, &err), 0, "%s",
			     bf_err_text(&err));
		cr_assert_eq(all, i == n - 1, "subtask %zu of %zu: all done = %d", i, n, all);
	}
	bf_subtask *list = NULL;
	size_t m = 0;
	cr_assert_eq(bf_subtask_list(client, root, 5, &list, &m, &err), 0);
	for (size_t i = 0; i < m; i++) {
		cr_assert(list[i].done);
		cr_assert_str_empty(list[i].worker, "the claim goes with the finish");
		cr_assert_eq(bf_key_cmp(list[i].next, list[i].nextlen, list[i].hi, list[i].hilen), 0);
	}
	free(list);
	cr_assert_eq(bf_subtask_claim(client, root, 5, "w", lease, &s, &err), BF_ENOTFOUND);
}

Test(subtask, a_damaged_record_is_named)
{
	char key[256];
	bf_subtask *s = NULL;
	size_t n = 0;
	bf_err err;

	plan_and_put(6);
	snprintf(key, sizeof(key), "%ssubtask/%020d/%08d", root, 6, 1);
	cr_assert_eq(bf_etcd_put(client, key, "{\"lo\":\"zz\"}", 11, 0, NULL, &err), 0);
	cr_assert_eq(bf_subtask_list(client, root, 6, &s, &n, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, key), "%s", err.msg);
	cr_assert(strstr(err.msg, "hex"), "%s", err.msg);
	cr_assert_null(strchr(err.msg, '\n'));
}
