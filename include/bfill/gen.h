/*
 * The sysbench-style table generator behind `bfill gen`.
 */
#ifndef BFILL_GEN_H
#define BFILL_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/sst.h"
#include "bfill/catalog.h"
#include "bfill/store.h"
#include "bfill/target.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BF_SBTEST_C_LEN 119   /* ten groups of 11 digits joined by '-' */
#define BF_SBTEST_PAD_LEN 59  /* five such groups */

typedef struct bf_gen_opts {
	const char *table;      /* default "sbtest1" */
	uint64_t rows;          /* handles 1..rows */
	uint64_t seed;
	int threads;            /* 0 = one per core */
	bf_compression compression;
	/* Called from the calling thread about every 100 ms; may be NULL. */
	void (*progress)(uint64_t rows_done, uint64_t rows_total, void *arg);
	void *progress_arg;
} bf_gen_opts;

typedef struct bf_gen_stats {
	int64_t table_id;
	uint64_t rows;
	uint64_t bytes;  /* key + value bytes loaded */
	uint64_t files;
	double seconds;
} bf_gen_stats;

/*
 * Creates the table and loads its rows as sorted SSTs ingested in one
 * atomic step. Fails with BF_EEXIST (store untouched) if the table exists.
 */
int bf_gen_sbtest(bf_store *st, const bf_gen_opts *opts, bf_gen_stats *stats,
		  bf_err *err);

/* Where a load goes: the table record into catalog, the rows into target,
 * the generator's scratch files under tmp_parent. All borrowed. */
typedef struct bf_gen_place {
	bf_catalog *catalog;
	bf_target *target;
	const char *tmp_parent;
	/* Nothing else uses tmp_parent for generator files: leftovers of a
	 * killed load there may be removed. */
	bool tmp_parent_is_ours;
	/* Refuses a load of about `bytes` that cannot fit; NULL: no check. */
	int (*check_room)(void *arg, uint64_t bytes, const char *to_do, bf_err *err);
	void *check_arg;
} bf_gen_place;

/* The place of a local store: its catalog, the target t (borrowed), scratch
 * files in the store's directory and its free-space check. */
void bf_gen_place_store(bf_store *st, bf_target *t, bf_gen_place *pl);

/* bf_gen_sbtest into any place (a cluster, say). */
int bf_gen_sbtest_in(const bf_gen_place *pl, const bf_gen_opts *opts, bf_gen_stats *stats,
		     bf_err *err);

/* The deterministic contents of row `handle` for a table of `rows` rows:
 * k in [1, rows], c and pad as digit groups (not NUL-terminated). */
void bf_gen_sbtest_row(uint64_t seed, int64_t handle, uint64_t rows, int64_t *k,
		       char c[BF_SBTEST_C_LEN], char pad[BF_SBTEST_PAD_LEN]);

#ifdef __cplusplus
}
#endif
#endif
