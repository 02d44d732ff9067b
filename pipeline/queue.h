/*
 * Internal: the blocking queue joining pipeline stages. Producers enqueue
 * wait-free (liburcu's cds_wfcq); a consumer that finds the queue empty
 * sleeps on a condition variable until a producer, close() or wake()
 * signals it. Bounding is done by the fixed pool of batches, not here.
 */
#ifndef BFILL_PIPELINE_QUEUE_H
#define BFILL_PIPELINE_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <urcu/wfcqueue.h>

typedef struct bf_queue {
	/* The lock-free head with a dequeue mutex of our own: cds_wfcq's
	 * locked head asserts on its mutex calls, and a library must not
	 * abort the process it runs in. */
	struct __cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	pthread_mutex_t pop_mu; /* one dequeuer at a time, as cds_wfcq requires */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_int sleepers;
	atomic_bool closed;
	atomic_uint wakes; /* bumped by bf_queue_wake to end one round of waits */
} bf_queue;

void bf_queue_init(bf_queue *q);
void bf_queue_destroy(bf_queue *q);
void bf_queue_push(bf_queue *q, struct cds_wfcq_node *node);
/*
 * Takes the oldest node, sleeping while the queue is empty. Returns NULL
 * once the queue is closed and drained, when *stop becomes non-zero
 * (checked at every wake; stop may be NULL), or after timeout_ms (< 0:
 * no timeout) with *timed_out set (timed_out may be NULL).
 */
struct cds_wfcq_node *bf_queue_pop(bf_queue *q, const atomic_int *stop, int timeout_ms,
				   bool *timed_out);
/* No more pushes: poppers drain what is left, then get NULL. */
void bf_queue_close(bf_queue *q);
/* Wakes every sleeper so it re-checks its stop flag. */
void bf_queue_wake(bf_queue *q);

#endif
