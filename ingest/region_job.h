/*
 * Internal: region jobs, the cluster target's ingest (TiDB's local backend
 * does the same, pkg/lightning/backend/local/region_job.go). The sorted
 * data is cut into one job per region; a small pool of threads runs them.
 * A job writes its keys to every peer of its region (ImportSST.Write, the
 * same stream to each), keeps the leader's SST metas and ingests them on
 * the leader (MultiIngest, with the fence token), retrying as
 * ingest/cluster_retry.h says: again on the new leader after NotLeader,
 * written again after a node lost its upload, re-cut into one job per new
 * region after EpochNotMatch. A region with more data than one Write may
 * carry is written and ingested in several rounds.
 *
 * Depends on: ingest/tikv_client, ingest/cluster_retry, engine (the
 * scratch reader of the files), bfill/cluster.h.
 */
#ifndef BFILL_INGEST_REGION_JOB_H
#define BFILL_INGEST_REGION_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/cluster.h"
#include "bfill/fence.h"
#include "bfill/sst.h"
#include "ingest/cluster_retry.h"
#include "ingest/region_range.h"
#include "ingest/tikv_client.h"

/* ---- running the jobs of one ingest ---- */

typedef struct bf_region_jobs_opts {
	bf_cluster *cluster;          /* borrowed */
	bf_tikv_client *client;       /* borrowed */
	bf_sst_files *files;          /* the data, borrowed */
	const bf_fence_token *token;  /* may be NULL */
	int workers;                  /* threads, >= 1 */
	size_t batch_bytes;           /* keys + values per Write batch */
	uint64_t write_max_bytes;     /* per Write stream: a region with */
	uint64_t write_max_keys;      /* more is written in rounds */
	uint64_t commit_ts;           /* != 0 */
	bf_retry_opts retry;
} bf_region_jobs_opts;

typedef struct bf_region_jobs_stats {
	uint64_t jobs;        /* region jobs run, re-split pieces included */
	uint64_t ingests;     /* MultiIngests that succeeded */
	uint64_t keys, bytes; /* ingested (each once, not per replica) */
	uint64_t retries;     /* failures retried */
} bf_region_jobs_stats;

/*
 * Writes and ingests every key of o->files in raw [lo, hi) (hi NULL:
 * unbounded), region by region, and returns once every region has taken
 * its part or one failed for good (then the others are stopped and the
 * first final error is returned). stats may be NULL.
 */
int bf_region_jobs_run(const bf_region_jobs_opts *o, const void *lo, size_t lolen,
		       const void *hi, size_t hilen, bf_region_jobs_stats *stats, bf_err *err);

/*
 * The regions of raw [lo, hi) from the cache, cut into pieces: *regions
 * (malloc'd, the caller frees it) and *pieces (malloc'd, pointing into
 * *regions and the bounds given). A cache with gaps is refreshed and asked
 * again under rt's policy until it covers the range or rt gives up.
 */
int bf_region_pieces(bf_retry *rt, const void *lo, size_t lolen, const void *hi, size_t hilen,
		     bf_region **regions, bf_range_piece **pieces, size_t *npieces, bf_err *err);

#endif
