/*
 * Writes the fuzzers' seed corpora (tests/fuzz/corpus/<target>/seed-*):
 * real inputs made by bfill's own encoders, so that each fuzzer starts
 * from the shapes it will meet. Rows and keys come from the codec, catalog
 * records from the catalog encoders, etcd and store-node replies are
 * packed with protobuf-c as etcd and TiKV would send them. Each seed starts with the selector
 * byte its fuzzer reads first (none for rowv2).
 *
 * Usage: make_corpus DIR   (make fuzz-corpus runs it on tests/fuzz/corpus)
 */
#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/gen.h"
#include "engine/catalog_json.h"
#include "proto/etcdserverpb.pb-c.h"
#include "proto/import_sstpb.pb-c.h"
#include "proto/kvrpcpb.pb-c.h"
#include "tests/support/etcd_reply.h"
#include "tests/support/records.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *root;

static void seed(const char *target, const char *name, int selector, const void *data, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%s", root, target, name);
	f = fopen(path, "wb");
	if (!f || (selector >= 0 && fputc(selector, f) == EOF) ||
	    (n && fwrite(data, 1, n, f) != n) || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* ---- rows ---- */

static void row(const char *name, const bf_row_col *cols, int ncols)
{
	uint8_t buf[4096];
	int order[16];
	long n = bf_codec_row_encode(buf, cols, ncols, order);

	if (n < 0 || (size_t)n > sizeof(buf))
		exit(2);
	seed("rowv2", name, -1, buf, (size_t)n);
}

static void rows(void)
{
	char c[BF_SBTEST_C_LEN], pad[BF_SBTEST_PAD_LEN];
	int64_t k;

	bf_gen_sbtest_row(1, 42, 1000, &k, c, pad);
	bf_row_col sbtest[] = { { 2, bf_datum_int(k) }, { 3, bf_datum_bytes(c, sizeof(c)) },
				{ 4, bf_datum_bytes(pad, sizeof(pad)) } };
	row("sbtest", sbtest, 3);
	bf_row_col ints[] = { { 2, bf_datum_int(-1) }, { 3, bf_datum_uint(UINT64_MAX) },
			      { 4, bf_datum_int(-300) }, { 5, bf_datum_int(70000) },
			      { 6, bf_datum_int(INT64_MIN) }, { 7, bf_datum_uint(65535) } };
	row("ints", ints, 6);
	bf_row_col nulls[] = { { 2, bf_datum_null() }, { 4, bf_datum_bytes("", 0) },
			       { 5, bf_datum_null() }, { 3, bf_datum_int(1) } };
	row("nulls", nulls, 4);
	bf_row_col large[] = { { 300, bf_datum_bytes("wide ids", 8) }, { 2, bf_datum_int(5) },
			       { 70000, bf_datum_null() } };
	row("large", large, 3);
	row("empty", NULL, 0);

	/* A row with the checksum flag and a trailer, as TiDB may write. */
	uint8_t buf[256];
	int order[3];
	long n = bf_codec_row_encode(buf, sbtest, 3, order);
	buf[1] |= 0x02;
	buf[n] = 0x5a;
	seed("rowv2", "checksum", -1, buf, (size_t)n + 1);
}

/* ---- keys ---- */

static void index_key(const char *name, const bf_datum *cols, int ncols, bool with_handle)
{
	uint8_t key[512];
	size_t n = bf_codec_index_key(key + 1, 100, 3, cols, ncols, with_handle, 42);

	key[0] = (uint8_t)ncols;
	seed("keys", name, 1, key, n + 1);
}

static void keys(void)
{
	uint8_t buf[64];

	bf_codec_record_key(buf, 100, 1);
	seed("keys", "record", 0, buf, BF_RECORD_KEY_LEN);
	bf_codec_record_key(buf, INT64_MAX, INT64_MIN);
	seed("keys", "record-extremes", 0, buf, BF_RECORD_KEY_LEN);

	bf_datum k = bf_datum_int(17), c = bf_datum_bytes("12345678-ab", 11);
	bf_datum multi[] = { bf_datum_int(-9), bf_datum_bytes("abcdefgh", 8), bf_datum_uint(3),
			     bf_datum_null() };
	index_key("index-int", &k, 1, true);
	index_key("index-bytes", &c, 1, true);
	index_key("index-unique", &c, 1, false);
	index_key("index-multi", multi, 4, true);

	static const char *const strs[] = { "", "abcdefgh", "hello" };
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "bytes-%zu", strlen(strs[i]));
		seed("keys", name, 2, buf, bf_codec_put_bytes(buf, strs[i], strlen(strs[i])));
	}
	bf_datum datums[] = { bf_datum_null(), bf_datum_int(-1), bf_datum_uint(1),
			      bf_datum_bytes("x", 1) };
	static const char *const dnames[] = { "datum-nil", "datum-int", "datum-uint", "datum-bytes" };
	for (int i = 0; i < 4; i++)
		seed("keys", dnames[i], 3, buf, bf_codec_put_datum_key(buf, &datums[i]));

	bf_codec_put_int(buf, -5);
	bf_codec_put_int(buf + 8, 7);
	seed("keys", "ints", 4, buf, 16);

	seed("keys", "value-nonunique", 5, buf, bf_codec_index_value(buf, true, 0));
	seed("keys", "value-unique", 5, buf, bf_codec_index_value(buf, false, 42));
	size_t n = bf_codec_index_value(buf, false, -1);
	buf[n] = '1'; /* the trailing "untouched" flag */
	seed("keys", "value-flagged", 5, buf, n + 1);
}

/* ---- catalog records ---- */

static void record(const char *name, int selector, char *text)
{
	if (!text)
		exit(3);
	seed("catalog", name, selector, text, strlen(text));
	free(text);
}

static void catalog(void)
{
	bf_table t;
	bf_job j;
	char *text = NULL;

	t_sample_table(&t);
	bf_catalog_encode_table(&t, &text, NULL);
	record("table", 0, text);
	bf_table_sbtest(&t, "sbtest1");
	t.id = 100;
	bf_catalog_encode_table(&t, &text, NULL);
	record("table-sbtest", 0, text);

	t_sample_job(&j, 7);
	bf_catalog_encode_job(&j, &text, NULL);
	record("job-running", 1, text);
	/* Just made: queued, no checkpoint, no engine yet, one index. */
	memset(&j.cp, 0, sizeof(j.cp));
	j.nindexes = 1;
	j.state = BF_JOB_QUEUEING;
	bf_catalog_encode_job(&j, &text, NULL);
	record("job-queued", 1, text);
	/* Done: both checkpoints at the key past the table's rows. */
	t_sample_job(&j, 8);
	j.state = BF_JOB_DONE;
	j.cp.has_imported = true;
	bf_codec_record_key(j.cp.flushed_key, 100, 0);
	j.cp.flushed_key[10] = 's';
	memset(j.cp.flushed_key + BF_RECORD_PREFIX_LEN, 0, 8);
	memcpy(j.cp.imported_key, j.cp.flushed_key, BF_RECORD_KEY_LEN);
	bf_catalog_encode_job(&j, &text, NULL);
	record("job-done", 1, text);
}

/* ---- etcd replies ---- */

/* Packs any protobuf-c message as a seed of target's reply kind `kind`. */
static void packed_seed(const char *target, const char *name, int kind, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);

	if (!buf)
		exit(4);
	protobuf_c_message_pack(m, buf);
	seed(target, name, kind, buf, n);
	free(buf);
}

static void reply(const char *name, int kind, const ProtobufCMessage *m)
{
	packed_seed("etcd", name, kind, m);
}

static void etcd(void)
{
	Etcdserverpb__ResponseHeader h = t_etcd_header(42);
	Mvccpb__KeyValue a = t_etcd_kv("/bfill/lock/uuid/7/1/694d8a5f2b3c1c0d", 10, 12, "");
	Mvccpb__KeyValue b = t_etcd_kv("/bfill/cluster/c1/region/2", 11, 11, "{\"start\":\"74\"}");
	Mvccpb__KeyValue *kvs[] = { &a, &b };

	Etcdserverpb__RangeResponse range = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	range.header = &h;
	range.n_kvs = 2;
	range.kvs = kvs;
	range.count = 2;
	reply("range", 0, &range.base);

	Etcdserverpb__PutResponse put = ETCDSERVERPB__PUT_RESPONSE__INIT;
	put.header = &h;
	Etcdserverpb__DeleteRangeResponse del = ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT;
	del.header = &h;
	del.deleted = 1;
	Etcdserverpb__RangeResponse inner = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	inner.n_kvs = 1;
	inner.kvs = kvs;
	inner.count = 1;
	Etcdserverpb__ResponseOp ops[3] = { ETCDSERVERPB__RESPONSE_OP__INIT,
					    ETCDSERVERPB__RESPONSE_OP__INIT,
					    ETCDSERVERPB__RESPONSE_OP__INIT };
	ops[0].response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
	ops[0].response_range = &inner;
	ops[1].response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
	ops[1].response_put = &put;
	ops[2].response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
	ops[2].response_delete_range = &del;
	Etcdserverpb__ResponseOp *op_ptrs[] = { &ops[0], &ops[1], &ops[2] };
	Etcdserverpb__TxnResponse txn = ETCDSERVERPB__TXN_RESPONSE__INIT;
	txn.header = &h;
	txn.succeeded = 1;
	txn.n_responses = 3;
	txn.responses = op_ptrs;
	reply("txn", 1, &txn.base);
	reply("put", 2, &put.base);
	reply("delete", 3, &del.base);

	Etcdserverpb__LeaseGrantResponse grant = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
	grant.header = &h;
	grant.id = 0x694d8a5f2b3c1c0d;
	grant.ttl = 10;
	reply("lease-grant", 4, &grant.base);
	grant.error = "etcdserver: too many requests";
	reply("lease-grant-refused", 4, &grant.base);
	Etcdserverpb__LeaseRevokeResponse revoke = ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
	revoke.header = &h;
	reply("lease-revoke", 5, &revoke.base);
	Etcdserverpb__LeaseTimeToLiveResponse ttl = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
	ttl.header = &h;
	ttl.id = grant.id;
	ttl.ttl = 7;
	ttl.grantedttl = 10;
	reply("lease-ttl", 6, &ttl.base);
	Etcdserverpb__LeaseKeepAliveResponse ka = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
	ka.header = &h;
	ka.id = grant.id;
	ka.ttl = 10;
	reply("keepalive", 7, &ka.base);

	Mvccpb__Event put_ev = MVCCPB__EVENT__INIT, del_ev = MVCCPB__EVENT__INIT;
	put_ev.type = MVCCPB__EVENT__EVENT_TYPE__PUT;
	put_ev.kv = &a;
	del_ev.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
	del_ev.kv = &b;
	Mvccpb__Event *events[] = { &put_ev, &del_ev };
	Etcdserverpb__WatchResponse watch = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	watch.header = &h;
	watch.watch_id = 1;
	watch.created = 1;
	reply("watch-created", 8, &watch.base);
	watch.created = 0;
	watch.n_events = 2;
	watch.events = events;
	reply("watch-events", 8, &watch.base);
	watch.n_events = 0;
	watch.canceled = 1;
	watch.compact_revision = 40;
	watch.cancel_reason = "mvcc: required revision has been compacted";
	reply("watch-canceled", 8, &watch.base);

	Etcdserverpb__StatusResponse status = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	status.header = &h;
	status.version = "3.4.23";
	status.leader = 2;
	status.raftterm = 3;
	reply("status", 9, &status.base);
}

/* ---- store-node replies (fuzz_tikv: 0 Write, 1 MultiIngest, 2 KvScan,
 * 3 KvBatchGet, 4 KvDeleteRange) ---- */

static void tikv(void)
{
	uint8_t uuid[16] = { 0x6f, 0x1c, 0x02, 0x9a, 0x11, 0x22, 0x43, 0x44,
			     0x85, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc };
	uint8_t k1[9], k2[18];
	ImportSstpb__Range range = IMPORT_SSTPB__RANGE__INIT;
	ImportSstpb__SSTMeta meta = IMPORT_SSTPB__SSTMETA__INIT, *metas[] = { &meta };
	ImportSstpb__WriteResponse wr = IMPORT_SSTPB__WRITE_RESPONSE__INIT;
	ImportSstpb__Error werr = IMPORT_SSTPB__ERROR__INIT;
	Metapb__RegionEpoch epoch = METAPB__REGION_EPOCH__INIT;

	range.start = (ProtobufCBinaryData){ bf_codec_put_bytes(k1, "t1", 2), k1 };
	range.end = (ProtobufCBinaryData){ bf_codec_put_bytes(k2, "t1_r0001", 8), k2 };
	epoch.conf_ver = 1;
	epoch.version = 2;
	meta.uuid = (ProtobufCBinaryData){ 16, uuid };
	meta.range = &range;
	meta.cf_name = "default";
	meta.region_id = 7;
	meta.region_epoch = &epoch;
	meta.total_kvs = 3;
	wr.n_metas = 1;
	wr.metas = metas;
	packed_seed("tikv", "write", 0, &wr.base);
	wr.n_metas = 0;
	werr.message = "RequestTooOld(\"epoch not match\")";
	wr.error = &werr;
	packed_seed("tikv", "write-error", 0, &wr.base);

	Metapb__Peer p1 = METAPB__PEER__INIT, p2 = METAPB__PEER__INIT, *peers[] = { &p1, &p2 };
	Metapb__Region left = METAPB__REGION__INIT, right = METAPB__REGION__INIT;
	Metapb__Region *cur[] = { &left, &right };
	Errorpb__EpochNotMatch enm = ERRORPB__EPOCH_NOT_MATCH__INIT;
	Errorpb__NotLeader nl = ERRORPB__NOT_LEADER__INIT;
	Errorpb__ServerIsBusy busy = ERRORPB__SERVER_IS_BUSY__INIT;
	Errorpb__DiskFull full = ERRORPB__DISK_FULL__INIT;
	Errorpb__Error e = ERRORPB__ERROR__INIT;
	ImportSstpb__IngestResponse ir = IMPORT_SSTPB__INGEST_RESPONSE__INIT;
	uint64_t full_stores[] = { 2 };

	p1.id = 7001;
	p1.store_id = 1;
	p2.id = 7002;
	p2.store_id = 2;
	left.id = 7;
	left.end_key = range.end;
	left.region_epoch = &epoch;
	left.n_peers = 2;
	left.peers = peers;
	right = left;
	right.id = 8;
	right.start_key = range.end;
	right.end_key = (ProtobufCBinaryData){ 0, NULL };
	packed_seed("tikv", "ingest-ok", 1, &ir.base);
	ir.error = &e;
	enm.n_current_regions = 2;
	enm.current_regions = cur;
	e.epoch_not_match = &enm;
	e.message = "epoch not match";
	packed_seed("tikv", "ingest-epoch-not-match", 1, &ir.base);
	e.epoch_not_match = NULL;
	nl.region_id = 7;
	nl.leader = &p2;
	e.not_leader = &nl;
	packed_seed("tikv", "ingest-not-leader", 1, &ir.base);
	e.not_leader = NULL;
	busy.reason = "injected";
	busy.backoff_ms = 1000;
	e.server_is_busy = &busy;
	packed_seed("tikv", "ingest-busy", 1, &ir.base);
	e.server_is_busy = NULL;
	full.n_store_id = 1;
	full.store_id = full_stores;
	full.reason = "disk full";
	e.disk_full = &full;
	packed_seed("tikv", "ingest-disk-full", 1, &ir.base);

	Kvrpcpb__KvPair a = KVRPCPB__KV_PAIR__INIT, b = KVRPCPB__KV_PAIR__INIT, *pairs[] = { &a, &b };
	Kvrpcpb__ScanResponse sr = KVRPCPB__SCAN_RESPONSE__INIT;
	Kvrpcpb__BatchGetResponse gr = KVRPCPB__BATCH_GET_RESPONSE__INIT;
	Kvrpcpb__DeleteRangeResponse dr = KVRPCPB__DELETE_RANGE_RESPONSE__INIT;

	a.key = (ProtobufCBinaryData){ 8, (uint8_t *)"t1_r0001" };
	a.value = (ProtobufCBinaryData){ 2, (uint8_t *)"v1" };
	b.key = (ProtobufCBinaryData){ 8, (uint8_t *)"t1_r0002" };
	sr.n_pairs = gr.n_pairs = 2;
	sr.pairs = gr.pairs = pairs;
	packed_seed("tikv", "scan", 2, &sr.base);
	sr.n_pairs = 0;
	e.disk_full = NULL;
	e.not_leader = &nl;
	sr.region_error = &e;
	packed_seed("tikv", "scan-not-leader", 2, &sr.base);
	packed_seed("tikv", "batch-get", 3, &gr.base);
	packed_seed("tikv", "delete-range", 4, &dr.base);
	dr.error = "range delete failed";
	packed_seed("tikv", "delete-range-error", 4, &dr.base);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) && errno != EEXIST) {
		perror(root);
		return 1;
	}
	rows();
	keys();
	catalog();
	etcd();
	tikv();
	return 0;
}
