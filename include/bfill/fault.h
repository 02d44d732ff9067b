/*
 * Fault seams (in the spirit of SQLite's I/O-error injection): named points
 * in the code that tests can make fail, so error paths are exercised with
 * real components.
 *
 * A seam is armed by bf_fault_arm() or, for a whole process, by the
 * environment variable BFILL_FAULT="spec[,spec...]" where spec is
 *   name        fail on every hit
 *   name@N      fail on the N-th hit and every hit after it
 *   name@N-M    fail on hits N through M only
 *   name~MS     (a pause seam) sleep MS milliseconds at every hit
 *
 * Seams in bfill: "engine.write" (a sort-engine run write), "engine.ingest",
 * "engine.seal" (opening the next engine generation when an import seals
 * the current one), "run.nodirect" (the file system refuses O_DIRECT for
 * sort runs), "import.write", "import.fence" (a fencing check finds
 * the lock lost), "store.ingest", "lock.session" (session creation),
 * "lock.keepalive" (keepalives stop being sent), "lock.unlock" and
 * "lock.revoke" (a release that can't reach etcd), "scan.read",
 * "etcd.reply_lost.<Method>" (etcd answers the call, e.g. LeaseGrant, Txn,
 * LeaseKeepAlive, and the client reports a transport UNAVAILABLE "Socket
 * closed" instead: a write etcd applied whose outcome the client cannot
 * know); pause seams "import.stall" (before an import's fencing check)
 * and "cluster.write" (before each batch a cluster ingest sends).
 */
#ifndef BFILL_FAULT_H
#define BFILL_FAULT_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Arms seam `name` to fail from its nth hit on (nth >= 1). */
void bf_fault_arm(const char *name, long nth);
/* Arms seam `name` to fail on hits first..last only. */
void bf_fault_arm_range(const char *name, long first, long last);
/* Arms pause seam `name` to sleep ms milliseconds at every hit. */
void bf_fault_arm_pause(const char *name, long ms);
/* Disarms every seam and clears counters. */
void bf_fault_reset(void);
/* Counts a hit of seam `name`; true when it should fail now. Thread-safe. */
bool bf_fault_hit(const char *name);
/* Sleeps as long as pause seam `name` says (no-op when not armed). */
void bf_fault_pause(const char *name);

#ifdef __cplusplus
}
#endif
#endif
