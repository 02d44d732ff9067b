/*
 * Internal: the ingest backend's state, shared by ingest/backend.c (engines,
 * generations, writers) and ingest/import.c (import rounds). Not a public
 * interface.
 *
 * Locking, outermost first:
 *  - flush_lock: writers hold it shared for a batch; sealing a generation
 *    and detaching imported ones hold it exclusively, for an instant;
 *  - a writer's mu: its buffers, taken by the writer for a batch and by the
 *    importer when it writes an idle writer's entries of a sealed
 *    generation;
 *  - mu: the writers list and the stats.
 * Only the importer thread changes generations (gen, sealed engines), so it
 * may read them without a lock.
 */
#ifndef BFILL_INGEST_BACKEND_IMPL_H
#define BFILL_INGEST_BACKEND_IMPL_H

#include "bfill/ingest.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#define MAX_WRITERS 128
#define DUP_KEY_MAX 4096
#define HANDLE_SUFFIX 8

typedef struct bf_backend bf_backend;

typedef struct backend_index {
	bf_backend *b;
	int pos;
	int64_t id;
	bool unique;
	bf_engine *engine;   /* generation b->gen, being filled */
	bf_engine **sealed;  /* generations first_gen .. gen-1, waiting for import */
	size_t nsealed, sealed_cap;
	bf_lock *lock;
	bool held;
	bf_fence_token token; /* while held */
	char lock_name[BF_FENCE_KEY_MAX];
} backend_index;

struct bf_backend_writer {
	bf_backend *b;
	bf_sortbuf *bufs[BF_BACKEND_MAX_INDEXES];
	pthread_mutex_t mu;
	uint64_t gen; /* the generation its buffered entries belong to */
	atomic_uint_fast64_t flushes;
	uint64_t added; /* bytes added in the current begin/end span */
	size_t buf_budget;
};

struct bf_backend {
	bf_backend_opts o;
	char job_dir[PATH_MAX];
	char lock_endpoints[512], lock_prefix[256];
	int n;
	backend_index idx[BF_BACKEND_MAX_INDEXES];
	atomic_uint_fast64_t gen; /* the generation being filled */
	uint64_t first_gen;       /* oldest generation not imported */
	pthread_rwlock_t flush_lock;
	pthread_mutex_t mu; /* writers list and stats */
	bf_backend_writer *writers[MAX_WRITERS];
	int nwriters;
	bf_backend_stats stats;
	atomic_int cancelled;
	atomic_uint_fast64_t pending; /* bytes added since the last seal */
	atomic_uint_fast64_t runs;    /* runs written, all engines and generations */
	int dup_index;
	uint8_t dup_key[DUP_KEY_MAX];
	size_t dup_len;
};

/* The engine of index i's generation gen (the one being filled or a
 * sealed one); NULL when gen is not on hand. */
bf_engine *backend_engine(bf_backend *b, int i, uint64_t gen);

/*
 * Seals the generation being filled: new engines take its place (the
 * writers are held only while the pointers change), and every writer's
 * buffered entries of it are written as runs, by the writer itself at its
 * next begin or here for an idle one. With flush_writers false (the last
 * import) the writers' buffers stay in memory for the export to merge.
 */
int backend_seal(bf_backend *b, bool flush_writers, bf_err *err);
/* Writes every writer's buffered entries as runs of their generations. */
int backend_flush_writers(bf_backend *b, bf_err *err);
/* Removes every sealed generation (after its import committed). */
void backend_drop_sealed(bf_backend *b);

#endif
