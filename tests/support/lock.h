/*
 * Helpers for the etcd lock's tests: locks with short, test-friendly
 * settings, an on_wait hook that records what it is told, and the lock's
 * contender keys as etcd has them.
 */
#ifndef BFILL_TEST_LOCK_H
#define BFILL_TEST_LOCK_H

#include "bfill/etcd.h"
#include "bfill/lock.h"

/* What on_wait was told (t_record_wait fills it). */
typedef struct t_waits {
	int retries;     /* calls with a reason */
	int held;        /* calls with NULL */
	char last[600];  /* the last reason */
} t_waits;

/* An on_wait hook; arg is a t_waits. */
void t_record_wait(const char *reason, void *arg);

/* Creates an etcd lock with a 1 s call timeout and the on_wait hook
 * recording into w (NULL: no hook); asserts that it works. The caller
 * destroys it. Endpoints of a TLS cluster of the etcd harness get its
 * client's TLS (t_etcd_security_of), here and in t_lock_contenders. */
bf_lock *t_lock_etcd(const char *endpoints, int ttl_s, int timeout_s, t_waits *w);

/* The keys under "<lock key>/", oldest first, read with a client of the
 * test's own; free with bf_etcd_range_result_free. */
bf_etcd_range_result t_lock_contenders(const char *endpoints, const char *lock_key);

/*
 * Two etcd locks on endpoints take lock `name` in turn: the first gets it
 * (with a fence revision), a second acquire meanwhile times out, and after
 * the release the second gets it with a later revision. Both release;
 * asserts each step. For the lock's basics over TLS or as a user.
 */
void t_lock_take_turns(const char *endpoints, const char *name);

#endif
