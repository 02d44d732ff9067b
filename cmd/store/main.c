/*
 * bfill-store: a store node of a cluster (DESIGN §5, docs/cluster.md).
 *
 *   bfill-store --listen ADDR --data DIR --store-id N --etcd EP,... --cluster NAME
 *               [--etcd-cacert F ...] [--cacert F --cert F --key F [--require-client-cert]]
 *
 * Loads the cluster's layout from etcd (waiting for etcd to answer, and
 * then serving from its cache whenever it does not), opens the store in
 * DIR and serves TiKV's ImportSST and KV calls until SIGTERM or SIGINT,
 * then stops cleanly: exit 0. Usage errors exit 2, anything that keeps
 * the node from serving exits 1, each with one line on stderr.
 *
 * Depends on: server (the node), cluster, lock (the etcd client), cmd/cli.
 */
#include "bfill/cluster.h"
#include "bfill/etcd.h"
#include "bfill/node.h"
#include "bfill/sst.h"
#include "cmd/cli.h"
#include "util/endpoints.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What calls in flight get to finish when the node is told to stop. */
#define STOP_GRACE_MS 5000
#define ETCD_RETRY_MS 1000

static const char USAGE[] =
	"usage: bfill-store --listen ADDR --data DIR --store-id N --etcd EP,... --cluster NAME\n"
	"                   [--max-message SIZE] [--sst-compression none|lz4|zstd]\n"
	"                   [--upload-ttl SECONDS]\n"
	"                   [--etcd-cacert FILE [--etcd-cert FILE --etcd-key FILE]]\n"
	"                   [--cacert FILE --cert FILE --key FILE [--require-client-cert]]\n"
	"A store node of cluster NAME: serves TiKV's ImportSST (Write, MultiIngest,\n"
	"SwitchMode) and KV (KvScan, KvBatchGet, KvDeleteRange) calls over gRPC on ADDR,\n"
	"keeping its data in DIR (created when absent) and its regions from etcd.\n"
	"  --store-id N         this node's id among the cluster's stores (bfill cluster show)\n"
	"  --max-message SIZE   largest request message taken (default 16M)\n"
	"  --sst-compression C  compression of the SSTs uploads make (default none)\n"
	"  --upload-ttl S       uploads no ingest took are removed this long after (3600)\n"
	"  --cacert F --cert F --key F  serve TLS with this certificate and key, and forward\n"
	"                       to the other stores with them, checking theirs against the CA\n"
	"  --require-client-cert  refuse, at the handshake, clients without a certificate the\n"
	"                       CA signed (each refusal is logged, one line a second at most)\n"
	CLI_ETCD_SECURITY_HELP
	"Stops cleanly on SIGTERM or SIGINT.\n";

typedef struct args {
	const char *listen, *data, *etcd, *cluster;
	bf_etcd_security etcd_security;
	bf_tls tls; /* served, and used to forward to the other stores */
	uint64_t store_id, max_message, upload_ttl_s;
	bf_compression sst_compression;
} args;

/* Parses argv into a; an exit code when the node must not start (-1: go). */
static int parse(int argc, char **argv, args *a)
{
	static const struct option opts[] = {
		{ "listen", required_argument, 0, 'l' }, { "data", required_argument, 0, 'd' },
		{ "store-id", required_argument, 0, 's' }, { "etcd", required_argument, 0, 'e' },
		{ "cluster", required_argument, 0, 'c' },
		{ "max-message", required_argument, 0, 'm' },
		{ "sst-compression", required_argument, 0, 'z' },
		{ "upload-ttl", required_argument, 0, 't' }, { "help", no_argument, 0, 'h' },
		CLI_ETCD_SECURITY_OPTS, CLI_STORE_TLS_OPTS,
		{ "require-client-cert", no_argument, 0, CLI_OPT_REQUIRE_CLIENT_CERT },
		{ 0, 0, 0, 0 },
	};
	bf_err err;
	int ch;

	while ((ch = cli_getopt(argc, argv, opts)) != -1) {
		if (cli_etcd_security_opt(ch, optarg, &a->etcd_security) ||
		    cli_tls_opt(ch, optarg, &a->tls))
			continue;
		switch (ch) {
		case 'l': a->listen = optarg; break;
		case 'd': a->data = optarg; break;
		case 'e': a->etcd = optarg; break;
		case 'c': a->cluster = optarg; break;
		case 's':
			if (!cli_u64_in("--store-id", optarg, 1, UINT32_MAX, NULL, &a->store_id))
				return BF_EXIT_USAGE;
			break;
		case 'm':
			if (!cli_size("--max-message", optarg, &a->max_message))
				return BF_EXIT_USAGE;
			if (a->max_message < 1024 || a->max_message > INT32_MAX)
				return cli_fail(BF_EXIT_USAGE, "--max-message must be 1K..2G, got '%s'",
						optarg);
			break;
		case 'z':
			if (!cli_compression("--sst-compression", optarg, &a->sst_compression))
				return BF_EXIT_USAGE;
			break;
		case 't':
			if (!cli_u64_in("--upload-ttl", optarg, 1, 30 * 86400, "seconds",
					&a->upload_ttl_s))
				return BF_EXIT_USAGE;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return cli_finish(BF_EXIT_OK);
		default:
			return BF_EXIT_USAGE;
		}
	}
	if (!a->listen || !a->data || !a->store_id || !a->etcd || !a->cluster)
		return cli_fail(BF_EXIT_USAGE, "--%s is required (see --help)",
				!a->listen ? "listen ADDR" : !a->data ? "data DIR"
				: !a->store_id ? "store-id N" : !a->etcd ? "etcd EP,..." : "cluster NAME");
	if (!cli_fits("--cluster", a->cluster, BF_CLUSTER_NAME_MAX))
		return BF_EXIT_USAGE;
	if (bf_endpoints_check(a->etcd, &err))
		return cli_fail(BF_EXIT_USAGE, "--etcd: %s", bf_err_text(&err));
	if (!cli_etcd_security_check(a->etcd, &a->etcd_security) || !cli_tls_check(&a->tls, true))
		return BF_EXIT_USAGE;
	return -1;
}

/* Waits up to ms for SIGTERM or SIGINT (blocked in every thread); the
 * signal, or 0 when none came. */
static int wait_signal(const sigset_t *set, int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	int sig = ms < 0 ? 0 : sigtimedwait(set, NULL, &ts);

	if (ms < 0 && sigwait(set, &sig) != 0)
		sig = 0;
	return sig > 0 ? sig : 0;
}

/*
 * Loads the cluster. A cluster etcd does not have is an error; an etcd
 * that does not answer is waited for (a node may start before etcd does),
 * saying so once. *sig is set when a signal ended the wait.
 */
static int load_cluster(bf_etcd *etcd, const args *a, const sigset_t *set, bf_cluster **c,
			int *sig)
{
	bf_cluster_opts co = { .watch = true };
	bool told = false;
	bf_err err;
	int rc;

	for (;;) {
		rc = bf_cluster_open(etcd, a->cluster, &co, c, &err);
		if (rc == 0)
			return 0;
		if (rc == BF_ENOTFOUND || rc == BF_ECORRUPT || rc == BF_EINVAL)
			return cli_fail(BF_EXIT_FAIL, "%s%s", bf_err_text(&err),
					rc == BF_ENOTFOUND ? " (bfill cluster init makes one)" : "");
		if (!told) {
			fprintf(stderr, "bfill-store %" PRIu64 ": waiting for etcd: %s\n", a->store_id,
				bf_err_text(&err));
			told = true;
		}
		if ((*sig = wait_signal(set, ETCD_RETRY_MS)))
			return BF_EXIT_OK;
	}
}

/* Regions with a peer on this store, for the start line. */
static size_t my_regions(bf_cluster *c, uint64_t store_id)
{
	bf_region *rs = NULL;
	size_t n = 0, mine = 0;

	if (bf_cluster_regions(c, NULL, 0, NULL, 0, &rs, &n, NULL) == 0)
		for (size_t i = 0; i < n; i++)
			for (int p = 0; p < rs[i].npeers; p++)
				mine += rs[i].peers[p].store_id == store_id;
	free(rs);
	return mine;
}

static int serve(const args *a, const sigset_t *set)
{
	char prefix[48];
	bf_etcd *etcd = NULL;
	bf_cluster *c = NULL;
	bf_node *node = NULL;
	bf_cluster_store me;
	bf_node_opts no = { 0 };
	bf_etcd_opts eo = { .security = &a->etcd_security };
	bf_err err;
	int code, sig = 0;

	if (bf_etcd_create(a->etcd, &eo, &etcd, &err)) {
		code = cli_fail(cli_exit_for(err.code), "%s", bf_err_text(&err));
		goto out;
	}
	code = load_cluster(etcd, a, set, &c, &sig);
	if (code != BF_EXIT_OK || sig)
		goto out;
	if (bf_cluster_store_get(c, a->store_id, &me, &err)) {
		code = cli_fail(BF_EXIT_FAIL, "store %" PRIu64 " is not in cluster %s (bfill cluster "
				"show lists its stores)", a->store_id, a->cluster);
		goto out;
	}
	snprintf(prefix, sizeof(prefix), "bfill-store %" PRIu64, a->store_id);
	no = (bf_node_opts){ .data_dir = a->data, .store_id = a->store_id, .listen = a->listen,
			     .view = &bf_node_cluster_view, .view_arg = c,
			     .cluster_uuid = bf_cluster_uuid(c), .max_message_bytes = a->max_message,
			     .sst_compression = a->sst_compression,
			     .upload_ttl_ms = (int64_t)a->upload_ttl_s * 1000,
			     .log = stderr, .log_prefix = prefix,
			     .tls = bf_tls_enabled(&a->tls) ? &a->tls : NULL };
	if (bf_node_open(&no, &node, &err)) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	fprintf(stderr, "%s: serving cluster %s on %s (port %d, advertised as %s%s), data %s, "
		"%zu regions here\n", prefix, a->cluster, a->listen, bf_node_port(node), me.address,
		!bf_tls_enabled(&a->tls) ? ""
		: a->tls.require_client_cert ? "; TLS, client certificates required" : "; TLS",
		bf_store_path(bf_node_store(node)), my_regions(c, a->store_id));
	sig = wait_signal(set, -1);
	fprintf(stderr, "%s: %s: stopping\n", prefix, strsignal(sig));
	bf_node_stop(node, STOP_GRACE_MS);
	bf_node_close(node);
	node = NULL;
	fprintf(stderr, "%s: stopped\n", prefix);
out:
	bf_node_close(node);
	bf_cluster_close(c);
	bf_etcd_destroy(etcd);
	return code;
}

int main(int argc, char **argv)
{
	args a = { 0 };
	sigset_t set;
	int code;

	cli_prog = "bfill-store";
	cli_cmd = NULL;
	/* A vanished peer must be an error return, not a process kill. */
	signal(SIGPIPE, SIG_IGN);
	code = parse(argc, argv, &a);
	if (code >= 0)
		return code;
	/* Blocked before any thread starts, so every thread inherits it and
	 * only sigwait sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	bf_node_quiet_grpc_log(stderr);
	return serve(&a, &set);
}
