/*
 * Tests of the gRPC core server (rpc/server.h) against bfill's own client
 * transport on loopback: dispatch by path, unary and client-streaming
 * calls, metadata, statuses with details, the receive limit, idle streams,
 * a pool that grows under blocked handlers, and stopping with calls in
 * flight.
 */
#include "rpc/rpc.h"
#include "rpc/server.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static const bf_rpc_method ECHO = { "/bfill.test.T/Echo", "Echo" };
static const bf_rpc_method SUM = { "/bfill.test.T/Sum", "Sum" };
static const bf_rpc_method SILENT = { "/bfill.test.T/Silent", "Silent" };
static const bf_rpc_method REFUSE = { "/bfill.test.T/Refuse", "Refuse" };
static const bf_rpc_method GATHER = { "/bfill.test.T/Gather", "Gather" };
static const bf_rpc_method NOPE = { "/bfill.test.T/Nope", "Nope" };
static const bf_rpc_method FIRST = { "/bfill.test.T/First", "First" };

static bf_rpc_server *srv;
static bf_rpc_pool *pool;
static char target[64];

static atomic_int errors_seen, last_error_code, stream_cancels, reply_failures, gathered;

/* Calls whose handler learned that the client was gone: at a receive, or,
 * when the cancel came in just as the stream looked half-closed, when its
 * reply could not go out. */
static int gone(void)
{
	return atomic_load(&stream_cancels) + atomic_load(&reply_failures);
}

static void down(void)
{
	bf_rpc_pool_destroy(pool);
	pool = NULL;
	bf_rpc_server_destroy(srv);
	srv = NULL;
}

TestSuite(rpc_server, .fini = down, .timeout = 60);

/* Echo: the request back, then ":" and the "x-tag" metadata value. */
static void h_echo(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	const char *tag = bf_rpc_server_call_md(c, "x-tag");
	char out[256];
	int n = snprintf(out, sizeof(out), "%.*s:%s", (int)req->len, (const char *)req->data,
			 tag ? tag : "-");
	bf_rpc_buf reply = { (uint8_t *)out, (size_t)n };
	(void)arg;
	bf_rpc_server_reply(c, &reply, NULL);
}

/* Sum: counts messages and bytes of a client stream until the half-close. */
static void h_sum(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	size_t msgs = 0, bytes = 0;
	char out[64];
	(void)req;
	(void)arg;
	for (;;) {
		bf_rpc_buf m;
		bool end;
		if (bf_rpc_server_recv(c, &m, &end, NULL)) {
			atomic_fetch_add(&stream_cancels, 1);
			return;
		}
		if (end)
			break;
		msgs++;
		bytes += m.len;
		bf_rpc_buf_free(&m);
	}
	int n = snprintf(out, sizeof(out), "%zu/%zu", msgs, bytes);
	bf_rpc_buf reply = { (uint8_t *)out, (size_t)n };
	if (bf_rpc_server_reply(c, &reply, NULL))
		atomic_fetch_add(&reply_failures, 1);
}

/* First: reads one message of a client stream and fails the call, as a
 * node refuses a Write whose meta it does not like. */
static void h_first(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	bf_rpc_buf m;
	bool end;
	(void)req;
	(void)arg;
	if (bf_rpc_server_recv(c, &m, &end, NULL) == 0)
		bf_rpc_buf_free(&m);
	bf_rpc_server_fail(c, BF_RPC_UNKNOWN, "RequestTooOld(\"epoch not match\")");
}

static void h_silent(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	(void)c;
	(void)req;
	(void)arg;
}

static void h_refuse(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	(void)arg;
	bf_rpc_server_fail(c, BF_RPC_FAILED_PRECONDITION, "refused %zu bytes", req->len);
}

/* Gather: each call waits until 4 are in at once, so 4 calls on a server
 * started with one worker pass only if the pool grows. */
static void h_gather(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	bf_rpc_buf reply = { (uint8_t *)"ok", 2 };
	int64_t until = bf_now_ms() + 10000;
	(void)req;
	(void)arg;
	atomic_fetch_add(&gathered, 1);
	while (atomic_load(&gathered) < 4 && bf_now_ms() < until)
		bf_sleep_ms(5);
	if (atomic_load(&gathered) >= 4)
		bf_rpc_server_reply(c, &reply, NULL);
	else
		bf_rpc_server_fail(c, BF_RPC_ABORTED, "only %d calls at once", atomic_load(&gathered));
}

static void on_error(void *arg, const char *method, const char *peer, int code,
		     const char *details)
{
	(void)arg;
	(void)method;
	(void)peer;
	(void)details;
	atomic_fetch_add(&errors_seen, 1);
	atomic_store(&last_error_code, code);
}

static void start(int threads, int max_threads, size_t max_recv, int idle_ms)
{
	bf_rpc_server_opts o = { .label = "test server", .threads = threads,
				 .max_threads = max_threads, .max_recv_bytes = max_recv,
				 .idle_timeout_ms = idle_ms, .on_error = on_error };
	bf_rpc_pool_opts po = { .label = "client" };
	bf_err err;
	int port = 0;

	cr_assert_eq(bf_rpc_server_create(&o, &srv, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_rpc_server_add_method(srv, ECHO.path, BF_RPC_KIND_UNARY, h_echo, NULL, &err), 0);
	cr_assert_eq(bf_rpc_server_add_method(srv, SUM.path, BF_RPC_KIND_CLIENT_STREAM, h_sum, NULL,
					      &err), 0);
	cr_assert_eq(bf_rpc_server_add_method(srv, SILENT.path, BF_RPC_KIND_UNARY, h_silent, NULL,
					      &err), 0);
	cr_assert_eq(bf_rpc_server_add_method(srv, FIRST.path, BF_RPC_KIND_CLIENT_STREAM, h_first,
					      NULL, &err), 0);
	cr_assert_eq(bf_rpc_server_add_method(srv, REFUSE.path, BF_RPC_KIND_UNARY, h_refuse, NULL,
					      &err), 0);
	cr_assert_eq(bf_rpc_server_add_method(srv, GATHER.path, BF_RPC_KIND_UNARY, h_gather, NULL,
					      &err), 0);
	cr_assert_eq(bf_rpc_server_add_method(srv, ECHO.path, BF_RPC_KIND_UNARY, h_echo, NULL, &err),
		     BF_EEXIST);
	cr_assert_eq(bf_rpc_server_start(srv, "127.0.0.1:0", &port, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_gt(port, 0);
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	cr_assert_eq(bf_rpc_pool_create(&po, &pool, &err), 0, "%s", bf_err_text(&err));
}

static bf_rpc_channel *channel(void)
{
	bf_rpc_channel *ch;
	bf_err err;
	cr_assert_eq(bf_rpc_pool_add(pool, target, &ch, &err), 0, "%s", bf_err_text(&err));
	return ch;
}

/* One unary call; returns its status, the reply into *reply. */
static bf_rpc_status unary(bf_rpc_channel *ch, const bf_rpc_method *m, const char *body,
			   size_t len, const bf_rpc_md *md, size_t n_md, bf_rpc_buf *reply)
{
	bf_rpc_call call = { .method = m, .md = md, .n_md = n_md, .deadline_ms = bf_now_ms() + 5000 };
	bf_rpc_buf req = { (uint8_t *)body, len };
	bf_rpc_status st;
	bf_rpc_buf none;
	bf_err err;
	cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, reply ? reply : &none, &err), 0, "%s",
		     bf_err_text(&err));
	if (!reply)
		bf_rpc_buf_free(&none);
	return st;
}

Test(rpc_server, unary_calls_reach_their_handler_with_metadata)
{
	start(2, 4, 0, 0);
	bf_rpc_channel *ch = channel();
	bf_rpc_md md = { "x-tag", "seven" };
	bf_rpc_buf reply;
	bf_rpc_status st = unary(ch, &ECHO, "hello", 5, &md, 1, &reply);

	cr_assert_eq(st.code, BF_RPC_OK, "%s", st.details);
	cr_assert_eq(reply.len, strlen("hello:seven"));
	cr_assert_eq(memcmp(reply.data, "hello:seven", reply.len), 0);
	bf_rpc_buf_free(&reply);
	st = unary(ch, &ECHO, "", 0, NULL, 0, &reply);
	cr_assert_eq(st.code, BF_RPC_OK, "%s", st.details);
	cr_assert_eq(memcmp(reply.data, ":-", reply.len), 0);
	bf_rpc_buf_free(&reply);
	cr_assert_eq(atomic_load(&errors_seen), 0);
}

Test(rpc_server, statuses_carry_their_details_and_are_told)
{
	start(2, 4, 0, 0);
	bf_rpc_channel *ch = channel();
	bf_rpc_status st = unary(ch, &REFUSE, "abc", 3, NULL, 0, NULL);

	cr_assert_eq(st.code, BF_RPC_FAILED_PRECONDITION);
	cr_assert_str_eq(st.details, "refused 3 bytes");
	st = unary(ch, &NOPE, "x", 1, NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_UNIMPLEMENTED);
	cr_assert(strstr(st.details, "unknown method /bfill.test.T/Nope"), "%s", st.details);
	st = unary(ch, &SILENT, "x", 1, NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_INTERNAL);
	cr_assert(strstr(st.details, "sent no reply"), "%s", st.details);
	cr_assert_eq(atomic_load(&errors_seen), 3);
	cr_assert_eq(atomic_load(&last_error_code), BF_RPC_INTERNAL);
}

static bf_rpc_stream *open_stream(bf_rpc_channel *ch, const bf_rpc_method *m)
{
	bf_rpc_call call = { .method = m };
	bf_rpc_stream *s;
	bf_err err;
	cr_assert_eq(bf_rpc_stream_open(ch, &call, &s, &err), 0, "%s", bf_err_text(&err));
	return s;
}

Test(rpc_server, a_client_stream_is_read_to_its_half_close)
{
	start(2, 4, 0, 0);
	bf_rpc_channel *ch = channel();
	bf_rpc_stream *s = open_stream(ch, &SUM);
	uint8_t body[1000] = { 0 };
	bf_rpc_buf msg = { body, sizeof(body) }, reply;
	bf_rpc_status st;
	bf_err err;

	for (int i = 0; i < 50; i++)
		cr_assert_eq(bf_rpc_stream_send(s, &msg, bf_now_ms() + 3000, &err), 0, "%s",
			     bf_err_text(&err));
	cr_assert_eq(bf_rpc_stream_close_send(s, bf_now_ms() + 3000, &err), 0);
	cr_assert_eq(bf_rpc_stream_recv(s, bf_now_ms() + 3000, &reply, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(memcmp(reply.data, "50/50000", reply.len), 0);
	bf_rpc_buf_free(&reply);
	cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + 3000, &st, &err), 0);
	cr_assert_eq(st.code, BF_RPC_OK);
	bf_rpc_stream_destroy(s);

	/* A unary method called without a message gets a clear status. */
	s = open_stream(ch, &ECHO);
	cr_assert_eq(bf_rpc_stream_close_send(s, bf_now_ms() + 3000, &err), 0);
	cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + 3000, &st, &err), 0);
	cr_assert_eq(st.code, BF_RPC_INVALID_ARGUMENT);
	cr_assert(strstr(st.details, "no request message"), "%s", st.details);
	bf_rpc_stream_destroy(s);
}

/* A client that only sends (never receives) still learns, at its next
 * send, the status the server ended the call with, and promptly. */
Test(rpc_server, a_stream_failed_early_tells_its_status_to_the_sender)
{
	start(2, 4, 0, 0);
	bf_rpc_channel *ch = channel();
	bf_rpc_stream *s = open_stream(ch, &FIRST);
	uint8_t body[1000] = { 0 };
	bf_rpc_buf msg = { body, sizeof(body) };
	bf_err err = { 0 };
	int rc = 0, sent = 0;

	int64_t t0 = bf_now_ms();
	while (rc == 0 && sent < 100000 && bf_now_ms() - t0 < 10000) {
		rc = bf_rpc_stream_send(s, &msg, bf_now_ms() + 5000, &err);
		sent++;
	}
	cr_assert_neq(rc, 0, "the server ended the call");
	cr_assert(strstr(err.msg, "RequestTooOld"), "%s", err.msg);
	cr_assert_lt(bf_now_ms() - t0, 4000, "not by waiting out the send's deadline");
	cr_assert_not_null(bf_rpc_stream_status(s));
	cr_assert_eq(bf_rpc_stream_status(s)->code, BF_RPC_UNKNOWN);
	bf_rpc_stream_destroy(s);
}

Test(rpc_server, a_message_over_the_limit_ends_only_its_call)
{
	start(2, 4, 64 << 10, 0);
	bf_rpc_channel *ch = channel();
	static uint8_t big[100 << 10];
	bf_rpc_buf msg = { big, sizeof(big) };
	bf_rpc_stream *s = open_stream(ch, &SUM);
	bf_rpc_status st;
	bf_err err;

	st = unary(ch, &ECHO, (const char *)big, sizeof(big), NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_RESOURCE_EXHAUSTED, "%s: %s", bf_rpc_status_name(st.code),
		     st.details);
	bf_rpc_stream_send(s, &msg, bf_now_ms() + 3000, &err);
	cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + 3000, &st, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(st.code, BF_RPC_RESOURCE_EXHAUSTED, "%s: %s", bf_rpc_status_name(st.code),
		     st.details);
	bf_rpc_stream_destroy(s);
	st = unary(ch, &ECHO, "still", 5, NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_OK, "%s", st.details);
	/* gRPC ended the call itself; its handler notices on its own time. */
	for (int i = 0; i < 100 && gone() < 1; i++)
		bf_sleep_ms(10);
	cr_assert_eq(gone(), 1);
}

Test(rpc_server, a_silent_stream_is_ended_and_a_cancelled_one_noticed)
{
	start(2, 4, 0, 300);
	bf_rpc_channel *ch = channel();
	bf_rpc_stream *s = open_stream(ch, &SUM);
	bf_rpc_buf msg = { (uint8_t *)"x", 1 };
	bf_rpc_status st;
	bf_err err;
	int64_t t0 = bf_now_ms();

	cr_assert_eq(bf_rpc_stream_send(s, &msg, bf_now_ms() + 3000, &err), 0);
	cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + 5000, &st, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(st.code, BF_RPC_DEADLINE_EXCEEDED, "%s", bf_rpc_status_name(st.code));
	cr_assert_geq(bf_now_ms() - t0, 250);
	bf_rpc_stream_destroy(s);

	s = open_stream(ch, &SUM);
	cr_assert_eq(bf_rpc_stream_send(s, &msg, bf_now_ms() + 3000, &err), 0);
	bf_sleep_ms(50);
	bf_rpc_stream_destroy(s); /* cancels */
	for (int i = 0; i < 100 && gone() < 2; i++)
		bf_sleep_ms(10);
	cr_assert_eq(gone(), 2);
}

static void *gather_call(void *arg)
{
	bf_rpc_channel *ch = arg;
	bf_rpc_call call = { .method = &GATHER, .deadline_ms = bf_now_ms() + 15000 };
	bf_rpc_buf req = { (uint8_t *)"g", 1 }, reply;
	static bf_rpc_status st[4];
	static atomic_int next;
	bf_rpc_status *mine = &st[atomic_fetch_add(&next, 1)];
	if (bf_rpc_unary(ch, &call, &req, mine, &reply, NULL) == 0)
		bf_rpc_buf_free(&reply);
	return mine;
}

Test(rpc_server, the_pool_grows_when_every_worker_is_busy)
{
	start(1, 8, 0, 0);
	bf_rpc_channel *ch = channel();
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, gather_call, ch);
	for (int i = 0; i < 4; i++) {
		bf_rpc_status *st;
		pthread_join(t[i], (void **)&st);
		cr_assert_eq(st->code, BF_RPC_OK, "%s: %s", bf_rpc_status_name(st->code), st->details);
	}
}

Test(rpc_server, stopping_cancels_calls_in_flight_and_frees_the_port)
{
	start(2, 4, 0, 0);
	bf_rpc_channel *ch = channel();
	bf_rpc_stream *s = open_stream(ch, &SUM);
	bf_rpc_buf msg = { (uint8_t *)"x", 1 };
	bf_rpc_status st;
	bf_rpc_server *again = NULL;
	bf_err err;
	int64_t t0;

	cr_assert_eq(bf_rpc_stream_send(s, &msg, bf_now_ms() + 3000, &err), 0);
	bf_sleep_ms(100);
	t0 = bf_now_ms();
	bf_rpc_server_stop(srv, 200);
	cr_assert_lt(bf_now_ms() - t0, 3000);
	cr_assert_eq(gone(), 1);
	cr_assert(bf_rpc_server_stopping(srv));
	cr_assert_eq(bf_rpc_stream_wait(s, bf_now_ms() + 3000, &st, &err), 0);
	cr_assert_neq(st.code, BF_RPC_OK);
	bf_rpc_stream_destroy(s);
	bf_rpc_server_stop(srv, 0); /* a second stop is harmless */

	/* The port is free again; taken, it cannot be had twice. */
	cr_assert_eq(bf_rpc_server_create(NULL, &again, &err), 0);
	cr_assert_eq(bf_rpc_server_start(again, target, NULL, &err), 0, "%s", bf_err_text(&err));
	bf_rpc_server_destroy(srv);
	cr_assert_eq(bf_rpc_server_create(NULL, &srv, &err), 0);
	cr_assert_eq(bf_rpc_server_start(srv, target, NULL, &err), BF_EINVAL);
	cr_assert(strstr(err.msg, "cannot listen on"), "%s", err.msg);
	bf_rpc_server_destroy(again);
}
