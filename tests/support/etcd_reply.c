/*
 * Pieces of etcd replies for tests (see etcd_reply.h).
 */
#include "tests/support/etcd_reply.h"

#include <string.h>

Etcdserverpb__ResponseHeader t_etcd_header(int64_t revision)
{
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	h.cluster_id = 1;
	h.member_id = 2;
	h.revision = revision;
	h.raft_term = 3;
	return h;
}

Mvccpb__KeyValue t_etcd_kv(const char *key, int64_t create, int64_t mod, const char *value)
{
	Mvccpb__KeyValue k = MVCCPB__KEY_VALUE__INIT;
	/* protobuf-c only reads these while packing. */
	k.key.data = (uint8_t *)(uintptr_t)key;
	k.key.len = strlen(key);
	k.value.data = (uint8_t *)(uintptr_t)value;
	k.value.len = strlen(value);
	k.create_revision = create;
	k.mod_revision = mod;
	k.version = 1;
	k.lease = 0x694d8a5f2b3c1c0d;
	return k;
}
