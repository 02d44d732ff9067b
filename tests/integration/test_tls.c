/*
 * TLS end to end (docs/security.md), with certificates openssl makes and
 * real processes: etcd serving https:// with client-certificate auth
 * takes the etcd lock's acquire and release and a whole add-index with
 * its lock; three bfill-store nodes that require client certificates
 * run gen, add-index (with a `bfill worker` too) and check-index. A
 * plain-text client, one with another CA's certificate and one with an
 * expired certificate are refused, by etcd and by the stores: bfill says
 * so in one line and exits 1, and the stores log each refusal. Usage
 * mistakes (https:// without a CA, a certificate without its key, TLS
 * flags with http://) exit 2. No key's content shows up anywhere: not in
 * outputs, logs, status, the job records or the data directories.
 */
#include "bfill/lock.h"
#include "rpc/rpc.h"
#include "tests/support/certs.h"
#include "tests/support/cluster_world.h"
#include "tests/support/etcd.h"
#include "tests/support/lock.h"
#include "tests/support/stores.h"
#include "tests/support/support.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
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

static void setup(void)
{
	t_need_bfill();
	bf_rpc_quiet_library_log(stderr); /* this process's refused clients: their errors say it */
}

TestSuite(tls, .init = setup, .fini = cleanup, .timeout = 240);

/* Asserts that no file under dir holds marker (grep -r, binary files too). */
static void expect_not_in_dir(const char *marker, const char *dir, const char *what)
{
	char *argv[] = { "grep", "-r", "-a", "-l", "-F", (char *)marker, (char *)dir, NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 1, "%s: key material found (grep exit %d) in: %s%s", what, r.status,
		     r.out, r.err);
	t_run_free(&r);
}

/* Every key's secret part, none of which may be seen outside its file. */
typedef struct markers {
	char *m[4];
} markers;

static markers key_markers(const t_certs *c)
{
	return (markers){ { t_certs_key_marker(&c->client), t_certs_key_marker(&c->server),
			    t_certs_key_marker(&c->other), t_certs_key_marker(&c->expired) } };
}

static void markers_free(markers *k)
{
	for (int i = 0; i < 4; i++)
		free(k->m[i]);
}

static void expect_no_key_text(const markers *k, const char *text, const char *what)
{
	for (int i = 0; i < 4; i++)
		cr_assert_null(strstr(text, k->m[i]), "%s: key material in: %s", what, text);
}

static void expect_no_key_in_dir(const markers *k, const char *dir, const char *what)
{
	for (int i = 0; i < 4; i++)
		expect_not_in_dir(k->m[i], dir, what);
}

/* ---- the etcd lock ---------------------------------------------------- */

Test(tls, the_etcd_lock_over_tls)
{
	t_certs certs;

	t_certs_make(&certs, t_scratch_new("tls-lock"));
	t_etcd *e = t_etcd_start_tls(1, &certs);
	t_lock_take_turns(t_etcd_endpoints(e), "7/1");
	cr_assert_eq(t_etcd_leases(e, NULL, 0), 0, "every session's lease was revoked");
}

/* A status call as a client with tls (NULL: plain text) on e's member,
 * until it is refused for good (10 s at most): its code. */
static int etcd_status_as(const t_etcd *e, const bf_tls *tls, bf_err *err)
{
	bf_etcd_security sec = { .tls = tls ? *tls : (bf_tls){ 0 } };
	bf_etcd_opts o = { .call_timeout_ms = 1000, .security = &sec };
	bf_etcd_status_info info;
	bf_etcd *c = NULL;
	int rc;

	/* host:port: TLS or not as the settings say. */
	cr_assert_eq(bf_etcd_create(t_etcd_endpoint(e, 0), &o, &c, err), 0, "%s", bf_err_text(err));
	for (int64_t until = bf_now_ms() + 10000;; bf_sleep_ms(200)) {
		rc = bf_etcd_status(c, &info, err);
		if (rc != BF_EUNAVAIL || bf_now_ms() > until)
			break;
	}
	bf_etcd_destroy(c);
	return rc;
}

Test(tls, etcd_refuses_clients_without_a_valid_certificate)
{
	t_certs certs;
	bf_err err;

	t_certs_make(&certs, t_scratch_new("tls-etcd"));
	t_etcd *e = t_etcd_start_tls(1, &certs);
	bf_tls good = t_certs_client(&certs, NULL, &certs.client);
	bf_tls none = t_certs_client(&certs, NULL, NULL);
	bf_tls other = t_certs_client(&certs, NULL, &certs.other);
	bf_tls expired = t_certs_client(&certs, NULL, &certs.expired);
	bf_tls distrust = t_certs_client(&certs, certs.ca2, &certs.client);
	const struct {
		const char *what;
		const bf_tls *tls;
	} refused[] = { { "plain text", NULL }, { "no certificate", &none },
			{ "another CA's certificate", &other }, { "an expired certificate", &expired },
			{ "a CA that did not sign etcd's", &distrust } };

	cr_assert_eq(etcd_status_as(e, &good, &err), 0, "%s", bf_err_text(&err));
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int rc = etcd_status_as(e, refused[i].tls, &err);
		cr_assert_eq(rc, -EACCES, "%s: rc %d: %s", refused[i].what, rc, bf_err_text(&err));
		cr_assert_not_null(strstr(err.msg, "handshake"), "%s: %s", refused[i].what, err.msg);
	}

	/* A lock refused gives up at once rather than at its timeout. */
	bf_etcd_security sec = { .tls = other };
	bf_lock_opts lo = { .endpoints = t_etcd_endpoints(e), .etcd_security = &sec, .ttl_s = 3,
			    .timeout_s = 30, .call_timeout_ms = 1000 };
	bf_fence_token token;
	bf_lock *lk = NULL;
	cr_assert_eq(bf_lock_create(&lo, &lk, &err), 0, "%s", bf_err_text(&err));
	int64_t start = bf_now_ms();
	cr_assert_eq(bf_lock_acquire(lk, "refused", &token, &err), -EACCES, "%s", bf_err_text(&err));
	cr_assert_lt(bf_now_ms() - start, 10000, "refused, not timed out");
	bf_lock_destroy(lk);
}

/* ---- add-index with the etcd lock over TLS ---------------------------- */

Test(tls, add_index_with_the_etcd_lock_over_tls)
{
	t_certs certs;
	char *store = t_scratch_store("tls-add", 20000, 1);
	char etcd[256], flags[3 * PATH_MAX + 64], wrong[3 * PATH_MAX + 64];

	t_certs_make(&certs, t_scratch_dir);
	t_etcd *e = t_etcd_start_tls(1, &certs);
	markers k = key_markers(&certs);
	snprintf(etcd, sizeof(etcd), "%s", t_etcd_endpoints(e));
	snprintf(flags, sizeof(flags), "%s", t_certs_flags(&certs, "--etcd-", NULL, &certs.client));
	snprintf(wrong, sizeof(wrong), "%s", t_certs_flags(&certs, "--etcd-", NULL, &certs.other));

	/* Usage: found before any work, one line, exit 2. */
	t_run r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s",
			   store, etcd);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "https:// without a CA",
			   "needs --etcd-cacert", NULL);
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s "
		     "--etcd-cacert %s --etcd-cert %s", store, etcd, certs.ca, certs.client.cert);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "a certificate without its key",
			   "--etcd-cert needs --etcd-key", NULL);
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd http://%s%s",
		     store, t_etcd_endpoint(e, 0), flags);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "TLS flags with http://", "plain text",
			   "--etcd-cacert");
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k%s", store, flags);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "TLS flags without --etcd", "--etcd EPS",
			   NULL);
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s "
		     "--etcd-cacert %s/nope.pem", store, etcd, t_scratch_dir);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "a CA file that is not there",
			   "nope.pem: No such file or directory", NULL);

	/* The build, its lock in etcd over TLS. */
	r = t_bfillf("add-index --store %s --table sbtest1 --name k1 --columns k --etcd %s%s --json",
		     store, etcd, flags);
	cr_assert_eq(r.status, 0, "add-index: %s", r.err);
	cJSON *o = t_json_parse(r.out, "add-index --json");
	cr_assert_eq((long)t_json_num(o, "rows"), 20000);
	cr_assert_geq(t_json_num(o, "lock_acquires"), 1);
	cJSON_Delete(o);
	expect_no_key_text(&k, r.out, "add-index --json");
	t_run_free(&r);
	t_check_index_ok(store, "k1", 20000);

	/* Refused by etcd: one line, exit 1, the job resumable; TLS settings
	 * are not stored, so the resume gives them again. */
	r = t_bfillf("add-index --store %s --table sbtest1 --name k2 --columns k --etcd %s%s "
		     "--lock-timeout 30", store, etcd, wrong);
	expect_no_key_text(&k, r.err, "a refused add-index");
	t_expect_cli_error(&r, 1, "bfill add-index: ", "another CA's certificate", "handshake",
			   "--resume --job-id 2");
	r = t_bfillf("add-index --store %s --resume --job-id 2", store);
	t_expect_cli_error(&r, 2, "bfill add-index: ", "resumed without the CA",
			   "needs --etcd-cacert", NULL);
	r = t_bfillf("add-index --store %s --resume --job-id 2%s --json", store, flags);
	cr_assert_eq(r.status, 0, "resume: %s", r.err);
	t_run_free(&r);
	t_check_index_ok(store, "k2", 20000);

	r = t_bfillf("status --store %s --json", store);
	cr_assert_eq(r.status, 0, "%s", r.err);
	expect_no_key_text(&k, r.out, "status --json");
	t_run_free(&r);
	expect_no_key_in_dir(&k, store, "the store");
	expect_no_key_in_dir(&k, t_etcd_dir(e), "etcd's data and log");
	markers_free(&k);
	free(store);
}

/* ---- bfill-store's flags ------------------------------------------------ */

/* bfill-store with the base flags and extra ones (NULL-terminated): its
 * usage error, one line, exit 2, with needle. */
static void expect_store_usage(const char *needle, const char *what, ...)
{
	char *argv[24] = { (char *)t_store_bin(), "--listen", "127.0.0.1:0", "--data", "/nonexistent",
			   "--store-id", "1", "--cluster", "x" };
	int argc = 9;
	bool etcd = false;
	va_list ap;

	va_start(ap, what);
	for (char *a; (a = va_arg(ap, char *)) && argc < 21;) {
		etcd |= !strcmp(a, "--etcd");
		argv[argc++] = a;
	}
	va_end(ap);
	if (!etcd) {
		argv[argc++] = "--etcd";
		argv[argc++] = "127.0.0.1:1";
	}
	argv[argc] = NULL;
	t_run r = t_exec(argv, NULL);
	t_expect_cli_error(&r, 2, "bfill-store: ", what, needle, NULL);
}

Test(tls, bfill_store_checks_its_tls_flags)
{
	t_certs certs;

	t_certs_make(&certs, t_scratch_new("tls-store-flags"));
	expect_store_usage("needs --cert and --key", "a CA alone", "--cacert", certs.ca, NULL);
	expect_store_usage("need --cacert", "no CA to check the other stores by", "--cert",
			   certs.server.cert, "--key", certs.server.key, NULL);
	expect_store_usage("--cert and --key", "--require-client-cert alone",
			   "--require-client-cert", NULL);
	expect_store_usage("--key needs --cert", "a key alone", "--cacert", certs.ca, "--key",
			   certs.server.key, NULL);
	expect_store_usage("needs --etcd-cacert", "https:// to etcd without a CA", "--etcd",
			   "https://127.0.0.1:1", NULL);
	expect_store_usage("No such file", "a missing file", "--cacert", "/nonexistent/ca.pem",
			   "--cert", certs.server.cert, "--key", certs.server.key, NULL);
}

/* ---- a cluster of TLS store nodes ------------------------------------- */

/* Lines of the stores' logs that tell of a refused client. */
static int refusal_lines(const t_world *w)
{
	int n = 0;

	for (int id = 1; id <= 3; id++) {
		char *log = t_read_file(t_stores_log(w->s, id)), *save = NULL;
		for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			n += strstr(line, ": refused ") && strstr(line, "at the TLS handshake");
		free(log);
	}
	return n;
}

/* check-index as a client whose flags for the stores are store_flags:
 * refused, one line, exit 1, naming the store and the handshake; a store
 * logs it within two seconds (one line a second at most). */
static void expect_stores_refuse(const t_world *w, const char *etcd_flags,
				 const char *store_flags, const char *what)
{
	char where[sizeof(w->where)];
	int before = refusal_lines(w);

	snprintf(where, sizeof(where), "--etcd %s%s --cluster rc%s", t_etcd_endpoints(w->e),
		 etcd_flags, store_flags);
	t_run r = t_bfillf("check-index %s --table sbtest1 --name k1", where);
	t_expect_cli_error(&r, 1, "bfill check-index: ", what, "store ", "handshake");
	for (int64_t until = bf_now_ms() + 3000; refusal_lines(w) == before; bf_sleep_ms(50))
		cr_assert_lt(bf_now_ms(), until, "%s: no store logged the refusal", what);
}

Test(tls, a_cluster_of_tls_stores)
{
	t_world w;
	char etcd_flags[3 * PATH_MAX + 64], flags[3 * PATH_MAX + 64];

	t_world_start_tls(&w, "tls-cluster", 8, 30000);
	markers k = key_markers(&w.certs);
	snprintf(etcd_flags, sizeof(etcd_flags), "%s",
		 t_certs_flags(&w.certs, "--etcd-", NULL, &w.certs.client));

	/* A build over TLS everywhere: this process works on the job with a
	 * `bfill worker` of its own. */
	char *wlog = t_path_in(t_scratch_dir, "worker.log");
	worker = t_spawn_bfillf(wlog, "worker %s --sort-dir %s/w1", w.where, t_scratch_dir);
	t_run r = t_bfillf("add-index %s --table sbtest1 --name k1 --columns k --json", w.where);
	cr_assert_eq(r.status, 0, "add-index: %s", r.err);
	expect_no_key_text(&k, r.out, "add-index --json");
	t_run_free(&r);
	t_world_expect_exact(&w, "k1", 30000);
	r = t_bfillf("status %s --json", w.where);
	cr_assert_eq(r.status, 0, "%s", r.err);
	expect_no_key_text(&k, r.out, "status --json");
	t_run_free(&r);
	char *text = t_world_stop_worker(&worker, wlog);
	expect_no_key_text(&k, text, "the worker's log");
	free(text);
	free(wlog);

	/* Refused by the stores, each at the handshake. */
	snprintf(flags, sizeof(flags), "%s", "");
	expect_stores_refuse(&w, etcd_flags, flags, "plain text to the stores");
	snprintf(flags, sizeof(flags), "%s", t_certs_flags(&w.certs, "--", NULL, &w.certs.other));
	expect_stores_refuse(&w, etcd_flags, flags, "another CA's certificate");
	snprintf(flags, sizeof(flags), "%s", t_certs_flags(&w.certs, "--", NULL, &w.certs.expired));
	expect_stores_refuse(&w, etcd_flags, flags, "an expired certificate");

	/* Refused by etcd. */
	snprintf(flags, sizeof(flags), "%s", t_certs_flags(&w.certs, "--etcd-", NULL, &w.certs.other));
	r = t_bfillf("status --etcd %s%s --cluster rc", t_etcd_endpoints(w.e), flags);
	t_expect_cli_error(&r, 1, "bfill status: ", "etcd refuses another CA's certificate",
			   "etcd ", "handshake");
	/* The stores' TLS flags go with --cluster only. */
	r = t_bfillf("status --store %s/s%s", t_scratch_dir,
		     t_certs_flags(&w.certs, "--", NULL, &w.certs.client));
	t_expect_cli_error(&r, 2, "bfill status: ", "store TLS without --cluster", "--cluster",
			   NULL);

	for (int id = 1; id <= 3; id++) {
		char *log = t_read_file(t_stores_log(w.s, id));
		expect_no_key_text(&k, log, "a store's log");
		free(log);
		expect_no_key_in_dir(&k, t_stores_data(w.s, id), "a store's data");
	}
	expect_no_key_in_dir(&k, t_etcd_dir(w.e), "etcd's data and log");
	markers_free(&k);
}
