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

/* The scheme of one element [el, el + len). */
static bf_endpoints_scheme scheme_of(const char *el, size_t len)
{
	return has_prefix(el, len, HTTPS) ? BF_SCHEME_HTTPS
	       : has_prefix(el, len, HTTP) ? BF_SCHEME_HTTP : BF_SCHEME_NONE;
}

/* One element [el, el + len) of the list. */
static int check_one(const char *el, size_t len, bf_err *err)
{
	bf_endpoints_scheme scheme = scheme_of(el, len);
	const char *p = el, *colon;
	size_t n = len, skip = scheme == BF_SCHEME_HTTPS ? strlen(HTTPS)
			       : scheme == BF_SCHEME_HTTP ? strlen(HTTP) : 0;
	bool host_good;

	p += skip;
	n -= skip;
	if (memmem(p, n, "://", 3))
		return bf_errf(err, BF_EINVAL, "endpoint '%.*s': only http:// and https:// are supported",
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
	bool http = false, https = false;
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
		http |= scheme_of(p, len) == BF_SCHEME_HTTP;
		https |= scheme_of(p, len) == BF_SCHEME_HTTPS;
		/* One client speaks TLS to every member or to none. */
		if (http && https)
			return bf_errf(err, BF_EINVAL, "endpoint list '%s' mixes http:// and https://",
				       list);
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

bf_endpoints_scheme bf_endpoints_scheme_of(const char *list)
{
	bf_endpoints_scheme found = BF_SCHEME_NONE;

	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");
		if (scheme_of(p, len) != BF_SCHEME_NONE)
			found = scheme_of(p, len);
		p += len + (p[len] == ',');
	}
	return found;
}
