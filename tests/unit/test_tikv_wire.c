/*
 * Unit tests of the store-node client's wire layer (ingest/tikv_wire.c):
 * hand-encoded Write batches read back by protobuf-c exactly, the meta and
 * request encodings, every region error read as the client must act on
 * it, malformed replies refused, failed statuses classified, and the fence
 * metadata. No node needed.
 */
#include "ingest/tikv_wire.h"
#include "bfill/codec.h"
#include "proto/import_sstpb.pb-c.h"
#include "proto/kvrpcpb.pb-c.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bf_rpc_buf packed(const ProtobufCMessage *m)
{
	bf_rpc_buf b;
	b.len = protobuf_c_message_get_packed_size(m);
	b.data = malloc(b.len ? b.len : 1);
	cr_assert_not_null(b.data);
	protobuf_c_message_pack(m, b.data);
	return b;
}

/* A KvPair of two strings (borrowed); value NULL: none. */
static Kvrpcpb__KvPair kv_pair(const char *key, const char *value)
{
	Kvrpcpb__KvPair p = KVRPCPB__KV_PAIR__INIT;
	p.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
	if (value)
		p.value = (ProtobufCBinaryData){ strlen(value), (uint8_t *)value };
	return p;
}

static bf_region test_region(uint64_t id, const char *start, const char *end)
{
	bf_region r;
	memset(&r, 0, sizeof(r));
	r.id = id;
	r.start_len = strlen(start);
	memcpy(r.start, start, r.start_len);
	r.end_len = strlen(end);
	memcpy(r.end, end, r.end_len);
	r.conf_ver = 3;
	r.version = 7;
	r.npeers = 3;
	for (int i = 0; i < 3; i++) {
		r.peers[i].id = id * 1000 + (uint64_t)i + 1;
		r.peers[i].store_id = (uint64_t)i + 1;
	}
	r.leader_store = 2;
	return r;
}

/* ---- Write batches ---- */

Test(tikv_wire, batch_reads_back_exactly)
{
	bf_tikv_batch b;
	bf_rpc_buf msg;
	uint8_t big[300], val[200];
	const uint64_t ts = (uint64_t)1700000000000 << 18;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	memset(val, 'v', sizeof(val));
	bf_tikv_batch_init(&b);
	bf_tikv_batch_reset(&b);
	cr_assert_eq(bf_tikv_batch_add(&b, "a", 1, "1", 1), 0);
	cr_assert_eq(bf_tikv_batch_add(&b, "b", 1, "", 0), 0); /* an index entry may be empty */
	cr_assert_eq(bf_tikv_batch_add(&b, big, sizeof(big), val, sizeof(val)), 0);
	cr_assert_eq(b.pairs, 3);
	cr_assert_eq(b.kv_bytes, 1 + 1 + 1 + sizeof(big) + sizeof(val));
	cr_assert_eq(bf_tikv_batch_message(&b, ts, &msg), 0);

	ImportSstpb__WriteRequest *req = import_sstpb__write_request__unpack(NULL, msg.len, msg.data);
	cr_assert_not_null(req, "the hand-encoded batch must parse");
	cr_assert_eq(req->chunk_case, IMPORT_SSTPB__WRITE_REQUEST__CHUNK_BATCH);
	cr_assert_eq(req->batch->commit_ts, ts);
	cr_assert_eq(req->batch->n_pairs, 3);
	cr_assert_eq(req->batch->pairs[0]->key.len, 1);
	cr_assert_eq(req->batch->pairs[0]->key.data[0], 'a');
	cr_assert_eq(req->batch->pairs[0]->value.data[0], '1');
	cr_assert_eq(req->batch->pairs[1]->value.len, 0);
	cr_assert_eq(req->batch->pairs[2]->key.len, sizeof(big));
	cr_assert_eq(memcmp(req->batch->pairs[2]->key.data, big, sizeof(big)), 0);
	cr_assert_eq(req->batch->pairs[2]->value.len, sizeof(val));
	cr_assert_eq(req->batch->pairs[2]->op, IMPORT_SSTPB__PAIR__OP__Put);
	/* It is the same bytes protobuf-c makes itself. */
	bf_rpc_buf again = packed(&req->base);
	cr_assert_eq(again.len, msg.len);
	cr_assert_eq(memcmp(again.data, msg.data, msg.len), 0);
	bf_rpc_buf_free(&again);
	import_sstpb__write_request__free_unpacked(req, NULL);

	/* Reset empties it and keeps the memory for the next batch. */
	uint8_t *mem = b.buf;
	bf_tikv_batch_reset(&b);
	cr_assert_eq(bf_tikv_batch_add(&b, "z", 1, "9", 1), 0);
	cr_assert_eq(b.buf, mem);
	cr_assert_eq(bf_tikv_batch_message(&b, 1, &msg), 0);
	req = import_sstpb__write_request__unpack(NULL, msg.len, msg.data);
	cr_assert_not_null(req);
	cr_assert_eq(req->batch->n_pairs, 1);
	cr_assert_eq(req->batch->pairs[0]->key.data[0], 'z');
	import_sstpb__write_request__free_unpacked(req, NULL);
	bf_tikv_batch_free(&b);
}

Test(tikv_wire, batch_grows_past_its_first_buffer)
{
	bf_tikv_batch b;
	bf_rpc_buf msg;
	char key[16];
	uint8_t val[1000];

	memset(val, 'x', sizeof(val));
	bf_tikv_batch_init(&b);
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%06d", i);
		cr_assert_eq(bf_tikv_batch_add(&b, key, strlen(key), val, sizeof(val)), 0);
	}
	cr_assert_eq(bf_tikv_batch_message(&b, 42, &msg), 0);
	ImportSstpb__WriteRequest *req = import_sstpb__write_request__unpack(NULL, msg.len, msg.data);
	cr_assert_not_null(req);
	cr_assert_eq(req->batch->n_pairs, 500);
	cr_assert_eq(memcmp(req->batch->pairs[499]->key.data, "k000499", 7), 0);
	import_sstpb__write_request__free_unpacked(req, NULL);
	bf_tikv_batch_free(&b);

	/* A batch with nothing in it is still a batch. */
	bf_tikv_batch_init(&b);
	cr_assert_eq(bf_tikv_batch_message(&b, 5, &msg), 0);
	req = import_sstpb__write_request__unpack(NULL, msg.len, msg.data);
	cr_assert_not_null(req);
	cr_assert_eq(req->chunk_case, IMPORT_SSTPB__WRITE_REQUEST__CHUNK_BATCH);
	cr_assert_eq(req->batch->commit_ts, 5);
	cr_assert_eq(req->batch->n_pairs, 0);
	import_sstpb__write_request__free_unpacked(req, NULL);
	bf_tikv_batch_free(&b);
}

Test(tikv_wire, write_meta_names_region_epoch_and_encoded_range)
{
	bf_region r = test_region(9, "a", "m");
	uint8_t uuid[16];
	bf_rpc_buf out;
	uint8_t enc[32];

	for (int i = 0; i < 16; i++)
		uuid[i] = (uint8_t)i;
	cr_assert_eq(bf_tikv_wire_write_meta(uuid, &r, "abc", 3, "abcdefgh", 8, &out), 0);
	ImportSstpb__WriteRequest *req = import_sstpb__write_request__unpack(NULL, out.len, out.data);
	cr_assert_not_null(req);
	cr_assert_eq(req->chunk_case, IMPORT_SSTPB__WRITE_REQUEST__CHUNK_META);
	ImportSstpb__SSTMeta *m = req->meta;
	cr_assert_eq(m->uuid.len, 16);
	cr_assert_eq(memcmp(m->uuid.data, uuid, 16), 0);
	cr_assert_eq(m->region_id, 9);
	cr_assert_eq(m->region_epoch->conf_ver, 3);
	cr_assert_eq(m->region_epoch->version, 7);
	/* Inclusive and memcomparable-encoded, as TiKV reads it. */
	size_t n = bf_codec_put_bytes(enc, "abc", 3);
	cr_assert_eq(m->range->start.len, n);
	cr_assert_eq(memcmp(m->range->start.data, enc, n), 0);
	cr_assert_eq(n, 9);
	cr_assert_eq(enc[8], 0xFA);
	n = bf_codec_put_bytes(enc, "abcdefgh", 8);
	cr_assert_eq(n, 18, "a multiple of 8 ends in an empty group");
	cr_assert_eq(m->range->end.len, n);
	cr_assert_eq(memcmp(m->range->end.data, enc, n), 0);
	import_sstpb__write_request__free_unpacked(req, NULL);
	bf_rpc_buf_free(&out);
}

/* ---- Write replies ---- */

Test(tikv_wire, write_reply_metas_and_errors)
{
	ImportSstpb__WriteResponse resp = IMPORT_SSTPB__WRITE_RESPONSE__INIT;
	ImportSstpb__SSTMeta meta = IMPORT_SSTPB__SSTMETA__INIT;
	ImportSstpb__SSTMeta *metas[] = { &meta };
	uint8_t uuid[16] = { 1 };
	bf_tikv_metas *m = NULL;
	bf_tikv_error re;
	bf_err err;

	meta.uuid.data = uuid;
	meta.uuid.len = 16;
	meta.cf_name = "default";
	resp.n_metas = 1;
	resp.metas = metas;
	bf_rpc_buf b = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_write(b.data, b.len, &m, &re, &err), 0, "%s", err.msg);
	cr_assert_eq(re.kind, BF_TIKV_OK);
	cr_assert_eq(bf_tikv_metas_count(m), 1);

	/* The metas go to MultiIngest as they came, with the leader's context. */
	bf_region r = test_region(4, "", "");
	bf_rpc_buf req;
	cr_assert_eq(bf_tikv_wire_multi_ingest(&r, &r.peers[1], m, &req), 0);
	ImportSstpb__MultiIngestRequest *mi =
		import_sstpb__multi_ingest_request__unpack(NULL, req.len, req.data);
	cr_assert_not_null(mi);
	cr_assert_eq(mi->context->region_id, 4);
	cr_assert_eq(mi->context->region_epoch->version, 7);
	cr_assert_eq(mi->context->peer->store_id, 2);
	cr_assert_eq(mi->context->peer->id, 4002);
	cr_assert_eq(mi->n_ssts, 1);
	cr_assert_str_eq(mi->ssts[0]->cf_name, "default");
	import_sstpb__multi_ingest_request__free_unpacked(mi, NULL);
	bf_rpc_buf_free(&req);
	bf_tikv_metas_free(m);
	bf_rpc_buf_free(&b);

	/* A uuid that is not 16 bytes: refused. */
	meta.uuid.len = 5;
	b = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_write(b.data, b.len, &m, &re, &err), BF_EPROTO);
	cr_assert_null(m);
	bf_rpc_buf_free(&b);

	/* An error in the reply: no metas, the error as the node said it. */
	ImportSstpb__Error e = IMPORT_SSTPB__ERROR__INIT;
	e.message = "Engine(Other(\"disk broke\"))";
	resp.error = &e;
	resp.n_metas = 0;
	b = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_write(b.data, b.len, &m, &re, &err), 0);
	cr_assert_null(m);
	cr_assert_eq(re.kind, BF_TIKV_OTHER);
	cr_assert(strstr(re.message, "disk broke"));
	bf_rpc_buf_free(&b);

	/* ... or a region error inside it. */
	Errorpb__Error se = ERRORPB__ERROR__INIT;
	Errorpb__RegionNotFound rnf = ERRORPB__REGION_NOT_FOUND__INIT;
	rnf.region_id = 4;
	se.region_not_found = &rnf;
	e.store_error = &se;
	b = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_write(b.data, b.len, &m, &re, &err), 0);
	cr_assert_eq(re.kind, BF_TIKV_REGION_NOT_FOUND);
	cr_assert_eq(re.region_id, 4);
	bf_rpc_buf_free(&b);

	uint8_t garbage[] = { 0x12, 0x40, 0x01 };
	cr_assert_eq(bf_tikv_unwire_write(garbage, sizeof(garbage), &m, &re, &err), BF_EPROTO);
}

/* ---- region errors ---- */

static bf_tikv_error ingest_reply(Errorpb__Error *e, int want_rc)
{
	ImportSstpb__IngestResponse resp = IMPORT_SSTPB__INGEST_RESPONSE__INIT;
	bf_tikv_error re;
	bf_err err = { 0 };

	resp.error = e;
	bf_rpc_buf b = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_ingest(b.data, b.len, &re, &err), want_rc, "%s", err.msg);
	bf_rpc_buf_free(&b);
	return re;
}

Test(tikv_wire, ingest_reply_without_error)
{
	bf_tikv_error re = ingest_reply(NULL, 0);
	cr_assert_eq(re.kind, BF_TIKV_OK);
}

Test(tikv_wire, not_leader_carries_the_leader)
{
	Errorpb__Error e = ERRORPB__ERROR__INIT;
	Errorpb__NotLeader nl = ERRORPB__NOT_LEADER__INIT;
	Metapb__Peer leader = METAPB__PEER__INIT;

	leader.id = 5003;
	leader.store_id = 3;
	nl.region_id = 5;
	nl.leader = &leader;
	e.not_leader = &nl;
	e.message = "peer is not leader";
	bf_tikv_error re = ingest_reply(&e, 0);
	cr_assert_eq(re.kind, BF_TIKV_NOT_LEADER);
	cr_assert_eq(re.region_id, 5);
	cr_assert_eq(re.leader_store, 3);
	cr_assert_str_eq(re.message, "peer is not leader");

	nl.leader = NULL; /* the node does not know either */
	re = ingest_reply(&e, 0);
	cr_assert_eq(re.kind, BF_TIKV_NOT_LEADER);
	cr_assert_eq(re.leader_store, 0);
}

Test(tikv_wire, epoch_not_match_decodes_current_regions_to_raw_keys)
{
	Errorpb__Error e = ERRORPB__ERROR__INIT;
	Errorpb__EpochNotMatch enm = ERRORPB__EPOCH_NOT_MATCH__INIT;
	Metapb__Region left = METAPB__REGION__INIT, right = METAPB__REGION__INIT;
	Metapb__Region *cur[] = { &left, &right };
	Metapb__RegionEpoch epoch = METAPB__REGION_EPOCH__INIT;
	Metapb__Peer p1 = METAPB__PEER__INIT, p2 = METAPB__PEER__INIT;
	Metapb__Peer *peers[] = { &p1, &p2 };
	uint8_t split[32];
	size_t split_len = bf_codec_put_bytes(split, "t\x80\x00\x00\x00\x00\x00\x00\x01_r", 11);

	epoch.conf_ver = 1;
	epoch.version = 2;
	p1.id = 11;
	p1.store_id = 1;
	p2.id = 12;
	p2.store_id = 2;
	left.id = 1;
	left.end_key.data = split; /* start empty: unbounded */
	left.end_key.len = split_len;
	left.region_epoch = &epoch;
	left.n_peers = 2;
	left.peers = peers;
	right = left;
	right.id = 8;
	right.start_key = left.end_key;
	right.end_key.len = 0;
	enm.n_current_regions = 2;
	enm.current_regions = cur;
	e.epoch_not_match = &enm;

	bf_tikv_error re = ingest_reply(&e, 0);
	cr_assert_eq(re.kind, BF_TIKV_EPOCH_NOT_MATCH);
	cr_assert_eq(re.ncurrent, 2);
	cr_assert_eq(re.current[0].id, 1);
	cr_assert_eq(re.current[0].start_len, 0);
	cr_assert_eq(re.current[0].end_len, 11);
	cr_assert_eq(memcmp(re.current[0].end, "t\x80\x00\x00\x00\x00\x00\x00\x01_r", 11), 0);
	cr_assert_eq(re.current[1].id, 8);
	cr_assert_eq(re.current[1].start_len, 11);
	cr_assert_eq(re.current[1].end_len, 0);
	cr_assert_eq(re.current[1].version, 2);
	cr_assert_eq(re.current[1].npeers, 2);
	cr_assert_eq(re.current[1].peers[1].store_id, 2);
	bf_tikv_error_free(&re);
	cr_assert_null(re.current);

	/* A boundary that is not memcomparable: the reply is refused. */
	uint8_t bad[] = { 'a', 'b', 0xFF };
	right.start_key.data = bad;
	right.start_key.len = sizeof(bad);
	re = ingest_reply(&e, BF_EPROTO);
	cr_assert_null(re.current);
}

Test(tikv_wire, busy_full_stale_and_others)
{
	Errorpb__Error e = ERRORPB__ERROR__INIT;
	Errorpb__ServerIsBusy busy = ERRORPB__SERVER_IS_BUSY__INIT;
	busy.reason = "write stall";
	busy.backoff_ms = 250;
	e.server_is_busy = &busy;
	bf_tikv_error re = ingest_reply(&e, 0);
	cr_assert_eq(re.kind, BF_TIKV_SERVER_BUSY);
	cr_assert_eq(re.backoff_ms, 250);
	cr_assert_str_eq(re.message, "write stall");

	Errorpb__Error f = ERRORPB__ERROR__INIT;
	Errorpb__DiskFull full = ERRORPB__DISK_FULL__INIT;
	uint64_t stores[] = { 2, 3 };
	full.store_id = stores;
	full.n_store_id = 2;
	full.reason = "disk full";
	f.disk_full = &full;
	re = ingest_reply(&f, 0);
	cr_assert_eq(re.kind, BF_TIKV_DISK_FULL);
	cr_assert_eq(re.nfull, 2);
	cr_assert_eq(re.full_stores[1], 3);

	Errorpb__Error s = ERRORPB__ERROR__INIT;
	Errorpb__StaleCommand stale = ERRORPB__STALE_COMMAND__INIT;
	s.stale_command = &stale;
	s.message = "The file which would be ingested doest not exist.";
	re = ingest_reply(&s, 0);
	cr_assert_eq(re.kind, BF_TIKV_STALE_COMMAND);

	Errorpb__Error rnf = ERRORPB__ERROR__INIT;
	Errorpb__RegionNotFound nf = ERRORPB__REGION_NOT_FOUND__INIT;
	nf.region_id = 77;
	rnf.region_not_found = &nf;
	re = ingest_reply(&rnf, 0);
	cr_assert_eq(re.kind, BF_TIKV_REGION_NOT_FOUND);
	cr_assert_eq(re.region_id, 77);

	Errorpb__Error k = ERRORPB__ERROR__INIT;
	Errorpb__KeyNotInRegion kn = ERRORPB__KEY_NOT_IN_REGION__INIT;
	kn.region_id = 3;
	k.key_not_in_region = &kn;
	re = ingest_reply(&k, 0);
	cr_assert_eq(re.kind, BF_TIKV_KEY_NOT_IN_REGION);

	Errorpb__Error sn = ERRORPB__ERROR__INIT;
	Errorpb__StoreNotMatch snm = ERRORPB__STORE_NOT_MATCH__INIT;
	sn.store_not_match = &snm;
	re = ingest_reply(&sn, 0);
	cr_assert_eq(re.kind, BF_TIKV_STORE_NOT_MATCH);

	Errorpb__Error m = ERRORPB__ERROR__INIT;
	m.message = "[region 4] ingest failed: raft: proposal dropped";
	re = ingest_reply(&m, 0);
	cr_assert_eq(re.kind, BF_TIKV_OTHER);
	cr_assert(strstr(re.message, "proposal dropped"));

	/* A node's text reaches error lines: it is made one printable line. */
	m.message = "ingest failed:\nsecond line\x01";
	re = ingest_reply(&m, 0);
	cr_assert_null(strchr(re.message, '\n'), "%s", re.message);
	cr_assert(strstr(re.message, "ingest failed:\\x0asecond line\\x01"), "%s", re.message);

	/* An error with nothing in it still is one. */
	Errorpb__Error empty = ERRORPB__ERROR__INIT;
	re = ingest_reply(&empty, 0);
	cr_assert_eq(re.kind, BF_TIKV_OTHER);
	cr_assert_neq(re.message[0], '\0');
}

Test(tikv_wire, unreadable_ingest_reply)
{
	uint8_t garbage[] = { 0x0a, 0x7f };
	bf_tikv_error re;
	bf_err err;
	cr_assert_eq(bf_tikv_unwire_ingest(garbage, sizeof(garbage), &re, &err), BF_EPROTO);
	cr_assert(strstr(err.msg, "MultiIngest"));
}

/* ---- KV calls ---- */

Test(tikv_wire, scan_request_and_pages)
{
	bf_region r = test_region(6, "a", "z");
	bf_rpc_buf req;

	cr_assert_eq(bf_tikv_wire_scan(&r, &r.peers[1], "k", 1, "q", 1, 4096, true, &req), 0);
	Kvrpcpb__ScanRequest *sr = kvrpcpb__scan_request__unpack(NULL, req.len, req.data);
	cr_assert_not_null(sr);
	cr_assert_eq(sr->context->region_id, 6);
	cr_assert_eq(sr->context->peer->store_id, 2);
	cr_assert_eq(sr->start_key.len, 1);
	cr_assert_eq(sr->start_key.data[0], 'k', "keys in KV requests are raw");
	cr_assert_eq(sr->end_key.data[0], 'q');
	cr_assert_eq(sr->limit, 4096);
	cr_assert(sr->reverse);
	kvrpcpb__scan_request__free_unpacked(sr, NULL);
	bf_rpc_buf_free(&req);

	Kvrpcpb__ScanResponse resp = KVRPCPB__SCAN_RESPONSE__INIT;
	Kvrpcpb__KvPair a = kv_pair("k1", "v1"), b = kv_pair("k2", NULL);
	Kvrpcpb__KvPair *pairs[] = { &a, &b };
	resp.n_pairs = 2;
	resp.pairs = pairs;
	bf_rpc_buf buf = packed(&resp.base);
	bf_tikv_pairs *p = NULL;
	bf_tikv_error re;
	bf_err err;
	size_t kl, vl;
	cr_assert_eq(bf_tikv_unwire_scan(buf.data, buf.len, &p, &re, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_tikv_pairs_count(p), 2);
	cr_assert_eq(memcmp(bf_tikv_pairs_key(p, 1, &kl), "k2", 2), 0);
	cr_assert_eq(kl, 2);
	cr_assert_eq(memcmp(bf_tikv_pairs_value(p, 0, &vl), "v1", 2), 0);
	bf_tikv_pairs_value(p, 1, &vl);
	cr_assert_eq(vl, 0);
	bf_tikv_pairs_free(p);
	bf_rpc_buf_free(&buf);

	/* A region error instead of pairs. */
	Errorpb__Error e = ERRORPB__ERROR__INIT;
	Errorpb__NotLeader nl = ERRORPB__NOT_LEADER__INIT;
	e.not_leader = &nl;
	resp.region_error = &e;
	buf = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_scan(buf.data, buf.len, &p, &re, &err), 0);
	cr_assert_null(p);
	cr_assert_eq(re.kind, BF_TIKV_NOT_LEADER);
	bf_rpc_buf_free(&buf);

	/* A key error: a node without MVCC has no locks to report. */
	Kvrpcpb__KeyError ke = KVRPCPB__KEY_ERROR__INIT;
	resp.region_error = NULL;
	resp.error = &ke;
	buf = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_scan(buf.data, buf.len, &p, &re, &err), BF_EPROTO);
	cr_assert_null(p);
	bf_rpc_buf_free(&buf);
	resp.error = NULL;
	a.error = &ke;
	buf = packed(&resp.base);
	cr_assert_eq(bf_tikv_unwire_scan(buf.data, buf.len, &p, &re, &err), BF_EPROTO);
	bf_rpc_buf_free(&buf);
}

Test(tikv_wire, batch_get_and_delete_range)
{
	bf_region r = test_region(2, "", "");
	bf_probe probes[2] = { { .key = (const uint8_t *)"p1", .klen = 2 },
			       { .key = (const uint8_t *)"p22", .klen = 3 } };
	bf_rpc_buf req;

	cr_assert_eq(bf_tikv_wire_batch_get(&r, &r.peers[0], probes, 2, &req), 0);
	Kvrpcpb__BatchGetRequest *bg = kvrpcpb__batch_get_request__unpack(NULL, req.len, req.data);
	cr_assert_not_null(bg);
	cr_assert_eq(bg->n_keys, 2);
	cr_assert_eq(bg->keys[1].len, 3);
	cr_assert_eq(memcmp(bg->keys[1].data, "p22", 3), 0);
	kvrpcpb__batch_get_request__free_unpacked(bg, NULL);
	bf_rpc_buf_free(&req);

	Kvrpcpb__BatchGetResponse resp = KVRPCPB__BATCH_GET_RESPONSE__INIT;
	Kvrpcpb__KvPair a = kv_pair("p22", NULL);
	Kvrpcpb__KvPair *pairs[] = { &a };
	resp.n_pairs = 1;
	resp.pairs = pairs;
	bf_rpc_buf buf = packed(&resp.base);
	bf_tikv_pairs *p = NULL;
	bf_tikv_error re;
	bf_err err;
	cr_assert_eq(bf_tikv_unwire_batch_get(buf.data, buf.len, &p, &re, &err), 0);
	cr_assert_eq(bf_tikv_pairs_count(p), 1);
	bf_tikv_pairs_free(p);
	bf_rpc_buf_free(&buf);

	cr_assert_eq(bf_tikv_wire_delete_range(&r, &r.peers[0], "a", 1, "b", 1, &req), 0);
	Kvrpcpb__DeleteRangeRequest *dr =
		kvrpcpb__delete_range_request__unpack(NULL, req.len, req.data);
	cr_assert_not_null(dr);
	cr_assert_eq(dr->start_key.data[0], 'a');
	cr_assert_eq(dr->end_key.data[0], 'b');
	cr_assert_not(dr->notify_only);
	kvrpcpb__delete_range_request__free_unpacked(dr, NULL);
	bf_rpc_buf_free(&req);

	Kvrpcpb__DeleteRangeResponse dresp = KVRPCPB__DELETE_RANGE_RESPONSE__INIT;
	buf = packed(&dresp.base);
	cr_assert_eq(bf_tikv_unwire_delete_range(buf.data, buf.len, &re, &err), 0);
	cr_assert_eq(re.kind, BF_TIKV_OK);
	bf_rpc_buf_free(&buf);
	dresp.error = "range delete failed: IO error";
	buf = packed(&dresp.base);
	cr_assert_eq(bf_tikv_unwire_delete_range(buf.data, buf.len, &re, &err), 0);
	cr_assert_eq(re.kind, BF_TIKV_OTHER);
	cr_assert(strstr(re.message, "IO error"));
	bf_rpc_buf_free(&buf);
}

/* ---- failed statuses ---- */

Test(tikv_wire, statuses_mean_what_the_client_does)
{
	static const struct {
		int code;
		const char *details;
		int want;
	} cases[] = {
		{ BF_RPC_UNAVAILABLE, "failed to connect to all addresses", BF_EUNAVAIL },
		{ BF_RPC_UNAVAILABLE, "Socket closed", BF_EUNAVAIL },
		{ BF_RPC_DEADLINE_EXCEEDED, "Deadline Exceeded", BF_ETIMEDOUT },
		{ BF_RPC_CANCELLED, "Cancelled", BF_EUNAVAIL },
		{ BF_RPC_UNKNOWN, "RequestTooOld(\"epoch not match, region 4 is stale\")", BF_ESTATE },
		{ BF_RPC_UNKNOWN, "RequestTooNew(\"...\")", BF_ESTATE },
		{ BF_RPC_UNKNOWN, "RequestTooOld(\"region 12 is not found\")", BF_ESTATE },
		{ BF_RPC_UNKNOWN, "region 12 not found on store 2", BF_ESTATE },
		{ BF_RPC_UNKNOWN, "stale fence token: revision 5 < 9 for /bfill/lock/x", BF_EFENCED },
		{ BF_RPC_UNKNOWN, "IO error: No space left on device", BF_ENOSPC },
		{ BF_RPC_UNKNOWN, "keys out of order", BF_EIO },
		{ BF_RPC_INTERNAL, "boom", BF_EIO },
		{ BF_RPC_RESOURCE_EXHAUSTED, "Received message larger than max (9 vs. 4)", BF_EIO },
		{ BF_RPC_RESOURCE_EXHAUSTED, "too many streams", BF_EUNAVAIL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bf_rpc_status st = { .code = cases[i].code };
		snprintf(st.details, sizeof(st.details), "%s", cases[i].details);
		cr_expect_eq(bf_tikv_status_code(&st), cases[i].want, "%s: %s -> %d, want %d",
			     bf_rpc_status_name(cases[i].code), cases[i].details,
			     bf_tikv_status_code(&st), cases[i].want);
	}
	cr_assert_eq(bf_tikv_text_code("stale fence token"), BF_EFENCED);
	cr_assert_eq(bf_tikv_text_code("anything"), BF_EIO);
}

/* ---- fencing ---- */

Test(tikv_wire, fence_metadata)
{
	bf_fence_token t = { .revision = 42 };
	char buf[BF_FENCE_KEY_MAX + 32] = "untouched";

	snprintf(t.key, sizeof(t.key), "/bfill/lock/6f1c/7/2");
	cr_assert(bf_tikv_fence_value(&t, buf, sizeof(buf)));
	cr_assert_str_eq(buf, "42:/bfill/lock/6f1c/7/2");
	cr_assert_str_eq(BF_TIKV_FENCE_MD, "bfill-fence");

	snprintf(buf, sizeof(buf), "untouched");
	t.revision = 0; /* the in-process lock: not fenced */
	cr_assert_not(bf_tikv_fence_value(&t, buf, sizeof(buf)));
	cr_assert_not(bf_tikv_fence_value(NULL, buf, sizeof(buf)));
	cr_assert_str_eq(buf, "untouched");
}
