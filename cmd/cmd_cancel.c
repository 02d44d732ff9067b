/*
 * bfill cancel (--store DIR | --etcd EPS --cluster NAME) --job ID: roll
 * back an unfinished job.
 * bfill drop-index (--store DIR | --etcd EPS --cluster NAME) --table T
 * --name I: remove an index.
 */
#include "bfill/job.h"
#include "cmd/cli.h"
#include "cmd/place.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

/* Runs a cancel (table NULL) or a drop in the place the options name.
 * A store nearly full from a failed attempt is opened all the same: these
 * are what give the space back. */
static int in_place(const cli_where *w, int64_t job_id, const char *table, const char *name)
{
	cli_place p;
	bf_err err = { 0 };
	int rc = cli_place_open(&p, w, BF_STORE_RECLAIM, true, 0, &err);

	if (rc == 0)
		rc = table ? bf_index_drop_in(&p.env, table, name, &err)
			   : bf_job_cancel_in(&p.env, job_id, &err);
	cli_place_close(&p);
	if (rc)
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	return BF_EXIT_OK;
}

int cmd_cancel(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS, { "job", required_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	uint64_t id = 0;
	int c, code;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 'j':
			if (!cli_u64("--job", optarg, &id))
				return BF_EXIT_USAGE;
			break;
		case 'h':
			puts("usage: bfill cancel (--store DIR | --etcd EPS --cluster NAME) --job ID\n"
			     "Deletes an unfinished job's index entries and sort files and drops its indexes.");
			fputs(CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP, stdout);
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!id)
		return cli_fail(BF_EXIT_USAGE, "--job ID is required");
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	code = in_place(&where, (int64_t)id, NULL, NULL);
	if (code == BF_EXIT_OK)
		printf("job %" PRIu64 " cancelled\n", id);
	return code;
}

int cmd_drop_index(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS, { "table", required_argument, 0, 't' },
		{ "name", required_argument, 0, 'n' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	const char *table = NULL, *name = NULL;
	int c;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 't': table = optarg; break;
		case 'n': name = optarg; break;
		case 'h':
			puts("usage: bfill drop-index (--store DIR | --etcd EPS --cluster NAME) --table T --name I");
			fputs(CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP, stdout);
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!table || !name)
		return cli_fail(BF_EXIT_USAGE, "--table T and --name I are required");
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	return in_place(&where, 0, table, name);
}
