/*
 * bfill status --store DIR [--job ID] [--json]: what every job is doing.
 * Opens the store read-only, so it works while a job runs in another
 * process that holds the store open for writing. The records are read
 * first and printed after, so a read that has to be tried again never
 * leaves half an answer on stdout.
 */
#include "bfill/catalog.h"
#include "bfill/fault.h"
#include "bfill/job_live.h"
#include "bfill/presence.h"
#include "bfill/store.h"
#include "bfill/worker.h"
#include "cmd/cli.h"
#include "cmd/place.h"
#include "cmd/job_view.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A read-only open sees the files the store had when it read the MANIFEST;
 * the writer may delete one of them (a compaction after an ingest) before
 * the open or the read gets to it: "Corruption: Can't access ...sst". The
 * next try sees the new set. Retried for this long, then reported.
 */
#define READ_RETRY_MS 2000
#define READ_RETRY_SLEEP_MS 50

typedef struct job_entry {
	bf_job job;
	bool alive;             /* whether a process (a worker) runs it */
	bf_subtask *subs;       /* owned: a shared job's subtasks, or NULL */
	size_t nsubs;
} job_entry;

typedef struct job_list {
	int64_t only;           /* 0 = every job */
	job_entry *e;           /* owned, n of cap */
	size_t n, cap;
	int ndamaged;
	char damaged[768];      /* "<record> (<why>), ..." */
} job_list;

static int collect_job(const bf_job *j, void *arg)
{
	job_list *l = arg;

	if (l->only && j->id != l->only)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		job_entry *grown = realloc(l->e, cap * sizeof(*grown));
		if (!grown)
			return BF_ENOMEM;
		l->e = grown;
		l->cap = cap;
	}
	l->e[l->n++] = (job_entry){ .job = *j };
	return 0;
}

/* Job records are keyed "<prefix>job/<id, 20 digits>". */
static int64_t record_job_id(const char *record)
{
	const char *slash = strrchr(record, '/');
	return slash ? strtoll(slash + 1, NULL, 10) : 0;
}

static void collect_damaged(const char *record, const char *why, void *arg)
{
	job_list *l = arg;
	size_t used = strlen(l->damaged);

	if (l->only && record_job_id(record) != l->only)
		return;
	l->ndamaged++;
	snprintf(l->damaged + used, sizeof(l->damaged) - used, "%s%s (%s)", used ? ", " : "",
		 record, why);
}

static void list_free(job_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].subs);
	l->n = 0;
}

/*
 * A running job is alive while a process holds its live lock (see
 * include/bfill/job_live.h) — its recorded pid may belong to anyone now —
 * or, for a cluster, while some process announces it in etcd
 * (bfill/presence.h), or a worker holds one of its subtasks: the live lock
 * is seen only on the machine that runs the job.
 */
static bool job_alive(const cli_place *p, const job_entry *e)
{
	const bf_job *j = &e->job;

	if (j->state != BF_JOB_RUNNING)
		return false;
	for (size_t i = 0; i < e->nsubs; i++)
		if (e->subs[i].worker[0])
			return true;
	if (bf_job_live(p->env.live_dir, j->id))
		return true;
	return p->cluster &&
	       bf_presence_check(p->etcd, bf_cluster_root(p->cluster), j->id, NULL, 0, NULL) == 1;
}

/* One attempt: open read-only (a store) or through etcd (a cluster), read
 * the job records and whether each runs, close. */
static int read_once(const cli_where *w, job_list *l, bf_err *err)
{
	cli_place p;
	int rc;

	list_free(l);
	l->ndamaged = 0;
	l->damaged[0] = '\0';
	rc = cli_place_open(&p, w, BF_STORE_READONLY, false, 0, err);
	if (rc)
		goto out;
	/* Seam "status.read": the read fails the way a file deleted under
	 * the open makes it fail. */
	if (bf_fault_hit("status.read")) {
		rc = bf_errf(err, BF_ECORRUPT, "%s: Corruption: Can't access a table file (injected)",
			     cli_place_name(&p));
		goto out;
	}
	rc = bf_catalog_foreach_job(p.env.catalog, collect_job, collect_damaged, l, err);
	if (rc == BF_ENOMEM)
		bf_errf(err, rc, "out of memory reading the job records");
	/* A shared job's record is written at its start and end; its
	 * subtasks say how it stands. */
	for (size_t i = 0; rc == 0 && p.cluster && i < l->n; i++)
		rc = bf_job_shared_view(&p.env, l->e[i].job.id, &l->e[i].job, &l->e[i].subs,
					&l->e[i].nsubs, err);
	for (size_t i = 0; rc == 0 && i < l->n; i++)
		l->e[i].alive = job_alive(&p, &l->e[i]);
out:
	cli_place_close(&p);
	return rc;
}

/* The errors a writer's file changes cause in a store that exists; a
 * store that is not there (no CURRENT file) is not worth waiting for.
 * A cluster's etcd client has its own deadlines and failover. */
static bool transient(int rc, const cli_where *w)
{
	char current[PATH_MAX];

	if (!w->store || (rc != BF_EIO && rc != BF_ECORRUPT && rc != BF_ENOTFOUND))
		return false;
	snprintf(current, sizeof(current), "%s/CURRENT", w->store);
	return access(current, F_OK) == 0;
}

static int read_jobs(const cli_where *w, job_list *l, bf_err *err)
{
	int64_t deadline = bf_now_ms() + READ_RETRY_MS;
	int rc;

	while ((rc = read_once(w, l, err)) && transient(rc, w) &&
	       bf_now_ms() < deadline)
		bf_sleep_ms(READ_RETRY_SLEEP_MS);
	return rc;
}

static const char *subtask_state(const bf_subtask *s)
{
	return s->done ? "done" : s->worker[0] ? "running" : "waiting";
}

static cJSON *subtasks_json(const job_entry *e)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; i < e->nsubs; i++) {
		const bf_subtask *s = &e->subs[i];
		cJSON *o = cJSON_CreateObject();
		bool live = s->live && s->worker[0];
		cJSON_AddNumberToObject(o, "seq", s->seq);
		cJSON_AddStringToObject(o, "state", subtask_state(s));
		cJSON_AddStringToObject(o, "worker", s->worker);
		cJSON_AddNumberToObject(o, "rows", (double)(live && s->live_rows > s->rows ? s->live_rows
											: s->rows));
		cJSON_AddNumberToObject(o, "rows_checkpointed", (double)s->rows);
		cJSON_AddNumberToObject(o, "rate", live ? cli_round(s->live_rate, 0) : 0);
		cJSON_AddStringToObject(o, "phase", live ? s->live_phase : "");
		cJSON_AddStringToObject(o, "waiting", live ? s->live_waiting : "");
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *job_json(const job_entry *e)
{
	const bf_job *j = &e->job;
	bool alive = e->alive;
	cJSON *o = cJSON_CreateObject(), *cp;
	double rate = 0, eta = 0;
	bool rate_known = cli_job_rate(j, &rate);
	bool eta_known = cli_job_eta(j, alive, rate_known, rate, &eta);

	cJSON_AddNumberToObject(o, "id", (double)j->id);
	cli_job_json_add(o, j, alive);
	cJSON_AddStringToObject(o, "phase", j->phase);
	cJSON_AddBoolToObject(o, "alive", alive);
	cJSON_AddNumberToObject(o, "pid", (double)j->pid);
	cJSON_AddNumberToObject(o, "rows_done", (double)j->rows_done);
	cJSON_AddNumberToObject(o, "rows_total", (double)j->rows_total);
	cJSON_AddNumberToObject(o, "rows_scanned", (double)j->rows_scanned);
	cli_json_num_or_null(o, "rate", rate_known, cli_round(rate, 0));
	cli_json_num_or_null(o, "eta_s", eta_known, cli_round(eta, 0));
	cJSON_AddNumberToObject(o, "start_ms", (double)j->start_ms);
	cJSON_AddNumberToObject(o, "update_ms", (double)j->update_ms);
	cJSON_AddNumberToObject(o, "end_ms", (double)j->end_ms);
	cJSON_AddStringToObject(o, "waiting", j->waiting);
	cJSON_AddStringToObject(o, "last_error", j->last_error);
	cp = cJSON_AddObjectToObject(o, "checkpoint");
	cJSON_AddNumberToObject(cp, "flushed_rows", j->cp.has_flushed ? (double)j->cp.flushed_rows : 0);
	cJSON_AddNumberToObject(cp, "imported_rows",
				j->cp.has_imported ? (double)j->cp.imported_rows : 0);
	cJSON_AddNumberToObject(cp, "imports", (double)j->cp.imports);
	if (e->nsubs)
		cJSON_AddItemToObject(o, "subtasks", subtasks_json(e));
	return o;
}

static void print_subtasks(const job_entry *e)
{
	for (size_t i = 0; i < e->nsubs; i++) {
		const bf_subtask *s = &e->subs[i];
		bool live = s->live && s->worker[0];
		printf("  subtask %-3d %-7s %-24s rows %" PRIu64, s->seq, subtask_state(s),
		       s->worker[0] ? s->worker : "-",
		       live && s->live_rows > s->rows ? s->live_rows : s->rows);
		if (live)
			printf("  %.0f rows/s  %s", s->live_rate, s->live_phase);
		if (live && s->live_waiting[0])
			printf("  %s", s->live_waiting);
		putchar('\n');
	}
}

static void print_text(const job_entry *e)
{
	const bf_job *j = &e->job;
	bool alive = e->alive;
	double rate = 0, eta = 0;
	bool rate_known = cli_job_rate(j, &rate);
	bool eta_known = cli_job_eta(j, alive, rate_known, rate, &eta);
	bool running = j->state == BF_JOB_RUNNING;

	printf("job %" PRId64 "  table %s  index", j->id, j->table);
	for (int i = 0; i < j->nindexes; i++)
		printf("%s%s", i ? "," : " ", j->index_names[i]);
	printf("  state %s", bf_job_state_name(j->state));
	if (j->state == BF_JOB_FAILED && j->rolled_back)
		printf(" (rolled back)");
	else if (cli_job_resumable(j, alive))
		printf(" (%sresumable: bfill add-index --resume --job-id %" PRId64 ")",
		       running ? "its process is gone; " : "", j->id);
	printf("  phase %s%s\n", j->phase, j->importing ? " (importing)" : "");

	printf("  rows %" PRIu64 "/%" PRIu64, j->rows_done, j->rows_total);
	if (j->rows_total)
		printf(" (%.1f%%)", 100.0 * (double)j->rows_done / (double)j->rows_total);
	printf("  scanned %" PRIu64 " in the %s run", j->rows_scanned, running ? "current" : "last");
	if (alive) {
		if (rate_known)
			printf("  %.0f rows/s", rate);
		else
			printf("  - rows/s");
		if (eta_known)
			printf("  ETA %.0fs", eta);
		else
			printf("  ETA -");
	}
	if (j->end_ms && j->start_ms)
		printf("  took %.1fs", (double)(j->end_ms - j->start_ms) / 1000.0);
	putchar('\n');
	if (j->lock_key[0])
		printf("  lock %s\n", j->lock_key);
	if (j->waiting[0])
		printf("  %s\n", j->waiting);
	if (j->last_error[0])
		printf("  last error: %s\n", j->last_error);
	print_subtasks(e);
}

static int print_jobs(const job_list *l, bool json)
{
	cJSON *list = NULL, *doc = NULL;

	if (!json) {
		for (size_t i = 0; i < l->n; i++)
			print_text(&l->e[i]);
		if (!l->n && !l->ndamaged && !l->only)
			puts("no jobs");
		return BF_EXIT_OK;
	}
	/* --job ID prints the job's object; otherwise {"jobs": [...]}. */
	if (l->only)
		return l->n ? cli_json_print(job_json(&l->e[0]))
			    : BF_EXIT_OK;
	doc = cJSON_CreateObject();
	list = cJSON_AddArrayToObject(doc, "jobs");
	for (size_t i = 0; i < l->n; i++)
		cJSON_AddItemToArray(list, job_json(&l->e[i]));
	return cli_json_print(doc);
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS, { "job", required_argument, 0, 'j' },
		{ "json", no_argument, 0, 'J' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	job_list l = { 0 };
	uint64_t id;
	bool json = false;
	bf_err err = { 0 };
	int ch, rc, code = BF_EXIT_OK;

	while ((ch = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(ch, optarg, &where))
			continue;
		switch (ch) {
		case 'j':
			if (!cli_u64("--job", optarg, &id))
				return BF_EXIT_USAGE;
			l.only = (int64_t)id;
			break;
		case 'J': json = true; break;
		case 'h':
			puts("usage: bfill status (--store DIR | --etcd EPS --cluster NAME) [--job ID] [--json]\n"
			     "Shows each job: state (for a failed job whether --resume can continue it),\n"
			     "phase, rows, rate and ETA while it runs, its lock key and last error.\n"
			     "Works while a job runs in another process. A cluster's job shows each\n"
			     "subtask: its state, worker, rows, rate and what it waits for.\n"
			     "Exit status 1 when a job\n"
			     "record is damaged (the others are still shown).");
			fputs(CLI_ETCD_SECURITY_HELP, stdout);
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	rc = read_jobs(&where, &l, &err);
	if (rc) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	code = print_jobs(&l, json);
	if (l.ndamaged)
		code = cli_fail(BF_EXIT_FAIL, "damaged job record%s: %s%s", l.ndamaged > 1 ? "s" : "",
				l.damaged, l.only || !l.n ? "" : "; the other jobs are shown");
	else if (l.only && !l.n)
		code = cli_fail(BF_EXIT_FAIL, "job %" PRId64 " does not exist", l.only);
out:
	list_free(&l);
	free(l.e);
	return code;
}
