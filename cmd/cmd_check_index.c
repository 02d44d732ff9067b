/*
 * bfill check-index --store DIR --table T --name I: exit 0 only when the
 * index holds exactly the entries its rows call for.
 */
#include "bfill/check.h"
#include "bfill/job.h"
#include "bfill/store.h"
#include "cmd/cli.h"
#include "util/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

static int print_json(const bf_check_result *res, bool ok)
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
	return cli_json_print(o);
}

int cmd_check_index(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, 0, 's' }, { "table", required_argument, 0, 't' },
		{ "name", required_argument, 0, 'n' }, { "mem", required_argument, 0, 'm' },
		{ "tmp-dir", required_argument, 0, 'd' }, { "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	const char *store_dir = NULL, *table = NULL, *name = NULL, *tmp = NULL;
	uint64_t mem = 256ULL << 20;
	bool json = false;
	char tmpdir[PATH_MAX], sortdir[PATH_MAX];
	bf_store *st = NULL;
	bf_check_result res;
	bf_err err = { 0 };
	int c, rc, code;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		switch (c) {
		case 's': store_dir = optarg; break;
		case 't': table = optarg; break;
		case 'n': name = optarg; break;
		case 'm':
			if (!cli_size("--mem", optarg, &mem))
				return BF_EXIT_USAGE;
			break;
		case 'd': tmp = optarg; break;
		case 'j': json = true; break;
		case 'h':
			puts("usage: bfill check-index --store DIR --table T --name I [--mem SIZE] [--tmp-dir DIR] [--json]\n"
			     "Recomputes the index from the rows and compares; exit 0 only when equal.");
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!store_dir || !table || !name)
		return cli_fail(BF_EXIT_USAGE, "--store DIR, --table T and --name I are required");
	if (tmp) {
		snprintf(tmpdir, sizeof(tmpdir), "%s/check-%d", tmp, (int)getpid());
	} else {
		bf_job_default_sort_dir(store_dir, sortdir, sizeof(sortdir));
		snprintf(tmpdir, sizeof(tmpdir), "%s/check-%d", sortdir, (int)getpid());
	}
	rc = bf_store_open(store_dir, BF_STORE_READONLY, &st, &err);
	if (rc == 0)
		rc = bf_check_index(st, NULL, table, name, tmpdir, mem, &res, &err);
	bf_store_close(st);
	if (!tmp) {
		/* Leave no empty sort directory behind. */
		rmdir(sortdir);
	}
	if (rc)
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	bool ok = res.missing == 0 && res.extra == 0 && res.wrong_value == 0;
	code = ok ? BF_EXIT_OK : BF_EXIT_FAIL;
	if (json) {
		if (print_json(&res, ok) != BF_EXIT_OK)
			code = BF_EXIT_FAIL;
	} else {
		printf("%s.%s (%s): %" PRIu64 " rows, %" PRIu64 " expected entries, %" PRIu64 " found: ",
		       table, name, res.index_state, res.rows, res.expected, res.found);
		if (ok)
			puts("OK");
		else
			printf("MISMATCH: %" PRIu64 " missing, %" PRIu64 " extra, %" PRIu64 " wrong value\n",
			       res.missing, res.extra, res.wrong_value);
		for (int i = 0; i < res.nexamples; i++)
			printf("  %s\n", res.examples[i]);
	}
	if (!ok)
		fprintf(stderr, "bfill check-index: index %s.%s does not match its rows\n", table, name);
	return code;
}
