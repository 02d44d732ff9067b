/*
 * Tests of the etcd client (lock/etcd_client.c) against a real etcd
 * started by tests/support/etcd.c: the KV and lease calls, the keepalive
 * and watch streams, endpoint failover, an endpoint with nothing behind
 * it, and replies over the size limit.
 */
#include "bfill/etcd.h"
#include "bfill/fault.h"
#include "tests/support/etcd.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static t_etcd *cluster;
static bf_etcd *client;

static void up(void)
{
	cluster = t_etcd_start(1);
	client = t_etcd_client(cluster, 2000);
}

static void down(void)
{
	bf_fault_reset();
	bf_etcd_destroy(client);
	client = NULL;
	t_etcd_destroy(cluster);
	cluster = NULL;
	t_etcd_stop_all();
}

TestSuite(etcd_client, .init = up, .fini = down, .timeout = 60);

Test(etcd_client, put_range_delete)
{
	bf_etcd_range_result res;
	int64_t rev1 = 0, rev2 = 0, deleted = 0;
	bf_err err;

	cr_assert_eq(bf_etcd_put(client, "/t/a", "one", 3, 0, &rev1, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(bf_etcd_put(client, "/t/b", "two", 3, 0, &rev2, &err), 0);
	cr_assert_gt(rev2, rev1);

	char *end = NULL;
	cr_assert_eq(bf_etcd_prefix_end("/t/", &end, &err), 0);
	bf_etcd_range_req r = { .key = "/t/", .range_end = end, .sort_order = BF_ETCD_SORT_DESCEND,
				.sort_target = BF_ETCD_BY_CREATE };
	cr_assert_eq(bf_etcd_range(client, &r, &res, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(res.n_kvs, 2);
	cr_assert_str_eq(res.kvs[0].key, "/t/b");
	cr_assert_str_eq(res.kvs[0].value, "two");
	cr_assert_eq(res.kvs[0].create_revision, rev2);
	cr_assert_geq(res.revision, rev2);
	bf_etcd_range_result_free(&res);

	cr_assert_eq(bf_etcd_delete(client, "/t/", end, &deleted, NULL, &err), 0);
	cr_assert_eq(deleted, 2);
	r.count_only = true;
	cr_assert_eq(bf_etcd_range(client, &r, &res, &err), 0);
	cr_assert_eq(res.count, 0);
	bf_etcd_range_result_free(&res);
	free(end);
}

Test(etcd_client, txn_create_if_absent)
{
	bf_etcd_compare absent = { .key = "/t/x", .target = BF_ETCD_CMP_CREATE,
				   .result = BF_ETCD_EQUAL, .number = 0 };
	bf_etcd_op put = { .kind = BF_ETCD_OP_PUT, .key = "/t/x", .value = "v", .value_len = 1 };
	bf_etcd_op get = { .kind = BF_ETCD_OP_RANGE, .range = { .key = "/t/x" } };
	bf_etcd_op success[] = { put, get };
	bf_etcd_txn_req req = { &absent, 1, success, 2, &get, 1 };
	bf_etcd_txn_result res;
	bf_err err;

	cr_assert_eq(bf_etcd_txn(client, &req, &res, &err), 0, "%s", bf_err_text(&err));
	cr_assert(res.succeeded);
	cr_assert_eq(res.n_ops, 2);
	cr_assert_eq(res.ops[1].range.n_kvs, 1);
	cr_assert_eq(res.ops[1].range.kvs[0].create_revision, res.revision);
	int64_t created = res.revision;
	bf_etcd_txn_result_free(&res);

	cr_assert_eq(bf_etcd_txn(client, &req, &res, &err), 0);
	cr_assert_not(res.succeeded);
	cr_assert_eq(res.n_ops, 1);
	cr_assert_eq(res.ops[0].range.kvs[0].create_revision, created);
	bf_etcd_txn_result_free(&res);
}

Test(etcd_client, status_names_a_leader)
{
	bf_etcd_status_info st;
	bf_err err;

	cr_assert_eq(bf_etcd_status(client, &st, &err), 0, "%s", bf_err_text(&err));
	cr_assert_neq(st.leader, 0);
	cr_assert_eq(st.leader, st.member_id);
	cr_assert_neq(st.version[0], '\0');
}

Test(etcd_client, lease_lifecycle_and_keepalive_stream)
{
	bf_etcd_keepalive *ka = NULL;
	int64_t id = 0, granted = 0, ttl = 0;
	bf_err err;

	cr_assert_eq(bf_etcd_lease_grant(client, 5, 0, &id, &granted, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(granted, 5);
	cr_assert_eq(bf_etcd_lease_ttl(client, id, &ttl, &err), 0);
	cr_assert(ttl > 0 && ttl <= 5);
	cr_assert_eq(bf_etcd_keepalive_open(client, &ka, &err), 0, "%s", bf_err_text(&err));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(bf_etcd_keepalive_ping(ka, id, 2000, &ttl, &err), 0, "%s",
			     bf_err_text(&err));
		cr_assert_eq(ttl, 5);
	}
	cr_assert_eq(bf_etcd_lease_revoke(client, id, &err), 0, "%s", bf_err_text(&err));
	/* A revoked lease: keepalive answers TTL 0, TimeToLive -1, revoke
	 * NOT_FOUND with etcd's message. */
	cr_assert_eq(bf_etcd_keepalive_ping(ka, id, 2000, &ttl, &err), 0, "%s", bf_err_text(&err));
	cr_assert_leq(ttl, 0);
	bf_etcd_keepalive_close(ka);
	cr_assert_eq(bf_etcd_lease_ttl(client, id, &ttl, &err), 0);
	cr_assert_eq(ttl, -1);
	cr_assert_eq(bf_etcd_lease_revoke(client, id, &err), BF_ENOTFOUND);
	cr_assert(strstr(err.msg, "requested lease not found"), "%s", err.msg);
	cr_assert(strstr(err.msg, t_etcd_endpoint(cluster, 0)), "%s", err.msg);
}

/* A grant names its lease, so that one whose outcome is unknown can be
 * revoked; the same ID twice is etcd's "lease already exists". */
Test(etcd_client, lease_grant_with_chosen_id)
{
	int64_t want = bf_etcd_lease_id_new(), id = 0, ttl = 0;
	bf_err err;

	cr_assert_gt(want, 0);
	cr_assert_neq(bf_etcd_lease_id_new(), want);
	cr_assert_eq(bf_etcd_lease_grant(client, 5, want, &id, NULL, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(id, want);
	cr_assert_eq(bf_etcd_lease_ttl(client, want, &ttl, &err), 0, "%s", bf_err_text(&err));
	cr_assert(ttl > 0 && ttl <= 5);
	cr_assert_eq(bf_etcd_lease_grant(client, 5, want, &id, NULL, &err), BF_ESTATE);
	cr_assert(strstr(err.msg, "lease already exists"), "%s", err.msg);
	cr_assert_eq(bf_etcd_lease_revoke(client, want, &err), 0, "%s", bf_err_text(&err));
}

Test(etcd_client, put_with_unknown_lease_is_not_found)
{
	bf_err err;

	cr_assert_eq(bf_etcd_put(client, "/t/l", "", 0, 0x7777, NULL, &err), BF_ENOTFOUND);
	cr_assert(strstr(err.msg, "lease not found"), "%s", err.msg);
}

Test(etcd_client, watch_sees_delete)
{
	bf_etcd_watch *w = NULL;
	int64_t rev = 0;
	bf_err err;

	cr_assert_eq(bf_etcd_put(client, "/t/w", "", 0, 0, &rev, &err), 0);
	cr_assert_eq(bf_etcd_watch_open(client, "/t/w", rev, &w, &err), 0, "%s", bf_err_text(&err));
	int64_t t0 = bf_now_ms();
	cr_assert_eq(bf_etcd_watch_wait_delete(w, 300, &err), 0, "%s", bf_err_text(&err));
	cr_assert_geq(bf_now_ms() - t0, 250);
	cr_assert_eq(bf_etcd_delete(client, "/t/w", NULL, NULL, NULL, &err), 0);
	cr_assert_eq(bf_etcd_watch_wait_delete(w, 3000, &err), 1, "%s", bf_err_text(&err));
	bf_etcd_watch_close(w);
}

static bool not_skipped(const char *key, size_t len, void *arg)
{
	(void)arg;
	return !(len == strlen("/t/rw/skip") && !memcmp(key, "/t/rw/skip", len));
}

Test(etcd_client, range_watch_sees_changes_under_a_prefix)
{
	bf_etcd_watch *w = NULL;
	int64_t start = 0, put_rev = 0, del_rev = 0, seen = 0;
	char *end = NULL;
	bf_err err;

	cr_assert_eq(bf_etcd_put(client, "/t/before", "", 0, 0, &start, &err), 0);
	cr_assert_eq(bf_etcd_prefix_end("/t/rw/", &end, &err), 0);
	cr_assert_eq(bf_etcd_watch_open_range(client, "/t/rw/", end, start + 1, not_skipped, NULL,
					      &w, &err), 0, "%s", bf_err_text(&err));
	/* A key outside the range is not a change. */
	cr_assert_eq(bf_etcd_put(client, "/t/rx", "", 0, 0, NULL, &err), 0);
	cr_assert_eq(bf_etcd_watch_wait_change(w, 300, &seen, &err), 0, "%s", bf_err_text(&err));
	/* Nor is one the filter turns down. */
	cr_assert_eq(bf_etcd_put(client, "/t/rw/skip", "", 0, 0, NULL, &err), 0);
	cr_assert_eq(bf_etcd_watch_wait_change(w, 300, &seen, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_etcd_put(client, "/t/rw/a", "1", 1, 0, &put_rev, &err), 0);
	cr_assert_eq(bf_etcd_watch_wait_change(w, 3000, &seen, &err), 1, "%s", bf_err_text(&err));
	cr_assert_eq(seen, put_rev);
	cr_assert_eq(bf_etcd_delete(client, "/t/rw/a", NULL, NULL, &del_rev, &err), 0);
	cr_assert_eq(bf_etcd_watch_wait_change(w, 3000, &seen, &err), 1, "%s", bf_err_text(&err));
	cr_assert_eq(seen, del_rev);
	/* Each change is reported once. */
	cr_assert_eq(bf_etcd_watch_wait_change(w, 200, &seen, &err), 0, "%s", bf_err_text(&err));
	bf_etcd_watch_close(w);
	free(end);
}

Test(etcd_client, dead_first_endpoint_fails_over)
{
	bf_etcd *c = NULL;
	bf_etcd_status_info st;
	char eps[128];
	bf_err err;

	snprintf(eps, sizeof(eps), "%s,http://%s", t_etcd_dead_endpoint(),
		 t_etcd_endpoint(cluster, 0));
	cr_assert_eq(bf_etcd_create(eps, NULL, &c, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_etcd_status(c, &st, &err), 0, "%s", bf_err_text(&err));
	/* The client remembers the member that answered. */
	cr_assert_str_eq(bf_etcd_endpoint(c), t_etcd_endpoint(cluster, 0));
	int64_t rev;
	cr_assert_eq(bf_etcd_put(c, "/t/f", "", 0, 0, &rev, &err), 0, "%s", bf_err_text(&err));
	bf_etcd_destroy(c);
}

/*
 * A reply lost after etcd applied a write (the connection broke on the way
 * back): the write's outcome is unknown, so it is not sent again to the
 * next member; a read is.
 */
Test(etcd_client, lost_reply_makes_a_write_unknown_and_a_read_retried)
{
	bf_etcd *c = NULL;
	bf_etcd_range_result res;
	char eps[128];
	bf_err err;

	/* Two endpoints, so a retry on "the next member" would be possible. */
	snprintf(eps, sizeof(eps), "%s,%s", t_etcd_endpoint(cluster, 0),
		 t_etcd_endpoint(cluster, 0));
	cr_assert_eq(bf_etcd_create(eps, NULL, &c, &err), 0, "%s", bf_err_text(&err));
	bf_fault_arm_range("etcd.reply_lost.Put", 1, 1);
	cr_assert_eq(bf_etcd_put(c, "/t/lost", "v", 1, 0, NULL, &err), BF_EUNKNOWN, "%s",
		     bf_err_text(&err));
	cr_assert(strstr(err.msg, "outcome unknown"), "%s", err.msg);
	cr_assert(strstr(err.msg, "Put"), "%s", err.msg);

	/* etcd did apply it. */
	bf_fault_arm_range("etcd.reply_lost.Range", 1, 1);
	bf_etcd_range_req r = { .key = "/t/lost" };
	cr_assert_eq(bf_etcd_range(c, &r, &res, &err), 0, "a read is retried: %s",
		     bf_err_text(&err));
	cr_assert_eq(res.n_kvs, 1);
	cr_assert_str_eq(res.kvs[0].value, "v");
	bf_etcd_range_result_free(&res);
	bf_etcd_destroy(c);
}

Test(etcd_client, nothing_listening_is_unavailable_and_names_endpoint)
{
	bf_etcd *c = NULL;
	bf_etcd_opts o = { .call_timeout_ms = 500 };
	bf_etcd_status_info st;
	const char *dead = t_etcd_dead_endpoint();
	char ep[64];
	bf_err err;

	snprintf(ep, sizeof(ep), "%s", dead);
	cr_assert_eq(bf_etcd_create(ep, &o, &c, &err), 0);
	int64_t t0 = bf_now_ms();
	int rc = bf_etcd_status(c, &st, &err);
	cr_assert(rc == BF_EUNAVAIL || rc == BF_ETIMEDOUT, "rc %d: %s", rc, bf_err_text(&err));
	cr_assert_leq(bf_now_ms() - t0, 1500);
	cr_assert(strstr(err.msg, ep), "%s", err.msg);
	bf_etcd_destroy(c);
}

Test(etcd_client, oversized_reply_is_refused)
{
	bf_etcd *small = NULL;
	bf_etcd_opts o = { .max_reply_bytes = 64 * 1024 };
	bf_etcd_range_result res;
	size_t n = 100 * 1024;
	char *big = malloc(n);
	bf_err err;

	memset(big, 'x', n);
	cr_assert_eq(bf_etcd_put(client, "/t/big", big, n, 0, NULL, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(bf_etcd_create(t_etcd_endpoints(cluster), &o, &small, &err), 0);
	bf_etcd_range_req r = { .key = "/t/big" };
	cr_assert_eq(bf_etcd_range(small, &r, &res, &err), BF_EPROTO, "%s", bf_err_text(&err));
	cr_assert(strstr(err.msg, t_etcd_endpoint(cluster, 0)), "%s", err.msg);
	/* The default limit (4 MiB) takes it. */
	cr_assert_eq(bf_etcd_range(client, &r, &res, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(res.kvs[0].value_len, n);
	bf_etcd_range_result_free(&res);
	bf_etcd_destroy(small);
	free(big);
}

Test(etcd_client, bad_endpoints_are_refused)
{
	bf_etcd *c = NULL;
	bf_err err;

	cr_assert_eq(bf_etcd_create("", NULL, &c, &err), BF_EINVAL);
	cr_assert_eq(bf_etcd_create("https://127.0.0.1:1", NULL, &c, &err), BF_EINVAL);
	cr_assert(strstr(err.msg, "needs --etcd-cacert"), "%s", err.msg);
	cr_assert_eq(bf_etcd_create("nohostport", NULL, &c, &err), BF_EINVAL);
	cr_assert_null(c);
}

Test(etcd_client, tls_settings_must_fit_the_endpoints)
{
	bf_etcd_security ca_only = { .tls = { .ca_file = "/x/ca.pem" } };
	bf_etcd_security cert_only = { .tls = { .ca_file = "/x/ca.pem", .cert_file = "/x/c.pem" } };
	bf_etcd_opts o = { .security = &ca_only };
	bf_etcd *c = NULL;
	bf_err err;

	cr_assert_eq(bf_etcd_security_check("https://a:1", &ca_only, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_etcd_security_check("a:1", &ca_only, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_etcd_security_check("a:1", NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_etcd_security_check("http://a:1", &ca_only, &err), BF_EINVAL);
	cr_assert(strstr(err.msg, "plain text (http://), but --etcd-cacert was given"), "%s",
		  err.msg);
	cr_assert_eq(bf_etcd_security_check("https://a:1", &cert_only, &err), BF_EINVAL);
	cr_assert(strstr(err.msg, "--etcd-cert needs --etcd-key"), "%s", err.msg);
	/* The files are read when the client is made. */
	cr_assert_eq(bf_etcd_create("https://127.0.0.1:1", &o, &c, &err), -ENOENT);
	cr_assert(strstr(err.msg, "etcd: --etcd-cacert /x/ca.pem: No such file"), "%s", err.msg);
	cr_assert_null(c);
}
