/*
 * gRPC statuses (rpc.h): their names, what they mean as bfill codes, and
 * whether a failed request can have reached the server at all.
 *
 * Depends on: libc only (the codes are gRPC's numbers, not its headers).
 */
#include "rpc/rpc_impl.h"

#include <errno.h>
#include <string.h>

const char *bf_rpc_status_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "UNKNOWN_STATUS";
}

int bf_rpc_status_code(const bf_rpc_status *st)
{
	switch (st->code) {
	case BF_RPC_OK:
		return 0;
	case BF_RPC_CANCELLED:
		return BF_ECANCELLED;
	case BF_RPC_DEADLINE_EXCEEDED:
		return BF_ETIMEDOUT;
	case BF_RPC_UNAVAILABLE:
		return BF_EUNAVAIL;
	case BF_RPC_NOT_FOUND:
		return BF_ENOTFOUND;
	case BF_RPC_INVALID_ARGUMENT:
		return BF_EINVAL;
	case BF_RPC_RESOURCE_EXHAUSTED:
		/* Our own receive limit shows up as RESOURCE_EXHAUSTED too. */
		return strstr(st->details, "larger than max") ? BF_EPROTO : BF_EUNAVAIL;
	case BF_RPC_FAILED_PRECONDITION:
	case BF_RPC_OUT_OF_RANGE:
	case BF_RPC_ALREADY_EXISTS:
	case BF_RPC_ABORTED:
		return BF_ESTATE;
	case BF_RPC_PERMISSION_DENIED:
	case BF_RPC_UNAUTHENTICATED:
		return -EACCES;
	default:
		return BF_EPROTO;
	}
}

/*
 * gRPC core (1.51) fails a call that found no usable connection with
 * "failed to connect to all addresses; last error: ... Connection
 * refused"; a call that had a connection and lost it says "Socket
 * closed", "Connection reset by peer", "Broken pipe", "GOAWAY received",
 * "keepalive watchdog timeout"... and may have been received already.
 * Only the first kind is safe to send again elsewhere.
 */
bool bf_rpc_status_never_sent(const bf_rpc_status *st)
{
	if (st->code != BF_RPC_UNAVAILABLE)
		return false;
	return strstr(st->details, "failed to connect to all addresses") != NULL ||
	       strstr(st->details, "Connection refused") != NULL;
}

int bf_rpc_status_err(const bf_rpc_channel *ch, const bf_rpc_method *m, const bf_rpc_status *st,
		      bf_err *err)
{
	return bf_errf(err, bf_rpc_status_code(st), "%s %s: %s: %s", ch->name, m->name,
		       bf_rpc_status_name(st->code), *st->details ? st->details : "(no details)");
}
