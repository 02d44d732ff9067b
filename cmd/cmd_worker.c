/*
 * bfill worker --etcd EPS --cluster NAME: a long-running process that takes
 * subtasks of the cluster's jobs (DESIGN §7a, include/bfill/worker.h) until
 * SIGTERM or SIGINT, which make it checkpoint its subtask, give it back
 * and leave.
 */
#include "bfill/worker.h"
#include "cmd/cli.h"
#include "cmd/place.h"
#include "util/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char worker_help[] =
	"usage: bfill worker --etcd EPS --cluster NAME [--mem SIZE] [--sort-dir DIR]\n"
	"                    [--threads N] [--import-every SIZE] [--name NAME] [--job ID]\n"
	"                    [--lease-ttl S] [--quiet]\n"
	"                    [--etcd-cacert FILE [--etcd-cert FILE --etcd-key FILE]]\n"
	"                    [--cacert FILE [--cert FILE --key FILE]]\n"
	"Works on the cluster's add-index jobs: claims a subtask (a range of the table)\n"
	"under its lease in etcd, scans it from the store nodes, sorts it here and imports\n"
	"it under the job's lock, checkpointing after every import; then the next one.\n"
	"Any number of workers, on any machines that reach the cluster and its etcd, share\n"
	"a job. A worker cut off from etcd waits and carries on; one killed loses its\n"
	"subtask to another after --lease-ttl (default 10 s), which resumes it from its\n"
	"checkpoint. SIGTERM/SIGINT: checkpoint, give the subtask back, exit 0.\n"
	"--name (default host:pid) names the worker in status; --job works on one job only.\n"
	"Per subtask, as add-index: --mem (default: the job's), --sort-dir (default\n"
	"./bfill-<cluster>.sort), --threads (default: cores), --import-every (the job's).\n"
	"Prints one line on stderr for everything it does or waits for (--quiet: none).\n"
	CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP
	"Exit status: 0 stopped by a signal, 1 could not start, 2 bad usage.\n";

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void log_line(const char *line, void *arg)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	(void)arg;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(stderr, "%s bfill worker: %s\n", when, line);
}

int cmd_worker(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS,
		{ "mem", required_argument, 0, 'm' }, { "sort-dir", required_argument, 0, 'd' },
		{ "threads", required_argument, 0, 'w' },
		{ "import-every", required_argument, 0, 'I' }, { "name", required_argument, 0, 'n' },
		{ "job", required_argument, 0, 'j' }, { "lease-ttl", required_argument, 0, 'T' },
		{ "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	cli_place place;
	bf_worker_opts o = { 0 };
	bf_worker_result res;
	bf_err err = { 0 };
	uint64_t v;
	bool quiet = false;
	int c, rc;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 'm':
			if (!cli_mem("--mem", optarg, &o.mem))
				return BF_EXIT_USAGE;
			break;
		case 'd':
			if (!cli_fits("--sort-dir", optarg, PATH_MAX))
				return BF_EXIT_USAGE;
			o.sort_dir = optarg;
			break;
		case 'w':
			if (!cli_u64_in("--threads", optarg, 1, 64, NULL, &v))
				return BF_EXIT_USAGE;
			o.threads = (int)v;
			break;
		case 'I':
			if (!cli_size("--import-every", optarg, &o.import_every))
				return BF_EXIT_USAGE;
			break;
		case 'n':
			if (!*optarg || strchr(optarg, '/') || strlen(optarg) >= BF_SUBTASK_WORKER_MAX)
				return cli_fail(BF_EXIT_USAGE, "--name takes 1..%d characters without '/', got '%s'",
						BF_SUBTASK_WORKER_MAX - 1, optarg);
			o.name = optarg;
			break;
		case 'j':
			if (!cli_u64_in("--job", optarg, 1, INT64_MAX, NULL, &v))
				return BF_EXIT_USAGE;
			o.job_id = (int64_t)v;
			break;
		case 'T':
			if (!cli_u64_in("--lease-ttl", optarg, 2, 3600, "seconds", &v))
				return BF_EXIT_USAGE;
			o.lease_ttl_s = (int)v;
			break;
		case 'q': quiet = true; break;
		case 'h': fputs(worker_help, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!where.cluster || !where.etcd)
		return cli_fail(BF_EXIT_USAGE, "--etcd EPS --cluster NAME are required: a worker works on a cluster's jobs");
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	if (!strcmp(where.etcd, "none"))
		return cli_fail(BF_EXIT_USAGE, "a worker needs the cluster's etcd: --etcd none can't go with --cluster");
	o.etcd = where.etcd;
	o.etcd_security = &where.etcd_security;
	o.log = quiet ? NULL : log_line;
	o.interrupt = &stopping;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* A worker started while etcd elects a leader waits for it. */
	rc = cli_place_open_patient(&place, &where, true, -1, &stopping, &err);
	if (rc == 0) {
		if (!quiet)
			log_line("started", NULL);
		rc = bf_worker_run(&place.env, &o, &res, &err);
	}
	cli_place_close(&place);
	if (rc == BF_ECANCELLED && stopping) {
		if (!quiet) {
			char line[160];
			snprintf(line, sizeof(line), "stopped: %" PRIu64 " subtask(s), %" PRIu64 " rows in %.1f s",
				 res.subtasks, res.rows, res.seconds);
			log_line(line, NULL);
		}
		return BF_EXIT_OK;
	}
	return cli_fail(cli_exit_for(rc), "%s", bf_err_text(&err));
}
