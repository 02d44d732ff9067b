/*
 * Creating tables and loading rows into them (include/bfill/table.h).
 *
 * A load sorts its rows by record key in a sort engine of its own (rows
 * may come in any order, and more of them than fit the budget), writes
 * them out as SSTs and ingests those in one atomic step, so a failed load
 * leaves nothing behind. Each record key carries an 8-byte sequence number
 * while it is sorted: two rows with one primary key stay two entries, and
 * the export reports them as a duplicate instead of keeping either.
 */
#include "bfill/engine.h"
#include "bfill/table.h"
#include "bfill/target.h"
#include "pipeline/load_impl.h"
#include "util/util.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_MEM_DEFAULT (256ULL << 20)
#define LOAD_MEM_MIN (4ULL << 20)
#define SEQ_LEN 8
#define LOAD_SST_BYTES (256ULL << 20)
#define LOAD_MAX_RUNS 64

struct bf_loader {
	bf_gen_place pl;
	bf_load_opts o;
	bf_table t;
	bf_target *own_target; /* bf_loader_open_store's */
	bf_engine *eng;
	bf_sortbuf *sb;
	char dir[PATH_MAX];
	uint64_t rows, bytes;
	int64_t next_rowid, t0, last_progress;
	uint8_t *row;
	size_t rowcap;
	bf_row_col cols[BF_MAX_COLUMNS];
	int order[BF_MAX_COLUMNS];
	char **files;
	size_t nfiles, fcap;
};

int bf_table_create_in(bf_catalog *cat, bf_table *t, bf_err *err)
{
	bf_table old;
	int rc = bf_catalog_get_table(cat, t->name, &old, NULL);

	if (rc == 0)
		return bf_errf(err, BF_EEXIST, "table '%s' already exists", t->name);
	if (rc != BF_ENOTFOUND)
		return bf_catalog_get_table(cat, t->name, &old, err);
	rc = bf_catalog_next_id(cat, "table", &t->id, err);
	if (rc == 0)
		rc = bf_catalog_put_table(cat, t, err);
	return rc;
}

int bf_table_create(bf_store *st, const char *name, const char *schema, bf_table *out,
		    bf_err *err)
{
	bf_table t;
	int rc = bf_schema_parse(name, schema, &t, err);

	if (rc == 0)
		rc = bf_table_create_in(bf_store_catalog(st), &t, err);
	if (rc == 0 && out)
		*out = t;
	return rc;
}

/* Whether the table has a row already: a load adds to an empty table only,
 * since a key it repeated would silently replace a row. */
static int table_empty(bf_loader *ld, bf_err *err)
{
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN];
	bf_scan_opts so = { .readahead = 0, .fill_cache = false };
	bf_target_iter *it = NULL;
	int rc;

	bf_codec_record_prefix(lo, ld->t.id);
	memcpy(hi, lo, sizeof(hi));
	bf_codec_prefix_next(hi, sizeof(hi));
	rc = bf_target_scan(ld->pl.target, lo, sizeof(lo), hi, sizeof(hi), &so, &it, err);
	if (rc)
		return rc;
	if (bf_target_iter_valid(it))
		rc = bf_errf(err, BF_ESTATE, "table '%s' already has rows: a load needs an empty"
			     " table", ld->t.name);
	else
		rc = bf_target_iter_status(it, err);
	bf_target_iter_destroy(it);
	return rc;
}

int bf_loader_open(const bf_gen_place *pl, const char *table, const bf_load_opts *o,
		   bf_loader **out, bf_err *err)
{
	bf_loader *ld = calloc(1, sizeof(*ld));
	bf_engine_opts eo = { 0 };
	int rc;

	*out = NULL;
	if (!ld)
		return bf_errf(err, BF_ENOMEM, "load: out of memory");
	ld->pl = *pl;
	if (o)
		ld->o = *o;
	if (!ld->o.mem_bytes)
		ld->o.mem_bytes = LOAD_MEM_DEFAULT;
	ld->next_rowid = 1;
	ld->t0 = bf_now_ns();
	rc = bf_catalog_get_table(pl->catalog, table, &ld->t, err);
	if (rc)
		goto fail;
	if (ld->t.nindexes) {
		rc = bf_errf(err, BF_ESTATE, "table '%s' has indexes: load its rows first, then"
			     " add indexes", ld->t.name);
		goto fail;
	}
	if (ld->o.mem_bytes < LOAD_MEM_MIN) {
		rc = bf_errf(err, BF_EINVAL, "load: a memory budget of at least %llu MiB is needed",
			     LOAD_MEM_MIN >> 20);
		goto fail;
	}
	if ((rc = table_empty(ld, err)))
		goto fail;
	if ((rc = place_scratch_dir(pl, "load", ld->dir, sizeof(ld->dir), err))) {
		ld->dir[0] = '\0';
		goto fail;
	}
	/* Runs take three quarters: their reads and writes need the rest. */
	if ((rc = bf_sortbuf_create(ld->o.mem_bytes / 4 * 3, &ld->sb, err)))
		goto fail;
	char edir[PATH_MAX + 8];
	snprintf(edir, sizeof(edir), "%s/runs", ld->dir);
	if ((rc = bf_engine_open(edir, &eo, &ld->eng, err)))
		goto fail;
	*out = ld;
	return 0;
fail:
	bf_loader_destroy(ld);
	return rc;
}

int bf_loader_open_store(bf_store *st, const char *table, const bf_load_opts *o,
			 bf_loader **out, bf_err *err)
{
	bf_target *t = NULL;
	int rc = bf_target_local_create(st, &t, err);
	bf_gen_place pl;

	bf_gen_place_store(st, t, &pl);
	if (rc == 0)
		rc = bf_loader_open(&pl, table, o, out, err);
	if (rc) {
		bf_target_destroy(t);
		return rc;
	}
	(*out)->own_target = t;
	return 0;
}

const bf_table *bf_loader_table(const bf_loader *ld) { return &ld->t; }

/* The row's record key with its sequence number, and its row-v2 value, go
 * into the sort buffer; a full buffer becomes a run first. */
static int buffer_row(bf_loader *ld, int64_t handle, int ncols, bf_err *err)
{
	uint8_t key[BF_RECORD_KEY_LEN + SEQ_LEN];
	size_t need = bf_codec_row_len(ld->cols, ncols);
	long vlen;
	int rc;

	if (need > ld->rowcap) {
		uint8_t *nb = realloc(ld->row, need * 2);
		if (!nb)
			return bf_errf(err, BF_ENOMEM, "load: out of memory for a row");
		ld->row = nb;
		ld->rowcap = need * 2;
	}
	vlen = bf_codec_row_encode(ld->row, ld->cols, ncols, ld->order);
	if (vlen < 0)
		return bf_errf(err, (int)vlen, "load: cannot encode row %" PRIu64, ld->rows + 1);
	bf_codec_record_key(key, ld->t.id, handle);
	bf_codec_put_uint(key + BF_RECORD_KEY_LEN, ld->rows);
	if (bf_sortbuf_add(ld->sb, key, sizeof(key), ld->row, (size_t)vlen))
		goto added;
	if ((rc = bf_engine_write_run(ld->eng, ld->sb, err)))
		return rc;
	if (!bf_sortbuf_add(ld->sb, key, sizeof(key), ld->row, (size_t)vlen))
		return bf_errf(err, BF_ENOMEM, "load: a row of %ld bytes does not fit the memory"
			       " budget", vlen);
added:
	ld->rows++;
	ld->bytes += BF_RECORD_KEY_LEN + (uint64_t)vlen;
	return 0;
}

int bf_loader_add(bf_loader *ld, const bf_datum *vals, int n, bf_err *err)
{
	const bf_table *t = &ld->t;
	int rc;

	if (n != t->ncols)
		return bf_errf(err, BF_EINVAL, "a row of table '%s' has %d columns, not %d", t->name,
			       t->ncols, n);
	for (int i = 0; i < n; i++)
		if ((rc = bf_column_check_value(&t->cols[i], &vals[i], err)))
			return bf_err_prefix(err, rc, "column '%s'", t->cols[i].name);
	return loader_add_checked(ld, vals, err);
}

int loader_add_checked(bf_loader *ld, const bf_datum *vals, bf_err *err)
{
	const bf_table *t = &ld->t;
	int64_t handle;
	int ncols = 0, rc;

	for (int i = 0; i < t->ncols; i++) {
		/* The handle lives in the key, not in the row (TiDB's int handle). */
		if (i == t->handle_col)
			continue;
		ld->cols[ncols].col_id = t->cols[i].id;
		ld->cols[ncols++].val = vals[i];
	}
	handle = t->handle_col >= 0 ? vals[t->handle_col].v.i : ld->next_rowid++;
	if ((rc = buffer_row(ld, handle, ncols, err)))
		return rc;
	if (ld->o.progress && (ld->rows & 4095) == 0 && bf_now_ms() - ld->last_progress >= 100) {
		ld->o.progress(ld->rows, ld->o.progress_arg);
		ld->last_progress = bf_now_ms();
	}
	return 0;
}

static int collect_file(const char *path, uint64_t keys, uint64_t bytes, void *arg, bf_err *err)
{
	bf_loader *ld = arg;
	(void)keys, (void)bytes;

	if (ld->nfiles == ld->fcap) {
		size_t cap = ld->fcap ? ld->fcap * 2 : 16;
		char **f = realloc(ld->files, cap * sizeof(*f));
		if (!f)
			return bf_errf(err, BF_ENOMEM, "load: out of memory");
		ld->files = f;
		ld->fcap = cap;
	}
	if (!(ld->files[ld->nfiles] = strdup(path)))
		return bf_errf(err, BF_ENOMEM, "load: out of memory");
	ld->nfiles++;
	return 0;
}

/* A repeated primary key, named from the record key the export saw twice. */
static int duplicate(bf_loader *ld, const uint8_t *key, size_t len, bf_err *err)
{
	int64_t tid, handle;

	if (bf_codec_decode_record_key(key, len, &tid, &handle) == 0)
		return bf_errf(err, BF_EDUP, "duplicate primary key %" PRId64 " in column '%s'",
			       handle, ld->t.cols[ld->t.handle_col].name);
	return bf_errf(err, BF_EDUP, "duplicate primary key");
}

int bf_loader_finish(bf_loader *ld, bf_gen_stats *stats, bf_err *err)
{
	uint8_t dup[BF_RECORD_KEY_LEN + SEQ_LEN];
	char sst_dir[PATH_MAX + 8], to_do[64];
	bf_sortbuf *extra[1] = { ld->sb };
	uint64_t keys = 0, bytes = 0;
	int rc;

	memset(stats, 0, sizeof(*stats));
	snprintf(to_do, sizeof(to_do), "load %" PRIu64 " rows", ld->rows);
	rc = ld->pl.check_room ? ld->pl.check_room(ld->pl.check_arg, ld->bytes, to_do, err) : 0;
	if (rc)
		return rc;
	bf_sortbuf_sort(ld->sb);
	if ((rc = bf_engine_reduce(ld->eng, LOAD_MAX_RUNS, NULL, err)))
		return rc;
	snprintf(sst_dir, sizeof(sst_dir), "%s/sst", ld->dir);
	if ((rc = bf_mkdirs(sst_dir, err)))
		return rc;
	bf_export_opts eo = {
		.out_dir = sst_dir, .file_tag = "load", .max_bytes = LOAD_SST_BYTES,
		.max_keys = UINT64_MAX, .compression = ld->o.compression, .handle_suffix = true,
		.dup_key = dup, .dup_key_cap = sizeof(dup), .extra = extra, .nextra = 1,
		.on_file = collect_file, .arg = ld,
	};
	rc = bf_engine_export(&ld->eng, 1, &eo, &keys, &bytes, err);
	if (rc == BF_EDUP)
		return duplicate(ld, dup, eo.dup_key_len, err);
	if (rc)
		return rc;
	if (ld->nfiles) {
		rc = bf_target_ingest(ld->pl.target, (const char *const *)ld->files, ld->nfiles,
				      NULL, err);
		if (rc)
			return rc;
	}
	/* The rows are in; the count is a hint for progress, so a table record
	 * changed meanwhile keeps its own. */
	bf_table now;
	if (bf_catalog_get_table(ld->pl.catalog, ld->t.name, &now, NULL) == 0 &&
	    now.id == ld->t.id) {
		now.rows_hint = ld->rows;
		bf_catalog_put_table(ld->pl.catalog, &now, NULL);
	}
	if (ld->o.progress)
		ld->o.progress(ld->rows, ld->o.progress_arg);
	stats->table_id = ld->t.id;
	stats->rows = ld->rows;
	stats->bytes = bytes;
	stats->files = ld->nfiles;
	stats->seconds = (double)(bf_now_ns() - ld->t0) / 1e9;
	return 0;
}

void bf_loader_destroy(bf_loader *ld)
{
	if (!ld)
		return;
	bf_engine_close(ld->eng);
	bf_sortbuf_destroy(ld->sb);
	for (size_t i = 0; i < ld->nfiles; i++)
		free(ld->files[i]);
	free(ld->files);
	if (ld->dir[0])
		bf_rmtree(ld->dir, NULL);
	free(ld->row);
	bf_target_destroy(ld->own_target);
	free(ld);
}
