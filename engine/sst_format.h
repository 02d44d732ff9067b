/*
 * RocksDB's block-based table format, the facts both bfill's direct reader
 * (engine/sst_direct.c) and its table writer (engine/sst_build.c) need:
 * the footer, the block trailer and its checksums, the entry types. The
 * layout: data blocks one after another from offset 0, then the index,
 * the properties, the metaindex and a 53-byte footer (checksum type, the
 * metaindex's and the index's offset and size as varints padded to 40
 * bytes, the format version, a magic number). Every block is followed by
 * a compression type byte and a 4-byte checksum of both. Internal to
 * engine/.
 */
#ifndef BFILL_ENGINE_SST_FORMAT_H
#define BFILL_ENGINE_SST_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util/crc32c.h"

#define SST_FOOTER_LEN 53
#define SST_FOOTER_HANDLES 40      /* bytes after the checksum type holding two handles */
#define SST_TABLE_MAGIC 0x88e241b785f4cff7ull
#define SST_BLOCK_TRAILER 5        /* compression type + checksum */
#define SST_CK_CRC32C 1
#define SST_CK_XXH3 4
#define SST_COMPRESS_NONE 0
#define SST_COMPRESS_LZ4 4
#define SST_COMPRESS_LZ4HC 5
#define SST_TYPE_VALUE 1
#define SST_KEY_TRAILER 8          /* sequence number << 8 | type, little-endian */
#define SST_INDEX_BINARY_SEARCH 0
#define SST_PROPERTIES "rocksdb.properties"
#define SST_GLOBAL_SEQNO "rocksdb.external_sst_file.global_seqno"

/* A growable byte buffer (len is the writer's; the reader keeps its own). */
typedef struct sst_bytes {
	uint8_t *p;
	size_t len, cap;
} sst_bytes;

/* Grows b to hold at least total bytes, keeping what it holds; false when
 * out of memory (b unchanged). */
static inline bool sst_bytes_reserve(sst_bytes *b, size_t total)
{
	if (total <= b->cap)
		return true;
	size_t c = b->cap ? b->cap : 256;
	while (c < total)
		c *= 2;
	uint8_t *p = realloc(b->p, c);
	if (!p)
		return false;
	b->p = p;
	b->cap = c;
	return true;
}

/*
 * The checksum stored after a block of size bytes at p, its compression
 * type byte at p[size] included. CRC-32C is stored masked (rotated and
 * offset, so a checksum of bytes holding checksums stays unrelated);
 * XXH3's low half has the type byte mixed in by a multiply.
 */
static inline uint32_t sst_block_checksum(int type, const uint8_t *p, size_t size)
{
	if (type == SST_CK_XXH3)
		return ((uint32_t)XXH3_64bits(p, size)) ^ ((uint32_t)p[size] * 0x6b9083d9u);
	uint32_t c = bf_crc32c(0, p, size + 1);
	return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

#endif
