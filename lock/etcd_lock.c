/*
 * The etcd implementation of the import lock (include/bfill/lock.h): the
 * guarded acquire of DESIGN §6. It owns one etcd client, at most one
 * session and at most one mutex, and keeps these rules:
 *  - a mutex is only built on a live session; a missing or lost session is
 *    (re)created first, and a failure to create one is a retried error;
 *  - attempts are retried with exponential backoff and full jitter (100 ms
 *    base, 2 s cap) until timeout_s, telling on_wait why before each retry;
 *    every etcd call an acquire makes ends by that deadline too;
 *  - a lease that may still hold a queued key (a session whose revoke
 *    failed, a grant whose outcome is unknown, a dead run's lease) is
 *    revoked before the next attempt queues up;
 *  - unlock and lease revoke happen on every path out, bounded by the call
 *    deadline, so etcd being down delays nothing by more than that;
 *  - fencing asks for a margin of lease time, not just a live session.
 *
 * Depends on: lock/etcd_mutex, lock/etcd_session, the etcd client, util.
 */
#include "lock/etcd_mutex.h"
#include "lock/etcd_session.h"
#include "lock/lock_impl.h"
#include "util/backoff.h"
#include "util/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 2000
#define NAP_MS 50
#define MAX_REVOKES 16

typedef struct etcd_lock {
	bf_lock base;
	bf_etcd *client;          /* owned */
	char *prefix;             /* owned copy of opts->prefix */
	int ttl_s;
	int timeout_s;
	int fence_margin_ms;
	void (*on_wait)(const char *reason, void *arg);
	void (*on_session)(int64_t lease_id, void *arg);
	void *on_wait_arg;
	atomic_bool cancelled;    /* set by bf_lock_cancel, never cleared */
	atomic_bool acquiring;    /* an acquire is running: cancel interrupts calls */
	/* No etcd call's deadline may pass this (monotonic ms; 0 = no cap):
	 * the acquire's own deadline while acquiring, one call timeout for
	 * the clean-up after it. */
	_Atomic int64_t calls_until;
	bf_etcd_session *session; /* owned; NULL when none */
	bf_etcd_mutex *mutex;     /* owned; built on session; NULL when none */
	char *key;                /* owned: "<prefix>/<name>" being acquired or held */
	bool held;
	uint64_t rng;             /* seeds each acquire's backoff */
	/*
	 * Leases that may still hold a key in the queue, revoked before
	 * anything else is tried (their keys would stay ahead of the next
	 * session's key until the lease TTL ran out): dropped sessions whose
	 * revoke did not get through (etcd had no leader at that moment, say),
	 * grants whose outcome is unknown, and leases of dead earlier runs
	 * (bf_lock_revoke_stale).
	 */
	int64_t to_revoke[MAX_REVOKES];
	int n_to_revoke;
} etcd_lock;

/* Cancellation interrupts etcd calls only while acquiring: release and
 * revoke must still reach etcd after a cancelled acquire. */
static bool acquire_interrupted(void *arg)
{
	etcd_lock *lk = arg;
	return atomic_load(&lk->cancelled) && atomic_load(&lk->acquiring);
}

static int64_t calls_cap(void *arg)
{
	return atomic_load(&((etcd_lock *)arg)->calls_until);
}

/* Remembers a lease to revoke; when the list is full the oldest goes (its
 * TTL still bounds it). */
static void remember_lease(etcd_lock *lk, int64_t lease)
{
	for (int i = 0; i < lk->n_to_revoke; i++)
		if (lk->to_revoke[i] == lease)
			return;
	if (lk->n_to_revoke == MAX_REVOKES) {
		memmove(lk->to_revoke, lk->to_revoke + 1, sizeof(lk->to_revoke[0]) * (MAX_REVOKES - 1));
		lk->n_to_revoke--;
	}
	lk->to_revoke[lk->n_to_revoke++] = lease;
}

/* Gives up the queued or held key and the lease. Every step is bounded by
 * the call deadline; the first error is kept in err. */
static int drop_all(etcd_lock *lk, bf_err *err)
{
	int rc = 0, rc2;
	bf_err tmp;

	if (lk->mutex) {
		rc = bf_etcd_mutex_unlock(lk->mutex, err);
		bf_etcd_mutex_destroy(lk->mutex);
		lk->mutex = NULL;
	}
	if (lk->session) {
		int64_t lease = bf_etcd_session_lease(lk->session);
		rc2 = bf_etcd_session_close(lk->session, rc ? &tmp : err);
		lk->session = NULL;
		if (rc2)
			remember_lease(lk, lease);
		if (!rc)
			rc = rc2;
	}
	lk->held = false;
	return rc;
}

/* Revokes the remembered leases; 0 once none is left (a lease etcd no
 * longer knows is gone already). */
static int revoke_leases(etcd_lock *lk, bf_err *err)
{
	while (lk->n_to_revoke > 0) {
		int64_t lease = lk->to_revoke[lk->n_to_revoke - 1];
		int rc = bf_etcd_lease_revoke(lk->client, lease, err);
		if (rc && rc != BF_ENOTFOUND)
			return bf_err_prefix(err, rc, "revoking lease %llx of an earlier session",
					     (unsigned long long)lease);
		bf_err_clear(err);
		lk->n_to_revoke--;
	}
	return 0;
}

/* A new session on a lease ID of our choosing, so that a grant whose
 * outcome is unknown can still be revoked. */
static int new_session(etcd_lock *lk, bf_err *err)
{
	int64_t lease = bf_etcd_lease_id_new();
	int rc = bf_etcd_session_create(lk->client, lk->ttl_s, lease, &lk->session, err);

	if (rc == BF_EUNKNOWN || rc == BF_ETIMEDOUT)
		remember_lease(lk, lease);
	if (!rc && lk->on_session)
		lk->on_session(lease, lk->on_wait_arg);
	return rc;
}

/*
 * One attempt: make sure there is a live session and a mutex on it, then
 * lock until the deadline. A lost session is dropped here, so the next
 * attempt starts from a fresh one.
 */
static int attempt(etcd_lock *lk, int64_t deadline_ms, bf_err *err)
{
	int rc;

	if (lk->session && bf_etcd_session_check(lk->session, NULL) != 0)
		drop_all(lk, NULL);
	rc = revoke_leases(lk, err);
	if (rc)
		return rc;
	if (!lk->session) {
		rc = new_session(lk, err);
		if (rc)
			return rc;
	}
	if (!lk->mutex) {
		rc = bf_etcd_mutex_create(lk->client, lk->session, lk->key, &lk->mutex, err);
		if (rc)
			return rc;
	}
	rc = bf_etcd_mutex_lock(lk->mutex, deadline_ms, err);
	if (rc == BF_ELOCKLOST)
		drop_all(lk, NULL);
	return rc;
}

/* etcd refusing this client (its TLS handshake, later its credentials)
 * will refuse it again until someone changes a setting. */
static bool retryable(int rc)
{
	return rc != BF_EINVAL && rc != BF_ECANCELLED && rc != BF_ENOMEM && rc != -EACCES;
}

static int etcd_acquire(bf_lock *base, const char *name, bf_fence_token *token, bf_err *err)
{
	etcd_lock *lk = (etcd_lock *)base;
	int64_t started = bf_now_ms();
	int64_t deadline = started + (int64_t)lk->timeout_s * 1000;
	char reason[BF_ERR_MSG_MAX + 128];
	bf_backoff backoff;
	bf_err cause;
	int rc = 0;

	bf_err_clear(&cause);
	if (lk->held)
		return bf_errf(err, BF_ESTATE, "etcd lock %s: already held", lk->key);
	free(lk->key);
	if (asprintf(&lk->key, "%s/%s", lk->prefix, name) < 0) {
		lk->key = NULL;
		return bf_errf(err, BF_ENOMEM, "etcd lock: out of memory");
	}
	if (strlen(lk->key) >= sizeof(token->key))
		return bf_errf(err, BF_EINVAL, "etcd lock %s: key longer than %zu bytes", lk->key,
			       sizeof(token->key) - 1);
	bf_backoff_init(&backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS, bf_splitmix64(&lk->rng),
			deadline);
	atomic_store(&lk->calls_until, deadline);
	atomic_store(&lk->acquiring, true);
	for (int n = 0;; n++) {
		int64_t delay;

		if (atomic_load(&lk->cancelled)) {
			rc = bf_errf(&cause, BF_ECANCELLED, "acquire cancelled");
			break;
		}
		rc = attempt(lk, deadline, &cause);
		if (rc == 0 || !retryable(rc) || bf_backoff_next(&backoff, &delay))
			break;
		if (lk->on_wait) {
			snprintf(reason, sizeof(reason), "etcd lock %s via %s: %s; retry %d in %lld ms",
				 lk->key, bf_etcd_endpoint(lk->client), bf_err_text(&cause), n + 1,
				 (long long)delay);
			lk->on_wait(reason, lk->on_wait_arg);
		}
		for (int64_t until = bf_now_ms() + delay;
		     bf_now_ms() < until && !atomic_load(&lk->cancelled);)
			bf_sleep_ms(NAP_MS);
		/* An attempt with no time left could only fail for want of
		 * time, hiding the cause worth reporting. */
		if (bf_now_ms() >= deadline && !atomic_load(&lk->cancelled))
			break;
	}
	atomic_store(&lk->acquiring, false);
	if (rc == 0) {
		atomic_store(&lk->calls_until, 0);
		lk->held = true;
		snprintf(token->key, sizeof(token->key), "%s", lk->key);
		token->revision = bf_etcd_mutex_token(lk->mutex);
		snprintf(token->holder, sizeof(token->holder), "%s", bf_etcd_mutex_key(lk->mutex));
		if (lk->on_wait)
			lk->on_wait(NULL, lk->on_wait_arg);
		return 0;
	}
	/* Leave no queued key and no lease behind, spending at most one call
	 * timeout on it past the deadline; what it leaves is revoked later. */
	atomic_store(&lk->calls_until, bf_now_ms() + bf_etcd_call_timeout_ms(lk->client));
	drop_all(lk, NULL);
	atomic_store(&lk->calls_until, 0);
	if (rc == BF_ECANCELLED)
		return bf_errf(err, BF_ECANCELLED, "etcd lock %s: acquire cancelled", lk->key);
	if (!retryable(rc))
		return bf_errf(err, rc, "etcd lock %s: %s", lk->key, bf_err_text(&cause));
	return bf_errf(err, BF_ETIMEDOUT, "etcd lock %s: gave up after %lld s: %s", lk->key,
		       (long long)((bf_now_ms() - started + 500) / 1000), bf_err_text(&cause));
}

static int etcd_check(bf_lock *base, bf_err *err)
{
	etcd_lock *lk = (etcd_lock *)base;

	if (!lk->held || !lk->mutex)
		return bf_errf(err, BF_ELOCKLOST, "etcd lock %s: not held", lk->key ? lk->key : "");
	return bf_etcd_mutex_check(lk->mutex, lk->fence_margin_ms,
				   bf_etcd_call_timeout_ms(lk->client), err);
}

static int etcd_release(bf_lock *base, bf_err *err)
{
	etcd_lock *lk = (etcd_lock *)base;
	int rc = drop_all(lk, err);

	if (rc)
		bf_err_prefix(err, rc, "etcd lock %s: release", lk->key ? lk->key : "");
	return rc;
}

static void etcd_cancel(bf_lock *base)
{
	atomic_store(&((etcd_lock *)base)->cancelled, true);
}

static void etcd_revoke_stale(bf_lock *base, int64_t lease_id)
{
	remember_lease((etcd_lock *)base, lease_id);
}

static void etcd_destroy(bf_lock *base)
{
	etcd_lock *lk = (etcd_lock *)base;

	drop_all(lk, NULL);
	/* One more try for leftovers, all of them within one call timeout;
	 * their TTL bounds them if this fails. */
	atomic_store(&lk->calls_until, bf_now_ms() + bf_etcd_call_timeout_ms(lk->client));
	revoke_leases(lk, NULL);
	bf_etcd_destroy(lk->client);
	free(lk->prefix);
	free(lk->key);
	free(lk);
}

static const bf_lock_ops etcd_ops = {
	.acquire = etcd_acquire,
	.check = etcd_check,
	.release = etcd_release,
	.cancel = etcd_cancel,
	.revoke_stale = etcd_revoke_stale,
	.destroy = etcd_destroy,
};

/* The fencing margin: as asked, else max(2 s, TTL/3), but never more than
 * half the TTL, so that short TTLs leave a holder room to work. */
static int fence_margin(const bf_lock_opts *opts, int ttl_s, bf_err *err)
{
	int ttl_ms = ttl_s * 1000;
	int margin = ttl_ms / 3 > 2000 ? ttl_ms / 3 : 2000;

	if (opts->fence_margin_ms < 0 || opts->fence_margin_ms >= ttl_ms)
		return bf_errf(err, BF_EINVAL,
			       "etcd lock: fencing margin %d ms must be below the lease TTL (%d s)",
			       opts->fence_margin_ms, ttl_s);
	if (opts->fence_margin_ms > 0)
		return opts->fence_margin_ms;
	return margin < ttl_ms / 2 ? margin : ttl_ms / 2;
}

int bf_lock_etcd_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err)
{
	etcd_lock *lk = calloc(1, sizeof(*lk));
	const char *prefix = opts->prefix && *opts->prefix ? opts->prefix : "/bfill/lock";
	size_t plen = strlen(prefix);
	int rc = 0;

	*out = NULL;
	if (!lk)
		return bf_errf(err, BF_ENOMEM, "etcd lock: out of memory");
	/* "<prefix>/<name>" must not hold an empty path element. */
	while (plen > 1 && prefix[plen - 1] == '/')
		plen--;
	lk->prefix = strndup(prefix, plen);
	if (!lk->prefix) {
		rc = bf_errf(err, BF_ENOMEM, "etcd lock: out of memory");
		goto out;
	}
	lk->base.ops = &etcd_ops;
	lk->base.distributed = true;
	lk->ttl_s = opts->ttl_s > 0 ? opts->ttl_s : 10;
	lk->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 60;
	lk->fence_margin_ms = fence_margin(opts, lk->ttl_s, err);
	if (lk->fence_margin_ms < 0) {
		rc = lk->fence_margin_ms;
		goto out;
	}
	lk->on_wait = opts->on_wait;
	lk->on_session = opts->on_session;
	lk->on_wait_arg = opts->on_wait_arg;
	lk->rng = (uint64_t)bf_now_ns() ^ ((uint64_t)(uintptr_t)lk << 16);
	atomic_init(&lk->cancelled, false);
	atomic_init(&lk->acquiring, false);
	atomic_init(&lk->calls_until, 0);

	bf_etcd_opts eo = {
		.call_timeout_ms = opts->call_timeout_ms,
		.interrupted = acquire_interrupted,
		.deadline_cap = calls_cap,
		.hook_arg = lk,
		.security = opts->etcd_security,
	};
	rc = bf_etcd_create(opts->endpoints, &eo, &lk->client, err);
	if (rc)
		goto out;
	*out = &lk->base;
	lk = NULL;
out:
	if (lk) {
		free(lk->prefix);
		free(lk);
	}
	return rc;
}
