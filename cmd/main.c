/*
 * bfill: the command-line entry point. Dispatches to a subcommand.
 */
#include "cmd/cli.h"
#include "rpc/rpc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *args, *summary;
} commands[] = {
	{ "gen", cmd_gen, "--store DIR --rows N [--seed S] [--table T] [--json]", "load a sysbench table" },
	{ "create-table", cmd_create_table, "--store DIR --table T --schema 'id BIGINT PRIMARY KEY, ...'",
	  "create a table of your own" },
	{ "load", cmd_load, "--store DIR --table T --csv FILE [--header]", "load a CSV file into a table" },
	{ "dump", cmd_dump, "--store DIR --table T [--limit N]", "print rows as TSV" },
	{ "add-index", cmd_add_index, "--store DIR --table T --name I --columns a[,b] ...",
	  "build indexes, or --resume a job" },
	{ "status", cmd_status, "--store DIR [--job ID] [--json]", "show jobs" },
	{ "check-index", cmd_check_index, "--store DIR --table T --name I [--json]",
	  "verify an index against the rows" },
	{ "drop-index", cmd_drop_index, "--store DIR --table T --name I", "remove a built index" },
	{ "cancel", cmd_cancel, "--store DIR --job ID", "roll back an unfinished job" },
	{ "worker", cmd_worker, "--etcd EP,... --cluster NAME [--mem SIZE] ...",
	  "work on a cluster's jobs with other workers" },
	{ "cluster", cmd_cluster, "init|show|split|transfer-leader --etcd EP,... ...",
	  "the layout of a cluster of store nodes" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: bfill <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %-54s %s\n", commands[i].name, commands[i].args, commands[i].summary);
	fprintf(f, "\nWhere --store DIR is shown, --etcd EP,... --cluster NAME works on a cluster of\n"
		   "bfill-store nodes instead; --etcd-cacert and --cacert (with --cert, --key) make\n"
		   "those connections TLS (docs/security.md).\n"
		   "bfill <command> --help shows a command's options.\n");
}

int main(int argc, char **argv)
{
	/* A vanished peer must be an error return, not a process kill. */
	signal(SIGPIPE, SIG_IGN);
	/* Every error is one line of bfill's: gRPC's own (one per failed
	 * TLS handshake, say) only with GRPC_VERBOSITY set. */
	bf_rpc_quiet_library_log(stderr);
	if (argc < 2) {
		usage(stderr);
		return BF_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return cli_finish(BF_EXIT_OK);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[1], commands[i].name)) {
			cli_cmd = commands[i].name;
			return cli_finish(commands[i].fn(argc - 1, argv + 1));
		}
	}
	fprintf(stderr, "bfill: unknown command '%s' (try bfill --help)\n", argv[1]);
	return BF_EXIT_USAGE;
}
