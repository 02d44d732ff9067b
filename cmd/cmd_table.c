/*
 * bfill create-table (--store DIR | --etcd EPS --cluster NAME) --table T --schema '...'
 * bfill load         (--store DIR | --etcd EPS --cluster NAME) --table T --csv FILE
 *                    [--header] [--mem SIZE] [--compression none|lz4|zstd] [--json] [--quiet]
 */
#include "bfill/table.h"
#include "cmd/cli.h"
#include "cmd/place.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char create_help[] =
	"usage: bfill create-table (--store DIR | --etcd EPS --cluster NAME) --table T\n"
	"                          --schema 'id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), ...' [--json]\n"
	"Creates an empty table. Types: TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT (each may be\n"
	"UNSIGNED), CHAR(n), VARCHAR(n), DOUBLE, DATETIME[(fsp)], DECIMAL(p[,s]); a column may be\n"
	"NOT NULL. A signed integer PRIMARY KEY becomes the row's handle; without one, rows get a\n"
	"hidden _tidb_rowid. Load rows with bfill load, then build indexes with bfill add-index.\n"
	CLI_ETCD_SECURITY_HELP;

static const char load_help[] =
	"usage: bfill load (--store DIR | --etcd EPS --cluster NAME) --table T --csv FILE\n"
	"                  [--header] [--mem SIZE] [--compression none|lz4|zstd] [--json] [--quiet]\n"
	"Loads a CSV file (RFC 4180; FILE - reads standard input) into an empty table without\n"
	"indexes, in one atomic step: every row or none. Fields are the table's columns in order,\n"
	"or as the first line names them with --header. \\N or an empty unquoted field is NULL.\n"
	"--mem bounds the memory that sorts the rows (default 256M).\n"
	CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP;

static int print_table_json(const bf_table *t)
{
	cJSON *o = cJSON_CreateObject(), *cols = cJSON_AddArrayToObject(o, "columns");
	char type[32];

	cJSON_AddStringToObject(o, "table", t->name);
	cJSON_AddNumberToObject(o, "table_id", (double)t->id);
	cJSON_AddStringToObject(o, "handle",
				t->handle_col >= 0 ? t->cols[t->handle_col].name : BF_ROWID_NAME);
	for (int i = 0; i < t->ncols; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", t->cols[i].name);
		cJSON_AddStringToObject(c, "type", bf_coltype_format(&t->cols[i], type, sizeof(type)));
		cJSON_AddBoolToObject(c, "not_null", t->cols[i].not_null);
		cJSON_AddItemToArray(cols, c);
	}
	return cli_json_print(o);
}

int cmd_create_table(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS,
		{ "table", required_argument, 0, 't' }, { "schema", required_argument, 0, 'S' },
		{ "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	cli_place place = { 0 };
	const char *name = NULL, *schema = NULL;
	bool json = false;
	bf_table t;
	bf_err err = { 0 };
	int c, code = BF_EXIT_OK;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 't': name = optarg; break;
		case 'S': schema = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(create_help, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	if (!name || !schema)
		return cli_fail(BF_EXIT_USAGE, "--table T and --schema '...' are required");
	/* A schema that cannot be read is a usage error, found before any work. */
	if (bf_schema_parse(name, schema, &t, &err))
		return cli_fail(BF_EXIT_USAGE, "%s", bf_err_text(&err));
	if (cli_place_open(&place, &where, BF_STORE_CREATE, false, 0, &err) ||
	    bf_table_create_in(place.env.catalog, &t, &err)) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	if (json)
		code = print_table_json(&t);
	else
		printf("created table %s.%s (table id %" PRId64 "): %d columns, handle %s\n",
		       cli_place_name(&place), t.name, t.id, t.ncols,
		       t.handle_col >= 0 ? t.cols[t.handle_col].name : BF_ROWID_NAME);
out:
	cli_place_close(&place);
	return code;
}

static void load_progress(uint64_t done, void *arg)
{
	cli_progress_update(arg, "load", done, 0, NULL);
}

int cmd_load(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS,
		{ "table", required_argument, 0, 't' }, { "csv", required_argument, 0, 'f' },
		{ "header", no_argument, 0, 'H' }, { "mem", required_argument, 0, 'm' },
		{ "compression", required_argument, 0, 'c' }, { "json", no_argument, 0, 'j' },
		{ "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	cli_place place = { 0 };
	const char *table = NULL, *path = NULL;
	bf_csv_opts csv = { 0 };
	bf_load_opts lo = { 0 };
	bool json = false, quiet = false;
	bf_gen_stats stats;
	cli_progress prog;
	bf_err err = { 0 };
	int c, rc, code = BF_EXIT_OK;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 't': table = optarg; break;
		case 'f': path = optarg; break;
		case 'H': csv.header = true; break;
		case 'm':
			if (!cli_mem("--mem", optarg, &lo.mem_bytes))
				return BF_EXIT_USAGE;
			break;
		case 'c':
			if (!cli_compression("--compression", optarg, &lo.compression))
				return BF_EXIT_USAGE;
			break;
		case 'j': json = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(load_help, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	if (!table || !path)
		return cli_fail(BF_EXIT_USAGE, "--table T and --csv FILE are required");
	if (strcmp(path, "-") && access(path, R_OK))
		return cli_fail(BF_EXIT_USAGE, "--csv %s: %s", path, strerror(errno));

	rc = cli_place_open(&place, &where, 0, true, 0, &err);
	if (rc) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	cli_progress_init(&prog, quiet || json);
	lo.progress = load_progress;
	lo.progress_arg = &prog;
	bf_gen_place pl = { .catalog = place.env.catalog, .target = place.target,
			    .tmp_parent = place.sort };
	if (place.st)
		bf_gen_place_store(place.st, place.target, &pl);
	rc = place.st ? 0 : bf_mkdirs(place.sort, &err);
	if (rc == 0)
		rc = bf_load_csv(&pl, table, path, &csv, &lo, &stats, &err);
	if (!place.st) {
		rmdir(place.work);
		rmdir(place.sort);
	}
	cli_progress_done(&prog);
	if (rc) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	if (json) {
		code = cli_print_rows_json(table, &stats);
	} else if (!quiet) {
		char b[32];
		printf("loaded %" PRIu64 " rows into %s.%s (%s) in %.2f s: %.0f rows/s\n", stats.rows,
		       cli_place_name(&place), table, bf_fmt_bytes(stats.bytes, b, sizeof(b)),
		       stats.seconds, stats.seconds > 0 ? (double)stats.rows / stats.seconds : 0);
	}
out:
	cli_place_close(&place);
	return code;
}
