/*
 * Scenario tests of how the etcd import lock handles its leases, against
 * real etcd: a lease grant whose reply is lost (outcome unknown) leaks no
 * lease; an endpoint that accepts requests and never answers cannot make
 * an acquire overrun its timeout; fencing stops a margin before the lease
 * runs out and asks etcd when its own count is not enough; the lease of a
 * killed holder, handed to bf_lock_revoke_stale, is revoked instead of
 * waited out.
 */
#include "bfill/fault.h"
#include "bfill/lock.h"
#include "tests/support/etcd.h"
#include "tests/support/hang.h"
#include "tests/support/lock.h"
#include "tests/support/support.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static t_hang *hang;
static pid_t child;

static void cleanup(void)
{
	bf_fault_reset();
	t_kill_reap(&child);
	t_hang_stop(hang);
	hang = NULL;
	t_etcd_stop_all();
}

TestSuite(lock_leases, .fini = cleanup, .timeout = 60);

/* What the hooks were told: on_wait's reasons and on_session's leases. */
typedef struct seen {
	t_waits waits;
	int64_t sessions[8];
	int n_sessions;
} seen;

static void seen_wait(const char *reason, void *arg)
{
	t_record_wait(reason, &((seen *)arg)->waits);
}

static void seen_session(int64_t lease, void *arg)
{
	seen *s = arg;
	if (s->n_sessions < 8)
		s->sessions[s->n_sessions++] = lease;
}

static bf_lock *lock_with(const char *endpoints, int ttl_s, int timeout_s, seen *s)
{
	bf_lock_opts o = {
		.endpoints = endpoints,
		.etcd_security = t_etcd_security_of(endpoints),
		.ttl_s = ttl_s,
		.timeout_s = timeout_s,
		.call_timeout_ms = 1000,
		.on_wait = seen_wait,
		.on_session = seen_session,
		.on_wait_arg = s,
	};
	bf_lock *lk = NULL;
	bf_err err;

	cr_assert_eq(bf_lock_create(&o, &lk, &err), 0, "%s", bf_err_text(&err));
	return lk;
}

/* ---- a lease grant whose outcome is unknown ----------------------------- */

Test(lock_leases, grant_with_a_lost_reply_is_revoked_not_leaked)
{
	t_etcd *e = t_etcd_start(1);
	seen s = { 0 };
	bf_lock *lk = lock_with(t_etcd_endpoints(e), 5, 10, &s);
	bf_fence_token token;
	int64_t ids[8];
	bf_err err;

	/* etcd grants the first lease, and its answer is lost on the way. */
	bf_fault_arm_range("etcd.reply_lost.LeaseGrant", 1, 1);
	cr_assert_eq(bf_lock_acquire(lk, "unknown/1", &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_geq(s.waits.retries, 1);
	cr_assert(strstr(s.waits.last, "outcome unknown"), "%s", s.waits.last);

	/* The first lease was revoked before the second attempt: etcd holds
	 * exactly the one under the key, and on_session saw only that one. */
	cr_assert_eq(t_etcd_leases(e, ids, 8), 1);
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/unknown/1");
	cr_assert_eq(keys.n_kvs, 1);
	cr_assert_eq(keys.kvs[0].lease, ids[0]);
	cr_assert_eq(s.n_sessions, 1);
	cr_assert_eq(s.sessions[0], ids[0]);
	bf_etcd_range_result_free(&keys);

	bf_lock_destroy(lk);
	cr_assert_eq(t_etcd_leases(e, NULL, 0), 0, "a lease outlived the lock");
	t_etcd_destroy(e);
}

Test(lock_leases, grant_replies_always_lost_fail_cleanly_and_leak_nothing)
{
	t_etcd *e = t_etcd_start(1);
	seen s = { 0 };
	bf_lock *lk = lock_with(t_etcd_endpoints(e), 5, 2, &s);
	bf_fence_token token;
	bf_err err;

	bf_fault_arm("etcd.reply_lost.LeaseGrant", 1);
	cr_assert_eq(bf_lock_acquire(lk, "unknown/2", &token, &err), BF_ETIMEDOUT);
	cr_assert(strstr(err.msg, "outcome unknown"), "%s", err.msg);
	cr_assert_geq(s.waits.retries, 2);
	cr_assert_eq(s.n_sessions, 0);
	/* Each unknown grant was revoked before the next: at most the last
	 * one is left, and destroying the lock revokes it too. */
	cr_assert_leq(t_etcd_leases(e, NULL, 0), 1);
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/unknown/2");
	cr_assert_eq(keys.n_kvs, 0);
	bf_etcd_range_result_free(&keys);
	bf_lock_destroy(lk);
	cr_assert_eq(t_etcd_leases(e, NULL, 0), 0, "a lease outlived the lock");
	t_etcd_destroy(e);
}

/* ---- deadlines ---------------------------------------------------------- */

/* A member that takes requests and never answers, a call timeout longer
 * than the lock timeout: the lock timeout wins. */
Test(lock_leases, a_hanging_endpoint_cannot_stretch_the_acquire_timeout)
{
	bf_lock_opts o = { .ttl_s = 5, .timeout_s = 1, .call_timeout_ms = 3000 };
	bf_fence_token token;
	bf_lock *lk = NULL;
	bf_err err;

	hang = t_hang_start();
	o.endpoints = t_hang_endpoint(hang);
	cr_assert_eq(bf_lock_create(&o, &lk, &err), 0, "%s", bf_err_text(&err));
	int64_t t0 = bf_now_ms();
	cr_assert_eq(bf_lock_acquire(lk, "hang", &token, &err), BF_ETIMEDOUT);
	int64_t took = bf_now_ms() - t0;
	cr_assert(took >= 900 && took < 2500, "acquire took %lld ms", (long long)took);
	cr_assert(strstr(err.msg, "gave up after 1 s"), "%s", err.msg);
	cr_assert(strstr(err.msg, t_hang_endpoint(hang)), "%s", err.msg);
	/* Destroying revokes the grant that may have happened, all within
	 * one call timeout. */
	t0 = bf_now_ms();
	bf_lock_destroy(lk);
	took = bf_now_ms() - t0;
	cr_assert_lt(took, 3000 + 1500, "destroy took %lld ms", (long long)took);
}

/* ---- fencing with a margin ---------------------------------------------- */

static bf_lock *fenced_lock(const char *endpoints, bf_fence_token *token)
{
	bf_lock *lk = t_lock_etcd(endpoints, 6, 10, NULL); /* margin max(2 s, 6 s / 3) */
	bf_err err;

	cr_assert_eq(bf_lock_acquire(lk, "fence", token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_lock_check(lk, &err), 0, "%s", bf_err_text(&err));
	return lk;
}

static void expect_key(const char *endpoints, const bf_fence_token *token, const char *when)
{
	bf_etcd_range_result keys = t_lock_contenders(endpoints, token->key);
	cr_assert_eq(keys.n_kvs, 1, "%s: %zu keys", when, keys.n_kvs);
	cr_assert_eq(keys.kvs[0].create_revision, token->revision, "%s", when);
	bf_etcd_range_result_free(&keys);
}

Test(lock_leases, fencing_stops_a_margin_before_the_lease_runs_out)
{
	t_etcd *e = t_etcd_start(1);
	bf_fence_token token;
	bf_lock *lk = fenced_lock(t_etcd_endpoints(e), &token);
	bf_err err;
	int rc;

	bf_fault_arm("lock.keepalive", 1);
	int64_t armed = bf_now_ms();
	while ((rc = bf_lock_check(lk, &err)) == 0 && bf_now_ms() - armed < 10000)
		bf_sleep_ms(100);
	int64_t took = bf_now_ms() - armed;
	cr_assert_eq(rc, BF_ELOCKLOST, "check still passes after %lld ms", (long long)took);
	cr_assert(strstr(err.msg, "fencing margin of 2000 ms"), "%s", err.msg);
	/* The last answered keepalive went out before the fault; 2 s of its
	 * 6 s are the margin. */
	cr_assert_leq(took, 4000 + 1500, "stopped after %lld ms", (long long)took);
	/* Stopped while the lease, and so the key, is still there. */
	expect_key(t_etcd_endpoints(e), &token, "when fencing stopped");
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}

Test(lock_leases, fencing_asks_etcd_when_keepalive_answers_are_lost)
{
	t_etcd *e = t_etcd_start(1);
	bf_fence_token token;
	bf_lock *lk = fenced_lock(t_etcd_endpoints(e), &token);
	bf_err err;

	/* etcd renews the lease, but no answer comes back: by its own count
	 * the holder is within the margin from 4 s after the grant and has
	 * lost its session at 6 s. */
	bf_fault_arm("etcd.reply_lost.LeaseKeepAlive", 1);
	int64_t armed = bf_now_ms();
	bf_sleep_ms(armed + 4600 - bf_now_ms());
	cr_assert_eq(bf_lock_check(lk, &err), 0, "etcd should vouch for the lease: %s",
		     bf_err_text(&err));
	bf_sleep_ms(armed + 6800 - bf_now_ms());
	cr_assert_eq(bf_lock_check(lk, &err), BF_ELOCKLOST);
	cr_assert(strstr(err.msg, "session lost"), "%s", err.msg);
	expect_key(t_etcd_endpoints(e), &token, "after the session gave up");
	bf_fault_reset();
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}

Test(lock_leases, a_margin_as_long_as_the_ttl_is_refused)
{
	bf_lock_opts o = { .endpoints = "127.0.0.1:9", .ttl_s = 3 };
	bf_lock *lk = NULL;
	bf_err err;

	o.fence_margin_ms = 3000;
	cr_assert_eq(bf_lock_create(&o, &lk, &err), BF_EINVAL);
	cr_assert(strstr(err.msg, "fencing margin"), "%s", err.msg);
	o.fence_margin_ms = -1;
	cr_assert_eq(bf_lock_create(&o, &lk, &err), BF_EINVAL);
	o.fence_margin_ms = 2999;
	cr_assert_eq(bf_lock_create(&o, &lk, &err), 0, "%s", bf_err_text(&err));
	bf_lock_destroy(lk);
}

/* ---- the lease of a dead holder ----------------------------------------- */

static void tell_lease(int64_t lease, void *arg)
{
	int fd = *(int *)arg;
	if (write(fd, &lease, sizeof(lease)) != (ssize_t)sizeof(lease))
		_exit(3);
}

/* Child body: holds lock "stale/1" on a 30 s lease until killed, telling
 * the parent its lease (on_session) and then that it holds the lock. */
static void hold_until_killed(const char *endpoints, int fd)
{
	bf_lock_opts o = { .endpoints = endpoints, .etcd_security = t_etcd_security_of(endpoints),
			   .ttl_s = 30, .timeout_s = 10, .call_timeout_ms = 1000,
			   .on_session = tell_lease, .on_wait_arg = &fd };
	bf_fence_token token;
	bf_lock *lk = NULL;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (bf_lock_create(&o, &lk, NULL) || bf_lock_acquire(lk, "stale/1", &token, NULL))
		_exit(2);
	if (write(fd, "H", 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static void read_all(int fd, void *buf, size_t len, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	while (got < len) {
		cr_assert_gt(poll(&p, 1, 15000), 0, "no %s from the child", what);
		ssize_t n = read(fd, (char *)buf + got, len - got);
		cr_assert_gt(n, 0, "the child ended before telling its %s", what);
		got += (size_t)n;
	}
}

Test(lock_leases, a_killed_holders_lease_is_revoked_not_waited_out)
{
	t_etcd *e = t_etcd_start(1);
	int fds[2];
	int64_t lease = 0;
	char held = 0;
	bf_fence_token token;
	bf_err err;

	/* Fork before this process touches gRPC: the child starts clean. */
	cr_assert_eq(pipe(fds), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		close(fds[0]);
		hold_until_killed(t_etcd_endpoints(e), fds[1]);
	}
	close(fds[1]);
	read_all(fds[0], &lease, sizeof(lease), "lease");
	read_all(fds[0], &held, 1, "hold");
	close(fds[0]);
	cr_assert_eq(held, 'H');

	/* on_session told the lease the key went under. */
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/stale/1");
	cr_assert_eq(keys.n_kvs, 1);
	cr_assert_eq(keys.kvs[0].lease, lease);
	bf_etcd_range_result_free(&keys);
	t_kill_reap(&child);

	/* The dead holder's key stays for its 30 s lease... */
	bf_lock *lk = t_lock_etcd(t_etcd_endpoints(e), 5, 2, NULL);
	cr_assert_eq(bf_lock_acquire(lk, "stale/1", &token, &err), BF_ETIMEDOUT);
	cr_assert(strstr(err.msg, "held by another session"), "%s", err.msg);
	bf_lock_destroy(lk);

	/* ...unless its lease is revoked first. */
	lk = t_lock_etcd(t_etcd_endpoints(e), 5, 10, NULL);
	bf_lock_revoke_stale(lk, lease);
	int64_t t0 = bf_now_ms();
	cr_assert_eq(bf_lock_acquire(lk, "stale/1", &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_leq(bf_now_ms() - t0, 4000, "acquire took %lld ms", (long long)(bf_now_ms() - t0));
	int64_t ids[4];
	cr_assert_eq(t_etcd_leases(e, ids, 4), 1, "the dead holder's lease is gone");
	cr_assert_neq(ids[0], lease);

	/* A stale lease etcd no longer knows is no obstacle either. */
	cr_assert_eq(bf_lock_release(lk, &err), 0, "%s", bf_err_text(&err));
	bf_lock_revoke_stale(lk, lease);
	cr_assert_eq(bf_lock_acquire(lk, "stale/1", &token, &err), 0, "%s", bf_err_text(&err));
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}
