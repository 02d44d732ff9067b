/*
 * Internal: bfill's gRPC core server (DESIGN §9a), the other half of
 * rpc.h's transport. It listens on one address, takes calls on one
 * completion queue and runs each on a worker thread, dispatching by method
 * path to handlers of two kinds: unary (the request is read before the
 * handler runs) and client streaming (the handler pulls messages until the
 * client half-closes). It knows nothing of any service: handlers bring
 * their own message formats and status texts.
 *
 *  - Each call runs start to end on one worker, so a handler may block (on
 *    disk, on a call to another server) and reads like straight-line code.
 *    The pool starts with `threads` workers and grows, up to `max_threads`,
 *    whenever every worker is busy, so a handler that waits on another
 *    server (which may be waiting on this one) cannot starve the calls that
 *    would unblock it.
 *  - A call ends once: with a reply (status OK) or a status with details,
 *    sent by the handler; a handler that returns without either ends its
 *    call with INTERNAL. gRPC ends calls itself for messages over the
 *    receive limit (RESOURCE_EXHAUSTED), for unknown methods the layer
 *    answers UNIMPLEMENTED, and a stream that sends nothing for
 *    `idle_timeout_ms` is ended with DEADLINE_EXCEEDED.
 *  - Stopping stops taking calls, lets the calls in flight finish for a
 *    grace period, cancels the rest (a handler waiting in a receive sees
 *    BF_ECANCELLED) and joins the workers.
 *
 * No gRPC type leaks into this header; statuses are rpc.h's BF_RPC_*.
 * Depends on: gRPC core, util (clocks).
 */
#ifndef BFILL_RPC_SERVER_H
#define BFILL_RPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "bfill/error.h"
#include "rpc/rpc.h"

typedef struct bf_rpc_server bf_rpc_server;
/* One call in progress, handed to its handler; valid until the handler
 * returns. Used by that handler's thread only. */
typedef struct bf_rpc_server_call bf_rpc_server_call;

typedef enum bf_rpc_kind {
	BF_RPC_KIND_UNARY = 0,     /* one request, one reply */
	BF_RPC_KIND_CLIENT_STREAM, /* requests until the half-close, one reply */
} bf_rpc_kind;

/*
 * A method's handler. req is the request of a unary method (borrowed for
 * the handler's run), NULL for a client stream (read it with
 * bf_rpc_server_recv). arg is the one given with the method. The handler
 * ends the call with bf_rpc_server_reply or bf_rpc_server_fail.
 */
typedef void (*bf_rpc_handler)(bf_rpc_server_call *call, const bf_rpc_buf *req, void *arg);

typedef struct bf_rpc_server_opts {
	const char *label;      /* first word of messages ("store"); copied */
	int threads;            /* workers started with the server; 0 = 4 */
	int max_threads;        /* the most it grows to; 0 = 64 (at least threads) */
	size_t max_recv_bytes;  /* larger messages end their call; 0 = 4 MiB */
	int idle_timeout_ms;    /* a stream silent this long is ended; 0 = 60000 */
	/*
	 * Told of every call that ends with a status other than OK, from the
	 * handler's thread: the method path, the client's address and the
	 * status. For one log line per failed call. May be NULL.
	 */
	void (*on_error)(void *arg, const char *method, const char *peer, int code,
			 const char *details);
	void *on_error_arg;
	/* TLS (bf_tls_check's server role); NULL, or no file named: plain
	 * text. Read by bf_rpc_server_create; borrowed for that call. */
	const bf_tls *tls;
	const char *tls_flags; /* how messages name tls's files; NULL = "--" */
	/*
	 * Told (with on_error_arg) of every client refused at the TLS
	 * handshake, with gRPC's reason ("certificate verify failed"), from
	 * one of gRPC's threads; it must not call into gRPC. gRPC says
	 * neither the client's address nor which listener refused it, so
	 * with several TLS servers in one process each hears of every
	 * refusal. May be NULL.
	 */
	void (*on_refused)(void *arg, const char *why);
} bf_rpc_server_opts;

/* A server with no methods, not listening yet. opts may be NULL. Reads
 * opts->tls's files now (errors as bf_rpc_pool_create's). Free with
 * bf_rpc_server_destroy. */
int bf_rpc_server_create(const bf_rpc_server_opts *opts, bf_rpc_server **out, bf_err *err);
/*
 * Routes calls to path ("/import_sstpb.ImportSST/Write") to fn with arg
 * (borrowed; must outlive the server). Before bf_rpc_server_start only.
 * BF_EEXIST for a path added twice.
 */
int bf_rpc_server_add_method(bf_rpc_server *s, const char *path, bf_rpc_kind kind,
			     bf_rpc_handler fn, void *arg, bf_err *err);
/*
 * Listens on addr ("host:port"; port 0 takes a free one, put in *port when
 * port is not NULL), in TLS when the options gave it, and starts the
 * workers. A port another
 * socket holds is an error (no SO_REUSEPORT sharing).
 */
int bf_rpc_server_start(bf_rpc_server *s, const char *addr, int *port, bf_err *err);
/* True once bf_rpc_server_stop has begun: handlers that wait on anything
 * else poll it to give up early. */
bool bf_rpc_server_stopping(const bf_rpc_server *s);
/*
 * Stops taking calls, waits up to grace_ms for the calls in flight, then
 * cancels the remaining ones, waits for their handlers to return and joins
 * the workers. Safe to call more than once, or on a server never started.
 */
void bf_rpc_server_stop(bf_rpc_server *s, int grace_ms);
/* Stops (no grace) if needed and frees. NULL is allowed. */
void bf_rpc_server_destroy(bf_rpc_server *s);

/* ---- in a handler -------------------------------------------------------- */

/* The method path; owned by the call. */
const char *bf_rpc_server_call_method(const bf_rpc_server_call *c);
/* The client's address ("ipv4:127.0.0.1:4242"); owned by the call. */
const char *bf_rpc_server_call_peer(const bf_rpc_server_call *c);
/* The server the call came to (borrowed). */
bf_rpc_server *bf_rpc_server_call_server(const bf_rpc_server_call *c);
/*
 * The value of request metadata key (lowercase), NUL-terminated, owned by
 * the call; NULL when absent. With repeated keys, the first.
 */
const char *bf_rpc_server_call_md(bf_rpc_server_call *c, const char *key);
/*
 * The next message of a client stream: 0 with *msg (owned by the caller)
 * and *end false; 0 with *end true and *msg empty once the client has
 * half-closed. BF_ECANCELLED when the call ended under the handler (the
 * client cancelled or went away, its deadline passed, the message was
 * over the limit, the server is stopping); BF_ETIMEDOUT when nothing came
 * for idle_timeout_ms (the call is ended then). After an error the call
 * has ended: the handler cleans up and returns.
 */
int bf_rpc_server_recv(bf_rpc_server_call *c, bf_rpc_buf *msg, bool *end, bf_err *err);
/* Ends the call with reply and status OK. BF_ECANCELLED when the call had
 * ended before the reply could go out. */
int bf_rpc_server_reply(bf_rpc_server_call *c, const bf_rpc_buf *reply, bf_err *err);
/* Ends the call with status code (BF_RPC_*, not OK) and the formatted
 * details (cut to 1 KiB). Returns 0, or BF_ECANCELLED as for a reply. */
int bf_rpc_server_fail(bf_rpc_server_call *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* True once the call has been ended by its handler. */
bool bf_rpc_server_call_ended(const bf_rpc_server_call *c);

#endif
