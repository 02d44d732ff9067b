/*
 * bfill cancel --store DIR --job ID: roll back an unfinished job.
 * bfill drop-index --store DIR --table T --name I: remove a built index.
 */
#include "bfill/job.h"
#include "cmd/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

int cmd_cancel(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, 0, 's' }, { "job", required_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	const char *store_dir = NULL;
	uint64_t id = 0;
	bf_store *st = NULL;
	bf_err err = { 0 };
	int c, rc;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		switch (c) {
		case 's': store_dir = optarg; break;
		case 'j':
			if (!cli_u64("--job", optarg, &id))
				return BF_EXIT_USAGE;
			break;
		case 'h':
			puts("usage: bfill cancel --store DIR --job ID\n"
			     "Deletes an unfinished job's index entries and sort files and drops its indexes.");
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!store_dir || !id)
		return cli_fail(BF_EXIT_USAGE, "--store DIR and --job ID are required");
	rc = bf_store_open(store_dir, BF_STORE_RECLAIM, &st, &err);
	if (rc == 0)
		rc = bf_job_cancel(st, NULL, (int64_t)id, &err);
	bf_store_close(st);
	if (rc)
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	printf("job %" PRIu64 " cancelled\n", id);
	return BF_EXIT_OK;
}

/* bfill drop-index --store DIR --table T --name I */
int cmd_drop_index(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, 0, 's' }, { "table", required_argument, 0, 't' },
		{ "name", required_argument, 0, 'n' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	const char *store_dir = NULL, *table = NULL, *name = NULL;
	bf_store *st = NULL;
	bf_err err = { 0 };
	int c, rc;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		switch (c) {
		case 's': store_dir = optarg; break;
		case 't': table = optarg; break;
		case 'n': name = optarg; break;
		case 'h':
			puts("usage: bfill drop-index --store DIR --table T --name I");
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!store_dir || !table || !name)
		return cli_fail(BF_EXIT_USAGE, "--store DIR, --table T and --name I are required");
	rc = bf_store_open(store_dir, BF_STORE_RECLAIM, &st, &err);
	if (rc == 0)
		rc = bf_index_drop(st, NULL, table, name, &err);
	bf_store_close(st);
	if (rc)
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	return BF_EXIT_OK;
}
