/*
 * The add-index pipeline: task source, table scan readers, index ingest
 * writers and the result sink, plus an importer thread so that waiting for
 * the import lock never stalls scanning. See pipeline/pipe.h.
 * Depends on codec, engine (store), ingest (backend) and util.
 */
#include "pipeline/pipe.h"
#include "bfill/codec.h"
#include "bfill/fault.h"
#include "pipeline/queue.h"
#include "util/util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_ROWS 1024
#define BATCH_ARENA (256u << 10)
#define TASK_BYTES (32ull << 20) /* aim for tasks of about this much table data */
#define TASKS_PER_READER 8
#define MAX_TASKS 65536
#define TICK_MS 100
#define CHECKPOINT_MS 1000
#define SCAN_READAHEAD (2u << 20)
#define HANDLE_SUFFIX 8

typedef struct batch {
	struct cds_wfcq_node node;
	size_t task;
	uint32_t seq;   /* position within its task */
	bool last;      /* the task's final batch (may hold no rows) */
	uint32_t nrows;
	int writer;
	uint64_t tag;   /* writer flushes needed before these rows are durable */
	int64_t handles[BATCH_ROWS];
	bf_datum *vals; /* BATCH_ROWS x nneed */
	uint8_t *arena;
	size_t used, cap;
} batch;

typedef struct task {
	/* Record keys, or a part's bounds (region boundaries, any length). */
	uint8_t start[BF_SCAN_BOUND_MAX];
	uint8_t end[BF_SCAN_BOUND_MAX];
	size_t startlen, endlen;
	uint32_t seen;
	int64_t total;  /* batches, known once the last one is seen; -1 before */
	uint64_t rows;
	uint64_t *tags; /* per writer */
} task;

typedef enum import_state { IMPORT_IDLE, IMPORT_REQUESTED, IMPORT_RUNNING } import_state;

typedef struct pipe {
	const bf_pipe_opts *o;
	int nneed;
	int need[BF_MAX_COLUMNS];  /* table column positions read by the scan */
	int colmap[BF_BACKEND_MAX_INDEXES][BF_MAX_INDEX_COLUMNS]; /* into need[] */
	task *tasks;
	size_t ntasks;
	uint64_t table_bytes;      /* the store's estimate of the scanned range */
	atomic_size_t next_task;
	/* Batches go pool -> readers -> full -> writers -> pool. The sink
	 * queue holds no batch, only the kick below; the last writer closes
	 * it. Either ends the sink's timed wait at once. */
	bf_queue pool, full, sink;
	struct cds_wfcq_node kick; /* in the sink queue while kick_pending */
	atomic_bool kick_pending;
	batch *batches;
	int nbatches;
	atomic_int stop;
	pthread_mutex_t err_mu;
	int rc;
	bf_err err;
	atomic_int readers_alive, writers_alive;
	bf_backend_writer **writers;
	bf_target_snap *snap;

	/* What the writers handed in, per task. Writers recycle their
	 * batches themselves: a sink held up by a checkpoint's write must
	 * not leave the readers without batches. */
	pthread_mutex_t task_mu;
	uint64_t rows;             /* rows of every batch handed in */

	/* watermarks, sink-thread only */
	size_t written;            /* tasks [0, written) fully sorted */
	size_t durable;            /* tasks [0, durable) durable in engines */
	uint64_t written_rows, durable_rows;

	/* importer */
	pthread_t importer;
	pthread_mutex_t imp_mu;
	pthread_cond_t imp_cv;
	import_state imp_state;
	bool imp_quit, imp_final;
	size_t imp_mark;           /* import covers tasks [0, imp_mark) */
	uint64_t imp_rows;
	int imp_rc;
	bf_err imp_err;
} pipe;

void bf_pipe_record_range(int64_t table_id, uint8_t lo[BF_RECORD_PREFIX_LEN],
			  uint8_t hi[BF_RECORD_PREFIX_LEN])
{
	bf_codec_record_prefix(lo, table_id);
	bf_codec_record_prefix(hi, table_id);
	hi[BF_RECORD_PREFIX_LEN - 1]++; /* "_r" -> "_s" */
}

/* The checkpoint key that means "everything done": the "_s" prefix padded
 * to record-key length sorts after every record key of the table. */
static void end_key(int64_t table_id, uint8_t out[BF_RECORD_KEY_LEN])
{
	uint8_t lo[BF_RECORD_PREFIX_LEN];
	bf_pipe_record_range(table_id, lo, out);
	memset(out + BF_RECORD_PREFIX_LEN, 0, BF_RECORD_KEY_LEN - BF_RECORD_PREFIX_LEN);
}

static void mark_key(const pipe *p, size_t mark, uint8_t out[BF_RECORD_KEY_LEN])
{
	if (mark < p->ntasks && p->tasks[mark].startlen == BF_RECORD_KEY_LEN)
		memcpy(out, p->tasks[mark].start, BF_RECORD_KEY_LEN);
	else if (mark < p->ntasks)
		bf_codec_record_key(out, p->o->table->id, INT64_MIN);
	else
		end_key(p->o->table->id, out);
}

static void fail(pipe *p, int rc, const bf_err *err)
{
	pthread_mutex_lock(&p->err_mu);
	if (p->rc == 0 || p->rc == BF_ECANCELLED) {
		if (p->rc == 0 || rc != BF_ECANCELLED) {
			p->rc = rc;
			if (err && err->code)
				p->err = *err;
			else
				bf_errf(&p->err, rc, "%s", bf_strerror(rc));
		}
	}
	pthread_mutex_unlock(&p->err_mu);
	atomic_store(&p->stop, 1);
	bf_queue_wake(&p->pool);
	bf_queue_wake(&p->full);
	bf_queue_wake(&p->sink);
	bf_backend_cancel(p->o->backend);
	pthread_mutex_lock(&p->imp_mu);
	pthread_cond_broadcast(&p->imp_cv);
	pthread_mutex_unlock(&p->imp_mu);
}

/* ---- task source ---- */

static int first_last_handle(pipe *p, const uint8_t *lo, size_t lolen, const uint8_t *hi,
			     size_t hilen, int64_t *first, int64_t *last, bool *empty, bf_err *err)
{
	bf_target_iter *it = NULL;
	bf_scan_opts so = { .snap = p->snap };
	size_t kl;
	int rc = bf_target_scan(p->o->target, lo, lolen, hi, hilen, &so, &it, err);

	*empty = true;
	if (rc)
		return rc;
	if (bf_target_iter_valid(it)) {
		const uint8_t *k = bf_target_iter_key(it, &kl);
		rc = bf_codec_decode_record_key(k, kl, NULL, first);
		if (rc == 0) {
			bf_target_iter_seek_last(it);
			k = bf_target_iter_key(it, &kl);
			rc = bf_codec_decode_record_key(k, kl, NULL, last);
		}
		if (rc)
			rc = bf_errf(err, rc, "malformed record key in table '%s'", p->o->table->name);
		else
			*empty = false;
	}
	if (rc == 0)
		rc = bf_target_iter_status(it, err);
	bf_target_iter_destroy(it);
	return rc;
}

/*
 * Splits [start, end) (by default the whole table) into tasks of about TASK_BYTES of table
 * data (from RocksDB's size estimate), at least TASKS_PER_READER per
 * reader, by dividing the handle range evenly.
 */
static int make_tasks(pipe *p, bf_err *err)
{
	const bf_pipe_opts *o = p->o;
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN];
	const uint8_t *start = lo, *end = hi;
	size_t startlen = sizeof(lo), endlen = sizeof(hi);
	int64_t first, last;
	uint64_t bytes = 0;
	bool empty;
	int rc;

	bf_pipe_record_range(o->table->id, lo, hi);
	if (o->start_key) {
		start = o->start_key;
		startlen = o->start_len ? o->start_len : BF_RECORD_KEY_LEN;
	}
	if (o->end_key) {
		end = o->end_key;
		endlen = o->end_len;
	}
	if (endlen > sizeof(p->tasks[0].end) || startlen > sizeof(p->tasks[0].start))
		return bf_errf(err, BF_EINVAL, "a scan bound is longer than %zu bytes",
			       sizeof(p->tasks[0].end));
	rc = first_last_handle(p, start, startlen, end, endlen, &first, &last, &empty, err);
	if (rc)
		return rc;
	size_t n = 1;
	if (!empty) {
		bf_target_approx_size(o->target, start, startlen, end, endlen, &bytes, NULL);
		p->table_bytes = bytes;
		n = (size_t)(bytes / TASK_BYTES) + 1;
		if (n < (size_t)o->readers * TASKS_PER_READER)
			n = (size_t)o->readers * TASKS_PER_READER;
		if (n > MAX_TASKS)
			n = MAX_TASKS;
		uint64_t span = (uint64_t)last - (uint64_t)first + 1;
		if (span && n > span)
			n = (size_t)span;
	}
	p->tasks = calloc(n, sizeof(task));
	if (!p->tasks)
		return bf_errf(err, BF_ENOMEM, "out of memory for %zu tasks", n);
	p->ntasks = n;
	for (size_t i = 0; i < n; i++) {
		task *t = &p->tasks[i];
		t->total = -1;
		t->tags = calloc((size_t)o->writers, sizeof(uint64_t));
		if (!t->tags)
			return bf_errf(err, BF_ENOMEM, "out of memory for tasks");
		if (i == 0) {
			memcpy(t->start, start, startlen);
			t->startlen = startlen;
		} else {
			/* unsigned arithmetic: the handle span may exceed INT64_MAX */
			uint64_t span = (uint64_t)last - (uint64_t)first;
			unsigned __int128 off = (unsigned __int128)span * i / n;
			bf_codec_record_key(t->start, o->table->id, (int64_t)((uint64_t)first + (uint64_t)off));
			t->startlen = BF_RECORD_KEY_LEN;
			memcpy(p->tasks[i - 1].end, t->start, BF_RECORD_KEY_LEN);
			p->tasks[i - 1].endlen = BF_RECORD_KEY_LEN;
		}
	}
	memcpy(p->tasks[n - 1].end, end, endlen);
	p->tasks[n - 1].endlen = endlen;
	return 0;
}

/* ---- readers ---- */

static batch *get_batch(pipe *p, size_t task, uint32_t seq)
{
	struct cds_wfcq_node *n = bf_queue_pop(&p->pool, &p->stop, -1, NULL);
	batch *b;
	if (!n)
		return NULL;
	b = caa_container_of(n, batch, node);
	b->task = task;
	b->seq = seq;
	b->last = false;
	b->nrows = 0;
	b->used = 0;
	return b;
}

/* Only called on a batch that holds no rows yet, so no stashed datum can
 * point into the arena being moved. */
static int grow_arena(batch *b, size_t need, bf_err *err)
{
	size_t cap = b->cap * 2;
	while (cap < need)
		cap *= 2;
	uint8_t *a = realloc(b->arena, cap);
	if (!a)
		return bf_errf(err, BF_ENOMEM, "out of memory for a row batch");
	b->arena = a;
	b->cap = cap;
	return 0;
}

static int decode_row(pipe *p, batch *b, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl, bf_err *err)
{
	const bf_table *t = p->o->table;
	bf_datum *row = &b->vals[(size_t)b->nrows * (size_t)p->nneed];
	int64_t tid, handle;
	bf_row_view rv;
	int rc = bf_codec_decode_record_key(k, kl, &tid, &handle);

	if (rc || tid != t->id)
		return bf_errf(err, BF_ECORRUPT, "table '%s': malformed record key of %zu bytes",
			       t->name, kl);
	rc = bf_codec_row_view(&rv, v, vl);
	if (rc)
		return bf_errf(err, rc, "table '%s': row with handle %" PRId64 " has a malformed value",
			       t->name, handle);
	for (int c = 0; c < p->nneed; c++) {
		rc = bf_table_decode_column(t, p->need[c], &rv, handle, &row[c]);
		if (rc)
			return bf_errf(err, rc, "table '%s': row with handle %" PRId64
				       " has a malformed value for column '%s'",
				       t->name, handle, t->cols[p->need[c]].name);
	}
	b->handles[b->nrows] = handle;
	return 0;
}

/* Where a datum points into the row it was decoded from (strings and
 * decimals), and how many bytes; NULL for one that holds its value. */
static const uint8_t **borrowed(bf_datum *d, size_t *len)
{
	switch (d->kind) {
	case BF_DATUM_BYTES: *len = d->v.b.len; return &d->v.b.ptr;
	case BF_DATUM_DECIMAL: *len = d->v.dec.len; return &d->v.dec.ptr;
	default: *len = 0; return NULL;
	}
}

static size_t row_bytes(const pipe *p, const batch *b)
{
	bf_datum *row = &b->vals[(size_t)b->nrows * (size_t)p->nneed];
	size_t need = 0, len;
	for (int c = 0; c < p->nneed; c++)
		if (borrowed(&row[c], &len))
			need += len;
	return need;
}

/* Copies the row's string and decimal datums into the batch arena (the
 * iterator's memory is gone after the next step). Returns false when the
 * arena is full. */
static bool stash_bytes(pipe *p, batch *b)
{
	bf_datum *row = &b->vals[(size_t)b->nrows * (size_t)p->nneed];
	const uint8_t **ptr;
	size_t len;

	if (b->used + row_bytes(p, b) > b->cap)
		return false;
	for (int c = 0; c < p->nneed; c++) {
		if (!(ptr = borrowed(&row[c], &len)))
			continue;
		memcpy(b->arena + b->used, *ptr, len);
		*ptr = b->arena + b->used;
		b->used += len;
	}
	return true;
}

/* Decodes one row into *bp, sending the batch on and starting a new one
 * whenever it is full. */
static int add_row(pipe *p, batch **bp, size_t ti, uint32_t *seq, const uint8_t *k, size_t kl,
		   const uint8_t *v, size_t vl, bf_err *err)
{
	batch *b = *bp;
	int rc = decode_row(p, b, k, kl, v, vl, err);
	if (rc)
		return rc;
	if (!stash_bytes(p, b)) {
		if (b->nrows > 0) {
			bf_queue_push(&p->full, &b->node);
			b = *bp = get_batch(p, ti, ++*seq);
			if (!b)
				return BF_ECANCELLED;
			rc = decode_row(p, b, k, kl, v, vl, err);
			if (rc)
				return rc;
		}
		if (!stash_bytes(p, b)) {
			/* A single row larger than the arena. */
			rc = grow_arena(b, row_bytes(p, b), err);
			if (rc)
				return rc;
			stash_bytes(p, b);
		}
	}
	if (++b->nrows == BATCH_ROWS) {
		bf_queue_push(&p->full, &b->node);
		*bp = get_batch(p, ti, ++*seq);
		if (!*bp)
			return BF_ECANCELLED;
	}
	return 0;
}

static int scan_task(pipe *p, size_t ti, bf_err *err)
{
	task *t = &p->tasks[ti];
	bf_scan_opts so = { .snap = p->snap, .readahead = SCAN_READAHEAD, .fill_cache = false,
			    .forward_only = true };
	bf_target_iter *it = NULL;
	uint32_t seq = 0;
	batch *b = NULL;
	uint64_t n = 0;
	int rc;

	rc = bf_target_scan(p->o->target, t->start, t->startlen, t->end, t->endlen, &so, &it, err);
	if (rc)
		goto out;
	b = get_batch(p, ti, seq);
	if (!b) {
		rc = BF_ECANCELLED;
		goto out;
	}
	for (; bf_target_iter_valid(it); bf_target_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = bf_target_iter_key(it, &kl), *v = bf_target_iter_value(it, &vl);
		if ((++n & 255) == 0) {
			if (atomic_load(&p->stop)) {
				rc = BF_ECANCELLED;
				goto out;
			}
			/* Tests slow the scan down to let imports interleave with it. */
			bf_fault_pause("scan.slow");
		}
		if (bf_fault_hit("scan.read")) {
			rc = bf_errf(err, BF_EFAULT, "scan: injected read failure");
			goto out;
		}
		rc = add_row(p, &b, ti, &seq, k, kl, v, vl, err);
		if (rc)
			goto out;
	}
	rc = bf_target_iter_status(it, err);
	if (rc)
		goto out;
	b->last = true;
	bf_queue_push(&p->full, &b->node);
	b = NULL;
out:
	if (b)
		bf_queue_push(&p->pool, &b->node);
	bf_target_iter_destroy(it);
	return rc;
}

static void *reader_main(void *arg)
{
	pipe *p = arg;
	bf_err err = { 0 };
	for (;;) {
		size_t ti = atomic_fetch_add(&p->next_task, 1);
		if (ti >= p->ntasks || atomic_load(&p->stop))
			break;
		int rc = scan_task(p, ti, &err);
		if (rc) {
			fail(p, rc, &err);
			break;
		}
	}
	if (atomic_fetch_sub(&p->readers_alive, 1) == 1)
		bf_queue_close(&p->full);
	return NULL;
}

/* ---- writers ---- */

typedef struct writer_arg {
	pipe *p;
	int id;
	pthread_t thread;
} writer_arg;

static int encode_batch(pipe *p, bf_backend_writer *w, batch *b, uint8_t **kbuf, size_t *kcap,
			bf_err *err)
{
	const bf_pipe_opts *o = p->o;
	bf_datum cols[BF_MAX_INDEX_COLUMNS];
	uint8_t val[BF_INDEX_VALUE_MAX];

	for (uint32_t r = 0; r < b->nrows; r++) {
		const bf_datum *row = &b->vals[(size_t)r * (size_t)p->nneed];
		int64_t handle = b->handles[r];
		for (int ix = 0; ix < o->nindexes; ix++) {
			const bf_pipe_index *x = &o->indexes[ix];
			for (int c = 0; c < x->ncols; c++)
				cols[c] = row[p->colmap[ix][c]];
			if (x->has_prefix)
				bf_index_cut_prefix(x->prefix, cols, x->ncols);
			bool with = bf_codec_index_needs_handle(x->unique, cols, x->ncols);
			size_t kl = bf_codec_index_key_len(cols, x->ncols, with) + (x->unique ? HANDLE_SUFFIX : 0);
			if (kl > *kcap) {
				uint8_t *nb = realloc(*kbuf, kl * 2);
				if (!nb)
					return bf_errf(err, BF_ENOMEM, "out of memory for an index key");
				*kbuf = nb;
				*kcap = kl * 2;
			}
			size_t n = bf_codec_index_key(*kbuf, o->table->id, x->id, cols, x->ncols, with, handle);
			/* Unique engines keep equal values apart by handle; the import
			 * drops the suffix and reports equal neighbours. */
			if (x->unique) {
				bf_codec_put_int(*kbuf + n, handle);
				n += HANDLE_SUFFIX;
			}
			size_t vl = bf_codec_index_value(val, with, handle);
			int rc = bf_backend_writer_put(w, ix, *kbuf, n, val, vl, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Counts a sorted batch into its task and puts it back in the pool. */
static void hand_in(pipe *p, batch *b)
{
	task *t = &p->tasks[b->task];
	pthread_mutex_lock(&p->task_mu);
	t->seen++;
	t->rows += b->nrows;
	p->rows += b->nrows;
	if (b->last)
		t->total = (int64_t)b->seq + 1;
	if (b->nrows && b->tag > t->tags[b->writer])
		t->tags[b->writer] = b->tag;
	pthread_mutex_unlock(&p->task_mu);
	bf_queue_push(&p->pool, &b->node);
	/* An import is due: the sink starts it now, not at its next tick. */
	if (p->o->import_every && bf_backend_pending_bytes(p->o->backend) >= p->o->import_every &&
	    !atomic_exchange(&p->kick_pending, true))
		bf_queue_push(&p->sink, &p->kick);
}

static void *writer_main(void *arg)
{
	writer_arg *wa = arg;
	pipe *p = wa->p;
	bf_backend_writer *w = p->writers[wa->id];
	uint8_t *kbuf = NULL;
	size_t kcap = 0;
	bf_err err = { 0 };
	struct cds_wfcq_node *n;
	int rc = 0;

	while ((n = bf_queue_pop(&p->full, &p->stop, -1, NULL))) {
		batch *b = caa_container_of(n, batch, node);
		rc = bf_backend_writer_begin(w, &err);
		if (rc == 0) {
			rc = encode_batch(p, w, b, &kbuf, &kcap, &err);
			bf_backend_writer_end(w);
		}
		b->writer = wa->id;
		b->tag = bf_backend_writer_flushes(w) + 1;
		if (rc) {
			bf_queue_push(&p->pool, &b->node);
			break;
		}
		hand_in(p, b);
	}
	/* The scan is over for this writer: sort what it holds now, in
	 * parallel with the other writers; the last import merges it from
	 * memory. */
	if (rc == 0 && !atomic_load(&p->stop)) {
		rc = bf_backend_writer_begin(w, &err);
		if (rc == 0) {
			bf_backend_writer_finish(w);
			bf_backend_writer_end(w);
		}
	}
	if (rc)
		fail(p, rc, &err);
	free(kbuf);
	if (atomic_fetch_sub(&p->writers_alive, 1) == 1)
		bf_queue_close(&p->sink);
	return NULL;
}

/* ---- importer ---- */

typedef struct commit_arg {
	pipe *p;
	size_t mark;
	uint64_t rows;
	bool final;
} commit_arg;

static int import_commit(void *arg, bf_err *err)
{
	commit_arg *c = arg;
	uint8_t key[BF_RECORD_KEY_LEN];
	if (!c->p->o->hooks.imported)
		return 0;
	mark_key(c->p, c->mark, key);
	return c->p->o->hooks.imported(c->p->o->hooks.arg, key, c->rows, c->final, err);
}

static void *importer_main(void *arg)
{
	pipe *p = arg;
	pthread_mutex_lock(&p->imp_mu);
	for (;;) {
		while (p->imp_state != IMPORT_REQUESTED && !p->imp_quit && !atomic_load(&p->stop))
			pthread_cond_wait(&p->imp_cv, &p->imp_mu);
		if (p->imp_state != IMPORT_REQUESTED || atomic_load(&p->stop))
			break;
		p->imp_state = IMPORT_RUNNING;
		commit_arg c = { .p = p, .mark = p->imp_mark, .rows = p->imp_rows, .final = p->imp_final };
		pthread_mutex_unlock(&p->imp_mu);

		bf_err err = { 0 };
		bool imported;
		int rc = bf_backend_flush(p->o->backend, c.final ? BF_FLUSH_IMPORT_LAST : BF_FLUSH_IMPORT,
					  import_commit, &c, &imported, &err);

		pthread_mutex_lock(&p->imp_mu);
		p->imp_rc = rc;
		p->imp_err = err;
		p->imp_state = IMPORT_IDLE;
		pthread_cond_broadcast(&p->imp_cv);
		if (rc) {
			pthread_mutex_unlock(&p->imp_mu);
			fail(p, rc, &err);
			return NULL;
		}
	}
	pthread_mutex_unlock(&p->imp_mu);
	return NULL;
}

static void request_import(pipe *p, bool final)
{
	pthread_mutex_lock(&p->imp_mu);
	p->imp_state = IMPORT_REQUESTED;
	p->imp_final = final;
	p->imp_mark = p->written;
	p->imp_rows = p->written_rows;
	pthread_cond_broadcast(&p->imp_cv);
	pthread_mutex_unlock(&p->imp_mu);
}

static bool import_busy(pipe *p)
{
	pthread_mutex_lock(&p->imp_mu);
	bool busy = p->imp_state != IMPORT_IDLE;
	pthread_mutex_unlock(&p->imp_mu);
	return busy;
}

/* Waits while an import runs; once the pipeline is stopped its lock wait
 * is cancelled, so that is short. */
static void wait_import_ended(pipe *p)
{
	pthread_mutex_lock(&p->imp_mu);
	while (p->imp_state == IMPORT_RUNNING)
		pthread_cond_wait(&p->imp_cv, &p->imp_mu);
	pthread_mutex_unlock(&p->imp_mu);
}

/* ---- sink ---- */

static void advance_watermarks(pipe *p)
{
	pthread_mutex_lock(&p->task_mu);
	while (p->written < p->ntasks) {
		task *t = &p->tasks[p->written];
		if (t->total < 0 || t->seen != (uint64_t)t->total)
			break;
		p->written_rows += t->rows;
		p->written++;
	}
	while (p->durable < p->written) {
		task *t = &p->tasks[p->durable];
		bool ok = true;
		for (int w = 0; w < p->o->writers && ok; w++)
			ok = t->tags[w] == 0 || bf_backend_writer_flushes(p->writers[w]) >= t->tags[w];
		if (!ok)
			break;
		p->durable_rows += t->rows;
		p->durable++;
	}
	pthread_mutex_unlock(&p->task_mu);
}

static uint64_t rows_handed_in(pipe *p)
{
	pthread_mutex_lock(&p->task_mu);
	uint64_t rows = p->rows;
	pthread_mutex_unlock(&p->task_mu);
	return rows;
}

static int save_flushed(pipe *p, size_t *saved, bf_err *err)
{
	uint8_t key[BF_RECORD_KEY_LEN];
	if (p->durable == *saved || !p->o->hooks.flushed)
		return 0;
	mark_key(p, p->durable, key);
	*saved = p->durable;
	return p->o->hooks.flushed(p->o->hooks.arg, key, p->o->base_rows + p->durable_rows, err);
}

static int run_sink(pipe *p, bf_pipe_stats *stats)
{
	const bf_pipe_opts *o = p->o;
	int64_t last_tick = bf_now_ms(), last_cp = last_tick, t0 = bf_now_ms();
	size_t saved = 0;
	bool done = false, final_requested = false;
	bf_err err = { 0 };
	int rc = 0;

	while (!atomic_load(&p->stop)) {
		bool timed_out = false;
		struct cds_wfcq_node *n = done ? NULL : bf_queue_pop(&p->sink, &p->stop, TICK_MS, &timed_out);
		if (n) {
			atomic_store(&p->kick_pending, false);
		} else if (!done && !timed_out) {
			if (atomic_load(&p->stop))
				break;
			/* Every writer is finished and has sorted what it holds. */
			done = true;
			stats->scan_seconds = (double)(bf_now_ms() - t0) / 1e3;
		}
		int64_t now = bf_now_ms();
		/* Once more right when the scan ends, so the checkpoint and the
		 * phase are current before the last import starts. */
		if (now - last_tick >= TICK_MS || (done && !final_requested)) {
			last_tick = now;
			advance_watermarks(p);
			if (o->hooks.interrupted && o->hooks.interrupted(o->hooks.arg)) {
				rc = bf_errf(&err, BF_ECANCELLED, "interrupted");
				break;
			}
			if (o->hooks.progress)
				o->hooks.progress(o->hooks.arg, o->base_rows + rows_handed_in(p),
						  done ? "import" : "scan", import_busy(p));
			if (now - last_cp >= CHECKPOINT_MS || (done && !final_requested)) {
				last_cp = now;
				rc = save_flushed(p, &saved, &err);
				if (rc)
					break;
			}
		}
		/* Like TiDB's disk quota: import whenever import_every bytes were
		 * added since the last import, in the importer thread, while
		 * scanning goes on. */
		if (!done && o->import_every && !import_busy(p) &&
		    bf_backend_pending_bytes(o->backend) >= o->import_every) {
			advance_watermarks(p);
			request_import(p, false);
		}
		if (done) {
			if (!final_requested) {
				if (import_busy(p)) {
					bf_sleep_ms(20);
					continue;
				}
				if (p->written != p->ntasks) {
					rc = bf_errf(&err, BF_ESTATE, "scan ended with %zu of %zu tasks complete",
						     p->written, p->ntasks);
					break;
				}
				request_import(p, true);
				final_requested = true;
				t0 = bf_now_ms();
			} else if (!import_busy(p)) {
				stats->import_seconds = (double)(bf_now_ms() - t0) / 1e3;
				break;
			} else {
				bf_sleep_ms(TICK_MS / 4);
			}
		}
	}
	stats->rows = rows_handed_in(p);
	if (rc)
		fail(p, rc, &err);
	/* A failed last import wrote the writers' buffers as runs: record how
	 * far that makes the engines durable, for a resume. When the sink
	 * itself stopped the job (an interrupt while the import waited for
	 * the lock), the cancelled import is still ending: wait for it, or
	 * the runs it writes would be left out and the resume re-scan all. */
	if (final_requested && atomic_load(&p->stop))
		wait_import_ended(p);
	if (final_requested && atomic_load(&p->stop) && !import_busy(p)) {
		bf_err ignored = { 0 };
		advance_watermarks(p);
		save_flushed(p, &saved, &ignored);
	}
	return rc;
}

/* ---- setup ---- */

static int plan_columns(pipe *p, bf_err *err)
{
	const bf_pipe_opts *o = p->o;
	for (int ix = 0; ix < o->nindexes; ix++) {
		const bf_pipe_index *x = &o->indexes[ix];
		if (x->ncols < 1 || x->ncols > BF_MAX_INDEX_COLUMNS)
			return bf_errf(err, BF_EINVAL, "index %" PRId64 ": bad column count", x->id);
		for (int c = 0; c < x->ncols; c++) {
			int pos = -1;
			for (int k = 0; k < p->nneed; k++)
				if (p->need[k] == x->cols[c])
					pos = k;
			if (pos < 0) {
				pos = p->nneed++;
				p->need[pos] = x->cols[c];
			}
			p->colmap[ix][c] = pos;
		}
	}
	return 0;
}

static int make_batches(pipe *p, bf_err *err)
{
	p->nbatches = 2 * (p->o->readers + p->o->writers) + 2;
	p->batches = calloc((size_t)p->nbatches, sizeof(batch));
	if (!p->batches)
		return bf_errf(err, BF_ENOMEM, "out of memory for row batches");
	for (int i = 0; i < p->nbatches; i++) {
		batch *b = &p->batches[i];
		b->vals = calloc((size_t)BATCH_ROWS * (size_t)p->nneed, sizeof(bf_datum));
		b->arena = malloc(BATCH_ARENA);
		b->cap = BATCH_ARENA;
		if (!b->vals || !b->arena)
			return bf_errf(err, BF_ENOMEM, "out of memory for row batches");
		bf_queue_push(&p->pool, &b->node);
	}
	return 0;
}

int bf_pipe_run(const bf_pipe_opts *o, bf_pipe_stats *stats, bf_err *err)
{
	pipe *p = calloc(1, sizeof(*p));
	pthread_t *readers = NULL;
	writer_arg *wargs = NULL;
	int nreaders = 0, nwriters = 0, rc;
	bool importer_started = false;

	memset(stats, 0, sizeof(*stats));
	if (!p)
		return bf_errf(err, BF_ENOMEM, "pipeline: out of memory");
	p->o = o;
	bf_queue_init(&p->pool);
	bf_queue_init(&p->full);
	bf_queue_init(&p->sink);
	pthread_mutex_init(&p->err_mu, NULL);
	pthread_mutex_init(&p->imp_mu, NULL);
	pthread_mutex_init(&p->task_mu, NULL);
	pthread_cond_init(&p->imp_cv, NULL);
	p->snap = bf_target_snapshot(o->target);

	rc = plan_columns(p, err);
	if (rc == 0)
		rc = make_tasks(p, err);
	if (rc == 0)
		rc = make_batches(p, err);
	if (rc)
		goto out;
	stats->tasks = p->ntasks;
	p->writers = calloc((size_t)o->writers, sizeof(*p->writers));
	readers = calloc((size_t)o->readers, sizeof(*readers));
	wargs = calloc((size_t)o->writers, sizeof(*wargs));
	if (!p->writers || !readers || !wargs) {
		rc = bf_errf(err, BF_ENOMEM, "pipeline: out of memory");
		goto out;
	}
	for (int i = 0; i < o->writers; i++) {
		rc = bf_backend_writer_create(o->backend, o->sort_budget / (size_t)o->writers,
					      &p->writers[i], err);
		if (rc)
			goto out;
		/* Rows rarely make smaller index entries than themselves: a
		 * table larger than the budget will spill, and every other
		 * writer writing its runs half a buffer out of step keeps one
		 * writer taking batches while the other writes. */
		if (i % 2 == 1 && p->table_bytes > o->sort_budget)
			bf_backend_writer_stagger(p->writers[i]);
	}
	if (pthread_create(&p->importer, NULL, importer_main, p)) {
		rc = bf_errf(err, BF_ENOMEM, "pipeline: cannot start the importer thread");
		goto out;
	}
	importer_started = true;
	atomic_store(&p->readers_alive, o->readers);
	atomic_store(&p->writers_alive, o->writers);
	for (; nwriters < o->writers; nwriters++) {
		wargs[nwriters].p = p;
		wargs[nwriters].id = nwriters;
		if (pthread_create(&wargs[nwriters].thread, NULL, writer_main, &wargs[nwriters]))
			break;
	}
	for (; nreaders < o->readers && nwriters == o->writers; nreaders++)
		if (pthread_create(&readers[nreaders], NULL, reader_main, p))
			break;
	if (nwriters < o->writers || nreaders < o->readers) {
		bf_err e;
		bf_errf(&e, BF_ENOMEM, "pipeline: cannot start threads");
		fail(p, BF_ENOMEM, &e);
		/* Threads never started must still count down to close queues. */
		atomic_fetch_sub(&p->readers_alive, o->readers - nreaders);
		atomic_fetch_sub(&p->writers_alive, o->writers - nwriters);
	} else {
		run_sink(p, stats);
	}
	atomic_store(&p->stop, 1);
	bf_queue_wake(&p->pool);
	bf_queue_wake(&p->full);
	bf_queue_wake(&p->sink);
	for (int i = 0; i < nreaders; i++)
		pthread_join(readers[i], NULL);
	for (int i = 0; i < nwriters; i++)
		pthread_join(wargs[i].thread, NULL);
	rc = p->rc;
	if (rc && err)
		*err = p->err;
out:
	if (importer_started) {
		pthread_mutex_lock(&p->imp_mu);
		p->imp_quit = true;
		pthread_cond_broadcast(&p->imp_cv);
		pthread_mutex_unlock(&p->imp_mu);
		pthread_join(p->importer, NULL);
		if (rc == 0 && p->imp_rc) {
			rc = p->imp_rc;
			if (err)
				*err = p->imp_err;
		}
	}
	for (int i = 0; p->writers && i < o->writers; i++)
		bf_backend_writer_destroy(p->writers[i]);
	free(p->writers);
	free(readers);
	free(wargs);
	for (int i = 0; p->batches && i < p->nbatches; i++) {
		free(p->batches[i].vals);
		free(p->batches[i].arena);
	}
	free(p->batches);
	for (size_t i = 0; p->tasks && i < p->ntasks; i++)
		free(p->tasks[i].tags);
	free(p->tasks);
	bf_target_snapshot_release(o->target, p->snap);
	bf_queue_destroy(&p->pool);
	bf_queue_destroy(&p->full);
	bf_queue_destroy(&p->sink);
	pthread_mutex_destroy(&p->err_mu);
	pthread_mutex_destroy(&p->imp_mu);
	pthread_mutex_destroy(&p->task_mu);
	pthread_cond_destroy(&p->imp_cv);
	free(p);
	return rc;
}
