/*
 * What the merge needs of an engine's insides. Internal to engine/.
 */
#ifndef BFILL_ENGINE_IMPL_H
#define BFILL_ENGINE_IMPL_H

#include "bfill/engine.h"
#include "engine/run.h"

/* The engine's runs now, as a malloc'd array the caller frees; the runs
 * themselves belong to the engine and stay valid until it is closed. */
int engine_runs(bf_engine *e, run_info ***out, size_t *n, bf_err *err);

/* bf_merge_open over the given runs (borrowed) instead of engines'. */
int merge_open_runs(run_info *const *runs, size_t nruns, bf_sortbuf *const *extra, int nextra,
		    const void *lo, size_t lolen, const void *hi, size_t hilen, bf_merge **out,
		    bf_err *err);

#endif
