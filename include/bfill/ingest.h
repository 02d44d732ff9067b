/*
 * The ingest backend of one job (DESIGN §4-§5, §7): the sort engines of the
 * indexes being built, the writers that fill them, and the import into the
 * target under the import lock with fencing.
 *
 * Engines come in generations. Writers add index key-values to the
 * generation being filled, between bf_backend_writer_begin/end. An import
 * holds the writers only for the instant it seals that generation (new
 * engines take its place); each writer's buffered entries of the sealed
 * generation become a run of it at the writer's next begin (or, for an
 * idle writer, by the importer). Export, fence checks and ingest then run
 * on the sealed generations while the next one fills, so scanning and
 * sorting never wait on etcd or on an import. A failed import leaves its
 * generations on disk: the next import (or a resume) takes them along.
 */
#ifndef BFILL_INGEST_H
#define BFILL_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/engine.h"
#include "bfill/error.h"
#include "bfill/lock.h"
#include "bfill/sst.h"
#include "bfill/target.h"

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
	 * The last import, once every writer is finished: the writers' sorted
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
	bf_target *target;          /* the import target; not owned */
	int64_t table_id;
	int64_t job_id;
	const char *job_dir;        /* engines live in <job_dir>/idx-<id>-g<gen> */
	uint64_t first_gen;         /* oldest generation not imported yet (resume) */
	uint64_t generation;        /* generation the writers fill (resume) */
	int nindexes;
	const bf_backend_index *indexes;
	bf_compression run_compression;
	bf_compression target_compression;
	int import_threads;         /* 0 = one per core */
	uint64_t max_sst_bytes;     /* 0 = BF_IMPORT_MAX_BYTES */
	uint64_t max_sst_keys;      /* 0 = BF_IMPORT_MAX_KEYS */
	bool has_imported;          /* earlier import rounds exist (resume) */
	/* Lock names are "<lock_scope>/<index id>" (lock_scope e.g.
	 * "<store uuid>/<job id>"); NULL = "<job id>". */
	const char *lock_scope;
	bf_lock_opts lock;          /* template; one lock per index (its
				     * etcd_security is read by bf_backend_open) */
	/* Each index lock's new session lease, by index position (arg is
	 * lock.on_wait_arg); may be NULL. */
	void (*on_lease)(int ix, int64_t lease_id, void *arg);
	/* Leases of a dead earlier run, by index position (0 = none), revoked
	 * before the first acquire; may be NULL. */
	const int64_t *stale_leases;
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
	uint64_t generation;        /* the generation the writers fill */
	uint64_t first_gen;         /* the oldest generation not imported yet */
	uint64_t seal_wait_us;      /* time writers were held while sealing, in all */
} bf_backend_stats;

/* The options (and their strings) are copied; the target must outlive the
 * backend. *out is freed with bf_backend_close. */
int bf_backend_open(const bf_backend_opts *opts, bf_backend **out, bf_err *err);
/* Closes engines and locks (released); engine files stay for a resume. */
void bf_backend_close(bf_backend *b);
/* Deletes every engine directory of the backend, every generation
 * (closing them). */
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
/* Makes the writer's first run come at half its buffers. Writers fed at
 * one rate otherwise all stop to write a run at the same moment; for a
 * build expected to spill (one that fits in memory would pay a run for
 * nothing). Before the writer's first put. */
void bf_backend_writer_stagger(bf_backend_writer *w);
/* Starts adding a batch. When a generation was sealed since the writer's
 * last batch, its buffered entries are written as a run of that
 * generation first, which may fail (I/O); then the writer is not begun. */
int bf_backend_writer_begin(bf_backend_writer *w, bf_err *err);
void bf_backend_writer_end(bf_backend_writer *w);
/* Adds a key-value for index position ix (0-based); may write a run. */
int bf_backend_writer_put(bf_backend_writer *w, int ix, const void *key, size_t klen,
			  const void *val, size_t vlen, bf_err *err);
/* Sorts this writer's buffers and keeps them for BF_FLUSH_IMPORT_LAST;
 * the writer adds nothing after this. Between begin and end. */
void bf_backend_writer_finish(bf_backend_writer *w);
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
 * An import round (see bf_flush_mode): acquire every index's lock, seal
 * the generation being filled, export every sealed generation, ingest it
 * into the target with fencing (the lock's fence token goes along), commit,
 * remove the imported generations. *imported tells whether it completed.
 * `commit` (may be NULL) runs under the locks after the last ingest; the
 * backend's stats already count the round then. A round whose lock was
 * lost starts over under a new one, for at most the lock timeout. Errors:
 * BF_EDUP (dup_key set, see bf_backend_dup_key), BF_ETIMEDOUT (lock),
 * BF_ELOCKLOST, BF_EFENCED, BF_ECANCELLED, I/O errors.
 */
int bf_backend_flush(bf_backend *b, bf_flush_mode mode, bf_backend_commit_fn commit,
		     void *commit_arg, bool *imported, bf_err *err);

/* The fence tokens of the locks held now (during a commit callback: every
 * index's), into out[0..max); returns how many. */
int bf_backend_tokens(bf_backend *b, bf_fence_token *out, int max);

/* After BF_EDUP: the index position and the duplicate index key (borrowed
 * until the next flush). */
int bf_backend_dup_key(bf_backend *b, const uint8_t **key, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
