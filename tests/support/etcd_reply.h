/*
 * Pieces of etcd replies for tests that build them with protobuf-c: a
 * response header and a key-value, filled as a real etcd fills them.
 */
#ifndef BFILL_TEST_ETCD_REPLY_H
#define BFILL_TEST_ETCD_REPLY_H

#include <stdint.h>

#include "proto/etcdserverpb.pb-c.h"

/* Cluster 1, member 2, raft term 3, at `revision`. */
Etcdserverpb__ResponseHeader t_etcd_header(int64_t revision);
/* key and value are borrowed (not copied); version 1, a fixed lease. */
Mvccpb__KeyValue t_etcd_kv(const char *key, int64_t create, int64_t mod, const char *value);

#endif
