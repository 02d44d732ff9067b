/*
 * Inside the loader (pipeline/load.c), for the CSV load beside it, and
 * the scratch directories it shares with the generator (pipeline/gen.c).
 */
#ifndef BFILL_PIPELINE_LOAD_IMPL_H
#define BFILL_PIPELINE_LOAD_IMPL_H

#include "bfill/gen.h"
#include "bfill/table.h"

#include <stddef.h>

/* bf_loader_add for a row whose every value is known to fit its column
 * already (bf_column_parse_value checked it, and NULLs went only into
 * nullable columns): the CSV load checks each value once, not twice. */
int loader_add_checked(bf_loader *ld, const bf_datum *vals, bf_err *err);

/*
 * A new scratch directory for a load into pl, in out: under pl's
 * tmp_parent, "bfill-<tag>.<pid>.tmp" (".<pid>.<n>.tmp" for this process's
 * later ones, so loads in one process never share one). Where the parent
 * is ours (a store this process holds), those of other processes are
 * removed first: they belong to loads that were killed. The caller removes
 * its own with bf_rmtree.
 */
int place_scratch_dir(const bf_gen_place *pl, const char *tag, char *out, size_t cap,
		      bf_err *err);

#endif
