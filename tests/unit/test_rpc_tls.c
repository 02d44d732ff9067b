/*
 * TLS in the gRPC transport (rpc/tls.c, rpc/log.c, bfill/tls.h) on
 * loopback, with certificates openssl makes (tests/support/certs.h): a
 * client with the CA's certificate gets through by IP address and by
 * name; a plain-text client, one without a certificate, one with another
 * CA's and one with an expired one are refused at the handshake, seen as
 * tls_refused (-EACCES) by the client and told to the server's on_refused
 * with the reason; a client that does not trust the server refuses it at
 * once; files that are missing or wrong are errors at create time naming
 * the flag and the path, never their content.
 */
#include "bfill/tls.h"
#include "rpc/rpc.h"
#include "rpc/server.h"
#include "tests/support/certs.h"
#include "tests/support/support.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const bf_rpc_method ECHO = { "/bfill.test.T/Echo", "Echo" };

static t_certs certs;
static bf_rpc_server *srv;
static int port;

/* What on_refused was told, from gRPC's threads. */
static pthread_mutex_t refused_mu = PTHREAD_MUTEX_INITIALIZER;
static int refused;
static char refused_why[512];

static void on_refused(void *arg, const char *why)
{
	(void)arg;
	pthread_mutex_lock(&refused_mu);
	refused++;
	snprintf(refused_why, sizeof(refused_why), "%s", why);
	pthread_mutex_unlock(&refused_mu);
}

static void h_echo(bf_rpc_server_call *c, const bf_rpc_buf *req, void *arg)
{
	(void)arg;
	bf_rpc_server_reply(c, req, NULL);
}

static void down(void)
{
	bf_rpc_server_destroy(srv);
	srv = NULL;
	t_scratch_remove();
}

static void up(void)
{
	bf_rpc_quiet_library_log(stderr);
	t_certs_make(&certs, t_scratch_new("rpc-tls"));
}

TestSuite(rpc_tls, .init = up, .fini = down, .timeout = 60);

/* A server with TLS tls and the echo method; sets port. */
static void serve(const bf_tls *tls)
{
	bf_rpc_server_opts o = { .label = "test server", .tls = tls, .on_refused = on_refused };
	bf_err err;

	cr_assert_eq(bf_rpc_server_create(&o, &srv, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_rpc_server_add_method(srv, ECHO.path, BF_RPC_KIND_UNARY, h_echo, NULL, &err),
		     0);
	cr_assert_eq(bf_rpc_server_start(srv, "127.0.0.1:0", &port, &err), 0, "%s",
		     bf_err_text(&err));
}

/*
 * Calls Echo at host:port with TLS tls (NULL: plain text) until the call
 * gets through or is sure to be refused (5 s at most): the last status.
 */
static bf_rpc_status call_as(const bf_tls *tls, const char *host)
{
	bf_rpc_pool_opts po = { .label = "client", .tls = tls };
	bf_rpc_pool *pool = NULL;
	bf_rpc_channel *ch = NULL;
	bf_rpc_status st = { 0 };
	char target[64];
	bf_err err;

	snprintf(target, sizeof(target), "%s:%d", host, port);
	cr_assert_eq(bf_rpc_pool_create(&po, &pool, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_rpc_pool_add(pool, target, &ch, &err), 0, "%s", bf_err_text(&err));
	for (int64_t until = bf_now_ms() + 5000; bf_now_ms() < until; bf_sleep_ms(100)) {
		bf_rpc_call call = { .method = &ECHO, .deadline_ms = bf_now_ms() + 2000 };
		bf_rpc_buf req = { (uint8_t *)"hi", 2 }, reply = { 0 };
		cr_assert_eq(bf_rpc_unary(ch, &call, &req, &st, &reply, &err), 0, "%s",
			     bf_err_text(&err));
		if (st.code == BF_RPC_OK)
			cr_assert(reply.len == 2 && !memcmp(reply.data, "hi", 2));
		bf_rpc_buf_free(&reply);
		if (st.code == BF_RPC_OK || st.tls_refused)
			break;
	}
	bf_rpc_pool_destroy(pool);
	return st;
}

static int refusals(char *why, size_t n)
{
	pthread_mutex_lock(&refused_mu);
	int count = refused;
	snprintf(why, n, "%s", refused_why);
	pthread_mutex_unlock(&refused_mu);
	return count;
}

/* The client is refused, and the server is told why (reason has `want`). */
static void expect_refused(const char *what, const bf_tls *tls, const char *want)
{
	int before = refusals(NULL, 0);
	char why[512];
	bf_rpc_status st = call_as(tls, "127.0.0.1");

	cr_assert(st.tls_refused, "%s: not refused: %s %s", what, bf_rpc_status_name(st.code),
		  st.details);
	cr_assert_eq(st.code, BF_RPC_UNAVAILABLE, "%s", what);
	cr_assert_eq(bf_rpc_status_code(&st), -EACCES, "%s", what);
	cr_assert_neq(*bf_rpc_status_tls_hint(&st), '\0', "%s", what);
	/* gRPC logs the server's side from its own thread: soon after (and
	 * the client before may still have had an attempt under way). */
	for (int64_t until = bf_now_ms() + 3000;
	     refusals(why, sizeof(why)) == before || !strstr(why, want); bf_sleep_ms(20))
		cr_assert_lt(bf_now_ms(), until, "%s: the server was not told ('%s' not in: %s)",
			     what, want, why);
}

Test(rpc_tls, a_client_with_the_cas_certificate_gets_through)
{
	bf_tls server = t_certs_server(&certs, true);
	bf_tls client = t_certs_client(&certs, NULL, &certs.client);

	serve(&server);
	bf_rpc_status st = call_as(&client, "127.0.0.1");
	cr_assert_eq(st.code, BF_RPC_OK, "%s", st.details);
	/* The certificate names localhost too: the name is checked, and fits. */
	st = call_as(&client, "localhost");
	cr_assert_eq(st.code, BF_RPC_OK, "%s", st.details);
	cr_assert_eq(refusals(NULL, 0), 0, "nobody was refused");
}

Test(rpc_tls, clients_without_a_valid_certificate_are_refused_at_the_handshake)
{
	bf_tls server = t_certs_server(&certs, true);
	bf_tls no_cert = t_certs_client(&certs, NULL, NULL);
	bf_tls other_ca = t_certs_client(&certs, NULL, &certs.other);
	bf_tls expired = t_certs_client(&certs, NULL, &certs.expired);

	serve(&server);
	expect_refused("plain text", NULL, "does not speak TLS");
	expect_refused("no certificate", &no_cert, "showed no certificate");
	expect_refused("another CA's certificate", &other_ca, "not signed by the CA");
	expect_refused("an expired certificate", &expired, "has expired");
}

Test(rpc_tls, a_server_without_client_certificates_takes_any_tls_client)
{
	bf_tls server = t_certs_server(&certs, false);
	bf_tls no_cert = t_certs_client(&certs, NULL, NULL);

	serve(&server);
	bf_rpc_status st = call_as(&no_cert, "127.0.0.1");
	cr_assert_eq(st.code, BF_RPC_OK, "%s", st.details);
	st = call_as(NULL, "127.0.0.1");
	cr_assert(st.tls_refused, "plain text still is not TLS: %s", st.details);
}

Test(rpc_tls, a_client_refuses_a_server_it_does_not_trust)
{
	bf_tls server = t_certs_server(&certs, false);
	bf_tls wrong_ca = t_certs_client(&certs, certs.ca2, &certs.client);

	serve(&server);
	int64_t start = bf_now_ms();
	bf_rpc_status st = call_as(&wrong_ca, "127.0.0.1");
	cr_assert(st.tls_refused, "%s", st.details);
	cr_assert_not_null(strstr(st.details, "certificate verify failed"), "%s", st.details);
	/* gRPC named the failure: no second attempt was needed. */
	cr_assert_lt(bf_now_ms() - start, 1000);
	bf_err err = { 0 };
	bf_rpc_channel *ch;
	bf_rpc_pool *pool;
	bf_rpc_pool_opts po = { .label = "client" };
	cr_assert_eq(bf_rpc_pool_create(&po, &pool, &err), 0);
	cr_assert_eq(bf_rpc_pool_add(pool, "127.0.0.1:1", &ch, &err), 0);
	cr_assert_eq(bf_rpc_status_err(ch, &ECHO, &st, &err), -EACCES);
	cr_assert_not_null(strstr(err.msg, "TLS handshake failed"), "%s", err.msg);
	bf_rpc_pool_destroy(pool);

	/* A plain-text server is refused by a TLS client too. */
	bf_rpc_server_destroy(srv);
	serve(NULL);
	st = call_as(&wrong_ca, "127.0.0.1");
	cr_assert(st.tls_refused, "%s", st.details);
}

/* Creating a pool with tls fails with code; the message has needle and the
 * path, and nothing of any file's content. */
static void expect_create_fails(const char *what, const bf_tls *tls, bool server, int code,
				const char *needle)
{
	bf_rpc_pool_opts po = { .label = "etcd", .tls = tls, .tls_flags = "--etcd-" };
	bf_rpc_server_opts so = { .label = "store", .tls = tls };
	bf_rpc_pool *pool = NULL;
	bf_rpc_server *s = NULL;
	bf_err err = { 0 };
	char *marker = t_certs_key_marker(&certs.client);
	int rc = server ? bf_rpc_server_create(&so, &s, &err) : bf_rpc_pool_create(&po, &pool, &err);

	cr_assert_eq(rc, code, "%s: rc %d: %s", what, rc, err.msg);
	cr_assert_null(pool);
	cr_assert_null(s);
	cr_assert_not_null(strstr(err.msg, needle), "%s: '%s' not in: %s", what, needle, err.msg);
	cr_assert_null(strstr(err.msg, marker), "%s: key material in the message", what);
	cr_assert_null(strstr(err.msg, "BEGIN"), "%s: file content in the message", what);
	free(marker);
}

Test(rpc_tls, bad_files_are_errors_at_create_naming_flag_and_path)
{
	bf_tls missing = { .ca_file = "/nonexistent/ca.pem" };
	bf_tls swapped = t_certs_client(&certs, NULL, NULL);
	bf_tls key_as_ca = { .ca_file = certs.client.key };
	bf_tls no_key = t_certs_client(&certs, NULL, NULL);
	bf_tls no_ca = { .cert_file = certs.client.cert, .key_file = certs.client.key };
	bf_tls server_no_cert = { .ca_file = certs.ca, .require_client_cert = true };

	swapped.cert_file = certs.client.key;
	swapped.key_file = certs.client.cert;
	no_key.cert_file = certs.client.cert;
	expect_create_fails("missing", &missing, false, -ENOENT,
			    "etcd: --etcd-cacert /nonexistent/ca.pem: No such file or directory");
	expect_create_fails("swapped", &swapped, false, BF_EINVAL, "--etcd-cert");
	expect_create_fails("key as CA", &key_as_ca, false, BF_EINVAL, "holds no PEM certificate");
	expect_create_fails("cert without key", &no_key, false, BF_EINVAL,
			    "--etcd-cert needs --etcd-key");
	expect_create_fails("client without CA", &no_ca, false, BF_EINVAL, "need --etcd-cacert");
	expect_create_fails("server without a certificate", &server_no_cert, true, BF_EINVAL,
			    "needs --cert and --key");
	cr_assert(!bf_tls_enabled(NULL));
	cr_assert(bf_tls_check(NULL, true, NULL, NULL) == 0);
}

Test(rpc_tls, a_key_that_is_not_the_certificates_is_named)
{
	bf_tls mismatched = t_certs_client(&certs, NULL, &certs.client);
	bf_tls server = t_certs_server(&certs, false);
	bf_rpc_server_opts so = { .label = "store", .tls = &server };
	bf_err err = { 0 };
	int p;

	/* A client learns of it at its first call: gRPC makes no connection. */
	serve(&server);
	mismatched.key_file = certs.other.key;
	bf_rpc_status st = call_as(&mismatched, "127.0.0.1");
	cr_assert(st.tls_refused, "%s", st.details);
	cr_assert_not_null(strstr(bf_rpc_status_tls_hint(&st), "certificate and key"));
	/* A server, when it starts to listen. */
	server.key_file = certs.other.key;
	bf_rpc_server *s = NULL;
	cr_assert_eq(bf_rpc_server_create(&so, &s, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_rpc_server_start(s, "127.0.0.1:0", &p, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "certificate and key do not match"), "%s", err.msg);
	bf_rpc_server_destroy(s);
}
