/*
 * bfill-lockbench: latency of the etcd import lock. Each iteration is one
 * uncontended bf_lock_acquire + bf_lock_release, exactly what the result
 * sink does around each flush: a new session (LeaseGrant, keepalive
 * stream), the mutex Txn, then the key's delete and the lease's revoke.
 * Prints p50/p99/max of acquire, release and the pair, in milliseconds.
 *
 * With --threads N > 1, N threads (each with its own lock object, so its
 * own client and session) contend for the same lock, every hold is checked
 * against an in-process "someone is inside" flag, and one extra acquire is
 * cancelled from another thread: a stress run for ThreadSanitizer builds
 * (`make tsan`), where Criterion cannot run. Latencies then include waiting.
 *
 * usage: bfill-lockbench --endpoints EP[,EP...] [--iterations N] [--ttl S]
 *                        [--name NAME] [--threads N]
 * Exit status: 0 ok, 1 a lock call failed or two holders overlapped, 2 usage.
 * Depends on libbfill's public lock API only.
 */
#include "bfill/lock.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Sorts v and prints one line of percentiles. */
static void report(const char *what, double *v, int n)
{
	double sum = 0;

	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	for (int i = 0; i < n; i++)
		sum += v[i];
	printf("%-16s p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms   mean %7.2f ms\n", what,
	       v[(n - 1) / 2], v[(int)((n - 1) * 0.99)], v[n - 1], sum / n);
}

typedef struct run {
	const char *endpoints;
	const char *name;
	int iterations;
	int ttl_s;
	atomic_int inside;     /* holders right now: must never exceed 1 */
	atomic_int overlaps;
	atomic_int failures;
} run;

typedef struct worker {
	run *r;
	pthread_t thread;
	double *acq, *rel, *both; /* iterations entries each, owned */
} worker;

static void fail(run *r, int i, const char *what, const bf_err *err)
{
	fprintf(stderr, "bfill-lockbench: iteration %d: %s: %s\n", i, what, bf_err_text(err));
	atomic_fetch_add(&r->failures, 1);
}

static void *work(void *arg)
{
	worker *w = arg;
	run *r = w->r;
	bf_lock_opts o = { .endpoints = r->endpoints, .ttl_s = r->ttl_s, .timeout_s = 60 };
	bf_lock *lk = NULL;
	bf_err err;

	if (bf_lock_create(&o, &lk, &err) != 0) {
		fail(r, 0, "create", &err);
		return NULL;
	}
	for (int i = 0; i < r->iterations; i++) {
		bf_fence_token token;
		double t0 = now_ms();
		if (bf_lock_acquire(lk, r->name, &token, &err) != 0) {
			fail(r, i, "acquire", &err);
			break;
		}
		double t1 = now_ms();
		if (atomic_fetch_add(&r->inside, 1) != 0)
			atomic_fetch_add(&r->overlaps, 1);
		if (bf_lock_check(lk, &err) != 0)
			fail(r, i, "check", &err);
		atomic_fetch_sub(&r->inside, 1);
		double t2 = now_ms();
		if (bf_lock_release(lk, &err) != 0) {
			fail(r, i, "release", &err);
			break;
		}
		double t3 = now_ms();
		w->acq[i] = t1 - t0;
		w->rel[i] = t3 - t2;
		w->both[i] = (t1 - t0) + (t3 - t2);
	}
	bf_lock_destroy(lk);
	return NULL;
}

typedef struct cancelled_acquire {
	bf_lock *lk;
	const char *name;
	int rc;
} cancelled_acquire;

static void *acquire_to_cancel(void *arg)
{
	cancelled_acquire *c = arg;
	bf_fence_token token;
	c->rc = bf_lock_acquire(c->lk, c->name, &token, NULL);
	return NULL;
}

/* One acquire cancelled from this thread while it waits or retries. */
static void cancel_one(run *r)
{
	bf_lock_opts o = { .endpoints = r->endpoints, .ttl_s = r->ttl_s, .timeout_s = 60 };
	cancelled_acquire c = { .name = r->name, .rc = 1 };
	pthread_t th;
	bf_err err;

	if (bf_lock_create(&o, &c.lk, &err) != 0) {
		fail(r, 0, "create", &err);
		return;
	}
	if (pthread_create(&th, NULL, acquire_to_cancel, &c) == 0) {
		usleep(20 * 1000);
		bf_lock_cancel(c.lk);
		pthread_join(th, NULL);
		/* It may have got the lock before the cancel landed; both are fine. */
		if (c.rc != 0 && c.rc != BF_ECANCELLED)
			fprintf(stderr, "bfill-lockbench: cancelled acquire returned %d\n", c.rc);
	}
	bf_lock_destroy(c.lk);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "endpoints", required_argument, NULL, 'e' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "ttl", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	run r = { .name = "bench/1", .iterations = 1000, .ttl_s = 10 };
	int threads = 1, opt, total;
	worker *w = NULL;
	double *acq = NULL, *rel = NULL, *both = NULL;
	int status = 1;

	while ((opt = getopt_long(argc, argv, "e:n:t:m:j:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e': r.endpoints = optarg; break;
		case 'n': r.iterations = atoi(optarg); break;
		case 't': r.ttl_s = atoi(optarg); break;
		case 'm': r.name = optarg; break;
		case 'j': threads = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!r.endpoints || !*r.endpoints || r.iterations < 1 || threads < 1)
		goto usage;

	total = r.iterations * threads;
	w = calloc((size_t)threads, sizeof(*w));
	acq = calloc((size_t)total, sizeof(double));
	rel = calloc((size_t)total, sizeof(double));
	both = calloc((size_t)total, sizeof(double));
	if (!w || !acq || !rel || !both) {
		fprintf(stderr, "bfill-lockbench: out of memory\n");
		goto out;
	}
	for (int t = 0; t < threads; t++) {
		w[t].r = &r;
		w[t].acq = acq + (size_t)t * r.iterations;
		w[t].rel = rel + (size_t)t * r.iterations;
		w[t].both = both + (size_t)t * r.iterations;
	}
	if (threads == 1) {
		work(&w[0]);
	} else {
		int started = 0;
		for (; started < threads; started++)
			if (pthread_create(&w[started].thread, NULL, work, &w[started]) != 0)
				break;
		cancel_one(&r);
		for (int t = 0; t < started; t++)
			pthread_join(w[t].thread, NULL);
		if (started < threads)
			atomic_fetch_add(&r.failures, 1);
	}
	if (atomic_load(&r.failures) || atomic_load(&r.overlaps)) {
		fprintf(stderr, "bfill-lockbench: %d failed calls, %d overlapping holds\n",
			atomic_load(&r.failures), atomic_load(&r.overlaps));
		goto out;
	}
	printf("endpoints %s, %d thread%s x %d iterations, lease TTL %d s\n", r.endpoints,
	       threads, threads > 1 ? "s" : "", r.iterations, r.ttl_s);
	report("acquire+release", both, total);
	report("acquire", acq, total);
	report("release", rel, total);
	status = 0;
	goto out;
usage:
	fprintf(stderr, "usage: bfill-lockbench --endpoints EP[,EP...] [--iterations N] "
			"[--ttl S] [--name NAME] [--threads N]\n");
	status = 2;
out:
	free(w);
	free(acq);
	free(rel);
	free(both);
	return status;
}
