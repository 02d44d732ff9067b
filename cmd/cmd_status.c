/*
 * bfill status --store DIR [--job ID] [--json]: what every job is doing.
 * Opens the store read-only, so it works while a job runs in another
 * process that holds the store open for writing.
 */
#include "bfill/catalog.h"
#include "bfill/store.h"
#include "cmd/cli.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define OPEN_TRIES 5

typedef struct status_ctx {
	bool json;
	int64_t only;
	int shown;
} status_ctx;

/* A job recorded as running whose process is gone was killed; say so
 * rather than repeat a state nobody is acting on. */
static bool process_alive(int64_t pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static int show_job(const bf_job *j, void *arg)
{
	status_ctx *c = arg;
	bool running = j->state == BF_JOB_RUNNING;
	bool alive = running && process_alive(j->pid);
	double eta = j->rate > 0 && j->rows_total > j->rows_done
			     ? (double)(j->rows_total - j->rows_done) / j->rate : 0;

	if (c->only && j->id != c->only)
		return 0;
	if (c->json) {
		printf("%s{\"id\":%" PRId64 ",\"table\":", c->shown && !c->only ? "," : "", j->id);
		json_string(j->table);
		printf(",\"indexes\":[");
		for (int i = 0; i < j->nindexes; i++) {
			printf("%s", i ? "," : "");
			json_string(j->index_names[i]);
		}
		printf("],\"state\":\"%s\",\"phase\":", bf_job_state_name(j->state));
		json_string(j->phase);
		printf(",\"alive\":%s,\"pid\":%" PRId64 ",\"rows_done\":%" PRIu64 ",\"rows_total\":%" PRIu64
		       ",\"rate\":%.0f,\"eta_s\":%.0f,\"start_ms\":%" PRId64 ",\"update_ms\":%" PRId64
		       ",\"end_ms\":%" PRId64 ",\"waiting\":",
		       alive ? "true" : "false", j->pid, j->rows_done, j->rows_total, j->rate, eta,
		       j->start_ms, j->update_ms, j->end_ms);
		json_string(j->waiting);
		printf(",\"last_error\":");
		json_string(j->last_error);
		printf(",\"checkpoint\":{\"flushed_rows\":%" PRIu64 ",\"imported_rows\":%" PRIu64
		       ",\"imports\":%" PRIu64 "}}",
		       j->cp.has_flushed ? j->cp.flushed_rows : 0,
		       j->cp.has_imported ? j->cp.imported_rows : 0, j->cp.imports);
	} else {
		printf("job %" PRId64 "  table %s  index", j->id, j->table);
		for (int i = 0; i < j->nindexes; i++)
			printf("%s%s", i ? "," : " ", j->index_names[i]);
		printf("  state %s", bf_job_state_name(j->state));
		if (running && !alive)
			printf(" (process %" PRId64 " is gone; --resume continues it)", j->pid);
		printf("  phase %s\n", j->phase);
		printf("  rows %" PRIu64 "/%" PRIu64, j->rows_done, j->rows_total);
		if (j->rows_total)
			printf(" (%.1f%%)", 100.0 * (double)j->rows_done / (double)j->rows_total);
		if (alive)
			printf("  %.0f rows/s  ETA %.0fs", j->rate, eta);
		if (j->end_ms && j->start_ms)
			printf("  took %.1fs", (double)(j->end_ms - j->start_ms) / 1000.0);
		putchar('\n');
		if (j->waiting[0])
			printf("  %s\n", j->waiting);
		if (j->last_error[0])
			printf("  last error: %s\n", j->last_error);
	}
	c->shown++;
	return 0;
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, 0, 's' }, { "job", required_argument, 0, 'j' },
		{ "json", no_argument, 0, 'J' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	const char *store_dir = NULL;
	status_ctx c = { 0 };
	uint64_t id;
	bf_store *st = NULL;
	bf_err err = { 0 };
	int ch, rc = 0;

	while ((ch = cli_getopt(argc, argv, longopts)) != -1) {
		switch (ch) {
		case 's': store_dir = optarg; break;
		case 'j':
			if (!cli_u64("--job", optarg, &id))
				return BF_EXIT_USAGE;
			c.only = (int64_t)id;
			break;
		case 'J': c.json = true; break;
		case 'h':
			puts("usage: bfill status --store DIR [--job ID] [--json]");
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!store_dir)
		return cli_fail(BF_EXIT_USAGE, "--store DIR is required");
	/* A writer replacing files can make a read-only open miss one; the
	 * next try sees the new set. */
	for (int i = 0; i < OPEN_TRIES; i++) {
		rc = bf_store_open(store_dir, BF_STORE_READONLY, &st, &err);
		if (rc != BF_EIO && rc != BF_ENOTFOUND)
			break;
		if (rc == BF_ENOTFOUND && i == 0 && strstr(bf_err_text(&err), "does not exist"))
			break;
		bf_sleep_ms(100);
	}
	if (rc)
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	if (c.json && !c.only)
		printf("{\"jobs\":[");
	rc = bf_catalog_foreach_job(st, show_job, NULL, &c, &err);
	if (c.json && !c.only)
		puts("]}");
	else if (c.json && c.shown)
		putchar('\n');
	bf_store_close(st);
	if (rc)
		return cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
	if (c.only && !c.shown)
		return cli_fail(BF_EXIT_FAIL, "job %" PRId64 " does not exist", c.only);
	if (!c.json && !c.shown)
		puts("no jobs");
	return BF_EXIT_OK;
}
