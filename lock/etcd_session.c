/*
 * etcd session (see etcd_session.h): one lease, one keepalive thread.
 *
 * The keepalive thread alone owns the LeaseKeepAlive stream. It pings at
 * TTL/3 (the cadence of etcd's own client), re-opens the stream on the
 * next endpoint when an exchange fails, and retries every 500 ms until
 * the lease is out of time. Other threads only read the verdict (lost or
 * not, and why) under the session's mutex.
 */
#include "lock/etcd_session.h"
#include "bfill/fault.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Pause before retrying a failed keepalive (etcd's client uses the same). */
#define RETRY_MS 500

struct bf_etcd_session {
	bf_etcd *client; /* borrowed */
	int64_t lease_id;
	int ttl_s;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC; wakes the thread to stop */
	/* Guarded by mu: */
	bool stop;
	bool lost;
	int64_t last_ok_ms; /* monotonic send time of the last renewed keepalive */
	char why[BF_ERR_MSG_MAX]; /* lost reason, or the last keepalive error */
};

/* Lost when the verdict says so or when the lease has run out of time:
 * computed on each query, so it does not depend on the thread waking. */
static bool lost_locked(bf_etcd_session *s, int64_t now)
{
	if (!s->lost && now - s->last_ok_ms >= (int64_t)s->ttl_s * 1000) {
		char last[BF_ERR_MSG_MAX];
		snprintf(last, sizeof(last), "%s", s->why);
		snprintf(s->why, sizeof(s->why),
			 "no keepalive of lease %llx succeeded for %d s%s%s",
			 (unsigned long long)s->lease_id, s->ttl_s, *last ? "; last error: " : "",
			 last);
		s->lost = true;
	}
	return s->lost;
}

/* One keepalive exchange; opens the stream first when there is none.
 * Returns the time of the next attempt. */
static int64_t keepalive_once(bf_etcd_session *s, bf_etcd_keepalive **ka)
{
	int64_t sent = bf_now_ms();
	int64_t ttl = 0;
	bf_err err;
	int rc;

	bf_err_clear(&err);
	if (bf_fault_hit("lock.keepalive")) {
		/* Nothing goes out, so etcd really lets the lease expire. */
		rc = bf_errf(&err, BF_EFAULT, "keepalives stopped (fault lock.keepalive)");
		goto out;
	}
	if (!*ka) {
		rc = bf_etcd_keepalive_open(s->client, ka, &err);
		if (rc)
			goto out;
	}
	rc = bf_etcd_keepalive_ping(*ka, s->lease_id, bf_etcd_call_timeout_ms(s->client), &ttl,
				    &err);
	if (rc) {
		/* A failed exchange leaves the stream unusable; the next try opens
		 * one on the endpoint the client has moved to. */
		bf_etcd_keepalive_close(*ka);
		*ka = NULL;
	}
out:
	pthread_mutex_lock(&s->mu);
	if (rc) {
		snprintf(s->why, sizeof(s->why), "%s", bf_err_text(&err));
	} else if (ttl <= 0) {
		snprintf(s->why, sizeof(s->why), "lease %llx expired (keepalive answered TTL %lld)",
			 (unsigned long long)s->lease_id, (long long)ttl);
		s->lost = true;
	} else {
		s->last_ok_ms = sent;
		s->why[0] = '\0';
	}
	pthread_mutex_unlock(&s->mu);
	if (rc || ttl <= 0)
		return bf_now_ms() + RETRY_MS;
	return sent + ttl * 1000 / 3;
}

static void wait_until(bf_etcd_session *s, int64_t mono_ms)
{
	int64_t ns = mono_ms * 1000000;
	struct timespec ts;

	/* bf_now_ms is CLOCK_MONOTONIC, the clock the condvar waits on. */
	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	while (!s->stop && bf_now_ms() < mono_ms)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
			break;
}

static void *keepalive_thread(void *arg)
{
	bf_etcd_session *s = arg;
	bf_etcd_keepalive *ka = NULL; /* owned by this thread only */
	int64_t next = bf_now_ms() + (int64_t)s->ttl_s * 1000 / 3;

	pthread_mutex_lock(&s->mu);
	while (!s->stop && !lost_locked(s, bf_now_ms())) {
		int64_t expiry = s->last_ok_ms + (int64_t)s->ttl_s * 1000;
		wait_until(s, next < expiry ? next : expiry);
		if (s->stop || lost_locked(s, bf_now_ms()) || bf_now_ms() < next)
			continue;
		pthread_mutex_unlock(&s->mu);
		next = keepalive_once(s, &ka);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	bf_etcd_keepalive_close(ka);
	return NULL;
}

static void session_free(bf_etcd_session *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int bf_etcd_session_create(bf_etcd *client, int ttl_s, int64_t lease_id, bf_etcd_session **out,
			   bf_err *err)
{
	bf_etcd_session *s = NULL;
	pthread_condattr_t ca;
	int64_t granted = 0;
	int64_t started;
	bf_err cause;
	int rc = 0;

	*out = NULL;
	bf_err_clear(&cause);
	if (!client || lease_id <= 0)
		return bf_errf(err, BF_ESESSION, "etcd session: no client or lease ID");
	if (bf_fault_hit("lock.session"))
		return bf_errf(err, BF_ESESSION, "etcd session: creation failed (fault lock.session)");
	s = calloc(1, sizeof(*s));
	if (!s)
		return bf_errf(err, BF_ESESSION, "etcd session: out of memory");
	s->client = client;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);

	/* The lease's clock in etcd starts after this, so timing from here
	 * makes the session give up on it early rather than late. */
	started = bf_now_ms();
	rc = bf_etcd_lease_grant(client, ttl_s > 0 ? ttl_s : 10, lease_id, &s->lease_id, &granted,
				 &cause);
	if (rc) {
		/* Only an unknown outcome may have left the lease behind: the
		 * caller revokes it then. ("lease already exists" cannot be an
		 * earlier try of ours, since an ID is never sent twice: it is
		 * another client's lease, not to be touched.) */
		if (rc != BF_EUNKNOWN && rc != BF_ETIMEDOUT && rc != -EACCES)
			rc = BF_ESESSION; /* a refusal stays one: no retry mends it */
		rc = bf_errf(err, rc, "etcd session: %s", bf_err_text(&cause));
		goto out;
	}
	/* etcd may raise a TTL below its minimum; time by what it granted. */
	s->ttl_s = (int)granted;
	s->last_ok_ms = started;
	if (pthread_create(&s->thread, NULL, keepalive_thread, s) != 0) {
		/* A lease the revoke did not reach is the caller's to revoke. */
		rc = bf_etcd_lease_revoke(client, s->lease_id, NULL) ? BF_EUNKNOWN : BF_ESESSION;
		rc = bf_errf(err, rc, "etcd session: cannot start the keepalive thread");
		goto out;
	}
	*out = s;
	s = NULL;
out:
	if (s)
		session_free(s);
	return rc;
}

int bf_etcd_session_check(bf_etcd_session *s, bf_err *err)
{
	int rc = 0;

	if (!s)
		return bf_errf(err, BF_ELOCKLOST, "etcd session: none");
	pthread_mutex_lock(&s->mu);
	if (lost_locked(s, bf_now_ms()))
		rc = bf_errf(err, BF_ELOCKLOST, "etcd session lost: %s", s->why);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int bf_etcd_session_confirm(bf_etcd_session *s, int margin_ms, bf_err *err)
{
	int64_t left_ms, sent, ttl_s = 0;
	bf_err cause;
	int rc;

	if (!s)
		return bf_errf(err, BF_ELOCKLOST, "etcd session: none");
	pthread_mutex_lock(&s->mu);
	if (lost_locked(s, bf_now_ms()))
		rc = bf_errf(err, BF_ELOCKLOST, "etcd session lost: %s", s->why);
	else
		rc = 0;
	left_ms = s->last_ok_ms + (int64_t)s->ttl_s * 1000 - bf_now_ms();
	pthread_mutex_unlock(&s->mu);
	if (rc || left_ms > margin_ms)
		return rc;

	/* Within the margin by our own count: only etcd can say more. Its
	 * TTL is whole seconds rounded down, and it is counted from before
	 * the question went out, so this errs on the early side too. */
	bf_err_clear(&cause);
	sent = bf_now_ms();
	rc = bf_etcd_lease_ttl(s->client, s->lease_id, &ttl_s, &cause);
	if (rc)
		return bf_errf(err, BF_ELOCKLOST,
			       "etcd lease %llx has %lld ms left by its last keepalive answer, "
			       "within the fencing margin of %d ms, and etcd cannot confirm more: %s",
			       (unsigned long long)s->lease_id, (long long)left_ms, margin_ms,
			       bf_err_text(&cause));
	if (ttl_s < 0)
		return bf_errf(err, BF_ELOCKLOST, "etcd lease %llx is gone (etcd no longer has it)",
			       (unsigned long long)s->lease_id);
	left_ms = sent + ttl_s * 1000 - bf_now_ms();
	if (left_ms <= margin_ms)
		return bf_errf(err, BF_ELOCKLOST,
			       "etcd lease %llx has %lld ms left by etcd, within the fencing margin "
			       "of %d ms",
			       (unsigned long long)s->lease_id, (long long)left_ms, margin_ms);
	return 0;
}

int64_t bf_etcd_session_lease(const bf_etcd_session *s)
{
	return s->lease_id;
}

int bf_etcd_session_ttl(const bf_etcd_session *s)
{
	return s->ttl_s;
}

int bf_etcd_session_close(bf_etcd_session *s, bf_err *err)
{
	int rc;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);

	/* Revoking deletes the lock key with the lease at once, rather than
	 * after the TTL. A lease etcd already dropped is not an error. */
	if (bf_fault_hit("lock.revoke"))
		rc = bf_errf(err, BF_EUNAVAIL, "etcd revoke of lease %llx: injected failure",
			     (unsigned long long)s->lease_id);
	else
		rc = bf_etcd_lease_revoke(s->client, s->lease_id, err);
	if (rc == BF_ENOTFOUND) {
		bf_err_clear(err);
		rc = 0;
	}
	session_free(s);
	return rc;
}
