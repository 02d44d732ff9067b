/*
 * gRPC core's log (rpc.h, rpc_impl.h): one function of bfill's own takes
 * the lines gRPC logs, so that a program can silence them
 * (bf_rpc_quiet_library_log) and a TLS server can hear of the clients it
 * refused at the handshake (bf_rpc_log_watch), which gRPC core tells the
 * application of in no other way. It prints only to the FILE a program
 * named: the library prints nothing on its own.
 *
 * What gRPC 1.51 logs of a failed handshake (docs/security.md): on either
 * side, an ERROR line from its TSI layer ("Handshake failed with fatal
 * error SSL_ERROR_SSL: ..."); on a server only, a DEBUG line from the
 * HTTP/2 server, "Handshaking failed: <status>:<reason> {<details>}". That
 * second line is the one a refusal is read from, so a client's own failed
 * handshakes (a store forwarding to another) are never taken for
 * refusals. While a watch is on, gRPC's verbosity is DEBUG and this filter
 * prints only what GRPC_VERBOSITY asked for, where the program said.
 *
 * Depends on: gRPC core's log API, libc.
 */
#include "rpc/rpc_impl.h"

#include <grpc/support/log.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WATCHERS 16
#define PRINT_NONE 3 /* above every severity */
#define REFUSAL_FILE "chttp2_server.cc"
#define REFUSAL_START "Handshaking failed: "

typedef struct watcher {
	void (*fn)(void *arg, const char *why);
	void *arg;
} watcher;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* watchers; held while they run */
static watcher watchers[MAX_WATCHERS];
static int n_watchers;
/* The least severity printed (gpr_log_severity; PRINT_NONE: none), and
 * where (NULL: nowhere). */
static atomic_int print_min = PRINT_NONE;
static _Atomic(FILE *) print_to;

/* GRPC_VERBOSITY's level, -1 when unset or not one gRPC knows. */
static int env_verbosity(void)
{
	static const char *const names[] = { "DEBUG", "INFO", "ERROR", "NONE" };
	const char *v = getenv("GRPC_VERBOSITY");

	for (int i = 0; v && i < 4; i++)
		if (!strcasecmp(v, names[i]))
			return i;
	return -1;
}

/* The level gRPC would use without a watch. */
static int own_verbosity(void)
{
	int v = env_verbosity();
	return v >= 0 ? v : GPR_LOG_SEVERITY_ERROR;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);
	return n >= m && !strcmp(s + n - m, tail);
}

/*
 * The reason in a "Handshaking failed" message, cut to why (n bytes):
 * OpenSSL's own words after its "routines::", put in terms of what the
 * client did where that is certain. Connections that closed before any
 * TLS was spoken (a port probe, a client that gave up) are not refusals:
 * false for them.
 */
static bool refusal_reason(const char *msg, char *why, size_t n)
{
	static const struct {
		const char *openssl, *said;
	} known[] = {
		{ "wrong version number", "the client does not speak TLS" },
		{ "http request", "the client does not speak TLS" },
		{ "peer did not return a certificate", "the client showed no certificate" },
		{ "certificate verify failed", "the client's certificate is not signed by the CA, "
					       "has expired or is not valid yet" },
		{ "missing selected ALPN property", "the client does not speak HTTP/2 over TLS" },
	};
	const char *p = msg + strlen(REFUSAL_START), *end, *colons;
	size_t len;

	if (!strstr(p, "andshake failed") && !strstr(p, "Cannot check peer"))
		return false;
	end = strstr(p, " {");
	len = end ? (size_t)(end - p) : strlen(p);
	colons = NULL;
	for (const char *q = p; (q = strstr(q, "::")) && q < p + len; q += 2)
		colons = q + 2;
	if (colons) {
		len -= (size_t)(colons - p);
		p = colons;
	} else if (!strncmp(p, "UNKNOWN:", 8)) {
		p += 8;
		len -= 8;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (memmem(p, len, known[i].openssl, strlen(known[i].openssl))) {
			snprintf(why, n, "%s (%.*s)", known[i].said, (int)len, p);
			return true;
		}
	snprintf(why, n, "%.*s", (int)len, p);
	return true;
}

static void log_line(gpr_log_func_args *a)
{
	char why[256];

	if (a->severity == GPR_LOG_SEVERITY_DEBUG && a->file && a->message &&
	    ends_with(a->file, REFUSAL_FILE) &&
	    !strncmp(a->message, REFUSAL_START, strlen(REFUSAL_START)) &&
	    refusal_reason(a->message, why, sizeof(why))) {
		pthread_mutex_lock(&mu);
		for (int i = 0; i < n_watchers; i++)
			watchers[i].fn(watchers[i].arg, why);
		pthread_mutex_unlock(&mu);
	}
	FILE *out = atomic_load(&print_to);
	if (out && (int)a->severity >= atomic_load(&print_min))
		fprintf(out, "%c %s:%d] %s\n", "DIE"[a->severity % 3], a->file ? a->file : "?",
			a->line, a->message ? a->message : "");
}

void bf_rpc_quiet_library_log(void *out)
{
	int v = env_verbosity();

	atomic_store(&print_to, (FILE *)out);
	atomic_store(&print_min, v >= 0 ? v : PRINT_NONE);
	gpr_set_log_function(log_line);
}

int bf_rpc_log_watch(void (*fn)(void *arg, const char *why), void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&mu);
	if (n_watchers == MAX_WATCHERS) {
		rc = BF_ERANGE;
		goto out;
	}
	watchers[n_watchers++] = (watcher){ fn, arg };
	if (n_watchers == 1) {
		gpr_set_log_function(log_line);
		gpr_set_log_verbosity(GPR_LOG_SEVERITY_DEBUG);
	}
out:
	pthread_mutex_unlock(&mu);
	return rc;
}

void bf_rpc_log_unwatch(void (*fn)(void *arg, const char *why), void *arg)
{
	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_watchers; i++)
		if (watchers[i].fn == fn && watchers[i].arg == arg) {
			watchers[i] = watchers[--n_watchers];
			break;
		}
	if (n_watchers == 0)
		gpr_set_log_verbosity(own_verbosity());
	pthread_mutex_unlock(&mu);
}
