/*
 * The gRPC core server (server.h): one notification completion queue that
 * every worker waits on, and a pluck queue per call that only the worker
 * running the call drives.
 *
 * A worker that takes a new call first asks gRPC for the next one (so
 * there are always as many requests outstanding as were posted at the
 * start), then, when that leaves no worker idle, starts another (up to the
 * cap), then runs the call to its end. Calls that arrive while every
 * worker is busy wait in the queue, or inside gRPC, until one is free.
 *
 * Each call has a RECV_CLOSE_ON_SERVER op in flight from the start: it
 * completes when the call is over for gRPC, which is what the clean-up
 * waits for before the call's memory goes.
 *
 * Depends on: gRPC core, util (clocks).
 */
#include "rpc/rpc_impl.h"
#include "rpc/server.h"
#include "util/util.h"
#include "util/tsan.h"

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_THREADS 4
#define DEFAULT_MAX_THREADS 64
#define DEFAULT_MAX_RECV ((size_t)4 << 20)
#define DEFAULT_IDLE_MS 60000
#define DETAILS_MAX 1024

typedef struct method {
	char *path; /* owned */
	bf_rpc_kind kind;
	bf_rpc_handler fn;
	void *arg; /* borrowed */
} method;

struct bf_rpc_server {
	char *label; /* owned */
	size_t max_recv;
	int idle_ms;
	int min_threads, max_threads;
	void (*on_error)(void *, const char *, const char *, int, const char *);
	void *on_error_arg;
	void (*on_refused)(void *, const char *);
	bool tls;
	bool watching;                   /* on_refused is among the log's watchers */
	grpc_server_credentials *creds;  /* owned; made by create */
	method *methods; /* owned array */
	size_t n_methods;

	grpc_server *server;      /* owned; made by start */
	grpc_completion_queue *cq; /* owned: new calls and the shutdown tag */
	char shutdown_tag;         /* its address is the tag */

	pthread_mutex_t mu;
	pthread_cond_t cv; /* shutdown_done changed */
	pthread_t *threads; /* max_threads slots */
	int n_threads, idle;
	bool started, stopping, shutdown_done, stopped;
};

struct bf_rpc_server_call {
	bf_rpc_server *srv; /* borrowed */
	grpc_call *call;    /* owned */
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_completion_queue *cq; /* owned, pluck; bound to the call */
	char method[256];
	char *peer;      /* gpr_malloc'd by gRPC, or NULL */
	char **md_str;   /* lazily made: key, value pairs as C strings, owned */
	int close_cancelled;
	bool close_done; /* the RECV_CLOSE_ON_SERVER op completed */
	bool ended;      /* a status went out (or was tried) */
	bool recv_done;  /* the client half-closed or the call broke */
	char tag_recv, tag_send, tag_close; /* their addresses are the tags */
};

static void *worker_main(void *arg);

/* ---- setting up ---------------------------------------------------------- */

int bf_rpc_server_create(const bf_rpc_server_opts *o, bf_rpc_server **out, bf_err *err)
{
	bf_rpc_server *s = calloc(1, sizeof(*s));
	const char *label = o && o->label ? o->label : "rpc server";
	pthread_condattr_t ca;
	int rc = 0;

	*out = NULL;
	if (!s || !(s->label = strdup(label))) {
		rc = bf_errf(err, BF_ENOMEM, "%s: out of memory", label);
		goto out;
	}
	s->min_threads = o && o->threads > 0 ? o->threads : DEFAULT_THREADS;
	s->max_threads = o && o->max_threads > 0 ? o->max_threads : DEFAULT_MAX_THREADS;
	if (s->max_threads < s->min_threads)
		s->max_threads = s->min_threads;
	s->max_recv = o && o->max_recv_bytes ? o->max_recv_bytes : DEFAULT_MAX_RECV;
	s->idle_ms = o && o->idle_timeout_ms > 0 ? o->idle_timeout_ms : DEFAULT_IDLE_MS;
	if (o) {
		s->on_error = o->on_error;
		s->on_error_arg = o->on_error_arg;
		s->tls = bf_tls_enabled(o->tls);
		s->on_refused = s->tls ? o->on_refused : NULL;
	}
	s->threads = calloc((size_t)s->max_threads, sizeof(*s->threads));
	if (!s->threads) {
		rc = bf_errf(err, BF_ENOMEM, "%s: out of memory", label);
		goto out;
	}
	grpc_init();
	rc = bf_rpc_tls_server_creds(o ? o->tls : NULL, label, o ? o->tls_flags : NULL, &s->creds,
				     err);
	if (rc) {
		grpc_shutdown();
		goto out;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = s;
	s = NULL;
out:
	if (s) {
		free(s->threads);
		free(s->label);
		free(s);
	}
	return rc;
}

int bf_rpc_server_add_method(bf_rpc_server *s, const char *path, bf_rpc_kind kind,
			     bf_rpc_handler fn, void *arg, bf_err *err)
{
	method *grown;

	if (s->started)
		return bf_errf(err, BF_ESTATE, "%s: methods are added before it starts", s->label);
	for (size_t i = 0; i < s->n_methods; i++)
		if (!strcmp(s->methods[i].path, path))
			return bf_errf(err, BF_EEXIST, "%s: method %s added twice", s->label, path);
	grown = realloc(s->methods, (s->n_methods + 1) * sizeof(*grown));
	if (!grown)
		return bf_errf(err, BF_ENOMEM, "%s: out of memory", s->label);
	s->methods = grown;
	grown[s->n_methods] = (method){ .path = strdup(path), .kind = kind, .fn = fn, .arg = arg };
	if (!grown[s->n_methods].path)
		return bf_errf(err, BF_ENOMEM, "%s: out of memory", s->label);
	s->n_methods++;
	return 0;
}

static void call_free(bf_rpc_server_call *c)
{
	if (!c)
		return;
	if (c->call)
		grpc_call_unref(c->call);
	if (c->cq) {
		grpc_completion_queue_shutdown(c->cq);
		grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		grpc_completion_queue_destroy(c->cq);
	}
	if (c->md_str) {
		for (size_t i = 0; i < 2 * c->md.count; i++)
			free(c->md_str[i]);
		free(c->md_str);
	}
	if (c->peer)
		gpr_free(c->peer);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	free(c);
}

/*
 * Asks gRPC for the next call. Fails quietly once the server is shutting
 * down: gRPC then completes the request at once, unsuccessfully, and the
 * worker that takes it frees it.
 */
static void request_call(bf_rpc_server *s)
{
	bf_rpc_server_call *c = calloc(1, sizeof(*c));
	grpc_completion_queue *cq;

	if (!c)
		return; /* one fewer outstanding request; the others go on */
	c->srv = s;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	cq = c->cq = grpc_completion_queue_create_for_pluck(NULL);
	/* The worker that takes c from the completion queue may be another
	 * thread, even before the request call returns, so c is not read
	 * after this; gRPC's hand-over is invisible to ThreadSanitizer. */
	BF_TSAN_RELEASE(c);
	if (!cq || grpc_server_request_call(s->server, &c->call, &c->details, &c->md, cq, s->cq,
					    c) != GRPC_CALL_OK) {
		c->call = NULL;
		call_free(c);
	}
}

/* Starts one more worker; the caller holds s->mu. */
static int spawn_worker(bf_rpc_server *s)
{
	if (s->n_threads >= s->max_threads)
		return BF_ERANGE;
	if (pthread_create(&s->threads[s->n_threads], NULL, worker_main, s) != 0)
		return BF_ENOMEM;
	s->n_threads++;
	s->idle++;
	return 0;
}

int bf_rpc_server_start(bf_rpc_server *s, const char *addr, int *port, bf_err *err)
{
	/* gRPC lets sockets share a port by default (SO_REUSEPORT): two
	 * servers on one address would split its calls between them. */
	grpc_arg arg_list[] = {
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = s->max_recv > (size_t)INT32_MAX ? INT32_MAX : (int)s->max_recv },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0 },
	};
	grpc_channel_args args = { .num_args = sizeof(arg_list) / sizeof(arg_list[0]),
				   .args = arg_list };
	int bound, rc = 0;

	if (s->started || s->stopped)
		return bf_errf(err, BF_ESTATE, "%s: started already", s->label);
	s->server = grpc_server_create(&args, NULL);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	if (!s->server || !s->cq) {
		rc = bf_errf(err, BF_ENOMEM, "%s: cannot create the server", s->label);
		goto out;
	}
	grpc_server_register_completion_queue(s->server, s->cq, NULL);
	/* Watching first: a client refused at once must not go unlogged. */
	if (s->on_refused) {
		rc = bf_rpc_log_watch(s->on_refused, s->on_error_arg);
		if (rc) {
			rc = bf_errf(err, rc, "%s: cannot watch for refused clients", s->label);
			goto out;
		}
		s->watching = true;
	}
	bound = grpc_server_add_http2_port(s->server, addr, s->creds);
	if (bound <= 0) {
		/* gRPC checks the certificate and key against each other only
		 * here, and says which failed only in its log. */
		rc = bf_errf(err, BF_EINVAL, "%s: cannot listen on %s (in use, or not a local "
			     "host:port%s)", s->label, addr,
			     s->tls ? "; or the TLS certificate and key do not match" : "");
		goto out;
	}
	grpc_server_start(s->server);
	s->started = true;
	for (int i = 0; i < s->min_threads; i++)
		request_call(s);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->min_threads; i++)
		if (spawn_worker(s) && i == 0)
			rc = BF_ENOMEM;
	pthread_mutex_unlock(&s->mu);
	if (rc) {
		rc = bf_errf(err, rc, "%s: cannot start a worker thread", s->label);
		goto out;
	}
	if (port)
		*port = bound;
out:
	if (rc && s->watching) {
		bf_rpc_log_unwatch(s->on_refused, s->on_error_arg);
		s->watching = false;
	}
	if (rc && !s->started) {
		/* Never started, no listener: it may go straight away. */
		if (s->server)
			grpc_server_destroy(s->server);
		if (s->cq)
			grpc_completion_queue_destroy(s->cq);
		s->server = NULL;
		s->cq = NULL;
	} else if (rc) {
		bf_rpc_server_stop(s, 0);
	}
	return rc;
}

/* ---- running calls ------------------------------------------------------- */

enum { BATCH_OK, BATCH_FAILED, BATCH_PENDING };

/* Waits for the batch tagged tag until deadline_ms (0: no limit):
 * BATCH_OK, BATCH_FAILED, or BATCH_PENDING when it is not done by then. */
static int wait_batch(bf_rpc_server_call *c, void *tag, int64_t deadline_ms)
{
	gpr_timespec until = deadline_ms ? bf_rpc_deadline(deadline_ms)
					 : gpr_inf_future(GPR_CLOCK_REALTIME);
	grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, until, NULL);

	if (ev.type != GRPC_OP_COMPLETE)
		return BATCH_PENDING;
	return ev.success ? BATCH_OK : BATCH_FAILED;
}

static int start_batch(bf_rpc_server_call *c, grpc_op *ops, size_t n, void *tag)
{
	return grpc_call_start_batch(c->call, ops, n, tag, NULL) == GRPC_CALL_OK ? 0 : BF_EPROTO;
}

/* Sends the initial metadata, reply (may be NULL) and status in one batch
 * and waits for it; the call has ended afterwards either way. */
static int send_end(bf_rpc_server_call *c, const bf_rpc_buf *reply, int code, const char *details)
{
	grpc_byte_buffer *bb = NULL;
	grpc_slice text = grpc_slice_from_copied_string(details ? details : "");
	grpc_op ops[3];
	size_t n = 0;
	int rc = 0;

	if (c->ended)
		return BF_ESTATE;
	c->ended = true;
	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (reply) {
		bb = bf_rpc_make_message(reply);
		if (!bb) {
			code = BF_RPC_INTERNAL;
			grpc_slice_unref(text);
			text = grpc_slice_from_static_string("out of memory for the reply");
		} else {
			ops[n].op = GRPC_OP_SEND_MESSAGE;
			ops[n++].data.send_message.send_message = bb;
		}
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	ops[n++].data.send_status_from_server.status_details = &text;
	/* Told before it goes out, so a client that has the status knows
	 * the server has noted it. */
	if (code != BF_RPC_OK && c->srv->on_error)
		c->srv->on_error(c->srv->on_error_arg, c->method, bf_rpc_server_call_peer(c), code,
				 details ? details : "");
	if (start_batch(c, ops, n, &c->tag_send) || wait_batch(c, &c->tag_send, 0) != BATCH_OK)
		rc = BF_ECANCELLED;
	if (bb)
		grpc_byte_buffer_destroy(bb);
	grpc_slice_unref(text);
	return rc;
}

int bf_rpc_server_reply(bf_rpc_server_call *c, const bf_rpc_buf *reply, bf_err *err)
{
	int rc = send_end(c, reply, BF_RPC_OK, NULL);

	if (rc == BF_ESTATE)
		return bf_errf(err, rc, "%s %s: the call has ended already", c->srv->label,
			       c->method);
	if (rc)
		return bf_errf(err, rc, "%s %s: the call ended before the reply went out",
			       c->srv->label, c->method);
	return 0;
}

int bf_rpc_server_fail(bf_rpc_server_call *c, int code, const char *fmt, ...)
{
	char details[DETAILS_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(details, sizeof(details), fmt, ap);
	va_end(ap);
	return send_end(c, NULL, code == BF_RPC_OK ? BF_RPC_UNKNOWN : code, details);
}

/* Past the idle time the call is ended with DEADLINE_EXCEEDED. */
int bf_rpc_server_recv(bf_rpc_server_call *c, bf_rpc_buf *msg, bool *end, bf_err *err)
{
	int idle_ms = c->srv->idle_ms;
	grpc_byte_buffer *bb = NULL;
	grpc_op op;
	int done;

	msg->data = NULL;
	msg->len = 0;
	*end = false;
	if (c->ended || c->recv_done) {
		*end = !c->ended;
		return c->ended ? bf_errf(err, BF_ECANCELLED, "%s %s: the call has ended",
					  c->srv->label, c->method)
				: 0;
	}
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &bb;
	if (start_batch(c, &op, 1, &c->tag_recv)) {
		c->recv_done = true;
		return bf_errf(err, BF_EPROTO, "%s %s: cannot receive", c->srv->label, c->method);
	}
	done = wait_batch(c, &c->tag_recv, bf_now_ms() + idle_ms);
	if (done == BATCH_PENDING) {
		/* Ending the call completes the receive; then it may go. */
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
					     "no message in time", NULL);
		wait_batch(c, &c->tag_recv, 0);
		if (bb)
			grpc_byte_buffer_destroy(bb);
		c->recv_done = c->ended = true;
		if (c->srv->on_error)
			c->srv->on_error(c->srv->on_error_arg, c->method, bf_rpc_server_call_peer(c),
					 BF_RPC_DEADLINE_EXCEEDED, "no message in time");
		return bf_errf(err, BF_ETIMEDOUT, "%s %s: no message for %d ms", c->srv->label,
			       c->method, idle_ms);
	}
	if (done == BATCH_FAILED) {
		if (bb)
			grpc_byte_buffer_destroy(bb);
		c->recv_done = c->ended = true;
		return bf_errf(err, BF_ECANCELLED, "%s %s: the call ended (cancelled, too large, "
			       "past its deadline, or the server is stopping)", c->srv->label,
			       c->method);
	}
	if (!bb) {
		/* A client that cancels looks like one that half-closed, but
		 * then the call is over for gRPC already: its close op is in. */
		c->recv_done = true;
		c->close_done = wait_batch(c, &c->tag_close, bf_now_ms()) != BATCH_PENDING;
		if (c->close_done) {
			c->ended = true;
			return bf_errf(err, BF_ECANCELLED, "%s %s: the client cancelled the call",
				       c->srv->label, c->method);
		}
		*end = true;
		return 0;
	}
	if (bf_rpc_take_message(&bb, msg)) {
		c->recv_done = true;
		return bf_errf(err, BF_EPROTO, "%s %s: unreadable message", c->srv->label, c->method);
	}
	return 0;
}

const char *bf_rpc_server_call_method(const bf_rpc_server_call *c)
{
	return c->method;
}

const char *bf_rpc_server_call_peer(const bf_rpc_server_call *c)
{
	return c->peer ? c->peer : "?";
}

bf_rpc_server *bf_rpc_server_call_server(const bf_rpc_server_call *c)
{
	return c->srv;
}

bool bf_rpc_server_call_ended(const bf_rpc_server_call *c)
{
	return c->ended;
}

static bool slice_is(grpc_slice s, const char *str)
{
	size_t n = strlen(str);
	return GRPC_SLICE_LENGTH(s) == n && memcmp(GRPC_SLICE_START_PTR(s), str, n) == 0;
}

static char *slice_strdup(grpc_slice s)
{
	size_t n = GRPC_SLICE_LENGTH(s);
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, GRPC_SLICE_START_PTR(s), n);
		p[n] = '\0';
	}
	return p;
}

const char *bf_rpc_server_call_md(bf_rpc_server_call *c, const char *key)
{
	if (!c->md_str && c->md.count) {
		c->md_str = calloc(2 * c->md.count, sizeof(*c->md_str));
		if (!c->md_str)
			return NULL;
	}
	for (size_t i = 0; i < c->md.count; i++) {
		if (!slice_is(c->md.metadata[i].key, key))
			continue;
		if (!c->md_str[2 * i + 1])
			c->md_str[2 * i + 1] = slice_strdup(c->md.metadata[i].value);
		return c->md_str[2 * i + 1];
	}
	return NULL;
}

static const method *find_method(const bf_rpc_server *s, grpc_slice path)
{
	for (size_t i = 0; i < s->n_methods; i++)
		if (slice_is(path, s->methods[i].path))
			return &s->methods[i];
	return NULL;
}

/* Runs one call from its arrival to gRPC's last word on it, then frees it. */
static void serve(bf_rpc_server_call *c)
{
	bf_rpc_server *s = c->srv;
	const method *m = find_method(s, c->details.method);
	grpc_op op;

	bf_rpc_slice_to_str(c->details.method, c->method, sizeof(c->method));
	c->peer = grpc_call_get_peer(c->call);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->close_cancelled;
	if (start_batch(c, &op, 1, &c->tag_close)) {
		grpc_call_cancel(c->call, NULL);
		goto out;
	}
	if (!m) {
		bf_rpc_server_fail(c, BF_RPC_UNIMPLEMENTED, "%s: unknown method %s", s->label,
				   c->method);
	} else if (m->kind == BF_RPC_KIND_UNARY) {
		bf_rpc_buf req = { 0 };
		bool end;
		bf_err err;
		if (bf_rpc_server_recv(c, &req, &end, &err) == 0) {
			if (end)
				bf_rpc_server_fail(c, BF_RPC_INVALID_ARGUMENT, "%s %s: no request message",
						   s->label, c->method);
			else
				m->fn(c, &req, m->arg);
		}
		bf_rpc_buf_free(&req);
	} else {
		m->fn(c, NULL, m->arg);
	}
	if (!c->ended)
		bf_rpc_server_fail(c, BF_RPC_INTERNAL, "%s %s: the handler sent no reply", s->label,
				   c->method);
	if (!c->close_done)
		wait_batch(c, &c->tag_close, 0);
out:
	call_free(c);
}

static void *worker_main(void *arg)
{
	bf_rpc_server *s = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							   NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &s->shutdown_tag) {
			pthread_mutex_lock(&s->mu);
			s->shutdown_done = true;
			pthread_cond_broadcast(&s->cv);
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		bf_rpc_server_call *c = ev.tag;
		BF_TSAN_ACQUIRE(c);
		if (!ev.success) { /* a request the shutdown ended */
			c->call = NULL;
			call_free(c);
			continue;
		}
		request_call(s);
		pthread_mutex_lock(&s->mu);
		s->idle--;
		if (s->idle == 0 && !s->stopping)
			spawn_worker(s); /* at the cap, calls wait for a free worker */
		pthread_mutex_unlock(&s->mu);
		serve(c);
		pthread_mutex_lock(&s->mu);
		s->idle++;
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* ---- stopping ------------------------------------------------------------ */

bool bf_rpc_server_stopping(const bf_rpc_server *s)
{
	return __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE);
}

/* Waits for the shutdown tag until deadline_ms (0: for good); the caller
 * holds s->mu. */
static void wait_shutdown(bf_rpc_server *s, int64_t deadline_ms)
{
	struct timespec ts;

	while (!s->shutdown_done) {
		if (!deadline_ms) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		if (bf_now_ms() >= deadline_ms)
			return;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
}

void bf_rpc_server_stop(bf_rpc_server *s, int grace_ms)
{
	int n;

	if (!s || !s->started || s->stopped)
		return;
	pthread_mutex_lock(&s->mu);
	__atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->mu);
	grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
	pthread_mutex_lock(&s->mu);
	if (grace_ms > 0)
		wait_shutdown(s, bf_now_ms() + grace_ms);
	if (!s->shutdown_done) {
		pthread_mutex_unlock(&s->mu);
		grpc_server_cancel_all_calls(s->server);
		pthread_mutex_lock(&s->mu);
		wait_shutdown(s, 0);
	}
	n = s->n_threads; /* no worker starts once stopping is set */
	pthread_mutex_unlock(&s->mu);
	grpc_completion_queue_shutdown(s->cq);
	for (int i = 0; i < n; i++)
		pthread_join(s->threads[i], NULL);
	if (s->watching)
		bf_rpc_log_unwatch(s->on_refused, s->on_error_arg);
	s->watching = false;
	s->stopped = true;
}

void bf_rpc_server_destroy(bf_rpc_server *s)
{
	if (!s)
		return;
	bf_rpc_server_stop(s, 0);
	if (s->server)
		grpc_server_destroy(s->server);
	if (s->cq)
		grpc_completion_queue_destroy(s->cq);
	for (size_t i = 0; i < s->n_methods; i++)
		free(s->methods[i].path);
	free(s->methods);
	free(s->threads);
	grpc_server_credentials_release(s->creds);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->label);
	free(s);
	grpc_shutdown();
}
