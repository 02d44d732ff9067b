/*
 * A small etcd v3 client (DESIGN §6), enough for the distributed lock and
 * the cluster's records: the KV calls (Range, Put, DeleteRange, Txn),
 * leases (grant, revoke, time to live, keepalive stream), watches of a key
 * or a range, and Maintenance.Status.
 *
 * Rules it keeps for every caller:
 *  - every call has a deadline and carries the `hasleader: true` metadata,
 *    so a member cut off from its leader answers "etcdserver: no leader" at
 *    once instead of hanging;
 *  - on UNAVAILABLE or DEADLINE_EXCEEDED the client moves to the next
 *    endpoint (round robin from the last one that answered); reads are
 *    retried there within the same call, writes only when the first member
 *    surely did not apply them (no connection could be made, or "no
 *    leader");
 *  - a write whose outcome is unknown says so: BF_ETIMEDOUT when it hit its
 *    deadline, BF_EUNKNOWN when the transport failed after it was sent
 *    (connection reset, socket closed, GOAWAY) or etcd itself could not say
 *    ("request timed out"); re-read, or revoke, before deciding;
 *  - replies are size-checked and validated; a malformed one is BF_EPROTO.
 *
 * Error messages name the endpoint and carry etcd's own message. Built on
 * bfill's gRPC transport (rpc/) and protobuf-c; no gRPC type leaks into
 * this header.
 *
 * Fault seam "etcd.reply_lost.<Method>" (e.g. "etcd.reply_lost.LeaseGrant"):
 * etcd answers the call, and the client reports a transport UNAVAILABLE
 * ("Socket closed") instead, as when a connection breaks after the request
 * went out.
 *
 * Thread safety: a bf_etcd may be used by several threads at once. A
 * keepalive stream or a watch belongs to the one thread that opened it.
 */
#ifndef BFILL_ETCD_H
#define BFILL_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_etcd bf_etcd;

/*
 * Every setting of how a connection to etcd is secured, in one struct so
 * that each client of etcd (bf_etcd_create, the etcd lock, a job's lock,
 * a worker) takes them the same way and a command line parses them once.
 * Borrowed by the create call that reads it; nothing in it is ever stored
 * in a record or put in a message but the files' paths.
 */
typedef struct bf_etcd_security {
	/* TLS (client role, see bfill/tls.h): --etcd-cacert, --etcd-cert,
	 * --etcd-key. Nothing named: plain text. */
	bf_tls tls;
	/*
	 * etcd authentication (--etcd-user; the password from
	 * --etcd-password-file or BFILL_ETCD_PASSWORD, never the command
	 * line): the client trades them for a token (Auth/Authenticate)
	 * before its first call, sends the token with every call, and trades
	 * again when etcd says it is invalid or expired. A refused password
	 * is -EACCES, never retried. Both NULL: no authentication; one
	 * without the other is refused. The client keeps a copy of the
	 * password, wiped when it is destroyed.
	 */
	const char *user;
	const char *password;
} bf_etcd_security;

/*
 * Checks that endpoints and sec (NULL: none) go together, without reading
 * any file: an https:// list needs a CA; TLS settings with an http://
 * list are refused (host:port takes either); the TLS files fit a client
 * (bf_tls_check); a user comes with a password and the reverse. BF_EINVAL
 * with one line naming the flags (--etcd, --etcd-cacert ...) otherwise. endpoints must pass bf_endpoints_check
 * first (bf_etcd_create checks both).
 */
int bf_etcd_security_check(const char *endpoints, const bf_etcd_security *sec, bf_err *err);

/* Default cap on one reply; larger replies are refused (BF_EPROTO). */
#define BF_ETCD_MAX_REPLY_DEFAULT ((size_t)4 << 20)
#define BF_ETCD_CALL_TIMEOUT_DEFAULT_MS 2000

typedef struct bf_etcd_opts {
	int call_timeout_ms;    /* deadline of each call; 0 = 2000 */
	size_t max_reply_bytes; /* 0 = BF_ETCD_MAX_REPLY_DEFAULT */
	/*
	 * Polled (every ~50 ms) while a unary call or a watch waits; when it
	 * returns true the call is cancelled and fails with BF_ECANCELLED.
	 * Keepalive streams ignore it: a lease must not die because an
	 * acquire was cancelled. May be NULL.
	 */
	bool (*interrupted)(void *arg);
	/*
	 * Asked at the start of each unary call and watch: a monotonic
	 * instant (ms, as bf_now_ms) that the call's deadline may not pass,
	 * or 0 for none. Lets a caller with a budget of its own (an acquire
	 * with a timeout) bound every call it makes. Keepalive streams ignore
	 * it. May be NULL.
	 */
	int64_t (*deadline_cap)(void *arg);
	void *hook_arg; /* passed to both hooks */
	/* TLS and authentication; NULL: plain text, anonymous. Borrowed for
	 * bf_etcd_create, which reads its files. */
	const bf_etcd_security *security;
} bf_etcd_opts;

/*
 * endpoints: "host:port[,host:port...]", an optional "http://" or
 * "https://" in front of each (see bf_etcd_security_check). Connects
 * lazily: creating never contacts etcd, but it reads the TLS files
 * (-errno naming the flag and path when one cannot be read). opts may be
 * NULL. With TLS, each member's certificate must name the host or address
 * it is reached by.
 */
int bf_etcd_create(const char *endpoints, const bf_etcd_opts *opts, bf_etcd **out,
		   bf_err *err);
/* Frees the client. Streams and watches opened on it must be closed first. */
void bf_etcd_destroy(bf_etcd *c);

/* The endpoint the next call goes to ("host:port"); owned by c. */
const char *bf_etcd_endpoint(const bf_etcd *c);
/* The per-call deadline in force, in milliseconds. */
int bf_etcd_call_timeout_ms(const bf_etcd *c);
/* What the interrupt hook says now (false without one), so that callers
 * looping over calls stop as promptly as the calls do. */
bool bf_etcd_interrupted(const bf_etcd *c);

/* Values equal etcd's wire enums. */
enum { BF_ETCD_SORT_NONE = 0, BF_ETCD_SORT_ASCEND = 1, BF_ETCD_SORT_DESCEND = 2 };
enum {
	BF_ETCD_BY_KEY = 0,
	BF_ETCD_BY_VERSION = 1,
	BF_ETCD_BY_CREATE = 2,
	BF_ETCD_BY_MOD = 3,
	BF_ETCD_BY_VALUE = 4,
};

typedef struct bf_etcd_kv {
	char *key; /* malloc'd, NUL-terminated; key_len is authoritative */
	size_t key_len;
	char *value; /* malloc'd, NUL-terminated; value_len is authoritative */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
} bf_etcd_kv;

typedef struct bf_etcd_range_req {
	const char *key;       /* required */
	const char *range_end; /* NULL = just key; see bf_etcd_prefix_end */
	int64_t limit;         /* 0 = no limit */
	int sort_order;        /* BF_ETCD_SORT_* */
	int sort_target;       /* BF_ETCD_BY_* */
	int64_t max_create_revision; /* 0 = no bound */
	bool keys_only;
	bool count_only;
	bool serializable;     /* may be served by a member without a leader */
	int timeout_ms;        /* 0 = the client's call timeout */
} bf_etcd_range_req;

typedef struct bf_etcd_range_result {
	int64_t revision; /* store revision the answer reflects */
	bf_etcd_kv *kvs;  /* owned by the result; bf_etcd_range_result_free */
	size_t n_kvs;
	bool more;
	int64_t count;
} bf_etcd_range_result;

int bf_etcd_range(bf_etcd *c, const bf_etcd_range_req *req, bf_etcd_range_result *res,
		  bf_err *err);
/* Frees what res owns and zeroes it; safe on a zeroed result. */
void bf_etcd_range_result_free(bf_etcd_range_result *res);
/* One key's value as text into out (cap bytes, cut to fit; "" when absent):
 * 1 when the key exists, 0 when not, a negative BF_E* with err set. */
int bf_etcd_get_text(bf_etcd *c, const char *key, char *out, size_t cap, bf_err *err);

/* Put; *revision (may be NULL) gets the revision of the write. */
int bf_etcd_put(bf_etcd *c, const char *key, const void *value, size_t value_len,
		int64_t lease, int64_t *revision, bf_err *err);
/* DeleteRange of [key, range_end) (range_end NULL = just key). Outputs may
 * be NULL. */
int bf_etcd_delete(bf_etcd *c, const char *key, const char *range_end, int64_t *deleted,
		   int64_t *revision, bf_err *err);

/* Txn. Values equal etcd's wire enums. */
enum {
	BF_ETCD_CMP_VERSION = 0,
	BF_ETCD_CMP_CREATE = 1,
	BF_ETCD_CMP_MOD = 2,
	BF_ETCD_CMP_VALUE = 3,
	BF_ETCD_CMP_LEASE = 4,
};
enum { BF_ETCD_EQUAL = 0, BF_ETCD_GREATER = 1, BF_ETCD_LESS = 2, BF_ETCD_NOT_EQUAL = 3 };
enum { BF_ETCD_OP_RANGE = 1, BF_ETCD_OP_PUT = 2, BF_ETCD_OP_DELETE = 3 };

typedef struct bf_etcd_compare {
	const char *key;
	int target;        /* BF_ETCD_CMP_* */
	int result;        /* BF_ETCD_EQUAL ... */
	int64_t number;    /* operand for VERSION, CREATE, MOD, LEASE */
	const void *value; /* operand for VALUE */
	size_t value_len;
} bf_etcd_compare;

typedef struct bf_etcd_op {
	int kind;              /* BF_ETCD_OP_* */
	bf_etcd_range_req range; /* RANGE (its timeout_ms is ignored) */
	const char *key;       /* PUT, DELETE */
	const char *range_end; /* DELETE; NULL = just key */
	const void *value;     /* PUT */
	size_t value_len;
	int64_t lease;         /* PUT */
} bf_etcd_op;

typedef struct bf_etcd_txn_req {
	const bf_etcd_compare *compare;
	size_t n_compare;
	const bf_etcd_op *success;
	size_t n_success;
	const bf_etcd_op *failure;
	size_t n_failure;
} bf_etcd_txn_req;

typedef struct bf_etcd_op_result {
	int kind;                   /* BF_ETCD_OP_* */
	bf_etcd_range_result range; /* RANGE */
	int64_t deleted;            /* DELETE */
} bf_etcd_op_result;

typedef struct bf_etcd_txn_result {
	int64_t revision;
	bool succeeded;
	bf_etcd_op_result *ops; /* owned by the result; bf_etcd_txn_result_free */
	size_t n_ops;
} bf_etcd_txn_result;

int bf_etcd_txn(bf_etcd *c, const bf_etcd_txn_req *req, bf_etcd_txn_result *res, bf_err *err);
void bf_etcd_txn_result_free(bf_etcd_txn_result *res);

/*
 * Leases. TTLs in seconds. bf_etcd_lease_grant asks for lease want_id
 * (> 0; 0 lets etcd choose) so that a grant whose outcome is unknown can
 * still be revoked by its ID; *id gets the granted ID and *granted_ttl_s
 * (may be NULL) the TTL etcd granted. A want_id etcd already has is
 * BF_ESTATE ("etcdserver: lease already exists").
 */
int bf_etcd_lease_grant(bf_etcd *c, int64_t ttl_s, int64_t want_id, int64_t *id,
			int64_t *granted_ttl_s, bf_err *err);
/* A random positive lease ID for bf_etcd_lease_grant (from getrandom). */
int64_t bf_etcd_lease_id_new(void);
/* Revoking an unknown lease is BF_ENOTFOUND. */
int bf_etcd_lease_revoke(bf_etcd *c, int64_t id, bf_err *err);
/* *ttl_s = remaining seconds, -1 when the lease does not exist. */
int bf_etcd_lease_ttl(bf_etcd *c, int64_t id, int64_t *ttl_s, bf_err *err);

typedef struct bf_etcd_status_info {
	char version[32];
	uint64_t member_id;
	uint64_t leader; /* member ID of the leader; 0 = none */
	int64_t revision;
	uint64_t raft_term;
} bf_etcd_status_info;

int bf_etcd_status(bf_etcd *c, bf_etcd_status_info *info, bf_err *err);

/*
 * LeaseKeepAlive stream, opened on the current endpoint. Driven
 * synchronously by the one thread that owns it (the session's keepalive
 * thread): each ping sends one request and waits for its reply.
 */
typedef struct bf_etcd_keepalive bf_etcd_keepalive;

int bf_etcd_keepalive_open(bf_etcd *c, bf_etcd_keepalive **out, bf_err *err);
/*
 * Keeps lease id alive once: *ttl_s > 0 is the renewed TTL, <= 0 means the
 * lease is gone. Any error leaves the stream broken: close it and open a
 * new one (the client has already moved to the next endpoint).
 */
int bf_etcd_keepalive_ping(bf_etcd_keepalive *ka, int64_t id, int timeout_ms,
			   int64_t *ttl_s, bf_err *err);
/* Cancels the stream and frees it. NULL is allowed. */
void bf_etcd_keepalive_close(bf_etcd_keepalive *ka);

/*
 * Watch of one key from start_revision, waiting for its deletion. Opening
 * waits (up to the call timeout) for etcd to confirm the watch.
 */
typedef struct bf_etcd_watch bf_etcd_watch;

int bf_etcd_watch_open(bf_etcd *c, const char *key, int64_t start_revision,
		       bf_etcd_watch **out, bf_err *err);
/* Whether a change to key[0..len) (not NUL-terminated) counts. */
typedef bool (*bf_etcd_key_filter)(const char *key, size_t len, void *arg);
/* A watch of the keys in [key, range_end) (range_end NULL = just key; see
 * bf_etcd_prefix_end), for bf_etcd_watch_wait_change. With a filter (may
 * be NULL: every key counts), only the changes it accepts are reported;
 * it is called from the waiting thread with filter_arg. */
int bf_etcd_watch_open_range(bf_etcd *c, const char *key, const char *range_end,
			     int64_t start_revision, bf_etcd_key_filter filter, void *filter_arg,
			     bf_etcd_watch **out, bf_err *err);
/*
 * Waits up to timeout_ms: 1 when the key was deleted, 0 when nothing
 * happened, negative on error (the stream broke, the revision was
 * compacted, BF_ECANCELLED when interrupted).
 */
int bf_etcd_watch_wait_delete(bf_etcd_watch *w, int timeout_ms, bf_err *err);
/*
 * Waits up to timeout_ms for any put or delete of a watched key (that the
 * filter accepts) since the last call: 1 and *revision (may be NULL) = the store revision of the
 * latest reply that carried one, 0 when nothing changed, negative on error
 * as bf_etcd_watch_wait_delete.
 */
int bf_etcd_watch_wait_change(bf_etcd_watch *w, int timeout_ms, int64_t *revision,
			      bf_err *err);
void bf_etcd_watch_close(bf_etcd_watch *w);

/*
 * The range end that selects every key starting with prefix (the last byte
 * below 0xFF incremented, what follows it dropped). *out is malloc'd.
 * BF_ERANGE when the prefix is empty or all 0xFF.
 */
int bf_etcd_prefix_end(const char *prefix, char **out, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
