/*
 * Export: walk an engine range in key order and cut it into target SSTs of
 * bounded size and key count (TiKV's region split limits), dropping the
 * handle suffix of unique-index keys and catching duplicates on the way.
 * Depends on engine (iterators, SST writer) and util.
 */
#include "bfill/engine.h"
#include "bfill/fault.h"
#include "util/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDLE_SUFFIX 8
#define TARGET_BLOCK_SIZE (16u << 10)

typedef struct keybuf {
	uint8_t *p;
	size_t len, cap;
} keybuf;

static int keybuf_set(keybuf *kb, const uint8_t *k, size_t n)
{
	if (n > kb->cap) {
		size_t cap = n * 2 < 256 ? 256 : n * 2;
		uint8_t *p = realloc(kb->p, cap);
		if (!p)
			return BF_ENOMEM;
		kb->p = p;
		kb->cap = cap;
	}
	memcpy(kb->p, k, n);
	kb->len = n;
	return 0;
}

static int report_dup(bf_export_opts *o, const uint8_t *k, size_t n, bf_err *err)
{
	if (o->dup_key) {
		size_t c = n < o->dup_key_cap ? n : o->dup_key_cap;
		memcpy(o->dup_key, k, c);
		o->dup_key_len = c;
	}
	return bf_errf(err, BF_EDUP, "duplicate entry");
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

/*
 * Unique keys waiting for the target's answer whether they are there
 * already: copies, since the merge moves on before a batch is asked.
 */
#define PROBE_BATCH 1024
#define PROBE_ARENA (256u << 10)

typedef struct probe_batch {
	bf_probe probes[PROBE_BATCH];
	size_t n;
	uint8_t *arena;
	size_t used, cap;
} probe_batch;

/* Asks the target about every queued key; a key there with another value
 * is a duplicate. */
static int probe_flush(bf_export_opts *o, probe_batch *pb, bf_err *err)
{
	int rc = 0;
	if (pb->n == 0)
		return 0;
	rc = o->probe(o->probe_arg, pb->probes, pb->n, err);
	for (size_t i = 0; rc == 0 && i < pb->n; i++)
		if (pb->probes[i].result == BF_PROBE_DIFFERENT)
			rc = report_dup(o, pb->probes[i].key, pb->probes[i].klen, err);
	pb->n = 0;
	pb->used = 0;
	return rc;
}

static int probe_add(bf_export_opts *o, probe_batch *pb, const uint8_t *k, size_t kl,
		     const uint8_t *v, size_t vl, bf_err *err)
{
	int rc = 0;
	if (pb->n == PROBE_BATCH || pb->used + kl + vl > pb->cap)
		rc = probe_flush(o, pb, err);
	if (rc)
		return rc;
	if (kl + vl > pb->cap) {
		uint8_t *a = realloc(pb->arena, kl + vl);
		if (!a)
			return bf_errf(err, BF_ENOMEM, "export: out of memory");
		pb->arena = a;
		pb->cap = kl + vl;
	}
	bf_probe *p = &pb->probes[pb->n++];
	memcpy(pb->arena + pb->used, k, kl);
	memcpy(pb->arena + pb->used + kl, v, vl);
	/* The arena does not move while the batch fills (it grows only when
	 * empty), so these pointers stay good until the batch is asked. */
	p->key = pb->arena + pb->used;
	p->klen = kl;
	p->expect = pb->arena + pb->used + kl;
	p->expect_len = vl;
	p->result = BF_PROBE_ABSENT;
	pb->used += kl + vl;
	return 0;
}

static int finish_file(bf_export_opts *o, bf_sst_writer **w, const char *path, bf_err *err)
{
	uint64_t keys = bf_sst_writer_keys(*w), bytes = bf_sst_writer_raw_bytes(*w);
	int rc = bf_sst_writer_finish(*w, NULL, err);
	bf_sst_writer_destroy(*w);
	*w = NULL;
	if (rc)
		return rc;
	if (bf_fault_hit("import.write"))
		return bf_errf(err, BF_EFAULT, "export: injected failure after %s", path);
	return o->on_file(path, keys, bytes, o->arg, err);
}

/* One ordered input of the merge: the engine, or a sorted buffer range. */
typedef struct source {
	bf_store_iter *it;
	const bf_sortbuf *buf;
	size_t pos, end;
	const uint8_t *k, *v;
	size_t kl, vl;
	bool valid;
} source;

static void source_load(source *s)
{
	if (s->it) {
		s->valid = bf_store_iter_valid(s->it);
		if (s->valid) {
			s->k = bf_store_iter_key(s->it, &s->kl);
			s->v = bf_store_iter_value(s->it, &s->vl);
		}
		return;
	}
	s->valid = s->pos < s->end;
	if (s->valid) {
		bf_sortbuf_prefetch(s->buf, s->pos + 8);
		bf_sortbuf_get(s->buf, s->pos, &s->k, &s->kl, &s->v, &s->vl);
	}
}

static void source_next(source *s)
{
	if (s->it)
		bf_store_iter_next(s->it);
	else
		s->pos++;
	source_load(s);
}

/* The source holding the smallest key, or NULL when all are done. */
static source *source_min(source *src, int n)
{
	source *best = NULL;
	for (int i = 0; i < n; i++) {
		if (!src[i].valid)
			continue;
		if (!best || cmp_bytes(src[i].k, src[i].kl, best->k, best->kl) < 0)
			best = &src[i];
	}
	return best;
}

int bf_engine_export(bf_engine *const *engines, int nengines, bf_export_opts *o,
		     uint64_t *keys_out, uint64_t *bytes_out, bf_err *err)
{
	int nsrc = nengines + o->nextra;
	source *src = calloc((size_t)(nsrc ? nsrc : 1), sizeof(*src));
	probe_batch *pb = NULL;
	bf_sst_writer *w = NULL;
	keybuf prev = { 0 }, prev_full = { 0 };
	char path[PATH_MAX];
	uint64_t total_keys = 0, total_bytes = 0, nfile = 0, steps = 0;
	bool have_prev = false, have_full = false;
	int rc = 0;

	if (!src)
		return bf_errf(err, BF_ENOMEM, "export: out of memory");
	for (int e = 0; e < nengines && rc == 0; e++) {
		rc = bf_engine_iter(engines[e], o->lo, o->lolen, o->hi, o->hilen, &src[e].it, err);
		if (rc == 0)
			source_load(&src[e]);
	}
	if (rc)
		goto out;
	for (int x = 0; x < o->nextra; x++) {
		source *s = &src[nengines + x];
		s->buf = o->extra[x];
		s->pos = o->lo ? bf_sortbuf_lower_bound(s->buf, o->lo, o->lolen) : 0;
		s->end = o->hi ? bf_sortbuf_lower_bound(s->buf, o->hi, o->hilen) : bf_sortbuf_count(s->buf);
		source_load(s);
	}
	if (o->handle_suffix && o->probe) {
		pb = calloc(1, sizeof(*pb));
		if (pb)
			pb->arena = malloc(PROBE_ARENA);
		if (!pb || !pb->arena) {
			rc = bf_errf(err, BF_ENOMEM, "export: out of memory");
			goto out;
		}
		pb->cap = PROBE_ARENA;
	}
	for (source *s; (s = source_min(src, nsrc)); source_next(s)) {
		const uint8_t *k = s->k, *v = s->v;
		size_t kl = s->kl, vl = s->vl;
		if ((++steps & 1023) == 0 && o->stop && *o->stop) {
			rc = bf_errf(err, BF_ECANCELLED, "export cancelled");
			goto out;
		}
		/* The same entry may sit in two runs of different generations or in
		 * a run and a buffer (a re-scanned row after a resume): write it
		 * once. */
		if (nsrc > 1) {
			if (have_full && prev_full.len == kl && !memcmp(prev_full.p, k, kl))
				continue;
			if (keybuf_set(&prev_full, k, kl)) {
				rc = bf_errf(err, BF_ENOMEM, "export: out of memory");
				goto out;
			}
			have_full = true;
		}
		if (o->handle_suffix) {
			if (kl <= HANDLE_SUFFIX) {
				rc = bf_errf(err, BF_ECORRUPT, "engine key of %zu bytes has no handle suffix", kl);
				goto out;
			}
			kl -= HANDLE_SUFFIX;
			if (have_prev && prev.len == kl && !memcmp(prev.p, k, kl)) {
				rc = report_dup(o, k, kl, err);
				goto out;
			}
			if (pb) {
				rc = probe_add(o, pb, k, kl, v, vl, err);
				if (rc)
					goto out;
			}
			if (keybuf_set(&prev, k, kl)) {
				rc = bf_errf(err, BF_ENOMEM, "export: out of memory");
				goto out;
			}
			have_prev = true;
		}
		if (!w) {
			snprintf(path, sizeof(path), "%s/%s-%06llu.sst", o->out_dir, o->file_tag,
				 (unsigned long long)nfile++);
			rc = bf_sst_writer_open(path, o->compression, TARGET_BLOCK_SIZE, &w, err);
			if (rc)
				goto out;
		}
		rc = bf_sst_writer_put(w, k, kl, v, vl, err);
		if (rc)
			goto out;
		total_keys++;
		total_bytes += kl + vl;
		if (bf_sst_writer_raw_bytes(w) >= o->max_bytes || bf_sst_writer_keys(w) >= o->max_keys) {
			rc = finish_file(o, &w, path, err);
			if (rc)
				goto out;
		}
	}
	for (int e = 0; e < nengines && rc == 0; e++)
		rc = bf_store_iter_status(src[e].it, err);
	/* Every key is asked about before the last file is handed over. */
	if (rc == 0 && pb)
		rc = probe_flush(o, pb, err);
	if (rc == 0 && w)
		rc = finish_file(o, &w, path, err);
out:
	bf_sst_writer_destroy(w);
	for (int e = 0; e < nengines; e++)
		bf_store_iter_destroy(src[e].it);
	free(src);
	if (pb)
		free(pb->arena);
	free(pb);
	free(prev.p);
	free(prev_full.p);
	if (keys_out)
		*keys_out = total_keys;
	if (bytes_out)
		*bytes_out = total_bytes;
	return rc;
}
