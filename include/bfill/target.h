/*
 * The import target (DESIGN §5): where a job reads its table from and
 * where its index entries go. One interface, several implementations: the
 * local store (bf_target_local_create, the embedded default), a cluster of
 * store nodes, or a researcher's own. The pipeline, the ingest backend,
 * cancel and check-index reach storage only through it.
 *
 * An implementation fills a bf_target_ops table (the model is the lock's
 * ops table) and hands it to bf_target_create with its own state. Every
 * operation returns 0 or a negative BF_E* code with the details in err.
 * Operations may be called from several threads at once.
 */
#ifndef BFILL_TARGET_H
#define BFILL_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/fence.h"
#include "bfill/probe.h"
#include "bfill/store.h"
#include "bfill/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_target bf_target;
typedef struct bf_target_snap bf_target_snap;
typedef struct bf_target_iter bf_target_iter;

/* A list of keys; bf_keys_free releases what it holds. */
typedef struct bf_keys {
	uint8_t **keys; /* each malloc'd */
	size_t *lens;
	size_t n;
} bf_keys;

void bf_keys_free(bf_keys *k);

typedef struct bf_scan_opts {
	const bf_target_snap *snap; /* NULL: the latest state */
	size_t readahead;           /* bytes; 0 = the implementation's default */
	bool fill_cache;            /* false for one-pass scans */
	bool forward_only;          /* mostly next(): see bf_iter_opts */
} bf_scan_opts;

/* Iterator over a key range, in key order. Keys and values are borrowed
 * until the next move. */
typedef struct bf_target_iter_ops {
	bool (*valid)(void *it);
	void (*next)(void *it);
	void (*seek_last)(void *it); /* the last key below the upper bound */
	const uint8_t *(*key)(void *it, size_t *len);
	const uint8_t *(*value)(void *it, size_t *len);
	int (*status)(void *it, bf_err *err); /* 0, or why it stopped */
	void (*destroy)(void *it);
} bf_target_iter_ops;

typedef struct bf_target_stats {
	uint64_t ingests, ingested_files;
	uint64_t probes;           /* keys asked about through exists */
	uint64_t probe_keys_read;  /* keys the target read to answer them */
	uint64_t fence_refusals;   /* ingests refused for a stale token */
} bf_target_stats;

typedef struct bf_target_ops {
	const char *kind; /* "local", "cluster", ... */
	/*
	 * Keys inside (lo, hi) where ranges must be cut so that no ingested
	 * file spans two of the target's units (regions); none for a single
	 * store. *out is the caller's (bf_keys_free).
	 */
	int (*split_points)(void *impl, const void *lo, size_t lolen, const void *hi,
			    size_t hilen, bf_keys *out, bf_err *err);
	/*
	 * Ingests sorted, non-overlapping SST files in one atomic step (every
	 * key becomes visible or none does); the target takes the files over.
	 * token: the import lock's fence token; a target refuses one lower than
	 * the highest it has ingested under for the same key (BF_EFENCED).
	 */
	int (*ingest)(void *impl, const char *const *paths, size_t n,
		      const bf_fence_token *token, bf_err *err);
	/* Answers a batch of probes, sorted by key. */
	int (*exists)(void *impl, bf_probe *probes, size_t n, bf_err *err);
	/* Deletes every key in [lo, hi) durably and gives the space back. */
	int (*delete_range)(void *impl, const void *lo, size_t lolen, const void *hi,
			    size_t hilen, bf_err *err);
	/* Approximate bytes stored in [lo, hi), for planning only. */
	int (*approx_size)(void *impl, const void *lo, size_t lolen, const void *hi,
			   size_t hilen, uint64_t *bytes, bf_err *err);
	/* A consistent read view (NULL when the target has none: scans then
	 * read the latest state) and its release. */
	bf_target_snap *(*snapshot)(void *impl);
	void (*snapshot_release)(void *impl, bf_target_snap *snap);
	/*
	 * The table scan source: an iterator over [lo, hi) (hi NULL = to the
	 * end), positioned at the first key. *ops and *it describe it.
	 */
	int (*scan)(void *impl, const void *lo, size_t lolen, const void *hi, size_t hilen,
		    const bf_scan_opts *opts, const bf_target_iter_ops **ops, void **it,
		    bf_err *err);
	void (*stats)(void *impl, bf_target_stats *out); /* may be NULL */
	void (*destroy)(void *impl);                     /* may be NULL */
	/*
	 * on: ingest, exists and scans stop waiting and retrying soon and
	 * fail with BF_ECANCELLED (a job told to stop must not sit out a
	 * retry budget); off: they work again. delete_range ignores it, so a
	 * rollback still runs. May be NULL (a target whose calls never wait).
	 */
	void (*cancel)(void *impl, bool on);
	/* What the target's calls are waiting out now (a store node busy or
	 * down), in out; false when nothing. May be NULL. */
	bool (*waiting)(void *impl, char *out, size_t n);
} bf_target_ops;

/* ops->waiting's answer; false (out "") for a target without one. */
bool bf_target_waiting(bf_target *t, char *out, size_t n);

/* Wraps an implementation; ops is borrowed (usually static), impl is owned
 * by the target from now on (ops->destroy frees it). */
int bf_target_create(const bf_target_ops *ops, void *impl, bf_target **out, bf_err *err);
/* NULL is allowed. */
void bf_target_destroy(bf_target *t);
/* The implementation's state, as given to bf_target_create. */
void *bf_target_impl(const bf_target *t);
const char *bf_target_kind(const bf_target *t);

/*
 * The local store as a target: ingest is RocksDB's IngestExternalFile into
 * the store, fenced through a record per lock key in the store's catalog;
 * delete_range drops whole files first so the space comes back even on a
 * full disk. st is borrowed and must outlive the target.
 */
int bf_target_local_create(bf_store *st, bf_target **out, bf_err *err);

typedef struct bf_cluster bf_cluster; /* include/bfill/cluster.h */

typedef struct bf_target_cluster_opts {
	/* Scratch space: each ingest reads its files back through a database
	 * of its own in here (removed when the ingest ends); the files are
	 * moved in, which costs nothing on their own file system. Required. */
	const char *work_dir;
	int concurrency;          /* regions written and ingested at once; 0 = 4 */
	size_t batch_bytes;       /* keys + values per Write batch; 0 = 256 KiB */
	uint64_t write_max_bytes; /* one Write stream's share of a region; */
	uint64_t write_max_keys;  /* more goes in further rounds; 0 = 96 MiB,
				   * 1.28M keys (TiDB's region split size) */
	/* How long an operation keeps retrying failures with no success in
	 * between before it gives up (BF_EUNAVAIL naming the store when one
	 * stayed down); 0 = 300 s. */
	int64_t total_timeout_ms;
	int rpc_timeout_ms;       /* each call or stream exchange; 0 = 30 s */
	int backoff_base_ms;      /* full-jitter backoff ceilings; 0 = 50 ms, */
	int backoff_cap_ms;       /* 0 = 3 s */
	uint32_t scan_page_keys;  /* pairs per KvScan page; 0 = 4096 */
	uint64_t commit_ts;       /* of the written pairs; 0 = from the clock */
	/* Scans read each region's leader (0), or its read_replica-th peer
	 * (1-based), so that check-index can verify every replica. */
	int read_replica;
	/* TLS to the store nodes (client role, bfill/tls.h: --cacert,
	 * --cert, --key); NULL: plain text. Read by
	 * bf_target_cluster_create, borrowed for that call only. */
	const bf_tls *tls;
} bf_target_cluster_opts;

/*
 * A cluster of store nodes as a target (DESIGN §5, docs/cluster.md): the
 * client side of TiKV's ImportSST and KV protocols. Region boundaries are
 * the split points; an ingest writes each region's keys to every peer and
 * ingests them on the leader (MultiIngest, with the fence token as
 * `bfill-fence` metadata), several regions at once, retrying region errors
 * and nodes that are down as DESIGN §5 says. Atomic per region: every key
 * of a region becomes visible or none does. exists, delete_range and scan
 * go to each region's leader; the nodes keep no MVCC, so there is no
 * snapshot. c is borrowed and must outlive the target; o is copied.
 */
int bf_target_cluster_create(bf_cluster *c, const bf_target_cluster_opts *o, bf_target **out,
			     bf_err *err);

int bf_target_split_points(bf_target *t, const void *lo, size_t lolen, const void *hi,
			   size_t hilen, bf_keys *out, bf_err *err);
int bf_target_ingest(bf_target *t, const char *const *paths, size_t n,
		     const bf_fence_token *token, bf_err *err);
int bf_target_exists(bf_target *t, bf_probe *probes, size_t n, bf_err *err);
int bf_target_delete_range(bf_target *t, const void *lo, size_t lolen, const void *hi,
			   size_t hilen, bf_err *err);
int bf_target_approx_size(bf_target *t, const void *lo, size_t lolen, const void *hi,
			  size_t hilen, uint64_t *bytes, bf_err *err);
bf_target_snap *bf_target_snapshot(bf_target *t);
void bf_target_snapshot_release(bf_target *t, bf_target_snap *snap);
void bf_target_stats_get(bf_target *t, bf_target_stats *out);
/* ops->cancel, when the target has one. */
void bf_target_cancel(bf_target *t, bool on);

/* Scan iterators. *out is freed with bf_target_iter_destroy. */
int bf_target_scan(bf_target *t, const void *lo, size_t lolen, const void *hi, size_t hilen,
		   const bf_scan_opts *opts, bf_target_iter **out, bf_err *err);
bool bf_target_iter_valid(const bf_target_iter *it);
void bf_target_iter_next(bf_target_iter *it);
void bf_target_iter_seek_last(bf_target_iter *it);
const uint8_t *bf_target_iter_key(const bf_target_iter *it, size_t *len);
const uint8_t *bf_target_iter_value(const bf_target_iter *it, size_t *len);
int bf_target_iter_status(const bf_target_iter *it, bf_err *err);
void bf_target_iter_destroy(bf_target_iter *it);

#ifdef __cplusplus
}
#endif
#endif
