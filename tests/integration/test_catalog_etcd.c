/*
 * A cluster's catalog in a real etcd (bf_catalog_etcd_create): tables and
 * jobs round-trip, records written together land together, ids are never
 * handed out twice, the job walk goes in id order past a damaged record,
 * and two clusters on one etcd keep apart.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/catalog.h"
#include "bfill/catalog_etcd.h"
#include "bfill/etcd.h"
#include "bfill/lock.h"
#include "tests/support/etcd.h"
#include "tests/support/records.h"

static void teardown(void)
{
	t_etcd_stop_all();
}

TestSuite(catalog_etcd, .fini = teardown, .timeout = 60);

typedef struct world {
	t_etcd *e;
	bf_etcd *client;
	bf_catalog *cat;
} world;

static void open_world(world *w, const char *root)
{
	bf_err err = { 0 };
	if (!t_etcd_available())
		cr_skip_test("etcd/etcdctl not installed (Debian: etcd-server etcd-client)");
	w->e = t_etcd_start(1);
	w->client = t_etcd_client(w->e, 0);
	cr_assert_eq(bf_catalog_etcd_create(w->client, root, &w->cat, &err), 0, "%s",
		     bf_err_text(&err));
}

static void close_world(world *w)
{
	bf_catalog_destroy(w->cat);
	bf_etcd_destroy(w->client);
	t_etcd_destroy(w->e);
}

typedef struct walk {
	int64_t ids[16];
	int n, damaged;
} walk;

static int collect(const bf_job *job, void *arg)
{
	walk *w = arg;
	w->ids[w->n++] = job->id;
	return 0;
}

static void on_damaged(const char *record, const char *why, void *arg)
{
	(void)why;
	cr_assert_not_null(strstr(record, "job/"), "%s", record);
	((walk *)arg)->damaged++;
}

Test(catalog_etcd, records_round_trip_and_land_together)
{
	world w;
	bf_err err = { 0 };
	bf_table t, got;
	bf_job j, gotj;

	open_world(&w, "/bfill/cluster/c1/");
	cr_assert_eq(bf_catalog_get_table(w.cat, "orders", &got, &err), BF_ENOTFOUND);
	t_sample_table(&t);
	t_sample_job(&j, 7);
	cr_assert_eq(bf_catalog_put_table_and_job(w.cat, &t, &j, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_table(w.cat, t.name, &got, &err), 0, "%s", bf_err_text(&err));
	t_expect_same_table(&t, &got);
	cr_assert_eq(bf_catalog_get_job(w.cat, 7, &gotj, &err), 0, "%s", bf_err_text(&err));
	t_expect_same_job(&j, &gotj);

	/* The records are etcd keys under the cluster's prefix. */
	bf_etcd_range_result res;
	bf_etcd_range_req req = { .key = "/bfill/cluster/c1/catalog/job/", .range_end = "/bfill/cluster/c1/catalog/job0" };
	cr_assert_eq(bf_etcd_range(w.client, &req, &res, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(res.n_kvs, 1);
	bf_etcd_range_result_free(&res);

	/* Another cluster on the same etcd sees none of it. */
	bf_catalog *other = NULL;
	cr_assert_eq(bf_catalog_etcd_create(w.client, "/bfill/cluster/c2/", &other, &err), 0);
	cr_assert_eq(bf_catalog_get_job(other, 7, &gotj, &err), BF_ENOTFOUND);
	bf_catalog_destroy(other);

	cr_assert_eq(bf_catalog_delete_table(w.cat, t.name, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_get_table(w.cat, t.name, &got, &err), BF_ENOTFOUND);
	close_world(&w);
}

Test(catalog_etcd, ids_walks_and_fences)
{
	world w;
	bf_err err = { 0 };
	bf_job j;
	int64_t id = 0;
	walk wk = { 0 };

	open_world(&w, "/bfill/cluster/c1/");
	cr_assert_eq(bf_catalog_next_id(w.cat, "job", &id, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(id, 1);
	/* An id given by hand is never handed out again. */
	t_sample_job(&j, 5);
	cr_assert_eq(bf_catalog_put_job(w.cat, &j, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_catalog_next_id(w.cat, "job", &id, &err), 0);
	cr_assert_eq(id, 6);
	t_sample_job(&j, 6);
	cr_assert_eq(bf_catalog_put_job(w.cat, &j, &err), 0);
	cr_assert_eq(bf_etcd_put(w.client, "/bfill/cluster/c1/catalog/job/00000000000000000003",
				 "{broken", 7, 0, NULL, &err), 0);
	cr_assert_eq(bf_catalog_foreach_job(w.cat, collect, on_damaged, &wk, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(wk.n, 2);
	cr_assert(wk.ids[0] == 5 && wk.ids[1] == 6, "in id order: %" PRId64 ", %" PRId64, wk.ids[0],
		  wk.ids[1]);
	cr_assert_eq(wk.damaged, 1);

	int64_t rev = -1;
	cr_assert_eq(bf_catalog_get_fence(w.cat, "/bfill/lock/u/1/1", &rev, &err), 0);
	cr_assert_eq(rev, 0);
	cr_assert_eq(bf_catalog_put_fence(w.cat, "/bfill/lock/u/1/1", 42, &err), 0);
	cr_assert_eq(bf_catalog_get_fence(w.cat, "/bfill/lock/u/1/1", &rev, &err), 0);
	cr_assert_eq(rev, 42);
	close_world(&w);
}

Test(catalog_etcd, unreachable_etcd_is_an_error)
{
	bf_etcd *client = NULL;
	bf_catalog *cat = NULL;
	bf_err err = { 0 };
	bf_table t;
	bf_etcd_opts o = { .call_timeout_ms = 500 };

	cr_assert_eq(bf_etcd_create(t_etcd_dead_endpoint(), &o, &client, &err), 0);
	cr_assert_eq(bf_catalog_etcd_create(client, "/bfill/cluster/c1/", &cat, &err), 0);
	int rc = bf_catalog_get_table(cat, "sbtest1", &t, &err);
	cr_assert(rc == BF_EUNAVAIL || rc == BF_ETIMEDOUT, "rc %d: %s", rc, bf_err_text(&err));
	cr_assert_null(strchr(err.msg, '\n'));
	bf_catalog_destroy(cat);
	bf_etcd_destroy(client);
}

/* Making indexes public is fenced in etcd itself: the Txn that writes the
 * table and the job compares the lock holder's key. */
Test(catalog_etcd, fenced_put_needs_the_lock)
{
	world w;
	bf_err err = { 0 };
	bf_lock *lk = NULL;
	bf_fence_token tok;
	bf_table t, got;
	bf_job j;

	open_world(&w, "/bfill/cluster/c1/");
	bf_lock_opts lo = { .endpoints = t_etcd_endpoints(w.e), .ttl_s = 5, .timeout_s = 10 };
	cr_assert_eq(bf_lock_create(&lo, &lk, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_lock_acquire(lk, "u/7", &tok, &err), 0, "%s", bf_err_text(&err));
	cr_assert_neq(tok.holder[0], '\0', "an etcd token names its holder's key");
	t_sample_table(&t);
	t_sample_job(&j, 7);
	cr_assert_eq(bf_catalog_put_table_and_job_fenced(w.cat, &t, &j, &tok, 1, &err), 0, "%s",
		     bf_err_text(&err));

	/* The lock gone, the same token can't change the records. */
	cr_assert_eq(bf_lock_release(lk, &err), 0);
	t.rows_hint = 99;
	cr_assert_eq(bf_catalog_put_table_and_job_fenced(w.cat, &t, &j, &tok, 1, &err), BF_ELOCKLOST);
	cr_assert_eq(bf_catalog_get_table(w.cat, t.name, &got, &err), 0);
	cr_assert_neq(got.rows_hint, 99, "nothing of the refused write landed");
	bf_lock_destroy(lk);
	close_world(&w);
}
