/*
 * etcd client (include/bfill/etcd.h): etcd's policy over bfill's gRPC
 * transport (rpc/). Message encoding and reply validation live in
 * etcd_wire.c, moving bytes in rpc/; this file decides what etcd needs:
 * the methods and which of them may be sent twice, the `hasleader`
 * metadata, deadlines, failover between endpoints and which failures may
 * be retried on the next one, and the keepalive and watch streams.
 *
 * Depends on: rpc/, lock/etcd_wire, util (clocks), fault seams.
 */
#include "bfill/etcd.h"
#include "bfill/fault.h"
#include "lock/etcd_wire.h"
#include "util/endpoints.h"
#include "rpc/rpc.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct bf_etcd {
	bf_rpc_pool *pool;    /* owned */
	bf_rpc_channel **eps; /* owned array of n_eps; the channels are the pool's */
	size_t n_eps;
	atomic_size_t current; /* endpoint the next call goes to */
	int call_timeout_ms;
	size_t max_reply;
	bool (*interrupted)(void *arg);
	int64_t (*deadline_cap)(void *arg);
	void *hook_arg;
	/* Authentication (NULL user: none). auth_mu guards token and is held
	 * across an Authenticate call, so that threads finding the token
	 * stale at once trade the password once, not once each. */
	char *user;     /* owned */
	char *password; /* owned; wiped when freed */
	pthread_mutex_t auth_mu;
	char *token; /* owned; wiped when replaced; NULL until the first call */
	/* Set when etcd refused the password: every later call of this client
	 * fails with it at once. Retrying would only fill etcd's log, and a
	 * password does not become right by itself. */
	char refused[BF_ERR_MSG_MAX];
};

/* A gRPC method and how a failed call on it may be retried. */
typedef struct method {
	bf_rpc_method rpc;
	bool read_only; /* safe to send again to the next endpoint */
} method;

static const method M_RANGE = { { "/etcdserverpb.KV/Range", "Range" }, true };
static const method M_PUT = { { "/etcdserverpb.KV/Put", "Put" }, false };
static const method M_DELETE = { { "/etcdserverpb.KV/DeleteRange", "DeleteRange" }, false };
static const method M_TXN = { { "/etcdserverpb.KV/Txn", "Txn" }, false };
static const method M_GRANT = { { "/etcdserverpb.Lease/LeaseGrant", "LeaseGrant" }, false };
static const method M_REVOKE = { { "/etcdserverpb.Lease/LeaseRevoke", "LeaseRevoke" }, false };
static const method M_LEASE_TTL = {
	{ "/etcdserverpb.Lease/LeaseTimeToLive", "LeaseTimeToLive" }, true
};
static const method M_STATUS = { { "/etcdserverpb.Maintenance/Status", "Status" }, true };
static const method M_KEEPALIVE = {
	{ "/etcdserverpb.Lease/LeaseKeepAlive", "LeaseKeepAlive" }, false
};
static const method M_WATCH = { { "/etcdserverpb.Watch/Watch", "Watch" }, true };
/* Trading the password again is harmless, so it may go to the next member. */
static const method M_AUTH = { { "/etcdserverpb.Auth/Authenticate", "Authenticate" }, true };

/* Every call carries it: a member without a leader answers "no leader"
 * at once instead of hanging. */
static const bf_rpc_md HASLEADER = { "hasleader", "true" };

/* ---- policy ------------------------------------------------------------ */

static const char *target(const bf_etcd *c, size_t ep)
{
	return bf_rpc_channel_target(c->eps[ep]);
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

static bool member_failed(const bf_rpc_status *st)
{
	/* A leader cut off from its followers that does not know it yet holds
	 * a request until the deadline the client sent and then answers
	 * UNKNOWN "context deadline exceeded": no use either, for now. */
	return st->code == BF_RPC_UNAVAILABLE || st->code == BF_RPC_DEADLINE_EXCEEDED ||
	       (st->code == BF_RPC_UNKNOWN && strstr(st->details, "context deadline exceeded"));
}

bool bf_etcd_interrupted(const bf_etcd *c)
{
	return c->interrupted && c->interrupted(c->hook_arg);
}

/* now + timeout_ms (0 = the call timeout), cut to the caller's cap. */
static int64_t call_deadline(const bf_etcd *c, int timeout_ms)
{
	int64_t deadline = bf_now_ms() + (timeout_ms > 0 ? timeout_ms : c->call_timeout_ms);
	int64_t cap = c->deadline_cap ? c->deadline_cap(c->hook_arg) : 0;

	return cap > 0 && cap < deadline ? cap : deadline;
}

/*
 * A failed call's status into err; the client moves on from an endpoint
 * that is unavailable or too slow. A write whose outcome is unknown says
 * so. Returns the bfill code.
 */
static int call_failed(bf_etcd *c, size_t ep, const method *m, const bf_rpc_status *st,
		       bf_err *err)
{
	if (member_failed(st))
		rotate_from(c, ep);
	if (!m->read_only && st->code == BF_RPC_DEADLINE_EXCEEDED)
		return bf_errf(err, BF_ETIMEDOUT, "etcd %s %s: deadline exceeded, outcome unknown",
			       target(c, ep), m->rpc.name);
	if (!m->read_only && st->code == BF_RPC_UNAVAILABLE && !bf_etcd_write_not_applied(st))
		return bf_errf(err, BF_EUNKNOWN, "etcd %s %s: outcome unknown: UNAVAILABLE: %s",
			       target(c, ep), m->rpc.name, *st->details ? st->details : "(no details)");
	/* etcd has authentication on and this client has no user: no retry
	 * mends that, and the fix is a flag. */
	if (st->code == BF_RPC_INVALID_ARGUMENT && strstr(st->details, "user name is empty"))
		return bf_errf(err, -EACCES, "etcd %s %s: etcd has authentication on: give "
			       "--etcd-user NAME and its password", target(c, ep), m->rpc.name);
	return bf_rpc_status_err(c->eps[ep], &m->rpc, st, err);
}

/*
 * Fault seam "etcd.reply_lost.<Method>": etcd answered, and the answer is
 * dropped as if the connection broke on its way back.
 */
static bool reply_lost(const method *m, bf_rpc_status *st)
{
	char seam[64];

	snprintf(seam, sizeof(seam), "etcd.reply_lost.%s", m->rpc.name);
	if (!bf_fault_hit(seam))
		return false;
	st->code = BF_RPC_UNAVAILABLE;
	snprintf(st->details, sizeof(st->details), "Socket closed (fault %s)", seam);
	return true;
}

/* A call's metadata: hasleader, and the token when the client has one (a
 * copy, so that another thread may replace the client's meanwhile). */
typedef struct call_md {
	bf_rpc_md md[2];
	char token[BF_ETCD_TOKEN_MAX];
} call_md;

static bf_rpc_call make_call(bf_etcd *c, const method *m, int64_t deadline_ms,
			     bool interruptible, call_md *cm)
{
	bf_rpc_call call = {
		.method = &m->rpc,
		.md = cm->md,
		.n_md = 1,
		.deadline_ms = deadline_ms,
		.interrupted = interruptible ? c->interrupted : NULL,
		.interrupt_arg = c->hook_arg,
	};

	cm->md[0] = HASLEADER;
	cm->token[0] = '\0';
	if (c->user && m != &M_AUTH) {
		pthread_mutex_lock(&c->auth_mu);
		if (c->token)
			snprintf(cm->token, sizeof(cm->token), "%s", c->token);
		pthread_mutex_unlock(&c->auth_mu);
	}
	if (cm->token[0]) {
		/* etcd reads the token from this entry (rpctypes.TokenFieldNameGRPC). */
		cm->md[1] = (bf_rpc_md){ "token", cm->token };
		call.n_md = 2;
	}
	return call;
}

/* Wipes a call's copy of the token once the call is over. */
static void call_md_wipe(call_md *cm)
{
	explicit_bzero(cm->token, sizeof(cm->token));
}

/* etcd's answer to a token it no longer knows (expired, or from before a
 * restart): trading the password again mends it. */
static bool token_rejected(const bf_rpc_status *st)
{
	return st->code == BF_RPC_UNAUTHENTICATED && strstr(st->details, "invalid auth token");
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* ---- client lifetime --------------------------------------------------- */

/* How messages name the TLS files: as the command line's flags. */
#define ETCD_FLAGS "--etcd-"

int bf_etcd_security_check(const char *endpoints, const bf_etcd_security *sec, bf_err *err)
{
	const bf_tls *tls = sec ? &sec->tls : NULL;
	bf_endpoints_scheme scheme = bf_endpoints_scheme_of(endpoints);

	if (scheme == BF_SCHEME_HTTPS && !(tls && tls->ca_file))
		return bf_errf(err, BF_EINVAL, "--etcd %s is TLS (https://): it needs --etcd-cacert "
			       "FILE, the CA that signed etcd's certificate", endpoints);
	if (scheme == BF_SCHEME_HTTP && bf_tls_enabled(tls))
		return bf_errf(err, BF_EINVAL, "--etcd %s is plain text (http://), but %s was given: "
			       "use https:// (or host:port) for TLS", endpoints,
			       tls->ca_file ? "--etcd-cacert" : tls->cert_file ? "--etcd-cert"
								: "--etcd-key");
	if (sec && sec->user && !sec->password)
		return bf_errf(err, BF_EINVAL, "--etcd-user %s needs a password: "
			       "--etcd-password-file FILE or BFILL_ETCD_PASSWORD", sec->user);
	if (sec && !sec->user && sec->password)
		return bf_errf(err, BF_EINVAL, "a password for etcd needs --etcd-user NAME");
	if (sec && sec->user && !*sec->user)
		return bf_errf(err, BF_EINVAL, "--etcd-user needs a name");
	return bf_tls_check(tls, false, ETCD_FLAGS, err);
}

/* Adds one endpoint spec ("host:port", "http://host:port/", "https://..."). */
static int add_endpoint(bf_etcd *c, const char *spec, size_t len, bf_err *err)
{
	const char *scheme_end = memmem(spec, len, "://", 3);
	char *host_port = NULL;
	int rc;

	/* The list passed bf_endpoints_check: only a scheme to drop (the
	 * pool's credentials already say whether it is TLS). */
	if (scheme_end) {
		len -= (size_t)(scheme_end + 3 - spec);
		spec = scheme_end + 3;
	}
	while (len > 0 && spec[len - 1] == '/')
		len--;
	host_port = strndup(spec, len);
	if (!host_port)
		return bf_errf(err, BF_ENOMEM, "etcd: out of memory");
	rc = bf_rpc_pool_add(c->pool, host_port, &c->eps[c->n_eps], err);
	if (!rc)
		c->n_eps++;
	free(host_port);
	return rc;
}

int bf_etcd_create(const char *endpoints, const bf_etcd_opts *opts, bf_etcd **out, bf_err *err)
{
	bf_etcd *c = NULL;
	size_t max_eps = 1;
	int rc = 0;

	*out = NULL;
	if (!endpoints || !*endpoints)
		return bf_errf(err, BF_EINVAL, "etcd: no endpoints");
	rc = bf_endpoints_check(endpoints, err);
	if (rc == 0)
		rc = bf_etcd_security_check(endpoints, opts ? opts->security : NULL, err);
	if (rc)
		return bf_err_prefix(err, rc, "etcd");
	for (const char *p = endpoints; *p; p++)
		max_eps += *p == ',';
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
		c->deadline_cap = opts->deadline_cap;
		c->hook_arg = opts->hook_arg;
	}
	atomic_init(&c->current, 0);
	pthread_mutex_init(&c->auth_mu, NULL);
	if (opts && opts->security && opts->security->user &&
	    (!(c->user = strdup(opts->security->user)) ||
	     !(c->password = strdup(opts->security->password)))) {
		rc = bf_errf(err, BF_ENOMEM, "etcd: out of memory");
		goto out;
	}
	bf_rpc_pool_opts po = { .label = "etcd", .max_recv_bytes = c->max_reply,
				.tls = opts && opts->security ? &opts->security->tls : NULL,
				.tls_flags = ETCD_FLAGS };
	rc = bf_rpc_pool_create(&po, &c->pool, err);
	if (rc)
		goto out;
	for (const char *p = endpoints; *p;) {
		size_t len = strcspn(p, ",");
		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		if (len > 0) {
			rc = add_endpoint(c, p, len, err);
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
	*out = c;
	c = NULL;
out:
	bf_etcd_destroy(c);
	return rc;
}

void bf_etcd_destroy(bf_etcd *c)
{
	if (!c)
		return;
	bf_rpc_pool_destroy(c->pool);
	free(c->eps);
	free(c->user);
	free_secret(c->password);
	free_secret(c->token);
	pthread_mutex_destroy(&c->auth_mu);
	free(c);
}

const char *bf_etcd_endpoint(const bf_etcd *c)
{
	return target(c, atomic_load(&((bf_etcd *)c)->current) % c->n_eps);
}

int bf_etcd_call_timeout_ms(const bf_etcd *c)
{
	return c->call_timeout_ms;
}

/* ---- unary calls ------------------------------------------------------- */

/*
 * Runs method m with request req within timeout_ms (0 = the call timeout),
 * trying the endpoints round robin from the current one. *reply is owned
 * by the caller on success; *used_ep is the endpoint tried last.
 */
static int authenticate(bf_etcd *c, const char *stale, int64_t deadline, bf_err *err);

/* What is left until deadline, at least 1 ms (a timeout of 0 means the
 * default one to unary). */
static int ms_left(int64_t deadline)
{
	int64_t left = deadline - bf_now_ms();
	return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static int unary(bf_etcd *c, const method *m, const bf_rpc_buf *req, int timeout_ms,
		 bf_rpc_buf *reply, size_t *used_ep, bf_err *err)
{
	int64_t deadline = call_deadline(c, timeout_ms);
	bool authenticated = m == &M_AUTH || !c->user, reauthenticated = false;
	size_t tries = c->n_eps;
	bf_rpc_status st;
	call_md cm;
	int rc = 0;

	reply->data = NULL;
	reply->len = 0;
	/* The first call of a client with a user fetches its token. */
	if (!authenticated && (rc = authenticate(c, "", deadline, err)))
		return rc;
	for (size_t attempt = 0; attempt < tries; attempt++) {
		size_t ep = atomic_load(&c->current) % c->n_eps;
		int64_t now = bf_now_ms();

		*used_ep = ep;
		if (bf_etcd_interrupted(c))
			return bf_errf(err, BF_ECANCELLED, "etcd %s %s: cancelled", target(c, ep),
				       m->rpc.name);
		if (now >= deadline)
			return bf_errf(err, BF_ETIMEDOUT, "etcd %s %s: not sent, no time left",
				       target(c, ep), m->rpc.name);
		/* A read may go on to the next member, so one member that hangs
		 * (a leader cut off from its followers accepts the request and
		 * never answers) must not use up the whole deadline: it gets half
		 * of what is left, the last member all of it. */
		int64_t attempt_deadline = deadline;
		if (m->read_only && attempt + 1 < tries)
			attempt_deadline = now + (deadline - now) / 2;
		bf_rpc_call call = make_call(c, m, attempt_deadline, true, &cm);
		rc = bf_rpc_unary(c->eps[ep], &call, req, &st, reply, err);
		if (rc) {
			call_md_wipe(&cm);
			return rc;
		}
		if (st.code == BF_RPC_OK && reply_lost(m, &st))
			bf_rpc_buf_free(reply);
		if (st.code == BF_RPC_OK) {
			call_md_wipe(&cm);
			return 0;
		}
		/* An expired token (etcd's --auth-token-ttl, a restart) is traded
		 * for a new one once per call, and the call sent again: etcd
		 * refused it before doing anything. */
		if (!authenticated && !reauthenticated && token_rejected(&st)) {
			reauthenticated = true;
			rc = authenticate(c, cm.token, deadline, err);
			call_md_wipe(&cm);
			if (rc)
				return rc;
			tries++;
			continue;
		}
		call_md_wipe(&cm);
		rc = call_failed(c, ep, m, &st, err);
		if (!member_failed(&st))
			return rc;
		if (!m->read_only && !bf_etcd_write_not_applied(&st))
			return rc;
		if (bf_now_ms() >= deadline || bf_etcd_interrupted(c))
			return rc;
	}
	return rc;
}

/*
 * Trades the password for a token, unless the client's token is no longer
 * `stale` (the one a refused call carried; "" when the client has none
 * yet): another thread got a new one meanwhile. Within deadline. A refused
 * password is -EACCES, one line naming the user.
 */
static int authenticate(bf_etcd *c, const char *stale, int64_t deadline, bf_err *err)
{
	bf_rpc_buf msg = { 0 }, reply = { 0 };
	char *token = NULL;
	size_t ep = 0;
	int rc = 0;

	pthread_mutex_lock(&c->auth_mu);
	if (c->refused[0]) {
		rc = bf_errf(err, -EACCES, "%s", c->refused);
		goto out;
	}
	if (c->token && strcmp(c->token, stale))
		goto out;
	rc = bf_etcd_wire_authenticate(c->user, c->password, &msg);
	if (rc) {
		rc = bf_errf(err, rc, "etcd Authenticate: cannot encode the request (%s)",
			     bf_strerror(rc));
		goto out;
	}
	rc = unary(c, &M_AUTH, &msg, ms_left(deadline), &reply, &ep, err);
	if (!rc)
		rc = bf_etcd_unwire_authenticate(reply.data, reply.len, c->max_reply, &token, err);
	if (rc == BF_EINVAL && strstr(bf_err_text(err), "authentication failed")) {
		rc = bf_errf(err, -EACCES, "etcd %s: user '%s' was refused: wrong user name or "
			     "password (--etcd-user, --etcd-password-file or BFILL_ETCD_PASSWORD)",
			     target(c, ep), c->user);
		snprintf(c->refused, sizeof(c->refused), "%s", bf_err_text(err));
	}
	else if (rc && reply.data)
		bf_err_prefix(err, rc, "etcd %s Authenticate", target(c, ep));
	if (!rc) {
		free_secret(c->token);
		c->token = token;
		token = NULL;
	}
out:
	pthread_mutex_unlock(&c->auth_mu);
	bf_etcd_wire_wipe(&msg);
	bf_etcd_wire_wipe(&reply);
	free_secret(token);
	return rc;
}

/*
 * Every unary wrapper encodes, calls, decodes: begin_call sends the encoded
 * request (freeing it) and end_call frees the reply and names the endpoint
 * and method in a decode error.
 */
static int begin_call(bf_etcd *c, const method *m, int encode_rc, bf_rpc_buf *req,
		      int timeout_ms, bf_rpc_buf *reply, size_t *ep, bf_err *err)
{
	int rc;

	reply->data = NULL;
	reply->len = 0;
	if (encode_rc)
		rc = bf_errf(err, encode_rc, "etcd %s: cannot encode the request (%s)", m->rpc.name,
			     bf_strerror(encode_rc));
	else
		rc = unary(c, m, req, timeout_ms, reply, ep, err);
	bf_rpc_buf_free(req);
	return rc;
}

static int end_call(bf_etcd *c, const method *m, size_t ep, int rc, bf_rpc_buf *reply,
		    bf_err *err)
{
	if (rc && reply->data)
		bf_err_prefix(err, rc, "etcd %s %s", target(c, ep), m->rpc.name);
	bf_rpc_buf_free(reply);
	return rc;
}

int bf_etcd_range(bf_etcd *c, const bf_etcd_range_req *req, bf_etcd_range_result *res,
		  bf_err *err)
{
	bf_rpc_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_RANGE, req ? bf_etcd_wire_range(req, &msg) : BF_EINVAL, &msg,
			    req ? req->timeout_ms : 0, &reply, &ep, err);

	memset(res, 0, sizeof(*res));
	if (!rc)
		rc = bf_etcd_unwire_range(reply.data, reply.len, c->max_reply, res, err);
	return end_call(c, &M_RANGE, ep, rc, &reply, err);
}

int bf_etcd_get_text(bf_etcd *c, const char *key, char *out, size_t cap, bf_err *err)
{
	bf_etcd_range_result res = { 0 };
	bf_etcd_range_req req = { .key = key };
	int rc = bf_etcd_range(c, &req, &res, err);

	if (rc == 0) {
		rc = res.n_kvs > 0;
		if (out && cap)
			snprintf(out, cap, "%.*s", rc ? (int)res.kvs[0].value_len : 0,
				 rc ? res.kvs[0].value : "");
	}
	bf_etcd_range_result_free(&res);
	return rc;
}

int bf_etcd_put(bf_etcd *c, const char *key, const void *value, size_t value_len,
		int64_t lease, int64_t *revision, bf_err *err)
{
	bf_rpc_buf msg = { 0 }, reply;
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
	bf_rpc_buf msg = { 0 }, reply;
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
	bf_rpc_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_TXN, req ? bf_etcd_wire_txn(req, &msg) : BF_EINVAL, &msg, 0,
			    &reply, &ep, err);

	memset(res, 0, sizeof(*res));
	if (!rc)
		rc = bf_etcd_unwire_txn(reply.data, reply.len, c->max_reply, res, err);
	return end_call(c, &M_TXN, ep, rc, &reply, err);
}

int bf_etcd_lease_grant(bf_etcd *c, int64_t ttl_s, int64_t want_id, int64_t *id,
			int64_t *granted_ttl_s, bf_err *err)
{
	bf_rpc_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_GRANT,
			    want_id < 0 ? BF_EINVAL : bf_etcd_wire_lease_grant(ttl_s, want_id, &msg),
			    &msg, 0, &reply, &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_lease_grant(reply.data, reply.len, c->max_reply, id,
						granted_ttl_s, err);
	if (!rc && want_id && *id != want_id)
		rc = bf_errf(err, BF_EPROTO, "asked for lease %llx, granted %llx",
			     (unsigned long long)want_id, (unsigned long long)*id);
	return end_call(c, &M_GRANT, ep, rc, &reply, err);
}

int64_t bf_etcd_lease_id_new(void)
{
	uint64_t r = 0;

	/* getrandom fails only on ancient kernels; a clock-seeded mix still
	 * makes a collision with another client's lease unlikely. */
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		uint64_t seed = (uint64_t)bf_now_ns() ^ ((uint64_t)getpid() << 32);
		r = bf_splitmix64(&seed);
	}
	r &= (uint64_t)INT64_MAX;
	return r ? (int64_t)r : 1;
}

int bf_etcd_lease_revoke(bf_etcd *c, int64_t id, bf_err *err)
{
	bf_rpc_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_REVOKE, bf_etcd_wire_lease_revoke(id, &msg), &msg, 0, &reply,
			    &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_lease_revoke(reply.data, reply.len, c->max_reply, err);
	return end_call(c, &M_REVOKE, ep, rc, &reply, err);
}

int bf_etcd_lease_ttl(bf_etcd *c, int64_t id, int64_t *ttl_s, bf_err *err)
{
	bf_rpc_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_LEASE_TTL, bf_etcd_wire_lease_ttl(id, &msg), &msg, 0, &reply,
			    &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_lease_ttl(reply.data, reply.len, c->max_reply, ttl_s, err);
	return end_call(c, &M_LEASE_TTL, ep, rc, &reply, err);
}

int bf_etcd_status(bf_etcd *c, bf_etcd_status_info *info, bf_err *err)
{
	bf_rpc_buf msg = { 0 }, reply;
	size_t ep = 0;
	int rc = begin_call(c, &M_STATUS, bf_etcd_wire_status(&msg), &msg, 0, &reply, &ep, err);

	if (!rc)
		rc = bf_etcd_unwire_status(reply.data, reply.len, c->max_reply, info, err);
	return end_call(c, &M_STATUS, ep, rc, &reply, err);
}

/* ---- streams ----------------------------------------------------------- */

/* An etcd stream: which endpoint it runs on, for failover. */
typedef struct etcd_stream {
	bf_etcd *c; /* borrowed */
	size_t ep;
	bf_rpc_stream *s; /* owned */
} etcd_stream;

static int stream_open(bf_etcd *c, const method *m, bool interruptible, etcd_stream *es,
		       bf_err *err)
{
	call_md cm;
	int rc = 0;

	es->c = c;
	es->ep = atomic_load(&c->current) % c->n_eps;
	/* etcd checks the token when a watch is created: a client with a
	 * user has one before it opens any stream. */
	if (c->user && (rc = authenticate(c, "", call_deadline(c, 0), err)))
		return rc;
	bf_rpc_call call = make_call(c, m, 0, interruptible, &cm);
	rc = bf_rpc_stream_open(c->eps[es->ep], &call, &es->s, err);
	call_md_wipe(&cm);
	return rc;
}

/* A stream that ended on a member that is unavailable or too slow moves
 * the client on, as a unary call does. */
static void stream_failed(etcd_stream *es)
{
	const bf_rpc_status *st = es->s ? bf_rpc_stream_status(es->s) : NULL;

	if (st && member_failed(st))
		rotate_from(es->c, es->ep);
}

/* ---- LeaseKeepAlive ---------------------------------------------------- */

struct bf_etcd_keepalive {
	etcd_stream es;
};

int bf_etcd_keepalive_open(bf_etcd *c, bf_etcd_keepalive **out, bf_err *err)
{
	bf_etcd_keepalive *ka = calloc(1, sizeof(*ka));
	int rc;

	*out = NULL;
	if (!ka)
		return bf_errf(err, BF_ENOMEM, "etcd: out of memory");
	rc = stream_open(c, &M_KEEPALIVE, false, &ka->es, err);
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
	bf_etcd *c = ka->es.c;
	int64_t deadline = bf_now_ms() + (timeout_ms > 0 ? timeout_ms : c->call_timeout_ms);
	bf_rpc_buf req = { 0 }, reply = { 0 };
	bf_rpc_status lost;
	int64_t reply_id = 0;
	int rc;

	if (bf_etcd_wire_keepalive(id, &req)) {
		rc = bf_errf(err, BF_ENOMEM, "etcd: out of memory");
		goto out;
	}
	rc = bf_rpc_stream_send(ka->es.s, &req, deadline, err);
	if (rc)
		goto out;
	rc = bf_rpc_stream_recv(ka->es.s, deadline, &reply, err);
	if (rc)
		goto out;
	if (reply_lost(&M_KEEPALIVE, &lost)) {
		rc = bf_errf(err, BF_EUNAVAIL, "etcd %s LeaseKeepAlive: %s", target(c, ka->es.ep),
			     lost.details);
		goto out;
	}
	rc = bf_etcd_unwire_keepalive(reply.data, reply.len, c->max_reply, &reply_id, ttl_s, err);
	if (!rc && reply_id != id)
		rc = bf_errf(err, BF_EPROTO, "etcd keepalive for lease %llx answered for %llx",
			     (unsigned long long)id, (unsigned long long)reply_id);
	if (rc)
		bf_err_prefix(err, rc, "etcd %s LeaseKeepAlive", target(c, ka->es.ep));
out:
	/* A keepalive that got no answer in time counts against the member like
	 * a unary deadline does. */
	if (rc == BF_ETIMEDOUT)
		rotate_from(c, ka->es.ep);
	else if (rc)
		stream_failed(&ka->es);
	bf_rpc_buf_free(&req);
	bf_rpc_buf_free(&reply);
	return rc;
}

void bf_etcd_keepalive_close(bf_etcd_keepalive *ka)
{
	if (!ka)
		return;
	bf_rpc_stream_destroy(ka->es.s);
	free(ka);
}

/* ---- Watch ------------------------------------------------------------- */

struct bf_etcd_watch {
	etcd_stream es;
	char *key; /* owned, for messages */
	bf_etcd_key_filter filter;
	void *filter_arg;
	size_t pending_deletes;
	size_t pending_changes;  /* puts and deletes since the last wait_change */
	int64_t change_revision; /* of the latest reply that carried any */
};

/* Reads one watch reply; a cancelled watch is an error (compaction etc.). */
static int watch_next(bf_etcd_watch *w, int64_t deadline_ms, bf_etcd_watch_reply *wr,
		      bf_err *err)
{
	bf_rpc_buf msg = { 0 };
	const char *ep = target(w->es.c, w->es.ep);
	int rc = bf_rpc_stream_recv(w->es.s, deadline_ms, &msg, err);

	if (rc) {
		stream_failed(&w->es);
		goto out;
	}
	rc = bf_etcd_unwire_watch_some(msg.data, msg.len, w->es.c->max_reply, w->filter,
				       w->filter_arg, wr, err);
	if (rc) {
		bf_err_prefix(err, rc, "etcd %s Watch %s", ep, w->key);
		goto out;
	}
	if (wr->canceled) {
		rc = bf_errf(err, wr->compact_revision ? BF_ESTATE : BF_EUNAVAIL,
			     "etcd %s Watch %s: cancelled by the server%s%s%s", ep, w->key,
			     *wr->cancel_reason ? ": " : "", wr->cancel_reason,
			     wr->compact_revision ? " (revision compacted)" : "");
		goto out;
	}
	w->pending_deletes += wr->deletes;
	if (wr->puts + wr->deletes) {
		w->pending_changes += wr->puts + wr->deletes;
		w->change_revision = wr->revision;
	}
out:
	bf_rpc_buf_free(&msg);
	return rc;
}

int bf_etcd_watch_open(bf_etcd *c, const char *key, int64_t start_revision,
		       bf_etcd_watch **out, bf_err *err)
{
	return bf_etcd_watch_open_range(c, key, NULL, start_revision, NULL, NULL, out, err);
}

int bf_etcd_watch_open_range(bf_etcd *c, const char *key, const char *range_end,
			     int64_t start_revision, bf_etcd_key_filter filter, void *filter_arg,
			     bf_etcd_watch **out, bf_err *err)
{
	bf_etcd_watch *w = calloc(1, sizeof(*w));
	bf_rpc_buf req = { 0 };
	bf_etcd_watch_reply wr;
	int64_t deadline = call_deadline(c, 0);
	int rc;

	*out = NULL;
	if (!w || !(w->key = strdup(key ? key : ""))) {
		rc = bf_errf(err, BF_ENOMEM, "etcd: out of memory");
		goto out;
	}
	w->filter = filter;
	w->filter_arg = filter_arg;
	if (bf_etcd_wire_watch_create(key, range_end, start_revision, &req)) {
		rc = bf_errf(err, BF_EINVAL, "etcd Watch: bad key");
		goto out;
	}
	rc = stream_open(c, &M_WATCH, true, &w->es, err);
	if (rc)
		goto out;
	rc = bf_rpc_stream_send(w->es.s, &req, deadline, err);
	if (rc) {
		stream_failed(&w->es);
		goto out;
	}
	/* etcd confirms a new watch with a "created" reply before any event. */
	do {
		rc = watch_next(w, deadline, &wr, err);
	} while (!rc && !wr.created);
	if (rc == BF_ETIMEDOUT)
		rotate_from(c, w->es.ep);
out:
	bf_rpc_buf_free(&req);
	if (rc) {
		bf_etcd_watch_close(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Reads replies until *pending is non-zero (1) or timeout_ms passes (0). */
static int watch_wait(bf_etcd_watch *w, int timeout_ms, const size_t *pending, bf_err *err)
{
	int64_t deadline = bf_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	bf_etcd_watch_reply wr;
	int rc;

	while (*pending == 0) {
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

int bf_etcd_watch_wait_delete(bf_etcd_watch *w, int timeout_ms, bf_err *err)
{
	return watch_wait(w, timeout_ms, &w->pending_deletes, err);
}

int bf_etcd_watch_wait_change(bf_etcd_watch *w, int timeout_ms, int64_t *revision,
			      bf_err *err)
{
	int rc = watch_wait(w, timeout_ms, &w->pending_changes, err);

	if (rc == 1) {
		w->pending_changes = 0;
		if (revision)
			*revision = w->change_revision;
	}
	return rc;
}

void bf_etcd_watch_close(bf_etcd_watch *w)
{
	if (!w)
		return;
	bf_rpc_stream_destroy(w->es.s);
	free(w->key);
	free(w);
}
