/*
 * Region jobs (ingest/region_job.h): one ingest's data cut by region and
 * written to every peer, then ingested on the leader, by a small pool of
 * threads sharing one queue. A job that learns its region split puts one
 * new job per new region on the queue and ends.
 * Depends on: ingest/tikv_client, ingest/cluster_retry, engine (scratch
 * reader), util.
 */
#include "ingest/region_job.h"
#include "bfill/fault.h"
#include "util/util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int bf_region_pieces(bf_retry *rt, const void *lo, size_t lolen, const void *hi, size_t hilen,
		     bf_region **regions, bf_range_piece **pieces, size_t *npieces, bf_err *err)
{
	for (;;) {
		size_t n = 0;
		int rc, code;

		*regions = NULL;
		*pieces = NULL;
		rc = bf_cluster_regions(rt->cluster, lo, lolen, hi, hilen, regions, &n, err);
		if (rc == 0 && !(*pieces = calloc(n ? n : 1, sizeof(**pieces))))
			rc = bf_errf(err, BF_ENOMEM, "region jobs: out of memory");
		if (rc == 0)
			rc = bf_range_split(lo, lolen, hi, hilen, *regions, n, *pieces, npieces, err);
		if (rc == 0)
			return 0;
		free(*regions);
		free(*pieces);
		*regions = NULL;
		*pieces = NULL;
		if (rc != BF_ESTATE && rc != BF_ENOTFOUND)
			return rc;
		/* A hole in the cache: refresh, wait and look again. */
		if (bf_retry_after(rt, NULL, BF_ESTATE, NULL, &code, err) == BF_RETRY_FAIL)
			return code;
	}
}

/* ---- jobs and their queue ---- */

typedef struct rjob {
	struct rjob *next;
	bf_region region;     /* as of when the job was made or last checked */
	uint8_t *lo, *hi;     /* owned; raw [lo, hi), hi NULL: unbounded */
	size_t lolen, hilen;
	bf_retry rt;
} rjob;

typedef struct runner {
	const bf_region_jobs_opts *o;
	pthread_mutex_t mu; /* guards everything below but stop */
	pthread_cond_t cv;
	rjob *head, *tail;
	size_t pending; /* queued or running */
	uint64_t seed;  /* for each job's backoff jitter */
	atomic_bool stop;
	int rc;
	bf_err err;
	bf_region_jobs_stats stats;
} runner;

/* A job failed, or the target was told to stop (see bf_retry_opts). */
static bool stopped(runner *r)
{
	return atomic_load(&r->stop) || bf_retry_cancel_set(r->o->retry.cancel);
}

static void job_free(rjob *j)
{
	if (!j)
		return;
	free(j->lo);
	free(j->hi);
	free(j);
}

/* Queues a job for piece p, with rt's budget (and jitter of its own). */
static int push_piece(runner *r, const bf_range_piece *p, const bf_retry *rt, bf_err *err)
{
	rjob *j = calloc(1, sizeof(*j));

	if (!j || !(j->lo = bf_memdup(p->lo, p->lolen)) || (p->hi && !(j->hi = bf_memdup(p->hi, p->hilen)))) {
		job_free(j);
		return bf_errf(err, BF_ENOMEM, "region jobs: out of memory");
	}
	j->region = *p->region;
	j->lolen = p->lolen;
	j->hilen = p->hilen;
	j->rt = *rt;
	pthread_mutex_lock(&r->mu);
	j->rt.bo.rng = bf_splitmix64(&r->seed);
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	r->pending++;
	r->stats.jobs++;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* Cuts what is left of j by the regions the cache has now, one new job
 * each. */
static int resplit(runner *r, rjob *j, bf_err *err)
{
	bf_region *regions = NULL;
	bf_range_piece *pieces = NULL;
	size_t n = 0;
	int rc = bf_region_pieces(&j->rt, j->lo, j->lolen, j->hi, j->hilen, &regions, &pieces, &n,
				  err);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = push_piece(r, &pieces[i], &j->rt, err);
	free(pieces);
	free(regions);
	return rc;
}

/* True when the cache still has j's region at the same epoch (so with
 * the same peers and range); j takes its leader from the cache. */
static bool still_current(runner *r, rjob *j)
{
	bf_region now;

	if (bf_cluster_region(r->o->cluster, j->region.id, &now, NULL))
		return false;
	if (now.conf_ver != j->region.conf_ver || now.version != j->region.version)
		return false;
	j->region.leader_store = now.leader_store;
	return true;
}

/* ---- one round of a job: write ---- */

/* What one Write round sent. */
typedef struct round {
	bf_tikv_metas *metas; /* the leader's, owned */
	uint8_t *next_lo;     /* where the next round starts; NULL: none */
	size_t next_lolen;
	uint64_t keys, bytes;
	bool empty;           /* nothing in the job's range */
} round;

static void round_clear(round *rd)
{
	bf_tikv_metas_free(rd->metas);
	free(rd->next_lo);
	memset(rd, 0, sizeof(*rd));
}

/* Sends the keys from it's position on, in batches, up to the round's caps. */
static int send_keys(runner *r, bf_store_iter *it, bf_tikv_writer *w, round *rd, bf_err *err)
{
	const bf_region_jobs_opts *o = r->o;
	bf_tikv_batch b;
	bf_rpc_buf msg;
	int rc = 0;

	bf_tikv_batch_init(&b);
	bf_tikv_batch_reset(&b);
	for (; rc == 0 && bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = bf_store_iter_key(it, &kl), *v = bf_store_iter_value(it, &vl);
		if (rd->keys >= o->write_max_keys || rd->bytes >= o->write_max_bytes) {
			if (!(rd->next_lo = bf_memdup(k, kl)))
				rc = bf_errf(err, BF_ENOMEM, "region jobs: out of memory");
			rd->next_lolen = kl;
			break;
		}
		if (bf_tikv_batch_add(&b, k, kl, v, vl)) {
			rc = bf_errf(err, BF_ENOMEM, "region jobs: out of memory");
			break;
		}
		rd->keys++;
		rd->bytes += kl + vl;
		if (b.kv_bytes < o->batch_bytes)
			continue;
		bf_fault_pause("cluster.write");
		if (stopped(r))
			rc = bf_errf(err, BF_ECANCELLED, "region jobs: stopped");
		else if (bf_tikv_batch_message(&b, o->commit_ts, &msg))
			rc = bf_errf(err, BF_ENOMEM, "region jobs: out of memory");
		else
			rc = bf_tikv_writer_send(w, &msg, err);
		bf_tikv_batch_reset(&b);
	}
	if (rc == 0)
		rc = bf_store_iter_status(it, err);
	if (rc == 0 && b.pairs) {
		if (bf_tikv_batch_message(&b, o->commit_ts, &msg))
			rc = bf_errf(err, BF_ENOMEM, "region jobs: out of memory");
		else
			rc = bf_tikv_writer_send(w, &msg, err);
	}
	bf_tikv_batch_free(&b);
	return rc;
}

/*
 * Writes the keys of j's range (from its start, up to the caps) to every
 * peer of its region. 0 with rd->metas, or rd->empty when there are no
 * keys; 0 with *re when a node answered a region error; negative when a
 * stream failed.
 */
static int write_round(runner *r, rjob *j, round *rd, bf_tikv_error *re, bf_err *err)
{
	bf_store_iter *it = NULL;
	bf_tikv_writer *w = NULL;
	uint8_t uuid[16], *last = NULL;
	size_t lastlen = 0, firstlen;
	const uint8_t *first;
	int rc;

	round_clear(rd);
	rc = bf_sst_files_iter(r->o->files, j->lo, j->lolen, j->hi, j->hilen, &it, err);
	if (rc)
		goto out;
	if (!bf_store_iter_valid(it)) {
		rd->empty = true;
		rc = bf_store_iter_status(it, err);
		goto out;
	}
	/* The meta names the whole range; a capped round sends part of it,
	 * as TiDB's does. */
	bf_store_iter_seek_last(it);
	first = bf_store_iter_key(it, &lastlen);
	if (!(last = bf_memdup(first, lastlen))) {
		rc = bf_errf(err, BF_ENOMEM, "region jobs: out of memory");
		goto out;
	}
	bf_store_iter_seek(it, j->lo, j->lolen);
	first = bf_store_iter_key(it, &firstlen);
	rc = bf_uuid_bytes(uuid, err);
	if (rc == 0)
		rc = bf_tikv_writer_open(r->o->client, &j->region, uuid, first, firstlen, last,
					 lastlen, &w, err);
	if (rc == 0)
		rc = send_keys(r, it, w, rd, err);
	if (rc == 0)
		rc = bf_tikv_writer_finish(w, &rd->metas, re, err);
out:
	bf_tikv_writer_destroy(w);
	bf_store_iter_destroy(it);
	free(last);
	return rc;
}

/* ---- a job from start to end ---- */

enum stage { STAGE_WRITE, STAGE_INGEST };

static void count_ingest(runner *r, const round *rd, bool retried)
{
	pthread_mutex_lock(&r->mu);
	if (retried)
		r->stats.retries++;
	if (rd) {
		r->stats.ingests++;
		r->stats.keys += rd->keys;
		r->stats.bytes += rd->bytes;
	}
	pthread_mutex_unlock(&r->mu);
}

static int run_job(runner *r, rjob *j, bf_err *err)
{
	enum stage stage = STAGE_WRITE;
	round rd = { 0 };
	int rc = 0, code = 0;

	for (;;) {
		bf_tikv_error re = { 0 };
		bf_retry_next next;

		if (stopped(r)) {
			rc = bf_errf(err, BF_ECANCELLED, "region jobs: stopped");
			break;
		}
		if (stage == STAGE_WRITE) {
			rc = write_round(r, j, &rd, &re, err);
			if (rc == 0 && re.kind == BF_TIKV_OK) {
				if (rd.empty)
					break;
				stage = STAGE_INGEST;
				continue;
			}
		} else {
			rc = bf_tikv_multi_ingest(r->o->client, &j->region, rd.metas, r->o->token, &re,
						  err);
			if (rc == 0 && re.kind == BF_TIKV_OK) {
				count_ingest(r, &rd, false);
				bf_retry_success(&j->rt);
				if (!rd.next_lo)
					break;
				/* More than one Write may carry: the next round. */
				free(j->lo);
				j->lo = rd.next_lo;
				j->lolen = rd.next_lolen;
				rd.next_lo = NULL;
				stage = STAGE_WRITE;
				continue;
			}
		}
		next = bf_retry_after(&j->rt, &j->region, rc, &re, &code, err);
		bf_tikv_error_free(&re);
		count_ingest(r, NULL, true);
		rc = 0;
		if (next == BF_RETRY_FAIL) {
			rc = code;
			break;
		}
		/* Again on the new leader: it has the files from the Write. */
		if (next != BF_RETRY_RESPLIT && still_current(r, j)) {
			if (next == BF_RETRY_REDO)
				stage = STAGE_WRITE;
			continue;
		}
		rc = resplit(r, j, err);
		break;
	}
	if (rc)
		bf_err_prefix(err, rc, "region %" PRIu64, j->region.id);
	round_clear(&rd);
	return rc;
}

static void *worker_main(void *arg)
{
	runner *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->head && r->pending > 0 && !atomic_load(&r->stop))
			pthread_cond_wait(&r->cv, &r->mu);
		if (!r->head || atomic_load(&r->stop))
			break;
		rjob *j = r->head;
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		pthread_mutex_unlock(&r->mu);

		bf_err err = { 0 };
		int rc = run_job(r, j, &err);
		job_free(j);

		pthread_mutex_lock(&r->mu);
		if (rc && !r->rc) {
			r->rc = rc;
			r->err = err;
			atomic_store(&r->stop, true);
		}
		r->pending--;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int bf_region_jobs_run(const bf_region_jobs_opts *o, const void *lo, size_t lolen,
		       const void *hi, size_t hilen, bf_region_jobs_stats *stats, bf_err *err)
{
	runner r = { .o = o, .seed = (uint64_t)bf_now_ns() };
	pthread_t threads[64];
	bf_region *regions = NULL;
	bf_range_piece *pieces = NULL;
	bf_retry rt;
	size_t n = 0;
	int started = 0, rc;

	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	bf_retry_init(&rt, o->cluster, &o->retry, bf_splitmix64(&r.seed));
	rc = bf_region_pieces(&rt, lo, lolen, hi, hilen, &regions, &pieces, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = push_piece(&r, &pieces[i], &rt, err);
	free(pieces);
	free(regions);
	int workers = o->workers < 1 ? 1 : o->workers > 64 ? 64 : o->workers;
	if ((size_t)workers > n)
		workers = n ? (int)n : 1;
	for (int i = 0; rc == 0 && i < workers; i++) {
		if (pthread_create(&threads[i], NULL, worker_main, &r)) {
			rc = bf_errf(err, BF_ENOMEM, "region jobs: cannot start a thread");
			break;
		}
		started++;
	}
	if (rc) {
		atomic_store(&r.stop, true);
		pthread_mutex_lock(&r.mu);
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mu);
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (rc == 0 && r.rc) {
		rc = r.rc;
		if (err)
			*err = r.err;
	}
	while (r.head) {
		rjob *j = r.head;
		r.head = j->next;
		job_free(j);
	}
	if (stats)
		*stats = r.stats;
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	return rc;
}
