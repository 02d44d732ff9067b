/*
 * Test harness for real etcd clusters on loopback (see etcd.h).
 */
#include "tests/support/etcd.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MEMBERS 3
#define MAX_CLUSTERS 8
#define READY_TIMEOUT_MS 20000
#define ETCDCTL_FLAGS 5

typedef struct member {
	int client_port;
	int peer_port;
	pid_t pid; /* 0 when not running */
	char endpoint[32];
	char data_dir[512];
	char log_path[512];
} member;

struct t_etcd {
	int n;
	const t_certs *certs;      /* borrowed; NULL: plain text */
	bf_etcd_security security; /* the harness's clients', with certs or a user */
	int auth_ttl_s;            /* > 0: etcd's --auth-token-ttl (t_etcd_start_auth) */
	bool auth;                 /* authentication is on */
	char password_file[PATH_MAX]; /* T_ETCD_PASSWORD in a file, with auth */
	char *certs_dir; /* owned, removed with e: BFILL_TEST_ETCD=tls's certificates */
	char *base; /* temp dir holding every member's data and log */
	char token[48];
	char initial_cluster[512];
	char endpoints[MAX_MEMBERS * 32];
	member m[MAX_MEMBERS];
};

/* Every cluster this process started and has not destroyed, so that .fini
 * can stop them and remove their data even after a failed assertion. */
static t_etcd *live[MAX_CLUSTERS];

static void live_set(t_etcd *e, t_etcd *with)
{
	for (int i = 0; i < MAX_CLUSTERS; i++)
		if (live[i] == e) {
			live[i] = with;
			return;
		}
}

static void kill_pid(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGKILL); /* its process group */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void t_etcd_stop_all(void)
{
	for (int i = 0; i < MAX_CLUSTERS; i++)
		t_etcd_destroy(live[i]);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char full[4200];
		snprintf(full, sizeof(full), "%s/%s", dir, name);
		if (access(full, X_OK) == 0)
			return true;
	}
	return false;
}

bool t_etcd_available(void)
{
	return in_path("etcd") && in_path("etcdctl");
}

const bf_etcd_security *t_etcd_security_of(const char *endpoints)
{
	for (int i = 0; i < MAX_CLUSTERS && endpoints; i++) {
		const t_etcd *e = live[i];
		for (int m = 0; e && (e->certs || e->auth) && m < e->n; m++)
			if (strstr(endpoints, e->m[m].endpoint))
				return &e->security;
	}
	return NULL;
}

/* etcdctl's flags for e: the endpoints, and with TLS the client's files
 * (out holds them; argv points into it). Returns how many. */
static int etcdctl_flags(const t_etcd *e, const char *endpoints, char out[ETCDCTL_FLAGS][PATH_MAX + 16],
			 char **argv)
{
	int n = 0;

	snprintf(out[n], sizeof(out[n]), "--endpoints=%s", endpoints);
	argv[n] = out[n];
	n++;
	if (e->certs) {
		snprintf(out[n], sizeof(out[n]), "--cacert=%s", e->certs->ca);
		argv[n] = out[n];
		n++;
		snprintf(out[n], sizeof(out[n]), "--cert=%s", e->certs->client.cert);
		argv[n] = out[n];
		n++;
		snprintf(out[n], sizeof(out[n]), "--key=%s", e->certs->client.key);
		argv[n] = out[n];
		n++;
	}
	if (e->auth) {
		snprintf(out[n], sizeof(out[n]), "--user=%s:%s", T_ETCD_USER, T_ETCD_PASSWORD);
		argv[n] = out[n];
		n++;
	}
	return n;
}

bf_etcd *t_etcd_client(const t_etcd *e, int call_timeout_ms)
{
	bf_etcd_opts o = { .call_timeout_ms = call_timeout_ms,
			   .security = e->certs || e->auth ? &e->security : NULL };
	bf_etcd *c = NULL;
	bf_err err;

	cr_assert_eq(bf_etcd_create(t_etcd_endpoints(e), &o, &c, &err), 0, "%s", bf_err_text(&err));
	return c;
}

const char *t_etcd_dead_endpoint(void)
{
	static char buf[32];
	snprintf(buf, sizeof(buf), "127.0.0.1:%d", t_free_port());
	return buf;
}

int t_etcd_leases(const t_etcd *e, int64_t *ids, int max)
{
	char flags[ETCDCTL_FLAGS][PATH_MAX + 16];
	char *argv[12] = { "etcdctl" };
	char *env[] = { "ETCDCTL_API=3", NULL };
	int n = -1, got = 0, argc = 1;

	argc += etcdctl_flags(e, e->endpoints, flags, argv + argc);
	argv[argc++] = "--dial-timeout=1s";
	argv[argc++] = "--command-timeout=2s";
	argv[argc++] = "lease";
	argv[argc++] = "list";
	argv[argc] = NULL;
	t_run r = t_exec(argv, env);
	cr_assert_eq(r.status, 0, "etcdctl lease list: %s", r.err);
	/* "found N leases" and then one lowercase hex ID a line. */
	cr_assert_eq(sscanf(r.out, "found %d leases", &n), 1, "etcdctl lease list: %s", r.out);
	for (char *line = strchr(r.out, '\n'); line && got < max && ids; line = strchr(line, '\n')) {
		unsigned long long id;
		line++;
		if (sscanf(line, "%llx", &id) == 1)
			ids[got++] = (int64_t)id;
	}
	t_run_free(&r);
	return n;
}

static void spawn_member(t_etcd *e, int i)
{
	member *m = &e->m[i];
	char name[16], client_url[64], peer_url[64];
	char ttl[16];
	pid_t parent = getpid();
	pid_t pid;

	snprintf(name, sizeof(name), "m%d", i);
	snprintf(client_url, sizeof(client_url), "%s://127.0.0.1:%d", e->certs ? "https" : "http",
		 m->client_port);
	snprintf(peer_url, sizeof(peer_url), "http://127.0.0.1:%d", m->peer_port);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Own process group, and dies with the test process whatever
		 * happens to it. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(m->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		char *argv[40] = { "etcd", "--name", name, "--data-dir", m->data_dir,
				   "--listen-client-urls", client_url, "--advertise-client-urls",
				   client_url, "--listen-peer-urls", peer_url,
				   "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
				   e->initial_cluster, "--initial-cluster-token", e->token,
				   "--initial-cluster-state", "new", "--heartbeat-interval", "50",
				   "--election-timeout", "500", "--logger", "zap", "--log-level",
				   "warn" };
		int argc = 0;
		while (argv[argc])
			argc++;
		if (e->certs) {
			argv[argc++] = "--cert-file";
			argv[argc++] = (char *)e->certs->server.cert;
			argv[argc++] = "--key-file";
			argv[argc++] = (char *)e->certs->server.key;
			argv[argc++] = "--trusted-ca-file";
			argv[argc++] = (char *)e->certs->ca;
			argv[argc++] = "--client-cert-auth";
		}
		if (e->auth_ttl_s > 0) {
			snprintf(ttl, sizeof(ttl), "%d", e->auth_ttl_s);
			argv[argc++] = "--auth-token";
			argv[argc++] = "simple";
			argv[argc++] = "--auth-token-ttl";
			argv[argc++] = ttl;
		}
		argv[argc] = NULL;
		execvp("etcd", argv);
		_exit(127);
	}
	m->pid = pid;
}

static bool healthy(const t_etcd *e, const member *m)
{
	char ep[64], flags[ETCDCTL_FLAGS][PATH_MAX + 16];
	char *argv[12] = { "etcdctl" };
	int argc = 1;
	pid_t pid;
	int status = 0;

	snprintf(ep, sizeof(ep), "%s://%s", e->certs ? "https" : "http", m->endpoint);
	argc += etcdctl_flags(e, ep, flags, argv + argc);
	argv[argc++] = "--dial-timeout=500ms";
	argv[argc++] = "--command-timeout=1s";
	argv[argc++] = "endpoint";
	argv[argc++] = "health";
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("ETCDCTL_API", "3", 1);
		execvp("etcdctl", argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool exited(member *m)
{
	int status;
	if (m->pid > 0 && waitpid(m->pid, &status, WNOHANG) == m->pid) {
		m->pid = 0;
		return true;
	}
	return m->pid == 0;
}

/* Waits until members [from, to) answer health checks; false when one
 * died (a port was taken, say) or time ran out. */
static bool wait_ready(t_etcd *e, int from, int to)
{
	int64_t deadline = mono_ms() + READY_TIMEOUT_MS;

	for (int i = from; i < to; i++) {
		while (!healthy(e, &e->m[i])) {
			if (exited(&e->m[i]) || mono_ms() > deadline)
				return false;
			usleep(100 * 1000);
		}
	}
	return true;
}

static void layout(t_etcd *e)
{
	size_t off = 0, eoff = 0;

	snprintf(e->token, sizeof(e->token), "bfill-test-%d-%ld", (int)getpid(), (long)mono_ms());
	e->initial_cluster[0] = e->endpoints[0] = '\0';
	for (int i = 0; i < e->n; i++) {
		member *m = &e->m[i];
		m->client_port = t_free_port();
		m->peer_port = t_free_port();
		snprintf(m->endpoint, sizeof(m->endpoint), "127.0.0.1:%d", m->client_port);
		snprintf(m->data_dir, sizeof(m->data_dir), "%s/m%d.data", e->base, i);
		snprintf(m->log_path, sizeof(m->log_path), "%s/m%d.log", e->base, i);
		off += snprintf(e->initial_cluster + off, sizeof(e->initial_cluster) - off,
				"%sm%d=http://127.0.0.1:%d", i ? "," : "", i, m->peer_port);
		eoff += snprintf(e->endpoints + eoff, sizeof(e->endpoints) - eoff, "%s%s%s",
				 i ? "," : "", e->certs ? "https://" : "", m->endpoint);
	}
}

static void dump_log(const member *m)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "tail -n 20 '%s' >&2", m->log_path);
	if (system(cmd) != 0)
		fprintf(stderr, "(no etcd log at %s)\n", m->log_path);
}

static t_etcd *start(int n, const t_certs *certs, int auth_ttl_s)
{
	t_etcd *e;

	if (!t_etcd_available())
		cr_skip_test("etcd/etcdctl not installed (Debian: apt-get install etcd-server "
			     "etcd-client); the etcd lock tests need a real etcd");
	cr_assert(n >= 1 && n <= MAX_MEMBERS, "t_etcd_start: 1..%d members", MAX_MEMBERS);
	e = calloc(1, sizeof(*e));
	cr_assert_not_null(e);
	e->n = n;
	e->certs = certs;
	e->auth_ttl_s = auth_ttl_s;
	if (certs)
		e->security = t_certs_etcd(certs);
	e->base = t_tmpdir("etcd");
	live_set(NULL, e);
	/* Ports are picked then released; if another process grabs one in
	 * between, etcd exits and we try again with new ones. */
	for (int tries = 0; tries < 3; tries++) {
		layout(e);
		for (int i = 0; i < n; i++)
			spawn_member(e, i);
		if (wait_ready(e, 0, n))
			return e;
		for (int i = 0; i < n; i++) {
			dump_log(&e->m[i]);
			kill_pid(e->m[i].pid);
			e->m[i].pid = 0;
		}
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'/m*", e->base);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not clean %s\n", e->base);
	}
	t_etcd_destroy(e);
	cr_assert_fail("etcd (%d member%s) did not become healthy", n, n > 1 ? "s" : "");
	return NULL;
}

t_etcd *t_etcd_start(int n)
{
	const char *mode = getenv("BFILL_TEST_ETCD");
	static t_certs certs;

	/* The same tests over TLS or as a user (tests/run.sh's BIN@MODE). */
	if (mode && !strcmp(mode, "auth"))
		return t_etcd_start_auth(n, 300);
	if (mode && !strcmp(mode, "tls")) {
		char *dir = t_tmpdir("etcd-certs");
		t_certs_make(&certs, dir);
		t_etcd *e = start(n, &certs, 0);
		e->certs_dir = dir;
		return e;
	}
	cr_assert(!mode || !*mode, "BFILL_TEST_ETCD=%s: tls, auth or nothing", mode);
	return start(n, NULL, 0);
}

t_etcd *t_etcd_start_tls(int n, const t_certs *certs)
{
	return start(n, certs, 0);
}

/* etcdctl args (NULL-terminated) against e, as the harness's client,
 * asserting success. */
static void etcdctl_ok(const t_etcd *e, const char *const *args)
{
	char flags[ETCDCTL_FLAGS][PATH_MAX + 16];
	char *argv[16] = { "etcdctl" };
	int argc = 1;

	argc += etcdctl_flags(e, e->endpoints, flags, argv + argc);
	argv[argc++] = "--command-timeout=5s";
	for (int i = 0; args[i] && argc < 15; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	t_run r = t_exec(argv, NULL);
	cr_assert_eq(r.status, 0, "etcdctl %s %s: exit %d: %s%s", args[0], args[1], r.status,
		     r.out, r.err);
	t_run_free(&r);
}

t_etcd *t_etcd_start_auth(int n, int token_ttl_s)
{
	t_etcd *e = start(n, NULL, token_ttl_s);

	etcdctl_ok(e, (const char *[]){ "user", "add", T_ETCD_USER,
					"--new-user-password=" T_ETCD_PASSWORD, NULL });
	etcdctl_ok(e, (const char *[]){ "auth", "enable", NULL });
	/* From here on the harness's clients (etcdctl, t_etcd_client, the
	 * helpers given these endpoints) authenticate as the user. */
	e->auth = true;
	e->security.user = T_ETCD_USER;
	e->security.password = T_ETCD_PASSWORD;
	snprintf(e->password_file, sizeof(e->password_file), "%s/password", e->base);
	FILE *f = fopen(e->password_file, "w");
	cr_assert_not_null(f, "%s: %s", e->password_file, strerror(errno));
	fprintf(f, "%s\n", T_ETCD_PASSWORD);
	fclose(f);
	return e;
}

const char *t_etcd_password_file(const t_etcd *e)
{
	return e->auth ? e->password_file : NULL;
}

void t_etcd_destroy(t_etcd *e)
{
	if (!e)
		return;
	live_set(e, NULL);
	for (int i = 0; i < e->n; i++) {
		kill_pid(e->m[i].pid);
		e->m[i].pid = 0;
	}
	t_rmdir(e->base);
	if (e->certs_dir)
		t_rmdir(e->certs_dir); /* and frees it, as e->base */
	free(e);
}

const char *t_etcd_endpoints(const t_etcd *e)
{
	return e->endpoints;
}

const char *t_etcd_dir(const t_etcd *e)
{
	return e->base;
}

const char *t_etcd_endpoint(const t_etcd *e, int i)
{
	return e->m[i].endpoint;
}

void t_etcd_kill(t_etcd *e, int i)
{
	kill_pid(e->m[i].pid);
	e->m[i].pid = 0;
}

void t_etcd_restart(t_etcd *e, int i)
{
	cr_assert_eq(e->m[i].pid, 0, "member %d is still running", i);
	spawn_member(e, i);
	if (!wait_ready(e, i, i + 1)) {
		dump_log(&e->m[i]);
		cr_assert_fail("etcd member %d did not come back on %s", i, e->m[i].data_dir);
	}
}
