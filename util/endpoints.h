/*
 * etcd endpoint lists as --etcd takes them, checked before any work so
 * that a bad value is refused at once instead of after a whole scan (and
 * is never stored with a job). Not part of the public API.
 */
#ifndef BFILL_ENDPOINTS_H
#define BFILL_ENDPOINTS_H

#include "bfill/error.h"

/*
 * 0 when list is host:port[,host:port...]: each element optionally starts
 * with "http://" or "https://" (one list never names both); host is a
 * name, an IPv4 address or a bracketed IPv6 address, never empty; port is
 * 1..65535 in decimal. Otherwise BF_EINVAL with the offending element
 * named in err.
 */
int bf_endpoints_check(const char *list, bf_err *err);

/* The scheme a list that passed bf_endpoints_check names. */
typedef enum bf_endpoints_scheme {
	BF_SCHEME_NONE = 0, /* host:port only: TLS when TLS settings are given */
	BF_SCHEME_HTTP,     /* http:// somewhere: plain text */
	BF_SCHEME_HTTPS,    /* https:// somewhere: TLS */
} bf_endpoints_scheme;

bf_endpoints_scheme bf_endpoints_scheme_of(const char *list);

#endif
