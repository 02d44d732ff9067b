/*
 * A job's presence in etcd (include/bfill/presence.h). One thread per
 * announcement: grant a lease and put the key, then keep the lease alive
 * every third of its TTL; when etcd loses the lease (an outage longer than
 * the TTL), start over with a new one.
 * Depends on: the etcd client, util (clocks).
 */
#include "bfill/presence.h"
#include "util/util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX 512

struct bf_presence {
	bf_etcd *etcd; /* borrowed */
	char key[KEY_MAX];
	char who[128];
	int ttl_s;
	int64_t lease;            /* 0 while none is granted; the thread's */
	bf_etcd_keepalive *ka;    /* the thread's */
	int64_t last_ok;          /* the lease's last renewal (monotonic); the thread's */
	pthread_mutex_t mu;
	int64_t shown_lease;      /* lease, for other threads; under mu */
	int64_t shown_ok;         /* last_ok, for other threads; under mu */
	int64_t down_ms;          /* since when etcd has not answered; under mu */
	pthread_cond_t cv;
	bool stop;
	pthread_t th;
};

static void presence_key(char *out, const char *root, int64_t job_id)
{
	snprintf(out, KEY_MAX, "%srunning/%020" PRId64, root, job_id);
}

/* Drops what the last attempt held: the stream, and the lease (revoked
 * when etcd answers, else it runs out by itself). */
static void forget(bf_presence *p)
{
	bf_etcd_keepalive_close(p->ka);
	p->ka = NULL;
	if (p->lease)
		bf_etcd_lease_revoke(p->etcd, p->lease, NULL);
	p->lease = 0;
}

/* One round: announce when not announced, else keep the lease alive.
 * True when etcd answered as it should. */
static bool attempt(bf_presence *p)
{
	int64_t ttl = 0;
	bf_err err;

	if (p->lease) {
		int rc = (!p->ka && bf_etcd_keepalive_open(p->etcd, &p->ka, &err)) ||
			 bf_etcd_keepalive_ping(p->ka, p->lease, p->ttl_s * 1000 / 3, &ttl, &err);
		if (rc == 0 && ttl > 0) {
			p->last_ok = bf_now_ms();
			return true;
		}
		/* A missed keepalive (a slow election) keeps the lease, and the
		 * claims under it, until etcd says it is gone or its TTL has
		 * passed unrenewed. */
		bf_etcd_keepalive_close(p->ka);
		p->ka = NULL;
		if (rc == 0 || bf_now_ms() - p->last_ok >= (int64_t)p->ttl_s * 1000)
			forget(p);
		return false;
	}
	if (bf_etcd_lease_grant(p->etcd, p->ttl_s, 0, &p->lease, NULL, &err)) {
		p->lease = 0;
		return false;
	}
	if (bf_etcd_put(p->etcd, p->key, p->who, strlen(p->who), p->lease, NULL, &err)) {
		forget(p);
		return false;
	}
	p->last_ok = bf_now_ms();
	return true;
}

static void tick(bf_presence *p)
{
	bool ok = attempt(p);

	pthread_mutex_lock(&p->mu);
	p->shown_lease = p->lease;
	p->shown_ok = p->last_ok;
	if (ok)
		p->down_ms = 0;
	else if (!p->down_ms)
		p->down_ms = bf_wall_ms();
	pthread_mutex_unlock(&p->mu);
}

static void *run(void *arg)
{
	bf_presence *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		pthread_mutex_unlock(&p->mu);
		tick(p);
		pthread_mutex_lock(&p->mu);
		/* A third of the TTL; sooner again while not announced. */
		int64_t ms = p->lease && !p->down_ms ? p->ttl_s * 1000 / 3 : 500;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&p->mu);
	forget(p);
	return NULL;
}

int bf_presence_begin_key(bf_etcd *etcd, const char *key, const char *who, int ttl_s,
			  bf_presence **out, bf_err *err)
{
	bf_presence *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;

	*out = NULL;
	if (!p)
		return bf_errf(err, BF_ENOMEM, "out of memory");
	p->etcd = etcd;
	p->ttl_s = ttl_s < 2 ? 2 : ttl_s;
	snprintf(p->key, sizeof(p->key), "%s", key);
	snprintf(p->who, sizeof(p->who), "%s", who);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&p->th, NULL, run, p)) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return bf_errf(err, BF_ENOMEM, "cannot start a thread to keep %s", key);
	}
	*out = p;
	return 0;
}

int bf_presence_begin(bf_etcd *etcd, const char *root, int64_t job_id, int ttl_s,
		      bf_presence **out, bf_err *err)
{
	char key[KEY_MAX], host[64] = "", who[128];

	presence_key(key, root, job_id);
	gethostname(host, sizeof(host) - 1);
	snprintf(who, sizeof(who), "%s pid %ld", host, (long)getpid());
	return bf_presence_begin_key(etcd, key, who, ttl_s, out, err);
}

int64_t bf_presence_lease(bf_presence *p, int64_t *down_since_ms)
{
	pthread_mutex_lock(&p->mu);
	int64_t lease = p->shown_lease;
	/* A lease not renewed for its TTL is gone, even while the thread
	 * still waits on a call to a member that does not answer. */
	if (lease && bf_now_ms() - p->shown_ok >= (int64_t)p->ttl_s * 1000)
		lease = 0;
	if (down_since_ms)
		*down_since_ms = p->down_ms;
	pthread_mutex_unlock(&p->mu);
	return lease;
}

void bf_presence_end(bf_presence *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int bf_presence_check(bf_etcd *etcd, const char *root, int64_t job_id, char *who, size_t cap,
		      bf_err *err)
{
	char key[KEY_MAX];

	presence_key(key, root, job_id);
	return bf_etcd_get_text(etcd, key, who, cap, err);
}
