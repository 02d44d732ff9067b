/*
 * The import lock (DESIGN §6): one interface, two implementations.
 *
 *  - in-process (no endpoints): for the embedded default; mutual exclusion
 *    between threads of this process, tokens from a counter.
 *  - etcd (endpoints given): etcd's concurrency recipe over gRPC, with a
 *    short-TTL session lease kept alive in the background, a deadline on
 *    every call, failover between endpoints and fencing by the lock key's
 *    create revision.
 *
 * Rules every caller relies on: acquiring never builds a mutex on a missing
 * session (session failures are errors that are retried, never crashes);
 * bf_lock_acquire gives up after timeout_s with an error naming the last
 * cause; bf_lock_release and bf_lock_destroy are safe on every exit path.
 */
#ifndef BFILL_LOCK_H
#define BFILL_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_lock bf_lock;

typedef struct bf_lock_opts {
	const char *endpoints;  /* "host:port,host:port"; NULL or "" = in-process */
	const char *prefix;     /* key prefix; NULL = "/bfill/lock" */
	int ttl_s;              /* session lease TTL; 0 = 10 */
	int timeout_s;          /* acquire deadline; 0 = 60 */
	int call_timeout_ms;    /* deadline of each etcd call; 0 = 2000 */
	/*
	 * Called (from the acquiring thread) each time an acquire attempt fails
	 * and will be retried, with the reason; and once with NULL when the
	 * lock is held. Lets the job's status say what it waits for.
	 */
	void (*on_wait)(const char *reason, void *arg);
	void *on_wait_arg;
} bf_lock_opts;

/* Does not contact etcd; the options' strings are copied. */
int bf_lock_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err);
/* Releases a held lock, revokes the session, frees. NULL is allowed. */
void bf_lock_destroy(bf_lock *lk);

/*
 * Guarded acquire of lock `name` (e.g. "<jobID>/<indexID>"; the key is
 * "<prefix>/<name>"). Creates or re-creates the session as needed and
 * retries with exponential backoff and full jitter (100 ms base, 2 s cap)
 * until timeout_s. On success *token is the fencing token (the lock key's
 * create revision). Errors: BF_ETIMEDOUT (gave up; message names etcd and
 * the last cause), BF_ECANCELLED (bf_lock_cancel), BF_EINVAL.
 */
int bf_lock_acquire(bf_lock *lk, const char *name, int64_t *token, bf_err *err);

/*
 * Fencing check, to run before each ingest step: 0 when the session is
 * alive and the lock key still exists with the same create revision;
 * BF_ELOCKLOST otherwise. When etcd cannot answer in time the holder can't
 * prove it still holds the lock, so that is BF_ELOCKLOST too.
 */
int bf_lock_check(bf_lock *lk, bf_err *err);

/* Unlocks (deletes the key) and closes the session (revokes the lease).
 * A no-op when nothing is held. */
int bf_lock_release(bf_lock *lk, bf_err *err);

/* Makes a running bf_lock_acquire return BF_ECANCELLED soon. Thread-safe. */
void bf_lock_cancel(bf_lock *lk);

/* True for the etcd implementation. */
bool bf_lock_is_distributed(const bf_lock *lk);

#ifdef __cplusplus
}
#endif
#endif
