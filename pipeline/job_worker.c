/*
 * A worker of shared jobs (include/bfill/worker.h): the claim loop, and a
 * watcher thread that keeps status truthful and stops a subtask the
 * worker may no longer hold.
 *
 * The watcher, every half second: publishes the running subtask's
 * progress under the worker's lease; stops the subtask when that lease is
 * no longer the one it was claimed under (etcd lost it: another worker may
 * have the subtask now), when a cancel or rollback is asked for, or when
 * the worker is interrupted; and hands the cluster-wide view of the job to
 * the progress callback.
 * Depends on: the job's parts (job_part.c), subtasks, presence, catalog.
 */
#include "bfill/worker.h"
#include "bfill/presence.h"
#include "pipeline/job_impl.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE_TTL_S 10
#define WATCH_MS 500
#define IDLE_MS 500
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 10000
#define RELEASE_TRIES 5
#define MAX_JOBS 64 /* looked at in one round of an any-job worker */

typedef struct worker {
	const bf_job_env *env;
	const bf_worker_opts *o;
	const char *root;
	char name[BF_SUBTASK_WORKER_MAX];
	bf_presence *presence;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool quit;                /* under mu */
	job_part *part;           /* running now, or NULL; under mu */
	bool looking;             /* the watcher uses part with mu dropped */
	bf_job last;              /* the job as last shown (the watcher's) */
	bool have_last;
	int64_t part_lease;       /* the lease it was claimed under; under mu */
	pthread_t watcher;
	int64_t outage_said;      /* the outage the log has told of */
	int backoff_ms;
} worker;

static void say(worker *w, const char *fmt, ...)
{
	char line[BF_ERR_MSG_MAX + 256];
	va_list ap;

	if (!w->o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->o->log(line, w->o->log_arg);
}

static void clock_text(int64_t wall_ms, char *out, size_t n)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, n, "%H:%M:%S", &tm);
}

static bool interrupted(const worker *w)
{
	return w->o->interrupt && *w->o->interrupt;
}

/* ---- the cluster-wide view ---- */

int bf_job_shared_view(const bf_job_env *env, int64_t job_id, bf_job *job, bf_subtask **subs,
		       size_t *n, bf_err *err)
{
	bf_subtask *s = NULL;
	size_t ns = 0, claimed = 0, moved = 0;
	int rc = bf_catalog_get_job(env->catalog, job_id, job, err);

	*subs = NULL;
	*n = 0;
	if (rc == 0 && env->etcd && env->cluster)
		rc = bf_subtask_list(env->etcd, bf_cluster_root(env->cluster), job_id, &s, &ns, err);
	if (rc || ns == 0) {
		free(s);
		return rc;
	}
	uint64_t rows = 0;
	double rate = 0;
	bool importing = false;
	const char *waiting = "";
	for (size_t i = 0; i < ns; i++) {
		uint64_t r = s[i].rows;
		if (s[i].worker[0]) {
			claimed++;
			if (s[i].live && s[i].live_rows > r)
				r = s[i].live_rows;
			if (s[i].live) {
				rate += s[i].live_rate;
				if (s[i].live_ms > job->update_ms)
					job->update_ms = s[i].live_ms;
				importing = importing || !strcmp(s[i].live_phase, "import");
				if (!*waiting && s[i].live_waiting[0])
					waiting = s[i].live_waiting;
			}
		}
		if (s[i].done || r > 0 || s[i].claims > 0)
			moved++;
		rows += r;
	}
	bool open = job->state == BF_JOB_QUEUEING || job->state == BF_JOB_RUNNING ||
		    job->state == BF_JOB_PAUSED || (job->state == BF_JOB_FAILED && !job->rolled_back);
	if (open) {
		job->rows_done = rows;
		job->rows_scanned = rows;
		job->rate = claimed ? rate : 0;
		job->importing = importing;
		if (claimed || (moved && job->state == BF_JOB_QUEUEING))
			job->state = BF_JOB_RUNNING;
		if (job->state == BF_JOB_RUNNING) {
			snprintf(job->phase, sizeof(job->phase), "%s", claimed ? "scan" : "waiting");
			if (importing)
				snprintf(job->phase, sizeof(job->phase), "import");
			snprintf(job->waiting, sizeof(job->waiting), "%s",
				 claimed ? waiting : "no worker holds a subtask");
		}
	}
	*subs = s;
	*n = ns;
	return 0;
}

/* ---- the watcher ---- */

static void publish(worker *w, job_part *p, int64_t lease)
{
	bf_subtask shown;
	bf_err err;

	pthread_mutex_lock(&p->mu);
	shown = p->shown;
	pthread_mutex_unlock(&p->mu);
	/* The pipeline shows its waits on its progress ticks; before its first
	 * (the scan that plans the part's tasks) and while a tick is stuck
	 * behind a store node that is down, the target's own word is the
	 * truth. */
	if (!shown.live_waiting[0] &&
	    job_target_waiting(w->env->target, shown.live_waiting, sizeof(shown.live_waiting)))
		shown.live = true;
	if (!shown.live)
		return;
	shown.job_id = p->sub.job_id;
	shown.seq = p->sub.seq;
	bf_subtask_progress(p->etcd, w->root, &shown, w->name, lease, &err);
}

/* One look: called with mu held, which it drops around etcd calls. */
static void watch_once(worker *w, unsigned tick)
{
	int64_t down = 0, lease = bf_presence_lease(w->presence, &down);
	job_part *p = w->part;
	char why[64], when[16];
	bf_err err;

	if (down && w->outage_said != down) {
		clock_text(down, when, sizeof(when));
		say(w, "etcd unreachable since %s; waiting for it", when);
		w->outage_said = down;
	} else if (!down && w->outage_said) {
		say(w, "etcd answers again");
		w->outage_said = 0;
	}
	/* The part's own pipeline sees an interrupt (a signal flag is read
	 * on the thread that gets the signal); the watcher sees the lease. */
	if (p && lease != w->part_lease && !atomic_exchange(&p->stop, 1))
		say(w, "job %" PRId64 " subtask %d: this worker's lease is gone; leaving it",
		    p->sub.job_id, p->sub.seq);
	/* The part's pipeline looks at the interrupt and at stop only between
	 * its steps; a target call that retries a store node that is down (for
	 * minutes) before the first of them — the scan that plans the part's
	 * tasks — sees only the target's cancel. Set on every look, since the
	 * part's backend clears it when it starts; the next part's clears it
	 * again. */
	if (p && (interrupted(w) || atomic_load(&p->stop)))
		bf_target_cancel(w->env->target, true);
	if (!p || atomic_load(&p->stop) || !lease)
		return;
	/* The part stays while mu is dropped: the claim loop takes it away
	 * only under mu, once no look is under way. */
	w->looking = true;
	pthread_mutex_unlock(&w->mu);
	publish(w, p, lease);
	int stopping = tick % 2 ? 0 : bf_subtask_stopping(p->etcd, w->root, p->sub.job_id, why,
							   sizeof(why), &err);
	pthread_mutex_lock(&w->mu);
	w->looking = false;
	pthread_cond_broadcast(&w->cv);
	if (stopping > 0 && !atomic_exchange(&p->stop, 1))
		say(w, "job %" PRId64 ": a %s is under way; leaving subtask %d", p->sub.job_id, why,
		    p->sub.seq);
}

static void show_progress(worker *w)
{
	bf_subtask *s = NULL;
	size_t n = 0;
	bf_job job;
	bf_err err;

	if (!w->o->progress || !w->o->job_id)
		return;
	int64_t down = 0;
	bf_presence_lease(w->presence, &down);
	if (bf_job_shared_view(w->env, w->o->job_id, &job, &s, &n, &err) == 0) {
		w->last = job;
		w->have_last = true;
	} else if (w->have_last && down) {
		/* What etcd can't show, this worker can. */
		char when[16];
		clock_text(down, when, sizeof(when));
		snprintf(w->last.waiting, sizeof(w->last.waiting), "etcd unreachable since %s", when);
	}
	if (w->have_last)
		w->o->progress(&w->last, w->o->progress_arg);
	free(s);
}

static void *watcher_main(void *arg)
{
	worker *w = arg;
	struct timespec ts;
	unsigned tick = 0;

	pthread_mutex_lock(&w->mu);
	while (!w->quit) {
		watch_once(w, tick++);
		pthread_mutex_unlock(&w->mu);
		show_progress(w);
		pthread_mutex_lock(&w->mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += WATCH_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!w->quit && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- the claim loop ---- */

/* Sleeps ms, or less when interrupted. */
static void pause_ms(worker *w, int ms)
{
	for (int slept = 0; slept < ms && !interrupted(w); slept += 100)
		bf_sleep_ms(100);
}

static void back_off(worker *w)
{
	w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (w->backoff_ms > BACKOFF_MAX_MS)
		w->backoff_ms = BACKOFF_MAX_MS;
	/* Full jitter: workers that failed together come back apart. */
	pause_ms(w, BACKOFF_MIN_MS / 2 + rand() % w->backoff_ms);
}

/* Claims a subtask of job under lease into part: 0, BF_ENOTFOUND (none to
 * claim now), or an etcd error. */
static int claim_in(worker *w, const bf_job *job, int64_t lease, job_part *part, bf_err *err)
{
	bf_subtask *s = NULL;
	size_t n = 0;
	int rc = bf_subtask_stopping(w->env->etcd, w->root, job->id, NULL, 0, err);

	if (rc > 0)
		return bf_errf(err, BF_ENOTFOUND, "job %" PRId64 " is being stopped", job->id);
	if (rc == 0)
		rc = bf_subtask_list(w->env->etcd, w->root, job->id, &s, &n, err);
	free(s);
	/* Submitted, but its subtasks were not written (etcd failed in
	 * between): written now, all or none. */
	if (rc == 0 && n == 0)
		rc = job_submit_missing(w->env, job, err);
	if (rc == 0)
		rc = bf_subtask_claim(w->env->etcd, w->root, job->id, w->name, lease, &part->sub, err);
	return rc;
}

typedef struct job_ids {
	int64_t id[MAX_JOBS];
	int n;
} job_ids;

static int collect_open(const bf_job *job, void *arg)
{
	job_ids *ids = arg;
	if ((job->state == BF_JOB_QUEUEING || job->state == BF_JOB_RUNNING) && ids->n < MAX_JOBS)
		ids->id[ids->n++] = job->id;
	return 0;
}

/* A subtask to run: of opts->job_id, or of the first open job with one. */
static int claim_next(worker *w, int64_t lease, job_part *part, bf_err *err)
{
	job_ids ids = { .n = 0 };
	bf_job job;
	int rc = 0;

	if (w->o->job_id)
		ids.id[ids.n++] = w->o->job_id;
	else
		rc = bf_catalog_foreach_job(w->env->catalog, collect_open, NULL, &ids, err);
	for (int i = 0; rc == 0 && i < ids.n; i++) {
		rc = bf_catalog_get_job(w->env->catalog, ids.id[i], &job, err);
		if (rc == 0)
			rc = claim_in(w, &job, lease, part, err);
		if (rc != BF_ENOTFOUND)
			return rc;
		rc = 0;
	}
	return rc ? rc : bf_errf(err, BF_ENOTFOUND, "no subtask to claim");
}

/* Whether any subtask of job_id is claimed (by a worker other than this
 * one, which has given its own back); an error counts as yes. */
static bool others_work(worker *w, int64_t job_id)
{
	bf_subtask *s = NULL;
	size_t n = 0;
	bf_err err;
	bool any = bf_subtask_list(w->env->etcd, w->root, job_id, &s, &n, &err) != 0;

	for (size_t i = 0; i < n; i++)
		any = any || s[i].worker[0];
	free(s);
	return any;
}

/* add-index's own worker, stopping: the job is paused (or failed, with
 * why) unless another worker goes on with it. */
static void stop_job(worker *w, bf_job_state state, const bf_err *why)
{
	bf_job job;
	bf_err err;

	if (others_work(w, w->o->job_id) ||
	    bf_catalog_get_job(w->env->catalog, w->o->job_id, &job, &err))
		return;
	if (job.state == BF_JOB_DONE || job.state == BF_JOB_CANCELLED || job.rolled_back)
		return;
	job.state = state;
	snprintf(job.phase, sizeof(job.phase), "%s", bf_job_state_name(state));
	snprintf(job.last_error, sizeof(job.last_error), "%s", bf_err_text(why));
	job.waiting[0] = '\0';
	job.end_ms = bf_wall_ms();
	job.update_ms = job.end_ms;
	bf_catalog_put_job(w->env->catalog, &job, &err);
}

static void sum_stats(bf_worker_result *res, const bf_add_index_result *ar)
{
	bf_backend_stats *b = &res->backend;
	const bf_backend_stats *a = &ar->backend;

	res->rows += ar->rows;
	b->runs += a->runs;
	b->imports += a->imports;
	b->imported_keys += a->imported_keys;
	b->imported_bytes += a->imported_bytes;
	b->sst_files += a->sst_files;
	b->lock_acquires += a->lock_acquires;
	b->lock_wait_ms += a->lock_wait_ms;
	if (a->lock_wait_max_ms > b->lock_wait_max_ms)
		b->lock_wait_max_ms = a->lock_wait_max_ms;
	b->lock_release_ms += a->lock_release_ms;
	b->fence_losses += a->fence_losses;
}

/* Runs a claimed subtask; the watcher sees it while it runs. */
static int run_part(worker *w, job_part *part, int64_t lease, bf_worker_result *res, bf_err *err)
{
	const bf_worker_opts *o = w->o;
	bf_add_index_opts ao = {
		.job_id = part->sub.job_id, .resume = true, .mem = o->mem,
		.import_every = o->import_every, .etcd = o->etcd, .etcd_security = o->etcd_security,
		/* This machine's: the job names the submitter's. */
		.workers = o->threads ? o->threads
				      : (bf_ncpu() < BF_JOB_WORKERS_MAX ? bf_ncpu() : BF_JOB_WORKERS_MAX),
		.sort_dir = o->sort_dir ? o->sort_dir : w->env->default_sort_dir,
		.run_compression = -1, .target_compression = -1, .interrupt = o->interrupt,
	};
	bf_add_index_result ar;
	int rc;

	pthread_mutex_lock(&w->mu);
	w->part = part;
	w->part_lease = lease;
	pthread_mutex_unlock(&w->mu);
	rc = job_part_run(w->env, &ao, part, &ar, err);
	pthread_mutex_lock(&w->mu);
	while (w->looking)
		pthread_cond_wait(&w->cv, &w->mu);
	w->part = NULL;
	pthread_mutex_unlock(&w->mu);
	sum_stats(res, &ar);
	return rc;
}

/* After a part: 1 to go on, 0 or an error to return. */
static int after_part(worker *w, job_part *part, int rc, bf_worker_result *res, bf_err *err)
{
	const bf_subtask *s = &part->sub;
	bf_err e;

	if (rc == 0) {
		w->backoff_ms = 0;
		res->subtasks++;
		say(w, "job %" PRId64 " subtask %d done (%" PRIu64 " rows)", s->job_id, s->seq, s->rows);
		return 1;
	}
	if (rc == BF_EDUP) {
		say(w, "job %" PRId64 ": %s", s->job_id, bf_err_text(err));
		return w->o->until_done ? rc : 1;
	}
	/* Anything else leaves the subtask where its checkpoint is, for
	 * whoever claims it next (this worker too: a claim that could not be
	 * given back, etcd electing a leader, is still its own to take). */
	for (int tries = 0; tries < RELEASE_TRIES &&
			    bf_subtask_release(w->env->etcd, w->root, s, w->name, &e) != 0; tries++)
		pause_ms(w, IDLE_MS);
	if (interrupted(w)) {
		say(w, "job %" PRId64 " subtask %d: checkpointed at %" PRIu64 " rows, given back",
		    s->job_id, s->seq, s->rows);
		if (w->o->until_done)
			stop_job(w, BF_JOB_PAUSED, err);
		return BF_ECANCELLED;
	}
	if (rc == BF_ECANCELLED || rc == BF_EFENCED || atomic_load(&part->stop)) {
		say(w, "job %" PRId64 " subtask %d: left (%s)", s->job_id, s->seq, bf_err_text(err));
		return 1;
	}
	say(w, "job %" PRId64 " subtask %d: %s; trying again", s->job_id, s->seq, bf_err_text(err));
	/* add-index on its own gives up as a single-process run would: the
	 * job is failed, resumable. */
	if (w->o->until_done && !others_work(w, w->o->job_id)) {
		stop_job(w, BF_JOB_FAILED, err);
		return rc;
	}
	back_off(w);
	return 1;
}

/* With until_done: 0 when the job is done, an error when it is over
 * otherwise, 1 while it goes on. */
static int job_over(worker *w, bf_worker_result *res, bf_err *err)
{
	int rc = bf_catalog_get_job(w->env->catalog, w->o->job_id, &res->job, err);

	if (rc)
		return rc == BF_ENOTFOUND ? rc : 1; /* etcd out of reach: wait */
	switch (res->job.state) {
	case BF_JOB_DONE:
		return 0;
	case BF_JOB_CANCELLED:
		return bf_errf(err, BF_ECANCELLED, "job %" PRId64 " was cancelled", res->job.id);
	default:
		if (res->job.rolled_back)
			return bf_errf(err, BF_EDUP, "job %" PRId64 " failed and was rolled back: %s",
				       res->job.id, res->job.last_error);
		return 1;
	}
}

/* add-index --resume of a paused or failed job: open to every worker
 * again. */
static void reopen(worker *w)
{
	bf_job job;
	bf_err err;

	if (bf_catalog_get_job(w->env->catalog, w->o->job_id, &job, &err) ||
	    !(job.state == BF_JOB_PAUSED || (job.state == BF_JOB_FAILED && !job.rolled_back)))
		return;
	job.state = BF_JOB_QUEUEING;
	snprintf(job.phase, sizeof(job.phase), "queued");
	job.last_error[0] = '\0';
	job.end_ms = 0;
	job.update_ms = bf_wall_ms();
	bf_catalog_put_job(w->env->catalog, &job, &err);
}

static int loop(worker *w, bf_worker_result *res, bf_err *err)
{
	if (w->o->until_done)
		reopen(w);
	for (;;) {
		job_part part = { .etcd = w->env->etcd, .root = w->root, .worker = w->name };
		int rc;

		if (interrupted(w))
			return bf_errf(err, BF_ECANCELLED, "worker %s interrupted", w->name);
		if (w->o->until_done && (rc = job_over(w, res, err)) != 1)
			return rc;
		int64_t lease = bf_presence_lease(w->presence, NULL);
		if (!lease) {
			pause_ms(w, IDLE_MS); /* the watcher tells of the outage */
			continue;
		}
		rc = claim_next(w, lease, &part, err);
		if (rc == BF_ENOTFOUND) {
			pause_ms(w, IDLE_MS);
			continue;
		}
		if (rc) {
			say(w, "%s; trying again", bf_err_text(err));
			back_off(w);
			continue;
		}
		say(w, "claimed job %" PRId64 " subtask %d (from %" PRIu64 " rows done)",
		    part.sub.job_id, part.sub.seq, part.sub.rows);
		pthread_mutex_init(&part.mu, NULL);
		rc = run_part(w, &part, lease, res, err);
		rc = after_part(w, &part, rc, res, err);
		pthread_mutex_destroy(&part.mu);
		if (rc != 1)
			return rc;
	}
}

int bf_worker_run(const bf_job_env *env, const bf_worker_opts *opts, bf_worker_result *res,
		  bf_err *err)
{
	worker w = { .env = env, .o = opts };
	char key[600], host[64] = "", who[128];
	int64_t t0 = bf_now_ms();
	int rc;

	memset(res, 0, sizeof(*res));
	if (!env->etcd || !env->cluster)
		return bf_errf(err, BF_EINVAL, "workers take subtasks of a cluster's jobs: give --etcd and --cluster");
	w.root = bf_cluster_root(env->cluster);
	gethostname(host, sizeof(host) - 1);
	if (opts->name && *opts->name)
		snprintf(w.name, sizeof(w.name), "%s", opts->name);
	else
		snprintf(w.name, sizeof(w.name), "%s:%ld", host, (long)getpid());
	if (strchr(w.name, '/'))
		return bf_errf(err, BF_EINVAL, "a worker's name has no '/': '%s'", w.name);
	snprintf(key, sizeof(key), "%sworker/%s", w.root, w.name);
	snprintf(who, sizeof(who), "%s pid %ld", host, (long)getpid());
	srand((unsigned)(getpid() ^ t0));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the watcher's deadlines */
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = bf_presence_begin_key(env->etcd, key, who,
				   opts->lease_ttl_s > 0 ? opts->lease_ttl_s : LEASE_TTL_S, &w.presence,
				   err);
	if (rc == 0 && pthread_create(&w.watcher, NULL, watcher_main, &w))
		rc = bf_errf(err, BF_ENOMEM, "cannot start the worker's watcher thread");
	else if (rc == 0) {
		rc = loop(&w, res, err);
		pthread_mutex_lock(&w.mu);
		w.quit = true;
		pthread_cond_broadcast(&w.cv);
		pthread_mutex_unlock(&w.mu);
		pthread_join(w.watcher, NULL);
		/* The record as the job ended (or as this worker left it). */
		bf_err e;
		if (opts->job_id)
			bf_catalog_get_job(env->catalog, opts->job_id, &res->job, &e);
	}
	bf_presence_end(w.presence);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	res->seconds = (double)(bf_now_ms() - t0) / 1e3;
	return rc;
}
