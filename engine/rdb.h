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
/*
 * bf_rdb_err for a failed open of the database in dir. A want of space is
 * told as such, with the free bytes, rather than as whichever file RocksDB
 * could not write; kind names the database for the user ("store").
 */
int bf_rdb_open_err(char *errptr, const char *kind, const char *dir, bf_err *err);

/* Iterator over [lo, hi) of any RocksDB database (the store's or an
 * engine's); see bf_store_iter_create for the contract. direct (may be
 * NULL): the ndirect table files, disjoint and in key order, that hold
 * everything the iterator may see at snap; they are read without
 * RocksDB (engine/sst_direct.h) for as long as they can be, or until
 * a seek, seek_last or prev. */
int bf_rdb_iter_create(rocksdb_t *db, const rocksdb_snapshot_t *snap,
		       const void *lo, size_t lolen, const void *hi, size_t hilen,
		       size_t readahead, bool fill_cache, const char *const *direct,
		       size_t ndirect, bf_store_iter **out, bf_err *err);

/* True while the iterator reads table files directly (for tests). */
bool bf_rdb_iter_direct(const bf_store_iter *it);

/*
 * Keeps RocksDB's info log (the LOG file in the database directory) from
 * ever being written; see rdb.c for why that is safe and why it matters.
 */
void bf_rdb_silence_info_log(rocksdb_options_t *opts);

/*
 * Options for a database that only receives ingested files and is scanned
 * (the sort engine, the scratch reader): created if missing, no automatic
 * compaction, no level-0 stalls, every file kept open, one background job,
 * a silent info log.
 */
void bf_rdb_ingest_only_options(rocksdb_options_t *opts);

/* Maps a bf_compression to RocksDB's constant. */
int bf_rdb_compression(int c);

#endif
