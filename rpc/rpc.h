/*
 * Internal: bfill's gRPC core transport (DESIGN §9a), shared by the etcd
 * client, the ImportSST client and, later, the store server. It moves
 * message bytes and knows nothing of any service: callers bring the method
 * path, per-call metadata, deadlines and their own retry policy.
 *
 *  - a pool owns channels (one per "host:port" target) and the one thread
 *    that keeps them connecting between calls;
 *  - a unary call is one batch, waited on in short slices so an interrupt
 *    hook can cancel it; it ends in a status the caller interprets;
 *  - a stream (bidi or client-streaming) is driven by the one thread that
 *    owns it: open, send, recv, close_send, wait for the final status;
 *  - a pool's channels speak TLS when it is made with a bf_tls (tls.c): a
 *    handshake either side refuses ends calls with tls_refused set.
 *
 * Deadlines are monotonic milliseconds (bf_now_ms). No gRPC type leaks into
 * this header; status codes are gRPC's numbers under BF_RPC_* names.
 * Messages start with the pool's label and the target ("etcd
 * 127.0.0.1:2379 Range: ..."), so errors say where they happened.
 *
 * Thread safety: pools, channels and unary calls may be used by several
 * threads at once; a stream belongs to one thread.
 *
 * Depends on: gRPC core (its SSL credentials for TLS), util (clocks).
 */
#ifndef BFILL_RPC_H
#define BFILL_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/tls.h"

/* A message's bytes; data is malloc'd and owned by whoever holds the buf. */
typedef struct bf_rpc_buf {
	uint8_t *data;
	size_t len;
} bf_rpc_buf;

/* Frees data and zeroes b (NULL allowed). */
void bf_rpc_buf_free(bf_rpc_buf *b);

/* gRPC status codes (the numbers are gRPC's, from its spec). */
enum {
	BF_RPC_OK = 0,
	BF_RPC_CANCELLED = 1,
	BF_RPC_UNKNOWN = 2,
	BF_RPC_INVALID_ARGUMENT = 3,
	BF_RPC_DEADLINE_EXCEEDED = 4,
	BF_RPC_NOT_FOUND = 5,
	BF_RPC_ALREADY_EXISTS = 6,
	BF_RPC_PERMISSION_DENIED = 7,
	BF_RPC_RESOURCE_EXHAUSTED = 8,
	BF_RPC_FAILED_PRECONDITION = 9,
	BF_RPC_ABORTED = 10,
	BF_RPC_OUT_OF_RANGE = 11,
	BF_RPC_UNIMPLEMENTED = 12,
	BF_RPC_INTERNAL = 13,
	BF_RPC_UNAVAILABLE = 14,
	BF_RPC_DATA_LOSS = 15,
	BF_RPC_UNAUTHENTICATED = 16,
};

/* How a call ended, as the server (or gRPC on its behalf) said. */
typedef struct bf_rpc_status {
	int code;          /* BF_RPC_* */
	char details[256]; /* the status message, cut to fit; "" when none */
	/*
	 * The call never got past the TLS handshake and will not until
	 * someone changes a certificate or a flag: gRPC said the handshake
	 * failed (this side refused the server's certificate, or the server
	 * speaks no TLS), or the server has closed every connection before
	 * HTTP/2 was up for over a second on a channel that never got
	 * through (a TLS server refusing this client's certificate, or a
	 * plain-text client at a TLS server: gRPC tells these apart from
	 * nothing else). Set by the calls and streams; the code stays
	 * UNAVAILABLE.
	 */
	bool tls_refused;
} bf_rpc_status;

/* "UNAVAILABLE" etc.; static, never NULL. */
const char *bf_rpc_status_name(int code);
/* The bfill code for a status: 0, BF_ECANCELLED, BF_ETIMEDOUT, BF_EUNAVAIL,
 * BF_ENOTFOUND, BF_EINVAL, BF_ESTATE, -EACCES (refused, a tls_refused
 * status too), BF_EPROTO (our own receive limit, or anything else). */
int bf_rpc_status_code(const bf_rpc_status *st);
/*
 * For a status with tls_refused: what to check, to follow its details in
 * a message ("the TLS handshake failed: ..."); "" otherwise. Static.
 */
const char *bf_rpc_status_tls_hint(const bf_rpc_status *st);
/*
 * True when the request surely never reached the server: the status is
 * UNAVAILABLE because no connection could be made ("failed to connect to
 * all addresses", "Connection refused"). Any other UNAVAILABLE (socket
 * closed, connection reset, GOAWAY, a server's own UNAVAILABLE) may come
 * after the server received the request, so a write's outcome is unknown.
 */
bool bf_rpc_status_never_sent(const bf_rpc_status *st);

/* ---- channels ----------------------------------------------------------- */

typedef struct bf_rpc_pool bf_rpc_pool;
typedef struct bf_rpc_channel bf_rpc_channel;

typedef struct bf_rpc_pool_opts {
	const char *label;     /* first word of every message ("etcd"); copied */
	size_t max_recv_bytes; /* larger messages are refused; 0 = 4 MiB */
	/* TLS to every server of the pool (bf_tls_check's client role);
	 * NULL, or no file named: plain text. Borrowed for the create. */
	const bf_tls *tls;
	/* How messages name tls's files: "--etcd-" (see bf_tls_check);
	 * NULL = "--". */
	const char *tls_flags;
} bf_rpc_pool_opts;

/*
 * Creates an empty pool and starts its connection thread. Never contacts
 * anyone; reads opts->tls's files, so a missing or unreadable one is an
 * error here (-errno, or BF_EINVAL for a file that is not what its flag
 * says, naming the flag and path). Destroy with bf_rpc_pool_destroy.
 */
int bf_rpc_pool_create(const bf_rpc_pool_opts *opts, bf_rpc_pool **out, bf_err *err);
/*
 * Adds a channel to target ("host:port"), TLS when the pool is; *ch is
 * owned by the pool and stays valid until the pool is destroyed. Connects
 * lazily. With TLS the server's certificate must name target's host.
 */
int bf_rpc_pool_add(bf_rpc_pool *p, const char *target, bf_rpc_channel **ch, bf_err *err);
/* Destroys every channel and joins the thread. Calls and streams on the
 * pool's channels must be finished first. NULL is allowed. */
void bf_rpc_pool_destroy(bf_rpc_pool *p);

/*
 * Sends gRPC core's own log lines nowhere, unless GRPC_VERBOSITY is set in
 * the environment: then to out (a FILE *; NULL: nowhere either), at that
 * level, as gRPC would print them. bfill reports errors itself, one line
 * each, and gRPC's lines (a port in use, a peer gone, a TLS handshake that
 * failed: one per connection attempt) would repeat them. For programs,
 * before the first server or channel is made; the library never calls
 * it. (A TLS server with on_refused takes gRPC's log over in any case,
 * and prints none of it unless this named where.)
 */
void bf_rpc_quiet_library_log(void *out);

/* "host:port"; owned by the channel. */
const char *bf_rpc_channel_target(const bf_rpc_channel *ch);
/* "<label> <host:port>", the start of the channel's messages; owned by it. */
const char *bf_rpc_channel_name(const bf_rpc_channel *ch);

/* ---- calls -------------------------------------------------------------- */

typedef struct bf_rpc_method {
	const char *path; /* "/etcdserverpb.KV/Range"; must outlive the call */
	const char *name; /* "Range", for messages */
} bf_rpc_method;

/* One metadata entry (lowercase key). Copied by the call. */
typedef struct bf_rpc_md {
	const char *key;
	const char *value;
} bf_rpc_md;

#define BF_RPC_MAX_MD 8

typedef struct bf_rpc_call {
	const bf_rpc_method *method;
	const bf_rpc_md *md; /* sent with the request headers; may be NULL */
	size_t n_md;         /* at most BF_RPC_MAX_MD */
	/* Unary: the call's deadline (required). Stream: the whole stream's
	 * deadline, 0 = none (each exchange then has its own). */
	int64_t deadline_ms;
	/* Polled every ~50 ms while the call waits; true cancels it
	 * (BF_ECANCELLED). May be NULL. */
	bool (*interrupted)(void *arg);
	void *interrupt_arg;
} bf_rpc_call;

/*
 * One unary call on ch. A server that closes the connection at the
 * handshake is tried again within the deadline until the call gets
 * through or the refusal is sure (st->tls_refused): the request was never
 * sent. Returns 0 when the call ended with a status (*st;
 * on BF_RPC_OK *reply holds the reply, owned by the caller); BF_ECANCELLED
 * when the interrupt hook cancelled it; BF_ENOMEM, BF_EINVAL or BF_EPROTO
 * when it could not be started or its reply could not be read. *reply is
 * empty whenever the result is not 0 with BF_RPC_OK.
 */
int bf_rpc_unary(bf_rpc_channel *ch, const bf_rpc_call *call, const bf_rpc_buf *req,
		 bf_rpc_status *st, bf_rpc_buf *reply, bf_err *err);

/*
 * Puts a failed status into err as "<name> <method>: STATUS: details" and
 * returns its bfill code (bf_rpc_status_code).
 */
int bf_rpc_status_err(const bf_rpc_channel *ch, const bf_rpc_method *m, const bf_rpc_status *st,
		      bf_err *err);

/* ---- streams ------------------------------------------------------------ */

typedef struct bf_rpc_stream bf_rpc_stream;

/*
 * Starts a streaming call on ch (the metadata goes out at once). ch and
 * call->method are borrowed and must outlive the stream. Free with
 * bf_rpc_stream_destroy.
 */
int bf_rpc_stream_open(bf_rpc_channel *ch, const bf_rpc_call *call, bf_rpc_stream **out,
		       bf_err *err);
/*
 * Queues one message (copied). gRPC allows one send in flight, so this
 * first waits, up to deadline_ms, for the previous one to finish.
 * Errors: BF_ETIMEDOUT, BF_ECANCELLED, or the stream's end (its status
 * mapped as bf_rpc_status_err does; BF_EUNAVAIL when it ended with OK).
 */
/*
 * One message for several streams (every replica gets the same Write
 * batch): its bytes are copied once, and each stream's send takes a
 * reference, so m may be freed as soon as the sends are queued.
 */
typedef struct bf_rpc_msg bf_rpc_msg;
/* A copy of buf as a message; NULL when memory is short. */
bf_rpc_msg *bf_rpc_msg_make(const bf_rpc_buf *buf);
void bf_rpc_msg_free(bf_rpc_msg *m);
/* bf_rpc_stream_send of m. */
int bf_rpc_stream_send_msg(bf_rpc_stream *s, const bf_rpc_msg *m, int64_t deadline_ms,
			   bf_err *err);
int bf_rpc_stream_send(bf_rpc_stream *s, const bf_rpc_buf *msg, int64_t deadline_ms,
		       bf_err *err);
/* Waits up to deadline_ms for the next message; *msg is owned by the
 * caller. A stream that ends instead is an error as for send. */
int bf_rpc_stream_recv(bf_rpc_stream *s, int64_t deadline_ms, bf_rpc_buf *msg, bf_err *err);
/* Half-closes: tells the server no more messages follow (client streaming:
 * after the last send, before reading the one reply). */
int bf_rpc_stream_close_send(bf_rpc_stream *s, int64_t deadline_ms, bf_err *err);
/*
 * Waits up to deadline_ms for the call's final status (*st). Returns 0
 * once it is known, whatever it is; BF_ETIMEDOUT or BF_ECANCELLED when not.
 */
int bf_rpc_stream_wait(bf_rpc_stream *s, int64_t deadline_ms, bf_rpc_status *st, bf_err *err);
/* The final status once the call has ended, NULL before; owned by s. */
const bf_rpc_status *bf_rpc_stream_status(const bf_rpc_stream *s);
/* The channel the stream runs on (borrowed). */
bf_rpc_channel *bf_rpc_stream_channel(const bf_rpc_stream *s);
/* Cancels the call if it is still running, waits for gRPC to let go of
 * every buffer, frees. NULL is allowed. */
void bf_rpc_stream_destroy(bf_rpc_stream *s);

#endif
