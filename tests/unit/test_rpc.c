/*
 * Tests of bfill's gRPC transport (rpc/): how statuses are named, mapped
 * and classified (which failures can have reached the server), and how
 * calls behave against endpoints where nothing listens or nothing answers:
 * the real gRPC core, so the status texts the classification relies on
 * are pinned here. Against real services the layer is exercised by the
 * etcd client's tests.
 */
#include "lock/etcd_wire.h"
#include "rpc/rpc.h"
#include "tests/support/etcd.h"
#include "tests/support/hang.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const bf_rpc_method PING = { "/bfill.test.Nothing/Ping", "Ping" };

static bf_rpc_pool *pool;
static t_hang *hang;

static void down(void)
{
	bf_rpc_pool_destroy(pool);
	pool = NULL;
	t_hang_stop(hang);
	hang = NULL;
	t_etcd_stop_all();
}

TestSuite(rpc, .fini = down, .timeout = 30);

static bf_rpc_channel *channel_to(const char *target)
{
	bf_rpc_pool_opts o = { .label = "test" };
	bf_rpc_channel *ch = NULL;
	bf_err err;

	if (!pool)
		cr_assert_eq(bf_rpc_pool_create(&o, &pool, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_rpc_pool_add(pool, target, &ch, &err), 0, "%s", bf_err_text(&err));
	cr_assert_str_eq(bf_rpc_channel_target(ch), target);
	return ch;
}

static bf_rpc_status status(int code, const char *details)
{
	bf_rpc_status st = { .code = code };
	snprintf(st.details, sizeof(st.details), "%s", details);
	return st;
}

/* ---- statuses ----------------------------------------------------------- */

Test(rpc, only_a_failed_connection_is_never_sent)
{
	static const struct {
		int code;
		const char *details;
		bool never_sent;
	} cases[] = {
		/* gRPC core 1.51, no connection could be made */
		{ BF_RPC_UNAVAILABLE,
		  "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: "
		  "Failed to connect to remote host: Connection refused",
		  true },
		{ BF_RPC_UNAVAILABLE,
		  "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: "
		  "connection attempt timed out before receiving SETTINGS frame",
		  true },
		{ BF_RPC_UNAVAILABLE, "failed to connect to all addresses", true },
		{ BF_RPC_UNAVAILABLE, "Connection refused", true },
		/* the connection broke after the request may have gone out */
		{ BF_RPC_UNAVAILABLE, "Socket closed", false },
		{ BF_RPC_UNAVAILABLE, "Connection reset by peer", false },
		{ BF_RPC_UNAVAILABLE, "Broken pipe", false },
		{ BF_RPC_UNAVAILABLE, "GOAWAY received", false },
		{ BF_RPC_UNAVAILABLE, "keepalive watchdog timeout", false },
		{ BF_RPC_UNAVAILABLE, "Endpoint read failed", false },
		{ BF_RPC_UNAVAILABLE, "", false },
		/* a server's own UNAVAILABLE */
		{ BF_RPC_UNAVAILABLE, "etcdserver: request timed out", false },
		/* not UNAVAILABLE at all */
		{ BF_RPC_DEADLINE_EXCEEDED, "Deadline Exceeded", false },
		{ BF_RPC_UNKNOWN, "failed to connect to all addresses", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bf_rpc_status st = status(cases[i].code, cases[i].details);
		cr_assert_eq(bf_rpc_status_never_sent(&st), cases[i].never_sent, "%s \"%s\"",
			     bf_rpc_status_name(st.code), st.details);
	}
}

Test(rpc, statuses_map_to_bfill_codes)
{
	static const struct {
		int code;
		const char *details;
		int want;
	} cases[] = {
		{ BF_RPC_OK, "", 0 },
		{ BF_RPC_CANCELLED, "", BF_ECANCELLED },
		{ BF_RPC_DEADLINE_EXCEEDED, "", BF_ETIMEDOUT },
		{ BF_RPC_UNAVAILABLE, "", BF_EUNAVAIL },
		{ BF_RPC_NOT_FOUND, "", BF_ENOTFOUND },
		{ BF_RPC_INVALID_ARGUMENT, "", BF_EINVAL },
		{ BF_RPC_RESOURCE_EXHAUSTED, "Received message larger than max (9 vs. 4)", BF_EPROTO },
		{ BF_RPC_RESOURCE_EXHAUSTED, "etcdserver: too many requests", BF_EUNAVAIL },
		{ BF_RPC_FAILED_PRECONDITION, "", BF_ESTATE },
		{ BF_RPC_PERMISSION_DENIED, "", -EACCES },
		{ BF_RPC_INTERNAL, "", BF_EPROTO },
		{ 99, "", BF_EPROTO },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bf_rpc_status st = status(cases[i].code, cases[i].details);
		cr_assert_eq(bf_rpc_status_code(&st), cases[i].want, "%s", bf_rpc_status_name(st.code));
	}
	cr_assert_str_eq(bf_rpc_status_name(BF_RPC_UNAVAILABLE), "UNAVAILABLE");
	cr_assert_str_eq(bf_rpc_status_name(99), "UNKNOWN_STATUS");
}

/* ---- calls against endpoints that do not serve -------------------------- */

Test(rpc, nothing_listening_fails_as_never_sent)
{
	char target[32];
	snprintf(target, sizeof(target), "%s", t_etcd_dead_endpoint());
	bf_rpc_channel *ch = channel_to(target);
	bf_rpc_call call = { .method = &PING, .deadline_ms = bf_now_ms() + 3000 };
	bf_rpc_buf req = { (uint8_t *)"x", 1 }, reply;
	bf_rpc_status st;
	bf_err err;

	cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, &reply, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(st.code, BF_RPC_UNAVAILABLE, "%s: %s", bf_rpc_status_name(st.code), st.details);
	cr_assert(bf_rpc_status_never_sent(&st), "gRPC's text changed: \"%s\"", st.details);
	cr_assert_null(reply.data);
	cr_assert_eq(bf_rpc_status_err(ch, &PING, &st, &err), BF_EUNAVAIL);
	cr_assert(strstr(err.msg, "test 127.0.0.1:"), "%s", err.msg);
	cr_assert(strstr(err.msg, "Ping: UNAVAILABLE: "), "%s", err.msg);
}

Test(rpc, a_hanging_server_is_bounded_by_the_deadline)
{
	hang = t_hang_start();
	bf_rpc_channel *ch = channel_to(t_hang_endpoint(hang));
	bf_rpc_md md[] = { { "bfill-fence", "/bfill/lock/u/1/1:42" }, { "hasleader", "true" } };
	int64_t t0 = bf_now_ms();
	bf_rpc_call call = { .method = &PING, .md = md, .n_md = 2, .deadline_ms = t0 + 400 };
	bf_rpc_buf req = { (uint8_t *)"x", 1 }, reply;
	bf_rpc_status st;
	bf_err err;

	cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, &reply, &err), 0, "%s", bf_err_text(&err));
	int64_t took = bf_now_ms() - t0;
	cr_assert_eq(st.code, BF_RPC_DEADLINE_EXCEEDED, "%s: %s", bf_rpc_status_name(st.code),
		     st.details);
	cr_assert(took >= 350 && took <= 2500, "took %lld ms", (long long)took);
}

static bool after_200ms(void *arg)
{
	return bf_now_ms() - *(int64_t *)arg >= 200;
}

Test(rpc, the_interrupt_hook_cancels_a_waiting_call)
{
	hang = t_hang_start();
	bf_rpc_channel *ch = channel_to(t_hang_endpoint(hang));
	int64_t t0 = bf_now_ms();
	bf_rpc_call call = { .method = &PING, .deadline_ms = t0 + 10000,
			     .interrupted = after_200ms, .interrupt_arg = &t0 };
	bf_rpc_buf req = { (uint8_t *)"x", 1 }, reply;
	bf_rpc_status st;
	bf_err err;

	cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, &reply, &err), BF_ECANCELLED);
	int64_t took = bf_now_ms() - t0;
	cr_assert(took >= 190 && took <= 2000, "took %lld ms", (long long)took);
	cr_assert(strstr(err.msg, "Ping: cancelled"), "%s", err.msg);
}

Test(rpc, a_stream_that_gets_no_answer_times_out_and_closes)
{
	hang = t_hang_start();
	bf_rpc_channel *ch = channel_to(t_hang_endpoint(hang));
	bf_rpc_call call = { .method = &PING };
	bf_rpc_stream *s = NULL;
	bf_rpc_buf msg = { (uint8_t *)"x", 1 }, in;
	bf_rpc_status st;
	bf_err err;

	cr_assert_eq(bf_rpc_stream_open(ch, &call, &s, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_rpc_stream_channel(s), ch);
	cr_assert_eq(bf_rpc_stream_send(s, &msg, bf_now_ms() + 1000, &err), 0, "%s",
		     bf_err_text(&err));
	int64_t t0 = bf_now_ms();
	cr_assert_eq(bf_rpc_stream_recv(s, t0 + 300, &in, &err), BF_ETIMEDOUT);
	cr_assert_geq(bf_now_ms() - t0, 290);
	cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + 100, &st, &err), BF_ETIMEDOUT);
	cr_assert_null(bf_rpc_stream_status(s));
	t0 = bf_now_ms();
	bf_rpc_stream_destroy(s);
	cr_assert_leq(bf_now_ms() - t0, 2000);
}

Test(rpc, too_much_metadata_is_refused)
{
	bf_rpc_channel *ch = channel_to(t_etcd_dead_endpoint());
	bf_rpc_md md[BF_RPC_MAX_MD + 1];
	bf_rpc_call call = { .method = &PING, .md = md, .n_md = BF_RPC_MAX_MD + 1,
			     .deadline_ms = bf_now_ms() + 1000 };
	bf_rpc_buf req = { (uint8_t *)"x", 1 }, reply;
	bf_rpc_stream *s = NULL;
	bf_rpc_status st;
	bf_err err;

	for (size_t i = 0; i < BF_RPC_MAX_MD + 1; i++)
		md[i] = (bf_rpc_md){ "k", "v" };
	cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, &reply, &err), BF_EINVAL);
	cr_assert_eq(bf_rpc_stream_open(ch, &call, &s, &err), BF_EINVAL);
	cr_assert_null(s);
}

/* ---- a stream against a real server ------------------------------------- */

/*
 * etcd's LeaseKeepAlive as a plain bidi stream: several sends and their
 * replies, then the half-close, after which the server ends the call with
 * OK. (A lease etcd does not know is answered with TTL 0, not an error.)
 */
Test(rpc, a_stream_sends_receives_half_closes_and_ends)
{
	static const bf_rpc_method KEEPALIVE = { "/etcdserverpb.Lease/LeaseKeepAlive",
						 "LeaseKeepAlive" };
	t_etcd *e = t_etcd_start(1);
	bf_rpc_channel *ch = channel_to(t_etcd_endpoint(e, 0));
	bf_rpc_md md = { "hasleader", "true" };
	bf_rpc_call call = { .method = &KEEPALIVE, .md = &md, .n_md = 1 };
	bf_rpc_stream *s = NULL;
	bf_rpc_buf req = { 0 }, reply;
	bf_rpc_status st;
	int64_t id, ttl;
	bf_err err;

	cr_assert_eq(bf_etcd_wire_keepalive(0x5eed, &req), 0);
	cr_assert_eq(bf_rpc_stream_open(ch, &call, &s, &err), 0, "%s", bf_err_text(&err));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(bf_rpc_stream_send(s, &req, bf_now_ms() + 3000, &err), 0, "%s",
			     bf_err_text(&err));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(bf_rpc_stream_recv(s, bf_now_ms() + 3000, &reply, &err), 0, "%s",
			     bf_err_text(&err));
		cr_assert_eq(bf_etcd_unwire_keepalive(reply.data, reply.len, 1 << 20, &id, &ttl,
						      &err), 0, "%s", bf_err_text(&err));
		cr_assert_eq(id, 0x5eed);
		cr_assert_leq(ttl, 0);
		bf_rpc_buf_free(&reply);
	}
	cr_assert_null(bf_rpc_stream_status(s));
	cr_assert_eq(bf_rpc_stream_close_send(s, bf_now_ms() + 3000, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + 3000, &st, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(st.code, BF_RPC_OK, "%s: %s", bf_rpc_status_name(st.code), st.details);
	cr_assert_not_null(bf_rpc_stream_status(s));
	/* Nothing more to read: the end shows as an error. */
	cr_assert_eq(bf_rpc_stream_recv(s, bf_now_ms() + 1000, &reply, &err), BF_EUNAVAIL);
	cr_assert(strstr(err.msg, "closed by the server"), "%s", err.msg);
	bf_rpc_stream_destroy(s);
	bf_rpc_buf_free(&req);
}
