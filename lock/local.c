/*
 * The in-process lock: the embedded default needs no etcd, but the result
 * sink still goes through the same lock interface. Locks are process-wide
 * by name, so two jobs in one process exclude each other like they would
 * through etcd. Its fence tokens carry revision 0 (not fenced): the
 * store's own LOCK file already keeps every other process out.
 */
#include "lock/lock_impl.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HELD 64

typedef struct held_name {
	char name[256];
	bool used;
} held_name;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_cv = PTHREAD_COND_INITIALIZER;
static held_name registry[MAX_HELD];

typedef struct local_lock {
	bf_lock base;
	int timeout_s;
	atomic_bool cancelled;
	int slot; /* registry slot held, -1 when none */
} local_lock;

static int find_slot(const char *name)
{
	for (int i = 0; i < MAX_HELD; i++)
		if (registry[i].used && !strcmp(registry[i].name, name))
			return i;
	return -1;
}

static int local_acquire(bf_lock *base, const char *name, bf_fence_token *token, bf_err *err)
{
	local_lock *lk = (local_lock *)base;
	int64_t deadline = bf_wall_ms() + (int64_t)lk->timeout_s * 1000;
	int rc = 0;

	if (lk->slot >= 0)
		return bf_errf(err, BF_ESTATE, "lock: already held");
	if (strlen(name) >= sizeof(registry[0].name) || strlen(name) >= sizeof(token->key))
		return bf_errf(err, BF_EINVAL, "lock: name too long");
	pthread_mutex_lock(&registry_mu);
	while (find_slot(name) >= 0) {
		if (atomic_load(&lk->cancelled)) {
			rc = bf_errf(err, BF_ECANCELLED, "lock: acquire cancelled");
			goto out;
		}
		if (bf_wall_ms() >= deadline) {
			rc = bf_errf(err, BF_ETIMEDOUT, "lock %s: still held by another job after %d s",
				     name, lk->timeout_s);
			goto out;
		}
		/* Short waits so that cancellation is noticed promptly. */
		int64_t wake = bf_wall_ms() + 100;
		struct timespec ts = { .tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000 };
		pthread_cond_timedwait(&registry_cv, &registry_mu, &ts);
	}
	for (int i = 0; i < MAX_HELD; i++) {
		if (!registry[i].used) {
			registry[i].used = true;
			snprintf(registry[i].name, sizeof(registry[i].name), "%s", name);
			lk->slot = i;
			/* Revision 0: nothing outside this process contends, so
			 * there is nothing for a target to fence against. */
			snprintf(token->key, sizeof(token->key), "%s", name);
			token->revision = 0;
			goto out;
		}
	}
	rc = bf_errf(err, BF_ENOMEM, "lock: more than %d locks held in this process", MAX_HELD);
out:
	pthread_mutex_unlock(&registry_mu);
	return rc;
}

static int local_check(bf_lock *base, bf_err *err)
{
	local_lock *lk = (local_lock *)base;
	if (lk->slot < 0)
		return bf_errf(err, BF_ELOCKLOST, "lock: not held");
	return 0;
}

static int local_release(bf_lock *base, bf_err *err)
{
	local_lock *lk = (local_lock *)base;
	(void)err;
	if (lk->slot < 0)
		return 0;
	pthread_mutex_lock(&registry_mu);
	registry[lk->slot].used = false;
	lk->slot = -1;
	pthread_cond_broadcast(&registry_cv);
	pthread_mutex_unlock(&registry_mu);
	return 0;
}

static void local_cancel(bf_lock *base)
{
	atomic_store(&((local_lock *)base)->cancelled, true);
}

static void local_destroy(bf_lock *base)
{
	local_release(base, NULL);
	free(base);
}

static const bf_lock_ops local_ops = {
	.acquire = local_acquire,
	.check = local_check,
	.release = local_release,
	.cancel = local_cancel,
	.destroy = local_destroy,
};

int bf_lock_local_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err)
{
	local_lock *lk = calloc(1, sizeof(*lk));
	if (!lk)
		return bf_errf(err, BF_ENOMEM, "lock: out of memory");
	lk->base.ops = &local_ops;
	lk->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 60;
	lk->slot = -1;
	*out = &lk->base;
	return 0;
}
