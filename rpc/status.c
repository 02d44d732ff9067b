/*
 * gRPC statuses (rpc.h): their names, what they mean as bfill codes,
 * whether a failed request can have reached the server at all, and
 * whether a failed connection was a refused TLS handshake.
 *
 * Depends on: libc, util (clocks); the codes are gRPC's numbers.
 */
#include "rpc/rpc_impl.h"
#include "util/util.h"

#include <errno.h>
#include <stdatomic.h>
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
	if (st->tls_refused)
		return -EACCES;
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

/*
 * What gRPC 1.51 says of a connection attempt that failed: a TLS handshake
 * that failed on this side is named ("Ssl handshake failed: ... certificate
 * verify failed"); one the server ended is only a connection closed under
 * it ("Socket closed" from a gRPC server, "Endpoint read failed" from Go's,
 * etcd's), which is also what a plain-text client at a TLS server sees.
 */
#define CONNECT_FAILED "failed to connect to all addresses"
#define NO_SUBCHANNEL "empty address list"

static bool handshake_failed(const char *details)
{
	return strstr(details, "andshake failed") != NULL;
}

static bool closed_at_connect(const char *details)
{
	return strstr(details, "Socket closed") || strstr(details, "Endpoint read failed") ||
	       strstr(details, "Connection reset");
}

/* Closed connections are taken for a refusal once they have gone on this
 * long with nothing else in between: two connection attempts at the
 * pool's reconnect backoff, so a server that was only starting or
 * stopping has had time to show it. */
#define REFUSAL_SURE_MS 1500

void bf_rpc_channel_judge(bf_rpc_channel *ch, bf_rpc_status *st)
{
	int64_t now, since = 0;

	st->tls_refused = false;
	if (atomic_load(&ch->got_through))
		return;
	if (st->code != BF_RPC_UNAVAILABLE && st->code != BF_RPC_DEADLINE_EXCEEDED &&
	    st->code != BF_RPC_CANCELLED) {
		atomic_store(&ch->got_through, true); /* the server answered */
		return;
	}
	/* gRPC's client made no connection at all: it could not use the
	 * certificate and key it was given (it says why only in its log). */
	if (ch->tls && st->code == BF_RPC_UNAVAILABLE && strstr(st->details, NO_SUBCHANNEL)) {
		st->tls_refused = true;
		return;
	}
	if (st->code != BF_RPC_UNAVAILABLE || !strstr(st->details, CONNECT_FAILED))
		return;
	if (handshake_failed(st->details)) {
		st->tls_refused = true;
		return;
	}
	if (!closed_at_connect(st->details)) {
		/* A server down or unreachable in between: the closes that
		 * count must follow each other. */
		atomic_store(&ch->closed_since_ms, 0);
		return;
	}
	now = bf_now_ms();
	if (!atomic_compare_exchange_strong(&ch->closed_since_ms, &since, now))
		st->tls_refused = now - since >= REFUSAL_SURE_MS;
}

bool bf_rpc_channel_unsure(const bf_rpc_channel *ch, const bf_rpc_status *st)
{
	return !st->tls_refused && !atomic_load(&((bf_rpc_channel *)ch)->got_through) &&
	       st->code == BF_RPC_UNAVAILABLE && strstr(st->details, CONNECT_FAILED) &&
	       closed_at_connect(st->details);
}

const char *bf_rpc_status_tls_hint(const bf_rpc_status *st)
{
	if (!st->tls_refused)
		return "";
	if (strstr(st->details, NO_SUBCHANNEL))
		return "gRPC cannot use this client's TLS certificate and key (do they belong "
		       "together?)";
	if (handshake_failed(st->details))
		return "the TLS handshake failed (is the CA the one that signed the server's "
		       "certificate, and does the certificate name this address?)";
	return "the server closes every connection at the handshake (TLS on one side only, or a "
	       "client certificate it does not accept?)";
}

int bf_rpc_status_err(const bf_rpc_channel *ch, const bf_rpc_method *m, const bf_rpc_status *st,
		      bf_err *err)
{
	return bf_errf(err, bf_rpc_status_code(st), "%s %s: %s%s%s: %s", ch->name, m->name,
		       bf_rpc_status_tls_hint(st), st->tls_refused ? ": " : "",
		       bf_rpc_status_name(st->code), *st->details ? st->details : "(no details)");
}
