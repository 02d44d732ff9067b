/*
 * etcd mutex (see etcd_mutex.h and docs/etcd-lock.md): the recipe of etcd's
 * own concurrency package, step for step, so that bfill and other etcd
 * clients queue on a lock prefix the same way:
 *
 *   1. one Txn: if "<pfx>/<lease hex>" has create revision 0 (absent), put
 *      it under the lease; either way read it back and read the prefix's
 *      first-created key;
 *   2. the lowest create revision owns the lock;
 *   3. otherwise wait until no key created before ours is left, watching
 *      the newest of them for its DELETE (with a once-a-second re-read, so
 *      a broken watch stream cannot hang the wait);
 *   4. then confirm our key still exists, else the session expired.
 */
#include "lock/etcd_mutex.h"
#include "bfill/fault.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often a waiter re-reads the key it waits for, whatever the watch says. */
#define POLL_MS 1000
/* Sleep granularity of the poll fallback, so an interrupt is seen soon. */
#define NAP_MS 50

struct bf_etcd_mutex {
	bf_etcd *client;          /* borrowed */
	bf_etcd_session *session; /* borrowed */
	char *pfx;                /* "<lock key>/", owned */
	char *pfx_end;            /* range end of pfx, owned */
	char *my_key;             /* pfx + lease hex, owned */
	int64_t my_rev;           /* create revision of my_key once put; 0 before */
	bool locked;
};

/* Re-labels the error already in err as code, naming the lock in front:
 * a lower layer's failure means something else to the mutex's caller. */
static int relabel(bf_err *err, int code, const char *what, const char *key)
{
	if (err)
		err->code = code;
	return bf_err_prefix(err, code, "%s %s", what, key);
}

int bf_etcd_mutex_create(bf_etcd *client, bf_etcd_session *session, const char *pfx,
			 bf_etcd_mutex **out, bf_err *err)
{
	bf_etcd_mutex *m = NULL;
	int64_t lease;
	int rc = 0;

	*out = NULL;
	if (!session)
		return bf_errf(err, BF_ESESSION, "etcd lock %s: no session to build a mutex on",
			       pfx ? pfx : "");
	rc = bf_etcd_session_check(session, err);
	if (rc)
		return relabel(err, BF_ESESSION, "etcd lock", pfx ? pfx : "");
	if (!client || !pfx || !*pfx)
		return bf_errf(err, BF_EINVAL, "etcd lock: no client or key");
	m = calloc(1, sizeof(*m));
	if (!m || asprintf(&m->pfx, "%s/", pfx) < 0) {
		if (m)
			m->pfx = NULL;
		rc = bf_errf(err, BF_ENOMEM, "etcd lock %s: out of memory", pfx);
		goto out;
	}
	rc = bf_etcd_prefix_end(m->pfx, &m->pfx_end, err);
	if (rc)
		goto out;
	/* Lowercase hex without padding, as etcd's own client names it. */
	lease = bf_etcd_session_lease(session);
	if (asprintf(&m->my_key, "%s%s%llx", m->pfx, lease < 0 ? "-" : "",
		     (unsigned long long)(lease < 0 ? -lease : lease)) < 0) {
		m->my_key = NULL;
		rc = bf_errf(err, BF_ENOMEM, "etcd lock %s: out of memory", pfx);
		goto out;
	}
	m->client = client;
	m->session = session;
	*out = m;
	m = NULL;
out:
	bf_etcd_mutex_destroy(m);
	return rc;
}

void bf_etcd_mutex_destroy(bf_etcd_mutex *m)
{
	if (!m)
		return;
	free(m->pfx);
	free(m->pfx_end);
	free(m->my_key);
	free(m);
}

/* The Range that finds the first (or, descending, the last) key created
 * under the prefix, optionally only among those older than a revision. */
static bf_etcd_range_req by_create(const bf_etcd_mutex *m, int sort_order, int64_t max_rev)
{
	bf_etcd_range_req r = {
		.key = m->pfx,
		.range_end = m->pfx_end,
		.limit = 1,
		.sort_order = sort_order,
		.sort_target = BF_ETCD_BY_CREATE,
		.max_create_revision = max_rev,
	};
	return r;
}

/* Step 1: queue up (or find our key from an earlier attempt). *owner says
 * whether we hold the lock already. */
static int try_acquire(bf_etcd_mutex *m, bool *owner, bf_err *err)
{
	bf_etcd_compare absent = { .key = m->my_key, .target = BF_ETCD_CMP_CREATE,
				   .result = BF_ETCD_EQUAL, .number = 0 };
	bf_etcd_op first = { .kind = BF_ETCD_OP_RANGE,
			     .range = by_create(m, BF_ETCD_SORT_ASCEND, 0) };
	bf_etcd_op put = { .kind = BF_ETCD_OP_PUT, .key = m->my_key,
			   .lease = bf_etcd_session_lease(m->session) };
	bf_etcd_op mine = { .kind = BF_ETCD_OP_RANGE, .range = { .key = m->my_key } };
	bf_etcd_op success[2] = { put, first };
	bf_etcd_op failure[2] = { mine, first };
	bf_etcd_txn_req req = { &absent, 1, success, 2, failure, 2 };
	bf_etcd_txn_result res;
	const bf_etcd_range_result *owners;
	int rc;

	rc = bf_etcd_txn(m->client, &req, &res, err);
	if (rc == BF_ENOTFOUND)
		/* "requested lease not found": etcd dropped our lease. */
		return relabel(err, BF_ELOCKLOST, "etcd lock", m->my_key);
	if (rc)
		return rc;
	if (res.n_ops != 2 || res.ops[1].kind != BF_ETCD_OP_RANGE ||
	    (!res.succeeded && (res.ops[0].kind != BF_ETCD_OP_RANGE || res.ops[0].range.n_kvs != 1))) {
		rc = bf_errf(err, BF_EPROTO, "etcd lock %s: unexpected Txn reply shape", m->my_key);
		goto out;
	}
	m->my_rev = res.succeeded ? res.revision : res.ops[0].range.kvs[0].create_revision;
	owners = &res.ops[1].range;
	*owner = owners->n_kvs == 0 || owners->kvs[0].create_revision == m->my_rev;
out:
	bf_etcd_txn_result_free(&res);
	return rc;
}

static int keep_waiting(bf_etcd_mutex *m, const char *waiting_for, int64_t deadline_ms,
			bf_err *err)
{
	int rc = bf_etcd_session_check(m->session, err);

	if (rc)
		return relabel(err, BF_ELOCKLOST, "etcd lock", m->my_key);
	if (bf_etcd_interrupted(m->client))
		return bf_errf(err, BF_ECANCELLED, "etcd lock %s: cancelled", m->my_key);
	if (bf_now_ms() >= deadline_ms)
		return bf_errf(err, BF_ETIMEDOUT, "etcd lock %s: still held by another session (%s)",
			       m->my_key, waiting_for);
	return 0;
}

/* Re-reads key: 1 when it is gone, 0 when it is still there. */
static int key_gone(bf_etcd_mutex *m, const char *key, bf_err *err)
{
	bf_etcd_range_req r = { .key = key, .count_only = true };
	bf_etcd_range_result res;
	int rc = bf_etcd_range(m->client, &r, &res, err);

	if (rc)
		return rc;
	rc = res.count == 0;
	bf_etcd_range_result_free(&res);
	return rc;
}

/*
 * Waits for key's deletion, watching from revision rev. The watch is an
 * accelerator only: the key is re-read every second regardless, and a
 * broken watch just leaves the re-reads.
 */
static int wait_delete(bf_etcd_mutex *m, const char *key, int64_t rev, int64_t deadline_ms,
		       bf_err *err)
{
	bf_etcd_watch *w = NULL;
	bf_err ignored;
	int rc;

	if (bf_etcd_watch_open(m->client, key, rev, &w, &ignored) == BF_ECANCELLED)
		return bf_errf(err, BF_ECANCELLED, "etcd lock %s: cancelled", m->my_key);
	for (;;) {
		int64_t next_poll = bf_now_ms() + POLL_MS;

		rc = keep_waiting(m, key, deadline_ms, err);
		if (rc)
			goto out;
		if (next_poll > deadline_ms)
			next_poll = deadline_ms;
		if (w) {
			rc = bf_etcd_watch_wait_delete(w, (int)(next_poll - bf_now_ms()), err);
			if (rc == 1) {
				rc = 0;
				goto out;
			}
			if (rc == BF_ECANCELLED)
				goto out;
			if (rc < 0) {
				bf_etcd_watch_close(w);
				w = NULL;
			}
		}
		while (!w && bf_now_ms() < next_poll && !bf_etcd_interrupted(m->client))
			bf_sleep_ms(NAP_MS);
		/* At the deadline there is no time for a re-read: keep_waiting
		 * says who still holds the lock. */
		if (bf_now_ms() >= deadline_ms)
			continue;
		rc = key_gone(m, key, err);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			rc = 0;
			goto out;
		}
	}
out:
	bf_etcd_watch_close(w);
	return rc;
}

/* Step 3: wait until every key created before ours is gone. */
static int wait_older(bf_etcd_mutex *m, int64_t deadline_ms, bf_err *err)
{
	for (;;) {
		bf_etcd_range_req r = by_create(m, BF_ETCD_SORT_DESCEND, m->my_rev - 1);
		bf_etcd_range_result res;
		int rc = bf_etcd_range(m->client, &r, &res, err);

		if (rc)
			return rc;
		if (res.n_kvs == 0) {
			bf_etcd_range_result_free(&res);
			return 0;
		}
		rc = wait_delete(m, res.kvs[0].key, res.revision, deadline_ms, err);
		bf_etcd_range_result_free(&res);
		if (rc)
			return rc;
	}
}

/* Step 4: our key must have survived the wait. */
static int confirm_mine(bf_etcd_mutex *m, int timeout_ms, bf_err *err)
{
	bf_etcd_range_req r = { .key = m->my_key, .timeout_ms = timeout_ms };
	bf_etcd_range_result res;
	int rc = bf_etcd_range(m->client, &r, &res, err);

	if (rc)
		return rc;
	if (res.n_kvs == 0)
		rc = bf_errf(err, BF_ELOCKLOST, "etcd lock %s: session expired (key is gone)",
			     m->my_key);
	else if (res.kvs[0].create_revision != m->my_rev)
		rc = bf_errf(err, BF_ELOCKLOST,
			     "etcd lock %s: key was re-created (revision %lld, expected %lld)",
			     m->my_key, (long long)res.kvs[0].create_revision, (long long)m->my_rev);
	bf_etcd_range_result_free(&res);
	return rc;
}

int bf_etcd_mutex_lock(bf_etcd_mutex *m, int64_t deadline_ms, bf_err *err)
{
	bool owner = false;
	int rc;

	if (m->locked)
		return 0;
	rc = bf_etcd_session_check(m->session, err);
	if (rc)
		return relabel(err, BF_ELOCKLOST, "etcd lock", m->my_key);
	rc = try_acquire(m, &owner, err);
	if (rc)
		return rc;
	if (!owner) {
		rc = wait_older(m, deadline_ms, err);
		if (rc)
			return rc;
		rc = confirm_mine(m, 0, err);
		if (rc)
			return rc;
	}
	m->locked = true;
	return 0;
}

int bf_etcd_mutex_unlock(bf_etcd_mutex *m, bf_err *err)
{
	int rc;

	if (!m)
		return 0;
	if (bf_fault_hit("lock.unlock"))
		rc = bf_errf(err, BF_EUNAVAIL, "etcd delete of %s: injected failure", m->my_key);
	else
		rc = bf_etcd_delete(m->client, m->my_key, NULL, NULL, NULL, err);
	/* Even when etcd could not be told, we no longer act as the holder;
	 * revoking the lease (or its TTL) removes the key. */
	m->locked = false;
	m->my_rev = 0;
	return rc;
}

int bf_etcd_mutex_check(bf_etcd_mutex *m, int margin_ms, int timeout_ms, bf_err *err)
{
	int rc;

	if (!m || !m->locked)
		return bf_errf(err, BF_ELOCKLOST, "etcd lock: not held");
	rc = bf_etcd_session_confirm(m->session, margin_ms, err);
	if (rc)
		return relabel(err, BF_ELOCKLOST, "etcd lock", m->my_key);
	rc = confirm_mine(m, timeout_ms, err);
	if (rc && rc != BF_ELOCKLOST)
		/* Not knowing is not holding: the holder must stop. */
		rc = relabel(err, BF_ELOCKLOST, "etcd lock cannot be confirmed", m->my_key);
	return rc;
}

const char *bf_etcd_mutex_key(const bf_etcd_mutex *m)
{
	return m->my_key;
}

int64_t bf_etcd_mutex_token(const bf_etcd_mutex *m)
{
	return m->locked ? m->my_rev : 0;
}

bf_etcd_session *bf_etcd_mutex_session(const bf_etcd_mutex *m)
{
	return m->session;
}
