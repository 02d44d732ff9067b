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

int bf_engine_export(bf_engine *const *engines, int nengines, bf_export_opts *o,
		     uint64_t *keys_out, uint64_t *bytes_out, bf_err *err)
{
	bf_merge *m = NULL;
	probe_batch *pb = NULL;
	bf_sst_writer *w = NULL;
	keybuf prev = { 0 };
	char path[PATH_MAX];
	uint64_t total_keys = 0, total_bytes = 0, nfile = 0, steps = 0;
	bool have_prev = false;
	int rc;

	/* The merge writes an entry present in two runs of different
	 * generations, or in a run and a buffer (a re-scanned row after a
	 * resume), once. */
	rc = bf_merge_open(engines, nengines, o->extra, o->nextra, o->lo, o->lolen, o->hi, o->hilen,
			   &m, err);
	if (rc)
		goto out;
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
	for (; bf_merge_valid(m); rc = bf_merge_next(m, err)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		bf_merge_get(m, &k, &kl, &v, &vl);
		if ((++steps & 1023) == 0 && o->stop && *o->stop) {
			rc = bf_errf(err, BF_ECANCELLED, "export cancelled");
			goto out;
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
	if (rc)
		goto out;
	/* Every key is asked about before the last file is handed over. */
	if (pb)
		rc = probe_flush(o, pb, err);
	if (rc == 0 && w)
		rc = finish_file(o, &w, path, err);
out:
	bf_sst_writer_destroy(w);
	bf_merge_close(m);
	if (pb)
		free(pb->arena);
	free(pb);
	free(prev.p);
	if (keys_out)
		*keys_out = total_keys;
	if (bytes_out)
		*bytes_out = total_bytes;
	return rc;
}
