/*
 * SST writer: bfill's own (engine/sst_build.c) for uncompressed and LZ4
 * files, RocksDB's SstFileWriter for zstd, which bfill does not link
 * itself. Depends on engine/rdb and engine/sst_build.
 */
#include "bfill/sst.h"
#include "engine/rdb.h"
#include "engine/sst_build.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Hand written bytes to writeback every this many, so the sync at finish
 * waits for the last piece only (RocksDB's C API cannot set
 * bytes_per_sync for an SstFileWriter; writeback is per file, so a
 * second descriptor does it). */
#define SYNC_EVERY (8u << 20)
#define DEFAULT_BLOCK (16u << 10)

struct bf_sst_writer {
	sstb *own;                /* NULL: RocksDB's writer */
	rocksdb_sstfilewriter_t *w;
	rocksdb_envoptions_t *env;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *table_opts;
	char *path;
	int sync_fd;              /* -1: none */
	uint64_t keys, raw_bytes, synced;
	bool finished;
};

int bf_compression_parse(const char *name, bf_compression *out)
{
	if (!strcmp(name, "none"))
		*out = BF_COMPRESS_NONE;
	else if (!strcmp(name, "lz4"))
		*out = BF_COMPRESS_LZ4;
	else if (!strcmp(name, "zstd"))
		*out = BF_COMPRESS_ZSTD;
	else
		return BF_EINVAL;
	return 0;
}

const char *bf_compression_name(bf_compression c)
{
	switch (c) {
	case BF_COMPRESS_LZ4: return "lz4";
	case BF_COMPRESS_ZSTD: return "zstd";
	default: return "none";
	}
}

int bf_sst_writer_open(const char *path, bf_compression c, size_t block_size,
		       bf_sst_writer **out, bf_err *err)
{
	bf_sst_writer *w = calloc(1, sizeof(*w));
	char *e = NULL;
	int rc = 0;

	*out = NULL;
	if (!w || !(w->path = strdup(path))) {
		free(w);
		return bf_errf(err, BF_ENOMEM, "sst writer: out of memory");
	}
	w->sync_fd = -1;
	if (c != BF_COMPRESS_ZSTD) {
		rc = sstb_open(path, c == BF_COMPRESS_LZ4, block_size ? block_size : DEFAULT_BLOCK,
			       &w->own, err);
		goto out;
	}
	w->env = rocksdb_envoptions_create();
	w->opts = rocksdb_options_create();
	w->table_opts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_size(w->table_opts,
						   block_size ? block_size : DEFAULT_BLOCK);
	/* Whole-key bloom filters cost time on every key and bfill only scans
	 * ranges, so none is built. */
	rocksdb_options_set_block_based_table_factory(w->opts, w->table_opts);
	rocksdb_options_set_compression(w->opts, bf_rdb_compression(c));
	w->w = rocksdb_sstfilewriter_create(w->env, w->opts);
	rocksdb_sstfilewriter_open(w->w, path, &e);
	if (e) {
		rc = bf_rdb_err(e, err, path);
		goto out;
	}
	w->sync_fd = open(path, O_RDONLY | O_CLOEXEC);
out:
	if (rc) {
		bf_sst_writer_destroy(w);
		return rc;
	}
	*out = w;
	return 0;
}

int bf_sst_writer_put(bf_sst_writer *w, const void *key, size_t klen,
		      const void *val, size_t vlen, bf_err *err)
{
	char *e = NULL;
	int rc = 0;
	if (w->own)
		rc = sstb_add(w->own, key, klen, val, vlen, err);
	else
		rocksdb_sstfilewriter_put(w->w, key, klen, val, vlen, &e);
	if (e)
		return bf_rdb_err(e, err, w->path);
	if (rc)
		return rc;
	w->keys++;
	w->raw_bytes += klen + vlen;
	if (w->sync_fd >= 0 && w->raw_bytes - w->synced >= SYNC_EVERY) {
		sync_file_range(w->sync_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		w->synced = w->raw_bytes;
	}
	return 0;
}

int bf_sst_writer_finish(bf_sst_writer *w, uint64_t *file_size, bf_err *err)
{
	char *e = NULL;
	if (w->own) {
		int rc = sstb_finish(w->own, file_size, err);
		w->finished = rc == 0;
		return rc;
	}
	rocksdb_sstfilewriter_finish(w->w, &e);
	if (e)
		return bf_rdb_err(e, err, w->path);
	w->finished = true;
	if (file_size)
		rocksdb_sstfilewriter_file_size(w->w, file_size);
	return 0;
}

uint64_t bf_sst_writer_keys(const bf_sst_writer *w) { return w->keys; }
uint64_t bf_sst_writer_raw_bytes(const bf_sst_writer *w) { return w->raw_bytes; }

void bf_sst_writer_destroy(bf_sst_writer *w)
{
	if (!w)
		return;
	if (w->sync_fd >= 0)
		close(w->sync_fd);
	sstb_destroy(w->own);
	if (w->w)
		rocksdb_sstfilewriter_destroy(w->w);
	if (!w->finished && w->path)
		unlink(w->path);
	if (w->opts)
		rocksdb_options_destroy(w->opts);
	if (w->table_opts)
		rocksdb_block_based_options_destroy(w->table_opts);
	if (w->env)
		rocksdb_envoptions_destroy(w->env);
	free(w->path);
	free(w);
}
