/*
 * check-index: recompute an index from the rows and compare. Shares only
 * the codec and the sort engine with the build; the scan, the encoding
 * loop and the comparison are its own, so a bug in the pipeline can't
 * hide itself. Reads through the import target, like the build.
 * Depends on codec, engine (catalog, engine), ingest (target) and util.
 */
#include "bfill/check.h"
#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/engine.h"
#include "pipeline/pipe.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MEM (8ULL << 20)

static void add_example(bf_check_result *res, const char *what, const uint8_t *k, size_t kl)
{
	char *out;
	size_t n;
	if (res->nexamples == BF_CHECK_EXAMPLES)
		return;
	out = res->examples[res->nexamples++];
	n = (size_t)snprintf(out, sizeof(res->examples[0]), "%s ", what);
	for (size_t i = 0; i < kl && n + 3 < sizeof(res->examples[0]); i++)
		n += (size_t)snprintf(out + n, sizeof(res->examples[0]) - n, "%02x", k[i]);
}

/* Encodes the expected entry of one row into buf; returns key length. */
static size_t expected_entry(const bf_table *t, const bf_index *x, const bf_row_view *rv,
			     int64_t handle, uint8_t **buf, size_t *cap, uint8_t *val, size_t *vl,
			     int *rc)
{
	bf_datum cols[BF_MAX_INDEX_COLUMNS];
	for (int c = 0; c < x->ncols; c++) {
		*rc = bf_table_decode_column(t, x->cols[c], rv, handle, &cols[c]);
		if (*rc)
			return 0;
	}
	bf_index_cut_prefix(x->prefix, cols, x->ncols);
	bool with = bf_codec_index_needs_handle(x->unique, cols, x->ncols);
	size_t kl = bf_codec_index_key_len(cols, x->ncols, with);
	if (kl > *cap) {
		uint8_t *nb = realloc(*buf, kl * 2);
		if (!nb) {
			*rc = BF_ENOMEM;
			return 0;
		}
		*buf = nb;
		*cap = kl * 2;
	}
	*vl = bf_codec_index_value(val, with, handle);
	return bf_codec_index_key(*buf, t->id, x->id, cols, x->ncols, with, handle);
}

static int fill_engine(bf_target *tg, const bf_target_snap *snap, const bf_table *t,
		       const bf_index *x, bf_engine *eng, bf_sortbuf *sb, bf_check_result *res,
		       bf_err *err)
{
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN], val[BF_INDEX_VALUE_MAX];
	bf_scan_opts so = { .snap = snap, .readahead = 2u << 20 };
	bf_target_iter *it = NULL;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int rc;

	bf_pipe_record_range(t->id, lo, hi);
	rc = bf_target_scan(tg, lo, sizeof(lo), hi, sizeof(hi), &so, &it, err);
	for (; rc == 0 && bf_target_iter_valid(it); bf_target_iter_next(it)) {
		size_t kl, vl, evl;
		const uint8_t *k = bf_target_iter_key(it, &kl), *v = bf_target_iter_value(it, &vl);
		int64_t handle;
		bf_row_view rv;
		if (bf_codec_decode_record_key(k, kl, NULL, &handle) || bf_codec_row_view(&rv, v, vl)) {
			rc = bf_errf(err, BF_ECORRUPT, "table '%s' holds a malformed row (key of %zu bytes)",
				     t->name, kl);
			break;
		}
		size_t ekl = expected_entry(t, x, &rv, handle, &buf, &cap, val, &evl, &rc);
		if (rc) {
			rc = bf_errf(err, rc, "table '%s': row %" PRId64 " can't be decoded", t->name, handle);
			break;
		}
		res->rows++;
		res->expected++;
		if (!bf_sortbuf_add(sb, buf, ekl, val, evl)) {
			rc = bf_engine_write_run(eng, sb, err);
			if (rc == 0 && !bf_sortbuf_add(sb, buf, ekl, val, evl))
				rc = bf_errf(err, BF_ENOMEM, "check: an entry does not fit the sort buffer");
		}
	}
	if (rc == 0)
		rc = bf_target_iter_status(it, err);
	if (rc == 0)
		rc = bf_engine_write_run(eng, sb, err);
	bf_target_iter_destroy(it);
	free(buf);
	return rc;
}

static int compare(bf_target *tg, const bf_target_snap *snap, const bf_table *t, const bf_index *x,
		   bf_engine *eng, bf_check_result *res, bf_err *err)
{
	uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
	bf_scan_opts so = { .snap = snap, .readahead = 2u << 20 };
	bf_merge *want = NULL;
	bf_target_iter *have = NULL;
	int rc;

	bf_codec_index_prefix(lo, t->id, x->id);
	bf_codec_index_prefix(hi, t->id, x->id + 1);
	rc = bf_merge_open(&eng, 1, NULL, 0, NULL, 0, NULL, 0, &want, err);
	if (rc == 0)
		rc = bf_target_scan(tg, lo, sizeof(lo), hi, sizeof(hi), &so, &have, err);
	if (rc)
		goto out;
	/* The expected count went up once per row; identical keys collapse in
	 * the engine, so count what it really holds. */
	res->expected = 0;
	while (rc == 0 && (bf_merge_valid(want) || bf_target_iter_valid(have))) {
		size_t wk = 0, hk = 0, wv = 0, hv;
		const uint8_t *wkey = NULL, *wval = NULL;
		if (bf_merge_valid(want))
			bf_merge_get(want, &wkey, &wk, &wval, &wv);
		const uint8_t *hkey = bf_target_iter_valid(have) ? bf_target_iter_key(have, &hk) : NULL;
		int c = !wkey ? 1 : !hkey ? -1 : bf_key_cmp(wkey, wk, hkey, hk);
		if (c < 0) {
			res->expected++;
			res->missing++;
			add_example(res, "missing", wkey, wk);
			rc = bf_merge_next(want, err);
		} else if (c > 0) {
			res->found++;
			res->extra++;
			add_example(res, "extra", hkey, hk);
			bf_target_iter_next(have);
		} else {
			const uint8_t *hval = bf_target_iter_value(have, &hv);
			res->expected++;
			res->found++;
			if (wv != hv || memcmp(wval, hval, wv)) {
				res->wrong_value++;
				add_example(res, "wrong-value", hkey, hk);
			}
			rc = bf_merge_next(want, err);
			bf_target_iter_next(have);
		}
	}
	if (rc == 0)
		rc = bf_target_iter_status(have, err);
out:
	bf_merge_close(want);
	bf_target_iter_destroy(have);
	return rc;
}

int bf_check_index_in(bf_catalog *cat, bf_target *target, const char *table, const char *index,
		      const char *tmp_dir, uint64_t mem, bf_check_result *res, bf_err *err)
{
	bf_table t;
	bf_target_snap *snap = NULL;
	bf_engine *eng = NULL;
	bf_sortbuf *sb = NULL;
	bf_engine_opts eo = { .run_compression = BF_COMPRESS_NONE };
	int rc, pos;

	memset(res, 0, sizeof(*res));
	rc = bf_catalog_get_table(cat, table, &t, err);
	if (rc)
		return rc;
	pos = bf_table_index(&t, index);
	if (pos < 0)
		return bf_errf(err, BF_ENOTFOUND, "index '%s' does not exist on table '%s'", index, table);
	snprintf(res->index_state, sizeof(res->index_state), "%s", bf_index_state_name(t.indexes[pos].state));
	/* Entries of an index that is not public are not to be read: they may
	 * be half there, by design, while its job builds or waits to resume. */
	if (t.indexes[pos].state != BF_INDEX_PUBLIC)
		return bf_errf(err, BF_ESTATE, "index '%s' on table '%s' is being built by job %" PRId64
			       " (%s); check it once the job is done", index, table, t.indexes[pos].job_id,
			       res->index_state);
	rc = bf_rmtree(tmp_dir, err);
	if (rc == 0)
		rc = bf_sortbuf_create((size_t)(mem < MIN_MEM ? MIN_MEM : mem), &sb, err);
	if (rc == 0)
		rc = bf_engine_open(tmp_dir, &eo, &eng, err);
	if (rc)
		goto out;
	snap = bf_target_snapshot(target);
	rc = fill_engine(target, snap, &t, &t.indexes[pos], eng, sb, res, err);
	if (rc == 0)
		rc = compare(target, snap, &t, &t.indexes[pos], eng, res, err);
out:
	bf_target_snapshot_release(target, snap);
	bf_sortbuf_destroy(sb);
	bf_engine_remove(eng, tmp_dir, NULL);
	return rc;
}

int bf_check_index(bf_store *st, bf_target *target, const char *table, const char *index,
		   const char *tmp_dir, uint64_t mem, bf_check_result *res, bf_err *err)
{
	bf_target *own = NULL;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (!target) {
		rc = bf_target_local_create(st, &own, err);
		target = own;
	}
	if (rc == 0)
		rc = bf_check_index_in(bf_store_catalog(st), target, table, index, tmp_dir, mem, res,
				       err);
	bf_target_destroy(own);
	return rc;
}
