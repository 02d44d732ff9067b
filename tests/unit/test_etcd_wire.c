/*
 * Unit tests of the etcd wire layer (lock/etcd_wire.c): request encoding
 * and, above all, that replies which are garbage, truncated, oversized or
 * break etcd's contract are refused as BF_EPROTO without touching memory
 * they should not (these tests also run under ASan+UBSan). No etcd needed.
 */
#include "lock/etcd_wire.h"
#include "proto/etcdserverpb.pb-c.h"
#include "tests/support/etcd_reply.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT ((size_t)1 << 20)

/* A packed RangeResponse with two key-values (caller frees). */
static bf_rpc_buf sample_range(void)
{
	Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = t_etcd_header(42);
	Mvccpb__KeyValue a = t_etcd_kv("/bfill/lock/7/1/abc", 10, 12, "v1");
	Mvccpb__KeyValue b = t_etcd_kv("/bfill/lock/7/1/def", 11, 11, "");
	Mvccpb__KeyValue *kvs[] = { &a, &b };
	bf_rpc_buf out;

	r.header = &h;
	r.n_kvs = 2;
	r.kvs = kvs;
	r.count = 2;
	out.len = etcdserverpb__range_response__get_packed_size(&r);
	out.data = malloc(out.len);
	cr_assert_not_null(out.data);
	etcdserverpb__range_response__pack(&r, out.data);
	return out;
}

Test(etcd_wire, range_reply_decodes)
{
	bf_rpc_buf b = sample_range();
	bf_etcd_range_result res;
	bf_err err;

	cr_assert_eq(bf_etcd_unwire_range(b.data, b.len, LIMIT, &res, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(res.revision, 42);
	cr_assert_eq(res.n_kvs, 2);
	cr_assert_str_eq(res.kvs[0].key, "/bfill/lock/7/1/abc");
	cr_assert_eq(res.kvs[0].key_len, strlen("/bfill/lock/7/1/abc"));
	cr_assert_str_eq(res.kvs[0].value, "v1");
	cr_assert_eq(res.kvs[0].create_revision, 10);
	cr_assert_eq(res.kvs[0].mod_revision, 12);
	cr_assert_eq(res.kvs[1].value_len, 0);
	cr_assert_eq(res.kvs[1].lease, 0x694d8a5f2b3c1c0d);
	cr_assert_eq(res.count, 2);
	bf_etcd_range_result_free(&res);
	bf_rpc_buf_free(&b);
}

Test(etcd_wire, every_truncation_is_refused_or_a_prefix)
{
	bf_rpc_buf b = sample_range();
	size_t refused = 0;

	for (size_t len = 0; len < b.len; len++) {
		/* An exact copy, so ASan sees any read past the cut. */
		uint8_t *cut = malloc(len ? len : 1);
		bf_etcd_range_result res;
		bf_err err;
		int rc;

		memcpy(cut, b.data, len);
		rc = bf_etcd_unwire_range(cut, len, LIMIT, &res, &err);
		cr_assert(rc == 0 || rc == BF_EPROTO, "cut at %zu: rc %d", len, rc);
		if (rc == 0)
			cr_assert_leq(res.n_kvs, 2);
		else
			refused++;
		bf_etcd_range_result_free(&res);
		free(cut);
	}
	/* Cuts inside a field, and any cut that drops the header, fail. */
	cr_assert_gt(refused, b.len / 2, "only %zu of %zu cuts refused", refused, b.len);
	bf_rpc_buf_free(&b);
}

Test(etcd_wire, one_byte_short_is_malformed)
{
	bf_rpc_buf b = sample_range();
	bf_etcd_range_result res;
	bf_err err;

	cr_assert_eq(bf_etcd_unwire_range(b.data, b.len - 1, LIMIT, &res, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "malformed RangeResponse"), "%s", err.msg);
	cr_assert_eq(res.n_kvs, 0);
	bf_rpc_buf_free(&b);
}

Test(etcd_wire, huge_field_length_is_malformed)
{
	/* Field 2 (kvs), length-delimited, claiming ~2^63 bytes follow. */
	static const uint8_t huge[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0x7f, 0x0a, 0x00 };
	/* The same with a 10-byte varint overflowing 64 bits. */
	static const uint8_t overflow[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	/* A 4 GiB length on a tiny buffer. */
	static const uint8_t big[] = { 0x12, 0x80, 0x80, 0x80, 0x80, 0x10, 0x0a };
	const struct { const uint8_t *p; size_t n; } cases[] = {
		{ huge, sizeof(huge) }, { overflow, sizeof(overflow) }, { big, sizeof(big) },
	};
	bf_etcd_range_result res;
	bf_etcd_txn_result txn;
	bf_etcd_watch_reply wr;
	bf_err err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(bf_etcd_unwire_range(cases[i].p, cases[i].n, LIMIT, &res, &err),
			     BF_EPROTO, "case %zu", i);
		cr_assert_eq(bf_etcd_unwire_txn(cases[i].p, cases[i].n, LIMIT, &txn, &err),
			     BF_EPROTO, "case %zu", i);
		cr_assert_eq(bf_etcd_unwire_watch(cases[i].p, cases[i].n, LIMIT, &wr, &err),
			     BF_EPROTO, "case %zu", i);
	}
}

Test(etcd_wire, oversized_reply_is_refused_before_parsing)
{
	bf_rpc_buf b = sample_range();
	bf_etcd_range_result res;
	int64_t id, ttl;
	bf_err err;

	cr_assert_eq(bf_etcd_unwire_range(b.data, b.len, b.len - 1, &res, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "exceeds"), "%s", err.msg);
	cr_assert_eq(bf_etcd_unwire_keepalive(b.data, b.len, 8, &id, &ttl, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "exceeds"), "%s", err.msg);
	bf_rpc_buf_free(&b);
}

/* Decodes garbage with every decoder: each returns 0 or BF_EPROTO. */
static void decode_all(const uint8_t *p, size_t n, size_t *refused)
{
	bf_etcd_range_result range;
	bf_etcd_txn_result txn;
	bf_etcd_watch_reply wr;
	bf_etcd_status_info st;
	int64_t a, b;
	bf_err err;
	int rc[10];

	rc[0] = bf_etcd_unwire_range(p, n, LIMIT, &range, &err);
	bf_etcd_range_result_free(&range);
	rc[1] = bf_etcd_unwire_txn(p, n, LIMIT, &txn, &err);
	bf_etcd_txn_result_free(&txn);
	rc[2] = bf_etcd_unwire_put(p, n, LIMIT, &a, &err);
	rc[3] = bf_etcd_unwire_delete(p, n, LIMIT, &a, &b, &err);
	rc[4] = bf_etcd_unwire_lease_grant(p, n, LIMIT, &a, &b, &err);
	rc[5] = bf_etcd_unwire_lease_revoke(p, n, LIMIT, &err);
	rc[6] = bf_etcd_unwire_lease_ttl(p, n, LIMIT, &a, &err);
	rc[7] = bf_etcd_unwire_keepalive(p, n, LIMIT, &a, &b, &err);
	rc[8] = bf_etcd_unwire_watch(p, n, LIMIT, &wr, &err);
	rc[9] = bf_etcd_unwire_status(p, n, LIMIT, &st, &err);
	for (int i = 0; i < 10; i++) {
		/* LeaseGrant's own error string maps to BF_EUNAVAIL. */
		cr_assert(rc[i] == 0 || rc[i] == BF_EPROTO || (i == 4 && rc[i] == BF_EUNAVAIL),
			  "decoder %d: rc %d", i, rc[i]);
		*refused += rc[i] != 0;
	}
}

Test(etcd_wire, random_garbage_never_crashes)
{
	uint64_t seed = 0x5eed;
	size_t refused = 0, runs = 2000;

	for (size_t r = 0; r < runs; r++) {
		size_t n = bf_splitmix64(&seed) % 64;
		uint8_t *p = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t)bf_splitmix64(&seed);
		decode_all(p, n, &refused);
		free(p);
	}
	cr_assert_gt(refused, runs * 10 * 9 / 10, "garbage accepted too often: %zu refused",
		     refused);
}

Test(etcd_wire, empty_reply_lacks_a_header)
{
	bf_etcd_range_result res;
	bf_err err;

	cr_assert_eq(bf_etcd_unwire_range((const uint8_t *)"", 0, LIMIT, &res, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "header"), "%s", err.msg);
}

Test(etcd_wire, key_value_without_key_or_revision_is_refused)
{
	Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = t_etcd_header(5);
	Mvccpb__KeyValue nokey = t_etcd_kv("", 3, 3, "x");
	Mvccpb__KeyValue norev = t_etcd_kv("/k", 0, 3, "x");
	Mvccpb__KeyValue *one[1];
	uint8_t buf[256];
	bf_etcd_range_result res;
	bf_err err;

	r.header = &h;
	r.n_kvs = 1;
	r.kvs = one;
	one[0] = &nokey;
	size_t n = etcdserverpb__range_response__pack(&r, buf);
	cr_assert_eq(bf_etcd_unwire_range(buf, n, LIMIT, &res, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "without a key"), "%s", err.msg);
	one[0] = &norev;
	n = etcdserverpb__range_response__pack(&r, buf);
	cr_assert_eq(bf_etcd_unwire_range(buf, n, LIMIT, &res, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "create revision"), "%s", err.msg);
}

Test(etcd_wire, txn_reply_with_empty_op_is_refused)
{
	Etcdserverpb__TxnResponse t = ETCDSERVERPB__TXN_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = t_etcd_header(9);
	Etcdserverpb__ResponseOp empty = ETCDSERVERPB__RESPONSE_OP__INIT;
	Etcdserverpb__ResponseOp *ops[] = { &empty };
	uint8_t buf[128];
	bf_etcd_txn_result res;
	bf_err err;

	t.header = &h;
	t.succeeded = 1;
	t.n_responses = 1;
	t.responses = ops;
	size_t n = etcdserverpb__txn_response__pack(&t, buf);
	cr_assert_eq(bf_etcd_unwire_txn(buf, n, LIMIT, &res, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "unexpected kind"), "%s", err.msg);
	cr_assert_eq(res.n_ops, 0);
}

Test(etcd_wire, txn_reply_nested_range_takes_txn_revision)
{
	Etcdserverpb__TxnResponse t = ETCDSERVERPB__TXN_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = t_etcd_header(77);
	Etcdserverpb__RangeResponse rr = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	Etcdserverpb__ResponseOp put = ETCDSERVERPB__RESPONSE_OP__INIT;
	Etcdserverpb__PutResponse pr = ETCDSERVERPB__PUT_RESPONSE__INIT;
	Etcdserverpb__ResponseOp range = ETCDSERVERPB__RESPONSE_OP__INIT;
	Mvccpb__KeyValue a = t_etcd_kv("/p/1", 70, 70, "");
	Mvccpb__KeyValue *kvs[] = { &a };
	Etcdserverpb__ResponseOp *ops[] = { &put, &range };
	uint8_t buf[256];
	bf_etcd_txn_result res;
	bf_err err;

	put.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
	put.response_put = &pr;
	rr.n_kvs = 1;
	rr.kvs = kvs;
	range.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
	range.response_range = &rr;
	t.header = &h;
	t.succeeded = 1;
	t.n_responses = 2;
	t.responses = ops;
	size_t n = etcdserverpb__txn_response__pack(&t, buf);
	cr_assert_eq(bf_etcd_unwire_txn(buf, n, LIMIT, &res, &err), 0, "%s", bf_err_text(&err));
	cr_assert(res.succeeded);
	cr_assert_eq(res.revision, 77);
	cr_assert_eq(res.n_ops, 2);
	cr_assert_eq(res.ops[0].kind, BF_ETCD_OP_PUT);
	cr_assert_eq(res.ops[1].kind, BF_ETCD_OP_RANGE);
	cr_assert_eq(res.ops[1].range.revision, 77);
	cr_assert_str_eq(res.ops[1].range.kvs[0].key, "/p/1");
	bf_etcd_txn_result_free(&res);
}

static bool key_is_p2(const char *key, size_t len, void *arg)
{
	(void)arg;
	return len == 4 && !memcmp(key, "/p/2", 4);
}

Test(etcd_wire, watch_reply_counts_deletes)
{
	Etcdserverpb__WatchResponse w = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = t_etcd_header(20);
	Mvccpb__KeyValue gone = MVCCPB__KEY_VALUE__INIT;
	Mvccpb__Event del = MVCCPB__EVENT__INIT, bad = MVCCPB__EVENT__INIT;
	Mvccpb__Event *evs[] = { &del };
	uint8_t buf[256];
	bf_etcd_watch_reply wr;
	bf_err err;

	gone.key.data = (uint8_t *)"/p/1";
	gone.key.len = 4;
	gone.mod_revision = 20; /* deleted keys carry no create revision */
	del.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
	del.kv = &gone;
	w.header = &h;
	w.watch_id = 1;
	w.n_events = 1;
	w.events = evs;
	size_t n = etcdserverpb__watch_response__pack(&w, buf);
	cr_assert_eq(bf_etcd_unwire_watch(buf, n, LIMIT, &wr, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(wr.deletes, 1);
	cr_assert_eq(wr.puts, 0);
	/* A filter that turns the key down leaves it uncounted. */
	cr_assert_eq(bf_etcd_unwire_watch_some(buf, n, LIMIT, key_is_p2, NULL, &wr, &err), 0);
	cr_assert_eq(wr.deletes, 0);

	evs[0] = &bad; /* an event without a key-value */
	n = etcdserverpb__watch_response__pack(&w, buf);
	cr_assert_eq(bf_etcd_unwire_watch(buf, n, LIMIT, &wr, &err), BF_EPROTO);
	cr_assert_eq(bf_etcd_unwire_watch_some(buf, n, LIMIT, key_is_p2, NULL, &wr, &err), BF_EPROTO);
}

Test(etcd_wire, lease_grant_reply_checks)
{
	Etcdserverpb__LeaseGrantResponse g = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = t_etcd_header(3);
	uint8_t buf[128];
	int64_t id = 0, ttl = 0;
	bf_err err;

	g.header = &h;
	g.id = 0x1234;
	g.ttl = 10;
	size_t n = etcdserverpb__lease_grant_response__pack(&g, buf);
	cr_assert_eq(bf_etcd_unwire_lease_grant(buf, n, LIMIT, &id, &ttl, &err), 0);
	cr_assert_eq(id, 0x1234);
	cr_assert_eq(ttl, 10);
	g.id = 0; /* no lease */
	n = etcdserverpb__lease_grant_response__pack(&g, buf);
	cr_assert_eq(bf_etcd_unwire_lease_grant(buf, n, LIMIT, &id, &ttl, &err), BF_EPROTO);
	g.id = 5;
	g.error = "lease already exists";
	n = etcdserverpb__lease_grant_response__pack(&g, buf);
	cr_assert_eq(bf_etcd_unwire_lease_grant(buf, n, LIMIT, &id, &ttl, &err), BF_EUNAVAIL);
	cr_assert(strstr(err.msg, "lease already exists"), "%s", err.msg);
}

Test(etcd_wire, mutex_txn_request_encodes_like_etcd)
{
	bf_etcd_compare absent = { .key = "/l/a", .target = BF_ETCD_CMP_CREATE,
				   .result = BF_ETCD_EQUAL, .number = 0 };
	bf_etcd_op put = { .kind = BF_ETCD_OP_PUT, .key = "/l/a", .lease = 99 };
	bf_etcd_op first = { .kind = BF_ETCD_OP_RANGE,
			     .range = { .key = "/l/", .range_end = "/l0", .limit = 1,
					.sort_order = BF_ETCD_SORT_ASCEND,
					.sort_target = BF_ETCD_BY_CREATE } };
	bf_etcd_op del = { .kind = BF_ETCD_OP_DELETE, .key = "/l/a" };
	bf_etcd_op success[] = { put, first };
	bf_etcd_op failure[] = { del };
	bf_etcd_txn_req req = { &absent, 1, success, 2, failure, 1 };
	bf_rpc_buf b = { 0 };
	Etcdserverpb__TxnRequest *t;

	cr_assert_eq(bf_etcd_wire_txn(&req, &b), 0);
	t = etcdserverpb__txn_request__unpack(NULL, b.len, b.data);
	cr_assert_not_null(t);
	cr_assert_eq(t->n_compare, 1);
	/* The zero operand is sent explicitly, as a set oneof member. */
	cr_assert_eq(t->compare[0]->target_union_case,
		     ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION);
	cr_assert_eq(t->compare[0]->target, ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE);
	cr_assert_eq(t->n_success, 2);
	cr_assert_eq(t->success[0]->request_case, ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT);
	cr_assert_eq(t->success[0]->request_put->lease, 99);
	cr_assert_eq(t->success[1]->request_range->sort_target,
		     ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE);
	cr_assert_eq(t->success[1]->request_range->limit, 1);
	cr_assert_eq(t->success[1]->request_range->range_end.len, 3);
	cr_assert_eq(t->n_failure, 1);
	cr_assert_eq(t->failure[0]->request_case,
		     ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE);
	etcdserverpb__txn_request__free_unpacked(t, NULL);
	bf_rpc_buf_free(&b);

	/* A missing key is refused before anything goes out. */
	bf_etcd_op nokey = { .kind = BF_ETCD_OP_PUT };
	bf_etcd_txn_req bad = { NULL, 0, &nokey, 1, NULL, 0 };
	cr_assert_eq(bf_etcd_wire_txn(&bad, &b), BF_EINVAL);
}

Test(etcd_wire, prefix_end)
{
	char *end = NULL;
	bf_err err;

	cr_assert_eq(bf_etcd_prefix_end("/bfill/lock/7/1/", &end, &err), 0);
	cr_assert_str_eq(end, "/bfill/lock/7/10");
	free(end);
	cr_assert_eq(bf_etcd_prefix_end("a\xff\xff", &end, &err), 0);
	cr_assert_str_eq(end, "b");
	free(end);
	cr_assert_eq(bf_etcd_prefix_end("\xff", &end, &err), BF_ERANGE);
	cr_assert_null(end);
	cr_assert_eq(bf_etcd_prefix_end("", &end, &err), BF_ERANGE);
}

/* A grant carries the lease ID bfill chose (field 2), so that a grant
 * whose outcome is unknown can be revoked by that ID. */
Test(etcd_wire, lease_grant_request_names_its_lease)
{
	bf_rpc_buf b = { 0 };

	cr_assert_eq(bf_etcd_wire_lease_grant(10, 0x694d8a5f2b3c1c0d, &b), 0);
	Etcdserverpb__LeaseGrantRequest *m =
		etcdserverpb__lease_grant_request__unpack(NULL, b.len, b.data);
	cr_assert_not_null(m);
	cr_assert_eq(m->ttl, 10);
	cr_assert_eq(m->id, 0x694d8a5f2b3c1c0d);
	etcdserverpb__lease_grant_request__free_unpacked(m, NULL);
	bf_rpc_buf_free(&b);
}

/* Which failed writes may go to another member: only those etcd surely
 * did not apply. */
Test(etcd_wire, write_not_applied_only_when_surely_not_sent_or_no_leader)
{
	static const struct {
		int code;
		const char *details;
		bool not_applied;
	} cases[] = {
		{ BF_RPC_UNAVAILABLE, "etcdserver: no leader", true },
		{ BF_RPC_UNAVAILABLE,
		  "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:2379: "
		  "Failed to connect to remote host: Connection refused",
		  true },
		{ BF_RPC_UNAVAILABLE, "etcdserver: request timed out", false },
		{ BF_RPC_UNAVAILABLE,
		  "etcdserver: request timed out, possibly due to previous leader failure", false },
		{ BF_RPC_UNAVAILABLE, "etcdserver: leader changed", false },
		{ BF_RPC_UNAVAILABLE, "etcdserver: server stopped", false },
		/* the transport's other failures: see test_rpc.c */
		{ BF_RPC_UNAVAILABLE, "Socket closed", false },
		{ BF_RPC_DEADLINE_EXCEEDED, "Deadline Exceeded", false },
		{ BF_RPC_FAILED_PRECONDITION, "etcdserver: no leader", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bf_rpc_status st = { .code = cases[i].code };
		snprintf(st.details, sizeof(st.details), "%s", cases[i].details);
		cr_assert_eq(bf_etcd_write_not_applied(&st), cases[i].not_applied, "%s \"%s\"",
			     bf_rpc_status_name(st.code), st.details);
	}
}

/*
 * Text a reply carries (LeaseGrant's error, a watch's cancel reason, the
 * server version, a bad key) reaches messages and status lines as one
 * printable line, whatever bytes it held. Found by fuzz_etcd: a LeaseGrant
 * error with a newline split the error message in two.
 */
Test(etcd_wire, reply_text_stays_on_one_line)
{
	Etcdserverpb__LeaseGrantResponse g = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
	Etcdserverpb__WatchResponse w = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	Etcdserverpb__StatusResponse s = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = t_etcd_header(3);
	Mvccpb__KeyValue k = t_etcd_kv("/bad\nkey", 0, 0, "");
	Mvccpb__KeyValue *kvs[] = { &k };
	uint8_t buf[256];
	int64_t id = 0, ttl = 0;
	bf_etcd_watch_reply wr;
	bf_etcd_status_info info;
	bf_etcd_range_result res;
	bf_err err;

	g.header = &h;
	g.id = 5;
	g.ttl = 10;
	g.error = "too many\nrequests\x1b[2J";
	size_t n = etcdserverpb__lease_grant_response__pack(&g, buf);
	cr_assert_eq(bf_etcd_unwire_lease_grant(buf, n, LIMIT, &id, &ttl, &err), BF_EUNAVAIL);
	cr_assert_str_eq(err.msg, "LeaseGrant refused: too many\\x0arequests\\x1b[2J");

	w.header = &h;
	w.canceled = 1;
	w.cancel_reason = "compacted\r\nnext";
	n = etcdserverpb__watch_response__pack(&w, buf);
	cr_assert_eq(bf_etcd_unwire_watch(buf, n, LIMIT, &wr, &err), 0, "%s", bf_err_text(&err));
	cr_assert_str_eq(wr.cancel_reason, "compacted\\x0d\\x0anext");

	s.header = &h;
	s.version = "3.5\n";
	n = etcdserverpb__status_response__pack(&s, buf);
	cr_assert_eq(bf_etcd_unwire_status(buf, n, LIMIT, &info, &err), 0, "%s", bf_err_text(&err));
	cr_assert_str_eq(info.version, "3.5\\x0a");

	r.header = &h;
	r.n_kvs = 1;
	r.kvs = kvs;
	n = etcdserverpb__range_response__pack(&r, buf);
	cr_assert_eq(bf_etcd_unwire_range(buf, n, LIMIT, &res, &err), BF_EPROTO);
	cr_assert_null(strchr(err.msg, '\n'), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "/bad\\x0akey"), "%s", err.msg);
}

/* An AuthenticateResponse carrying token (NULL: none), packed. */
static bf_rpc_buf auth_reply(const char *token)
{
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__AuthenticateResponse m = ETCDSERVERPB__AUTHENTICATE_RESPONSE__INIT;
	bf_rpc_buf b;

	h.revision = 3;
	m.header = &h;
	m.token = (char *)(token ? token : "");
	b.len = protobuf_c_message_get_packed_size(&m.base);
	b.data = malloc(b.len ? b.len : 1);
	cr_assert_not_null(b.data);
	protobuf_c_message_pack(&m.base, b.data);
	return b;
}

Test(etcd_wire, authenticate_request_and_token)
{
	bf_rpc_buf req = { 0 }, reply;
	char *token = NULL, longer[BF_ETCD_TOKEN_MAX + 8];
	bf_err err;

	cr_assert_eq(bf_etcd_wire_authenticate("root", "pw", &req), 0);
	Etcdserverpb__AuthenticateRequest *r = etcdserverpb__authenticate_request__unpack(
		NULL, req.len, req.data);
	cr_assert_not_null(r);
	cr_assert_str_eq(r->name, "root");
	cr_assert_str_eq(r->password, "pw");
	etcdserverpb__authenticate_request__free_unpacked(r, NULL);
	bf_etcd_wire_wipe(&req);
	cr_assert_null(req.data);
	cr_assert_eq(bf_etcd_wire_authenticate("", "pw", &req), BF_EINVAL, "a user has a name");

	reply = auth_reply("AbCdEfGh.42");
	cr_assert_eq(bf_etcd_unwire_authenticate(reply.data, reply.len, 4096, &token, &err), 0,
		     "%s", bf_err_text(&err));
	cr_assert_str_eq(token, "AbCdEfGh.42");
	free(token);
	bf_rpc_buf_free(&reply);

	/* A token goes back in a header: empty, too long or with bytes a
	 * header cannot hold is the reply's fault, said at once. */
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	const char *bad[] = { NULL, "with space", "line\nbreak", "\x7f", longer };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reply = auth_reply(bad[i]);
		cr_assert_eq(bf_etcd_unwire_authenticate(reply.data, reply.len, 1 << 20, &token, &err),
			     BF_EPROTO, "bad token %zu", i);
		cr_assert_null(token);
		cr_assert(strstr(bf_err_text(&err), "AuthenticateResponse"), "%s", bf_err_text(&err));
		bf_rpc_buf_free(&reply);
	}
}
