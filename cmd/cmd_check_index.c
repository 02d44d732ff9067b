/*
 * bfill check-index (--store DIR | --etcd EPS --cluster NAME) --table T
 * --name I: exit 0 only when the index holds exactly the entries its rows
 * call for. On a cluster every replica is checked: each region's k-th peer
 * for k = 1..replicas.
 */
#include "bfill/check.h"
#include "bfill/job.h"
#include "bfill/store.h"
#include "cmd/cli.h"
#include "cmd/place.h"
#include "util/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

static cJSON *result_json(const bf_check_result *res, bool ok)
{
	cJSON *o = cJSON_CreateObject(), *examples;

	cJSON_AddBoolToObject(o, "ok", ok);
	cJSON_AddStringToObject(o, "state", res->index_state);
	cJSON_AddNumberToObject(o, "rows", (double)res->rows);
	cJSON_AddNumberToObject(o, "expected", (double)res->expected);
	cJSON_AddNumberToObject(o, "found", (double)res->found);
	cJSON_AddNumberToObject(o, "missing", (double)res->missing);
	cJSON_AddNumberToObject(o, "extra", (double)res->extra);
	cJSON_AddNumberToObject(o, "wrong_value", (double)res->wrong_value);
	examples = cJSON_AddArrayToObject(o, "examples");
	for (int i = 0; i < res->nexamples; i++)
		cJSON_AddItemToArray(examples, cJSON_CreateString(res->examples[i]));
	return o;
}

static bool result_ok(const bf_check_result *res)
{
	return res->missing == 0 && res->extra == 0 && res->wrong_value == 0;
}

static void print_text(const char *table, const char *name, const char *replica,
		       const bf_check_result *res)
{
	printf("%s.%s (%s)%s: %" PRIu64 " rows, %" PRIu64 " expected entries, %" PRIu64 " found: ",
	       table, name, res->index_state, replica, res->rows, res->expected, res->found);
	if (result_ok(res))
		puts("OK");
	else
		printf("MISMATCH: %" PRIu64 " missing, %" PRIu64 " extra, %" PRIu64 " wrong value\n",
		       res->missing, res->extra, res->wrong_value);
	for (int i = 0; i < res->nexamples; i++)
		printf("  %s\n", res->examples[i]);
}

/* One check of replica `replica` (0: a local store); the place is opened
 * and closed here. */
static int check_one(const cli_where *w, int replica, const char *table, const char *name,
		     const char *tmp, uint64_t mem, bf_check_result *res, int *replicas,
		     bf_err *err)
{
	char tmpdir[PATH_MAX + 32];
	cli_place p;
	int rc = cli_place_open(&p, w, BF_STORE_READONLY, true, replica, err);

	if (rc == 0) {
		*replicas = p.cluster ? bf_cluster_replicas(p.cluster) : 0;
		snprintf(tmpdir, sizeof(tmpdir), "%s/check-%d", tmp ? tmp : p.sort, (int)getpid());
		rc = bf_check_index_in(p.env.catalog, p.target, table, name, tmpdir, mem, res, err);
		/* Leave no empty sort directory behind. */
		if (!tmp)
			rmdir(p.sort);
	}
	cli_place_close(&p);
	return rc;
}

int cmd_check_index(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS, { "table", required_argument, 0, 't' },
		{ "name", required_argument, 0, 'n' }, { "mem", required_argument, 0, 'm' },
		{ "tmp-dir", required_argument, 0, 'd' }, { "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	const char *table = NULL, *name = NULL, *tmp = NULL;
	uint64_t mem = 256ULL << 20;
	bool json = false, all_ok = true;
	bf_check_result res;
	bf_err err = { 0 };
	cJSON *list = NULL;
	char label[32];
	int c, rc, code = BF_EXIT_OK, replicas = 0;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 't': table = optarg; break;
		case 'n': name = optarg; break;
		case 'm':
			if (!cli_size("--mem", optarg, &mem))
				return BF_EXIT_USAGE;
			break;
		case 'd': tmp = optarg; break;
		case 'j': json = true; break;
		case 'h':
			puts("usage: bfill check-index (--store DIR | --etcd EPS --cluster NAME) --table T --name I\n"
			     "                         [--mem SIZE] [--tmp-dir DIR] [--json]\n"
			     "Recomputes the index from the rows and compares; exit 0 only when equal.\n"
			     "On a cluster every replica is read and compared.");
			fputs(CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP, stdout);
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!table || !name)
		return cli_fail(BF_EXIT_USAGE, "--table T and --name I are required");
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	/* A store is checked once; a cluster once per replica (the first
	 * check says how many there are). */
	for (int k = where.cluster ? 1 : 0; k == 0 || k <= (replicas ? replicas : 1); k++) {
		rc = check_one(&where, k, table, name, tmp, mem, &res, &replicas, &err);
		if (rc) {
			cJSON_Delete(list);
			return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		}
		bool ok = result_ok(&res);
		all_ok = all_ok && ok;
		snprintf(label, sizeof(label), k ? " replica %d" : "", k);
		if (json && !where.cluster) {
			code = cli_json_print(result_json(&res, ok));
		} else if (json) {
			if (!list)
				list = cJSON_CreateArray();
			cJSON *o = result_json(&res, ok);
			cJSON_AddNumberToObject(o, "replica", k);
			cJSON_AddItemToArray(list, o);
		} else {
			print_text(table, name, label, &res);
		}
		if (!where.cluster)
			break;
	}
	if (list) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "ok", all_ok);
		cJSON_AddItemToObject(o, "replicas", list);
		code = cli_json_print(o);
	}
	if (!all_ok) {
		fprintf(stderr, "bfill check-index: index %s.%s does not match its rows\n", table, name);
		code = BF_EXIT_FAIL;
	}
	return code;
}
