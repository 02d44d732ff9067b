/*
 * Opening a command's place: a local store or a cluster (see cmd/place.h).
 */
#include "cmd/place.h"
#include "bfill/catalog_etcd.h"
#include "bfill/presence.h"
#include "cmd/cli.h"
#include "util/endpoints.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lease of a cluster job's presence: status elsewhere sees a job
 * whose process died as not alive at most this long after. */
#define PRESENCE_TTL_S 10
#include <unistd.h>

bool cli_where_cluster(const cli_where *w)
{
	return w->cluster != NULL;
}

bool cli_where_opt(int c, const char *val, cli_where *w)
{
	switch (c) {
	case 's': w->store = val; return true;
	case 'e': w->etcd = val; return true;
	case 'K': w->cluster = val; return true;
	}
	return cli_etcd_security_opt(c, val, &w->etcd_security) ||
	       cli_tls_opt(c, val, &w->store_tls);
}

/* Appends " <flag> <path>" for each file t names. */
static size_t tls_args(const bf_tls *t, const char *prefix, char *out, size_t n)
{
	size_t off = 0;

	for (int i = 0; i < CLI_TLS_FILES && off < n; i++) {
		const char *flag, *path = cli_tls_file(t, i, &flag);
		if (path)
			off += (size_t)snprintf(out + off, n - off, " %s%s %s", prefix, flag, path);
	}
	return off < n ? off : n;
}

void cli_where_args(const cli_where *w, const char *store_path, char *out, size_t n)
{
	/* A store's job keeps its lock's endpoints, not how they are secured. */
	size_t off = w->cluster ? (size_t)snprintf(out, n, "--etcd %s", w->etcd)
				: (size_t)snprintf(out, n, "--store %s", store_path);

	if (off < n)
		off += tls_args(&w->etcd_security.tls, "--etcd-", out + off, n - off);
	if (off < n && w->cluster)
		off += (size_t)snprintf(out + off, n - off, " --cluster %s", w->cluster);
	if (off < n)
		tls_args(&w->store_tls, "--", out + off, n - off);
}

bool cli_where_check(cli_where *w, bool etcd_with_store)
{
	bf_err err = { 0 };
	if (w->store && w->cluster) {
		cli_fail(BF_EXIT_USAGE, "--store and --cluster name two places; give one");
		return false;
	}
	if (!w->store && !w->cluster) {
		cli_fail(BF_EXIT_USAGE, "--store DIR (or --etcd EPS --cluster NAME) is required");
		return false;
	}
	if (w->cluster && !w->etcd) {
		cli_fail(BF_EXIT_USAGE, "--cluster NAME needs --etcd EPS, where its layout lives");
		return false;
	}
	if (w->cluster && (!*w->cluster || strlen(w->cluster) >= BF_CLUSTER_NAME_MAX ||
			   strchr(w->cluster, '/'))) {
		cli_fail(BF_EXIT_USAGE, "--cluster must be 1..%d characters without '/'",
			 BF_CLUSTER_NAME_MAX - 1);
		return false;
	}
	if (w->store && w->etcd && !etcd_with_store) {
		cli_fail(BF_EXIT_USAGE, "--etcd goes with --cluster NAME here");
		return false;
	}
	if (w->etcd && strcmp(w->etcd, "none") && bf_endpoints_check(w->etcd, &err)) {
		cli_fail(BF_EXIT_USAGE, "--etcd: %s", bf_err_text(&err));
		return false;
	}
	if (!cli_etcd_security_check(w->etcd ? w->etcd : w->etcd_in_job ? "" : NULL,
				     &w->etcd_security))
		return false;
	if (bf_tls_enabled(&w->store_tls) && !w->cluster) {
		cli_fail(BF_EXIT_USAGE, "--cacert, --cert and --key secure the connections to a "
			 "cluster's store nodes: they go with --cluster");
		return false;
	}
	return cli_tls_check(&w->store_tls, false);
}

static int open_store(cli_place *p, const cli_where *w, unsigned flags, bf_err *err)
{
	int rc = bf_store_open(w->store, flags, &p->st, err);
	if (rc)
		return rc;
	snprintf(p->name, sizeof(p->name), "%s", bf_store_path(p->st));
	return bf_job_env_store(p->st, NULL, &p->env, p->sort, sizeof(p->sort),
				&p->target, err);
}

/* A cluster job's presence in etcd, seen by status on every machine. */
static void *announce(void *arg, int64_t job_id)
{
	cli_place *p = arg;
	bf_presence *pr = NULL;
	bf_err err;

	if (bf_presence_begin(p->etcd, bf_cluster_root(p->cluster), job_id, PRESENCE_TTL_S, &pr,
			      &err))
		return NULL;
	return pr;
}

static void withdraw(void *arg, void *handle)
{
	(void)arg;
	bf_presence_end(handle);
}

static int open_cluster(cli_place *p, const cli_where *w, bool want_target, int read_replica,
			bf_err *err)
{
	bf_cluster_opts co = { .watch = want_target };
	bf_etcd_opts eo = { .security = &w->etcd_security };
	char cwd[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	int rc = bf_etcd_create(w->etcd, &eo, &p->etcd, err);

	if (rc == 0)
		rc = bf_cluster_open(p->etcd, w->cluster, &co, &p->cluster, err);
	if (rc == 0)
		rc = bf_catalog_etcd_create(p->etcd, bf_cluster_root(p->cluster), &p->own_cat, err);
	if (rc)
		return rc;
	snprintf(p->name, sizeof(p->name), "cluster %s", w->cluster);
	if (!getcwd(cwd, sizeof(cwd)))
		return bf_errf(err, -errno, "cannot tell the working directory: %s", strerror(errno));
	/* A cluster has no directory of its own here: sort files go next to
	 * where the command runs, live locks under the temporary directory
	 * (so `status` on this machine sees jobs running on it). */
	snprintf(p->sort, sizeof(p->sort), "%s/bfill-%s.sort", cwd, w->cluster);
	snprintf(p->live, sizeof(p->live), "%s/bfill-cluster-%s", tmp && *tmp ? tmp : "/tmp",
		 bf_cluster_uuid(p->cluster));
	rc = bf_mkdirs(p->live, err);
	if (rc == 0 && want_target) {
		snprintf(p->work, sizeof(p->work), "%s/target", p->sort);
		bf_target_cluster_opts to = { .work_dir = p->work, .read_replica = read_replica,
					      .tls = &w->store_tls };
		rc = bf_target_cluster_create(p->cluster, &to, &p->target, err);
	}
	p->env.catalog = p->own_cat;
	p->env.target = p->target;
	p->env.lock_scope = bf_cluster_uuid(p->cluster);
	p->env.live_dir = p->live;
	p->env.default_sort_dir = p->sort;
	p->env.announce = announce;
	p->env.withdraw = withdraw;
	p->env.announce_arg = p;
	p->env.etcd = p->etcd;
	p->env.cluster = p->cluster;
	return rc;
}

int cli_place_open(cli_place *p, const cli_where *w, unsigned store_flags, bool want_target,
		   int read_replica, bf_err *err)
{
	memset(p, 0, sizeof(*p));
	return w->cluster ? open_cluster(p, w, want_target, read_replica, err)
			  : open_store(p, w, store_flags, err);
}

static bool transient(int rc)
{
	return rc == BF_EUNAVAIL || rc == BF_ETIMEDOUT || rc == BF_EUNKNOWN;
}

int cli_place_open_patient(cli_place *p, const cli_where *w, bool want_target, int64_t max_ms,
			   const volatile sig_atomic_t *stop, bf_err *err)
{
	int64_t deadline = bf_now_ms() + max_ms;
	bool told = false;
	int rc;

	while ((rc = cli_place_open(p, w, 0, want_target, 0, err)) && w->cluster && transient(rc) &&
	       (max_ms < 0 || bf_now_ms() < deadline) && !(stop && *stop)) {
		if (!told)
			fprintf(stderr, "%s %s: %s; trying again\n", cli_prog, cli_cmd ? cli_cmd : "",
				bf_err_text(err));
		told = true;
		cli_place_close(p);
		bf_sleep_ms(500);
	}
	return rc;
}

void cli_place_close(cli_place *p)
{
	bf_target_destroy(p->target);
	bf_catalog_destroy(p->own_cat);
	bf_cluster_close(p->cluster);
	bf_etcd_destroy(p->etcd);
	bf_store_close(p->st);
	memset(p, 0, sizeof(*p));
}

const char *cli_place_name(const cli_place *p)
{
	return p->name;
}
