/*
 * etcd client transport (include/bfill/etcd.h): channels, unary calls,
 * bidi streams and endpoint failover over gRPC core's C API. Message
 * encoding and reply validation live in etcd_wire.c; this file only moves
 * bytes, enforces deadlines and turns gRPC statuses into bfill codes.
 *
 * Unary calls are one batch on a per-call pluck completion queue, waited on
 * in short slices so an interrupt hook can cancel them. A thread per client
 * keeps a connectivity watch on every channel, so that reconnecting goes on
 * between calls (see conn_thread_main). A stream owns a
 * "next" completion queue that only its owning thread drives, so every
 * buffer handed to gRPC is touched by one thread only.
 *
 * Depends on: gRPC core, lock/etcd_wire, util (clocks).
 */
#include "bfill/etcd.h"
#include "lock/etcd_wire.h"
#include "util/util.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long one wait on a completion queue lasts before the interrupt hook
 * is polled again. */
#define POLL_SLICE_MS 50
/* Lifetime of one connectivity watch; also bounds how long destroying a
 * client can wait for its connection thread. */
#define CONN_WATCH_MS 250

typedef struct endpoint {
	char *target;          /* "host:port", owned */
	grpc_channel *channel; /* owned */
} endpoint;

struct bf_etcd {
	endpoint *eps; /* owned array of n_eps */
	size_t n_eps;
	atomic_size_t current; /* endpoint the next call goes to */
	int call_timeout_ms;
	size_t max_reply;
	bool (*interrupted)(void *arg);
	void *interrupt_arg;
	grpc_completion_queue *conn_cq; /* owned; drained by conn_thread only */
	pthread_t conn_thread;
	bool conn_thread_started;
	pthread_mutex_t conn_mu; /* conn_stopping, and arming watches */
	bool conn_stopping;     /* set before the channels are destroyed */
};

/* A gRPC method and how a failed call on it may be retried. */
typedef struct method {
	const char *path; /* "/etcdserverpb.KV/Range" */
	const char *name; /* "Range", for messages */
	bool read_only;   /* safe to send again to the next endpoint */
} method;

static const method M_RANGE = { "/etcdserverpb.KV/Range", "Range", true };
static const method M_PUT = { "/etcdserverpb.KV/Put", "Put", false };
static const method M_DELETE = { "/etcdserverpb.KV/DeleteRange", "DeleteRange", false };
static const method M_TXN = { "/etcdserverpb.KV/Txn", "Txn", false };
static const method M_GRANT = { "/etcdserverpb.Lease/LeaseGrant", "LeaseGrant", false };
static const method M_REVOKE = { "/etcdserverpb.Lease/LeaseRevoke", "LeaseRevoke", false };
static const method M_LEASE_TTL = { "/etcdserverpb.Lease/LeaseTimeToLive", "LeaseTimeToLive",
				    true };
static const method M_STATUS = { "/etcdserverpb.Maintenance/Status", "Status", true };
static const method M_KEEPALIVE = { "/etcdserverpb.Lease/LeaseKeepAlive", "LeaseKeepAlive",
				    false };
static const method M_WATCH = { "/etcdserverpb.Watch/Watch", "Watch", true };

/* ---- small helpers ----------------------------------------------------- */

static gpr_timespec deadline_at(int64_t mono_deadline_ms)
{
	int64_t left = mono_deadline_ms - bf_now_ms();
	if (left < 0)
		left = 0;
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(left, GPR_TIMESPAN));
}

static const char *status_name(grpc_status_code code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	if ((int)code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "UNKNOWN_STATUS";
}

/* gRPC status -> bfill code. */
static int map_status(grpc_status_code code, const char *details)
{
	switch (code) {
	case GRPC_STATUS_OK:
		return 0;
	case GRPC_STATUS_CANCELLED:
		return BF_ECANCELLED;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return BF_ETIMEDOUT;
	case GRPC_STATUS_UNAVAILABLE:
		return BF_EUNAVAIL;
	case GRPC_STATUS_NOT_FOUND:
		return BF_ENOTFOUND;
	case GRPC_STATUS_INVALID_ARGUMENT:
		return BF_EINVAL;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		/* Our own receive limit shows up as RESOURCE_EXHAUSTED too. */
		return strstr(details, "larger than max") ? BF_EPROTO : BF_EUNAVAIL;
	case GRPC_STATUS_FAILED_PRECONDITION:
	case GRPC_STATUS_OUT_OF_RANGE:
	case GRPC_STATUS_ALREADY_EXISTS:
	case GRPC_STATUS_ABORTED:
		return BF_ESTATE;
	case GRPC_STATUS_PERMISSION_DENIED:
	case GRPC_STATUS_UNAUTHENTICATED:
		return -EACCES;
	default:
		return BF_EPROTO;
	}
}

/*
 * Moves the client off endpoint `failed`, unless another thread already
 * did: a burst of failures on one member advances by one step, not by one
 * step per failed call.
 */
static void rotate_from(bf_etcd *c, size_t failed)
{
	size_t expected = failed;
	atomic_compare_exchange_strong(&c->current, &expected, (failed + 1) % c->n_eps);
}

bool bf_etcd_interrupted(const bf_etcd *c)
{
	return c->interrupted && c->interrupted(c->interrupt_arg);
}

/*
 * A failed call's status into err; the client moves on from an endpoint
 * that is unavailable or too slow. Returns the bfill code.
 */
static int call_failed(bf_etcd *c, size_t ep, const method *m, grpc_status_code status,
		       const char *details, bf_err *err)
{
	int code = map_status(status, details);

	if (status == GRPC_STATUS_UNAVAILABLE || status == GRPC_STATUS_DEADLINE_EXCEEDED)
		rotate_from(c, ep);
	if (status == GRPC_STATUS_DEADLINE_EXCEEDED && !m->read_only)
		return bf_errf(err, code, "etcd %s %s: deadline exceeded, outcome unknown",
			       c->eps[ep].target, m->name);
	return bf_errf(err, code, "etcd %s %s: %s: %s", c->eps[ep].target, m->name,
		       status_name(status), *details ? details : "(no details)");
}

static void slice_to_str(grpc_slice s, char *out, size_t n)
{
	size_t len = GRPC_SLICE_LENGTH(s);
	if (len >= n)
		len = n - 1;
	memcpy(out, GRPC_SLICE_START_PTR(s), len);
	out[len] = '\0';
}

/* Flattens a received message into a malloc'd buffer (out owns it). */
static int take_message(grpc_byte_buffer **bb, bf_etcd_buf *out)
{
	grpc_byte_buffer_reader reader;
	grpc_slice all;
	int rc = 0;

	out->data = NULL;
	out->len = 0;
	if (!grpc_byte_buffer_reader_init(&reader, *bb)) {
		rc = BF_EPROTO;
		goto out;
	}
	all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	out->len = GRPC_SLICE_LENGTH(all);
	out->data = malloc(out->len ? out->len : 1);
	if (!out->data)
		rc = BF_ENOMEM;
	else if (out->len)
		memcpy(out->data, GRPC_SLICE_START_PTR(all), out->len);
	grpc_slice_unref(all);
out:
	grpc_byte_buffer_destroy(*bb);
	*bb = NULL;
	return rc;
}

static grpc_byte_buffer *make_message(const bf_etcd_buf *req)
{
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)req->data, req->len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

/* The metadata every call carries: answer "no leader" rather than hang. */
static grpc_metadata hasleader_md(void)
{
	grpc_metadata md;
	memset(&md, 0, sizeof(md));
	md.key = grpc_slice_from_static_string("hasleader");
	md.value = grpc_slice_from_static_string("true");
	return md;
}

/* ---- client lifetime --------------------------------------------------- */

/*
 * Why a thread: gRPC core moves a connection attempt forward only while
 * some thread polls a completion queue interested in that channel. A
 * fail-fast call on a channel in TRANSIENT_FAILURE fails at once, so with
 * calls alone the reconnect that the backoff timer starts is never driven
 * (it ends in "tcp handshaker shutdown"), and a member that was down stays
 * unusable for this client however long it has been back. A connectivity
 * watch puts this thread's queue among the interested parties, and asking
 * for the state with try_to_connect takes an idle channel out of idleness.
 */

/* Arms a watch on endpoint i; the caller holds conn_mu. */
static void conn_watch(bf_etcd *c, size_t i)
{
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(c->eps[i].channel, 1);
	gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					  gpr_time_from_millis(CONN_WATCH_MS, GPR_TIMESPAN));
	grpc_channel_watch_connectivity_state(c->eps[i].channel, st, until, c->conn_cq,
					      (void *)(uintptr_t)(i + 1));
}

static void *conn_thread_main(void *arg)
{
	bf_etcd *c = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(c->conn_cq,
							   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		/* A state change or the end of the watch's time: watch again,
		 * unless the channels are about to go. */
		pthread_mutex_lock(&c->conn_mu);
		if (!c->conn_stopping)
			conn_watch(c, (size_t)(uintptr_t)ev.tag - 1);
		pthread_mutex_unlock(&c->conn_mu);
	}
	return NULL;
}

static int conn_start(bf_etcd *c, bf_err *err)
{
	pthread_mutex_init(&c->conn_mu, NULL);
	c->conn_cq = grpc_completion_queue_create_for_next(NULL);
	pthread_mutex_lock(&c->conn_mu);
	for (size_t i = 0; i < c->n_eps; i++)
		conn_watch(c, i);
	pthread_mutex_unlock(&c->conn_mu);
	if (pthread_create(&c->conn_thread, NULL, conn_thread_main, c) != 0)
		return bf_errf(err, BF_ENOMEM, "etcd: cannot start the connection thread");
	c->conn_thread_started = true;
	return 0;
}

/* Part one of stopping, before the channels are destroyed: no new watch. */
static void conn_stop_watching(bf_etcd *c)
{
	if (!c->conn_cq)
		return;
	pthread_mutex_lock(&c->conn_mu);
	c->conn_stopping = true;
	pthread_mutex_unlock(&c->conn_mu);
}

/* Part two, after the channels are destroyed (which ends their watches). */
static void conn_finish(bf_etcd *c)
{
	if (!c->conn_cq)
		return;
	grpc_completion_queue_shutdown(c->conn_cq);
	if (c->conn_thread_started)
		pthread_join(c->conn_thread, NULL);
	else
		while (grpc_completion_queue_next(c->conn_cq, gpr_inf_future(GPR_CLOCK_REALTIME),
						  NULL).type != GRPC_QUEUE_SHUTDOWN)
			;
	grpc_completion_queue_destroy(c->conn_cq);
	c->conn_cq = NULL;
	pthread_mutex_destroy(&c->conn_mu);
}

static int add_endpoint(bf_etcd *c, const char *spec, size_t len, grpc_channel_credentials *creds,
			const grpc_channel_args *args, bf_err *err)
{
	endpoint *ep = &c->eps[c->n_eps];

	if (len >= 7 && !strncmp(spec, "http://", 7)) {
		spec += 7;
		len -= 7;
	} else if (len >= 8 && !strncmp(spec, "https://", 8)) {
		return bf_errf(err, BF_EINVAL, "etcd endpoint %.*s: TLS is not supported",
			       (int)len, spec);
	}
	while (len > 0 && spec[len - 1] == '/')
		len--;
	if (len == 0 || !memchr(spec, ':', len))
		return bf_errf(err, BF_EINVAL, "etcd endpoint \"%.*s\": expected host:port",
			       (int)len, spec);
	ep->target = strndup(spec, len);
	if (!ep->target)
		return bf_errf(err, BF_ENOMEM, "etcd: out of memory");
	ep->channel = grpc_channel_create(ep->target, creds, args);
	if (!ep->channel) {
		free(ep->target);
		ep->target = NULL;
		return bf_errf(err, BF_EINVAL, "etcd endpoint %.*s: cannot create a channel",
			       (int)len, spec);
	}
	c->n_eps++;
	return 0;
}

int bf_etcd_create(const char *endpoints, const bf_etcd_opts *opts, bf_etcd **out, bf_err *err)
{
	bf_etcd *c = NULL;
	grpc_channel_credentials *creds = NULL;
	size_t max_eps = 1;
	int rc = 0;

	*out = NULL;
	if (!endpoints || !*endpoints)
		return bf_errf(err, BF_EINVAL, "etcd: no endpoints");
	for (const char *p = endpoints; *p; p++)
		max_eps += *p == ',';
	grpc_init();
	c = calloc(1, sizeof(*c));
	if (!c || !(c->eps = calloc(max_eps, sizeof(*c->eps)))) {
		rc = bf_errf(err, BF_ENOMEM, "etcd: out of memory");
		goto out;
	}
	c->call_timeout_ms = opts && opts->call_timeout_ms > 0 ? opts->call_timeout_ms
							      : BF_ETCD_CALL_TIMEOUT_DEFAULT_MS;
	c->max_reply = opts && opts->max_reply_bytes ? opts->max_reply_bytes
						     : BF_ETCD_MAX_REPLY_DEFAULT;
	if (opts) {
		c->interrupted = opts->interrupted;
		c->interrupt_arg = opts->interrupt_arg;
	}

	/*
	 * Channel settings: gRPC itself refuses replies over our limit; no
	 * proxy from the environment for cluster-internal addresses; short
	 * reconnect backoff so a restarted member is used again within a
	 * second; a private subchannel pool so each client has its own
	 * connections, as separate processes would.
	 */
	grpc_arg arg_list[] = {
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = c->max_reply > (size_t)INT32_MAX ? INT32_MAX : (int)c->max_reply },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_HTTP_PROXY, .value.integer = 0 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
		  .value.integer = 100 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
		  .value.integer = 100 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
		  .value.integer = 1000 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
		  .value.integer = 1 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0 },
	};
	grpc_channel_args args = { .num_args = sizeof(arg_list) / sizeof(arg_list[0]),
				   .args = arg_list };

	creds = grpc_insecure_credentials_create();
	for (const char *p = endpoints; *p;) {
		size_t len = strcspn(p, ",");
		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		if (len > 0) {
			rc = add_endpoint(c, p, len, creds, &args, err);
			if (rc)
				goto out;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (c->n_eps == 0) {
		rc = bf_errf(err, BF_EINVAL, "etcd: no endpoints in \"%s\"", endpoints);
		goto out;
	}
	atomic_init(&c->current, 0);
	rc = conn_start(c, err);
	if (rc)
		goto out;
	*out = c;
	c = NULL;
out:
	if (creds)
		grpc_channel_credentials_release(creds);
	if (c)
		bf_etcd_destroy(c); /* also balances grpc_init */
	else if (rc)
		grpc_shutdown(); /* the client was never allocated */
	return rc;
}

void bf_etcd_destroy(bf_etcd *c)
{
	if (!c)
		return;
	conn_stop_watching(c);
	for (size_t i = 0; i < c->n_eps; i++) {
		grpc_channel_destroy(c->eps[i].channel);
		free(c->eps[i].target);
	}
	conn_finish(c);
	free(c->eps);
	free(c);
	grpc_shutdown();
}

const char *bf_etcd_endpoint(const bf_etcd *c)
{
	return c->eps[atomic_load(&((bf_etcd *)c)->current) % c->n_eps].target;
}

int bf_etcd_call_timeout_ms(const bf_etcd *c)
{
	return c->call_timeout_ms;
}

/* ---- unary calls ------------------------------------------------------- */

typedef struct unary_result {
	grpc_status_code status;
	char details[256];
	bf_etcd_buf reply;
} unary_result;

/*
 * One attempt on one endpoint: a single batch with every op, waited on in
 * slices so that the interrupt hook can cancel it. The call's own deadline
 * guarantees the batch completes.
 */
static int unary_once(bf_etcd *c, size_t ep, const method *m, const bf_etcd_buf *req,
		      int64_t deadline_ms, unary_result *res, bf_err *err)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_call *call = NULL;
	grpc_metadata md = hasleader_md();
	grpc_metadata_array init_md, trail_md;
	grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	bool cancelled = false;
	int rc = 0;

	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	res->status = GRPC_STATUS_UNKNOWN;
	res->details[0] = '\0';
	call = grpc_channel_create_call(c->eps[ep].channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
					grpc_slice_from_static_string(m->path), NULL,
					deadline_at(deadline_ms), NULL);
	send_bb = make_message(req);
	if (!call || !send_bb) {
		rc = bf_errf(err, BF_ENOMEM, "etcd %s %s: cannot start call", c->eps[ep].target,
			     m->name);
		goto out;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = 1;
	ops[0].data.send_initial_metadata.metadata = &md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &res->status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
		rc = bf_errf(err, BF_EPROTO, "etcd %s %s: cannot start call", c->eps[ep].target,
			     m->name);
		goto out;
	}
	for (;;) {
		gpr_timespec slice = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						  gpr_time_from_millis(POLL_SLICE_MS, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_pluck(cq, call, slice, NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			break;
		if (!cancelled && bf_etcd_interrupted(c)) {
			grpc_call_cancel(call, NULL);
			cancelled = true;
		}
	}
	slice_to_str(details, res->details, sizeof(res->details));
	if (res->status == GRPC_STATUS_OK) {
		if (!recv_bb) {
			rc = bf_errf(err, BF_EPROTO, "etcd %s %s: OK status without a reply",
				     c->eps[ep].target, m->name);
			goto out;
		}
		if (take_message(&recv_bb, &res->reply)) {
			rc = bf_errf(err, BF_EPROTO, "etcd %s %s: unreadable reply",
				     c->eps[ep].target, m->name);
			goto out;
		}
	} else if (cancelled) {
		rc = bf_errf(err, BF_ECANCELLED, "etcd %s %s: cancelled", c->eps[ep].target, m->name);
	}
out:
	if (recv_bb)
		grpc_byte_buffer_destroy(recv_bb);
	if (send_bb)
		grpc_byte_buffer_destroy(send_bb);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	if (call)
		grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_completion_queue_destroy(cq);
	return rc;
}

/*
 * A write may go to the next endpoint only when the first one surely did
 * not apply it: it could not be reached, or it refused for want of a
 * leader (the hasleader check runs before the request is proposed).
 * etcd's other UNAVAILABLE answers ("request timed out") may have
 * committed.
 */
static bool write_not_applied(const unary_result *res)
{
	if (res->status != GRPC_STATUS_UNAVAILABLE)
		return false;
	return strncmp(res->details, "etcdserver:", 11) != 0 ||
	       !strcmp(res->details, "etcdserver: no leader");
}

/*
 * Runs method m with request req within timeout_ms (0 = the call timeout),
 * trying the endpoints round robin from the current one. *reply is owned
 * by the caller on success; *used_ep is the endpoint tried last.
 */
static int unary(bf_etcd *c, const method *m, const bf_etcd_buf *req, int timeout_ms,
		 bf_etcd_buf *reply, size_t *used_ep, bf_err *err)
{
	int64_t deadline = bf_now_ms() + (timeout_ms > 0 ? timeout_ms : c->call_timeout_ms);
	unary_result res;
	int rc = 0;

	reply->data = NULL;
	reply->len = 0;
	for (size_t attempt = 0; attempt < c->n_eps; attempt++) {
		size_t ep = atomic_load(&c->current) % c->n_eps;

		*used_ep = ep;
		if (bf_etcd_interrupted(c))
			return bf_errf(err, BF_ECANCELLED, "etcd %s %s: cancelled", c->eps[ep].target,
				       m->name);
		memset(&res, 0, sizeof(res));
		/* A read may go on to the next member, so one member that hangs
		 * (a leader cut off from its followers accepts the request and
		 * never answers) must not use up the whole deadline: it gets half
		 * of what is left, the last member all of it. */
		int64_t attempt_deadline = deadline;
		if (m->read_only && attempt + 1 < c->n_eps)
			attempt_deadline = bf_now_ms() + (deadline - bf_now_ms()) / 2;
		rc = unary_once(c, ep, m, req, attempt_deadline, &res, err);
		if (rc)
			return rc;
		if (res.status == GRPC_STATUS_OK) {
			*reply = res.reply;
			return 0;
		}
		rc = call_failed(c, ep, m, res.status, res.details, err);
		if (res.status != GRPC_STATUS_UNAVAILABLE &&
		    res.status != GRPC_STATUS_DEADLINE_EXCEEDED)
			return rc;
		if (!m->read_only && !write_not_applied(&res))
			return rc;
		if (bf_now_ms() >= deadline || bf_etcd_interrupted(c))
			return rc;
	}
	return rc;
}

/*
 * Every unary wrapper encodes, calls, decodes: begin_call sends the encoded
 * request (freeing it) and end_call frees the reply and names the endpoint
 * and method in a decode error.
 */
static int begin_call(bf_etcd *c, const method *m, int encode_rc, bf_etcd_buf *req,
		      int timeout_ms, bf_etcd_buf *reply, size_t *ep, bf_err *err)
{
	int rc;

	reply->data = NULL;
	reply->len = 0;
	if (encode_rc)
		rc = bf_errf(err, encode_rc, "etcd %s: cannot encode the request (%s)", m->name,
			     bf_strerror(encode_rc));
	else
		rc = unary(c, m, req, timeout_ms, reply, ep, err);
	bf_etcd_buf_free(req);
	return rc;
}

static int end_call(bf_etcd *c, const method *m, size_t ep, int rc, bf_etcd_buf *reply,
		    bf_err *err)
{
	if (rc && reply->data)
		bf_err_prefix(err, rc, "etcd %s %s", c->eps[ep].target, m->name);
	bf_etcd_buf_free(reply);
	return rc;
}

int bf_etcd_range(bf_etcd *c, const bf_etcd_range_req *req, bf_etcd_range_result *res,
		  bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_RANGE, req ? bf_etcd_wire_range(req, &msg) : BF_EINVAL, &msg,
			    req ? req->timeout_ms : 0, &reply, &ep, err);

	memset(res, 0, sizeof(*res));
	if (!rc)
		rc = bf_etcd_unwire_range(reply.data, reply.len, c->max_reply, res, err);
	return end_call(c, &M_RANGE, ep, rc, &reply, err);
}

int bf_etcd_put(bf_etcd *c, const char *key, const void *value, size_t value_len,
		int64_t lease, int64_t *revision, bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_PUT, bf_etcd_wire_put(key, value, value_len, lease, &msg), &msg,
			    0, &reply, &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_put(reply.data, reply.len, c->max_reply, revision, err);
	return end_call(c, &M_PUT, ep, rc, &reply, err);
}

int bf_etcd_delete(bf_etcd *c, const char *key, const char *range_end, int64_t *deleted,
		   int64_t *revision, bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_DELETE, bf_etcd_wire_delete(key, range_end, &msg), &msg, 0,
			    &reply, &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_delete(reply.data, reply.len, c->max_reply, deleted, revision,
					   err);
	return end_call(c, &M_DELETE, ep, rc, &reply, err);
}

int bf_etcd_txn(bf_etcd *c, const bf_etcd_txn_req *req, bf_etcd_txn_result *res, bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_TXN, req ? bf_etcd_wire_txn(req, &msg) : BF_EINVAL, &msg, 0,
			    &reply, &ep, err);

	memset(res, 0, sizeof(*res));
	if (!rc)
		rc = bf_etcd_unwire_txn(reply.data, reply.len, c->max_reply, res, err);
	return end_call(c, &M_TXN, ep, rc, &reply, err);
}

int bf_etcd_lease_grant(bf_etcd *c, int64_t ttl_s, int64_t *id, int64_t *granted_ttl_s,
			bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_GRANT, bf_etcd_wire_lease_grant(ttl_s, &msg), &msg, 0, &reply,
			    &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_lease_grant(reply.data, reply.len, c->max_reply, id,
						granted_ttl_s, err);
	return end_call(c, &M_GRANT, ep, rc, &reply, err);
}

int bf_etcd_lease_revoke(bf_etcd *c, int64_t id, bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_REVOKE, bf_etcd_wire_lease_revoke(id, &msg), &msg, 0, &reply,
			    &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_lease_revoke(reply.data, reply.len, c->max_reply, err);
	return end_call(c, &M_REVOKE, ep, rc, &reply, err);
}

int bf_etcd_lease_ttl(bf_etcd *c, int64_t id, int64_t *ttl_s, bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_LEASE_TTL, bf_etcd_wire_lease_ttl(id, &msg), &msg, 0, &reply,
			    &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_lease_ttl(reply.data, reply.len, c->max_reply, ttl_s, err);
	return end_call(c, &M_LEASE_TTL, ep, rc, &reply, err);
}

int bf_etcd_status(bf_etcd *c, bf_etcd_status_info *info, bf_err *err)
{
	bf_etcd_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_STATUS, bf_etcd_wire_status(&msg), &msg, 0, &reply, &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_status(reply.data, reply.len, c->max_reply, info, err);
	return end_call(c, &M_STATUS, ep, rc, &reply, err);
}

/* ---- bidi streams ------------------------------------------------------ */

/* Tags of the four kinds of batch a stream has in flight (bit values). */
enum { OP_START = 1, OP_SEND = 2, OP_RECV = 4, OP_STATUS = 8 };

typedef struct stream {
	bf_etcd *c;       /* borrowed */
	const method *m;
	size_t ep;
	bool interruptible;
	grpc_completion_queue *cq; /* owned; driven only by the owning thread */
	grpc_call *call;           /* owned */
	grpc_metadata md;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	grpc_byte_buffer *send_bb; /* owned until its send completes */
	grpc_byte_buffer *recv_bb; /* filled by a completed receive */
	unsigned pending;          /* OP_* batches in flight */
	bool got_init_md;
	bool have_msg;     /* a received message waits in recv_bb */
	bool ended;        /* the server closed its side or an op failed */
	bool status_known; /* OP_STATUS completed */
} stream;

static int start_batch(stream *s, grpc_op *ops, size_t n, unsigned tag)
{
	if (grpc_call_start_batch(s->call, ops, n, (void *)(uintptr_t)tag, NULL) != GRPC_CALL_OK)
		return BF_EPROTO;
	s->pending |= tag;
	return 0;
}

static int stream_open(bf_etcd *c, const method *m, bool interruptible, stream *s, bf_err *err)
{
	grpc_op ops[1];
	int rc = 0;

	memset(s, 0, sizeof(*s));
	s->c = c;
	s->m = m;
	s->interruptible = interruptible;
	s->ep = atomic_load(&c->current) % c->n_eps;
	s->md = hasleader_md();
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trail_md);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	/* A stream lives as long as its owner wants; each exchange on it has
	 * its own deadline instead (see stream_wait). */
	s->call = grpc_channel_create_call(c->eps[s->ep].channel, NULL, GRPC_PROPAGATE_DEFAULTS,
					   s->cq, grpc_slice_from_static_string(m->path), NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (!s->call) {
		rc = bf_errf(err, BF_ENOMEM, "etcd %s %s: cannot start stream",
			     c->eps[s->ep].target, m->name);
		goto out;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = 1;
	ops[0].data.send_initial_metadata.metadata = &s->md;
	if (start_batch(s, ops, 1, OP_START))
		goto fail;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	if (start_batch(s, ops, 1, OP_STATUS))
		goto fail;
	goto out;
fail:
	rc = bf_errf(err, BF_EPROTO, "etcd %s %s: cannot start stream", c->eps[s->ep].target,
		     m->name);
out:
	return rc;
}

static void on_event(stream *s, grpc_event ev)
{
	unsigned tag = (unsigned)(uintptr_t)ev.tag;

	s->pending &= ~tag;
	if (!ev.success)
		s->ended = true;
	switch (tag) {
	case OP_SEND:
		grpc_byte_buffer_destroy(s->send_bb);
		s->send_bb = NULL;
		break;
	case OP_RECV:
		s->got_init_md = true;
		if (s->recv_bb)
			s->have_msg = true;
		else
			s->ended = true; /* the server closed the stream */
		break;
	case OP_STATUS:
		s->status_known = true;
		s->ended = true;
		break;
	default:
		break;
	}
}

/*
 * Drives the completion queue until none of the `want` batches is pending
 * or the stream ended: 0, BF_ETIMEDOUT at the deadline, BF_ECANCELLED when
 * interrupted, or the stream's status once it ended.
 */
static int stream_wait(stream *s, unsigned want, int64_t deadline_ms, bf_err *err)
{
	for (;;) {
		if (s->ended)
			break;
		if (!(s->pending & want))
			return 0;
		if (s->interruptible && bf_etcd_interrupted(s->c))
			return bf_errf(err, BF_ECANCELLED, "etcd %s %s: cancelled",
				       s->c->eps[s->ep].target, s->m->name);
		int64_t now = bf_now_ms();
		if (now >= deadline_ms)
			return bf_errf(err, BF_ETIMEDOUT, "etcd %s %s: no answer in time",
				       s->c->eps[s->ep].target, s->m->name);
		int64_t slice = deadline_ms - now < POLL_SLICE_MS ? deadline_ms - now : POLL_SLICE_MS;
		grpc_event ev = grpc_completion_queue_next(
			s->cq,
			gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				     gpr_time_from_millis(slice, GPR_TIMESPAN)),
			NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			on_event(s, ev);
	}
	/* Ended: the final status says why, and it follows promptly. */
	while (!s->status_known && bf_now_ms() < deadline_ms) {
		grpc_event ev = grpc_completion_queue_next(s->cq, deadline_at(deadline_ms), NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			on_event(s, ev);
	}
	char details[256];
	if (!s->status_known)
		return bf_errf(err, BF_EUNAVAIL, "etcd %s %s: stream broke",
			       s->c->eps[s->ep].target, s->m->name);
	slice_to_str(s->details, details, sizeof(details));
	if (s->status == GRPC_STATUS_OK)
		return bf_errf(err, BF_EUNAVAIL, "etcd %s %s: stream closed by the server",
			       s->c->eps[s->ep].target, s->m->name);
	return call_failed(s->c, s->ep, s->m, s->status, details, err);
}

static int stream_send(stream *s, const bf_etcd_buf *msg, int64_t deadline_ms, bf_err *err)
{
	grpc_op op;
	int rc;

	/* gRPC allows one send in flight: finish the previous one first. */
	rc = stream_wait(s, OP_SEND | OP_START, deadline_ms, err);
	if (rc)
		return rc;
	s->send_bb = make_message(msg);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = s->send_bb;
	if (start_batch(s, &op, 1, OP_SEND)) {
		grpc_byte_buffer_destroy(s->send_bb);
		s->send_bb = NULL;
		return bf_errf(err, BF_EPROTO, "etcd %s %s: cannot send", s->c->eps[s->ep].target,
			       s->m->name);
	}
	return 0;
}

/* Waits for the next message; *msg is owned by the caller. */
static int stream_recv(stream *s, int64_t deadline_ms, bf_etcd_buf *msg, bf_err *err)
{
	grpc_op ops[2];
	size_t n = 0;
	int rc;

	if (!s->have_msg && !(s->pending & OP_RECV) && !s->ended) {
		memset(ops, 0, sizeof(ops));
		if (!s->got_init_md) {
			ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
			ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
			n++;
		}
		ops[n].op = GRPC_OP_RECV_MESSAGE;
		ops[n].data.recv_message.recv_message = &s->recv_bb;
		n++;
		if (start_batch(s, ops, n, OP_RECV))
			return bf_errf(err, BF_EPROTO, "etcd %s %s: cannot receive",
				       s->c->eps[s->ep].target, s->m->name);
	}
	if (!s->have_msg) {
		rc = stream_wait(s, OP_RECV, deadline_ms, err);
		if (rc)
			return rc;
		if (!s->have_msg)
			return bf_errf(err, BF_EUNAVAIL, "etcd %s %s: stream ended",
				       s->c->eps[s->ep].target, s->m->name);
	}
	s->have_msg = false;
	if (take_message(&s->recv_bb, msg))
		return bf_errf(err, BF_EPROTO, "etcd %s %s: unreadable message",
			       s->c->eps[s->ep].target, s->m->name);
	return 0;
}

/* Cancels the call and drains every batch before freeing what they use. */
static void stream_close(stream *s)
{
	if (s->call) {
		if (!s->status_known)
			grpc_call_cancel(s->call, NULL);
		while (s->pending) {
			grpc_event ev = grpc_completion_queue_next(
				s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
			if (ev.type == GRPC_OP_COMPLETE)
				on_event(s, ev);
		}
		grpc_call_unref(s->call);
		s->call = NULL;
	}
	if (s->cq) {
		grpc_completion_queue_shutdown(s->cq);
		while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->cq);
		s->cq = NULL;
	}
	if (s->recv_bb)
		grpc_byte_buffer_destroy(s->recv_bb);
	if (s->send_bb)
		grpc_byte_buffer_destroy(s->send_bb);
	s->recv_bb = s->send_bb = NULL;
	grpc_slice_unref(s->details);
	s->details = grpc_empty_slice();
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trail_md);
}

/* ---- LeaseKeepAlive ---------------------------------------------------- */

struct bf_etcd_keepalive {
	stream s;
};

int bf_etcd_keepalive_open(bf_etcd *c, bf_etcd_keepalive **out, bf_err *err)
{
	bf_etcd_keepalive *ka = calloc(1, sizeof(*ka));
	int rc;

	*out = NULL;
	if (!ka)
		return bf_errf(err, BF_ENOMEM, "etcd: out of memory");
	rc = stream_open(c, &M_KEEPALIVE, false, &ka->s, err);
	if (rc) {
		bf_etcd_keepalive_close(ka);
		return rc;
	}
	*out = ka;
	return 0;
}

int bf_etcd_keepalive_ping(bf_etcd_keepalive *ka, int64_t id, int timeout_ms, int64_t *ttl_s,
			   bf_err *err)
{
	int64_t deadline = bf_now_ms() + (timeout_ms > 0 ? timeout_ms : ka->s.c->call_timeout_ms);
	bf_etcd_buf req = { 0 }, reply = { 0 };
	int64_t reply_id = 0;
	int rc;

	if (bf_etcd_wire_keepalive(id, &req)) {
		rc = bf_errf(err, BF_ENOMEM, "etcd: out of memory");
		goto out;
	}
	rc = stream_send(&ka->s, &req, deadline, err);
	if (rc)
		goto out;
	rc = stream_recv(&ka->s, deadline, &reply, err);
	if (rc)
		goto out;
	rc = bf_etcd_unwire_keepalive(reply.data, reply.len, ka->s.c->max_reply, &reply_id, ttl_s,
				      err);
	if (!rc && reply_id != id)
		rc = bf_errf(err, BF_EPROTO, "etcd keepalive for lease %llx answered for %llx",
			     (unsigned long long)id, (unsigned long long)reply_id);
	if (rc)
		bf_err_prefix(err, rc, "etcd %s LeaseKeepAlive", ka->s.c->eps[ka->s.ep].target);
out:
	/* A keepalive that got no answer in time counts against the member like
	 * a unary deadline does. */
	if (rc == BF_ETIMEDOUT)
		rotate_from(ka->s.c, ka->s.ep);
	bf_etcd_buf_free(&req);
	bf_etcd_buf_free(&reply);
	return rc;
}

void bf_etcd_keepalive_close(bf_etcd_keepalive *ka)
{
	if (!ka)
		return;
	stream_close(&ka->s);
	free(ka);
}

/* ---- Watch ------------------------------------------------------------- */

struct bf_etcd_watch {
	stream s;
	char *key; /* owned, for messages */
	size_t pending_deletes;
};

/* Reads one watch reply; a cancelled watch is an error (compaction etc.). */
static int watch_next(bf_etcd_watch *w, int64_t deadline_ms, bf_etcd_watch_reply *wr,
		      bf_err *err)
{
	bf_etcd_buf msg = { 0 };
	int rc = stream_recv(&w->s, deadline_ms, &msg, err);

	if (rc)
		goto out;
	rc = bf_etcd_unwire_watch(msg.data, msg.len, w->s.c->max_reply, wr, err);
	if (rc) {
		bf_err_prefix(err, rc, "etcd %s Watch %s", w->s.c->eps[w->s.ep].target, w->key);
		goto out;
	}
	if (wr->canceled) {
		rc = bf_errf(err, wr->compact_revision ? BF_ESTATE : BF_EUNAVAIL,
			     "etcd %s Watch %s: cancelled by the server%s%s%s",
			     w->s.c->eps[w->s.ep].target, w->key, *wr->cancel_reason ? ": " : "",
			     wr->cancel_reason,
			     wr->compact_revision ? " (revision compacted)" : "");
		goto out;
	}
	w->pending_deletes += wr->deletes;
out:
	bf_etcd_buf_free(&msg);
	return rc;
}

int bf_etcd_watch_open(bf_etcd *c, const char *key, int64_t start_revision,
		       bf_etcd_watch **out, bf_err *err)
{
	bf_etcd_watch *w = calloc(1, sizeof(*w));
	bf_etcd_buf req = { 0 };
	bf_etcd_watch_reply wr;
	int64_t deadline = bf_now_ms() + c->call_timeout_ms;
	int rc;

	*out = NULL;
	if (!w || !(w->key = strdup(key ? key : ""))) {
		rc = bf_errf(err, BF_ENOMEM, "etcd: out of memory");
		goto out;
	}
	if (bf_etcd_wire_watch_create(key, start_revision, &req)) {
		rc = bf_errf(err, BF_EINVAL, "etcd Watch: bad key");
		goto out;
	}
	rc = stream_open(c, &M_WATCH, true, &w->s, err);
	if (rc)
		goto out;
	rc = stream_send(&w->s, &req, deadline, err);
	if (rc)
		goto out;
	/* etcd confirms a new watch with a "created" reply before any event. */
	do {
		rc = watch_next(w, deadline, &wr, err);
	} while (!rc && !wr.created);
	if (rc == BF_ETIMEDOUT)
		rotate_from(c, w->s.ep);
out:
	bf_etcd_buf_free(&req);
	if (rc) {
		bf_etcd_watch_close(w);
		return rc;
	}
	*out = w;
	return 0;
}

int bf_etcd_watch_wait_delete(bf_etcd_watch *w, int timeout_ms, bf_err *err)
{
	int64_t deadline = bf_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	bf_etcd_watch_reply wr;
	int rc;

	while (w->pending_deletes == 0) {
		rc = watch_next(w, deadline, &wr, err);
		if (rc == BF_ETIMEDOUT) {
			/* Nothing happened in time: not an error for a watch; the
			 * receive stays armed for the next wait. */
			bf_err_clear(err);
			return 0;
		}
		if (rc)
			return rc;
	}
	return 1;
}

void bf_etcd_watch_close(bf_etcd_watch *w)
{
	if (!w)
		return;
	if (w->s.c)
		stream_close(&w->s);
	free(w->key);
	free(w);
}
