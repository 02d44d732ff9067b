/*
 * Internal: what the cluster target does when a call to a store node fails
 * (DESIGN §5, docs/cluster.md), in one place for every operation: learn
 * what the failure tells (a new leader, the regions after a split, or a
 * fresh layout from etcd), wait as long as it calls for (full-jitter
 * exponential backoff, capped, within a total deadline), and say what to
 * do next.
 *
 *   NotLeader            learn the hinted leader (else refresh); again
 *   RegionNotFound,
 *   KeyNotInRegion,
 *   StoreNotMatch,
 *   a node's RequestTooOld/New (BF_ESTATE)
 *                        refresh; split the range again by the cache
 *   EpochNotMatch        learn its current regions (else refresh); split again
 *   ServerIsBusy         wait (at least the node's hint, within the cap); again
 *   a node down or slow  wait; again, until the deadline: then BF_EUNAVAIL
 *   StaleCommand         redo the region's work (an ingest writes again)
 *   DiskFull, BF_ENOSPC  fatal, naming the store
 *   a stale fence token  fatal (BF_EFENCED)
 *   a refused TLS handshake  fatal (-EACCES, naming the store)
 *   anything else        wait; redo, a few times at most
 *
 * A refresh that cannot reach etcd leaves the cache as it was: the work
 * goes on from what is cached and learned from the nodes.
 *
 * Depends on: bfill/cluster.h, ingest/tikv_wire (region errors), util
 * (backoff, clocks).
 */
#ifndef BFILL_INGEST_CLUSTER_RETRY_H
#define BFILL_INGEST_CLUSTER_RETRY_H

#include "bfill/cluster.h"
#include "ingest/tikv_wire.h"
#include "util/backoff.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef enum bf_retry_next {
	BF_RETRY_AGAIN,   /* the same call again, on the region as cached now */
	BF_RETRY_REDO,    /* the region's work from the start (write again) */
	BF_RETRY_RESPLIT, /* the region is not what we thought: cut the range
			   * by the cache again and start over per region */
	BF_RETRY_FAIL,    /* give up; err says why */
} bf_retry_next;

/* What a target's retries are waiting out now, for status ("store 2
 * busy"): the failure of the last wait begun, until a success clears it.
 * Several operations share one (the last word counts). */
typedef struct bf_retry_board {
	pthread_mutex_t mu;
	char text[BF_ERR_MSG_MAX]; /* "" while nothing is being waited out */
} bf_retry_board;

/* Copies the board's text into out; false when it is empty. */
bool bf_retry_board_read(bf_retry_board *b, char *out, size_t n);

typedef struct bf_retry_opts {
	int64_t base_ms, cap_ms; /* the backoff's first and largest ceilings */
	/* How long failures may go on without a success in between: a long
	 * operation is not cut short, a node that stays down is. */
	int64_t budget_ms;
	int max_other_failures;  /* failures of no known kind allowed */
	/* Borrowed, NULL: never. Once set, the next decision is BF_RETRY_FAIL
	 * with BF_ECANCELLED and a wait under way ends within 50 ms. */
	const atomic_bool *cancel;
	bf_retry_board *board;   /* borrowed, may be NULL */
} bf_retry_opts;

/* One operation's retry state: a plain value, copied into the pieces a
 * re-split makes so that they keep the same budget. */
typedef struct bf_retry {
	bf_cluster *cluster; /* borrowed */
	bf_backoff bo;       /* its deadline: the budget from the first failure */
	int64_t budget_ms;
	int64_t failing_since_ms; /* 0 after a success */
	int max_other, other_failures;
	int last_code;             /* of the last failure */
	char last[BF_ERR_MSG_MAX]; /* its message */
	const atomic_bool *cancel; /* borrowed, may be NULL */
	bf_retry_board *board;     /* borrowed, may be NULL */
} bf_retry;

/* Whether a cancel flag (bf_retry_opts.cancel, NULL: none) is set. */
static inline bool bf_retry_cancel_set(const atomic_bool *cancel)
{
	return cancel && atomic_load(cancel);
}

/* Whether rt's operation was told to stop. */
bool bf_retry_cancelled(const bf_retry *rt);

void bf_retry_init(bf_retry *rt, bf_cluster *c, const bf_retry_opts *o, uint64_t seed);
/* After a success: the next failure waits the shortest again and starts
 * a new budget. */
void bf_retry_success(bf_retry *rt);

/*
 * After a call about region r failed: rc < 0 with its message in err, or
 * rc == 0 with the node's region error in *re (re and r may be NULL when
 * rc < 0).
 * Learns, waits and returns the next step; BF_RETRY_FAIL with the final
 * error in err, whose code is *code.
 */
bf_retry_next bf_retry_after(bf_retry *rt, const bf_region *r, int rc, const bf_tikv_error *re,
			     int *code, bf_err *err);

#endif
