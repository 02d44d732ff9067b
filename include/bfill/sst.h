/*
 * Sorted-string-table writer (RocksDB SstFileWriter) used by the generator,
 * the sort engine's runs and the import's target files.
 */
#ifndef BFILL_SST_H
#define BFILL_SST_H

#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"

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

#ifdef __cplusplus
}
#endif
#endif
