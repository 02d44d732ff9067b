/*
 * bfill add-index: build one or more indexes in one scan, or resume a job.
 */
#include "bfill/job.h"
#include "bfill/store.h"
#include "cmd/cli.h"
#include "util/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char add_index_help[] =
	"usage: bfill add-index --store DIR --table T --name I --columns a[,b] [--unique]\n"
	"                       [--name I2 --columns c [--unique]] ...\n"
	"                       [--workers N] [--mem SIZE] [--sort-dir DIR] [--import-every SIZE]\n"
	"                       [--etcd EP,EP,...] [--lock-prefix P] [--lock-ttl S] [--lock-timeout S]\n"
	"                       [--run-compression none|lz4|zstd] [--target-compression ...]\n"
	"                       [--job-id ID] [--resume] [--json] [--quiet]\n"
	"Each --name starts an index; --columns and --unique apply to the last --name.\n"
	"Defaults: --workers = cores, --mem 512M, --sort-dir <store>.sort, one import at the end,\n"
	"an in-process lock (no --etcd), --lock-ttl 10, --lock-timeout 60.\n"
	"Exit status: 0 done, 1 the job failed (see bfill status), 2 bad usage.\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void show_progress(const bf_job *job, void *arg)
{
	cli_progress_update(arg, job->phase, job->rows_done, job->rows_total, job->waiting);
}

static void print_json(const bf_add_index_result *r, int rc, const bf_err *err)
{
	const bf_job *j = &r->job;
	const bf_backend_stats *b = &r->backend;
	double rate = r->seconds > 0 ? (double)r->rows / r->seconds : 0;
	printf("{\"job_id\":%" PRId64 ",\"state\":\"%s\",\"table\":\"%s\",\"indexes\":[", j->id,
	       bf_job_state_name(j->state), j->table);
	for (int i = 0; i < j->nindexes; i++)
		printf("%s\"%s\"", i ? "," : "", j->index_names[i]);
	printf("],\"noop\":%s,\"rows\":%" PRIu64 ",\"rows_total\":%" PRIu64 ",\"seconds\":%.3f"
	       ",\"scan_seconds\":%.3f,\"import_seconds\":%.3f,\"rows_per_s\":%.0f"
	       ",\"index_keys\":%" PRIu64 ",\"index_bytes\":%" PRIu64 ",\"mb_per_s\":%.1f"
	       ",\"peak_sort_dir_bytes\":%" PRIu64 ",\"runs\":%" PRIu64 ",\"imports\":%" PRIu64 ",\"sst_files\":%" PRIu64
	       ",\"lock_acquires\":%" PRIu64 ",\"lock_wait_ms\":%" PRIu64 ",\"lock_wait_max_ms\":%" PRIu64 ",\"lock_release_ms\":%" PRIu64
	       ",\"fence_losses\":%" PRIu64 ",\"error\":",
	       r->noop ? "true" : "false", r->rows, j->rows_total, r->seconds, r->scan_seconds,
	       r->import_seconds, rate, r->index_keys, r->index_bytes,
	       r->seconds > 0 ? (double)r->index_bytes / r->seconds / 1e6 : 0, r->peak_sort_bytes,
	       b->runs, b->imports, b->sst_files, b->lock_acquires, b->lock_wait_ms, b->lock_wait_max_ms, b->lock_release_ms,
	       b->fence_losses);
	if (rc) {
		putchar('"');
		for (const char *p = bf_err_text(err); *p; p++) {
			if (*p == '"' || *p == '\\')
				putchar('\\');
			if ((unsigned char)*p >= 0x20)
				putchar(*p);
		}
		putchar('"');
	} else {
		fputs("null", stdout);
	}
	puts("}");
}

int cmd_add_index(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, 0, 's' }, { "table", required_argument, 0, 't' },
		{ "name", required_argument, 0, 'n' }, { "columns", required_argument, 0, 'c' },
		{ "unique", no_argument, 0, 'u' }, { "workers", required_argument, 0, 'w' },
		{ "mem", required_argument, 0, 'm' }, { "sort-dir", required_argument, 0, 'd' },
		{ "import-every", required_argument, 0, 'I' }, { "etcd", required_argument, 0, 'e' },
		{ "lock-prefix", required_argument, 0, 'P' }, { "lock-ttl", required_argument, 0, 'T' },
		{ "lock-timeout", required_argument, 0, 'L' },
		{ "run-compression", required_argument, 0, 'R' },
		{ "target-compression", required_argument, 0, 'C' },
		{ "job-id", required_argument, 0, 'j' }, { "resume", no_argument, 0, 'r' },
		{ "json", no_argument, 0, 'J' }, { "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	const char *store_dir = NULL;
	bf_add_index_opts o = { .run_compression = -1, .target_compression = -1 };
	bf_add_index_result res;
	bool json = false, quiet = false;
	bf_store *st = NULL;
	bf_err err = { 0 };
	cli_progress prog;
	uint64_t v;
	int c, rc, code = BF_EXIT_OK;
	bf_compression comp;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		bf_index_spec *cur = o.nspecs ? &o.specs[o.nspecs - 1] : NULL;
		switch (c) {
		case 's': store_dir = optarg; break;
		case 't': o.table = optarg; break;
		case 'n':
			if (o.nspecs == BF_MAX_JOB_INDEXES)
				return cli_fail(BF_EXIT_USAGE, "at most %d indexes per job", BF_MAX_JOB_INDEXES);
			o.specs[o.nspecs++].name = optarg;
			break;
		case 'c':
			if (!cur)
				return cli_fail(BF_EXIT_USAGE, "--columns must follow --name");
			cur->columns = optarg;
			break;
		case 'u':
			if (!cur)
				return cli_fail(BF_EXIT_USAGE, "--unique must follow --name");
			cur->unique = true;
			break;
		case 'w':
			if (!cli_u64("--workers", optarg, &v))
				return BF_EXIT_USAGE;
			if (v < 1 || v > 64)
				return cli_fail(BF_EXIT_USAGE, "--workers must be 1..64");
			o.workers = (int)v;
			break;
		case 'm':
			if (!cli_size("--mem", optarg, &o.mem))
				return BF_EXIT_USAGE;
			/* Below this the fixed needs (batches, RocksDB readers, the
			 * import's merge) would not fit beside any sort buffer. */
			if (o.mem < (128ULL << 20))
				return cli_fail(BF_EXIT_USAGE, "--mem must be at least 128M");
			break;
		case 'd': o.sort_dir = optarg; break;
		case 'I':
			if (!cli_size("--import-every", optarg, &o.import_every))
				return BF_EXIT_USAGE;
			break;
		case 'e': o.etcd = optarg; break;
		case 'P': o.lock_prefix = optarg; break;
		case 'T':
			if (!cli_u64("--lock-ttl", optarg, &v) || v < 1 || v > 3600)
				return cli_fail(BF_EXIT_USAGE, "--lock-ttl must be 1..3600 seconds");
			o.lock_ttl_s = (int)v;
			break;
		case 'L':
			if (!cli_u64("--lock-timeout", optarg, &v) || v < 1 || v > 86400)
				return cli_fail(BF_EXIT_USAGE, "--lock-timeout must be 1..86400 seconds");
			o.lock_timeout_s = (int)v;
			break;
		case 'R':
		case 'C':
			if (bf_compression_parse(optarg, &comp))
				return cli_fail(BF_EXIT_USAGE, "compression must be none, lz4 or zstd");
			if (c == 'R')
				o.run_compression = comp;
			else
				o.target_compression = comp;
			break;
		case 'j':
			if (!cli_u64("--job-id", optarg, &v) || v == 0)
				return cli_fail(BF_EXIT_USAGE, "--job-id must be a positive integer");
			o.job_id = (int64_t)v;
			break;
		case 'r': o.resume = true; break;
		case 'J': json = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(add_index_help, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!store_dir)
		return cli_fail(BF_EXIT_USAGE, "--store DIR is required");
	if (o.resume) {
		if (!o.job_id)
			return cli_fail(BF_EXIT_USAGE, "--resume needs --job-id ID");
		if (o.table || o.nspecs)
			return cli_fail(BF_EXIT_USAGE, "--resume takes the table and indexes from the job; drop --table/--name");
	} else {
		if (!o.table)
			return cli_fail(BF_EXIT_USAGE, "--table T is required");
		if (!o.nspecs)
			return cli_fail(BF_EXIT_USAGE, "--name I --columns a[,b] is required");
		for (int i = 0; i < o.nspecs; i++)
			if (!o.specs[i].columns)
				return cli_fail(BF_EXIT_USAGE, "index '%s' needs --columns", o.specs[i].name);
	}

	rc = bf_store_open(store_dir, 0, &st, &err);
	if (rc)
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	cli_progress_init(&prog, quiet || json);
	o.progress = show_progress;
	o.progress_arg = &prog;
	o.interrupt = &interrupted;
	rc = bf_add_index(st, &o, &res, &err);
	cli_progress_done(&prog);
	if (json)
		print_json(&res, rc, &err);
	if (rc) {
		/* One line: the cause, then what became of the job. */
		if (res.job.id && (res.job.state == BF_JOB_FAILED || res.job.state == BF_JOB_PAUSED) &&
		    rc != BF_EDUP)
			code = cli_fail(cli_exit_for(rc), "%s (job %" PRId64 " %s; bfill add-index --store %s"
					" --resume --job-id %" PRId64 " continues it)", bf_err_text(&err),
					res.job.id, bf_job_state_name(res.job.state), store_dir, res.job.id);
		else
			code = cli_fail(cli_exit_for(rc), "%s", bf_err_text(&err));
	} else if (!json && !quiet) {
		if (res.noop) {
			printf("job %" PRId64 " is already done\n", res.job.id);
		} else {
			char b[32];
			printf("job %" PRId64 " done: %" PRIu64 " rows in %.2f s (%.0f rows/s), %" PRIu64
			       " index entries (%s), %" PRIu64 " import(s)\n",
			       res.job.id, res.rows, res.seconds,
			       res.seconds > 0 ? (double)res.rows / res.seconds : 0, res.index_keys,
			       bf_fmt_bytes(res.index_bytes, b, sizeof(b)), res.backend.imports);
		}
	}
	bf_store_close(st);
	return code;
}
