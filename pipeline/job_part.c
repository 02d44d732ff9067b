/*
 * One subtask of a shared job, run by a worker (DESIGN §7a): where its
 * scan goes, and the import hooks that checkpoint the subtask in etcd, mark
 * it done and, for the last one, make the indexes public.
 *
 * The part's engines are its own and are not kept: a subtask resumes from
 * its imported checkpoint, wherever it runs next. Everything that writes a
 * subtask is fenced (bfill/subtask.h): a worker whose claim went to
 * another (its lease ran out) fails its import round with BF_EFENCED and
 * leaves the subtask.
 * Depends on: the subtask records, the catalog, the ingest backend.
 */
#include "pipeline/job_impl.h"
#include "bfill/codec.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void job_part_plan(job_run *r, run_plan *plan)
{
	const bf_subtask *s = &r->part->sub;

	snprintf(r->job_dir, sizeof(r->job_dir), "%s/job-%" PRId64 "-part-%d", r->job.cfg.sort_dir,
		 r->job.id, s->seq);
	/* Whatever a dead run of this part left here is behind the
	 * subtask's checkpoint or not imported: scanned again. */
	bf_rmtree(r->job_dir, NULL);
	memset(plan, 0, sizeof(*plan));
	memcpy(plan->start, s->next, s->nextlen);
	plan->start_len = s->nextlen;
	plan->end = s->hi;
	plan->end_len = s->hilen;
	plan->base_rows = s->rows;
	plan->first_gen = plan->gen = 1;
}

/* A part's engines are not resumed: nothing to record. */
int job_part_flushed(void *arg, const uint8_t *key, uint64_t rows, bf_err *err)
{
	(void)arg;
	(void)key;
	(void)rows;
	(void)err;
	return 0;
}

/* The subtask's checkpoint moves to key, never before the subtask's start:
 * the pipeline names the start of its first task by the table's lowest
 * record key when the part starts between records. */
static void advance(bf_subtask *s, const uint8_t *key, uint64_t rows)
{
	if (bf_key_cmp(key, BF_RECORD_KEY_LEN, s->next, s->nextlen) > 0 &&
	    bf_key_cmp(key, BF_RECORD_KEY_LEN, s->hi, s->hilen) < 0) {
		memcpy(s->next, key, BF_RECORD_KEY_LEN);
		s->nextlen = BF_RECORD_KEY_LEN;
	}
	s->rows = rows;
}

/*
 * The final import of a part, under the job's locks. When every other
 * subtask is done, the indexes turn public first (fenced by the locks),
 * then the subtask is marked done: a crash in between leaves a done job,
 * never every subtask done and the indexes hidden. Finishing is fenced by
 * the same locks, so no other subtask can finish while this one looks.
 */
static int finish_part(job_run *r, uint64_t rows, bf_err *err)
{
	job_part *p = r->part;
	bf_fence_token tokens[BF_MAX_JOB_INDEXES];
	int ntokens = bf_backend_tokens(r->backend, tokens, BF_MAX_JOB_INDEXES);
	bf_subtask *list = NULL;
	size_t n = 0;
	uint64_t total = rows;
	bool others_done = true, all_done;
	char why[64];
	int rc = bf_subtask_stopping(p->etcd, p->root, p->sub.job_id, why, sizeof(why), err);

	if (rc > 0)
		return bf_errf(err, BF_ECANCELLED, "job %" PRId64 ": a %s is under way", r->job.id, why);
	if (rc == 0)
		rc = bf_subtask_list(p->etcd, p->root, p->sub.job_id, &list, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (list[i].seq == p->sub.seq)
			continue;
		others_done = others_done && list[i].done;
		total += list[i].rows;
	}
	free(list);
	if (rc == 0 && others_done)
		rc = job_finish_locked(r, total, err);
	if (rc == 0) {
		p->sub.rows = rows;
		rc = bf_subtask_finish(p->etcd, p->root, &p->sub, p->worker, tokens, ntokens, &all_done,
				       err);
	}
	return rc;
}

int job_part_imported(void *arg, const uint8_t *key, uint64_t rows, bool final, bf_err *err)
{
	job_run *r = arg;
	job_part *p = r->part;
	int rc;

	pthread_mutex_lock(&r->mu);
	if (final) {
		rc = finish_part(r, rows, err);
	} else {
		bf_subtask next = p->sub;
		advance(&next, key, rows);
		rc = bf_subtask_checkpoint(p->etcd, p->root, &next, p->worker, err);
		if (rc == 0)
			p->sub = next;
	}
	pthread_mutex_unlock(&r->mu);
	/* A claim gone to another worker ends the part (BF_EFENCED); etcd out
	 * of reach makes the round start over. */
	return rc == BF_EFENCED ? rc : job_commit_result(rc, err);
}

void job_part_show_locked(job_run *r)
{
	job_part *p = r->part;

	pthread_mutex_lock(&p->mu);
	p->shown.live = true;
	p->shown.live_rows = r->job.rows_done;
	p->shown.live_rate = r->job.rate;
	snprintf(p->shown.live_phase, sizeof(p->shown.live_phase), "%s", r->job.phase);
	snprintf(p->shown.live_waiting, sizeof(p->shown.live_waiting), "%s", r->job.waiting);
	p->shown.live_ms = bf_wall_ms();
	pthread_mutex_unlock(&p->mu);
}
