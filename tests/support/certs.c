/* TLS certificates for tests (certs.h). */
#include "tests/support/certs.h"
#include "tests/support/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void t_certs_make(t_certs *c, const char *dir)
{
	char script[PATH_MAX];
	struct {
		t_pair *p;
		const char *name;
	} pairs[] = { { &c->server, "server" }, { &c->client, "client" },
		      { &c->other, "other" }, { &c->expired, "expired" } };

	if (system("command -v openssl >/dev/null 2>&1") != 0)
		cr_skip_test("openssl is not installed (Debian: apt-get install openssl); the TLS "
			     "tests make their certificates with it");
	cr_assert_not_null(realpath("scripts/tls-certs.sh", script),
			   "scripts/tls-certs.sh: run the tests from the repository's top");
	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "%s/certs", dir);
	char *argv[] = { script, c->dir, NULL };
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 0, "%s: exit %d: %s", script, r.status, r.err);
	t_run_free(&r);
	snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
	snprintf(c->ca2, sizeof(c->ca2), "%s/ca2.pem", c->dir);
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		snprintf(pairs[i].p->cert, PATH_MAX, "%s/%s.pem", c->dir, pairs[i].name);
		snprintf(pairs[i].p->key, PATH_MAX, "%s/%s.key", c->dir, pairs[i].name);
		cr_assert(t_path_exists(pairs[i].p->cert) && t_path_exists(pairs[i].p->key),
			  "%s: no %s pair", script, pairs[i].name);
	}
}

bf_tls t_certs_client(const t_certs *c, const char *ca, const t_pair *p)
{
	return (bf_tls){ .ca_file = ca ? ca : c->ca, .cert_file = p ? p->cert : NULL,
			 .key_file = p ? p->key : NULL };
}

bf_tls t_certs_server(const t_certs *c, bool require_client_cert)
{
	return (bf_tls){ .ca_file = c->ca, .cert_file = c->server.cert, .key_file = c->server.key,
			 .require_client_cert = require_client_cert };
}

bf_etcd_security t_certs_etcd(const t_certs *c)
{
	return (bf_etcd_security){ .tls = t_certs_client(c, NULL, &c->client) };
}

const char *t_certs_flags(const t_certs *c, const char *prefix, const char *ca, const t_pair *p)
{
	static char etcd_buf[3 * PATH_MAX + 64], store_buf[3 * PATH_MAX + 64];
	char *buf = !strcmp(prefix, "--etcd-") ? etcd_buf : store_buf;
	size_t n = sizeof(etcd_buf);
	int off = snprintf(buf, n, " %scacert %s", prefix, ca ? ca : c->ca);

	if (p)
		snprintf(buf + off, n - (size_t)off, " %scert %s %skey %s", prefix, p->cert, prefix,
			 p->key);
	return buf;
}

char *t_certs_key_marker(const t_pair *p)
{
	char *text = t_read_file(p->key), *line = text, *marker;

	/*
	 * Past the PEM header, the first base64 line of a P-256 key in PKCS#8
	 * is mostly ASN.1 that every such key shares; the second starts at
	 * byte 48, inside the 32 secret bytes (36..67).
	 */
	for (int i = 0; i < 2 && line; i++)
		line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL;
	cr_assert(line && strcspn(line, "-\n") >= 24,
		  "%s: not a PEM key as scripts/tls-certs.sh makes them", p->key);
	marker = strndup(line, 24);
	free(text);
	cr_assert_not_null(marker);
	return marker;
}
