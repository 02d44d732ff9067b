/*
 * The cluster target's retry policy (ingest/cluster_retry.h).
 * Depends on: bfill/cluster.h, ingest/tikv_wire, util.
 */
#include "ingest/cluster_retry.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bf_retry_init(bf_retry *rt, bf_cluster *c, const bf_retry_opts *o, uint64_t seed)
{
	memset(rt, 0, sizeof(*rt));
	rt->cluster = c;
	rt->budget_ms = o->budget_ms;
	rt->max_other = o->max_other_failures;
	rt->cancel = o->cancel;
	rt->board = o->board;
	bf_backoff_init(&rt->bo, o->base_ms, o->cap_ms, seed, 0);
}

static void board_write(bf_retry_board *b, const char *text)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	snprintf(b->text, sizeof(b->text), "%s", text);
	pthread_mutex_unlock(&b->mu);
}

bool bf_retry_board_read(bf_retry_board *b, char *out, size_t n)
{
	pthread_mutex_lock(&b->mu);
	snprintf(out, n, "%s", b->text);
	pthread_mutex_unlock(&b->mu);
	return out[0] != '\0';
}

void bf_retry_success(bf_retry *rt)
{
	if (rt->failing_since_ms)
		board_write(rt->board, "");
	bf_backoff_reset(&rt->bo);
	rt->bo.deadline_ms = 0;
	rt->failing_since_ms = 0;
	rt->other_failures = 0;
}

/* Remembers a retryable failure: if time runs out, it is what is told.
 * The first failure after a success starts the budget. */
static void note(bf_retry *rt, int code, const char *msg)
{
	if (!rt->failing_since_ms) {
		rt->failing_since_ms = bf_now_ms();
		rt->bo.deadline_ms = rt->failing_since_ms + rt->budget_ms;
	}
	rt->last_code = code;
	snprintf(rt->last, sizeof(rt->last), "%s", msg);
}

static void note_region_error(bf_retry *rt, const bf_region *r, const bf_tikv_error *re)
{
	char msg[BF_ERR_MSG_MAX];

	snprintf(msg, sizeof(msg), "region %" PRIu64 ": %s%s%s", r->id, bf_tikv_err_name(re->kind),
		 *re->message ? ": " : "", re->message);
	note(rt, BF_EIO, msg);
}

bool bf_retry_cancelled(const bf_retry *rt)
{
	return bf_retry_cancel_set(rt->cancel);
}

/* Stopped: the last failure is still told, as what was being retried. */
static int cancelled(bf_retry *rt, int *code, bf_err *err)
{
	*code = BF_ECANCELLED;
	bf_errf(err, BF_ECANCELLED, "stopped while retrying%s%s", *rt->last ? ": " : "", rt->last);
	return BF_ECANCELLED;
}

/* Sleeps ms in slices, so that a cancel is seen soon. */
static int sleep_unless_cancelled(bf_retry *rt, int64_t ms, int *code, bf_err *err)
{
	while (ms > 0) {
		int64_t slice = ms < 50 ? ms : 50;
		if (bf_retry_cancelled(rt))
			return cancelled(rt, code, err);
		bf_sleep_ms(slice);
		ms -= slice;
	}
	return bf_retry_cancelled(rt) ? cancelled(rt, code, err) : 0;
}

/*
 * Waits a backoff draw, at least min_ms (within the cap). BF_ETIMEDOUT
 * once the deadline has passed: the final error goes into err;
 * BF_ECANCELLED when told to stop.
 */
static int back_off(bf_retry *rt, int64_t min_ms, int *code, bf_err *err)
{
	int64_t ms = 0;

	if (bf_backoff_next(&rt->bo, &ms) == BF_ETIMEDOUT) {
		/* A node that stayed down is what made us give up. */
		*code = rt->last_code == BF_EUNAVAIL || rt->last_code == BF_ETIMEDOUT ? BF_EUNAVAIL
										    : BF_ETIMEDOUT;
		bf_errf(err, *code, "gave up after %.1f s of retries: %s",
			(double)(bf_now_ms() - rt->failing_since_ms) / 1000.0, rt->last);
		return BF_ETIMEDOUT;
	}
	board_write(rt->board, rt->last);
	if (min_ms > rt->bo.cap_ms)
		min_ms = rt->bo.cap_ms;
	if (ms < min_ms) {
		int64_t left = rt->bo.deadline_ms > 0 ? rt->bo.deadline_ms - bf_now_ms() : min_ms;
		ms = min_ms < left ? min_ms : left;
	}
	return sleep_unless_cancelled(rt, ms, code, err);
}

/* Reloads the layout from etcd; when etcd cannot be reached the cache
 * keeps what it has, and the wait before the next try still applies. */
static void refresh(bf_retry *rt)
{
	bf_cluster_refresh(rt->cluster, NULL);
}

/*
 * EpochNotMatch's current regions into the cache. A store does not say
 * who leads them: the old leader's store when it holds a peer, as TiDB
 * assumes, else the first peer; a wrong guess costs one NotLeader, whose
 * hint then corrects it. BF_ENOMEM.
 */
static int learn_regions(bf_retry *rt, const bf_region *old, const bf_tikv_error *re)
{
	bf_region *cur = malloc(re->ncurrent * sizeof(*cur));

	if (!cur)
		return BF_ENOMEM;
	memcpy(cur, re->current, re->ncurrent * sizeof(*cur));
	for (size_t i = 0; i < re->ncurrent; i++) {
		cur[i].leader_store = cur[i].npeers > 0 ? cur[i].peers[0].store_id : 0;
		for (int p = 0; old && p < cur[i].npeers; p++)
			if (cur[i].peers[p].store_id == old->leader_store)
				cur[i].leader_store = old->leader_store;
	}
	bf_cluster_learn_regions(rt->cluster, cur, re->ncurrent);
	free(cur);
	return 0;
}

static bf_retry_next fail(int rc, int *code)
{
	*code = rc;
	return BF_RETRY_FAIL;
}

/* A failure of no known kind: retried a few times, then final. */
static bf_retry_next other(bf_retry *rt, int rc, int *code, bf_err *err)
{
	if (++rt->other_failures > rt->max_other)
		return fail(rc, code);
	note(rt, rc, bf_err_text(err));
	return back_off(rt, 0, code, err) ? BF_RETRY_FAIL : BF_RETRY_REDO;
}

/* A call that failed as a whole (no region error). */
static bf_retry_next after_call(bf_retry *rt, int rc, int *code, bf_err *err)
{
	switch (rc) {
	case BF_EUNAVAIL:
	case BF_ETIMEDOUT:
		note(rt, rc, bf_err_text(err));
		return back_off(rt, 0, code, err) ? BF_RETRY_FAIL : BF_RETRY_AGAIN;
	case BF_ESTATE:
		note(rt, rc, bf_err_text(err));
		refresh(rt);
		return back_off(rt, 0, code, err) ? BF_RETRY_FAIL : BF_RETRY_RESPLIT;
	case BF_EFENCED:
	case BF_ENOSPC:
	case BF_ENOMEM:
	case BF_ECANCELLED:
	case -EACCES: /* a store refused the TLS handshake */
		return fail(rc, code);
	default:
		return other(rt, rc, code, err);
	}
}

static bf_retry_next disk_full(bf_retry *rt, const bf_region *r, const bf_tikv_error *re,
			       int *code, bf_err *err)
{
	bf_cluster_store st;
	uint64_t id = re->nfull > 0 ? re->full_stores[0] : r->leader_store;

	if (bf_cluster_store_get(rt->cluster, id, &st, NULL))
		snprintf(st.address, sizeof(st.address), "address unknown");
	bf_errf(err, BF_ENOSPC, "store %" PRIu64 " (%s) is out of disk space%s%s (region %" PRIu64 ")",
		id, st.address, *re->message ? ": " : "", re->message, r->id);
	return fail(BF_ENOSPC, code);
}

bf_retry_next bf_retry_after(bf_retry *rt, const bf_region *r, int rc, const bf_tikv_error *re,
			     int *code, bf_err *err)
{
	*code = 0;
	if (bf_retry_cancelled(rt)) {
		if (rc)
			note(rt, rc, bf_err_text(err));
		cancelled(rt, code, err);
		return BF_RETRY_FAIL;
	}
	if (rc)
		return after_call(rt, rc, code, err);
	note_region_error(rt, r, re);
	switch (re->kind) {
	case BF_TIKV_OK:
		return BF_RETRY_AGAIN;
	case BF_TIKV_NOT_LEADER:
		if (re->leader_store && re->leader_store != r->leader_store)
			bf_cluster_learn_leader(rt->cluster, r->id, re->leader_store);
		else
			refresh(rt);
		return back_off(rt, 0, code, err) ? BF_RETRY_FAIL : BF_RETRY_AGAIN;
	case BF_TIKV_EPOCH_NOT_MATCH:
		if (!re->ncurrent || learn_regions(rt, r, re))
			refresh(rt);
		return back_off(rt, 0, code, err) ? BF_RETRY_FAIL : BF_RETRY_RESPLIT;
	case BF_TIKV_REGION_NOT_FOUND:
	case BF_TIKV_KEY_NOT_IN_REGION:
	case BF_TIKV_STORE_NOT_MATCH:
		refresh(rt);
		return back_off(rt, 0, code, err) ? BF_RETRY_FAIL : BF_RETRY_RESPLIT;
	case BF_TIKV_SERVER_BUSY:
		return back_off(rt, (int64_t)re->backoff_ms, code, err) ? BF_RETRY_FAIL : BF_RETRY_AGAIN;
	case BF_TIKV_STALE_COMMAND:
		return back_off(rt, 0, code, err) ? BF_RETRY_FAIL : BF_RETRY_REDO;
	case BF_TIKV_DISK_FULL:
		return disk_full(rt, r, re, code, err);
	case BF_TIKV_OTHER:
		bf_errf(err, BF_EIO, "%s", rt->last);
		return other(rt, BF_EIO, code, err);
	}
	return other(rt, BF_EIO, code, err);
}
