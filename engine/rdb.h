/*
 * Internal helpers shared by the store and the sort engine, both of which
 * are RocksDB databases: error mapping and the iterator wrapper.
 * Not a public interface.
 */
#ifndef BFILL_ENGINE_RDB_H
#define BFILL_ENGINE_RDB_H

#include <rocksdb/c.h>
#include <stdbool.h>

#include "bfill/error.h"
#include "bfill/store.h"

/*
 * Converts a RocksDB error string (freed here) into a bf code and message
 * "what: rocksdb text". Returns 0 when errptr is NULL.
 */
int bf_rdb_err(char *errptr, bf_err *err, const char *what);

/* Iterator over [lo, hi) of any RocksDB database (the store's or an
 * engine's); see bf_store_iter_create for the contract. */
int bf_rdb_iter_create(rocksdb_t *db, const rocksdb_snapshot_t *snap,
		       const void *lo, size_t lolen, const void *hi, size_t hilen,
		       size_t readahead, bool fill_cache, bf_store_iter **out,
		       bf_err *err);

/* Maps a bf_compression to RocksDB's constant. */
int bf_rdb_compression(int c);

#endif
