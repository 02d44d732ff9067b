/*
 * Checking an etcd endpoint list (util/endpoints.h). The etcd client
 * hands each element to gRPC as a target, which resolves it only when a
 * call is made: without this check a typo surfaced at the first import,
 * and a port above 65535 silently became another port.
 */
#include "util/endpoints.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#define HTTP "http://"
#define HTTPS "https://"
#define PORT_MAX 65535

static bool has_prefix(const char *p, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && !strncmp(p, prefix, n);
}

/* A host name or IPv4 address: letters, digits, '.', '-', '_'. */
static bool host_ok(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)p[i]) && !strchr(".-_", p[i]))
			return false;
	return len > 0;
}

/* The inside of "[...]": hex digits, ':' and '.' (an IPv4 tail). */
static bool ipv6_ok(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)p[i]) && p[i] != ':' && p[i] != '.')
			return false;
	return len > 1 && memchr(p, ':', len);
}

/* Decimal 1..65535, digits only (no sign, no spaces). */
static bool port_ok(const char *p, size_t len)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return v >= 1 && v <= PORT_MAX;
}

/* One element [el, el + len) of the list. */
static int check_one(const char *el, size_t len, bf_err *err)
{
	const char *p = el, *colon;
	size_t n = len;
	bool host_good;

	if (has_prefix(p, n, HTTPS))
		return bf_errf(err, BF_EINVAL, "endpoint '%.*s': TLS (https://) is not supported yet;"
			       " use http:// or host:port", (int)len, el);
	if (has_prefix(p, n, HTTP)) {
		p += strlen(HTTP);
		n -= strlen(HTTP);
	}
	if (memmem(p, n, "://", 3))
		return bf_errf(err, BF_EINVAL, "endpoint '%.*s': only http:// is supported",
			       (int)len, el);
	if (n > 0 && *p == '[') {
		const char *close = memchr(p, ']', n);
		if (!close || close + 1 == p + n || close[1] != ':')
			return bf_errf(err, BF_EINVAL, "endpoint '%.*s': expected [ipv6]:port",
				       (int)len, el);
		host_good = ipv6_ok(p + 1, (size_t)(close - p - 1));
		colon = close + 1;
	} else {
		colon = memchr(p, ':', n);
		if (colon && memchr(colon + 1, ':', (size_t)(p + n - colon - 1)))
			return bf_errf(err, BF_EINVAL, "endpoint '%.*s': put an IPv6 address in"
				       " brackets, [addr]:port", (int)len, el);
		host_good = colon && host_ok(p, (size_t)(colon - p));
	}
	if (!colon)
		return bf_errf(err, BF_EINVAL, "endpoint '%.*s': expected host:port", (int)len, el);
	if (colon == p)
		return bf_errf(err, BF_EINVAL, "endpoint '%.*s': the host is empty", (int)len, el);
	if (!host_good)
		return bf_errf(err, BF_EINVAL, "endpoint '%.*s': '%.*s' is not a host name or address",
			       (int)len, el, (int)(colon - p), p);
	if (!port_ok(colon + 1, (size_t)(p + n - colon - 1)))
		return bf_errf(err, BF_EINVAL, "endpoint '%.*s': the port must be a number 1..%d",
			       (int)len, el, PORT_MAX);
	return 0;
}

int bf_endpoints_check(const char *list, bf_err *err)
{
	const char *p = list;
	int rc;

	if (!list || !*list)
		return bf_errf(err, BF_EINVAL, "the endpoint list is empty");
	for (;;) {
		size_t len = strcspn(p, ",");
		if (len == 0)
			return bf_errf(err, BF_EINVAL, "endpoint list '%s' has an empty element", list);
		rc = check_one(p, len, err);
		if (rc)
			return rc;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}
