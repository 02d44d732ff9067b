/*
 * `bfill cluster init|show|split|transfer-leader` as a user runs them,
 * against a real etcd: the layout init writes and show prints (text and
 * JSON), a split and a leader transfer seen through show, a second init
 * refused, and bad usage or an unreachable etcd as one line on stderr
 * with exit 2 or 1. The test process itself never speaks gRPC.
 */
#include "bfill/cluster.h"
#include "bfill/codec.h"
#include "tests/support/etcd.h"
#include "tests/support/support.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORES "127.0.0.1:20160,127.0.0.1:20161,127.0.0.1:20162"

static t_etcd *etcd_srv;

static void up(void)
{
	t_need_bfill();
	etcd_srv = t_etcd_start(1);
}

static void down(void)
{
	t_etcd_destroy(etcd_srv);
	etcd_srv = NULL;
	t_etcd_stop_all();
}

TestSuite(cli_cluster, .init = up, .fini = down, .timeout = 60);

static const char *eps(void)
{
	return t_etcd_endpoints(etcd_srv);
}

static void init_ok(const char *name, int regions, int replicas, const char *extra)
{
	t_run r = t_bfillf("cluster init --etcd %s --cluster %s --stores %s --regions %d "
			   "--replicas %d %s",
			   eps(), name, STORES, regions, replicas, extra);
	cr_assert_eq(r.status, 0, "init: %s", r.err);
	char want[128];
	snprintf(want, sizeof(want), "cluster %s: 3 stores, %d regions, %d replica%s\n", name,
		 regions, replicas, replicas > 1 ? "s" : "");
	cr_assert_str_eq(r.out, want);
	cr_assert_str_eq(r.err, "");
	t_run_free(&r);
}

static cJSON *show(const char *name)
{
	return t_bfill_jsonf("cluster show --etcd %s --cluster %s --json", eps(), name);
}

/* Region id of `show`'s JSON; borrowed. */
static const cJSON *region(const cJSON *doc, uint64_t id)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, t_json_field(doc, "regions"))
		if ((uint64_t)t_json_num(r, "id") == id)
			return r;
	cr_assert_fail("no region %" PRIu64 " in the output", id);
	return NULL;
}

static void hex(const uint8_t *k, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", k[i]);
}

Test(cli_cluster, init_then_show_split_and_transfer_leader)
{
	uint8_t key[BF_RECORD_KEY_LEN];
	char key_hex[2 * BF_RECORD_KEY_LEN + 1];

	init_ok("c1", 4, 3, "--rows 900");
	cJSON *doc = show("c1");
	cr_assert_str_eq(t_json_str(doc, "cluster"), "c1");
	cr_assert_eq(t_json_num(doc, "replicas"), 3);
	const cJSON *stores = t_json_field(doc, "stores");
	cr_assert_eq(cJSON_GetArraySize(stores), 3);
	cr_assert_str_eq(t_json_str(cJSON_GetArrayItem(stores, 1), "address"), "127.0.0.1:20161");
	cr_assert_str_eq(t_json_str(cJSON_GetArrayItem(stores, 1), "state"), "Up");
	const cJSON *regions = t_json_field(doc, "regions");
	cr_assert_eq(cJSON_GetArraySize(regions), 4);
	/* Indexes of table 100, then its rows in three slices of 300. */
	cr_assert_str_eq(t_json_str(region(doc, 1), "start"), "");
	cr_assert_str_eq(t_json_str(region(doc, 1), "end_key"), "t100_r");
	cr_assert_str_eq(t_json_str(region(doc, 2), "end_key"), "t100_r301");
	cr_assert_str_eq(t_json_str(region(doc, 3), "end_key"), "t100_r601");
	cr_assert_str_eq(t_json_str(region(doc, 4), "end"), "");
	for (uint64_t id = 1; id <= 4; id++) {
		const cJSON *r = region(doc, id);
		if (id > 1)
			cr_assert_str_eq(t_json_str(r, "start"), t_json_str(region(doc, id - 1), "end"));
		cr_assert_eq(t_json_num(r, "version"), 1);
		cr_assert_eq(t_json_num(r, "conf_ver"), 1);
		const cJSON *peers = t_json_field(r, "peers");
		cr_assert_eq(cJSON_GetArraySize(peers), 3);
		cr_assert_eq(t_json_num(r, "leader_store"),
			     t_json_num(cJSON_GetArrayItem(peers, 0), "store_id"));
	}
	double follower = t_json_num(cJSON_GetArrayItem(t_json_field(region(doc, 3), "peers"), 1),
				     "store_id");
	cJSON_Delete(doc);

	/* Split region 3 (rows 301..600) at handle 450. */
	bf_codec_record_key(key, 100, 450);
	hex(key, sizeof(key), key_hex);
	t_run r = t_bfillf("cluster split --etcd %s --cluster c1 --region 3 --key %s", eps(), key_hex);
	cr_assert_eq(r.status, 0, "split: %s", r.err);
	cr_assert_str_eq(r.out, "region 3 split: the right part is region 5, both at version 2\n");
	t_run_free(&r);
	r = t_bfillf("cluster transfer-leader --etcd %s --cluster c1 --region 5 --store %d", eps(),
		     (int)follower);
	cr_assert_eq(r.status, 0, "transfer-leader: %s", r.err);
	t_run_free(&r);

	doc = show("c1");
	cr_assert_eq(cJSON_GetArraySize(t_json_field(doc, "regions")), 5);
	cr_assert_str_eq(t_json_str(region(doc, 3), "end"), key_hex);
	cr_assert_str_eq(t_json_str(region(doc, 5), "start"), key_hex);
	cr_assert_str_eq(t_json_str(region(doc, 5), "start_key"), "t100_r450");
	cr_assert_str_eq(t_json_str(region(doc, 5), "end_key"), "t100_r601");
	cr_assert_eq(t_json_num(region(doc, 3), "version"), 2);
	cr_assert_eq(t_json_num(region(doc, 5), "version"), 2);
	cr_assert_eq(t_json_num(region(doc, 5), "leader_store"), follower);
	cr_assert_eq(t_json_num(region(doc, 2), "version"), 1);
	cJSON_Delete(doc);

	/* The text form: every store and region, unbounded ends named. */
	r = t_bfillf("cluster show --etcd %s --cluster c1", eps());
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "store 2  127.0.0.1:20161  Up"), "%s", r.out);
	cr_assert(strstr(r.out, "5 regions"), "%s", r.out);
	cr_assert(strstr(r.out, "start -inf"), "%s", r.out);
	cr_assert(strstr(r.out, "end   +inf"), "%s", r.out);
	cr_assert(strstr(r.out, "start t100_r450 ("), "%s", r.out);
	cr_assert(strstr(r.out, key_hex), "%s", r.out);
	t_run_free(&r);
}

Test(cli_cluster, a_second_init_is_refused)
{
	init_ok("twice", 2, 1, "");
	t_run r = t_bfillf("cluster init --etcd %s --cluster twice --stores 127.0.0.1:1 --regions 3 "
			   "--replicas 1", eps());
	t_expect_cli_error(&r, 1, "bfill cluster init: ", "second init", "already exists", NULL);
	cJSON *doc = show("twice");
	cr_assert_eq(cJSON_GetArraySize(t_json_field(doc, "regions")), 2);
	cr_assert_eq(cJSON_GetArraySize(t_json_field(doc, "stores")), 3);
	cJSON_Delete(doc);
}

Test(cli_cluster, bad_usage_is_one_line_and_exit_2)
{
	static const struct {
		const char *args, *prefix, *says;
	} cases[] = {
		{ "", "bfill cluster: ", "init, show, split or transfer-leader" },
		{ "grow", "bfill cluster: ", "unknown subcommand 'grow'" },
		{ "show --cluster x", "bfill cluster show: ", "--etcd EP,... is required" },
		{ "show --etcd 127.0.0.1:1", "bfill cluster show: ", "--cluster NAME is required" },
		{ "show --etcd nohost --cluster x", "bfill cluster show: ", "--etcd: " },
		{ "show --etcd %s --cluster a/b", "bfill cluster show: ", "only letters, digits" },
		{ "show --etcd %s --cluster x --bogus", "bfill cluster show: ", "unknown option" },
		{ "init --etcd %s --cluster x --stores " STORES " --regions 2",
		  "bfill cluster init: ", "--replicas K is required" },
		{ "init --etcd %s --cluster x --stores " STORES " --regions 0 --replicas 1",
		  "bfill cluster init: ", "--regions must be 1.." },
		{ "init --etcd %s --cluster x --stores 127.0.0.1:1 --regions 2 --replicas 2",
		  "bfill cluster init: ", "replicas must be 1..1" },
		{ "init --etcd %s --cluster x --stores nohost --regions 2 --replicas 1",
		  "bfill cluster init: ", "'nohost' is not host:port" },
		{ "split --etcd %s --cluster x --region 1 --key 7g", "bfill cluster split: ",
		  "--key takes a raw key in hex" },
		{ "split --etcd %s --cluster x --region 1", "bfill cluster split: ",
		  "--region ID and --key HEX are required" },
		{ "transfer-leader --etcd %s --cluster x --region one --store 1",
		  "bfill cluster transfer-leader: ", "--region must be 1.." },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char args[512], what[32];
		snprintf(args, sizeof(args), cases[i].args, eps());
		snprintf(what, sizeof(what), "case %zu", i);
		t_run r = t_bfillf("cluster %s", args);
		t_expect_cli_error(&r, 2, cases[i].prefix, what, cases[i].says, NULL);
	}

	/* Wrong for the layout there is: usage too. */
	init_ok("lay", 3, 2, "");
	t_run r = t_bfillf("cluster split --etcd %s --cluster lay --region 2 --key 00", eps());
	t_expect_cli_error(&r, 2, "bfill cluster split: ", "key outside the region",
			   "not strictly inside region 2", NULL);
	/* Region 1's peers are on stores 1 and 2. */
	r = t_bfillf("cluster transfer-leader --etcd %s --cluster lay --region 1 --store 3", eps());
	t_expect_cli_error(&r, 2, "bfill cluster transfer-leader: ", "not a peer",
			   "store 3 holds no peer of region 1", NULL);
}

Test(cli_cluster, failures_are_one_line_and_exit_1)
{
	t_run r = t_bfillf("cluster show --etcd %s --cluster nothere", eps());
	t_expect_cli_error(&r, 1, "bfill cluster show: ", "missing cluster", "does not exist",
			   "bfill cluster init makes it");
	init_ok("gone", 2, 1, "");
	r = t_bfillf("cluster transfer-leader --etcd %s --cluster gone --region 9 --store 1", eps());
	t_expect_cli_error(&r, 1, "bfill cluster transfer-leader: ", "missing region", "no region 9",
			   NULL);
	r = t_bfillf("cluster show --etcd %s --cluster gone", t_etcd_dead_endpoint());
	t_expect_cli_error(&r, 1, "bfill cluster show: ", "etcd unreachable", "UNAVAILABLE", NULL);
}
