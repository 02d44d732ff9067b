/*
 * Helpers for tests that run add-index jobs in-process through the library:
 * a scratch world (a store and a sort dir), option defaults, builds
 * asserted to succeed or to fail. Failures end the test through Criterion
 * assertions.
 */
#ifndef BFILL_TEST_WORLD_H
#define BFILL_TEST_WORLD_H

#include <stdbool.h>

#include "bfill/job.h"
#include "bfill/store.h"

/* A test's world: a scratch dir with a store and a sort dir in it. */
typedef struct world {
	char *store_dir, *sort_dir, *check_dir; /* malloc'd */
	bf_store *st;
} world;

/* Resets fault seams, makes the scratch dir and opens (creates) the store. */
void world_open(world *w);
void world_close(world *w);
/* Defaults for a build in w: 2 workers, 96 MiB, w's sort dir. */
bf_add_index_opts opts_for(const world *w, const char *table);
void add_spec(bf_add_index_opts *o, const char *name, const char *columns, bool unique);
/* Builds and asserts success: job done, every index public, nothing left
 * in the sort dir. */
void build_ok(const world *w, const bf_add_index_opts *o, bf_add_index_result *res);
/* Builds and asserts failure with code want (one line in err); returns the
 * job. */
bf_job build_fails(const world *w, const bf_add_index_opts *o, int want, bf_err *err,
		   bf_add_index_result *res);
/* Job records in the store. */
int count_jobs(bf_store *st);

#endif
