/*
 * TLS for the transport (bfill/tls.h): a bf_tls's files read into memory,
 * handed to gRPC core's SSL credentials (which copy them) and wiped from
 * ours at once, so the private key's bytes live in bfill's memory only for
 * the length of a create call. Messages name a file by its flag and path,
 * never by anything read from it.
 *
 * Depends on: gRPC core's security API, libc.
 */
#include "rpc/rpc_impl.h"
#include "bfill/tls.h"

#include <grpc/grpc_security.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A CA bundle or a chain is a few KiB; anything this big is not a PEM
 * file someone meant to give. */
#define PEM_MAX ((size_t)1 << 20)

bool bf_tls_enabled(const bf_tls *t)
{
	return t && (t->ca_file || t->cert_file || t->key_file || t->require_client_cert);
}

int bf_tls_check(const bf_tls *t, bool server, const char *flag_prefix, bf_err *err)
{
	const char *f = flag_prefix ? flag_prefix : "--";

	if (!bf_tls_enabled(t))
		return 0;
	if (t->cert_file && !t->key_file)
		return bf_errf(err, BF_EINVAL, "%scert needs %skey, the certificate's private key", f, f);
	if (t->key_file && !t->cert_file)
		return bf_errf(err, BF_EINVAL, "%skey needs %scert, the certificate it belongs to", f, f);
	if (server && !t->cert_file)
		return bf_errf(err, BF_EINVAL, "a TLS server needs %scert and %skey: it shows a certificate",
			       f, f);
	if (server && t->require_client_cert && !t->ca_file)
		return bf_errf(err, BF_EINVAL, "--require-client-cert needs %scacert, the CA that signs "
			       "client certificates", f);
	if (!server && !t->ca_file)
		return bf_errf(err, BF_EINVAL, "%scert and %skey need %scacert, the CA that signed the "
			       "server's certificate", f, f, f);
	return 0;
}

typedef struct pem {
	char *text; /* malloc'd, NUL-terminated; wiped before it is freed */
	size_t len;
} pem;

typedef struct pem_set {
	pem ca, cert, key;
} pem_set;

static void pem_wipe(pem *p)
{
	if (p->text) {
		explicit_bzero(p->text, p->len);
		free(p->text);
	}
	p->text = NULL;
	p->len = 0;
}

static void pem_set_wipe(pem_set *s)
{
	pem_wipe(&s->ca);
	pem_wipe(&s->cert);
	pem_wipe(&s->key);
}

/*
 * Reads path (given as flag) into *out; what it must hold is checked by
 * looking for the PEM marker, so a key given as a certificate is named
 * here rather than failing every handshake later.
 */
static int pem_read(const char *path, const char *flag, bool key, pem *out, bf_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	struct stat sb;
	ssize_t got;
	size_t len = 0;

	if (fd < 0)
		return bf_errf(err, -errno, "%s %s: %s", flag, path, strerror(errno));
	if (fstat(fd, &sb) != 0) {
		rc = bf_errf(err, -errno, "%s %s: %s", flag, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > PEM_MAX) {
		rc = bf_errf(err, BF_EINVAL, "%s %s: not a PEM file (%s)", flag, path,
			     S_ISREG(sb.st_mode) ? "larger than 1 MiB" : "not a regular file");
		goto out;
	}
	out->text = malloc((size_t)sb.st_size + 1);
	if (!out->text) {
		rc = bf_errf(err, BF_ENOMEM, "%s %s: out of memory", flag, path);
		goto out;
	}
	out->len = (size_t)sb.st_size + 1;
	while (len < (size_t)sb.st_size &&
	       (got = read(fd, out->text + len, (size_t)sb.st_size - len)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = bf_errf(err, -errno, "%s %s: %s", flag, path, strerror(errno));
			goto out;
		}
		len += (size_t)got;
	}
	out->text[len] = '\0';
	if (key ? !strstr(out->text, "PRIVATE KEY-----") || strstr(out->text, "ENCRYPTED")
		: !strstr(out->text, "-----BEGIN CERTIFICATE-----"))
		rc = bf_errf(err, BF_EINVAL, "%s %s: %s", flag, path,
			     !key ? "holds no PEM certificate"
			     : strstr(out->text, "ENCRYPTED") ? "the private key is encrypted; give it "
								"unencrypted (readable by this user only)"
							      : "holds no PEM private key");
out:
	close(fd);
	if (rc)
		pem_wipe(out);
	return rc;
}

/* Checks t for its role and reads its files; label starts the messages. */
static int pem_set_load(const bf_tls *t, bool server, const char *label, const char *flags,
			pem_set *s, bf_err *err)
{
	const char *f = flags ? flags : "--";
	char flag[64];
	int rc = bf_tls_check(t, server, flags, err);

	memset(s, 0, sizeof(*s));
	if (rc == 0 && t->ca_file) {
		snprintf(flag, sizeof(flag), "%scacert", f);
		rc = pem_read(t->ca_file, flag, false, &s->ca, err);
	}
	if (rc == 0 && t->cert_file) {
		snprintf(flag, sizeof(flag), "%scert", f);
		rc = pem_read(t->cert_file, flag, false, &s->cert, err);
	}
	if (rc == 0 && t->key_file) {
		snprintf(flag, sizeof(flag), "%skey", f);
		rc = pem_read(t->key_file, flag, true, &s->key, err);
	}
	if (rc) {
		pem_set_wipe(s);
		bf_err_prefix(err, rc, "%s", label);
	}
	return rc;
}

int bf_rpc_tls_channel_creds(const bf_tls *t, const char *label, const char *flags,
			     grpc_channel_credentials **out, bf_err *err)
{
	pem_set s;
	int rc;

	*out = NULL;
	if (!bf_tls_enabled(t)) {
		*out = grpc_insecure_credentials_create();
		return 0;
	}
	rc = pem_set_load(t, false, label, flags, &s, err);
	if (rc)
		return rc;
	grpc_ssl_pem_key_cert_pair pair = { .private_key = s.key.text, .cert_chain = s.cert.text };
	*out = grpc_ssl_credentials_create_ex(s.ca.text, s.key.text ? &pair : NULL, NULL, NULL);
	pem_set_wipe(&s);
	if (!*out)
		return bf_errf(err, BF_EINVAL, "%s: gRPC refused the TLS settings", label);
	return 0;
}

int bf_rpc_tls_server_creds(const bf_tls *t, const char *label, const char *flags,
			    grpc_server_credentials **out, bf_err *err)
{
	pem_set s;
	int rc;

	*out = NULL;
	if (!bf_tls_enabled(t)) {
		*out = grpc_insecure_server_credentials_create();
		return 0;
	}
	rc = pem_set_load(t, true, label, flags, &s, err);
	if (rc)
		return rc;
	grpc_ssl_pem_key_cert_pair pair = { .private_key = s.key.text, .cert_chain = s.cert.text };
	*out = grpc_ssl_server_credentials_create_ex(
		s.ca.text, &pair, 1,
		t->require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
				       : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		NULL);
	pem_set_wipe(&s);
	if (!*out)
		return bf_errf(err, BF_EINVAL, "%s: gRPC refused the TLS settings", label);
	return 0;
}
