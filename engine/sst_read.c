/*
 * Reading SST files back (include/bfill/sst.h): a scratch RocksDB that the
 * files are moved into, read with the engine's iterator. Tuned like the
 * sort engine for data that is only ever ingested and scanned once: no
 * compaction, no write stalls, no block cache kept for later.
 * Depends on engine/rdb and util.
 */
#include "bfill/sst.h"
#include "engine/rdb.h"
#include "util/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define READ_AHEAD (2u << 20)

struct bf_sst_files {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	char dir[PATH_MAX];
};

int bf_sst_files_open(const char *dir, const char *const *paths, size_t n, bf_sst_files **out,
		      bf_err *err)
{
	bf_sst_files *f = calloc(1, sizeof(*f));
	rocksdb_ingestexternalfileoptions_t *io = NULL;
	char *e = NULL;
	int rc;

	*out = NULL;
	if (!f)
		return bf_errf(err, BF_ENOMEM, "sst reader: out of memory");
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	rc = bf_rmtree(dir, err);
	if (rc == 0)
		rc = bf_mkdirs(dir, err);
	if (rc)
		goto out;
	f->opts = rocksdb_options_create();
	bf_rdb_ingest_only_options(f->opts);
	f->db = rocksdb_open(f->opts, dir, &e);
	if (e) {
		rc = bf_rdb_open_err(e, "scratch database", dir, err);
		goto out;
	}
	io = rocksdb_ingestexternalfileoptions_create();
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	rocksdb_ingest_external_file(f->db, paths, n, io, &e);
	rocksdb_ingestexternalfileoptions_destroy(io);
	rc = bf_rdb_err(e, err, "sst reader ingest");
	if (rc)
		goto out;
	/* RocksDB copies what it cannot link (another file system); either
	 * way the original names are the caller's no more. */
	for (size_t i = 0; i < n; i++)
		unlink(paths[i]);
out:
	if (rc) {
		bf_sst_files_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

int bf_sst_files_iter(bf_sst_files *f, const void *lo, size_t lolen, const void *hi,
		      size_t hilen, bf_store_iter **out, bf_err *err)
{
	return bf_rdb_iter_create(f->db, NULL, lo, lolen, hi, hilen, READ_AHEAD, false, NULL, 0,
				  out, err);
}

void bf_sst_files_close(bf_sst_files *f)
{
	if (!f)
		return;
	if (f->db)
		rocksdb_close(f->db);
	if (f->opts)
		rocksdb_options_destroy(f->opts);
	bf_rmtree(f->dir, NULL);
	free(f);
}
