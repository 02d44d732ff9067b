/*
 * Blocking wrapper around liburcu's wait-free concurrent queue.
 */
#include "pipeline/queue.h"
#include "util/tsan.h"

#include <errno.h>
#include <time.h>

void bf_queue_init(bf_queue *q)
{
	pthread_condattr_t ca;

	__cds_wfcq_init(&q->head, &q->tail);
	pthread_mutex_init(&q->pop_mu, NULL);
	pthread_mutex_init(&q->mu, NULL);
	/* Timed waits use the monotonic clock: wall-clock jumps must not
	 * stretch or cut a wait. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_store(&q->sleepers, 0);
	atomic_store(&q->closed, false);
	atomic_store(&q->wakes, 0);
}

void bf_queue_destroy(bf_queue *q)
{
	pthread_mutex_destroy(&q->pop_mu);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
}

static struct cds_wfcq_node *dequeue(bf_queue *q)
{
	struct cds_wfcq_node *n;

	pthread_mutex_lock(&q->pop_mu);
	n = __cds_wfcq_dequeue_blocking(&q->head, &q->tail);
	pthread_mutex_unlock(&q->pop_mu);
	return n;
}

static void signal_sleepers(bf_queue *q, bool all)
{
	/* Taking the mutex orders this signal after a sleeper's re-check, so
	 * a push between its check and its wait cannot be missed. */
	pthread_mutex_lock(&q->mu);
	if (all)
		pthread_cond_broadcast(&q->cv);
	else
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void bf_queue_push(bf_queue *q, struct cds_wfcq_node *node)
{
	cds_wfcq_node_init(node);
	BF_TSAN_RELEASE(node);
	cds_wfcq_enqueue(&q->head, &q->tail, node);
	if (atomic_load(&q->sleepers) > 0)
		signal_sleepers(q, false);
}

struct cds_wfcq_node *bf_queue_pop(bf_queue *q, const atomic_int *stop, int timeout_ms,
				   bool *timed_out)
{
	struct timespec deadline;

	if (timed_out)
		*timed_out = false;
	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	for (;;) {
		struct cds_wfcq_node *n = dequeue(q);
		if (n) {
			BF_TSAN_ACQUIRE(n);
			return n;
		}
		if ((stop && atomic_load(stop)) || atomic_load(&q->closed)) {
			/* A close racing with a last push: drain before giving up. */
			n = dequeue(q);
			if (n)
				BF_TSAN_ACQUIRE(n);
			if (n && !(stop && atomic_load(stop)))
				return n;
			if (n)
				cds_wfcq_enqueue(&q->head, &q->tail, n);
			return NULL;
		}
		pthread_mutex_lock(&q->mu);
		atomic_fetch_add(&q->sleepers, 1);
		unsigned wakes = atomic_load(&q->wakes);
		bool expired = false;
		while (cds_wfcq_empty(&q->head, &q->tail) && !atomic_load(&q->closed) &&
		       !(stop && atomic_load(stop)) && atomic_load(&q->wakes) == wakes && !expired) {
			if (timeout_ms < 0)
				pthread_cond_wait(&q->cv, &q->mu);
			else
				expired = pthread_cond_timedwait(&q->cv, &q->mu, &deadline) == ETIMEDOUT;
		}
		atomic_fetch_sub(&q->sleepers, 1);
		pthread_mutex_unlock(&q->mu);
		if (expired && cds_wfcq_empty(&q->head, &q->tail)) {
			if (timed_out)
				*timed_out = true;
			return NULL;
		}
	}
}

void bf_queue_close(bf_queue *q)
{
	atomic_store(&q->closed, true);
	signal_sleepers(q, true);
}

void bf_queue_wake(bf_queue *q)
{
	atomic_fetch_add(&q->wakes, 1);
	signal_sleepers(q, true);
}
