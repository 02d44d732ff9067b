/*
 * Internal to rpc/: the channel's definition and the helpers that the
 * unary call (call.c) and the streams (stream.c) share. Only the files in rpc/
 * include this; it is where gRPC core's types may appear.
 */
#ifndef BFILL_RPC_IMPL_H
#define BFILL_RPC_IMPL_H

#include "rpc/rpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

/* How long one wait on a completion queue lasts before the interrupt hook
 * is polled again. */
#define BF_RPC_POLL_SLICE_MS 50

struct bf_rpc_channel {
	grpc_channel *channel; /* owned */
	char *target;          /* "host:port", owned */
	char *name;            /* "<label> <target>", owned */
};

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

#endif
