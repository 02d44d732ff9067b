/*
 * Inside the loader (pipeline/load.c), for the CSV load beside it.
 */
#ifndef BFILL_PIPELINE_LOAD_IMPL_H
#define BFILL_PIPELINE_LOAD_IMPL_H

#include "bfill/table.h"

/* bf_loader_add for a row whose every value is known to fit its column
 * already (bf_column_parse_value checked it, and NULLs went only into
 * nullable columns): the CSV load checks each value once, not twice. */
int loader_add_checked(bf_loader *ld, const bf_datum *vals, bf_err *err);

#endif
