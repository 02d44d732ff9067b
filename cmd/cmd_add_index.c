/*
 * bfill add-index: build one or more indexes in one scan, or resume a job.
 */
#include "bfill/job.h"
#include "bfill/store.h"
#include "bfill/worker.h"
#include "cmd/cli.h"
#include "cmd/place.h"
#include "cmd/job_view.h"
#include "util/endpoints.h"
#include "util/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Size of a job-record field: a longer flag would be stored cut. */
#define CFG_FIELD(f) sizeof(((bf_job_config *)0)->f)

static const char add_index_help[] =
	"usage: bfill add-index (--store DIR | --etcd EPS --cluster NAME) --table T --name I\n"
	"                       --columns a[,b] [--unique]\n"
	"                       [--name I2 --columns c [--unique]] ...\n"
	"                       [--workers N] [--mem SIZE] [--sort-dir DIR] [--import-every SIZE]\n"
	"                       [--etcd EP,EP,...|none] [--lock-prefix P] [--lock-ttl S] [--lock-timeout S]\n"
	"                       [--run-compression none|lz4|zstd] [--target-compression ...]\n"
	"                       [--job-id ID] [--resume] [--detach] [--json] [--quiet]\n"
	"                       [--etcd-cacert FILE [--etcd-cert FILE --etcd-key FILE]]\n"
	"                       [--cacert FILE [--cert FILE --key FILE]]\n"
	"Each --name starts an index; --columns and --unique apply to the last --name.\n"
	"--etcd takes host:port, http://host:port or https://host:port, comma-separated;\n"
	"--etcd none is the in-process lock. --mem is at least 32M and at most the machine's memory;\n"
	"--lock-prefix starts with '/'. Every flag is checked before any work starts.\n"
	"--resume takes the table, indexes and settings from the job; flags given with it\n"
	"(--etcd none included) replace the stored ones. With --cluster the table is read from\n"
	"the cluster's store nodes, the index is imported into them, the job's records live in\n"
	"its etcd and the import lock too; the sort dir defaults to ./bfill-<cluster>.sort and\n"
	"imports run during the scan, every quarter of --mem (unless --import-every says).\n"
	"A cluster's job is cut into subtasks that any number of `bfill worker` processes\n"
	"share; add-index submits it and works on it too until it ends, or with --detach\n"
	"prints the job id and returns at once.\n"
	"Defaults: --workers = cores, --mem 512M, --sort-dir <store>.sort, one import at the end,\n"
	"an in-process lock (no --etcd), --lock-prefix /bfill/lock, --lock-ttl 10, --lock-timeout 60.\n"
	"--json prints one line: the run's figures, rows_scanned, the job's lock_key and, for a\n"
	"failed job, outcome (resumable or rolled_back).\n"
	CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP
	"TLS settings are not stored with the job: --resume takes them again.\n"
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

/* The run as one JSON line; job is the record as the command line shows
 * it (a duplicate counts as rolled back). */
static int print_json(const bf_add_index_result *r, const bf_job *job, int rc, const bf_err *err)
{
	const bf_backend_stats *b = &r->backend;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "job_id", (double)job->id);
	cli_job_json_add(o, job, false);
	cJSON_AddBoolToObject(o, "noop", r->noop);
	cJSON_AddNumberToObject(o, "rows", (double)r->rows);
	cJSON_AddNumberToObject(o, "rows_scanned", (double)r->rows);
	cJSON_AddNumberToObject(o, "rows_total", (double)job->rows_total);
	cJSON_AddNumberToObject(o, "seconds", cli_round(r->seconds, 3));
	cJSON_AddNumberToObject(o, "scan_seconds", cli_round(r->scan_seconds, 3));
	cJSON_AddNumberToObject(o, "import_seconds", cli_round(r->import_seconds, 3));
	cJSON_AddNumberToObject(o, "rows_per_s",
				r->seconds > 0 ? cli_round((double)r->rows / r->seconds, 0) : 0);
	cJSON_AddNumberToObject(o, "index_keys", (double)r->index_keys);
	cJSON_AddNumberToObject(o, "index_bytes", (double)r->index_bytes);
	cJSON_AddNumberToObject(o, "mb_per_s",
				r->seconds > 0 ? cli_round((double)r->index_bytes / r->seconds / 1e6, 1) : 0);
	cJSON_AddNumberToObject(o, "peak_sort_dir_bytes", (double)r->peak_sort_bytes);
	cJSON_AddNumberToObject(o, "runs", (double)b->runs);
	cJSON_AddNumberToObject(o, "imports", (double)b->imports);
	cJSON_AddNumberToObject(o, "sst_files", (double)b->sst_files);
	cJSON_AddNumberToObject(o, "lock_acquires", (double)b->lock_acquires);
	cJSON_AddNumberToObject(o, "lock_wait_ms", (double)b->lock_wait_ms);
	cJSON_AddNumberToObject(o, "lock_wait_max_ms", (double)b->lock_wait_max_ms);
	cJSON_AddNumberToObject(o, "lock_release_ms", (double)b->lock_release_ms);
	cJSON_AddNumberToObject(o, "fence_losses", (double)b->fence_losses);
	if (rc)
		cJSON_AddStringToObject(o, "error", bf_err_text(err));
	else
		cJSON_AddNullToObject(o, "error");
	return cli_json_print(o);
}

/* ---- flags, each checked before any work ---- */

/* Every column name in the list is non-empty ('c,', ',c', 'c,,k' are
 * refused: the library's split would skip the empty one silently). */
static bool parse_columns(const char *val)
{
	for (const char *p = val;; p++) {
		size_t len = strcspn(p, ","), blank = strspn(p, " \t");
		if (blank >= len) {
			cli_fail(BF_EXIT_USAGE, "--columns '%s' has an empty column name", val);
			return false;
		}
		p += len;
		if (!*p)
			return true;
	}
}

/* "none" is the in-process lock: "" tells the library so (NULL would keep
 * what a resumed job has). */
static bool parse_etcd(const char *val, const char **out)
{
	bf_err err = { 0 };

	if (!strcmp(val, "none")) {
		*out = "";
		return true;
	}
	if (!cli_fits("--etcd", val, CFG_FIELD(etcd)))
		return false;
	if (bf_endpoints_check(val, &err)) {
		cli_fail(BF_EXIT_USAGE, "--etcd: %s", bf_err_text(&err));
		return false;
	}
	*out = val;
	return true;
}

/* Lock keys are "<prefix>/<store uuid>/<job>": the prefix is an absolute
 * etcd key path of its own. */
static bool parse_lock_prefix(const char *val)
{
	if (!cli_fits("--lock-prefix", val, CFG_FIELD(lock_prefix)))
		return false;
	if (val[0] != '/' || !val[1]) {
		cli_fail(BF_EXIT_USAGE, "--lock-prefix must start with '/' and name a key path, got '%s'",
			 val);
		return false;
	}
	return true;
}

#define DETACHED 1
#define OPEN_PATIENCE_MS 30000

/*
 * A cluster's job: submitted as subtasks, then (unless detached) worked on
 * here like any worker does until it ends. The result is this process's
 * share of the work and the job's final record.
 */
static int shared_job(cli_place *p, bf_add_index_opts *o, bool detach, bool json, bool quiet,
		      bf_add_index_result *res, bf_err *err)
{
	bf_worker_opts wo = {
		.job_id = o->job_id, .until_done = true, .etcd = o->etcd,
		.etcd_security = o->etcd_security, .threads = o->workers,
		.mem = o->mem, .sort_dir = o->sort_dir, .import_every = o->import_every,
		.progress = o->progress, .progress_arg = o->progress_arg, .interrupt = o->interrupt,
	};
	bf_worker_result wr;
	size_t nsub = 0;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (!o->resume) {
		/* A write etcd did not apply (no leader for a moment) is tried
		 * again; one whose outcome is unknown is not: it may have
		 * created the job. */
		int64_t deadline = bf_now_ms() + OPEN_PATIENCE_MS;
		while ((rc = bf_job_submit_in(&p->env, o, &wo.job_id, &nsub, err)) == BF_EUNAVAIL &&
		       !wo.job_id && bf_now_ms() < deadline)
			bf_sleep_ms(500);
		res->job.id = wo.job_id;
		if (rc)
			return rc;
	}
	if (detach) {
		if (json) {
			cJSON *j = cJSON_CreateObject();
			cJSON_AddNumberToObject(j, "job_id", (double)wo.job_id);
			cJSON_AddNumberToObject(j, "subtasks", (double)nsub);
			cli_json_print(j);
		} else {
			printf("job %" PRId64 " submitted: %zu subtasks for `bfill worker` to share%s\n",
			       wo.job_id, nsub, nsub ? "" : " (written by the first worker)");
		}
		return DETACHED;
	}
	(void)quiet;
	rc = bf_worker_run(&p->env, &wo, &wr, err);
	res->job = wr.job;
	res->rows = wr.rows;
	res->seconds = wr.seconds;
	res->backend = wr.backend;
	res->index_keys = wr.backend.imported_keys;
	res->index_bytes = wr.backend.imported_bytes;
	return rc;
}

int cmd_add_index(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS, { "table", required_argument, 0, 't' },
		{ "name", required_argument, 0, 'n' }, { "columns", required_argument, 0, 'c' },
		{ "unique", no_argument, 0, 'u' }, { "workers", required_argument, 0, 'w' },
		{ "mem", required_argument, 0, 'm' }, { "sort-dir", required_argument, 0, 'd' },
		{ "import-every", required_argument, 0, 'I' },
		{ "lock-prefix", required_argument, 0, 'P' }, { "lock-ttl", required_argument, 0, 'T' },
		{ "lock-timeout", required_argument, 0, 'L' },
		{ "run-compression", required_argument, 0, 'R' },
		{ "target-compression", required_argument, 0, 'C' },
		{ "job-id", required_argument, 0, 'j' }, { "resume", no_argument, 0, 'r' },
		{ "json", no_argument, 0, 'J' }, { "quiet", no_argument, 0, 'q' },
		{ "detach", no_argument, 0, 'D' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	cli_place place;
	char again[PATH_MAX + 3000];
	bf_add_index_opts o = { .run_compression = -1, .target_compression = -1 };
	bf_add_index_result res;
	bf_job shown;
	bool json = false, quiet = false, detach = false;
	bf_err err = { 0 };
	cli_progress prog;
	uint64_t v;
	int c, rc, code = BF_EXIT_OK;
	bf_compression comp;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		bf_index_spec *cur = o.nspecs ? &o.specs[o.nspecs - 1] : NULL;
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 't': o.table = optarg; break;
		case 'n':
			if (o.nspecs == BF_MAX_JOB_INDEXES)
				return cli_fail(BF_EXIT_USAGE, "at most %d indexes per job", BF_MAX_JOB_INDEXES);
			o.specs[o.nspecs++].name = optarg;
			break;
		case 'c':
			if (!cur)
				return cli_fail(BF_EXIT_USAGE, "--columns must follow --name");
			if (!parse_columns(optarg))
				return BF_EXIT_USAGE;
			cur->columns = optarg;
			break;
		case 'u':
			if (!cur)
				return cli_fail(BF_EXIT_USAGE, "--unique must follow --name");
			cur->unique = true;
			break;
		case 'w':
			if (!cli_u64_in("--workers", optarg, 1, 64, NULL, &v))
				return BF_EXIT_USAGE;
			o.workers = (int)v;
			break;
		case 'm':
			if (!cli_mem("--mem", optarg, &o.mem))
				return BF_EXIT_USAGE;
			break;
		case 'd':
			if (!cli_fits("--sort-dir", optarg, CFG_FIELD(sort_dir)))
				return BF_EXIT_USAGE;
			o.sort_dir = optarg;
			break;
		case 'I':
			if (!cli_size("--import-every", optarg, &o.import_every))
				return BF_EXIT_USAGE;
			break;
		case 'P':
			if (!parse_lock_prefix(optarg))
				return BF_EXIT_USAGE;
			o.lock_prefix = optarg;
			break;
		case 'T':
			if (!cli_u64_in("--lock-ttl", optarg, 1, 3600, "seconds", &v))
				return BF_EXIT_USAGE;
			o.lock_ttl_s = (int)v;
			break;
		case 'L':
			if (!cli_u64_in("--lock-timeout", optarg, 1, 86400, "seconds", &v))
				return BF_EXIT_USAGE;
			o.lock_timeout_s = (int)v;
			break;
		case 'R':
		case 'C':
			if (!cli_compression(c == 'R' ? "--run-compression" : "--target-compression",
					     optarg, &comp))
				return BF_EXIT_USAGE;
			if (c == 'R')
				o.run_compression = comp;
			else
				o.target_compression = comp;
			break;
		case 'j':
			if (bf_parse_u64(optarg, &v) || v == 0)
				return cli_fail(BF_EXIT_USAGE, "--job-id must be a positive integer, got '%s'",
						optarg);
			o.job_id = (int64_t)v;
			break;
		case 'r': o.resume = true; break;
		case 'J': json = true; break;
		case 'q': quiet = true; break;
		case 'D': detach = true; break;
		case 'h': fputs(add_index_help, stdout); return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (where.etcd && !parse_etcd(where.etcd, &o.etcd))
		return BF_EXIT_USAGE;
	where.etcd_in_job = o.resume;
	if (!cli_where_check(&where, true))
		return BF_EXIT_USAGE;
	o.etcd_security = &where.etcd_security;
	if (detach && !where.cluster)
		return cli_fail(BF_EXIT_USAGE, "--detach submits a cluster's job for its workers: it needs --cluster");
	if (detach && o.resume)
		return cli_fail(BF_EXIT_USAGE, "--detach submits a new job; a job is resumed by working on it (drop --detach)");
	if (where.cluster && !strcmp(where.etcd, "none"))
		return cli_fail(BF_EXIT_USAGE, "a cluster's jobs take their lock in its etcd: --etcd none can't go with --cluster");
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

	/* A cluster's etcd electing a leader (a member cut off) is waited
	 * out for a while: a new job must not fail for it. */
	rc = where.cluster ? cli_place_open_patient(&place, &where, true, OPEN_PATIENCE_MS, NULL, &err)
			   : cli_place_open(&place, &where, 0, true, 0, &err);
	if (rc) {
		cli_place_close(&place);
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	}
	cli_where_args(&where, place.st ? bf_store_path(place.st) : "", again, sizeof(again));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	cli_progress_init(&prog, quiet || json);
	o.progress = show_progress;
	o.progress_arg = &prog;
	o.interrupt = &interrupted;
	if (where.cluster)
		rc = shared_job(&place, &o, detach, json, quiet, &res, &err);
	else
		rc = bf_add_index_in(&place.env, &o, &res, &err);
	cli_progress_done(&prog);
	if (rc == DETACHED) {
		cli_place_close(&place);
		return BF_EXIT_OK;
	}
	/* A duplicate in a unique index is never resumable (DESIGN §7),
	 * whatever the record ended up saying. */
	shown = res.job;
	if (rc == BF_EDUP)
		shown.rolled_back = true;
	if (json)
		code = print_json(&res, &shown, rc, &err);
	if (rc) {
		/* One line: the cause, then what became of the job. */
		if (shown.id && cli_job_resumable(&shown, false))
			code = cli_fail(cli_exit_for(rc), "%s (job %" PRId64 " %s; bfill add-index %s"
					" --resume --job-id %" PRId64 " continues it)", bf_err_text(&err),
					shown.id, bf_job_state_name(shown.state), again, shown.id);
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
	cli_place_close(&place);
	return code;
}
