/* A cluster for CLI tests (cluster_world.h). */
#include "tests/support/cluster_world.h"
#include "bfill/codec.h"
#include "tests/support/support.h"
#include "tests/support/tikv.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef enum security { PLAIN, TLS, AUTH } security;

static void start(t_world *w, const char *tag, int nregions, long rows, security sec)
{
	bool tls = sec == TLS;

	if (!t_etcd_available())
		cr_skip_test("etcd/etcdctl not installed (Debian: etcd-server etcd-client)");
	t_scratch_new(tag);
	if (tls)
		t_certs_make(&w->certs, t_scratch_dir);
	/* Binaries by absolute path before the directory changes (the
	 * harness resolves them on first use); sort files go next to where
	 * bfill runs: in the scratch dir. */
	char abs[PATH_MAX];
	if (!getenv("BFILL_STORE_BIN") && realpath("./bin/bfill-store", abs))
		setenv("BFILL_STORE_BIN", abs, 1);
	t_bfill();
	cr_assert_eq(chdir(t_scratch_dir), 0);
	w->e = tls ? t_etcd_start_tls(1, &w->certs) : sec == AUTH ? t_etcd_start_auth(1, 300)
							       : t_etcd_start(1);
	t_stores_opts o = { .nstores = 3, .nregions = nregions, .replicas = 3,
			    .certs = tls ? &w->certs : NULL, .require_client_cert = tls };
	w->s = t_stores_start(w->e, "rc", &o);
	int off = snprintf(w->where, sizeof(w->where), "--etcd %s --cluster rc",
			   t_etcd_endpoints(w->e));
	if (tls)
		snprintf(w->where + off, sizeof(w->where) - (size_t)off, "%s%s",
			 t_certs_flags(&w->certs, "--etcd-", NULL, &w->certs.client),
			 t_certs_flags(&w->certs, "--", NULL, &w->certs.client));
	if (sec == AUTH)
		snprintf(w->where + off, sizeof(w->where) - (size_t)off,
			 " --etcd-user %s --etcd-password-file %s", T_ETCD_USER,
			 t_etcd_password_file(w->e));
	t_run r = t_bfillf("gen %s --rows %ld --seed 3 --quiet", w->where, rows);
	cr_assert_eq(r.status, 0, "gen on the cluster: exit %d: %s", r.status, r.err);
	t_run_free(&r);
}

void t_world_start(t_world *w, const char *tag, int nregions, long rows)
{
	start(w, tag, nregions, rows, PLAIN);
}

void t_world_start_tls(t_world *w, const char *tag, int nregions, long rows)
{
	start(w, tag, nregions, rows, TLS);
}

void t_world_start_auth(t_world *w, const char *tag, int nregions, long rows)
{
	start(w, tag, nregions, rows, AUTH);
}

void t_world_stop(void)
{
	t_stores_stop_all();
	t_etcd_stop_all();
	t_scratch_remove();
}

void t_world_expect_exact(const t_world *w, const char *index, long entries)
{
	t_run r = t_bfillf("check-index %s --table sbtest1 --name %s --json", w->where, index);
	cr_assert_eq(r.status, 0, "check-index %s: exit %d: %s%s", index, r.status, r.out, r.err);
	cJSON *o = t_json_parse(r.out, "check-index --json");
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ok")));
	const cJSON *reps = cJSON_GetObjectItemCaseSensitive(o, "replicas"), *it;
	cr_assert_eq(cJSON_GetArraySize(reps), 3, "every replica is checked");
	cJSON_ArrayForEach(it, reps)
		cr_assert_eq((long)t_json_num(it, "found"), entries, "replica %d",
			     (int)t_json_num(it, "replica"));
	cJSON_Delete(o);
	t_run_free(&r);
}

cJSON *t_world_job(const t_world *w, int64_t id)
{
	t_run r = t_bfillf("status %s --job %" PRId64 " --json", w->where, id);
	cr_assert_eq(r.status, 0, "status: %s", r.err);
	cJSON *o = t_json_parse(r.out, "status --json");
	t_run_free(&r);
	return o;
}

size_t t_world_index_keys(const t_world *w, int id, int64_t index_id)
{
	/* The table's indexes have a region of their own (bf_cluster_init). */
	uint8_t lo[BF_INDEX_PREFIX_LEN];
	bf_codec_index_prefix(lo, 100, index_id);
	bf_region reg = t_stores_locate(w->s, lo, sizeof(lo));
	t_ctx ctx = t_stores_ctx(&reg);
	return t_tikv_count(t_stores_channel(w->s, id), &ctx);
}

/* Polls job id's status until pred holds of it (60 s at most). */
static void wait_for(const t_world *w, int64_t id, bool (*pred)(const cJSON *job, void *arg),
		     void *arg, const char *what)
{
	int64_t deadline = bf_now_ms() + 60000;
	for (;;) {
		t_run r = t_bfillf("status %s --job %" PRId64 " --json", w->where, id);
		bool seen = false;
		if (r.status == 0) {
			cJSON *o = t_json_parse(r.out, "status --json");
			seen = pred(o, arg);
			cJSON_Delete(o);
		}
		t_run_free(&r);
		if (seen)
			return;
		cr_assert_lt(bf_now_ms(), deadline, "%s: not within 60 s", what);
		bf_sleep_ms(100);
	}
}

static bool imported(const cJSON *job, void *arg)
{
	const cJSON *subs = cJSON_GetObjectItemCaseSensitive(job, "subtasks"), *it;
	(void)arg;
	cJSON_ArrayForEach(it, subs)
		if (t_json_num(it, "rows_checkpointed") > 0 || !strcmp(t_json_str(it, "state"), "done"))
			return true;
	return false;
}

void t_world_wait_import(const t_world *w, int64_t id)
{
	wait_for(w, id, imported, NULL, "an import");
}

static bool worker_busy(const cJSON *job, void *arg)
{
	const char *worker = arg;
	const cJSON *subs = cJSON_GetObjectItemCaseSensitive(job, "subtasks"), *it;
	cJSON_ArrayForEach(it, subs)
		if (!strcmp(t_json_str(it, "state"), "running") &&
		    (!worker || !strcmp(t_json_str(it, "worker"), worker)) && t_json_num(it, "rows") > 0)
			return true;
	return false;
}

int t_world_wait_busy(const t_world *w, int64_t id, const char *worker)
{
	cJSON *o;
	const cJSON *it;
	int seq = -1;

	wait_for(w, id, worker_busy, (void *)worker, "a subtask under way");
	o = t_world_job(w, id);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "subtasks"))
		if (seq < 0 && !strcmp(t_json_str(it, "state"), "running") &&
		    (!worker || !strcmp(t_json_str(it, "worker"), worker)))
			seq = (int)t_json_num(it, "seq");
	cJSON_Delete(o);
	return seq;
}

static bool in_state(const cJSON *job, void *arg)
{
	return !strcmp(t_json_str(job, "state"), arg);
}

void t_world_wait_state(const t_world *w, int64_t id, const char *state)
{
	wait_for(w, id, in_state, (void *)state, state);
}

char *t_world_stop_worker(pid_t *pid, const char *log)
{
	int status = 0;

	kill(*pid, SIGTERM);
	cr_assert_eq(waitpid(*pid, &status, 0), *pid);
	*pid = 0;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the worker stopped cleanly");
	char *text = t_read_file(log);
	cr_assert_not_null(strstr(text, "started"), "the worker ran: %s", text);
	return text;
}
