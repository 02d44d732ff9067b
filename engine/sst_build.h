/*
 * bfill's own writer of RocksDB block-based table files, behind
 * bf_sst_writer for uncompressed and LZ4 files. RocksDB's SstFileWriter
 * spent a fifth of a small-key index build's CPU on per-key work this
 * format does not need (a string copy of every key, property collectors,
 * size estimates); this writer appends each entry to its block in place.
 *
 * What it writes is what an ingest and every RocksDB reader expect of an
 * external file: format version 5, XXH3 block checksums, keys with
 * sequence number 0 and type "value", data blocks of the given size with a
 * restart point every 16 keys, an index of user keys (one entry per data
 * block: its last key and position), and the properties an ingest reads
 * (external file version 2, a global sequence number field, a session
 * identity of its own for every file, so no two files share cache keys).
 * Internal to engine/.
 */
#ifndef BFILL_ENGINE_SST_BUILD_H
#define BFILL_ENGINE_SST_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"

typedef struct sstb sstb;

/* Creates (or truncates) path. *out is freed with sstb_destroy, which
 * leaves the file: removing an unfinished one is the caller's. */
int sstb_open(const char *path, bool lz4, size_t block_size, sstb **out, bf_err *err);
/* Keys strictly increasing (bytewise), else BF_EINVAL and nothing added. */
int sstb_add(sstb *b, const void *key, size_t klen, const void *val, size_t vlen, bf_err *err);
/* Writes the index, properties and footer and syncs the file; a file of
 * no keys is refused (BF_EINVAL), as RocksDB refuses to ingest one. */
int sstb_finish(sstb *b, uint64_t *file_size, bf_err *err);
void sstb_destroy(sstb *b);

#endif
