/*
 * bfill cluster init|show|split|transfer-leader: the layout of a cluster
 * of store nodes in etcd (docs/cluster.md). init writes it, show prints it
 * (--json for scripts), split and transfer-leader change it the way TiKV
 * would, so that tests can make a client's region cache stale.
 */
#include "bfill/cluster.h"
#include "bfill/codec.h"
#include "bfill/etcd.h"
#include "cmd/cli.h"
#include "util/endpoints.h"
#include "util/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Region counts beyond this would not fit one etcd Txn anyway. */
#define MAX_REGIONS 100000
#define MAX_TABLES 10000

static const char usage_text[] =
	"usage: bfill cluster init --etcd EP,... --cluster NAME --stores ADDR,ADDR,...\n"
	"                          --regions R --replicas K [--tables T] [--rows N]\n"
	"       bfill cluster show --etcd EP,... --cluster NAME [--json]\n"
	"       bfill cluster split --etcd EP,... --cluster NAME --region ID --key HEX\n"
	"       bfill cluster transfer-leader --etcd EP,... --cluster NAME --region ID --store ID\n"
	"The layout of a cluster of bfill-store nodes, kept in etcd under /bfill/cluster/NAME/.\n"
	"init: stores get ids 1, 2, ... in the order given; the key space is split into R\n"
	"  regions for T sbtest tables (ids from 100, default 1) of N rows each (default\n"
	"  100000): each table's indexes in one region, its rows in the others at even\n"
	"  handle steps; K replicas per region, placed round robin, leaders spread.\n"
	"  Refused when the cluster exists.\n"
	"split: --key is the raw key in hex, strictly inside the region; the right part gets\n"
	"  a new region id, both parts a new version.\n"
	"transfer-leader: --store must hold a peer of the region.\n"
	"--etcd takes host:port, http://host:port or https://host:port, comma-separated.\n"
	CLI_ETCD_SECURITY_HELP;

typedef struct cluster_args {
	const char *etcd;
	bf_etcd_security security; /* --etcd-cacert ... */
	const char *name;
	bf_etcd *client; /* owned, after connect() */
} cluster_args;

/* --etcd (and how it is secured) and --cluster, which every subcommand
 * takes; true when ch was one. */
static bool common_opt(int ch, cluster_args *a)
{
	if (ch == 'e')
		a->etcd = optarg;
	else if (ch == 'c')
		a->name = optarg;
	return ch == 'e' || ch == 'c' || cli_etcd_security_opt(ch, optarg, &a->security);
}

#define COMMON_OPTS                                                                        \
	{ "etcd", required_argument, 0, 'e' }, { "cluster", required_argument, 0, 'c' },  \
	CLI_ETCD_SECURITY_OPTS, { "help", no_argument, 0, 'h' }

/* Checks the common options and makes the etcd client; an exit code. */
static int connect_etcd(cluster_args *a)
{
	bf_err err = { 0 };

	if (!a->etcd)
		return cli_fail(BF_EXIT_USAGE, "--etcd EP,... is required");
	if (!a->name)
		return cli_fail(BF_EXIT_USAGE, "--cluster NAME is required");
	if (!cli_fits("--cluster", a->name, BF_CLUSTER_NAME_MAX))
		return BF_EXIT_USAGE;
	if (bf_endpoints_check(a->etcd, &err))
		return cli_fail(BF_EXIT_USAGE, "--etcd: %s", bf_err_text(&err));
	if (!cli_etcd_security_check(a->etcd, &a->security))
		return BF_EXIT_USAGE;
	bf_etcd_opts eo = { .security = &a->security };
	if (bf_etcd_create(a->etcd, &eo, &a->client, &err))
		return cli_fail(cli_exit_for(err.code), "%s", bf_err_text(&err));
	return BF_EXIT_OK;
}

/* Opens the cluster on a->client; an exit code. */
static int open_cluster(cluster_args *a, bf_cluster **c)
{
	bf_err err = { 0 };
	int rc = bf_cluster_open(a->client, a->name, NULL, c, &err);

	return rc ? cli_fail(cli_exit_for(rc), "%s", bf_err_text(&err)) : BF_EXIT_OK;
}

/* A TiDB key as TiDB's own tools print it ("t100_r42", "t100_i1"), what
 * follows a known prefix in hex; other keys in hex alone. */
static void key_text(const uint8_t *k, size_t n, char *out, size_t cap)
{
	char rest[2 * BF_CLUSTER_KEY_MAX + 1];
	int64_t tid, handle;

	if (n < BF_TABLE_PREFIX_LEN || k[0] != 't') {
		bf_hex_encode(k, n, rest);
		snprintf(out, cap, "%s", rest);
		return;
	}
	tid = bf_codec_get_int(k + 1);
	if (n == BF_RECORD_KEY_LEN && bf_codec_decode_record_key(k, n, &tid, &handle) == 0) {
		snprintf(out, cap, "t%" PRId64 "_r%" PRId64, tid, handle);
	} else if (n >= BF_RECORD_PREFIX_LEN && k[9] == '_' && k[10] == 'r') {
		bf_hex_encode(k + BF_RECORD_PREFIX_LEN, n - BF_RECORD_PREFIX_LEN, rest);
		snprintf(out, cap, "t%" PRId64 "_r%s%s", tid, *rest ? "+" : "", rest);
	} else if (n >= BF_INDEX_PREFIX_LEN && k[9] == '_' && k[10] == 'i') {
		bf_hex_encode(k + BF_INDEX_PREFIX_LEN, n - BF_INDEX_PREFIX_LEN, rest);
		snprintf(out, cap, "t%" PRId64 "_i%" PRId64 "%s%s", tid, bf_codec_get_int(k + 11),
			 *rest ? "+" : "", rest);
	} else {
		bf_hex_encode(k + BF_TABLE_PREFIX_LEN, n - BF_TABLE_PREFIX_LEN, rest);
		snprintf(out, cap, "t%" PRId64 "%s%s", tid, *rest ? "+" : "", rest);
	}
}

/* ---- init ---- */

static int cluster_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_OPTS, { "stores", required_argument, 0, 's' },
		{ "regions", required_argument, 0, 'r' }, { "replicas", required_argument, 0, 'k' },
		{ "tables", required_argument, 0, 't' }, { "rows", required_argument, 0, 'n' },
		{ 0, 0, 0, 0 },
	};
	cluster_args a = { 0 };
	char *stores = NULL, *addrs[BF_CLUSTER_MAX_STORES];
	uint64_t regions = 0, replicas = 0, tables = 1, rows = BF_CLUSTER_ROWS_DEFAULT;
	bf_cluster_init_opts o = { 0 };
	bf_err err = { 0 };
	int ch, nstores = 0, code;
	bool ok = true;

	while (ok && (ch = cli_getopt(argc, argv, longopts)) != -1) {
		if (common_opt(ch, &a))
			continue;
		switch (ch) {
		case 's': stores = optarg; break;
		case 'r': ok = cli_u64_in("--regions", optarg, 1, MAX_REGIONS, NULL, &regions); break;
		case 'k':
			ok = cli_u64_in("--replicas", optarg, 1, BF_CLUSTER_MAX_REPLICAS, NULL, &replicas);
			break;
		case 't': ok = cli_u64_in("--tables", optarg, 1, MAX_TABLES, NULL, &tables); break;
		case 'n': ok = cli_u64_in("--rows", optarg, 1, INT64_MAX, NULL, &rows); break;
		case 'h': fputs(usage_text, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!ok)
		return BF_EXIT_USAGE;
	if (!stores)
		return cli_fail(BF_EXIT_USAGE, "--stores ADDR,ADDR,... is required");
	if (!regions)
		return cli_fail(BF_EXIT_USAGE, "--regions R is required");
	if (!replicas)
		return cli_fail(BF_EXIT_USAGE, "--replicas K is required");
	/* Split the list in place: addresses point into argv. */
	for (char *p = stores, *save = NULL, *tok; (tok = strtok_r(p, ",", &save)); p = NULL) {
		if (nstores == BF_CLUSTER_MAX_STORES)
			return cli_fail(BF_EXIT_USAGE, "--stores: at most %d stores",
					BF_CLUSTER_MAX_STORES);
		addrs[nstores++] = tok;
	}
	if (!nstores)
		return cli_fail(BF_EXIT_USAGE, "--stores: no address in '%s'", stores);
	code = connect_etcd(&a);
	if (code)
		goto out;
	o = (bf_cluster_init_opts){ .store_addrs = (const char *const *)addrs, .nstores = nstores,
				    .nregions = (int)regions, .replicas = (int)replicas,
				    .tables = (int)tables, .rows = rows };
	if (bf_cluster_init(a.client, a.name, &o, &err)) {
		code = cli_fail(cli_exit_for(err.code), "%s", bf_err_text(&err));
		goto out;
	}
	printf("cluster %s: %d store%s, %d region%s, %d replica%s\n", a.name, nstores,
	       nstores > 1 ? "s" : "", (int)regions, regions > 1 ? "s" : "", (int)replicas,
	       replicas > 1 ? "s" : "");
out:
	bf_etcd_destroy(a.client);
	return code;
}

/* ---- show ---- */

static const char *state_name(int state)
{
	static const char *const names[] = { "Up", "Offline", "Tombstone" };
	return state >= 0 && state < 3 ? names[state] : "unknown";
}

/* Key texts of a region's bounds; the buffers hold a whole raw key. */
typedef struct region_text {
	char start_hex[2 * BF_CLUSTER_KEY_MAX + 1], end_hex[2 * BF_CLUSTER_KEY_MAX + 1];
	char start[2 * BF_CLUSTER_KEY_MAX + 64], end[2 * BF_CLUSTER_KEY_MAX + 64];
} region_text;

static void region_texts(const bf_region *r, region_text *t)
{
	bf_hex_encode(r->start, r->start_len, t->start_hex);
	bf_hex_encode(r->end, r->end_len, t->end_hex);
	key_text(r->start, r->start_len, t->start, sizeof(t->start));
	key_text(r->end, r->end_len, t->end, sizeof(t->end));
}

static cJSON *show_json(bf_cluster *c, const bf_cluster_store *st, size_t nst, const bf_region *rs,
			size_t nrs, region_text *t)
{
	cJSON *o = cJSON_CreateObject(), *stores, *regions;

	cJSON_AddStringToObject(o, "cluster", bf_cluster_name(c));
	cJSON_AddStringToObject(o, "uuid", bf_cluster_uuid(c));
	cJSON_AddNumberToObject(o, "replicas", bf_cluster_replicas(c));
	stores = cJSON_AddArrayToObject(o, "stores");
	for (size_t i = 0; i < nst; i++) {
		cJSON *s = cJSON_CreateObject();
		cJSON_AddNumberToObject(s, "id", (double)st[i].id);
		cJSON_AddStringToObject(s, "address", st[i].address);
		cJSON_AddStringToObject(s, "state", state_name(st[i].state));
		cJSON_AddItemToArray(stores, s);
	}
	regions = cJSON_AddArrayToObject(o, "regions");
	for (size_t i = 0; i < nrs; i++) {
		cJSON *r = cJSON_CreateObject(), *peers;
		region_texts(&rs[i], t);
		cJSON_AddNumberToObject(r, "id", (double)rs[i].id);
		/* Raw keys in hex ("" = unbounded), and as TiDB keys. */
		cJSON_AddStringToObject(r, "start", t->start_hex);
		cJSON_AddStringToObject(r, "end", t->end_hex);
		cJSON_AddStringToObject(r, "start_key", t->start);
		cJSON_AddStringToObject(r, "end_key", t->end);
		cJSON_AddNumberToObject(r, "conf_ver", (double)rs[i].conf_ver);
		cJSON_AddNumberToObject(r, "version", (double)rs[i].version);
		peers = cJSON_AddArrayToObject(r, "peers");
		for (int j = 0; j < rs[i].npeers; j++) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddNumberToObject(p, "id", (double)rs[i].peers[j].id);
			cJSON_AddNumberToObject(p, "store_id", (double)rs[i].peers[j].store_id);
			cJSON_AddItemToArray(peers, p);
		}
		cli_json_num_or_null(r, "leader_store", rs[i].leader_store != 0,
				     (double)rs[i].leader_store);
		cJSON_AddItemToArray(regions, r);
	}
	return o;
}

static void show_text(bf_cluster *c, const bf_cluster_store *st, size_t nst, const bf_region *rs,
		      size_t nrs, region_text *t)
{
	printf("cluster %s  uuid %s  replicas %d\n", bf_cluster_name(c), bf_cluster_uuid(c),
	       bf_cluster_replicas(c));
	printf("%zu store%s\n", nst, nst == 1 ? "" : "s");
	for (size_t i = 0; i < nst; i++)
		printf("  store %" PRIu64 "  %s  %s\n", st[i].id, st[i].address,
		       state_name(st[i].state));
	printf("%zu region%s (keys raw, in hex; TiDB's reading first)\n", nrs, nrs == 1 ? "" : "s");
	for (size_t i = 0; i < nrs; i++) {
		region_texts(&rs[i], t);
		printf("  region %" PRIu64 "  epoch conf_ver %" PRIu64 " version %" PRIu64 "  peers",
		       rs[i].id, rs[i].conf_ver, rs[i].version);
		for (int j = 0; j < rs[i].npeers; j++)
			printf("%s%" PRIu64 "@store%" PRIu64, j ? "," : " ", rs[i].peers[j].id,
			       rs[i].peers[j].store_id);
		if (rs[i].leader_store)
			printf("  leader store %" PRIu64 "\n", rs[i].leader_store);
		else
			printf("  leader unknown\n");
		if (rs[i].start_len)
			printf("    start %s (%s)\n", t->start, t->start_hex);
		else
			printf("    start -inf\n");
		if (rs[i].end_len)
			printf("    end   %s (%s)\n", t->end, t->end_hex);
		else
			printf("    end   +inf\n");
	}
}

static int cluster_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_OPTS, { "json", no_argument, 0, 'J' }, { 0, 0, 0, 0 },
	};
	cluster_args a = { 0 };
	bf_cluster *c = NULL;
	bf_cluster_store *st = NULL;
	bf_region *rs = NULL;
	region_text *t = NULL;
	size_t nst = 0, nrs = 0;
	bool json = false;
	bf_err err = { 0 };
	int ch, code;

	while ((ch = cli_getopt(argc, argv, longopts)) != -1) {
		if (common_opt(ch, &a))
			continue;
		switch (ch) {
		case 'J': json = true; break;
		case 'h': fputs(usage_text, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	code = connect_etcd(&a);
	if (code == BF_EXIT_OK)
		code = open_cluster(&a, &c);
	if (code)
		goto out;
	t = malloc(sizeof(*t));
	if (!t || bf_cluster_stores(c, &st, &nst, &err) ||
	    bf_cluster_regions(c, NULL, 0, NULL, 0, &rs, &nrs, &err)) {
		code = cli_fail(BF_EXIT_FAIL, "%s", t ? bf_err_text(&err) : "out of memory");
		goto out;
	}
	if (json)
		code = cli_json_print(show_json(c, st, nst, rs, nrs, t));
	else
		show_text(c, st, nst, rs, nrs, t);
out:
	free(t);
	free(st);
	free(rs);
	bf_cluster_close(c);
	bf_etcd_destroy(a.client);
	return code;
}

/* ---- split, transfer-leader ---- */

static bool parse_id(const char *opt, const char *val, uint64_t *out)
{
	return cli_u64_in(opt, val, 1, INT64_MAX, NULL, out);
}

static int cluster_split(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_OPTS, { "region", required_argument, 0, 'r' },
		{ "key", required_argument, 0, 'k' }, { 0, 0, 0, 0 },
	};
	cluster_args a = { 0 };
	bf_cluster *c = NULL;
	uint8_t *key = malloc(BF_CLUSTER_KEY_MAX);
	size_t klen = 0;
	uint64_t region = 0;
	bf_region right;
	bf_err err = { 0 };
	int ch, code = BF_EXIT_OK;
	bool ok = true;

	if (!key)
		return cli_fail(BF_EXIT_FAIL, "out of memory");
	while (ok && (ch = cli_getopt(argc, argv, longopts)) != -1) {
		if (common_opt(ch, &a))
			continue;
		switch (ch) {
		case 'r': ok = parse_id("--region", optarg, &region); break;
		case 'k':
			long got = strlen(optarg) ? bf_hex_decode(optarg, key, BF_CLUSTER_KEY_MAX) : -1;
			ok = got >= 0;
			klen = ok ? (size_t)got : 0;
			if (!ok)
				cli_fail(BF_EXIT_USAGE, "--key takes a raw key in hex (1 to %d bytes), got '%s'",
					 BF_CLUSTER_KEY_MAX, optarg);
			break;
		case 'h': fputs(usage_text, stdout); goto out;
		default: ok = false; break;
		}
	}
	if (!ok) {
		code = BF_EXIT_USAGE;
		goto out;
	}
	if (!region || !klen) {
		code = cli_fail(BF_EXIT_USAGE, "--region ID and --key HEX are required");
		goto out;
	}
	code = connect_etcd(&a);
	if (code == BF_EXIT_OK)
		code = open_cluster(&a, &c);
	if (code)
		goto out;
	if (bf_cluster_split(c, region, key, klen, &err)) {
		code = cli_fail(cli_exit_for(err.code), "%s", bf_err_text(&err));
		goto out;
	}
	/* Which id the right part got: the layout as it is now. */
	if (bf_cluster_refresh(c, &err) == 0 && bf_cluster_locate(c, key, klen, &right, &err) == 0)
		printf("region %" PRIu64 " split: the right part is region %" PRIu64
		       ", both at version %" PRIu64 "\n", region, right.id, right.version);
	else
		printf("region %" PRIu64 " split\n", region);
out:
	free(key);
	bf_cluster_close(c);
	bf_etcd_destroy(a.client);
	return code;
}

static int cluster_transfer_leader(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_OPTS, { "region", required_argument, 0, 'r' },
		{ "store", required_argument, 0, 's' }, { 0, 0, 0, 0 },
	};
	cluster_args a = { 0 };
	bf_cluster *c = NULL;
	uint64_t region = 0, store = 0;
	bf_err err = { 0 };
	int ch, code;
	bool ok = true;

	while (ok && (ch = cli_getopt(argc, argv, longopts)) != -1) {
		if (common_opt(ch, &a))
			continue;
		switch (ch) {
		case 'r': ok = parse_id("--region", optarg, &region); break;
		case 's': ok = parse_id("--store", optarg, &store); break;
		case 'h': fputs(usage_text, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!ok)
		return BF_EXIT_USAGE;
	if (!region || !store)
		return cli_fail(BF_EXIT_USAGE, "--region ID and --store ID are required");
	code = connect_etcd(&a);
	if (code == BF_EXIT_OK)
		code = open_cluster(&a, &c);
	if (code == BF_EXIT_OK && bf_cluster_transfer_leader(c, region, store, &err))
		code = cli_fail(cli_exit_for(err.code), "%s", bf_err_text(&err));
	if (code == BF_EXIT_OK)
		printf("region %" PRIu64 ": store %" PRIu64 " leads it now\n", region, store);
	bf_cluster_close(c);
	bf_etcd_destroy(a.client);
	return code;
}

int cmd_cluster(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {
		{ "init", cluster_init },
		{ "show", cluster_show },
		{ "split", cluster_split },
		{ "transfer-leader", cluster_transfer_leader },
	};
	static char cmd_name[64];

	if (argc < 2)
		return cli_fail(BF_EXIT_USAGE, "init, show, split or transfer-leader? (see --help)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return BF_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (!strcmp(argv[1], subs[i].name)) {
			/* Messages name the subcommand: "bfill cluster split: ...". */
			snprintf(cmd_name, sizeof(cmd_name), "cluster %s", subs[i].name);
			cli_cmd = cmd_name;
			return subs[i].fn(argc - 1, argv + 1);
		}
	}
	return cli_fail(BF_EXIT_USAGE, "unknown subcommand '%s': init, show, split or transfer-leader",
			argv[1]);
}
