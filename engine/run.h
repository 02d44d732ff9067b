/*
 * Run files of the sort engine: one sorted buffer written as a sequence
 * of checksummed blocks of entries ([u16 key len][u16 value len][u8 bytes
 * shared with the key before in the block][the rest of the key][value];
 * a block's first entry shares none), then an index of each block's first
 * key, the last key and a fixed trailer. Read back in order by a cursor
 * that rebuilds each key and leaves values in place in its read buffer.
 * Internal to engine/.
 */
#ifndef BFILL_ENGINE_RUN_H
#define BFILL_ENGINE_RUN_H

#include <aio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/engine.h"

/* What a run's trailer says; path and last_key are owned. */
typedef struct run_info {
	char *path;
	uint64_t size, keys, raw_bytes, nblocks, index_off, index_len;
	uint32_t codec, max_block; /* max_block: largest block, header included */
	uint32_t index_crc;
	uint8_t *last_key;
	size_t last_len;
} run_info;

/* Called with every key chosen as a split sample. */
typedef int (*run_sample_fn)(void *arg, const uint8_t *key, size_t klen);

/*
 * Writes the sorted buffer b (identical neighbours once) to tmp, syncs it
 * and renames it to final (then syncs the directory), so a run is either
 * whole under its name or absent. Every every-th key goes to sample.
 * *out is filled (free with run_info_free).
 */
int run_write(const char *tmp, const char *final, const bf_sortbuf *b, bf_compression codec,
	      size_t every, run_sample_fn sample, void *arg, run_info *out, bf_err *err);

/* The same, entry by entry: keys must come in order. A writer is freed by
 * run_writer_finish (which leaves the run under final) or
 * run_writer_abort (which leaves nothing). */
typedef struct run_writer run_writer;
int run_writer_open(const char *tmp, bf_compression codec, size_t every, run_sample_fn sample,
		    void *arg, run_writer **out, bf_err *err);
int run_writer_add(run_writer *rw, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
		   bf_err *err);
int run_writer_finish(run_writer *rw, const char *final, run_info *out, bf_err *err);
void run_writer_abort(run_writer *rw);

/* Reads and checks the trailer of the run at path. */
int run_info_load(const char *path, run_info *out, bf_err *err);
void run_info_free(run_info *ri);

/* A position in one run within [lo, hi). Fields after `valid` are private. */
typedef struct run_cursor {
	bool valid;
	const uint8_t *k, *v;
	size_t kl, vl;

	const run_info *ri;
	int fd;
	uint8_t *mem[2];          /* head room + a chunk each, read in turns */
	size_t head, chunk;
	int cur;                  /* the buffer being parsed */
	struct aiocb cb;          /* the read in flight into the other one */
	bool inflight;
	uint64_t next_off;        /* file offset of the next chunk */
	uint8_t *buf, *raw;       /* = mem[cur]; decompressed block (compressed runs) */
	uint8_t *keys;            /* two key buffers, used in turns */
	bool block_first;         /* the next entry is its block's first */
	size_t raw_cap, len, pos; /* buf[pos, len) holds file bytes not yet parsed */
	uint64_t block, block_end;
	const uint8_t *p, *pend;  /* next entry, end of the current block's entries */
	const uint8_t *hi;
	size_t hilen;
	bool check_hi;            /* the current block may hold keys >= hi */
} run_cursor;

/*
 * Positions c at the first key >= lo (NULL: the first) of ri, reading
 * readahead bytes at a time (at least a block), the next chunk while the
 * last is parsed: two buffers of that size. hi (may be NULL) is
 * borrowed for the cursor's life.
 */
int run_cursor_open(run_cursor *c, const run_info *ri, const void *lo, size_t lolen,
		    const void *hi, size_t hilen, size_t readahead, bf_err *err);
/* Steps to the next key; !c->valid at the end. The value pointer stays
 * good until a step loads a new block (see run_cursor_at_edge); the key
 * pointer through the next step, unless that step loads a new block (a
 * rebuilt key goes to the key buffer the key before it does not use). */
int run_cursor_next(run_cursor *c, bf_err *err);
/* True when the next step loads a new block, moving the buffer. */
static inline bool run_cursor_at_edge(const run_cursor *c) { return c->p >= c->pend; }
void run_cursor_close(run_cursor *c);

#endif
