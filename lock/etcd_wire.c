/*
 * etcd wire layer: bfill structs <-> protobuf bytes (see etcd_wire.h).
 *
 * Requests borrow the caller's strings while packing, so encoding allocates
 * only the output buffer (and, for a Txn, the op and compare arrays).
 * Replies are copied out of protobuf-c's unpacked tree into bfill's own
 * structs, which decouples callers from the generated code, and are
 * checked on the way: a reply that would make the lock misbehave (a
 * key-value without a key, a Txn op with no response set) is refused.
 */
#include "lock/etcd_wire.h"

#include "proto/etcdserverpb.pb-c.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool bf_etcd_write_not_applied(const bf_rpc_status *st)
{
	if (st->code != BF_RPC_UNAVAILABLE)
		return false;
	return bf_rpc_status_never_sent(st) || !strcmp(st->details, "etcdserver: no leader");
}

/* ---- encoding ---------------------------------------------------------- */

/* protobuf-c only reads request bytes while packing; the cast is safe. */
static ProtobufCBinaryData str_bytes(const char *s)
{
	ProtobufCBinaryData b = { s ? strlen(s) : 0, (uint8_t *)(uintptr_t)s };
	return b;
}

static ProtobufCBinaryData mem_bytes(const void *p, size_t len)
{
	ProtobufCBinaryData b = { p ? len : 0, (uint8_t *)(uintptr_t)p };
	return b;
}

static int pack(const ProtobufCMessage *msg, bf_rpc_buf *out)
{
	size_t len = protobuf_c_message_get_packed_size(msg);

	/* An empty message packs to zero bytes; keep a valid pointer anyway. */
	out->data = malloc(len ? len : 1);
	if (!out->data)
		return BF_ENOMEM;
	out->len = protobuf_c_message_pack(msg, out->data);
	return 0;
}

static void fill_range(const bf_etcd_range_req *req, Etcdserverpb__RangeRequest *m)
{
	etcdserverpb__range_request__init(m);
	m->key = str_bytes(req->key);
	m->range_end = str_bytes(req->range_end);
	m->limit = req->limit;
	m->sort_order = (Etcdserverpb__RangeRequest__SortOrder)req->sort_order;
	m->sort_target = (Etcdserverpb__RangeRequest__SortTarget)req->sort_target;
	m->max_create_revision = req->max_create_revision;
	m->keys_only = req->keys_only;
	m->count_only = req->count_only;
	m->serializable = req->serializable;
}

int bf_etcd_wire_range(const bf_etcd_range_req *req, bf_rpc_buf *out)
{
	Etcdserverpb__RangeRequest m;

	if (!req || !req->key || !*req->key)
		return BF_EINVAL;
	fill_range(req, &m);
	return pack(&m.base, out);
}

int bf_etcd_wire_put(const char *key, const void *value, size_t value_len, int64_t lease,
		     bf_rpc_buf *out)
{
	Etcdserverpb__PutRequest m = ETCDSERVERPB__PUT_REQUEST__INIT;

	if (!key || !*key)
		return BF_EINVAL;
	m.key = str_bytes(key);
	m.value = mem_bytes(value, value_len);
	m.lease = lease;
	return pack(&m.base, out);
}

int bf_etcd_wire_delete(const char *key, const char *range_end, bf_rpc_buf *out)
{
	Etcdserverpb__DeleteRangeRequest m = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;

	if (!key || !*key)
		return BF_EINVAL;
	m.key = str_bytes(key);
	m.range_end = str_bytes(range_end);
	return pack(&m.base, out);
}

/* One Txn op with room for whichever inner request it carries. */
typedef struct op_slot {
	Etcdserverpb__RequestOp op;
	Etcdserverpb__RangeRequest range;
	Etcdserverpb__PutRequest put;
	Etcdserverpb__DeleteRangeRequest del;
} op_slot;

static int fill_ops(const bf_etcd_op *ops, size_t n, op_slot *slots,
		    Etcdserverpb__RequestOp **ptrs)
{
	for (size_t i = 0; i < n; i++) {
		op_slot *s = &slots[i];
		etcdserverpb__request_op__init(&s->op);
		switch (ops[i].kind) {
		case BF_ETCD_OP_RANGE:
			if (!ops[i].range.key || !*ops[i].range.key)
				return BF_EINVAL;
			fill_range(&ops[i].range, &s->range);
			s->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
			s->op.request_range = &s->range;
			break;
		case BF_ETCD_OP_PUT:
			if (!ops[i].key || !*ops[i].key)
				return BF_EINVAL;
			etcdserverpb__put_request__init(&s->put);
			s->put.key = str_bytes(ops[i].key);
			s->put.value = mem_bytes(ops[i].value, ops[i].value_len);
			s->put.lease = ops[i].lease;
			s->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
			s->op.request_put = &s->put;
			break;
		case BF_ETCD_OP_DELETE:
			if (!ops[i].key || !*ops[i].key)
				return BF_EINVAL;
			etcdserverpb__delete_range_request__init(&s->del);
			s->del.key = str_bytes(ops[i].key);
			s->del.range_end = str_bytes(ops[i].range_end);
			s->op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
			s->op.request_delete_range = &s->del;
			break;
		default:
			return BF_EINVAL;
		}
		ptrs[i] = &s->op;
	}
	return 0;
}

static void fill_compare(const bf_etcd_compare *c, Etcdserverpb__Compare *m)
{
	etcdserverpb__compare__init(m);
	m->key = str_bytes(c->key);
	m->target = (Etcdserverpb__Compare__CompareTarget)c->target;
	m->result = (Etcdserverpb__Compare__CompareResult)c->result;
	/* A set oneof member is sent even when it is 0, as etcd's own client does. */
	switch (c->target) {
	case BF_ETCD_CMP_VERSION:
		m->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
		m->version = c->number;
		break;
	case BF_ETCD_CMP_CREATE:
		m->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
		m->create_revision = c->number;
		break;
	case BF_ETCD_CMP_MOD:
		m->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		m->mod_revision = c->number;
		break;
	case BF_ETCD_CMP_VALUE:
		m->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
		m->value = mem_bytes(c->value, c->value_len);
		break;
	default:
		m->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
		m->lease = c->number;
		break;
	}
}

int bf_etcd_wire_txn(const bf_etcd_txn_req *req, bf_rpc_buf *out)
{
	Etcdserverpb__TxnRequest m = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__Compare *cmps = NULL;
	Etcdserverpb__Compare **cmp_ptrs = NULL;
	op_slot *slots = NULL;
	Etcdserverpb__RequestOp **op_ptrs = NULL;
	size_t n_ops = req->n_success + req->n_failure;
	int rc = 0;

	cmps = calloc(req->n_compare + 1, sizeof(*cmps));
	cmp_ptrs = calloc(req->n_compare + 1, sizeof(*cmp_ptrs));
	slots = calloc(n_ops + 1, sizeof(*slots));
	op_ptrs = calloc(n_ops + 1, sizeof(*op_ptrs));
	if (!cmps || !cmp_ptrs || !slots || !op_ptrs) {
		rc = BF_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < req->n_compare; i++) {
		if (!req->compare[i].key || !*req->compare[i].key) {
			rc = BF_EINVAL;
			goto out;
		}
		fill_compare(&req->compare[i], &cmps[i]);
		cmp_ptrs[i] = &cmps[i];
	}
	rc = fill_ops(req->success, req->n_success, slots, op_ptrs);
	if (rc)
		goto out;
	rc = fill_ops(req->failure, req->n_failure, slots + req->n_success,
		      op_ptrs + req->n_success);
	if (rc)
		goto out;
	m.n_compare = req->n_compare;
	m.compare = cmp_ptrs;
	m.n_success = req->n_success;
	m.success = op_ptrs;
	m.n_failure = req->n_failure;
	m.failure = op_ptrs + req->n_success;
	rc = pack(&m.base, out);
out:
	free(cmps);
	free(cmp_ptrs);
	free(slots);
	free(op_ptrs);
	return rc;
}

int bf_etcd_wire_lease_grant(int64_t ttl_s, int64_t id, bf_rpc_buf *out)
{
	Etcdserverpb__LeaseGrantRequest m = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	m.ttl = ttl_s;
	m.id = id;
	return pack(&m.base, out);
}

int bf_etcd_wire_lease_revoke(int64_t id, bf_rpc_buf *out)
{
	Etcdserverpb__LeaseRevokeRequest m = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	m.id = id;
	return pack(&m.base, out);
}

int bf_etcd_wire_lease_ttl(int64_t id, bf_rpc_buf *out)
{
	Etcdserverpb__LeaseTimeToLiveRequest m = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	m.id = id;
	return pack(&m.base, out);
}

int bf_etcd_wire_keepalive(int64_t id, bf_rpc_buf *out)
{
	Etcdserverpb__LeaseKeepAliveRequest m = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
	m.id = id;
	return pack(&m.base, out);
}

int bf_etcd_wire_watch_create(const char *key, const char *range_end, int64_t start_revision,
			      bf_rpc_buf *out)
{
	Etcdserverpb__WatchRequest m = ETCDSERVERPB__WATCH_REQUEST__INIT;
	Etcdserverpb__WatchCreateRequest create = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;

	if (!key || !*key)
		return BF_EINVAL;
	create.key = str_bytes(key);
	create.range_end = str_bytes(range_end);
	create.start_revision = start_revision;
	m.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	m.create_request = &create;
	return pack(&m.base, out);
}

int bf_etcd_wire_status(bf_rpc_buf *out)
{
	Etcdserverpb__StatusRequest m = ETCDSERVERPB__STATUS_REQUEST__INIT;
	return pack(&m.base, out);
}

int bf_etcd_wire_authenticate(const char *user, const char *password, bf_rpc_buf *out)
{
	Etcdserverpb__AuthenticateRequest m = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;

	if (!user || !*user || !password)
		return BF_EINVAL;
	m.name = (char *)user;
	m.password = (char *)password;
	return pack(&m.base, out);
}

void bf_etcd_wire_wipe(bf_rpc_buf *out)
{
	if (out->data)
		explicit_bzero(out->data, out->len);
	bf_rpc_buf_free(out);
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * The size check comes first so that a hostile length never reaches the
 * parser; protobuf-c then refuses truncated fields and lengths that point
 * past the buffer.
 */
static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
				size_t len, size_t max_len, bf_err *err)
{
	ProtobufCMessage *msg;

	if (len > max_len) {
		bf_errf(err, BF_EPROTO, "%s of %zu bytes exceeds the %zu-byte limit",
			desc->short_name, len, max_len);
		return NULL;
	}
	msg = protobuf_c_message_unpack(desc, NULL, len, buf);
	if (!msg)
		bf_errf(err, BF_EPROTO, "malformed %s (%zu bytes)", desc->short_name,
			len);
	return msg;
}

static int need_header(const Etcdserverpb__ResponseHeader *h, const char *what,
		       int64_t *revision, bf_err *err)
{
	if (!h || h->revision <= 0)
		return bf_errf(err, BF_EPROTO, "%s without a valid header", what);
	if (revision)
		*revision = h->revision;
	return 0;
}

/*
 * Text from a reply that ends up in a message or a status line: a member
 * (or anything between) may send any bytes, and a newline or an escape
 * sequence must not reach the terminal as such.
 */
static const char *printable_str(const char *s, char *buf, size_t n)
{
	return bf_printable(s ? s : "", s ? strlen(s) : 0, buf, n);
}

/* A NUL-terminated malloc'd copy, so keys can be printed and compared. */
static char *dup_bytes(const ProtobufCBinaryData *b)
{
	char *s = malloc(b->len + 1);
	if (!s)
		return NULL;
	if (b->len)
		memcpy(s, b->data, b->len);
	s[b->len] = '\0';
	return s;
}

static int copy_kv(const Mvccpb__KeyValue *in, bf_etcd_kv *out, bf_err *err)
{
	if (!in || in->key.len == 0)
		return bf_errf(err, BF_EPROTO, "key-value without a key");
	if (in->create_revision <= 0 || in->mod_revision < in->create_revision) {
		char key[200];
		return bf_errf(err, BF_EPROTO, "key %s with create revision %lld, mod revision %lld",
			       bf_printable(in->key.data, in->key.len, key, sizeof(key)),
			       (long long)in->create_revision, (long long)in->mod_revision);
	}
	out->key = dup_bytes(&in->key);
	out->value = dup_bytes(&in->value);
	if (!out->key || !out->value)
		return bf_errf(err, BF_ENOMEM, "reply: out of memory");
	out->key_len = in->key.len;
	out->value_len = in->value.len;
	out->create_revision = in->create_revision;
	out->mod_revision = in->mod_revision;
	out->version = in->version;
	out->lease = in->lease;
	return 0;
}

void bf_etcd_range_result_free(bf_etcd_range_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n_kvs; i++) {
		free(res->kvs[i].key);
		free(res->kvs[i].value);
	}
	free(res->kvs);
	memset(res, 0, sizeof(*res));
}

/* A Txn's nested responses may come without a header; the Txn's revision
 * stands in for theirs then. */
static int copy_range(const Etcdserverpb__RangeResponse *in, int64_t outer_revision,
		      bf_etcd_range_result *res, bf_err *err)
{
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (outer_revision > 0 && (!in->header || in->header->revision <= 0))
		res->revision = outer_revision;
	else if ((rc = need_header(in->header, "RangeResponse", &res->revision, err)))
		return rc;
	res->more = in->more;
	res->count = in->count;
	if (in->n_kvs == 0)
		return 0;
	res->kvs = calloc(in->n_kvs, sizeof(*res->kvs));
	if (!res->kvs)
		return bf_errf(err, BF_ENOMEM, "reply: out of memory");
	res->n_kvs = in->n_kvs;
	for (size_t i = 0; i < in->n_kvs; i++) {
		rc = copy_kv(in->kvs[i], &res->kvs[i], err);
		if (rc)
			goto out;
	}
out:
	if (rc)
		bf_etcd_range_result_free(res);
	return rc;
}

int bf_etcd_unwire_range(const uint8_t *buf, size_t len, size_t max_len,
			 bf_etcd_range_result *res, bf_err *err)
{
	Etcdserverpb__RangeResponse *m = (Etcdserverpb__RangeResponse *)unpack(
		&etcdserverpb__range_response__descriptor, buf, len, max_len, err);
	int rc;

	memset(res, 0, sizeof(*res));
	if (!m)
		return BF_EPROTO;
	rc = copy_range(m, 0, res, err);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_put(const uint8_t *buf, size_t len, size_t max_len, int64_t *revision,
		       bf_err *err)
{
	Etcdserverpb__PutResponse *m = (Etcdserverpb__PutResponse *)unpack(
		&etcdserverpb__put_response__descriptor, buf, len, max_len, err);
	int rc;

	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "PutResponse", revision, err);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_delete(const uint8_t *buf, size_t len, size_t max_len, int64_t *deleted,
			  int64_t *revision, bf_err *err)
{
	Etcdserverpb__DeleteRangeResponse *m = (Etcdserverpb__DeleteRangeResponse *)unpack(
		&etcdserverpb__delete_range_response__descriptor, buf, len, max_len, err);
	int rc;

	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "DeleteRangeResponse", revision, err);
	if (!rc && m->deleted < 0)
		rc = bf_errf(err, BF_EPROTO, "DeleteRangeResponse deleted %lld keys",
			     (long long)m->deleted);
	if (!rc && deleted)
		*deleted = m->deleted;
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

void bf_etcd_txn_result_free(bf_etcd_txn_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n_ops; i++)
		bf_etcd_range_result_free(&res->ops[i].range);
	free(res->ops);
	memset(res, 0, sizeof(*res));
}

static int copy_op(const Etcdserverpb__ResponseOp *in, int64_t txn_revision,
		   bf_etcd_op_result *out, bf_err *err)
{
	if (!in)
		return bf_errf(err, BF_EPROTO, "TxnResponse with an empty op");
	switch (in->response_case) {
	case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
		if (!in->response_range)
			break;
		out->kind = BF_ETCD_OP_RANGE;
		return copy_range(in->response_range, txn_revision, &out->range, err);
	case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
		out->kind = BF_ETCD_OP_PUT;
		return 0;
	case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
		if (!in->response_delete_range)
			break;
		out->kind = BF_ETCD_OP_DELETE;
		out->deleted = in->response_delete_range->deleted;
		return 0;
	default:
		break;
	}
	return bf_errf(err, BF_EPROTO, "TxnResponse op of unexpected kind %d",
		       (int)in->response_case);
}

int bf_etcd_unwire_txn(const uint8_t *buf, size_t len, size_t max_len,
		       bf_etcd_txn_result *res, bf_err *err)
{
	Etcdserverpb__TxnResponse *m = (Etcdserverpb__TxnResponse *)unpack(
		&etcdserverpb__txn_response__descriptor, buf, len, max_len, err);
	int rc;

	memset(res, 0, sizeof(*res));
	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "TxnResponse", &res->revision, err);
	if (rc)
		goto out;
	res->succeeded = m->succeeded;
	if (m->n_responses == 0)
		goto out;
	res->ops = calloc(m->n_responses, sizeof(*res->ops));
	if (!res->ops) {
		rc = bf_errf(err, BF_ENOMEM, "reply: out of memory");
		goto out;
	}
	res->n_ops = m->n_responses;
	for (size_t i = 0; i < m->n_responses && !rc; i++)
		rc = copy_op(m->responses[i], res->revision, &res->ops[i], err);
out:
	if (rc)
		bf_etcd_txn_result_free(res);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_lease_grant(const uint8_t *buf, size_t len, size_t max_len, int64_t *id,
			       int64_t *ttl_s, bf_err *err)
{
	Etcdserverpb__LeaseGrantResponse *m = (Etcdserverpb__LeaseGrantResponse *)unpack(
		&etcdserverpb__lease_grant_response__descriptor, buf, len, max_len, err);
	int rc;

	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "LeaseGrantResponse", NULL, err);
	if (rc)
		goto out;
	if (m->error && *m->error) {
		char why[160];
		rc = bf_errf(err, BF_EUNAVAIL, "LeaseGrant refused: %s",
			     printable_str(m->error, why, sizeof(why)));
		goto out;
	}
	if (m->id == 0 || m->ttl <= 0) {
		rc = bf_errf(err, BF_EPROTO, "LeaseGrantResponse with lease %lld, TTL %lld",
			     (long long)m->id, (long long)m->ttl);
		goto out;
	}
	*id = m->id;
	if (ttl_s)
		*ttl_s = m->ttl;
out:
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_lease_revoke(const uint8_t *buf, size_t len, size_t max_len, bf_err *err)
{
	Etcdserverpb__LeaseRevokeResponse *m = (Etcdserverpb__LeaseRevokeResponse *)unpack(
		&etcdserverpb__lease_revoke_response__descriptor, buf, len, max_len, err);
	int rc;

	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "LeaseRevokeResponse", NULL, err);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_lease_ttl(const uint8_t *buf, size_t len, size_t max_len, int64_t *ttl_s,
			     bf_err *err)
{
	Etcdserverpb__LeaseTimeToLiveResponse *m = (Etcdserverpb__LeaseTimeToLiveResponse *)unpack(
		&etcdserverpb__lease_time_to_live_response__descriptor, buf, len, max_len, err);
	int rc;

	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "LeaseTimeToLiveResponse", NULL, err);
	if (!rc)
		*ttl_s = m->ttl;
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_keepalive(const uint8_t *buf, size_t len, size_t max_len, int64_t *id,
			     int64_t *ttl_s, bf_err *err)
{
	Etcdserverpb__LeaseKeepAliveResponse *m = (Etcdserverpb__LeaseKeepAliveResponse *)unpack(
		&etcdserverpb__lease_keep_alive_response__descriptor, buf, len, max_len, err);
	int rc;

	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "LeaseKeepAliveResponse", NULL, err);
	if (!rc) {
		*id = m->id;
		*ttl_s = m->ttl;
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_watch(const uint8_t *buf, size_t len, size_t max_len,
			 bf_etcd_watch_reply *out, bf_err *err)
{
	return bf_etcd_unwire_watch_some(buf, len, max_len, NULL, NULL, out, err);
}

int bf_etcd_unwire_watch_some(const uint8_t *buf, size_t len, size_t max_len,
			      bf_etcd_key_filter filter, void *filter_arg,
			      bf_etcd_watch_reply *out, bf_err *err)
{
	Etcdserverpb__WatchResponse *m = (Etcdserverpb__WatchResponse *)unpack(
		&etcdserverpb__watch_response__descriptor, buf, len, max_len, err);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "WatchResponse", &out->revision, err);
	if (rc)
		goto out;
	out->watch_id = m->watch_id;
	out->created = m->created;
	out->canceled = m->canceled;
	out->compact_revision = m->compact_revision;
	printable_str(m->cancel_reason, out->cancel_reason, sizeof(out->cancel_reason));
	for (size_t i = 0; i < m->n_events; i++) {
		const Mvccpb__Event *ev = m->events[i];
		/* A deleted key comes back with only its key and mod revision. */
		if (!ev || !ev->kv || ev->kv->key.len == 0) {
			rc = bf_errf(err, BF_EPROTO, "WatchResponse event without a key");
			goto out;
		}
		if (ev->type != MVCCPB__EVENT__EVENT_TYPE__DELETE &&
		    ev->type != MVCCPB__EVENT__EVENT_TYPE__PUT) {
			rc = bf_errf(err, BF_EPROTO, "WatchResponse event of type %d",
				     (int)ev->type);
			goto out;
		}
		if (filter && !filter((const char *)ev->kv->key.data, ev->kv->key.len, filter_arg))
			continue;
		if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE)
			out->deletes++;
		else
			out->puts++;
	}
out:
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_status(const uint8_t *buf, size_t len, size_t max_len,
			  bf_etcd_status_info *info, bf_err *err)
{
	Etcdserverpb__StatusResponse *m = (Etcdserverpb__StatusResponse *)unpack(
		&etcdserverpb__status_response__descriptor, buf, len, max_len, err);
	int rc;

	memset(info, 0, sizeof(*info));
	if (!m)
		return BF_EPROTO;
	rc = need_header(m->header, "StatusResponse", &info->revision, err);
	if (!rc) {
		printable_str(m->version, info->version, sizeof(info->version));
		info->member_id = m->header->member_id;
		info->leader = m->leader;
		info->raft_term = m->raftterm;
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

int bf_etcd_unwire_authenticate(const uint8_t *buf, size_t len, size_t max_len, char **token,
				bf_err *err)
{
	Etcdserverpb__AuthenticateResponse *m = (Etcdserverpb__AuthenticateResponse *)unpack(
		&etcdserverpb__authenticate_response__descriptor, buf, len, max_len, err);
	size_t n = m && m->token ? strlen(m->token) : 0;
	int rc = 0;

	*token = NULL;
	if (!m)
		return BF_EPROTO;
	/* The token goes back in a header: anything else would break every
	 * later call, so it is refused here, where the message is clear. */
	if (n == 0 || n >= BF_ETCD_TOKEN_MAX)
		rc = bf_errf(err, BF_EPROTO, "AuthenticateResponse with a token of %zu bytes", n);
	for (size_t i = 0; !rc && i < n; i++)
		if (m->token[i] <= ' ' || m->token[i] > '~')
			rc = bf_errf(err, BF_EPROTO, "AuthenticateResponse with a token that is "
				     "not visible ASCII");
	if (!rc && !(*token = strdup(m->token)))
		rc = bf_errf(err, BF_ENOMEM, "out of memory");
	if (m->token)
		explicit_bzero(m->token, n);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return rc;
}

/* ---- helpers ----------------------------------------------------------- */

int bf_etcd_prefix_end(const char *prefix, char **out, bf_err *err)
{
	size_t len = prefix ? strlen(prefix) : 0;
	char *end;

	*out = NULL;
	while (len > 0 && (unsigned char)prefix[len - 1] == 0xFF)
		len--;
	if (len == 0)
		return bf_errf(err, BF_ERANGE, "etcd: no range end for prefix \"%s\"",
			       prefix ? prefix : "");
	end = malloc(len + 1);
	if (!end)
		return bf_errf(err, BF_ENOMEM, "etcd: out of memory");
	memcpy(end, prefix, len);
	end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
	end[len] = '\0';
	*out = end;
	return 0;
}
