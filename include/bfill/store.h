/*
 * The store: a RocksDB directory holding raw TiDB keys (record keys with
 * row-v2 values, index keys) plus bfill's catalog under a prefix of its own
 * ("m" keys; TiDB data keys all start with 't').
 *
 * One process opens a store for writing (RocksDB's LOCK file); any number
 * may open it read-only at the same time, e.g. `bfill status`.
 */
#ifndef BFILL_STORE_H
#define BFILL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_store bf_store;
typedef struct bf_store_snap bf_store_snap;
typedef struct bf_store_iter bf_store_iter;
typedef struct bf_store_batch bf_store_batch;

enum {
	BF_STORE_CREATE = 1 << 0,   /* create the store if DIR is absent or empty */
	BF_STORE_READONLY = 1 << 1, /* no writes; does not take the lock */
	/* Opened for writing to give space back (cancel, drop-index): no
	 * BF_STORE_MIN_FREE floor, since the work frees more than it takes. */
	BF_STORE_RECLAIM = 1 << 2,
};

/*
 * Free bytes a store's file system must have before bfill opens the store
 * for writing: at open RocksDB writes a new MANIFEST (preallocated in 4 MiB
 * steps), an OPTIONS file and a flush of its log, and a command then writes
 * a few catalog records.
 */
#define BF_STORE_MIN_FREE (8ULL << 20)

/* Catalog keys start with this; it sorts before every 't' data key. */
#define BF_CATALOG_PREFIX "mbfill/"

/*
 * Opens DIR. Errors: BF_ENOTFOUND (no store, without CREATE), BF_ENOTSTORE
 * (a directory that is not a bfill store), BF_ELOCKED (open for writing in
 * another process), BF_ENOSPC (opening for writing, neither READONLY nor
 * RECLAIM, with less than BF_STORE_MIN_FREE free; or too little for
 * RocksDB to open at all). A read-only open writes nothing, so it works on
 * a full disk.
 * *out is freed with bf_store_close.
 */
int bf_store_open(const char *dir, unsigned flags, bf_store **out, bf_err *err);
void bf_store_close(bf_store *st);
/* The store's directory as an absolute path; owned by the store. */
const char *bf_store_path(const bf_store *st);
/*
 * The store's UUID ("8-4-4-4-12" lowercase hex), made when the store is
 * created and kept in its catalog; a store from before UUIDs gets one the
 * first time it is opened for writing. "" for such a store opened
 * read-only. Owned by the store.
 */
const char *bf_store_uuid(const bf_store *st);
bool bf_store_readonly(const bf_store *st);
/*
 * 0 when the store's file system has `need` + BF_STORE_MIN_FREE bytes
 * free; otherwise BF_ENOSPC with one line saying what is free and what
 * bfill needs `to_do` (e.g. "load 1000 rows"). A check, not a reservation.
 */
int bf_store_check_free(const bf_store *st, uint64_t need, const char *to_do, bf_err *err);

/* Point read. *val is malloc'd and owned by the caller (free()); returns
 * BF_ENOTFOUND when the key is absent. */
int bf_store_get(bf_store *st, const void *key, size_t klen, char **val,
		 size_t *vlen, bf_err *err);
/* Durable (synced) single put / delete, for catalog records. */
int bf_store_put(bf_store *st, const void *key, size_t klen, const void *val,
		 size_t vlen, bf_err *err);
int bf_store_delete(bf_store *st, const void *key, size_t klen, bf_err *err);
/*
 * Deletes every key in [lo, hi) durably and gives their space back:
 *  1. SST files that lie wholly inside the range are dropped. This writes
 *     nothing but a MANIFEST record, so it frees space even on a full
 *     disk, and it makes room for the next step.
 *  2. A synced range tombstone deletes every remaining key in the range.
 *  3. The range is compacted, so files that straddle its ends are rewritten
 *     without the deleted keys. Best effort: it is skipped when the file
 *     system lacks room to rewrite them, and RocksDB reports no error from
 *     it; the keys are gone either way and later compactions free the rest.
 * When it returns 0 every key in the range is gone, for good. Readers may
 * see the range half deleted while it runs, snapshots included (step 1
 * ignores them), so callers delete only ranges nobody reads as a whole:
 * an index that is not public, or one being dropped.
 */
int bf_store_delete_range(bf_store *st, const void *lo, size_t lolen,
			  const void *hi, size_t hilen, bf_err *err);

/* Write batches: applied atomically and synced by bf_store_batch_commit.
 * A batch is freed with bf_store_batch_destroy (also after a commit). */
bf_store_batch *bf_store_batch_create(void);
void bf_store_batch_put(bf_store_batch *b, const void *key, size_t klen,
			const void *val, size_t vlen);
void bf_store_batch_delete(bf_store_batch *b, const void *key, size_t klen);
void bf_store_batch_delete_range(bf_store_batch *b, const void *lo, size_t lolen,
				 const void *hi, size_t hilen);
int bf_store_batch_commit(bf_store *st, bf_store_batch *b, bf_err *err);
void bf_store_batch_destroy(bf_store_batch *b);

/*
 * Ingests finished SST files (moved, not copied, when on the same file
 * system). All files go in one atomic step: either every key becomes
 * visible or none does.
 */
int bf_store_ingest(bf_store *st, const char *const *paths, size_t n, bf_err *err);

/*
 * Turns RocksDB's background compaction off (a node in import mode: many
 * ingests in a row, compacted once afterwards) or back on. The setting
 * lasts until changed or the store is closed.
 */
int bf_store_set_auto_compaction(bf_store *st, bool on, bf_err *err);
/* Files in level 0 now: ingests of overlapping files pile up there, and
 * RocksDB slows, then stops, writes when there are too many. */
int bf_store_level0_files(bf_store *st, uint64_t *n, bf_err *err);

/* Approximate on-disk bytes in [lo, hi), from SST files only (data still
 * in a memtable is not counted). */
int bf_store_approx_size(bf_store *st, const void *lo, size_t lolen,
			 const void *hi, size_t hilen, uint64_t *bytes, bf_err *err);

/* A consistent point-in-time view; release with bf_store_snapshot_release. */
bf_store_snap *bf_store_snapshot(bf_store *st);
void bf_store_snapshot_release(bf_store *st, bf_store_snap *snap);

typedef struct bf_iter_opts {
	const bf_store_snap *snap; /* NULL: the latest state */
	size_t readahead;          /* bytes; 0 = RocksDB's default */
	bool fill_cache;           /* false for one-pass scans */
	/* The caller mostly steps forward: on a snapshot, the store may then
	 * read its table files directly, handing over to RocksDB at the
	 * first seek, seek_last or prev. */
	bool forward_only;
} bf_iter_opts;

/*
 * Iterator over [lo, hi) (hi NULL = to the end), positioned at the first
 * key. The bounds are copied. *out is freed with bf_store_iter_destroy.
 */
int bf_store_iter_create(bf_store *st, const void *lo, size_t lolen,
			 const void *hi, size_t hilen, const bf_iter_opts *opts,
			 bf_store_iter **out, bf_err *err);
bool bf_store_iter_valid(const bf_store_iter *it);
void bf_store_iter_next(bf_store_iter *it);
void bf_store_iter_seek(bf_store_iter *it, const void *key, size_t klen);
/* Positions at the last key below the upper bound. */
void bf_store_iter_seek_last(bf_store_iter *it);
/* Moves to the key before the current one (invalid before the lower
 * bound). */
void bf_store_iter_prev(bf_store_iter *it);
/* Borrowed until the next move of the iterator. */
const uint8_t *bf_store_iter_key(const bf_store_iter *it, size_t *len);
const uint8_t *bf_store_iter_value(const bf_store_iter *it, size_t *len);
/* 0, or the error that made the iterator invalid. */
int bf_store_iter_status(const bf_store_iter *it, bf_err *err);
void bf_store_iter_destroy(bf_store_iter *it);

/* The underlying RocksDB handle, for experiments that need more than this
 * interface. Owned by the store. Typed void to keep rocksdb/c.h out. */
void *bf_store_rocksdb(bf_store *st);

#ifdef __cplusplus
}
#endif
#endif
