/*
 * Scenario tests of the etcd import lock (bf_lock_* with endpoints) against
 * real etcd clusters: tokens, mutual exclusion between processes, a lease
 * lost while held, etcd unreachable, killed and restarted, session creation
 * failing (TiDB #49265), failover, cancellation. TTLs and timeouts are
 * short so the whole suite stays quick.
 */
#include "bfill/etcd.h"
#include "bfill/fault.h"
#include "bfill/lock.h"
#include "lock/etcd_mutex.h"
#include "tests/support/etcd.h"
#include "tests/support/lock.h"
#include "tests/support/support.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void cleanup(void)
{
	bf_fault_reset();
	t_etcd_stop_all();
}

TestSuite(lock_etcd, .fini = cleanup, .timeout = 60);

Test(lock_etcd, lock_unlock_token_is_create_revision)
{
	t_etcd *e = t_etcd_start(1);
	t_waits w = { 0 };
	bf_lock *lk = t_lock_etcd(t_etcd_endpoints(e), 3, 5, &w);
	bf_fence_token token = { 0 };
	bf_err err;

	cr_assert_eq(bf_lock_acquire(lk, "7/1", &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(token.revision, 0);
	cr_assert_eq(w.held, 1);
	cr_assert_eq(bf_lock_check(lk, &err), 0, "%s", bf_err_text(&err));

	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/7/1");
	cr_assert_eq(keys.n_kvs, 1);
	cr_assert_eq(keys.kvs[0].create_revision, token.revision);
	cr_assert_neq(keys.kvs[0].lease, 0);
	/* "<prefix>/<name>/<lease id in lowercase hex>" */
	char want[128];
	snprintf(want, sizeof(want), "/bfill/lock/7/1/%llx", (unsigned long long)keys.kvs[0].lease);
	cr_assert_str_eq(keys.kvs[0].key, want);
	bf_etcd_range_result_free(&keys);

	bf_fence_token again;
	cr_assert_eq(bf_lock_acquire(lk, "7/1", &again, &err), BF_ESTATE);
	cr_assert_eq(bf_lock_release(lk, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_lock_check(lk, &err), BF_ELOCKLOST);
	keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/7/1");
	cr_assert_eq(keys.n_kvs, 0);
	bf_etcd_range_result_free(&keys);

	/* Taken again, the token moves forward. */
	bf_fence_token token2 = { 0 };
	cr_assert_eq(bf_lock_acquire(lk, "7/1", &token2, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(token2.revision, token.revision);
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}

/* ---- two processes ---------------------------------------------------- */

#define ROUNDS 8

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Child body: its own client; holds the lock ROUNDS times. Exit 0 = fine. */
static int contend(const char *endpoints, const char *log_path)
{
	bf_lock_opts o = { .endpoints = endpoints, .etcd_security = t_etcd_security_of(endpoints),
			   .ttl_s = 3, .timeout_s = 20, .call_timeout_ms = 1000 };
	bf_lock *lk = NULL;
	int fd = open(log_path, O_WRONLY | O_APPEND);
	int status = 0;

	if (fd < 0 || bf_lock_create(&o, &lk, NULL) != 0)
		return 2;
	for (int i = 0; i < ROUNDS && !status; i++) {
		bf_fence_token token = { 0 };
		bf_err err;
		if (bf_lock_acquire(lk, "contend", &token, &err) != 0) {
			fprintf(stderr, "child %d: %s\n", (int)getpid(), bf_err_text(&err));
			status = 3;
			break;
		}
		int64_t start = wall_ns();
		bf_sleep_ms(20);
		if (bf_lock_check(lk, &err) != 0)
			status = 4;
		int64_t end = wall_ns();
		char line[128];
		int n = snprintf(line, sizeof(line), "%lld %lld %lld\n", (long long)start,
				 (long long)end, (long long)token.revision);
		if (write(fd, line, (size_t)n) != n)
			status = 5;
		if (bf_lock_release(lk, &err) != 0)
			status = 6;
	}
	bf_lock_destroy(lk);
	close(fd);
	return status;
}

typedef struct interval {
	long long start, end, token;
} interval;

static int by_start(const void *a, const void *b)
{
	const interval *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

Test(lock_etcd, two_processes_never_overlap)
{
	/* Fork before this process touches gRPC: each child starts clean. */
	t_etcd *e = t_etcd_start(1);
	char *dir = t_tmpdir("lockrace");
	char log_path[512];
	pid_t kids[2];
	interval iv[2 * ROUNDS + 1];
	int n = 0;

	snprintf(log_path, sizeof(log_path), "%s/holds", dir);
	close(open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		cr_assert(kids[k] >= 0);
		if (kids[k] == 0)
			_exit(contend(t_etcd_endpoints(e), log_path));
	}
	for (int k = 0; k < 2; k++) {
		int status = 0;
		cr_assert_eq(waitpid(kids[k], &status, 0), kids[k]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "child %d failed (status %#x)", k, status);
	}
	FILE *f = fopen(log_path, "r");
	cr_assert_not_null(f);
	while (n <= 2 * ROUNDS &&
	       fscanf(f, "%lld %lld %lld", &iv[n].start, &iv[n].end, &iv[n].token) == 3)
		n++;
	fclose(f);
	cr_assert_eq(n, 2 * ROUNDS);
	qsort(iv, (size_t)n, sizeof(iv[0]), by_start);
	for (int i = 1; i < n; i++) {
		cr_assert_geq(iv[i].start, iv[i - 1].end,
			      "holds overlap: [%lld, %lld] and [%lld, %lld]", iv[i - 1].start,
			      iv[i - 1].end, iv[i].start, iv[i].end);
		/* Fencing tokens grow with every new holder. */
		cr_assert_gt(iv[i].token, iv[i - 1].token);
	}
	t_rmdir(dir);
	t_etcd_destroy(e);
}

/* ---- losing the lease ------------------------------------------------- */

Test(lock_etcd, lease_lost_while_holding_is_detected)
{
	t_etcd *e = t_etcd_start(1);
	const int ttl = 2;
	bf_lock *lk = t_lock_etcd(t_etcd_endpoints(e), ttl, 5, NULL);
	bf_fence_token token = { 0 };
	bf_err err;

	cr_assert_eq(bf_lock_acquire(lk, "lost", &token, &err), 0, "%s", bf_err_text(&err));
	bf_fault_arm("lock.keepalive", 1);
	int64_t t0 = bf_now_ms();
	int rc;
	while ((rc = bf_lock_check(lk, &err)) == 0 && bf_now_ms() - t0 < 10000)
		bf_sleep_ms(100);
	int64_t took = bf_now_ms() - t0;
	cr_assert_eq(rc, BF_ELOCKLOST, "check still passes after %lld ms", (long long)took);
	cr_assert_leq(took, ttl * 1000 + 1500, "lost noticed after %lld ms", (long long)took);
	/* Fencing gives up a margin before the lease runs out; keepalives
	 * resume only once the session has surely given up on it too. */
	bf_sleep_ms(t0 + ttl * 1000 + 500 - bf_now_ms());
	cr_assert_eq(bf_lock_check(lk, &err), BF_ELOCKLOST);
	cr_assert(strstr(err.msg, "session lost"), "%s", err.msg);
	bf_fault_reset();

	/* etcd expires the lease by itself, so another session gets the lock
	 * even though the first holder never released it. */
	bf_lock *other = t_lock_etcd(t_etcd_endpoints(e), ttl, 10, NULL);
	bf_fence_token token2 = { 0 };
	cr_assert_eq(bf_lock_acquire(other, "lost", &token2, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(token2.revision, token.revision);
	/* The old holder still says lost, and releasing it is harmless. */
	cr_assert_eq(bf_lock_check(lk, &err), BF_ELOCKLOST);
	bf_lock_release(lk, &err);
	cr_assert_eq(bf_lock_check(other, &err), 0, "%s", bf_err_text(&err));
	bf_lock_destroy(other);
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}

/* ---- etcd unreachable ------------------------------------------------- */

Test(lock_etcd, unreachable_etcd_times_out_cleanly)
{
	char ep[64];
	t_waits w = { 0 };
	bf_fence_token token = { 0 };
	bf_err err;

	snprintf(ep, sizeof(ep), "%s", t_etcd_dead_endpoint());
	bf_lock *lk = t_lock_etcd(ep, 2, 2, &w);
	int64_t t0 = bf_now_ms();
	cr_assert_eq(bf_lock_acquire(lk, "7/1", &token, &err), BF_ETIMEDOUT);
	int64_t took = bf_now_ms() - t0;
	cr_assert(took >= 1900 && took <= 4000, "gave up after %lld ms", (long long)took);
	cr_assert(strstr(err.msg, "etcd lock /bfill/lock/7/1: gave up after 2 s"), "%s", err.msg);
	cr_assert(strstr(err.msg, ep), "%s", err.msg);
	cr_assert_geq(w.retries, 1);
	cr_assert(strstr(w.last, ep), "%s", w.last);
	cr_assert_eq(w.held, 0);
	cr_assert_eq(bf_lock_check(lk, &err), BF_ELOCKLOST);
	cr_assert_eq(bf_lock_release(lk, &err), 0);
	bf_lock_destroy(lk);
}

Test(lock_etcd, etcd_killed_and_restarted_while_held)
{
	t_etcd *e = t_etcd_start(1);
	bf_lock *lk = t_lock_etcd(t_etcd_endpoints(e), 3, 10, NULL);
	bf_fence_token token = { 0 };
	bf_err err;

	cr_assert_eq(bf_lock_acquire(lk, "restart", &token, &err), 0, "%s", bf_err_text(&err));
	t_etcd_kill(e, 0);
	/* Nobody can confirm the lock: the holder must consider it lost. */
	int64_t t0 = bf_now_ms();
	int lost = bf_lock_check(lk, &err);
	cr_assert_eq(lost, BF_ELOCKLOST, "check with etcd down: %d %s", lost, bf_err_text(&err));
	cr_assert_leq(bf_now_ms() - t0, 2500);
	t_etcd_restart(e, 0);

	/* After the restart the check tells the truth either way. */
	int rc = bf_lock_check(lk, &err);
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/restart");
	if (rc == 0) {
		cr_assert_eq(keys.n_kvs, 1, "held, but %zu keys", keys.n_kvs);
		cr_assert_eq(keys.kvs[0].create_revision, token.revision);
	} else {
		cr_assert_eq(rc, BF_ELOCKLOST);
	}
	bf_etcd_range_result_free(&keys);
	bf_lock_release(lk, &err);
	bf_lock_destroy(lk);

	bf_lock *fresh = t_lock_etcd(t_etcd_endpoints(e), 3, 10, NULL);
	bf_fence_token token2 = { 0 };
	cr_assert_eq(bf_lock_acquire(fresh, "restart", &token2, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(token2.revision, token.revision);
	cr_assert_eq(bf_lock_check(fresh, &err), 0, "%s", bf_err_text(&err));
	bf_lock_destroy(fresh);
	t_etcd_destroy(e);
}

/* ---- TiDB #49265: the session cannot be created ----------------------- */

Test(lock_etcd, session_failure_is_an_error_not_a_crash)
{
	t_etcd *e = t_etcd_start(1);
	t_waits w = { 0 };
	bf_lock *lk = t_lock_etcd(t_etcd_endpoints(e), 2, 1, &w);
	bf_fence_token token = { 0 };
	bf_err err;

	bf_fault_arm("lock.session", 1);
	cr_assert_eq(bf_lock_acquire(lk, "49265", &token, &err), BF_ETIMEDOUT);
	cr_assert(strstr(err.msg, "lock.session"), "%s", err.msg);
	cr_assert_geq(w.retries, 1);
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/49265");
	cr_assert_eq(keys.n_kvs, 0);
	bf_etcd_range_result_free(&keys);

	/* The mutex itself refuses a missing session. */
	bf_etcd *c = NULL;
	bf_etcd_mutex *m = NULL;
	c = t_etcd_client(e, 1000);
	cr_assert_eq(bf_etcd_mutex_create(c, NULL, "/bfill/lock/49265", &m, &err), BF_ESESSION);
	cr_assert_null(m);
	bf_etcd_destroy(c);

	/* Once sessions can be made again, the same lock object works. */
	bf_fault_reset();
	cr_assert_eq(bf_lock_acquire(lk, "49265", &token, &err), 0, "%s", bf_err_text(&err));
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}

/* ---- failover ---------------------------------------------------------- */

Test(lock_etcd, first_endpoint_dead_second_alive)
{
	t_etcd *e = t_etcd_start(1);
	char eps[128];
	bf_fence_token token = { 0 };
	bf_err err;

	snprintf(eps, sizeof(eps), "%s,%s", t_etcd_dead_endpoint(), t_etcd_endpoint(e, 0));
	bf_lock *lk = t_lock_etcd(eps, 3, 5, NULL);
	int64_t t0 = bf_now_ms();
	cr_assert_eq(bf_lock_acquire(lk, "failover", &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_leq(bf_now_ms() - t0, 2000);
	cr_assert_eq(bf_lock_check(lk, &err), 0, "%s", bf_err_text(&err));
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}

Test(lock_etcd, three_members_holders_member_dies)
{
	t_etcd *e = t_etcd_start(3);
	/* Room for an election: when member 0 led, the others say "no
	 * leader" until they elect one, which on a loaded machine took over
	 * 2 s; a session whose keepalives all failed for its TTL is lost. */
	const int ttl = 4;
	bf_fence_token token = { 0 }, token2 = { 0 };
	bf_err err;

	/* The client starts on member 0, so its keepalive stream is there. */
	bf_lock *lk = t_lock_etcd(t_etcd_endpoints(e), ttl, 10, NULL);
	cr_assert_eq(bf_lock_acquire(lk, "quorum", &token, &err), 0, "%s", bf_err_text(&err));
	t_etcd_kill(e, 0);
	/* Longer than the TTL: only keepalives through the other members can
	 * have kept the lease. */
	bf_sleep_ms(ttl * 1000 + 1500);
	cr_assert_eq(bf_lock_check(lk, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_lock_release(lk, &err), 0, "%s", bf_err_text(&err));

	/* A new contender, listing the dead member first, gets in too. */
	bf_lock *other = t_lock_etcd(t_etcd_endpoints(e), ttl, 10, NULL);
	cr_assert_eq(bf_lock_acquire(other, "quorum", &token2, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(token2.revision, token.revision);
	bf_lock_destroy(other);
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}

/* ---- waiting, handing over, cancelling -------------------------------- */

typedef struct acquirer {
	bf_lock *lk;
	const char *name;
	int rc;
	bf_fence_token token;
	int64_t done_ms;
	bf_err err;
} acquirer;

static void *acquire_thread(void *arg)
{
	acquirer *a = arg;
	a->rc = bf_lock_acquire(a->lk, a->name, &a->token, &a->err);
	a->done_ms = bf_now_ms();
	return NULL;
}

Test(lock_etcd, waiter_gets_the_lock_when_holder_releases)
{
	t_etcd *e = t_etcd_start(1);
	bf_lock *a = t_lock_etcd(t_etcd_endpoints(e), 3, 5, NULL);
	bf_lock *b = t_lock_etcd(t_etcd_endpoints(e), 3, 10, NULL);
	acquirer wb = { .lk = b, .name = "handover" };
	bf_fence_token token = { 0 };
	pthread_t th;
	bf_err err;

	cr_assert_eq(bf_lock_acquire(a, "handover", &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(pthread_create(&th, NULL, acquire_thread, &wb), 0);
	bf_sleep_ms(500);
	cr_assert_eq(wb.done_ms, 0, "the waiter got in while the lock was held");
	int64_t released = bf_now_ms();
	cr_assert_eq(bf_lock_release(a, &err), 0, "%s", bf_err_text(&err));
	pthread_join(th, NULL);
	cr_assert_eq(wb.rc, 0, "%s", bf_err_text(&wb.err));
	cr_assert_gt(wb.token.revision, token.revision);
	/* The watch hands over at once, not at the next once-a-second poll. */
	cr_assert_leq(wb.done_ms - released, 900, "handover took %lld ms",
		      (long long)(wb.done_ms - released));
	bf_lock_destroy(b);
	bf_lock_destroy(a);
	t_etcd_destroy(e);
}

Test(lock_etcd, held_by_another_times_out)
{
	t_etcd *e = t_etcd_start(1);
	bf_lock *a = t_lock_etcd(t_etcd_endpoints(e), 3, 5, NULL);
	bf_lock *b = t_lock_etcd(t_etcd_endpoints(e), 3, 1, NULL);
	bf_fence_token token = { 0 };
	bf_err err;

	cr_assert_eq(bf_lock_acquire(a, "busy", &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_lock_acquire(b, "busy", &token, &err), BF_ETIMEDOUT);
	cr_assert(strstr(err.msg, "held by another session"), "%s", err.msg);
	/* The loser left no queued key behind. */
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/busy");
	cr_assert_eq(keys.n_kvs, 1);
	bf_etcd_range_result_free(&keys);
	bf_lock_destroy(b);
	bf_lock_destroy(a);
	t_etcd_destroy(e);
}

Test(lock_etcd, cancel_stops_a_waiting_acquire)
{
	t_etcd *e = t_etcd_start(1);
	bf_lock *a = t_lock_etcd(t_etcd_endpoints(e), 3, 5, NULL);
	bf_lock *b = t_lock_etcd(t_etcd_endpoints(e), 3, 30, NULL);
	acquirer wb = { .lk = b, .name = "cancel" };
	bf_fence_token token = { 0 };
	pthread_t th;
	bf_err err;

	cr_assert_eq(bf_lock_acquire(a, "cancel", &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(pthread_create(&th, NULL, acquire_thread, &wb), 0);
	bf_sleep_ms(300);
	int64_t cancelled = bf_now_ms();
	bf_lock_cancel(b);
	pthread_join(th, NULL);
	cr_assert_eq(wb.rc, BF_ECANCELLED, "%s", bf_err_text(&wb.err));
	cr_assert_leq(wb.done_ms - cancelled, 500, "cancel took %lld ms",
		      (long long)(wb.done_ms - cancelled));
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/cancel");
	cr_assert_eq(keys.n_kvs, 1);
	bf_etcd_range_result_free(&keys);
	bf_lock_destroy(b);
	bf_lock_destroy(a);
	t_etcd_destroy(e);
}

/* A release that could not reach etcd leaves the key and the lease; the
 * next acquire revokes that lease first instead of queueing behind its
 * own stale key until the TTL runs out. */
Test(lock_etcd, stale_own_key_is_revoked_before_the_next_acquire)
{
	t_etcd *e = t_etcd_start(1);
	/* A lock timeout well under the TTL: waiting the stale key out is not
	 * an option, only revoking it is. */
	bf_lock *lk = t_lock_etcd(t_etcd_endpoints(e), 20, 4, NULL);
	bf_fence_token tok1, tok2;
	bf_err err = { 0 };

	cr_assert_eq(bf_lock_acquire(lk, "stale/1", &tok1, &err), 0, "%s", err.msg);
	bf_fault_arm_range("lock.unlock", 1, 1);
	bf_fault_arm_range("lock.revoke", 1, 1);
	cr_assert_neq(bf_lock_release(lk, &err), 0, "the injected release failure is reported");
	bf_etcd_range_result keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/stale/1");
	cr_assert_eq(keys.n_kvs, 1, "the stale key is still there");
	bf_etcd_range_result_free(&keys);

	cr_assert_eq(bf_lock_acquire(lk, "stale/1", &tok2, &err), 0, "%s", err.msg);
	cr_assert_gt(tok2.revision, tok1.revision);
	keys = t_lock_contenders(t_etcd_endpoints(e), "/bfill/lock/stale/1");
	cr_assert_eq(keys.n_kvs, 1, "only the new key is queued");
	cr_assert_eq(keys.kvs[0].create_revision, tok2.revision, "the holder is the new key, not the stale one");
	bf_etcd_range_result_free(&keys);
	cr_assert_eq(bf_lock_check(lk, &err), 0, "%s", err.msg);
	bf_fault_reset();
	bf_lock_destroy(lk);
	t_etcd_destroy(e);
}
