/*
 * Where a command works: a local store (--store DIR) or a cluster of store
 * nodes (--etcd EPS --cluster NAME, DESIGN §9). Either way the command
 * gets a job environment: a catalog, an import target, the scope of lock
 * keys, a directory for the live locks of running jobs and a default sort
 * directory.
 */
#ifndef BFILL_CMD_PLACE_H
#define BFILL_CMD_PLACE_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bfill/catalog.h"
#include "bfill/cluster.h"
#include "bfill/etcd.h"
#include "bfill/job.h"
#include "bfill/store.h"
#include "bfill/target.h"
#include "cmd/cli.h"

typedef struct cli_where {
	const char *store;   /* --store DIR */
	const char *etcd;    /* --etcd EPS */
	const char *cluster; /* --cluster NAME */
	bf_etcd_security etcd_security; /* --etcd-cacert ...: to etcd */
	/* Set by a command whose job names its etcd (add-index --resume):
	 * etcd's security flags may then come without --etcd. */
	bool etcd_in_job;
	bf_tls store_tls;               /* --cacert ...: to a cluster's store nodes */
} cli_where;

/*
 * The place's options, the same in every command that has a place: its
 * options list them (the letters 's', 'e' and 'K' are theirs) and each
 * option goes to cli_where_opt first. The strings are borrowed from argv.
 */
#define CLI_WHERE_OPTS                                                                   \
	{ "store", required_argument, 0, 's' }, { "etcd", required_argument, 0, 'e' },   \
	{ "cluster", required_argument, 0, 'K' }, CLI_ETCD_SECURITY_OPTS, CLI_STORE_TLS_OPTS
/* True when c was one of CLI_WHERE_OPTS (now in w). */
bool cli_where_opt(int c, const char *val, cli_where *w);
/* The flags that name w again, for a message that tells what to run next
 * ("--etcd EPS --etcd-cacert F --cluster NAME --cacert F", "--store DIR"):
 * file paths, never their contents. */
void cli_where_args(const cli_where *w, const char *store_path, char *out, size_t n);

typedef struct cli_place {
	bf_store *st;          /* a local store, or NULL */
	bf_etcd *etcd;         /* a cluster's etcd, or NULL */
	bf_cluster *cluster;   /* or NULL */
	bf_catalog *own_cat;   /* the cluster's catalog (the store's is its own) */
	bf_target *target;     /* owned; NULL when not asked for */
	bf_job_env env;
	char sort[PATH_MAX], live[PATH_MAX], work[PATH_MAX + 16], name[PATH_MAX];
} cli_place;

/*
 * Checks that the command got either --store or --cluster with --etcd
 * (one usage line and false otherwise). etcd_with_store: --etcd may also
 * come with --store (add-index's lock). The security flags are checked
 * too: etcd's against --etcd, the store nodes' only with --cluster, every
 * file readable.
 */
bool cli_where_check(cli_where *w, bool etcd_with_store);
bool cli_where_cluster(const cli_where *w);

/*
 * Opens the place: the store with store_flags, or the cluster (its layout
 * and catalog in etcd). With want_target, an import target too; for a
 * cluster, read_replica (see bf_target_cluster_opts) says which replica
 * its scans read. Close with cli_place_close, also after a failure.
 */
int cli_place_open(cli_place *p, const cli_where *w, unsigned store_flags, bool want_target,
		   int read_replica, bf_err *err);
void cli_place_close(cli_place *p);
/*
 * cli_place_open for a cluster whose etcd may be electing a leader (a
 * member cut off): a failure etcd may get over (unavailable, timed out,
 * unknown outcome) is told once on stderr and the open tried again every
 * half second, for at most max_ms (< 0: until *stop reads non-zero).
 * Anything else, or a store, is cli_place_open.
 */
int cli_place_open_patient(cli_place *p, const cli_where *w, bool want_target, int64_t max_ms,
			   const volatile sig_atomic_t *stop, bf_err *err);
/* How messages name the place: the store's path or "cluster NAME". */
const char *cli_place_name(const cli_place *p);

#endif
