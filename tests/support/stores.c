/*
 * bfill-store processes for tests (stores.h).
 */
#include "tests/support/stores.h"

#include "bfill/codec.h"
#include "bfill/etcd.h"
#include "tests/support/support.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_MS 15000
#define TERM_MS 10000
#define MAX_ARGS 48

typedef struct store_proc {
	pid_t pid;
	char addr[32];
	char *data, *log; /* owned */
} store_proc;

struct t_stores {
	char name[BF_CLUSTER_NAME_MAX];
	char etcd[256];
	char args[4 * PATH_MAX];
	int n;
	store_proc st[T_MAX_STORES];
	bf_etcd *client;   /* owned */
	bf_cluster *cluster; /* owned */
	t_stores *next;    /* every t_stores of this process */
};

static t_stores *all;

const char *t_store_bin(void)
{
	static char abs[PATH_MAX];
	const char *b = getenv("BFILL_STORE_BIN");
	if (b && *b)
		return b;
	/* Absolute, so that a test may change its directory. */
	if (!abs[0] && !realpath("./bin/bfill-store", abs))
		snprintf(abs, sizeof(abs), "./bin/bfill-store");
	return abs;
}

/* Times "serving cluster" appears in the log: a start adds one. */
static int serving_lines(const char *log)
{
	FILE *f = fopen(log, "r");
	char line[1024];
	int n = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, ": serving cluster ") != NULL;
	fclose(f);
	return n;
}

static void spawn(t_stores *s, int id, const char *fault)
{
	store_proc *p = &s->st[id - 1];
	char sid[16], args[sizeof(s->args)], *argv[MAX_ARGS];
	int argc = 0, before = serving_lines(p->log);
	pid_t parent = getpid(), pid;

	snprintf(sid, sizeof(sid), "%d", id);
	snprintf(args, sizeof(args), "%s", s->args);
	argv[argc++] = (char *)t_store_bin();
	argv[argc++] = "--listen";
	argv[argc++] = p->addr;
	argv[argc++] = "--data";
	argv[argc++] = p->data;
	argv[argc++] = "--store-id";
	argv[argc++] = sid;
	argv[argc++] = "--etcd";
	argv[argc++] = s->etcd;
	argv[argc++] = "--cluster";
	argv[argc++] = s->name;
	for (char *tok = strtok(args, " "); tok && argc < MAX_ARGS - 1; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	cr_assert(access(argv[0], X_OK) == 0, "%s is missing: make bin/bfill-store", argv[0]);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setenv("BFILL_FAULT", fault ? fault : "", 1);
		execv(argv[0], argv);
		_exit(127);
	}
	p->pid = pid;
	for (int64_t until = bf_now_ms() + READY_MS; serving_lines(p->log) == before;) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			p->pid = 0;
			char *text = t_read_file(p->log);
			cr_assert_fail("bfill-store %d exited (status %d) before serving: %s", id,
				       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
				       text);
		}
		cr_assert_lt(bf_now_ms(), until, "bfill-store %d is not serving after %d ms", id,
			     READY_MS);
		bf_sleep_ms(20);
	}
	/* The test's channel may still be backing off from the store's last
	 * life: wait until it gets through. */
	bf_rpc_channel *ch = t_tikv_channel(p->addr);
	for (int64_t until = bf_now_ms() + READY_MS;; bf_sleep_ms(50)) {
		bf_rpc_status st = t_tikv_raw_unary(ch, "/bfill.test/Ping", "", 0, NULL, 0, NULL);
		if (st.code == BF_RPC_UNIMPLEMENTED)
			break;
		cr_assert_lt(bf_now_ms(), until, "bfill-store %d does not answer: %s", id, st.details);
	}
}

t_stores *t_stores_start(t_etcd *e, const char *name, const t_stores_opts *o)
{
	t_stores *s = calloc(1, sizeof(*s));
	const char *addrs[T_MAX_STORES];
	bf_cluster_init_opts io = { 0 };
	bf_cluster_opts co = { .watch = true };
	bf_err err;

	cr_assert_not_null(s);
	cr_assert_not_null(t_scratch_dir, "the stores live in the test's scratch directory");
	cr_assert(o->nstores >= 1 && o->nstores <= T_MAX_STORES);
	s->next = all;
	all = s;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->etcd, sizeof(s->etcd), "%s", t_etcd_endpoints(e));
	const bf_etcd_security *sec = t_etcd_security_of(t_etcd_endpoints(e));
	size_t off = (size_t)snprintf(s->args, sizeof(s->args), "%s",
				      o->store_args ? o->store_args : "");
	if (sec && sec->tls.ca_file)
		off += (size_t)snprintf(s->args + off, sizeof(s->args) - off,
					" --etcd-cacert %s --etcd-cert %s --etcd-key %s",
					sec->tls.ca_file, sec->tls.cert_file, sec->tls.key_file);
	if (sec && sec->user)
		off += (size_t)snprintf(s->args + off, sizeof(s->args) - off,
					" --etcd-user %s --etcd-password-file %s", sec->user,
					t_etcd_password_file(e));
	if (o->certs) {
		bf_tls client = t_certs_client(o->certs, NULL, &o->certs->client);
		snprintf(s->args + off, sizeof(s->args) - off, " --cacert %s --cert %s --key %s%s",
			 o->certs->ca, o->certs->server.cert, o->certs->server.key,
			 o->require_client_cert ? " --require-client-cert" : "");
		t_tikv_tls(&client);
	} else {
		t_tikv_tls(NULL);
	}
	s->n = o->nstores;
	for (int i = 0; i < s->n; i++) {
		char dir[32], log[32];
		snprintf(dir, sizeof(dir), "store%d", i + 1);
		snprintf(log, sizeof(log), "store%d.log", i + 1);
		s->st[i].data = o->data_dirs[i] ? t_path_in(o->data_dirs[i], dir)
						 : t_path_in(t_scratch_dir, dir);
		s->st[i].log = t_path_in(t_scratch_dir, log);
		snprintf(s->st[i].addr, sizeof(s->st[i].addr), "127.0.0.1:%d", t_free_port());
		addrs[i] = s->st[i].addr;
	}
	io = (bf_cluster_init_opts){ .store_addrs = addrs, .nstores = s->n,
				     .nregions = o->nregions > 0 ? o->nregions : 1,
				     .replicas = o->replicas > 0 ? o->replicas : s->n };
	bf_etcd_opts eo = { .security = sec };
	cr_assert_eq(bf_etcd_create(s->etcd, &eo, &s->client, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_cluster_init(s->client, name, &io, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_cluster_open(s->client, name, &co, &s->cluster, &err), 0, "%s",
		     bf_err_text(&err));
	for (int i = 0; i < s->n; i++)
		spawn(s, i + 1, NULL);
	return s;
}

static store_proc *proc(const t_stores *s, int id)
{
	cr_assert(id >= 1 && id <= s->n, "no store %d", id);
	return (store_proc *)&s->st[id - 1];
}

void t_stores_destroy(t_stores *s)
{
	if (!s)
		return;
	for (t_stores **pp = &all; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	for (int i = 0; i < s->n; i++) {
		t_kill_reap(&s->st[i].pid);
		free(s->st[i].data);
		free(s->st[i].log);
	}
	bf_cluster_close(s->cluster);
	bf_etcd_destroy(s->client);
	free(s);
}

void t_stores_stop_all(void)
{
	while (all)
		t_stores_destroy(all);
}

bf_cluster *t_stores_cluster(t_stores *s)
{
	return s->cluster;
}

bf_rpc_channel *t_stores_channel(t_stores *s, int id)
{
	return t_tikv_channel(proc(s, id)->addr);
}

const char *t_stores_data(const t_stores *s, int id)
{
	return proc(s, id)->data;
}

const char *t_stores_log(const t_stores *s, int id)
{
	return proc(s, id)->log;
}

void t_stores_restart(t_stores *s, int id, const char *fault)
{
	cr_assert_eq(proc(s, id)->pid, 0, "store %d still runs", id);
	spawn(s, id, fault);
}

int t_stores_term(t_stores *s, int id)
{
	store_proc *p = proc(s, id);
	int status = 0;

	cr_assert_gt(p->pid, 0, "store %d is not running", id);
	kill(p->pid, SIGTERM);
	for (int64_t until = bf_now_ms() + TERM_MS; waitpid(p->pid, &status, WNOHANG) != p->pid;) {
		if (bf_now_ms() > until) {
			t_kill_reap(&p->pid);
			cr_assert_fail("store %d did not stop within %d ms of SIGTERM", id, TERM_MS);
		}
		bf_sleep_ms(20);
	}
	p->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void t_stores_kill(t_stores *s, int id)
{
	t_kill_reap(&proc(s, id)->pid);
}

bool t_stores_alive(t_stores *s, int id)
{
	store_proc *p = proc(s, id);
	return p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == 0;
}

bf_region t_stores_locate(t_stores *s, const void *k, size_t klen)
{
	bf_region r;
	bf_err err;
	cr_assert_eq(bf_cluster_locate(s->cluster, k, klen, &r, &err), 0, "%s", bf_err_text(&err));
	return r;
}

t_ctx t_stores_ctx(const bf_region *r)
{
	const bf_region_peer *lp = bf_region_leader(r);
	return (t_ctx){ r->id, r->conf_ver, r->version, lp ? lp->id : 0, r->leader_store };
}

bf_region t_stores_wait_region(t_stores *s, uint64_t id, uint64_t version, uint64_t leader)
{
	bf_region r;
	bf_err err;

	for (int64_t until = bf_now_ms() + 5000;; bf_sleep_ms(20)) {
		if (bf_cluster_region(s->cluster, id, &r, &err) == 0 && r.version >= version &&
		    (!leader || r.leader_store == leader))
			return r;
		cr_assert_lt(bf_now_ms(), until, "region %llu never showed version %llu, leader %llu",
			     (unsigned long long)id, (unsigned long long)version,
			     (unsigned long long)leader);
	}
}

t_kv *t_record_kvs(int64_t tid, int64_t from, int64_t to)
{
	t_kv *kvs = calloc((size_t)(to - from) + 1, sizeof(*kvs));

	cr_assert_not_null(kvs);
	for (int64_t h = from; h < to; h++) {
		uint8_t *k = malloc(BF_RECORD_KEY_LEN);
		char *v = NULL;
		cr_assert_not_null(k);
		bf_codec_record_key(k, tid, h);
		cr_assert_geq(asprintf(&v, "v%lld", (long long)h), 0);
		kvs[h - from] = (t_kv){ k, BF_RECORD_KEY_LEN, v, strlen(v) };
	}
	return kvs;
}
