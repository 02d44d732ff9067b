/*
 * The ingest backend of one job (DESIGN §4-§5): the sort engines of the
 * indexes being built, the writers that fill them, and flush/import into
 * the target under the import lock with fencing.
 *
 * Writers add index key-values between bf_backend_writer_begin/end; a
 * flush takes the backend exclusively, so at that instant every writer's
 * buffer goes to the engines and everything written before is durable.
 * The import lock is acquired *before* the backend is taken, so scanning
 * and sorting never wait on etcd.
 */
#ifndef BFILL_INGEST_H
#define BFILL_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/engine.h"
#include "bfill/error.h"
#include "bfill/lock.h"
#include "bfill/sst.h"
#include "bfill/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_backend bf_backend;
typedef struct bf_backend_writer bf_backend_writer;

#define BF_IMPORT_MAX_BYTES (96ULL << 20)  /* TiKV region split size */
#define BF_IMPORT_MAX_KEYS 1280000ULL      /* TiKV region split keys */
#define BF_BACKEND_MAX_INDEXES 8

typedef enum bf_flush_mode {
	BF_FLUSH_IMPORT = 0,       /* writers' buffers to the engines, then import */
	/*
	 * The last import, once every writer is sealed: the writers' sorted
	 * buffers are merged straight into the target files instead of going
	 * through a run first. If the import fails they are written as runs,
	 * so the data is durable for a resume all the same.
	 */
	BF_FLUSH_IMPORT_LAST,
} bf_flush_mode;

typedef struct bf_backend_index {
	int64_t index_id;
	bool unique;
} bf_backend_index;

typedef struct bf_backend_opts {
	bf_store *store;            /* the import target; not owned */
	int64_t table_id;
	int64_t job_id;
	const char *job_dir;        /* engines live in <job_dir>/idx-<id>-g<gen> */
	uint64_t generation;        /* engine generation to open (resume) */
	int nindexes;
	const bf_backend_index *indexes;
	bf_compression run_compression;
	bf_compression target_compression;
	int import_threads;         /* 0 = one per core */
	uint64_t max_sst_bytes;     /* 0 = BF_IMPORT_MAX_BYTES */
	uint64_t max_sst_keys;      /* 0 = BF_IMPORT_MAX_KEYS */
	bool has_imported;          /* earlier import rounds exist (resume) */
	bf_lock_opts lock;          /* template; one lock per index */
} bf_backend_opts;

/* Statistics of the backend's imports so far. */
typedef struct bf_backend_stats {
	uint64_t imports;           /* completed import rounds */
	uint64_t runs;              /* sorted runs written to the engines */
	uint64_t imported_keys, imported_bytes, sst_files;
	uint64_t lock_acquires;
	uint64_t lock_wait_ms;      /* total time spent acquiring */
	uint64_t lock_wait_max_ms;
	uint64_t lock_release_ms;   /* total time spent releasing (unlock + revoke) */
	uint64_t fence_losses;      /* imports restarted because a lock was lost */
	uint64_t generation;        /* current engine generation */
} bf_backend_stats;

/* The options (and their strings) are copied; the store must outlive the
 * backend. *out is freed with bf_backend_close. */
int bf_backend_open(const bf_backend_opts *opts, bf_backend **out, bf_err *err);
/* Closes engines and locks (released); engine files stay for a resume. */
void bf_backend_close(bf_backend *b);
/* Deletes every engine directory of the backend (closing them). */
int bf_backend_remove_engines(bf_backend *b, bf_err *err);
void bf_backend_stats_get(bf_backend *b, bf_backend_stats *out);
/* Key-value bytes added by the writers since the last import (in runs or
 * still in their buffers): what --import-every measures. */
uint64_t bf_backend_pending_bytes(bf_backend *b);
/* Makes a waiting lock acquire or a running import stop soon. */
void bf_backend_cancel(bf_backend *b);

/* Writers: one per writer thread, each with its own sort buffers (budget
 * bytes in all). *out is freed with bf_backend_writer_destroy, before the
 * backend is closed. */
int bf_backend_writer_create(bf_backend *b, size_t budget, bf_backend_writer **out, bf_err *err);
void bf_backend_writer_destroy(bf_backend_writer *w);
void bf_backend_writer_begin(bf_backend_writer *w);
void bf_backend_writer_end(bf_backend_writer *w);
/* Adds a key-value for index position ix (0-based); may write a run. */
int bf_backend_writer_put(bf_backend_writer *w, int ix, const void *key, size_t klen,
			  const void *val, size_t vlen, bf_err *err);
/* Writes this writer's buffers as runs (between begin/end or alone). */
int bf_backend_writer_flush(bf_backend_writer *w, bf_err *err);
/* Sorts this writer's buffers and keeps them for BF_FLUSH_IMPORT_LAST;
 * the writer adds nothing after this. */
void bf_backend_writer_seal(bf_backend_writer *w);
/* Completed local flushes of this writer: data it added before its n-th
 * flush is durable once this counter reaches n. */
uint64_t bf_backend_writer_flushes(bf_backend_writer *w);

/*
 * Called by an import while it still holds every index's lock and just
 * after its fencing check succeeded; the final import's callback is where
 * the caller marks the indexes public. Non-zero fails the import.
 */
typedef int (*bf_backend_commit_fn)(void *arg, bf_err *err);

/*
 * Flush and import (see bf_flush_mode): acquire every index's lock, take
 * the writers, export, ingest with fencing, commit, start new engines.
 * *imported tells whether it completed. `commit` (may be NULL) runs under
 * the locks after the last ingest. Errors: BF_EDUP (dup_key set, see bf_backend_dup_key),
 * BF_ETIMEDOUT (lock), BF_ECANCELLED, I/O errors.
 */
int bf_backend_flush(bf_backend *b, bf_flush_mode mode, bf_backend_commit_fn commit,
		     void *commit_arg, bool *imported, bf_err *err);

/* After BF_EDUP: the index position and the duplicate index key (borrowed
 * until the next flush). */
int bf_backend_dup_key(bf_backend *b, const uint8_t **key, size_t *len);

/* Deletes every entry of the job's indexes from the target. */
int bf_backend_delete_imported(bf_backend *b, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
