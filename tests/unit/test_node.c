/*
 * The store node's handlers (server/), in-process: nodes on loopback with
 * their regions from a table the test controls instead of etcd, and the
 * TiKV client of tests/support/tikv.h. Writes and ingests, forwarding to
 * followers, region errors, fencing, range deletes, import mode, and
 * malformed requests that must get errors while the node keeps serving;
 * TLS nodes that forward with TLS and log the clients they refuse.
 * tests/integration/test_store_node.c runs the real bfill-store.
 */
#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/fault.h"
#include "bfill/node.h"
#include "rpc/rpc.h"
#include "tests/support/certs.h"
#include "tests/support/support.h"
#include "tests/support/tikv.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NODES 3

/* ---- a region table in place of etcd -------------------------------------- */

static struct {
	pthread_mutex_t mu;
	bf_region regions[4];
	int nregions;
	bf_cluster_store stores[MAX_NODES];
	int nstores;
} view = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int v_region(void *arg, uint64_t id, bf_region *out, bf_err *err)
{
	int rc = BF_ENOTFOUND;
	(void)arg;
	pthread_mutex_lock(&view.mu);
	for (int i = 0; i < view.nregions; i++)
		if (view.regions[i].id == id) {
			*out = view.regions[i];
			rc = 0;
		}
	pthread_mutex_unlock(&view.mu);
	return rc ? bf_errf(err, rc, "no region %llu", (unsigned long long)id) : 0;
}

static int v_regions(void *arg, const void *lo, size_t lolen, const void *hi, size_t hilen,
		     bf_region **out, size_t *n, bf_err *err)
{
	(void)arg;
	(void)lo;
	(void)lolen;
	(void)hi;
	(void)hilen;
	(void)err;
	pthread_mutex_lock(&view.mu);
	*out = calloc((size_t)view.nregions, sizeof(**out));
	memcpy(*out, view.regions, (size_t)view.nregions * sizeof(**out));
	*n = (size_t)view.nregions;
	pthread_mutex_unlock(&view.mu);
	return 0;
}

static int v_store(void *arg, uint64_t id, bf_cluster_store *out, bf_err *err)
{
	(void)arg;
	if (id < 1 || (int)id > view.nstores)
		return bf_errf(err, BF_ENOTFOUND, "no store %llu", (unsigned long long)id);
	*out = view.stores[id - 1];
	return 0;
}

static const bf_node_view_ops table_view = { .region = v_region, .regions = v_regions,
					     .store = v_store };

/* Region 1 holds keys below "tm", region 2 the rest; peers on the first
 * `replicas` stores; store 1 leads region 1, store 2 (or 1) region 2. */
static void layout(int nstores, int replicas)
{
	view.nregions = 2;
	for (int i = 0; i < 2; i++) {
		bf_region *r = &view.regions[i];
		memset(r, 0, sizeof(*r));
		r->id = (uint64_t)i + 1;
		r->conf_ver = r->version = 1;
		r->npeers = replicas;
		for (int p = 0; p < replicas; p++)
			r->peers[p] = (bf_region_peer){ .id = 10 * r->id + (uint64_t)p + 1,
							.store_id = (uint64_t)p + 1 };
		r->leader_store = nstores > 1 ? (uint64_t)i + 1 : 1;
	}
	memcpy(view.regions[0].end, "tm", 2);
	view.regions[0].end_len = 2;
	memcpy(view.regions[1].start, "tm", 2);
	view.regions[1].start_len = 2;
	view.nstores = nstores;
}

static t_ctx ctx_of(int region)
{
	bf_region *r = &view.regions[region - 1];
	uint64_t peer = 0;
	for (int p = 0; p < r->npeers; p++)
		if (r->peers[p].store_id == r->leader_store)
			peer = r->peers[p].id;
	return (t_ctx){ r->id, r->conf_ver, r->version, peer, r->leader_store };
}

/* ---- nodes -------------------------------------------------------------- */

static bf_node *nodes[MAX_NODES];
static const bf_tls *node_tls; /* of the nodes open_node makes; NULL: plain text */
static char *dirs[MAX_NODES];
static bf_rpc_channel *chans[MAX_NODES];
static FILE *logs[MAX_NODES];

static void down(void)
{
	t_tikv_close();
	for (int i = 0; i < MAX_NODES; i++) {
		bf_node_close(nodes[i]);
		nodes[i] = NULL;
		if (logs[i])
			fclose(logs[i]);
		logs[i] = NULL;
		free(dirs[i]);
		dirs[i] = NULL;
	}
	bf_fault_reset();
	t_tikv_tls(NULL);
	node_tls = NULL;
	t_scratch_remove();
}

TestSuite(node, .fini = down, .timeout = 60);

static void open_node(int i, size_t max_message)
{
	char name[16], *log;
	bf_node_opts o = { .store_id = (uint64_t)i + 1, .listen = "127.0.0.1:0",
			   .view = &table_view, .max_message_bytes = max_message,
			   .forward_timeout_ms = 5000 };
	bf_err err;

	snprintf(name, sizeof(name), "store%d", i + 1);
	if (!dirs[i])
		dirs[i] = t_path_in(t_scratch_dir, name);
	snprintf(name, sizeof(name), "log%d", i + 1);
	log = t_path_in(t_scratch_dir, name);
	if (!logs[i])
		cr_assert_not_null(logs[i] = fopen(log, "a"));
	free(log);
	o.data_dir = dirs[i];
	o.log = logs[i];
	o.tls = node_tls;
	cr_assert_eq(bf_node_open(&o, &nodes[i], &err), 0, "%s", bf_err_text(&err));
	snprintf(view.stores[i].address, sizeof(view.stores[i].address), "127.0.0.1:%d",
		 bf_node_port(nodes[i]));
	view.stores[i].id = (uint64_t)i + 1;
	chans[i] = t_tikv_channel(view.stores[i].address);
}

static void start(int nstores, int replicas, size_t max_message)
{
	t_scratch_new("node");
	layout(nstores, replicas);
	for (int i = 0; i < nstores; i++)
		open_node(i, max_message);
}

/* Files under node i's import directory. */
static int import_files(int i)
{
	char *dir = t_path_in(dirs[i], "import");
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	cr_assert_not_null(d, "%s", dir);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	free(dir);
	return n;
}

static ImportSstpb__WriteResponse *write_ok(int node, const uint8_t uuid[16], const t_ctx *ctx,
					    const t_kv *kvs, size_t n)
{
	bf_rpc_status st;
	ImportSstpb__WriteResponse *wr = t_tikv_write(chans[node], uuid, ctx, kvs, n, &st);
	cr_assert_not_null(wr, "Write: %s: %s", bf_rpc_status_name(st.code), st.details);
	return wr;
}

/* ---- writes and ingests ------------------------------------------------- */

Test(node, a_write_answers_its_meta_and_an_ingest_makes_it_visible)
{
	start(1, 1, 0);
	t_ctx ctx = ctx_of(1);
	t_kv *kvs = t_kvs_make("a", 0, 1000);
	uint8_t uuid[16], enc[64];
	bf_rpc_status st;

	t_tikv_uuid(uuid);
	ImportSstpb__WriteResponse *wr = write_ok(0, uuid, &ctx, kvs, 1000);
	cr_assert_eq(wr->n_metas, 1);
	ImportSstpb__SSTMeta *m = wr->metas[0];
	cr_assert_str_eq(m->cf_name, "default");
	cr_assert_eq(m->uuid.len, 16);
	cr_assert_eq(memcmp(m->uuid.data, uuid, 16), 0);
	cr_assert_eq(m->region_id, 1);
	cr_assert_eq(m->total_kvs, 1000);
	cr_assert_gt(m->total_bytes, 1000 * 10);
	size_t elen = bf_codec_put_bytes(enc, kvs[0].key, kvs[0].klen);
	cr_assert(m->range->start.len == elen && !memcmp(m->range->start.data, enc, elen));
	elen = bf_codec_put_bytes(enc, kvs[999].key, kvs[999].klen);
	cr_assert(m->range->end.len == elen && !memcmp(m->range->end.data, enc, elen),
		  "the range's end is the last key, encoded");
	cr_assert_eq(import_files(0), 1);

	/* Not there before the ingest; all there after it. */
	cr_assert_eq(t_tikv_count(chans[0], &ctx), 0);
	ImportSstpb__IngestResponse *ir = t_tikv_ingest(chans[0], &ctx, wr->metas, 1, NULL, &st);
	cr_assert_not_null(ir, "%s", st.details);
	cr_assert_null(ir->error, "%s", ir->error ? ir->error->message : "");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	cr_assert_eq(t_tikv_count(chans[0], &ctx), 1000);
	cr_assert_eq(import_files(0), 0, "the ingest took the file");

	/* A batch get finds what is there and leaves out what is not. */
	t_kv probe[2] = { kvs[7], { "tb", 2, NULL, 0 } };
	Kvrpcpb__BatchGetResponse *gr = t_tikv_batch_get(chans[0], &ctx, probe, 2, &st);
	cr_assert_not_null(gr);
	cr_assert_eq(gr->n_pairs, 1);
	cr_assert_eq(gr->pairs[0]->value.len, kvs[7].vlen);
	cr_assert_eq(memcmp(gr->pairs[0]->value.data, kvs[7].value, kvs[7].vlen), 0);
	kvrpcpb__batch_get_response__free_unpacked(gr, NULL);

	/* The same upload again is gone: the file was ingested. */
	ir = t_tikv_ingest(chans[0], &ctx, wr->metas, 1, NULL, &st);
	cr_assert_not_null(ir);
	cr_assert(ir->error && ir->error->stale_command, "a missing file is a stale command");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	import_sstpb__write_response__free_unpacked(wr, NULL);
	t_kvs_free(kvs, 1000);
}

Test(node, the_leader_forwards_ingests_and_range_deletes_to_every_peer)
{
	start(3, 3, 0);
	t_ctx c1 = ctx_of(1), c2 = ctx_of(2);
	t_kv *a = t_kvs_make("a", 0, 500), *z = t_kvs_make("z", 0, 300);
	bf_rpc_channel *order1[3] = { chans[0], chans[1], chans[2] };
	bf_rpc_channel *order2[3] = { chans[1], chans[0], chans[2] };
	bf_rpc_status st;

	t_tikv_load(order1, 3, &c1, a, 500);
	t_tikv_load(order2, 3, &c2, z, 300);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(t_tikv_count(chans[i], &c1), 500, "store %d, region 1", i + 1);
		cr_assert_eq(t_tikv_count(chans[i], &c2), 300, "store %d, region 2", i + 1);
		cr_assert_eq(import_files(i), 0);
	}

	/* A range delete on the leader reaches every peer. */
	Kvrpcpb__DeleteRangeResponse *dr =
		t_tikv_delete_range(chans[0], &c1, a[100].key, a[100].klen, a[200].key,
				    a[200].klen, NULL, &st);
	cr_assert_not_null(dr, "%s", st.details);
	cr_assert(!dr->region_error && !*dr->error, "%s", dr->error);
	kvrpcpb__delete_range_response__free_unpacked(dr, NULL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_tikv_count(chans[i], &c1), 400, "store %d", i + 1);

	/* A follower that is down fails the ingest, retryably. */
	bf_node_close(nodes[2]);
	nodes[2] = NULL;
	uint8_t uuid[16];
	t_tikv_uuid(uuid);
	ImportSstpb__WriteResponse *wr = write_ok(0, uuid, &c1, a, 10);
	import_sstpb__write_response__free_unpacked(write_ok(1, uuid, &c1, a, 10), NULL);
	ImportSstpb__IngestResponse *ir = t_tikv_ingest(chans[0], &c1, wr->metas, 1, NULL, &st);
	cr_assert_not_null(ir, "%s", st.details);
	cr_assert(ir->error && strstr(ir->error->message, "store 3"), "%s",
		  ir->error ? ir->error->message : "no error");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	import_sstpb__write_response__free_unpacked(wr, NULL);
	t_kvs_free(a, 500);
	t_kvs_free(z, 300);
}

/* Lines of node i's log that have needle. */
static int log_lines_with(int i, const char *needle)
{
	char *path = t_path_in(t_scratch_dir, i == 0 ? "log1" : i == 1 ? "log2" : "log3");
	char *text, *save = NULL;
	int n = 0;

	fflush(logs[i]);
	text = t_read_file(path);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, needle) != NULL;
	free(text);
	free(path);
	return n;
}

Test(node, tls_nodes_forward_over_tls_and_log_refused_clients_a_line_a_second)
{
	static t_certs certs;
	bf_tls server, client;
	t_kv *a = t_kvs_make("a", 0, 200);
	bf_rpc_status st;

	bf_rpc_quiet_library_log(NULL);
	t_certs_make(&certs, t_scratch_new("node"));
	server = t_certs_server(&certs, true);
	client = t_certs_client(&certs, NULL, &certs.client);
	node_tls = &server;
	t_tikv_tls(&client);
	layout(2, 2);
	open_node(0, 0);
	open_node(1, 0);

	/* The leader forwards the ingest to the follower: over TLS, as a
	 * client the follower requires a certificate of. */
	t_ctx c1 = ctx_of(1);
	bf_rpc_channel *order[2] = { chans[0], chans[1] };
	t_tikv_load(order, 2, &c1, a, 200);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(t_tikv_count(chans[i], &c1), 200, "store %d", i + 1);
	cr_assert_eq(log_lines_with(0, "refused"), 0, "nothing was refused: the stores trust each other");
	cr_assert_eq(log_lines_with(1, "refused"), 0);

	/* A burst of plain-text clients within a second: one line for the
	 * first, the count of the others in one line after. */
	int64_t start = bf_now_ms();
	for (int k = 0; k < 5; k++) {
		bf_rpc_pool_opts po = { .label = "plain" };
		bf_rpc_pool *pool;
		bf_rpc_channel *ch;
		bf_err err;
		cr_assert_eq(bf_rpc_pool_create(&po, &pool, &err), 0);
		cr_assert_eq(bf_rpc_pool_add(pool, view.stores[0].address, &ch, &err), 0);
		bf_rpc_call call = { .method = &(bf_rpc_method){ T_PATH_SCAN, "KvScan" },
				     .deadline_ms = bf_now_ms() + 150 };
		bf_rpc_buf req = { (uint8_t *)"", 0 }, reply;
		cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, &reply, &err), 0);
		cr_assert_neq(st.code, BF_RPC_OK);
		bf_rpc_pool_destroy(pool);
	}
	cr_assert_lt(bf_now_ms() - start, 1000, "the burst fits in a second");
	for (int64_t until = bf_now_ms() + 4000; log_lines_with(0, "more client") == 0;
	     bf_sleep_ms(50))
		cr_assert_lt(bf_now_ms(), until, "no line told of the other refusals");
	cr_assert_eq(log_lines_with(0, "refused a client at the TLS handshake: the client does "
				       "not speak TLS"), 1, "one line for the first");
	cr_assert_eq(log_lines_with(0, "more client"), 1, "one line for the rest");
	/* gRPC does not say which listener refused: in one process every TLS
	 * node hears of it (bfill-store runs one node per process). */
	cr_assert_eq(log_lines_with(1, "refused a client at the TLS handshake"), 1);
	t_kvs_free(a, 200);
}

/* ---- region errors ---------------------------------------------------------- */

static ImportSstpb__IngestResponse *ingest(int node, const t_ctx *ctx, ImportSstpb__WriteResponse *wr)
{
	bf_rpc_status st;
	ImportSstpb__IngestResponse *ir = t_tikv_ingest(chans[node], ctx, wr->metas, wr->n_metas,
							NULL, &st);
	cr_assert_not_null(ir, "MultiIngest: %s: %s", bf_rpc_status_name(st.code), st.details);
	return ir;
}

Test(node, ingests_get_the_region_errors_tikv_sends)
{
	start(2, 2, 0);
	t_ctx c1 = ctx_of(1);
	t_kv *kvs = t_kvs_make("a", 0, 50);
	uint8_t uuid[16];
	ImportSstpb__IngestResponse *ir;

	t_tikv_uuid(uuid);
	ImportSstpb__WriteResponse *wr = write_ok(0, uuid, &c1, kvs, 50);

	/* NotLeader, naming the leader. */
	ir = ingest(1, &c1, wr);
	cr_assert(ir->error && ir->error->not_leader, "%s", ir->error ? ir->error->message : "");
	cr_assert_eq(ir->error->not_leader->region_id, 1);
	cr_assert_not_null(ir->error->not_leader->leader);
	cr_assert_eq(ir->error->not_leader->leader->store_id, 1);
	import_sstpb__ingest_response__free_unpacked(ir, NULL);

	/* RegionNotFound. */
	t_ctx lost = c1;
	lost.region_id = 99;
	ir = ingest(0, &lost, wr);
	cr_assert(ir->error && ir->error->region_not_found);
	cr_assert_eq(ir->error->region_not_found->region_id, 99);
	import_sstpb__ingest_response__free_unpacked(ir, NULL);

	/* EpochNotMatch after a split, with the current regions. */
	pthread_mutex_lock(&view.mu);
	view.regions[0].version++;
	pthread_mutex_unlock(&view.mu);
	ir = ingest(0, &c1, wr);
	cr_assert(ir->error && ir->error->epoch_not_match, "%s", ir->error ? ir->error->message : "");
	cr_assert_eq(ir->error->epoch_not_match->n_current_regions, 2);
	Metapb__Region *cur = ir->error->epoch_not_match->current_regions[0];
	cr_assert_eq(cur->id, 1);
	cr_assert_eq(cur->region_epoch->version, 2);
	cr_assert_eq(cur->end_key.len, 9, "region keys are encoded");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	pthread_mutex_lock(&view.mu);
	view.regions[0].version--;
	pthread_mutex_unlock(&view.mu);

	/* A file whose range lies outside the region. */
	t_ctx c2 = ctx_of(2);
	c2.store_id = 1;
	view.regions[1].leader_store = 1;
	ImportSstpb__SSTMeta *m = wr->metas[0];
	m->region_id = 2;
	ir = ingest(0, &c2, wr);
	cr_assert(ir->error && ir->error->key_not_in_region, "%s",
		  ir->error ? ir->error->message : "");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	m->region_id = 1;

	/* A file nobody wrote: stale command. */
	m->uuid.data[0] ^= 0xff;
	ir = ingest(0, &c1, wr);
	cr_assert(ir->error && ir->error->stale_command);
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	m->uuid.data[0] ^= 0xff;

	/* Busy twice, then through. */
	bf_fault_arm_range("store.busy", 1, 2);
	for (int i = 0; i < 2; i++) {
		ir = ingest(0, &c1, wr);
		cr_assert(ir->error && ir->error->server_is_busy);
		import_sstpb__ingest_response__free_unpacked(ir, NULL);
	}
	/* Store 2 never got the file: the forward fails with its error. */
	ir = ingest(0, &c1, wr);
	cr_assert(ir->error && ir->error->stale_command && strstr(ir->error->message, "store 2"),
		  "%s", ir->error ? ir->error->message : "no error");
	import_sstpb__ingest_response__free_unpacked(ir, NULL);
	import_sstpb__write_response__free_unpacked(wr, NULL);
	t_kvs_free(kvs, 50);
}

/* ---- fencing -------------------------------------------------------------------- */

static int fenced_ingest(const t_ctx *ctx, const t_kv *kvs, size_t n, const char *fence,
			 bf_rpc_status *st)
{
	uint8_t uuid[16];
	t_tikv_uuid(uuid);
	ImportSstpb__WriteResponse *wr = write_ok(0, uuid, ctx, kvs, n);
	ImportSstpb__IngestResponse *ir = t_tikv_ingest(chans[0], ctx, wr->metas, 1, fence, st);
	int applied = ir && !ir->error;
	if (ir)
		import_sstpb__ingest_response__free_unpacked(ir, NULL);
	import_sstpb__write_response__free_unpacked(wr, NULL);
	return applied;
}

Test(node, a_stale_fence_token_is_refused_durably)
{
	start(1, 1, 0);
	t_ctx c1 = ctx_of(1);
	t_kv *kvs = t_kvs_make("a", 0, 20);
	bf_rpc_status st;

	cr_assert(fenced_ingest(&c1, kvs, 20, "5:/bfill/lock/x/1/2", &st), "%s", st.details);
	cr_assert_not(fenced_ingest(&c1, kvs, 20, "4:/bfill/lock/x/1/2", &st));
	cr_assert_eq(st.code, BF_RPC_UNKNOWN);
	cr_assert(strstr(st.details, "stale fence token"), "%s", st.details);
	/* Another lock key has its own record; the same revision passes. */
	cr_assert(fenced_ingest(&c1, kvs, 20, "1:/bfill/lock/y", &st), "%s", st.details);
	cr_assert(fenced_ingest(&c1, kvs, 20, "5:/bfill/lock/x/1/2", &st), "%s", st.details);
	cr_assert_not(fenced_ingest(&c1, kvs, 20, "garbage", &st));
	cr_assert(strstr(st.details, "malformed bfill-fence"), "%s", st.details);

	/* A range delete over the whole region leaves the node's records,
	 * and they outlast a restart. */
	Kvrpcpb__DeleteRangeResponse *dr = t_tikv_delete_range(chans[0], &c1, "", 0, NULL, 0,
							       "6:/bfill/lock/x/1/2", &st);
	cr_assert(dr && !dr->region_error && !*dr->error, "%s", dr ? dr->error : st.details);
	kvrpcpb__delete_range_response__free_unpacked(dr, NULL);
	cr_assert_eq(t_tikv_count(chans[0], &c1), 0);
	bf_node_close(nodes[0]);
	nodes[0] = NULL;
	open_node(0, 0);
	cr_assert_not(fenced_ingest(&c1, kvs, 20, "5:/bfill/lock/x/1/2", &st));
	cr_assert(strstr(st.details, "stale fence token"), "%s", st.details);
	dr = t_tikv_delete_range(chans[0], &c1, "", 0, NULL, 0, "3:/bfill/lock/x/1/2", &st);
	cr_assert_null(dr);
	cr_assert(strstr(st.details, "stale fence token"), "%s", st.details);
	t_kvs_free(kvs, 20);
}

/* ---- malformed requests --------------------------------------------------------- */

/* Sends msgs as a Write and asserts UNKNOWN with needle in the text. */
static void write_refused(const bf_rpc_buf *msgs, size_t n, const char *needle)
{
	bf_rpc_status st = t_tikv_raw_stream(chans[0], T_PATH_WRITE, msgs, n, true, NULL);
	cr_assert_eq(st.code, BF_RPC_UNKNOWN, "%s: %s: %s", needle, bf_rpc_status_name(st.code),
		     st.details);
	cr_assert(strstr(st.details, needle), "want \"%s\" in: %s", needle, st.details);
}

Test(node, malformed_writes_get_errors_and_leave_nothing_behind)
{
	start(1, 1, 256 << 10);
	t_ctx c1 = ctx_of(1), stale = c1, ahead = c1;
	t_kv *kvs = t_kvs_make("a", 0, 10), *far = t_kvs_make("z", 0, 1);
	t_kv backwards[2] = { kvs[5], kvs[4] }, mine = { "mbfill/fence", 12, "x", 1 };
	uint8_t uuid[16];
	static const char junk[] = "\xff\xff\xff\xff not protobuf";
	bf_rpc_buf garbage = { (uint8_t *)junk, sizeof(junk) - 1 };

	t_tikv_uuid(uuid);
	bf_rpc_buf meta = t_tikv_write_meta(uuid, 16, &c1);
	bf_rpc_buf batch = t_tikv_write_batch(7, kvs, 10);
	bf_rpc_buf short_uuid = t_tikv_write_meta(uuid, 5, &c1);
	bf_rpc_buf ts0 = t_tikv_write_batch(0, kvs, 10);
	bf_rpc_buf outside = t_tikv_write_batch(7, far, 1);
	bf_rpc_buf unordered = t_tikv_write_batch(7, backwards, 2);
	bf_rpc_buf reserved = t_tikv_write_batch(7, &mine, 1);
	stale.version = 0;
	ahead.version = 9;
	bf_rpc_buf old_meta = t_tikv_write_meta(uuid, 16, &stale);
	bf_rpc_buf new_meta = t_tikv_write_meta(uuid, 16, &ahead);

	write_refused(NULL, 0, "InvalidChunk");
	write_refused(&batch, 1, "InvalidChunk");
	write_refused((bf_rpc_buf[]){ meta, batch, meta }, 3, "InvalidChunk");
	write_refused(&garbage, 1, "malformed WriteRequest");
	write_refused((bf_rpc_buf[]){ meta, garbage }, 2, "malformed WriteRequest");
	write_refused(&short_uuid, 1, "uuid of 5 bytes");
	write_refused((bf_rpc_buf[]){ meta, ts0 }, 2, "invalid commit-ts");
	write_refused((bf_rpc_buf[]){ meta, outside }, 2, "not in region 1");
	write_refused((bf_rpc_buf[]){ meta, unordered }, 2, "out of order");
	write_refused((bf_rpc_buf[]){ meta, reserved }, 2, "node's own prefix");
	write_refused(&old_meta, 1, "RequestTooOld");
	write_refused(&new_meta, 1, "RequestTooNew");

	/* A client that goes away mid-stream. */
	bf_rpc_status st = t_tikv_raw_stream(chans[0], T_PATH_WRITE, (bf_rpc_buf[]){ meta, batch },
					     2, false, NULL);
	cr_assert_eq(st.code, -1);

	/* A message over the node's limit. */
	size_t big_n = 300;
	t_kv *big = calloc(big_n, sizeof(*big));
	static char value[1024];
	for (size_t i = 0; i < big_n; i++)
		big[i] = (t_kv){ kvs[0].key, kvs[0].klen, value, sizeof(value) };
	bf_rpc_buf huge = t_tikv_write_batch(7, big, big_n);
	st = t_tikv_raw_stream(chans[0], T_PATH_WRITE, (bf_rpc_buf[]){ meta, huge }, 2, true, NULL);
	cr_assert_eq(st.code, BF_RPC_RESOURCE_EXHAUSTED, "%s: %s", bf_rpc_status_name(st.code),
		     st.details);
	st = t_tikv_raw_unary(chans[0], T_PATH_MULTI_INGEST, huge.data, huge.len, NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_RESOURCE_EXHAUSTED);

	/* Other methods with bytes that are not their message. */
	const char *unary[] = { T_PATH_MULTI_INGEST, T_PATH_SWITCH_MODE, T_PATH_SCAN,
				T_PATH_BATCH_GET, T_PATH_DELETE_RANGE };
	for (size_t i = 0; i < sizeof(unary) / sizeof(unary[0]); i++) {
		st = t_tikv_raw_unary(chans[0], unary[i], garbage.data, garbage.len, NULL, 0, NULL);
		cr_assert_eq(st.code, BF_RPC_UNKNOWN, "%s: %s", unary[i], st.details);
		cr_assert(strstr(st.details, "malformed"), "%s: %s", unary[i], st.details);
	}
	st = t_tikv_raw_unary(chans[0], "/tikvpb.Tikv/KvPrewrite", "", 0, NULL, 0, NULL);
	cr_assert_eq(st.code, BF_RPC_UNIMPLEMENTED);

	/* Nothing half-written stays, and the node still serves. */
	for (int i = 0; i < 50 && import_files(0); i++)
		bf_sleep_ms(20);
	cr_assert_eq(import_files(0), 0);
	bf_rpc_channel *one[1] = { chans[0] };
	t_tikv_load(one, 1, &c1, kvs, 10);
	cr_assert_eq(t_tikv_count(chans[0], &c1), 10);

	bf_rpc_buf *all[] = { &meta, &batch, &short_uuid, &ts0, &outside, &unordered, &reserved,
			      &old_meta, &new_meta, &huge };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		bf_rpc_buf_free(all[i]);
	free(big);
	t_kvs_free(kvs, 10);
	t_kvs_free(far, 1);
}

/* ---- modes and restarts --------------------------------------------------------- */

Test(node, import_mode_switches_and_times_out)
{
	t_scratch_new("node");
	layout(1, 1);
	bf_node_opts o = { .store_id = 1, .listen = "127.0.0.1:0", .view = &table_view,
			   .import_mode_timeout_ms = 1500 };
	bf_err err;
	char *log = t_path_in(t_scratch_dir, "log"), *text;

	dirs[0] = t_path_in(t_scratch_dir, "s");
	o.data_dir = dirs[0];
	cr_assert_not_null(logs[0] = fopen(log, "w"));
	o.log = logs[0];
	cr_assert_eq(bf_node_open(&o, &nodes[0], &err), 0, "%s", bf_err_text(&err));
	snprintf(view.stores[0].address, sizeof(view.stores[0].address), "127.0.0.1:%d",
		 bf_node_port(nodes[0]));
	chans[0] = t_tikv_channel(view.stores[0].address);
	cr_assert_eq(t_tikv_switch_mode(chans[0], true).code, BF_RPC_OK);
	cr_assert_eq(t_tikv_switch_mode(chans[0], false).code, BF_RPC_OK);
	cr_assert_eq(t_tikv_switch_mode(chans[0], true).code, BF_RPC_OK);
	bf_sleep_ms(3000);
	fflush(logs[0]);
	text = t_read_file(log);
	cr_assert(strstr(text, "import mode on"), "%s", text);
	cr_assert(strstr(text, "import mode off"), "%s", text);
	cr_assert(strstr(text, "import mode timed out"), "%s", text);
	free(text);
	free(log);
}

Test(node, a_restart_removes_half_written_uploads_and_keeps_its_identity)
{
	start(1, 1, 0);
	bf_node_opts o = { .store_id = 1, .listen = "127.0.0.1:0", .view = &table_view,
			   .cluster_uuid = "c-1", .log = logs[0] };
	char *partial = t_path_in(dirs[0], "import/0123.sst.tmp");
	char *whole = t_path_in(dirs[0], "import/4567.sst");
	bf_err err;

	bf_node_close(nodes[0]);
	nodes[0] = NULL;
	fclose(fopen(partial, "w"));
	fclose(fopen(whole, "w"));
	o.data_dir = dirs[0];
	cr_assert_eq(bf_node_open(&o, &nodes[0], &err), 0, "%s", bf_err_text(&err));
	cr_assert_not(t_path_exists(partial), "a half-written upload goes");
	cr_assert(t_path_exists(whole), "a complete upload stays for its ingest");
	bf_node_close(nodes[0]);
	nodes[0] = NULL;

	o.store_id = 2;
	cr_assert_eq(bf_node_open(&o, &nodes[0], &err), BF_ESTATE);
	cr_assert(strstr(err.msg, "store=1"), "%s", err.msg);
	o.store_id = 1;
	o.cluster_uuid = "c-2";
	cr_assert_eq(bf_node_open(&o, &nodes[0], &err), BF_ESTATE);
	free(partial);
	free(whole);
}
