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
 * with "http://"; host is a name, an IPv4 address or a bracketed IPv6
 * address, never empty; port is 1..65535 in decimal. Otherwise BF_EINVAL
 * with the offending element named in err ("https://" is refused as TLS,
 * which the etcd client does not speak yet).
 */
int bf_endpoints_check(const char *list, bf_err *err);

#endif
