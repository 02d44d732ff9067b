/*
 * Whether a job runs, seen from any machine of a cluster: the process that
 * runs job N keeps "<root>running/<N, 20 digits>" (its host and pid) in
 * etcd under a lease it keeps alive. A process that dies, however it dies,
 * stops the keepalives and the key goes with the lease (a TTL later). The
 * local live lock (bfill/job_live.h) says the same only on the machine that
 * runs the job.
 *
 * Announcing never fails a job: while etcd cannot be reached the announcer
 * keeps trying in the background, and puts the key back once it can.
 * Depends on: bfill/etcd.h.
 */
#ifndef BFILL_PRESENCE_H
#define BFILL_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/etcd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_presence bf_presence;

/* Starts announcing job_id (ttl_s: the lease, at least 2 s). etcd is
 * borrowed and must outlive *out. BF_ENOMEM, or a thread that cannot start. */
int bf_presence_begin(bf_etcd *etcd, const char *root, int64_t job_id, int ttl_s,
		      bf_presence **out, bf_err *err);
/* The same for any key: a worker's "<root>worker/<name>". who is what
 * the key holds. */
int bf_presence_begin_key(bf_etcd *etcd, const char *key, const char *who, int ttl_s,
			  bf_presence **out, bf_err *err);
/* The lease the key is under now, 0 while there is none (not granted yet,
 * or lost: not renewed for the TTL, however long etcd takes to say so). *down_since_ms (may be
 * NULL) gets the wall-clock time since when etcd has not answered a
 * keepalive or a grant, 0 while it does. */
int64_t bf_presence_lease(bf_presence *p, int64_t *down_since_ms);
/* Stops announcing and takes the key away (revoking the lease). NULL is
 * allowed. */
void bf_presence_end(bf_presence *p);

/* 1 when some process announces job_id (who gets its "host pid N", may be
 * NULL), 0 when none does, negative when etcd cannot tell. */
int bf_presence_check(bf_etcd *etcd, const char *root, int64_t job_id, char *who, size_t cap,
		      bf_err *err);

#ifdef __cplusplus
}
#endif

#endif
