/*
 * Internal: etcd's concurrency mutex recipe over a session (see
 * docs/etcd-lock.md). Each contender puts "<pfx>/<lease hex>" under its
 * session's lease; the key with the lowest create revision owns the lock,
 * the others wait, each for the deletion of the key created just before
 * its own. The owner's create revision is the fencing token.
 *
 * A mutex is only ever built on a live session (TiDB #49265 built one on a
 * nil session and crashed every node): creation checks, and every wait
 * re-checks. Depends on the etcd client and etcd_session.
 */
#ifndef BFILL_ETCD_MUTEX_H
#define BFILL_ETCD_MUTEX_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/etcd.h"
#include "lock/etcd_session.h"

typedef struct bf_etcd_mutex bf_etcd_mutex;

/*
 * pfx is the lock's key ("/bfill/lock/7/1"); the contender keys go under
 * pfx + "/". client and session are borrowed and must outlive the mutex.
 * BF_ESESSION when session is NULL or already lost.
 */
int bf_etcd_mutex_create(bf_etcd *client, bf_etcd_session *session, const char *pfx,
			 bf_etcd_mutex **out, bf_err *err);
/* Frees the mutex without touching etcd (see bf_etcd_mutex_unlock). */
void bf_etcd_mutex_destroy(bf_etcd_mutex *m);

/*
 * Takes the lock, waiting (watch plus a once-a-second re-read) until
 * deadline_ms on the monotonic clock. Errors: BF_ETIMEDOUT (still held by
 * another session at the deadline), BF_ELOCKLOST (the session or the own
 * key vanished while waiting), BF_ECANCELLED (the client was interrupted),
 * or a client error. On failure the own key may remain, queued: calling
 * again keeps the place in the queue; bf_etcd_mutex_unlock gives it up.
 */
int bf_etcd_mutex_lock(bf_etcd_mutex *m, int64_t deadline_ms, bf_err *err);

/* Deletes the own key (queued or owning). Bounded by the call timeout. */
int bf_etcd_mutex_unlock(bf_etcd_mutex *m, bf_err *err);

/*
 * Fencing: 0 when the session has more than margin_ms left
 * (bf_etcd_session_confirm) and the own key still exists with the create
 * revision it was locked with; BF_ELOCKLOST otherwise, also when etcd
 * cannot say within timeout_ms.
 */
int bf_etcd_mutex_check(bf_etcd_mutex *m, int margin_ms, int timeout_ms, bf_err *err);

/* The own key ("<pfx>/<lease hex>"); owned by m. */
const char *bf_etcd_mutex_key(const bf_etcd_mutex *m);
/* The fencing token: the own key's create revision; 0 when not locked. */
int64_t bf_etcd_mutex_token(const bf_etcd_mutex *m);
/* The session the mutex was built on (borrowed). */
bf_etcd_session *bf_etcd_mutex_session(const bf_etcd_mutex *m);

#endif
