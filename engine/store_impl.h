/*
 * Internal: the store's handle, shared by engine/store.c (opening, keys,
 * files) and engine/store_snap.c (snapshots and scans). Not a public
 * interface.
 */
#ifndef BFILL_ENGINE_STORE_IMPL_H
#define BFILL_ENGINE_STORE_IMPL_H

#include <limits.h>
#include <rocksdb/c.h>
#include <stdbool.h>

#include "bfill/catalog.h"
#include "bfill/store.h"
#include "util/util.h" /* BF_UUID_LEN */

struct bf_store {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *table_opts;
	rocksdb_writeoptions_t *wsync;
	rocksdb_readoptions_t *ro;
	bool readonly;
	char path[PATH_MAX];
	char uuid[BF_UUID_LEN + 1];
	bf_catalog *catalog; /* the catalog records in this store */
};

#endif
