/*
 * Internal: an etcd session, i.e. a lease of ttl_s seconds kept alive by a
 * background thread over the LeaseKeepAlive stream (DESIGN §6 rule 3). The
 * mutex ties its key to this lease, so the lock lives exactly as long as
 * the session: when keepalives stop, etcd deletes the key after the TTL.
 *
 * The session calls itself lost when a keepalive reply says TTL <= 0 or
 * when no keepalive succeeded for a whole TTL (measured from when the last
 * good one was sent, so it errs on the early side). A lost session stays
 * lost; the guarded acquire makes a new one.
 *
 * Depends on: the etcd client, util (clocks), fault seams "lock.session"
 * (creation fails), "lock.keepalive" (the thread stops sending) and
 * "lock.revoke" (closing cannot revoke).
 */
#ifndef BFILL_ETCD_SESSION_H
#define BFILL_ETCD_SESSION_H

#include <stdint.h>

#include "bfill/error.h"
#include "bfill/etcd.h"

typedef struct bf_etcd_session bf_etcd_session;

/*
 * Grants lease lease_id (> 0, chosen by the caller with
 * bf_etcd_lease_id_new) and starts the keepalive thread. client is
 * borrowed and must outlive the session. On failure *out stays NULL (there
 * is never a half-made session) and the code says whether the lease may
 * exist: BF_ESESSION when it surely does not (the message says why);
 * BF_EUNKNOWN or BF_ETIMEDOUT when the grant's outcome is unknown, and the
 * caller must revoke lease_id later.
 */
int bf_etcd_session_create(bf_etcd *client, int ttl_s, int64_t lease_id, bf_etcd_session **out,
			   bf_err *err);

/* 0 while the lease is believed alive; BF_ELOCKLOST with the reason once
 * lost. Thread-safe. */
int bf_etcd_session_check(bf_etcd_session *s, bf_err *err);

/*
 * Fencing (DESIGN §6 rule 5): 0 when the lease surely has more than
 * margin_ms left. Judged first from the send time of the last keepalive
 * that got an answer; when that leaves margin_ms or less, etcd is asked
 * (LeaseTimeToLive, answered by the leader, within the call timeout) and
 * its remaining TTL is counted from when that question was sent.
 * BF_ELOCKLOST otherwise, with a message saying which: the session is
 * lost, etcd reports too little time, the lease is gone, or etcd could not
 * be asked. Not for the keepalive thread.
 */
int bf_etcd_session_confirm(bf_etcd_session *s, int margin_ms, bf_err *err);

/* The lease ID (the mutex key's suffix). */
int64_t bf_etcd_session_lease(const bf_etcd_session *s);
/* The TTL etcd granted, in seconds. */
int bf_etcd_session_ttl(const bf_etcd_session *s);

/*
 * Stops and joins the keepalive thread, revokes the lease (bounded by the
 * call timeout; an already expired lease is fine) and frees the session.
 * Returns the revoke's status; the session is freed either way. NULL is
 * allowed.
 */
int bf_etcd_session_close(bf_etcd_session *s, bf_err *err);

#endif
