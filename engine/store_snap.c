/*
 * Store snapshots and scans (include/bfill/store.h). A snapshot also notes
 * which table files hold everything it sees, when that can be known; a
 * scan on it that only steps forward then reads those files directly
 * (engine/sst_direct.h) rather than through RocksDB's iterators, where a
 * table scan otherwise spends most of its time.
 * Depends on engine/rdb, engine/sst_direct and util.
 */
#include "engine/rdb.h"
#include "engine/store_impl.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct snap_file {
	char *path;
	uint8_t *lo, *hi; /* smallest and largest user keys */
	size_t lolen, hilen;
} snap_file;

struct bf_store_snap {
	const rocksdb_snapshot_t *snap;
	snap_file *files; /* by smallest key */
	size_t nfiles;
	bool whole;       /* the files hold everything the snapshot sees */
};

static int cmp_files(const void *x, const void *y)
{
	const snap_file *a = x, *b = y;
	return bf_key_cmp(a->lo, a->lolen, b->lo, b->lolen);
}

static void free_files(bf_store_snap *s)
{
	for (size_t i = 0; i < s->nfiles; i++) {
		free(s->files[i].path);
		free(s->files[i].lo);
		free(s->files[i].hi);
	}
	free(s->files);
	s->files = NULL;
	s->nfiles = 0;
}

/* Entries in the memtables, or UINT64_MAX when RocksDB does not say. */
static uint64_t memtable_entries(rocksdb_t *db)
{
	uint64_t active, sealed;
	if (rocksdb_property_int(db, "rocksdb.num-entries-active-mem-table", &active) ||
	    rocksdb_property_int(db, "rocksdb.num-entries-imm-mem-tables", &sealed))
		return UINT64_MAX;
	return active + sealed;
}

/*
 * Lists the live table files as the snapshot's whole view when nothing
 * was written from just before the snapshot to just after the listing
 * (the sequence number did not move) and the memtables were empty: what
 * they held is flushed first. Best effort: anything unsure leaves the
 * snapshot to RocksDB's iterators.
 */
static void note_files(bf_store *st, bf_store_snap *s, uint64_t before)
{
	const rocksdb_livefiles_t *lf = NULL;

	if (!st->readonly) {
		rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
		char *e = NULL;
		rocksdb_flushoptions_set_wait(fo, 1);
		rocksdb_flush(st->db, fo, &e);
		rocksdb_flushoptions_destroy(fo);
		if (e) {
			free(e);
			return;
		}
	}
	if (memtable_entries(st->db) != 0 || !(lf = rocksdb_livefiles(st->db)))
		return;
	int n = rocksdb_livefiles_count(lf);
	s->files = calloc((size_t)(n > 0 ? n : 1), sizeof(snap_file));
	bool ok = s->files != NULL;
	for (int i = 0; ok && i < n; i++) {
		const char *cf = rocksdb_livefiles_column_family_name(lf, i);
		if (cf && strcmp(cf, "default"))
			continue;
		snap_file *f = &s->files[s->nfiles++];
		size_t lol, hil;
		const char *lo = rocksdb_livefiles_smallestkey(lf, i, &lol);
		const char *hi = rocksdb_livefiles_largestkey(lf, i, &hil);
		const char *name = rocksdb_livefiles_name(lf, i);
		size_t plen = strlen(st->path) + strlen(name) + 2;
		f->path = malloc(plen);
		f->lo = bf_memdup(lo, lol);
		f->hi = bf_memdup(hi, hil);
		f->lolen = lol;
		f->hilen = hil;
		ok = f->path && f->lo && f->hi;
		if (ok)
			snprintf(f->path, plen, "%s/%s", st->path, name[0] == '/' ? name + 1 : name);
	}
	rocksdb_livefiles_destroy(lf);
	if (!ok || rocksdb_get_latest_sequence_number(st->db) != before) {
		free_files(s);
		return;
	}
	qsort(s->files, s->nfiles, sizeof(snap_file), cmp_files);
	s->whole = true;
}

bf_store_snap *bf_store_snapshot(bf_store *st)
{
	bf_store_snap *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	uint64_t before = rocksdb_get_latest_sequence_number(st->db);
	s->snap = rocksdb_create_snapshot(st->db);
	note_files(st, s, before);
	return s;
}

void bf_store_snapshot_release(bf_store *st, bf_store_snap *snap)
{
	if (!snap)
		return;
	rocksdb_release_snapshot(st->db, snap->snap);
	free_files(snap);
	free(snap);
}

/*
 * The snapshot's files that overlap [lo, hi), in key order, into *paths
 * (borrowed strings; free the array): false when two of them overlap each
 * other (then a key may have versions in both, and RocksDB decides).
 */
static bool pick_files(const bf_store_snap *s, const void *lo, size_t lolen, const void *hi,
		       size_t hilen, const char ***paths, size_t *n)
{
	const snap_file *prev = NULL;
	*n = 0;
	*paths = malloc((s->nfiles ? s->nfiles : 1) * sizeof(**paths));
	if (!*paths)
		return false;
	for (size_t i = 0; i < s->nfiles; i++) {
		const snap_file *f = &s->files[i];
		if (lo && bf_key_cmp(f->hi, f->hilen, lo, lolen) < 0)
			continue;
		if (hi && bf_key_cmp(f->lo, f->lolen, hi, hilen) >= 0)
			continue;
		if (prev && bf_key_cmp(prev->hi, prev->hilen, f->lo, f->lolen) >= 0) {
			free(*paths);
			*paths = NULL;
			return false;
		}
		(*paths)[(*n)++] = f->path;
		prev = f;
	}
	return true;
}

int bf_store_iter_create(bf_store *st, const void *lo, size_t lolen,
			 const void *hi, size_t hilen, const bf_iter_opts *opts,
			 bf_store_iter **out, bf_err *err)
{
	bf_iter_opts def = { .fill_cache = true };
	const char **paths = NULL;
	size_t n = 0;

	if (!opts)
		opts = &def;
	if (opts->forward_only && opts->snap && opts->snap->whole)
		pick_files(opts->snap, lo, lolen, hi, hilen, &paths, &n);
	int rc = bf_rdb_iter_create(st->db, opts->snap ? opts->snap->snap : NULL, lo, lolen, hi,
				    hilen, opts->readahead, opts->fill_cache, paths, n, out, err);
	free(paths);
	return rc;
}
