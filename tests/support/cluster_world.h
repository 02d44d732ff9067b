/*
 * A cluster for CLI tests of remote and shared jobs: a real etcd, three
 * real bfill-store processes with three replicas, table sbtest1 generated
 * on it, and the commands' working directory in a scratch dir (sort files
 * go there).
 */
#ifndef BFILL_TESTS_SUPPORT_CLUSTER_WORLD_H
#define BFILL_TESTS_SUPPORT_CLUSTER_WORLD_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/support/certs.h"
#include "tests/support/etcd.h"
#include "tests/support/stores.h"

typedef struct t_world {
	t_etcd *e;
	t_stores *s;
	/* "--etcd EPS --cluster rc", and with TLS or a user every flag of it. */
	char where[8 * PATH_MAX];
	t_certs certs; /* made by t_world_start_tls only */
} t_world;

/* Starts it, skipping the test where etcd is not installed; `rows` rows
 * (seed 3) in nregions regions. */
void t_world_start(t_world *w, const char *tag, int nregions, long rows);
/* t_world_start with TLS everywhere: certificates in the scratch dir
 * (w->certs), etcd with client-certificate auth, stores that require
 * client certificates; w->where carries the client's flags for both. */
void t_world_start_tls(t_world *w, const char *tag, int nregions, long rows);
/* t_world_start with etcd's authentication on (t_etcd_start_auth): the
 * stores and w->where use --etcd-user and --etcd-password-file. */
void t_world_start_auth(t_world *w, const char *tag, int nregions, long rows);
/* Stops everything started, removes the scratch dir. */
void t_world_stop(void);
/* check-index of every replica: exit 0, three replicas each with
 * `entries` entries. */
void t_world_expect_exact(const t_world *w, const char *index, long entries);
/* `status --job id --json`, parsed (cJSON_Delete it). */
cJSON *t_world_job(const t_world *w, int64_t id);
/* Waits (60 s at most) until job id has a subtask checkpointed or done. */
void t_world_wait_import(const t_world *w, int64_t id);
/* Waits until a subtask of job id (of `worker`, NULL: anyone's) is running
 * with rows done; returns its number (-1 if it ended in between). */
int t_world_wait_busy(const t_world *w, int64_t id, const char *worker);
/* Waits until job id's state is `state`. */
void t_world_wait_state(const t_world *w, int64_t id, const char *state);
/* Stops a `bfill worker` started with t_spawn_bfillf(log, ...): SIGTERM,
 * asserts that it exits 0 and that its log says it started; *pid becomes
 * 0. Returns the log's text (the caller frees it). */
char *t_world_stop_worker(pid_t *pid, const char *log);
/* How many index keys of (table 100, index_id) replica store `id` holds. */
size_t t_world_index_keys(const t_world *w, int id, int64_t index_id);

#endif
