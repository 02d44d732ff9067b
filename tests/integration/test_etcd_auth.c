/*
 * etcd authentication end to end (docs/security.md), against a real etcd
 * with `auth enable`: the etcd lock's acquire and release and a whole
 * add-index as a user, the password from --etcd-password-file and from
 * BFILL_ETCD_PASSWORD; a token that etcd lets expire in the middle of a
 * job (--auth-token-ttl 2, the import held back longer than that) is
 * traded for a new one and the job ends done, on the same lock session;
 * a wrong password is one line, exit 1, and etcd sees one attempt, not a
 * storm; usage mistakes exit 2; the password appears in no output, record
 * or log. A cluster of bfill-store nodes whose etcd client is a user runs
 * gen, add-index with a `bfill worker` as a user too, and check-index.
 */
#include "bfill/lock.h"
#include "tests/support/cluster_world.h"
#include "tests/support/etcd.h"
#include "tests/support/lock.h"
#include "tests/support/support.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pid_t worker;

static void cleanup(void)
{
	t_kill_reap(&worker);
	t_world_stop(); /* stores, etcd, the scratch dir */
}

TestSuite(etcd_auth, .init = t_need_bfill, .fini = cleanup, .timeout = 180);

/* printf-style: `bfill <args>` with env ("K=V", NULL-terminated) added. */
static t_run bfill_env(char *const env[], const char *fmt, ...)
{
	char *args = NULL, *cmd = NULL;
	va_list ap;

	va_start(ap, fmt);
	cr_assert_geq(vasprintf(&args, fmt, ap), 0);
	va_end(ap);
	cr_assert_geq(asprintf(&cmd, "exec '%s' %s", t_bfill(), args), 0);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	t_run r = t_exec(argv, env);
	free(args);
	free(cmd);
	return r;
}

/* A file holding line (and a line end), in the scratch dir; malloc'd path. */
static char *password_file(const char *name, const char *line)
{
	char *path = NULL;

	cr_assert_geq(asprintf(&path, "%s/%s", t_scratch_dir, name), 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fprintf(f, "%s\n", line);
	fclose(f);
	return path;
}

/* How many lines of etcd's logs hold needle. */
static int etcd_log_count(const t_etcd *e, const char *needle)
{
	char *cmd = NULL;

	cr_assert_geq(asprintf(&cmd, "cat '%s'/*.log | grep -c -F '%s'", t_etcd_dir(e), needle),
		      0);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	t_run r = t_exec(argv, NULL);
	int n = atoi(r.out);
	t_run_free(&r);
	free(cmd);
	return n;
}

static void expect_no_password(const char *text, const char *what)
{
	cr_assert_null(strstr(text, T_ETCD_PASSWORD), "%s shows the password: %s", what, text);
}

static void expect_no_password_in(const char *path, const char *what)
{
	char *argv[] = { "grep", "-r", "-a", "-l", "-F", T_ETCD_PASSWORD, (char *)path, NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 1, "%s: the password found (grep exit %d) in: %s%s", what, r.status,
		     r.out, r.err);
	t_run_free(&r);
}

Test(etcd_auth, the_etcd_lock_as_a_user)
{
	t_scratch_new("auth-lock");
	t_etcd *e = t_etcd_start_auth(1, 300);

	t_lock_take_turns(t_etcd_endpoints(e), "9/1");
	cr_assert_eq(t_etcd_leases(e, NULL, 0), 0, "every session's lease was revoked");
}

Test(etcd_auth, add_index_as_a_user_and_the_mistakes_around_it)
{
	char *store = t_scratch_store("auth-add", 20000, 1);
	char *pw = password_file("pw", T_ETCD_PASSWORD);
	char *bad = password_file("bad", "not-the-password");
	t_etcd *e = t_etcd_start_auth(1, 300);
	const char *etcd = t_etcd_endpoints(e);
	char env_pw[128];

	/* Usage: one line, exit 2, before any work. */
	t_run r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s "
			   "--etcd-user root", store, etcd);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "a user without a password",
			   "--etcd-user root needs a password", "BFILL_ETCD_PASSWORD");
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s "
		     "--etcd-password-file %s", store, etcd, pw);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "a password without a user",
			   "--etcd-password-file", "--etcd-user");
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s "
		     "--etcd-user root --etcd-password-file %s/nope", store, etcd, t_scratch_dir);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "a password file that is not there",
			   "No such file or directory", NULL);
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd-user root "
		     "--etcd-password-file %s", store, pw);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "a user without --etcd", "--etcd EPS",
			   NULL);

	/* No user where etcd wants one; a wrong password: one line each,
	 * exit 1, the job resumable; etcd saw one Authenticate, no storm. */
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s", store,
		     etcd);
	t_expect_cli_error(&r, 1, "bfill add-index: ", "no user", "--etcd-user",
			   "--resume --job-id 1");
	int before = etcd_log_count(e, "authentication failed");
	r = t_bfillf("add-index --store %s --resume --job-id 1 --etcd-user root "
		     "--etcd-password-file %s --lock-timeout 30", store, bad);
	t_expect_cli_error(&r, 1, "bfill add-index: ", "a wrong password",
			   "user 'root' was refused", "--resume --job-id 1");
	int after = etcd_log_count(e, "authentication failed");
	cr_assert_eq(after, before + 1, "%d then %d: "
		     "a wrong password is tried once, not again and again", before, after);

	/* Right: from the file, then from the environment. */
	r = t_bfillf("add-index --store %s --resume --job-id 1 --etcd-user root "
		     "--etcd-password-file %s --json", store, pw);
	cr_assert_eq(r.status, 0, "add-index with a user: %s", r.err);
	expect_no_password(r.out, "add-index --json");
	t_run_free(&r);
	t_check_index_ok(store, "k1", 20000);
	snprintf(env_pw, sizeof(env_pw), "BFILL_ETCD_PASSWORD=%s", T_ETCD_PASSWORD);
	r = bfill_env((char *[]){ env_pw, NULL },
		      "add-index --store %s --table sbtest1 --name k2 --columns c --etcd %s "
		      "--etcd-user root --json", store, etcd);
	cr_assert_eq(r.status, 0, "add-index with BFILL_ETCD_PASSWORD: %s", r.err);
	t_run_free(&r);
	t_check_index_ok(store, "k2", 20000);

	/* The password is nowhere but its file. */
	r = t_bfillf("status --store %s --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	expect_no_password(r.out, "status --json");
	t_run_free(&r);
	expect_no_password_in(store, "the store");
	/* etcd's own data holds what `etcdctl user add` sent it, so only its
	 * log is looked at. */
	char log[PATH_MAX];
	snprintf(log, sizeof(log), "%s/m0.log", t_etcd_dir(e));
	expect_no_password_in(log, "etcd's log");
	free(bad);
	free(pw);
	free(store);
}

Test(etcd_auth, a_token_that_expires_mid_job_is_renewed)
{
	char *store = t_scratch_store("auth-ttl", 20000, 1);
	char *pw = password_file("pw", T_ETCD_PASSWORD);
	t_etcd *e = t_etcd_start_auth(1, 2);
	int before = etcd_log_count(e, "invalid auth token");

	/* The lock is taken, then the import waits 4 s under it: the token
	 * (2 s unused) has expired when the job next talks to etcd. */
	t_run r = t_bfill_faultf("import.stall~4000",
				 "add-index --store %s --table sbtest1 --name k1 --columns k "
				 "--etcd %s --etcd-user root --etcd-password-file %s --json", store,
				 t_etcd_endpoints(e), pw);
	cr_assert_eq(r.status, 0, "add-index across an expired token: %s", r.err);
	cJSON *o = t_json_parse(r.out, "add-index --json");
	cr_assert_eq((long)t_json_num(o, "rows"), 20000);
	cr_assert_eq((long)t_json_num(o, "lock_acquires"), 1,
		     "the lock was held through the renewal, not taken again");
	cJSON_Delete(o);
	t_run_free(&r);
	cr_assert_gt(etcd_log_count(e, "invalid auth token"), before,
		     "etcd saw the expired token (else the test proved nothing)");
	t_check_index_ok(store, "k1", 20000);
	free(pw);
	free(store);
}

Test(etcd_auth, a_cluster_whose_etcd_wants_a_user)
{
	t_world w;

	/* The stores and every command act as the user (w.where). */
	t_world_start_auth(&w, "auth-cluster", 4, 20000);
	char *wlog = t_path_in(t_scratch_dir, "worker.log");
	worker = t_spawn_bfillf(wlog, "worker %s --sort-dir %s/w1", w.where, t_scratch_dir);
	t_run r = t_bfillf("add-index %s --table sbtest1 --name k1 --columns k --json", w.where);
	cr_assert_eq(r.status, 0, "add-index: %s", r.err);
	expect_no_password(r.out, "add-index --json");
	t_run_free(&r);
	t_world_expect_exact(&w, "k1", 20000);
	char *text = t_world_stop_worker(&worker, wlog);
	expect_no_password(text, "the worker's log");
	free(text);
	free(wlog);

	/* Without the user, etcd says no: one line, exit 1. */
	r = t_bfillf("status --etcd %s --cluster rc", t_etcd_endpoints(w.e));
	t_expect_cli_error(&r, 1, "bfill status: ", "no user", "authentication on", "--etcd-user");
	for (int id = 1; id <= 3; id++) {
		char *log = t_read_file(t_stores_log(w.s, id));
		expect_no_password(log, "a store's log");
		free(log);
		expect_no_password_in(t_stores_data(w.s, id), "a store's data");
	}
}
