/*
 * The local sort engine (DESIGN §4).
 *
 * A bf_sortbuf holds key-values up to a memory budget and sorts them (radix
 * sort on an 8-byte key prefix taken after the prefix every key shares,
 * then a comparison sort of ties). A bf_engine is a directory of sorted
 * runs, each a sort buffer written front to back as checksummed blocks of
 * plain entries (no memtable, no compaction, no per-key index), and read
 * back merged in key order by the import (bf_merge).
 */
#ifndef BFILL_ENGINE_H
#define BFILL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/probe.h"
#include "bfill/sst.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sort buffer ---- */

typedef struct bf_sortbuf bf_sortbuf;

/* A buffer whose entries plus sort bookkeeping stay within budget bytes.
 * The memory is allocated once and reused by every run. *out is freed
 * with bf_sortbuf_destroy. */
int bf_sortbuf_create(size_t budget, bf_sortbuf **out, bf_err *err);
void bf_sortbuf_destroy(bf_sortbuf *b);
/* Copies one key-value in. False when it does not fit: write a run, then
 * add again. Keys and values are limited to 64 KiB each. */
bool bf_sortbuf_add(bf_sortbuf *b, const void *key, size_t klen,
		    const void *val, size_t vlen);
size_t bf_sortbuf_count(const bf_sortbuf *b);
/* Sorts by key (bytewise); equal keys keep no particular order. */
void bf_sortbuf_sort(bf_sortbuf *b);
/* Entry i in sorted order (after bf_sortbuf_sort); pointers are borrowed
 * until the next reset. */
void bf_sortbuf_get(const bf_sortbuf *b, size_t i, const uint8_t **key,
		    size_t *klen, const uint8_t **val, size_t *vlen);
void bf_sortbuf_reset(bf_sortbuf *b);
/* Lets the current fill use only bytes of the budget (entries already in
 * stay); the next reset gives the whole budget back. */
void bf_sortbuf_limit(bf_sortbuf *b, size_t bytes);
/* First sorted position whose key is >= key (count when none). */
size_t bf_sortbuf_lower_bound(const bf_sortbuf *b, const void *key, size_t klen);
/* Hints that the entries after i (sorted order) will be read soon: call
 * at each step of an in-order read. */
void bf_sortbuf_prefetch(const bf_sortbuf *b, size_t i);

/* ---- engine ---- */

typedef struct bf_engine bf_engine;

typedef struct bf_engine_opts {
	bf_compression run_compression; /* compression of run blocks */
} bf_engine_opts;

/* Opens (creating if needed) the engine in dir. *out is freed with
 * bf_engine_close, which keeps the files; bf_engine_remove deletes them. */
int bf_engine_open(const char *dir, const bf_engine_opts *opts, bf_engine **out,
		   bf_err *err);
void bf_engine_close(bf_engine *e);
/* Closes (if e is not NULL) and deletes the engine directory. */
int bf_engine_remove(bf_engine *e, const char *dir, bf_err *err);
/* Owned by the engine. */
const char *bf_engine_dir(const bf_engine *e);

/*
 * Sorts the buffer, writes it as one run (identical keys are written
 * once; the run is synced and appears whole or not at all) and resets the
 * buffer. Safe to call from several threads with different buffers. An
 * empty buffer is a no-op.
 */
int bf_engine_write_run(bf_engine *e, bf_sortbuf *b, bf_err *err);

/*
 * Merges runs into longer ones until at most max_runs are left, so that a
 * merge of them opens a bounded number of files and read buffers however
 * small the memory budget was. Not concurrent with bf_engine_write_run or
 * an open merge of e. stop (may be NULL) non-zero: BF_ECANCELLED.
 */
int bf_engine_reduce(bf_engine *e, size_t max_runs, volatile int *stop, bf_err *err);

/* Run file bytes, keys and runs held. */
uint64_t bf_engine_bytes(const bf_engine *e);
uint64_t bf_engine_keys(const bf_engine *e);
uint64_t bf_engine_runs(const bf_engine *e);

/*
 * Up to n-1 split keys cutting the keys of engines[0..nengines), plus
 * those of the sorted buffers extra[0..nextra), into n parts of about
 * equal count, from samples taken while runs were written. strip is the
 * number of trailing bytes to drop from each split key (so that keys that
 * differ only in that suffix stay in one part). *keys is an array of
 * malloc'd strings owned by the caller (free each and the array); *nkeys
 * may be < n-1.
 */
int bf_engine_split_keys(bf_engine *const *engines, int nengines, bf_sortbuf *const *extra,
			 int nextra, int n, size_t strip, uint8_t ***keys, size_t **lens, int *nkeys,
			 bf_err *err);

/* ---- merge: runs and buffers in key order ---- */

typedef struct bf_merge bf_merge;

/*
 * Every run of engines[0..nengines) and every sorted buffer
 * extra[0..nextra) over [lo, hi) (NULL bounds = open), merged in key
 * order; a key present in several sources (or twice in a buffer) comes
 * once. The engines and buffers must not change while it is open (runs
 * added after the open are not seen); bounds are borrowed. *out is freed
 * with bf_merge_close. A damaged run is BF_ECORRUPT naming the file.
 */
int bf_merge_open(bf_engine *const *engines, int nengines, bf_sortbuf *const *extra, int nextra,
		  const void *lo, size_t lolen, const void *hi, size_t hilen, bf_merge **out,
		  bf_err *err);
bool bf_merge_valid(const bf_merge *m);
/* The current entry (valid m only); pointers are borrowed until the next
 * bf_merge_next. val and vlen may be NULL. */
void bf_merge_get(const bf_merge *m, const uint8_t **key, size_t *klen, const uint8_t **val,
		  size_t *vlen);
/* Steps on; an error (I/O, a damaged run) ends the merge. */
int bf_merge_next(bf_merge *m, bf_err *err);
void bf_merge_close(bf_merge *m);

/* ---- export: engine → target SSTs ---- */

/* Called for each finished target SST; the callee takes the file (moves
 * or deletes it). A non-zero return stops the export with that error. */
typedef int (*bf_export_fn)(const char *path, uint64_t keys, uint64_t bytes,
			    void *arg, bf_err *err);

typedef struct bf_export_opts {
	const void *lo, *hi;       /* engine key range; NULL = open */
	size_t lolen, hilen;
	const char *out_dir;       /* where target SSTs are written */
	const char *file_tag;      /* distinguishes concurrent exports' files */
	uint64_t max_bytes;        /* cut a file at this many KV bytes */
	uint64_t max_keys;         /* ... or this many keys */
	bf_compression compression;
	/*
	 * Unique-index engines store each key with an 8-byte handle suffix so
	 * that rows with equal values don't overwrite each other. With
	 * handle_suffix set, the suffix is dropped on export, and two adjacent
	 * keys equal without it are a duplicate: BF_EDUP, with the key copied
	 * to dup_key (caller buffer of dup_key_cap bytes, may be NULL).
	 */
	bool handle_suffix;
	uint8_t *dup_key;
	size_t dup_key_cap, dup_key_len;
	/*
	 * Sorted buffers merged with the engine's keys (the last writer
	 * buffers, which need not go through a run first). Not owned.
	 */
	bf_sortbuf *const *extra;
	int nextra;
	/*
	 * With handle_suffix: asks, in sorted batches, whether keys are in the
	 * target already (earlier imports of the same index); one there with
	 * another value (another row) is a duplicate. NULL to skip.
	 */
	int (*probe)(void *arg, bf_probe *probes, size_t n, bf_err *err);
	void *probe_arg;
	bf_export_fn on_file;
	void *arg;
	volatile int *stop;        /* non-zero: stop early with BF_ECANCELLED */
} bf_export_opts;

/*
 * Walks [lo, hi) of engines[0..nengines) (the generations of one index
 * waiting for import) and the extra buffers in key order (a key present in
 * several sources is written once), writes target SSTs within the caps and
 * hands each to on_file. Stats (may be NULL) get the totals.
 */
int bf_engine_export(bf_engine *const *engines, int nengines, bf_export_opts *opts,
		     uint64_t *keys_out, uint64_t *bytes_out, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
