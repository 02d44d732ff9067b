/*
 * bfill-store as a process (cmd/store, server/): real stores on loopback,
 * their layout in a real etcd, and the TiKV client of tests/support/tikv.h.
 * Write and MultiIngest on one store and on three with three replicas
 * (forwarding), region errors after the layout changes in etcd, a stale
 * fence token, malformed requests from a raw client, serving while etcd is
 * down, SIGTERM and SIGKILL, and a full disk.
 */
#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/store.h"
#include "tests/support/etcd.h"
#include "tests/support/stores.h"
#include "tests/support/support.h"
#include "tests/support/tikv.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE 100

static t_etcd *etcd;

static void down(void)
{
	t_tikv_close();
	t_stores_stop_all();
	t_etcd_stop_all();
	etcd = NULL;
	t_small_fs_unmount();
	t_scratch_remove();
}

TestSuite(store_node, .fini = down, .timeout = 120);

static t_stores *start(const char *tag, int nstores, int nregions, const char *args)
{
	t_stores_opts o = { .nstores = nstores, .nregions = nregions, .store_args = args };
	t_scratch_new(tag);
	etcd = t_etcd_start(1);
	return t_stores_start(etcd, tag, &o);
}

/* The region of table TABLE's record with handle h, and its context. */
static bf_region region_of(t_stores *s, int64_t h, t_ctx *ctx)
{
	uint8_t k[BF_RECORD_KEY_LEN];
	bf_codec_record_key(k, TABLE, h);
	bf_region r = t_stores_locate(s, k, sizeof(k));
	*ctx = t_stores_ctx(&r);
	return r;
}

/* One store, one region: the store's channel and the region's context. */
static t_stores *one_store(const char *tag, const char *args, bf_rpc_channel **ch, t_ctx *ctx)
{
	t_stores *s = start(tag, 1, 1, args);
	*ch = t_stores_channel(s, 1);
	region_of(s, 1, ctx);
	return s;
}

/* Channels to the region's peers, the leader first. */
static size_t peers_of(t_stores *s, const bf_region *r, bf_rpc_channel **chs)
{
	size_t n = 0;
	chs[n++] = t_stores_channel(s, (int)r->leader_store);
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i].store_id != r->leader_store)
			chs[n++] = t_stores_channel(s, (int)r->peers[i].store_id);
	return n;
}

/* Data keys in a store directory, read with the store's own reader after
 * the node has stopped. */
static size_t keys_on_disk(const char *dir)
{
	bf_store *st = NULL;
	bf_store_iter *it = NULL;
	bf_err err;
	size_t n = 0;

	cr_assert_eq(bf_store_open(dir, BF_STORE_READONLY, &st, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_store_iter_create(st, "t", 1, "u", 1, NULL, &it, &err), 0);
	for (; bf_store_iter_valid(it); bf_store_iter_next(it))
		n++;
	bf_store_iter_destroy(it);
	bf_store_close(st);
	return n;
}

static int files_in(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name), sl = strlen(suffix);
		n += e->d_name[0] != '.' && len >= sl && !strcmp(e->d_name + len - sl, suffix);
	}
	closedir(d);
	return n;
}

Test(store_node, write_and_ingest_on_one_store_then_read_the_directory)
{
	bf_rpc_channel *ch;
	t_ctx ctx;
	t_stores *s = one_store("node-one", NULL, &ch, &ctx);
	t_kv *kvs = t_record_kvs(TABLE, 1, 2001);

	t_tikv_load(&ch, 1, &ctx, kvs, 2000);
	cr_assert_eq(t_tikv_count(ch, &ctx), 2000);
	cr_assert_eq(t_tikv_switch_mode(ch, true).code, BF_RPC_OK);
	cr_assert_eq(t_tikv_switch_mode(ch, false).code, BF_RPC_OK);
	cr_assert_eq(t_stores_term(s, 1), 0, "SIGTERM is a clean stop");
	cr_assert_eq(keys_on_disk(t_stores_data(s, 1)), 2000);

	char *log = t_read_file(t_stores_log(s, 1));
	cr_assert(strstr(log, "bfill-store 1: serving cluster node-one"), "%s", log);
	cr_assert(strstr(log, "bfill-store 1: Terminated: stopping"), "%s", log);
	cr_assert(strstr(log, "bfill-store 1: stopped"), "%s", log);
	free(log);
	t_kvs_free(kvs, 2000);
}

Test(store_node, uploads_compressed_as_asked_read_back_the_same)
{
	bf_rpc_channel *ch;
	t_ctx ctx;
	t_stores *s = one_store("node-zstd", "--sst-compression zstd", &ch, &ctx);
	t_kv *kvs = t_record_kvs(TABLE, 1, 501);

	t_tikv_load(&ch, 1, &ctx, kvs, 500);
	cr_assert_eq(t_tikv_count(ch, &ctx), 500);
	cr_assert_eq(t_stores_term(s, 1), 0);
	cr_assert_eq(keys_on_disk(t_stores_data(s, 1)), 500);
	t_kvs_free(kvs, 500);
}

Test(store_node, an_upload_no_ingest_took_goes_after_its_ttl)
{
	bf_rpc_channel *ch;
	t_ctx ctx;
	t_stores *s = one_store("node-ttl", "--upload-ttl 1", &ch, &ctx);
	t_kv *kvs = t_record_kvs(TABLE, 1, 101);
	char *import = t_path_in(t_stores_data(s, 1), "import");
	bf_rpc_status st;
	uint8_t uuid[16];

	t_tikv_uuid(uuid);
	ImportSstpb__WriteResponse *wr = t_tikv_write(ch, uuid, &ctx, kvs, 100, &st);
	cr_assert_not_null(wr, "%s", st.details);
	cr_assert_eq(files_in(import, ".sst"), 1);
	int64_t deadline = bf_now_ms() + 15000;
	while (files_in(import, ".sst") > 0 && bf_now_ms() < deadline)
		bf_sleep_ms(200);
	cr_assert_eq(files_in(import, ".sst"), 0, "the upload is still there after 15 s");
	char *log = t_read_file(t_stores_log(s, 1));
	cr_assert(strstr(log, "removed 1 upload no ingest took within 1 s"), "%s", log);
	free(log);

	/* Ingesting it late is StaleCommand: the client writes again. */
	ImportSstpb__IngestResponse *ir = t_tikv_ingest(ch, &ctx, wr->metas, 1, NULL, &st);
	cr_assert_not_null(ir, "%s", st.details);
	cr_assert(ir->error && ir->error->stale_command, "%s",
		  ir->error ? ir->error->message : "ingested");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	import_sstpb__write_response__free_unpacked(wr, NULL);
	cr_assert_eq(t_tikv_count(ch, &ctx), 0);
	t_kvs_free(kvs, 100);
	free(import);
}

Test(store_node, bad_usage_exits_2_with_one_line)
{
	static const char *const cases[][3] = {
		{ "--sst-compression", "snappy", "--sst-compression must be none, lz4 or zstd" },
		{ "--max-message", "1", "--max-message must be 1K..2G" },
		{ "--store-id", "0", "--store-id" },
		{ "--upload-ttl", "0", "--upload-ttl" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { (char *)t_store_bin(), "--listen", "127.0.0.1:1", "--data", "/nonexistent",
				 "--etcd", "127.0.0.1:1", "--cluster", "c", "--store-id", "1",
				 (char *)cases[i][0], (char *)cases[i][1], NULL };
		t_run r = t_exec(argv, NULL);
		t_expect_cli_error(&r, 2, "bfill-store", cases[i][0], cases[i][2], NULL);
	}
	char *missing[] = { (char *)t_store_bin(), "--data", "/nonexistent", NULL };
	t_run r = t_exec(missing, NULL);
	t_expect_cli_error(&r, 2, "bfill-store", "no --listen", "--listen ADDR is required", NULL);
}

Test(store_node, three_stores_three_replicas_every_replica_has_the_data)
{
	t_stores *s = start("node-three", 3, 3, NULL);
	bf_rpc_channel *chs[3];
	t_kv *lo = t_record_kvs(TABLE, 1, 1001), *hi = t_record_kvs(TABLE, 60000, 60500);
	t_ctx c2, c3;
	bf_region r2 = region_of(s, 1, &c2), r3 = region_of(s, 60000, &c3);

	cr_assert_neq(r2.id, r3.id);
	cr_assert_neq(r2.leader_store, r3.leader_store, "leaders are spread");
	t_tikv_load(chs, peers_of(s, &r2, chs), &c2, lo, 1000);
	t_tikv_load(chs, peers_of(s, &r3, chs), &c3, hi, 500);
	for (int id = 1; id <= 3; id++) {
		bf_rpc_channel *ch = t_stores_channel(s, id);
		cr_assert_eq(t_tikv_count(ch, &c2), 1000, "store %d, region %llu", id,
			     (unsigned long long)r2.id);
		cr_assert_eq(t_tikv_count(ch, &c3), 500, "store %d", id);
		char *imports = t_path_in(t_stores_data(s, id), "import");
		cr_assert_eq(files_in(imports, ".sst"), 0, "store %d ingested every upload", id);
		free(imports);
	}
	t_kvs_free(lo, 1000);
	t_kvs_free(hi, 500);
}

/* Writes kvs to every peer of ctx's region (as t_tikv_load does) and
 * sends the leader's metas to ch; the IngestResponse, or NULL with *st
 * when a Write or the ingest failed. */
static ImportSstpb__IngestResponse *write_then_ingest(t_stores *s, const bf_region *r,
						      const t_ctx *ctx, bf_rpc_channel *ch,
						      const t_kv *kvs, size_t n, const char *fence,
						      bf_rpc_status *st)
{
	bf_rpc_channel *chs[3];
	size_t np = peers_of(s, r, chs);
	ImportSstpb__WriteResponse *lead = NULL;
	ImportSstpb__IngestResponse *ir;
	uint8_t uuid[16];

	t_tikv_uuid(uuid);
	for (size_t i = 0; i < np; i++) {
		ImportSstpb__WriteResponse *wr = t_tikv_write(chs[i], uuid, ctx, kvs, n, st);
		if (!wr) {
			if (lead)
				import_sstpb__write_response__free_unpacked(lead, NULL);
			return NULL;
		}
		if (i == 0)
			lead = wr;
		else
			import_sstpb__write_response__free_unpacked(wr, NULL);
	}
	ir = t_tikv_ingest(ch, ctx, lead->metas, lead->n_metas, fence, st);
	import_sstpb__write_response__free_unpacked(lead, NULL);
	return ir;
}

Test(store_node, layout_changes_in_etcd_give_region_errors)
{
	t_stores *s = start("node-regions", 3, 3, NULL);
	bf_cluster *c = t_stores_cluster(s);
	t_kv *kvs = t_record_kvs(TABLE, 10, 20);
	bf_rpc_status st;
	t_ctx ctx;
	bf_region r = region_of(s, 10, &ctx);
	uint64_t old_leader = r.leader_store, new_leader = old_leader % 3 + 1;
	ImportSstpb__IngestResponse *ir;
	bf_err err;

	/* NotLeader once the leader moved, naming the new one. */
	cr_assert_eq(bf_cluster_transfer_leader(c, r.id, new_leader, &err), 0, "%s",
		     bf_err_text(&err));
	bf_region moved = t_stores_wait_region(s, r.id, 0, new_leader);
	for (int64_t until = bf_now_ms() + 5000;; bf_sleep_ms(50)) {
		ir = write_then_ingest(s, &moved, &ctx, t_stores_channel(s, (int)old_leader), kvs, 10,
				       NULL, &st);
		cr_assert_not_null(ir, "%s", st.details);
		if (ir->error && ir->error->not_leader)
			break;
		cr_assert_lt(bf_now_ms(), until, "store %llu still leads",
			     (unsigned long long)old_leader);
		import_sstpb__ingest_response__free_unpacked(ir, NULL);
	}
	cr_assert_not_null(ir->error->not_leader->leader);
	cr_assert_eq(ir->error->not_leader->leader->store_id, new_leader);
	import_sstpb__ingest_response__free_unpacked(ir, NULL);

	/* EpochNotMatch after a split, with both halves. */
	uint8_t mid[BF_RECORD_KEY_LEN];
	bf_codec_record_key(mid, TABLE, 15);
	cr_assert_eq(bf_cluster_split(c, r.id, mid, sizeof(mid), &err), 0, "%s", bf_err_text(&err));
	bf_region split = t_stores_wait_region(s, r.id, r.version + 1, 0);
	t_ctx stale = t_stores_ctx(&moved);
	for (int64_t until = bf_now_ms() + 5000;; bf_sleep_ms(50)) {
		ir = write_then_ingest(s, &split, &stale, t_stores_channel(s, (int)new_leader), kvs,
				       5, NULL, &st);
		if (!ir) {
			/* The Write itself may see the new epoch first. */
			cr_assert(strstr(st.details, "RequestTooOld"), "%s", st.details);
			break;
		}
		if (ir->error && ir->error->epoch_not_match)
			break;
		cr_assert_lt(bf_now_ms(), until, "no EpochNotMatch: %s",
			     ir->error ? ir->error->message : "ingested");
		import_sstpb__ingest_response__free_unpacked(ir, NULL);
	}
	if (ir) {
		Errorpb__EpochNotMatch *enm = ir->error->epoch_not_match;
		cr_assert_geq(enm->n_current_regions, 2, "both halves of the split");
		bool found = false;
		for (size_t i = 0; i < enm->n_current_regions; i++)
			found |= enm->current_regions[i]->id == r.id &&
				 enm->current_regions[i]->region_epoch->version == r.version + 1;
		cr_assert(found, "the split region at its new version");
		import_sstpb__ingest_response__free_unpacked(ir, NULL);
	}

	/* RegionNotFound. */
	t_ctx lost = ctx;
	lost.region_id = 999;
	ImportSstpb__SSTMeta none = IMPORT_SSTPB__SSTMETA__INIT, *one[1] = { &none };
	uint8_t uuid[16] = { 1 };
	none.uuid = (ProtobufCBinaryData){ 16, uuid };
	ir = t_tikv_ingest(t_stores_channel(s, 1), &lost, one, 1, NULL, &st);
	cr_assert(ir && ir->error && ir->error->region_not_found, "%s", st.details);
	cr_assert_eq(ir->error->region_not_found->region_id, 999);
	import_sstpb__ingest_response__free_unpacked(ir, NULL);

	/* Keys outside the region: the Write refuses them. */
	split = t_stores_wait_region(s, r.id, r.version + 1, new_leader);
	t_ctx now = t_stores_ctx(&split);
	t_kv *far = t_record_kvs(TABLE, 70000, 70001);
	ImportSstpb__WriteResponse *wr = t_tikv_write(t_stores_channel(s, (int)new_leader), uuid,
						      &now, far, 1, &st);
	cr_assert_null(wr);
	cr_assert_eq(st.code, BF_RPC_UNKNOWN);
	cr_assert(strstr(st.details, "not in region"), "%s", st.details);
	t_kvs_free(far, 1);
	t_kvs_free(kvs, 10);
}

Test(store_node, a_stale_fence_token_is_refused)
{
	t_stores *s = start("node-fence", 3, 1, NULL);
	t_kv *kvs = t_record_kvs(TABLE, 1, 50);
	bf_rpc_status st;
	t_ctx ctx;
	bf_region r = region_of(s, 1, &ctx);
	bf_rpc_channel *leader = t_stores_channel(s, (int)r.leader_store);
	ImportSstpb__IngestResponse *ir;

	ir = write_then_ingest(s, &r, &ctx, leader, kvs, 49, "7:/bfill/lock/u/1/1", &st);
	cr_assert(ir && !ir->error, "%s", ir && ir->error ? ir->error->message : st.details);
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	ir = write_then_ingest(s, &r, &ctx, leader, kvs, 49, "6:/bfill/lock/u/1/1", &st);
	cr_assert_null(ir);
	cr_assert_eq(st.code, BF_RPC_UNKNOWN);
	cr_assert(strstr(st.details, "stale fence token"), "%s", st.details);
	/* Every replica recorded the token through the forward, durably:
	 * read from each store's directory (read-only, beside the node). */
	for (int id = 1; id <= 3; id++) {
		bf_store *dir = NULL;
		int64_t rev = 0;
		bf_err err;
		cr_assert_eq(bf_store_open(t_stores_data(s, id), BF_STORE_READONLY, &dir, &err), 0,
			     "%s", bf_err_text(&err));
		cr_assert_eq(bf_catalog_get_fence(bf_store_catalog(dir), "/bfill/lock/u/1/1", &rev, &err), 0);
		cr_assert_eq(rev, 7, "store %d", id);
		bf_store_close(dir);
	}
	t_kvs_free(kvs, 49);
}

Test(store_node, malformed_requests_get_errors_and_the_store_keeps_serving)
{
	bf_rpc_channel *ch;
	t_ctx ctx;
	t_stores *s = one_store("node-bad", "--max-message 64K", &ch, &ctx);
	t_kv *kvs = t_record_kvs(TABLE, 1, 11);
	static const char junk[] = "\x0a\xff\xff\xff\xff\x0f garbage";
	bf_rpc_buf garbage = { (uint8_t *)junk, sizeof(junk) - 1 };
	uint8_t uuid[16];
	bf_rpc_status st;

	t_tikv_uuid(uuid);
	bf_rpc_buf meta = t_tikv_write_meta(uuid, 16, &ctx), bad_uuid = t_tikv_write_meta(uuid, 3, &ctx);
	bf_rpc_buf batch = t_tikv_write_batch(9, kvs, 10);
	static char value[80 << 10];
	t_kv huge_kv = { kvs[0].key, kvs[0].klen, value, sizeof(value) };
	bf_rpc_buf huge = t_tikv_write_batch(9, &huge_kv, 1);
	struct {
		const bf_rpc_buf *msgs;
		size_t n;
		int code;
		const char *needle;
	} cases[] = {
		{ &garbage, 1, BF_RPC_UNKNOWN, "malformed WriteRequest" },
		{ &batch, 1, BF_RPC_UNKNOWN, "InvalidChunk" },
		{ &bad_uuid, 1, BF_RPC_UNKNOWN, "uuid of 3 bytes" },
		{ (bf_rpc_buf[]){ meta, huge }, 2, BF_RPC_RESOURCE_EXHAUSTED, "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = t_tikv_raw_stream(ch, T_PATH_WRITE, cases[i].msgs, cases[i].n, true, NULL);
		cr_assert_eq(st.code, cases[i].code, "case %zu: %s: %s", i,
			     bf_rpc_status_name(st.code), st.details);
		cr_assert(strstr(st.details, cases[i].needle), "case %zu: %s", i, st.details);
	}
	st = t_tikv_raw_unary(ch, T_PATH_MULTI_INGEST, junk, sizeof(junk) - 1, NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_UNKNOWN, "%s", st.details);
	st = t_tikv_raw_unary(ch, T_PATH_SCAN, huge.data, huge.len, NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_RESOURCE_EXHAUSTED, "%s", st.details);
	/* A stream cut short by a client that goes away. */
	st = t_tikv_raw_stream(ch, T_PATH_WRITE, (bf_rpc_buf[]){ meta, batch }, 2, false, NULL);

	cr_assert(t_stores_alive(s, 1));
	t_tikv_load(&ch, 1, &ctx, kvs, 10);
	cr_assert_eq(t_tikv_count(ch, &ctx), 10);
	char *log = t_read_file(t_stores_log(s, 1));
	cr_assert(strstr(log, "malformed WriteRequest"), "failed requests are logged: %s", log);
	free(log);
	bf_rpc_buf *bufs[] = { &meta, &bad_uuid, &batch, &huge };
	for (size_t i = 0; i < 4; i++)
		bf_rpc_buf_free(bufs[i]);
	t_kvs_free(kvs, 10);
}

Test(store_node, etcd_down_the_store_serves_from_its_cache)
{
	bf_rpc_channel *ch;
	t_ctx ctx;
	one_store("node-etcd", NULL, &ch, &ctx);
	t_kv *kvs = t_record_kvs(TABLE, 1, 101);

	t_etcd_kill(etcd, 0);
	t_tikv_load(&ch, 1, &ctx, kvs, 100);
	cr_assert_eq(t_tikv_count(ch, &ctx), 100);
	t_etcd_restart(etcd, 0);
	t_kvs_free(kvs, 100);
}

Test(store_node, sigkill_mid_upload_then_restart_cleans_up_and_serves)
{
	bf_rpc_channel *ch;
	t_ctx ctx;
	t_stores *s = one_store("node-kill", NULL, &ch, &ctx);
	t_kv *kvs = t_record_kvs(TABLE, 1, 301);
	char *imports = t_path_in(t_stores_data(s, 1), "import");
	bf_rpc_method wm = { T_PATH_WRITE, "Write" };
	bf_rpc_call call = { .method = &wm };
	bf_rpc_stream *up = NULL;
	uint8_t uuid[16];
	bf_err err;

	t_tikv_load(&ch, 1, &ctx, kvs, 200);
	/* An upload left open: its file is half-written when the store dies. */
	t_tikv_uuid(uuid);
	bf_rpc_buf meta = t_tikv_write_meta(uuid, 16, &ctx), batch = t_tikv_write_batch(3, kvs + 200, 100);
	cr_assert_eq(bf_rpc_stream_open(ch, &call, &up, &err), 0);
	cr_assert_eq(bf_rpc_stream_send(up, &meta, bf_now_ms() + 5000, &err), 0);
	cr_assert_eq(bf_rpc_stream_send(up, &batch, bf_now_ms() + 5000, &err), 0);
	for (int i = 0; i < 100 && files_in(imports, ".tmp") == 0; i++)
		bf_sleep_ms(20);
	cr_assert_eq(files_in(imports, ".tmp"), 1);
	t_stores_kill(s, 1);
	bf_rpc_stream_destroy(up);

	t_stores_restart(s, 1, NULL);
	cr_assert_eq(files_in(imports, ".tmp"), 0, "the half-written upload is gone");
	char *log = t_read_file(t_stores_log(s, 1));
	cr_assert(strstr(log, "removed 1 half-written upload"), "%s", log);
	free(log);
	cr_assert_eq(t_tikv_count(ch, &ctx), 200);
	t_tikv_load(&ch, 1, &ctx, kvs + 200, 100);
	cr_assert_eq(t_tikv_count(ch, &ctx), 300);
	cr_assert_eq(t_stores_term(s, 1), 0);
	bf_rpc_buf_free(&meta);
	bf_rpc_buf_free(&batch);
	free(imports);
	t_kvs_free(kvs, 300);
}

/* ---- a full disk --------------------------------------------------------- */

Test(store_node, an_ingest_on_a_full_disk_is_disk_full)
{
	t_scratch_new("node-full");
	char *fs = t_small_fs("small", 32);
	t_stores_opts o = { .nstores = 1, .data_dirs = { fs } };
	etcd = t_etcd_start(1);
	t_stores *s = t_stores_start(etcd, "node-full", &o);
	bf_rpc_channel *ch = t_stores_channel(s, 1);
	t_kv *kvs = t_record_kvs(TABLE, 1, 101);
	bf_rpc_status st;
	uint8_t uuid[16];
	t_ctx ctx;

	region_of(s, 1, &ctx);
	t_tikv_uuid(uuid);
	ImportSstpb__WriteResponse *wr = t_tikv_write(ch, uuid, &ctx, kvs, 100, &st);
	cr_assert_not_null(wr, "%s", st.details);
	t_fill_up(fs);
	ImportSstpb__IngestResponse *ir = t_tikv_ingest(ch, &ctx, wr->metas, 1, NULL, &st);
	cr_assert_not_null(ir, "%s", st.details);
	cr_assert(ir->error && ir->error->disk_full, "%s", ir->error ? ir->error->message : "ingested");
	cr_assert_eq(ir->error->disk_full->n_store_id, 1);
	cr_assert_eq(ir->error->disk_full->store_id[0], 1);
	import_sstpb__ingest_response__free_unpacked(ir, NULL);

	/* A new upload says so too, and the store still serves reads. */
	ImportSstpb__WriteResponse *again = t_tikv_write(ch, uuid, &ctx, kvs, 100, &st);
	cr_assert_null(again);
	cr_assert(strstr(st.details, "DiskFull"), "%s", st.details);
	cr_assert_eq(t_tikv_count(ch, &ctx), 0);
	cr_assert(t_stores_alive(s, 1));
	import_sstpb__write_response__free_unpacked(wr, NULL);
	t_kvs_free(kvs, 100);
	free(fs);
}
