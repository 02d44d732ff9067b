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
#include "bfill/etcd.h"
#include "bfill/fence.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_lock bf_lock;

typedef struct bf_lock_opts {
	const char *endpoints;  /* "host:port,host:port"; NULL or "" = in-process */
	/* How the lock's own etcd client secures its connections (TLS);
	 * NULL: plain text. Borrowed by bf_lock_create, which reads the
	 * files; never stored. */
	const bf_etcd_security *etcd_security;
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
	/*
	 * Called (from the acquiring thread, with on_wait_arg) with the lease
	 * of each new session, before any key is put under it, so a job can
	 * record it: a run that dies holding the lock leaves its key queued
	 * until the lease runs out, and the next run revokes it instead of
	 * waiting (see bf_lock_revoke_stale). May be NULL.
	 */
	void (*on_session)(int64_t lease_id, void *arg);
	/*
	 * Fencing margin: before an ingest the holder must know its lease has
	 * more than this left (judged from when the last keepalive that got an
	 * answer was sent), else it asks etcd (a linearizable read) and gives
	 * the round up when that can't show enough. 0 = max(2 s, TTL/3), at
	 * most TTL/2; a margin of the TTL or more is BF_EINVAL.
	 */
	int fence_margin_ms;
} bf_lock_opts;

/* Does not contact etcd (but reads etcd_security's files); the options'
 * strings are copied. */
int bf_lock_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err);
/* Releases a held lock, revokes the session, frees. NULL is allowed. */
void bf_lock_destroy(bf_lock *lk);

/*
 * Guarded acquire of lock `name` (e.g. "<store uuid>/<jobID>/<indexID>";
 * the key is "<prefix>/<name>"). Creates or re-creates the session as
 * needed and retries with exponential backoff and full jitter (100 ms
 * base, 2 s cap); everything it does, orphan revokes and lease grants
 * included, ends by timeout_s. On success *token is the fence token: the
 * lock key and the holder's create revision (0 for the in-process lock).
 * Errors: BF_ETIMEDOUT (gave up; message names etcd and the last cause),
 * BF_ECANCELLED (bf_lock_cancel), BF_EINVAL.
 */
int bf_lock_acquire(bf_lock *lk, const char *name, bf_fence_token *token, bf_err *err);

/*
 * Fencing check, to run before each ingest step: 0 when the session is
 * alive with more than the fencing margin left (by the last keepalive
 * answer, else by etcd's own count of the lease's TTL) and the lock key
 * still exists with the same create revision; BF_ELOCKLOST otherwise, the
 * message saying which. When etcd cannot answer in time the holder can't
 * prove it still holds the lock, so that is BF_ELOCKLOST too.
 */
int bf_lock_check(bf_lock *lk, bf_err *err);

/*
 * Records the lease of a session an earlier, dead process held on this
 * lock, to be revoked (within the acquire's deadline) before the next
 * acquire queues up; a lease etcd no longer knows is fine. A no-op for
 * the in-process lock.
 */
void bf_lock_revoke_stale(bf_lock *lk, int64_t lease_id);

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
