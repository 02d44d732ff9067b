/*
 * bfill gen --store DIR --rows N [--seed S] [--table T] [--threads N]
 *           [--compression none|lz4|zstd] [--json]
 */
#include "bfill/catalog.h"
#include "bfill/gen.h"
#include "bfill/store.h"
#include "cmd/cli.h"
#include "cmd/place.h"
#include "util/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char gen_help[] =
	"usage: bfill gen (--store DIR | --etcd EPS --cluster NAME) --rows N [--seed S] [--table NAME]\n"
	"                 [--threads N] [--compression none|lz4|zstd] [--json] [--quiet]\n"
	"Creates a sysbench sbtest table (id, k, c, pad) with rows 1..N, named sbtest1 unless\n"
	"--table says otherwise: any name TiDB accepts quoted (quotes and backslashes too), but\n"
	"no control character (tab, newline, ...) and no trailing space.\n"
	CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP;

static void gen_progress(uint64_t done, uint64_t total, void *arg)
{
	cli_progress_update(arg, "gen", done, total, NULL);
}

int cli_print_rows_json(const char *table, const bf_gen_stats *s)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "table", table);
	cJSON_AddNumberToObject(o, "table_id", (double)s->table_id);
	cJSON_AddNumberToObject(o, "rows", (double)s->rows);
	cJSON_AddNumberToObject(o, "bytes", (double)s->bytes);
	cJSON_AddNumberToObject(o, "files", (double)s->files);
	cJSON_AddNumberToObject(o, "seconds", cli_round(s->seconds, 3));
	cJSON_AddNumberToObject(o, "rows_per_s",
				s->seconds > 0 ? cli_round((double)s->rows / s->seconds, 0) : 0);
	return cli_json_print(o);
}

int cmd_gen(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS, { "rows", required_argument, 0, 'r' },
		{ "seed", required_argument, 0, 'S' },  { "table", required_argument, 0, 't' },
		{ "threads", required_argument, 0, 'T' }, { "compression", required_argument, 0, 'c' },
		{ "json", no_argument, 0, 'j' }, { "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	cli_place place = { 0 };
	bf_gen_opts o = { .table = "sbtest1", .seed = 1 };
	bool have_rows = false, json = false, quiet = false;
	uint64_t v;
	bf_gen_stats stats;
	cli_progress prog;
	bf_err err = { 0 };
	int c, rc, code = BF_EXIT_OK;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 'r':
			if (!cli_u64("--rows", optarg, &o.rows))
				return BF_EXIT_USAGE;
			have_rows = true;
			break;
		case 'S':
			if (!cli_u64("--seed", optarg, &o.seed))
				return BF_EXIT_USAGE;
			break;
		case 't': o.table = optarg; break;
		case 'T':
			if (!cli_u64_in("--threads", optarg, 0, 64, NULL, &v))
				return BF_EXIT_USAGE;
			o.threads = (int)v;
			break;
		case 'c':
			if (!cli_compression("--compression", optarg, &o.compression))
				return BF_EXIT_USAGE;
			break;
		case 'j': json = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(gen_help, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	if (!have_rows)
		return cli_fail(BF_EXIT_USAGE, "--rows N is required");
	/* The name is not echoed: it may hold the very newline refused. */
	if (!bf_name_valid(o.table))
		return cli_fail(BF_EXIT_USAGE, "--table must be a name TiDB accepts: at most %d bytes of"
				" UTF-8, no control character (tab, newline, ...), no trailing space",
				BF_NAME_MAX - 1);

	rc = cli_place_open(&place, &where, BF_STORE_CREATE, true, 0, &err);
	if (rc) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	cli_progress_init(&prog, quiet || json);
	o.progress = gen_progress;
	o.progress_arg = &prog;
	if (place.st) {
		rc = bf_gen_sbtest(place.st, &o, &stats, &err);
	} else {
		/* Into a cluster: the rows go through its store nodes' Write and
		 * MultiIngest, the table record into its catalog in etcd. */
		bf_gen_place pl = { .catalog = place.env.catalog, .target = place.target,
				    .tmp_parent = place.sort };
		rc = bf_mkdirs(place.sort, &err);
		if (rc == 0)
			rc = bf_gen_sbtest_in(&pl, &o, &stats, &err);
		rmdir(place.work);
		rmdir(place.sort);
	}
	cli_progress_done(&prog);
	if (rc) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	if (json) {
		code = cli_print_rows_json(o.table, &stats);
	} else if (!quiet) {
		char b[32];
		printf("generated %" PRIu64 " rows into %s.%s (table id %" PRId64 ", %s) in %.2f s: %.0f rows/s\n",
		       stats.rows, cli_place_name(&place), o.table, stats.table_id, bf_fmt_bytes(stats.bytes, b, sizeof(b)),
		       stats.seconds, stats.seconds > 0 ? (double)stats.rows / stats.seconds : 0);
	}
out:
	cli_place_close(&place);
	return code;
}
