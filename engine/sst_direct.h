/*
 * Reading the store's table files directly, for scans that only step
 * forward: RocksDB's block-based table format (format versions 2 to 5,
 * CRC-32C or XXH3 block checksums, no compression or LZ4, binary-search
 * index) parsed block by block, without RocksDB's iterators. A table scan
 * spends most of its time in those iterators' per-entry work; the entries
 * themselves are a few varints and a copy of a key suffix.
 *
 * Only plain puts are read: a deletion, a merge or anything else stops the
 * cursor (SSTD_STOP) before the entry, and the caller goes on with RocksDB
 * from there; so do files or blocks in a layout this reader does not know.
 * Which files may be read this way, for which snapshot, is the store's
 * business (engine/store.c). Internal to engine/.
 */
#ifndef BFILL_ENGINE_SST_DIRECT_H
#define BFILL_ENGINE_SST_DIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"

/* Not an error: go on with RocksDB from the key after the last one read. */
#define SSTD_STOP 1

/*
 * A cursor over the user keys in [lo, hi) (hi NULL: to the end) of files
 * paths[0..n), which must hold disjoint key ranges in this order. The
 * bounds and paths are copied. Returns 0 with *out set, SSTD_STOP when a
 * file cannot be read this way (none opened), or an error.
 */
typedef struct sstd_cursor sstd_cursor;
int sstd_cursor_open(const char *const *paths, size_t n, const void *lo, size_t lolen,
		     const void *hi, size_t hilen, sstd_cursor **out, bf_err *err);
/*
 * Steps to the next entry: 0 with *valid set (false at the end), SSTD_STOP
 * (nothing more from this cursor; the last key returned stays readable),
 * or an error (a damaged file, an I/O error). The key and value are good
 * until the next step.
 */
int sstd_cursor_next(sstd_cursor *c, bool *valid, bf_err *err);
const uint8_t *sstd_cursor_key(const sstd_cursor *c, size_t *len);
const uint8_t *sstd_cursor_value(const sstd_cursor *c, size_t *len);
void sstd_cursor_close(sstd_cursor *c);

#endif
