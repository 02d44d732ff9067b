/*
 * Internal to rpc/: the channel's definition and the helpers that the
 * unary call (call.c) and the streams (stream.c) share. Only the files in rpc/
 * include this; it is where gRPC core's types may appear.
 */
#ifndef BFILL_RPC_IMPL_H
#define BFILL_RPC_IMPL_H

#include "rpc/rpc.h"

#include <stdatomic.h>

#include "bfill/tls.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

/* How long one wait on a completion queue lasts before the interrupt hook
 * is polled again. */
#define BF_RPC_POLL_SLICE_MS 50

struct bf_rpc_channel {
	grpc_channel *channel; /* owned */
	char *target;          /* "host:port", owned */
	char *name;            /* "<label> <target>", owned */
	bool tls;              /* the pool's channels speak TLS */
	/* For bf_rpc_channel_judge: a server has answered a call here; when
	 * the first connection closed at the handshake (0: none yet). */
	_Atomic bool got_through;
	_Atomic int64_t closed_since_ms;
};

/* Sets st->tls_refused for a call on ch that ended with st (status.c). */
void bf_rpc_channel_judge(bf_rpc_channel *ch, bf_rpc_status *st);
/* True when st, judged, may be a refusal that is not sure yet: the
 * server closed the connection at the handshake on a channel that never
 * got through. */
bool bf_rpc_channel_unsure(const bf_rpc_channel *ch, const bf_rpc_status *st);

/* A gRPC deadline for a monotonic-ms instant (already passed = now). */
gpr_timespec bf_rpc_deadline(int64_t mono_deadline_ms);
/* A gRPC deadline slice ms from now. */
gpr_timespec bf_rpc_after(int64_t ms);

/* A byte buffer holding a copy of msg; NULL when out of memory. The
 * caller destroys it once its send has completed. */
grpc_byte_buffer *bf_rpc_make_message(const bf_rpc_buf *msg);
/* Flattens *bb into out (malloc'd, the caller's) and destroys *bb. */
int bf_rpc_take_message(grpc_byte_buffer **bb, bf_rpc_buf *out);
/* Copies a slice into a NUL-terminated string, cut to n - 1 bytes. */
void bf_rpc_slice_to_str(grpc_slice s, char *out, size_t n);

/* The call's metadata as gRPC entries with copied slices in md[] (room
 * for BF_RPC_MAX_MD); *n set. BF_EINVAL when there are too many. */
int bf_rpc_md_build(const bf_rpc_call *call, grpc_metadata *md, size_t *n);
/* Releases what bf_rpc_md_build made. */
void bf_rpc_md_release(grpc_metadata *md, size_t n);

/*
 * Credentials for t (tls.c): plain text when t names no file, else SSL
 * credentials made from its files, read now and wiped once gRPC has its
 * copy. label starts the messages, flags names the files as
 * bf_tls_check's flag_prefix does. *out is the caller's to release.
 */
int bf_rpc_tls_channel_creds(const bf_tls *t, const char *label, const char *flags,
			     grpc_channel_credentials **out, bf_err *err);
int bf_rpc_tls_server_creds(const bf_tls *t, const char *label, const char *flags,
			    grpc_server_credentials **out, bf_err *err);

/*
 * gRPC core logs a server's failed handshakes and calls nothing of the
 * application's (log.c): while a watch is on, gRPC's log lines pass
 * through a filter that hands each such failure, as one reason ("certificate
 * verify failed"), to every watcher. fn is called from gRPC's threads and
 * must not call into gRPC. bf_rpc_log_unwatch returns once no call of
 * fn(arg) runs any more.
 */
int bf_rpc_log_watch(void (*fn)(void *arg, const char *why), void *arg);
void bf_rpc_log_unwatch(void (*fn)(void *arg, const char *why), void *arg);

#endif
