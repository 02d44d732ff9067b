/*
 * Internal: the four-stage add-index pipeline of DESIGN §2.
 *
 *   task source ─► N readers ─► M writers ─► sink (the calling thread)
 *
 * Row batches circulate pool → reader → writer → sink → pool; the fixed
 * pool is the back-pressure. The first error cancels every stage; all
 * threads are joined before bf_pipe_run returns.
 */
#ifndef BFILL_PIPELINE_PIPE_H
#define BFILL_PIPELINE_PIPE_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/catalog.h"
#include "bfill/ingest.h"
#include "bfill/target.h"

typedef struct bf_pipe_index {
	int64_t id;
	bool unique;
	int ncols;
	int cols[BF_MAX_INDEX_COLUMNS]; /* positions in the table's columns */
	int prefix[BF_MAX_INDEX_COLUMNS]; /* bf_index.prefix */
	bool has_prefix;
} bf_pipe_index;

typedef struct bf_pipe_hooks {
	void *arg;
	/* About every 100 ms from the sink: rows written so far (absolute),
	 * and whether an import round is running. */
	void (*progress)(void *arg, uint64_t rows_done, const char *phase, bool importing);
	/* Everything before next_key is durable in the engines. */
	int (*flushed)(void *arg, const uint8_t next_key[BF_RECORD_KEY_LEN], uint64_t rows,
		       bf_err *err);
	/* Called under the import locks after a fenced ingest: everything
	 * before next_key is in the store; `final` for the last import. */
	int (*imported)(void *arg, const uint8_t next_key[BF_RECORD_KEY_LEN], uint64_t rows,
			bool final, bf_err *err);
	/* Polled by the sink; true stops the job with BF_ECANCELLED. */
	bool (*interrupted)(void *arg);
} bf_pipe_hooks;

/* The longest start_key / end_key. */
#define BF_SCAN_BOUND_MAX 256

typedef struct bf_pipe_opts {
	bf_target *target;        /* the table scan source */
	const bf_table *table;
	int nindexes;
	const bf_pipe_index *indexes;
	int readers, writers;
	size_t sort_budget;       /* split between the writers */
	bf_backend *backend;
	uint64_t import_every;    /* import whenever this many bytes are pending */
	const uint8_t *start_key; /* NULL: the table's first record */
	size_t start_len;         /* 0: BF_RECORD_KEY_LEN */
	/* Where the scan stops (exclusive); NULL: the table's last record. A
	 * job's part (a subtask) scans [start_key, end_key). */
	const uint8_t *end_key;
	size_t end_len;
	uint64_t base_rows;       /* rows already done before start_key */
	bf_pipe_hooks hooks;
} bf_pipe_opts;

typedef struct bf_pipe_stats {
	uint64_t rows;            /* rows processed in this run */
	uint64_t tasks;
	double scan_seconds;      /* until the last row was sorted */
	double import_seconds;    /* the final import */
} bf_pipe_stats;

int bf_pipe_run(const bf_pipe_opts *opts, bf_pipe_stats *stats, bf_err *err);

/* The [lo, hi) record key range of a table (hi is the "_s" prefix). */
void bf_pipe_record_range(int64_t table_id, uint8_t lo[BF_RECORD_PREFIX_LEN],
			  uint8_t hi[BF_RECORD_PREFIX_LEN]);

#endif
