/*
 * Internal: the etcd client's wire layer. Encodes requests from bfill's
 * plain structs (include/bfill/etcd.h) into protobuf bytes and decodes and
 * validates replies back into them, and says what etcd's error statuses
 * mean for a write. Pure functions over buffers, with no gRPC, so that
 * malformed, truncated and oversized replies can be tested directly.
 * Depends on the protobuf-c code generated from proto/ and rpc/rpc.h (the
 * buffer and status types only).
 */
#ifndef BFILL_ETCD_WIRE_H
#define BFILL_ETCD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "bfill/etcd.h"
#include "rpc/rpc.h"

/*
 * True when a write that failed with st surely was not applied, so it may
 * be sent to another member: no connection could be made
 * (bf_rpc_status_never_sent), or etcd refused it with "etcdserver: no
 * leader", which the hasleader check answers before proposing anything.
 * Every other UNAVAILABLE ("request timed out", "leader changed", a reset
 * connection) may have been committed.
 */
bool bf_etcd_write_not_applied(const bf_rpc_status *st);

/* Encoders: 0, BF_EINVAL (missing key) or BF_ENOMEM. */
int bf_etcd_wire_range(const bf_etcd_range_req *req, bf_rpc_buf *out);
int bf_etcd_wire_put(const char *key, const void *value, size_t value_len, int64_t lease,
		     bf_rpc_buf *out);
int bf_etcd_wire_delete(const char *key, const char *range_end, bf_rpc_buf *out);
int bf_etcd_wire_txn(const bf_etcd_txn_req *req, bf_rpc_buf *out);
int bf_etcd_wire_lease_grant(int64_t ttl_s, int64_t id, bf_rpc_buf *out);
int bf_etcd_wire_lease_revoke(int64_t id, bf_rpc_buf *out);
int bf_etcd_wire_lease_ttl(int64_t id, bf_rpc_buf *out);
int bf_etcd_wire_keepalive(int64_t id, bf_rpc_buf *out);
int bf_etcd_wire_watch_create(const char *key, const char *range_end, int64_t start_revision,
			      bf_rpc_buf *out);
int bf_etcd_wire_status(bf_rpc_buf *out);
/* The request holds the password: the caller wipes out->data before it
 * frees it (bf_etcd_wire_wipe). */
int bf_etcd_wire_authenticate(const char *user, const char *password, bf_rpc_buf *out);
/* Zeroes out's bytes and frees them. */
void bf_etcd_wire_wipe(bf_rpc_buf *out);

/* What a watch reply says about the one watched key. */
typedef struct bf_etcd_watch_reply {
	int64_t revision;
	int64_t watch_id;
	int64_t compact_revision;
	bool created;
	bool canceled;
	size_t puts;
	size_t deletes;
	char cancel_reason[160];
} bf_etcd_watch_reply;

/*
 * Decoders: each refuses a reply longer than max_len, one protobuf-c
 * cannot parse, or one that breaks etcd's contract (no header, a key-value
 * without a key or with a non-positive create revision, a Txn response op
 * with nothing set...), all as BF_EPROTO with a message naming the reply.
 * Results own their memory (free with the bf_etcd_*_free functions).
 */
int bf_etcd_unwire_range(const uint8_t *buf, size_t len, size_t max_len,
			 bf_etcd_range_result *res, bf_err *err);
int bf_etcd_unwire_put(const uint8_t *buf, size_t len, size_t max_len, int64_t *revision,
		       bf_err *err);
int bf_etcd_unwire_delete(const uint8_t *buf, size_t len, size_t max_len, int64_t *deleted,
			  int64_t *revision, bf_err *err);
int bf_etcd_unwire_txn(const uint8_t *buf, size_t len, size_t max_len,
		       bf_etcd_txn_result *res, bf_err *err);
int bf_etcd_unwire_lease_grant(const uint8_t *buf, size_t len, size_t max_len, int64_t *id,
			       int64_t *ttl_s, bf_err *err);
int bf_etcd_unwire_lease_revoke(const uint8_t *buf, size_t len, size_t max_len, bf_err *err);
int bf_etcd_unwire_lease_ttl(const uint8_t *buf, size_t len, size_t max_len, int64_t *ttl_s,
			     bf_err *err);
int bf_etcd_unwire_keepalive(const uint8_t *buf, size_t len, size_t max_len, int64_t *id,
			     int64_t *ttl_s, bf_err *err);
int bf_etcd_unwire_watch(const uint8_t *buf, size_t len, size_t max_len,
			 bf_etcd_watch_reply *out, bf_err *err);
/* bf_etcd_unwire_watch counting only the events whose key filter accepts
 * (NULL: all). */
int bf_etcd_unwire_watch_some(const uint8_t *buf, size_t len, size_t max_len,
			      bf_etcd_key_filter filter, void *filter_arg,
			      bf_etcd_watch_reply *out, bf_err *err);
int bf_etcd_unwire_status(const uint8_t *buf, size_t len, size_t max_len,
			  bf_etcd_status_info *info, bf_err *err);
/*
 * The token of an AuthenticateResponse into *token (malloc'd, the caller
 * frees and wipes it): BF_EPROTO unless it is 1..BF_ETCD_TOKEN_MAX-1
 * bytes a gRPC header value may hold (visible ASCII).
 */
#define BF_ETCD_TOKEN_MAX 2048
int bf_etcd_unwire_authenticate(const uint8_t *buf, size_t len, size_t max_len, char **token,
				bf_err *err);

#endif
