/*
 * Index verification behind `bfill check-index`, independent of the build
 * path: expected entries are recomputed from the rows with the codec,
 * sorted with a throwaway sort engine and merge-compared with the index
 * range of the store, all on one snapshot.
 */
#ifndef BFILL_CHECK_H
#define BFILL_CHECK_H

#include <stdint.h>

#include "bfill/catalog.h"
#include "bfill/error.h"
#include "bfill/store.h"
#include "bfill/target.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BF_CHECK_EXAMPLES 5

typedef struct bf_check_result {
	uint64_t rows;          /* rows scanned */
	uint64_t expected;      /* entries the rows call for */
	uint64_t found;         /* entries in the index range */
	uint64_t missing;       /* expected, not found */
	uint64_t extra;         /* found, not expected */
	uint64_t wrong_value;   /* found with another value */
	int nexamples;
	char examples[BF_CHECK_EXAMPLES][320]; /* "missing <hex key>" ... */
	char index_state[16];
} bf_check_result;

/*
 * Compares index `index` of `table` (from st's catalog) with the rows, both
 * read from target (NULL = the store itself). tmp_dir (created and
 * removed) holds the throwaway engine; mem bounds its sort buffer.
 * Returns 0 when the comparison ran (equal or not: look at the counts).
 * An index that is not public has no readable entries yet: BF_ESTATE,
 * naming the job building it.
 */
int bf_check_index(bf_store *st, bf_target *target, const char *table, const char *index,
		   const char *tmp_dir, uint64_t mem, bf_check_result *res, bf_err *err);
/* The same with the table's record from catalog and the data read from
 * target (a cluster's, say; both borrowed). */
int bf_check_index_in(bf_catalog *cat, bf_target *target, const char *table, const char *index,
		      const char *tmp_dir, uint64_t mem, bf_check_result *res, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
