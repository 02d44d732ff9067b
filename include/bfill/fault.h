/*
 * Fault seams (in the spirit of SQLite's I/O-error injection): named points
 * in the code that tests can make fail, so error paths are exercised with
 * real components.
 *
 * A seam is armed by bf_fault_arm() or, for a whole process, by the
 * environment variable BFILL_FAULT="name[@N][,name[@N]...]": the seam fails
 * on its N-th hit (default 1) and every hit after it.
 *
 * Seams in bfill: "engine.write" (a sort-engine run write), "engine.ingest",
 * "import.write", "store.ingest", "lock.session" (session creation),
 * "lock.keepalive" (keepalives stop being sent), "scan.read".
 */
#ifndef BFILL_FAULT_H
#define BFILL_FAULT_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Arms seam `name` to fail from its nth hit on (nth >= 1). */
void bf_fault_arm(const char *name, long nth);
/* Disarms every seam and clears counters. */
void bf_fault_reset(void);
/* Counts a hit of seam `name`; true when it should fail now. Thread-safe. */
bool bf_fault_hit(const char *name);

#ifdef __cplusplus
}
#endif
#endif
