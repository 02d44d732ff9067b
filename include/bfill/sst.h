/*
 * Sorted-string-table writer (RocksDB's block-based table format, files an
 * ingest takes) used by the generator and the import's target files.
 */
#ifndef BFILL_SST_H
#define BFILL_SST_H

#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bf_compression {
	BF_COMPRESS_NONE = 0,
	BF_COMPRESS_LZ4,
	BF_COMPRESS_ZSTD,
} bf_compression;

/* Parses "none", "lz4" or "zstd". */
int bf_compression_parse(const char *name, bf_compression *out);
/* Static name; not to be freed. */
const char *bf_compression_name(bf_compression c);

typedef struct bf_sst_writer bf_sst_writer;

/* Creates path (it must not exist yet). *out is freed with
 * bf_sst_writer_destroy. block_size 0 means the default (16 KiB). */
int bf_sst_writer_open(const char *path, bf_compression c, size_t block_size,
		       bf_sst_writer **out, bf_err *err);
/* Keys must be strictly increasing (bytewise). */
int bf_sst_writer_put(bf_sst_writer *w, const void *key, size_t klen,
		      const void *val, size_t vlen, bf_err *err);
/* Finishes the file; *file_size (may be NULL) gets its size on disk. */
int bf_sst_writer_finish(bf_sst_writer *w, uint64_t *file_size, bf_err *err);
uint64_t bf_sst_writer_keys(const bf_sst_writer *w);
/* Key + value bytes added so far. */
uint64_t bf_sst_writer_raw_bytes(const bf_sst_writer *w);
/* Frees the writer; an unfinished file is removed. NULL is allowed. */
void bf_sst_writer_destroy(bf_sst_writer *w);

/*
 * Reading finished SST files back. RocksDB's C API has no SST reader, so
 * the files are ingested (moved) into a scratch database of their own and
 * read through it: one set of files, any number of iterators at once, from
 * any threads.
 */
typedef struct bf_sst_files bf_sst_files;

/*
 * Creates the scratch database in dir (removed first if it is there) and
 * moves paths[0..n) into it in one step; the files must not overlap. On
 * success the files are the set's and their original names are gone; on
 * failure they stay where they were. *out is freed with
 * bf_sst_files_close, which removes dir.
 */
int bf_sst_files_open(const char *dir, const char *const *paths, size_t n, bf_sst_files **out,
		      bf_err *err);
/* Iterator over the files' keys in [lo, hi) (NULL bounds = open), at the
 * first key; freed with bf_store_iter_destroy before the set is closed. */
int bf_sst_files_iter(bf_sst_files *f, const void *lo, size_t lolen, const void *hi,
		      size_t hilen, bf_store_iter **out, bf_err *err);
/* Closes the scratch database and removes its directory. NULL is allowed. */
void bf_sst_files_close(bf_sst_files *f);

#ifdef __cplusplus
}
#endif
#endif
