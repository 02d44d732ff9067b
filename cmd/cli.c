/*
 * Command-line plumbing shared by the subcommands.
 */
#include "cmd/cli.h"
#include "bfill/sst.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longer messages are cut; one line is what a user reads anyway. */
#define FAIL_LINE_MAX 2048

const char *cli_prog = "bfill";
const char *cli_cmd = "bfill";

int cli_fail(int code, const char *fmt, ...)
{
	char line[FAIL_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (cli_cmd)
		fprintf(stderr, "%s %s: %s\n", cli_prog, cli_cmd, line);
	else
		fprintf(stderr, "%s: %s\n", cli_prog, line);
	return code;
}

int cli_exit_for(int rc)
{
	return rc == BF_EINVAL ? BF_EXIT_USAGE : BF_EXIT_FAIL;
}

int cli_getopt(int argc, char **argv, const struct option *longopts)
{
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, ":h", longopts, NULL);
	if (c == '?') {
		cli_fail(BF_EXIT_USAGE, "unknown option '%s' (see --help)", argv[optind - 1]);
		return '?';
	}
	if (c == ':') {
		cli_fail(BF_EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
		return '?';
	}
	if (c == -1 && optind < argc) {
		cli_fail(BF_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
		return '?';
	}
	return c;
}

bool cli_u64(const char *opt, const char *val, uint64_t *out)
{
	if (bf_parse_u64(val, out)) {
		cli_fail(BF_EXIT_USAGE, "%s needs a non-negative integer, got '%s'", opt, val);
		return false;
	}
	return true;
}

bool cli_u64_in(const char *opt, const char *val, uint64_t lo, uint64_t hi, const char *unit,
		uint64_t *out)
{
	uint64_t v;

	if (bf_parse_u64(val, &v) || v < lo || v > hi) {
		cli_fail(BF_EXIT_USAGE, "%s must be %" PRIu64 "..%" PRIu64 "%s%s, got '%s'", opt, lo, hi,
			 unit ? " " : "", unit ? unit : "", val);
		return false;
	}
	*out = v;
	return true;
}

bool cli_size(const char *opt, const char *val, uint64_t *out)
{
	if (bf_parse_size(val, out)) {
		cli_fail(BF_EXIT_USAGE, "%s needs a size like 512M or 2G, got '%s'", opt, val);
		return false;
	}
	return true;
}

bool cli_fits(const char *opt, const char *val, size_t size)
{
	size_t n = strlen(val);

	if (n >= size) {
		cli_fail(BF_EXIT_USAGE, "%s is %zu bytes long; at most %zu fit", opt, n, size - 1);
		return false;
	}
	return true;
}

/* --etcd-password-file: the password is read only by the check, once the
 * whole command line is known. One command runs per process. */
static const char *etcd_password_file;
static char etcd_password[1024];

bool cli_etcd_security_opt(int c, const char *val, bf_etcd_security *sec)
{
	switch (c) {
	case CLI_OPT_ETCD_CACERT: sec->tls.ca_file = val; return true;
	case CLI_OPT_ETCD_CERT: sec->tls.cert_file = val; return true;
	case CLI_OPT_ETCD_KEY: sec->tls.key_file = val; return true;
	case CLI_OPT_ETCD_USER: sec->user = val; return true;
	case CLI_OPT_ETCD_PASSWORD_FILE: etcd_password_file = val; return true;
	}
	return false;
}

bool cli_etcd_security_given(const bf_etcd_security *sec)
{
	return bf_tls_enabled(&sec->tls) || sec->user || etcd_password_file;
}

/* Wipes the password when the command ends, however it ends. */
static void wipe_password(void)
{
	explicit_bzero(etcd_password, sizeof(etcd_password));
}

/*
 * The password for --etcd-user: the first line of --etcd-password-file
 * (its line end dropped), else $BFILL_ETCD_PASSWORD. Never a command-line
 * value: those are visible to every user of the machine in ps. False
 * after one line that never shows the password.
 */
static bool read_password(bf_etcd_security *sec)
{
	const char *env = getenv("BFILL_ETCD_PASSWORD");
	size_t n;

	if (!sec->user) {
		if (etcd_password_file) {
			cli_fail(BF_EXIT_USAGE, "--etcd-password-file is the password of "
				 "--etcd-user NAME: give it too");
			return false;
		}
		return true;
	}
	atexit(wipe_password);
	if (etcd_password_file) {
		FILE *f = fopen(etcd_password_file, "r");
		bool got = f && fgets(etcd_password, sizeof(etcd_password), f);
		bool err = !f || ferror(f);
		if (f)
			fclose(f);
		if (err) {
			cli_fail(BF_EXIT_USAGE, "--etcd-password-file %s: %s", etcd_password_file,
				 f ? "cannot be read" : strerror(errno));
			return false;
		}
		n = got ? strcspn(etcd_password, "\r\n") : 0;
		if (got && n == strlen(etcd_password) && n == sizeof(etcd_password) - 1) {
			cli_fail(BF_EXIT_USAGE, "--etcd-password-file %s: the password is longer "
				 "than %zu bytes", etcd_password_file, sizeof(etcd_password) - 2);
			return false;
		}
		etcd_password[n] = '\0';
		if (n == 0) {
			cli_fail(BF_EXIT_USAGE, "--etcd-password-file %s: the first line is empty",
				 etcd_password_file);
			return false;
		}
	} else if (env && *env) {
		if (strlen(env) >= sizeof(etcd_password)) {
			cli_fail(BF_EXIT_USAGE, "BFILL_ETCD_PASSWORD is longer than %zu bytes",
				 sizeof(etcd_password) - 1);
			return false;
		}
		snprintf(etcd_password, sizeof(etcd_password), "%s", env);
	} else {
		cli_fail(BF_EXIT_USAGE, "--etcd-user %s needs a password: --etcd-password-file "
			 "FILE or the BFILL_ETCD_PASSWORD environment variable", sec->user);
		return false;
	}
	sec->password = etcd_password;
	return true;
}

bool cli_tls_opt(int c, const char *val, bf_tls *tls)
{
	switch (c) {
	case CLI_OPT_CACERT: tls->ca_file = val; return true;
	case CLI_OPT_CERT: tls->cert_file = val; return true;
	case CLI_OPT_KEY: tls->key_file = val; return true;
	case CLI_OPT_REQUIRE_CLIENT_CERT: tls->require_client_cert = true; return true;
	}
	return false;
}

const char *cli_tls_file(const bf_tls *t, int i, const char **flag)
{
	static const char *const flags[CLI_TLS_FILES] = { "cacert", "cert", "key" };
	const char *paths[CLI_TLS_FILES] = { t->ca_file, t->cert_file, t->key_file };

	*flag = flags[i];
	return paths[i];
}

/* Every named file opens for reading: found now rather than after a scan.
 * prefix names the flags ("--etcd-"). */
static bool tls_files_readable(const bf_tls *t, const char *prefix)
{
	for (int i = 0; i < CLI_TLS_FILES; i++) {
		const char *flag, *path = cli_tls_file(t, i, &flag);
		FILE *f = path ? fopen(path, "r") : NULL;
		if (path && !f) {
			cli_fail(BF_EXIT_USAGE, "%s%s %s: %s", prefix, flag, path, strerror(errno));
			return false;
		}
		if (f)
			fclose(f);
	}
	return true;
}

bool cli_etcd_security_check(const char *etcd, bf_etcd_security *sec)
{
	bf_err err = { 0 };

	if (!etcd || !strcmp(etcd, "none")) {
		if (cli_etcd_security_given(sec)) {
			cli_fail(BF_EXIT_USAGE, "--etcd-cacert, --etcd-cert, --etcd-key and "
				 "--etcd-user secure --etcd EPS: give it too");
			return false;
		}
		return true;
	}
	if (!read_password(sec))
		return false;
	if (*etcd ? bf_etcd_security_check(etcd, sec, &err)
		  : bf_tls_check(&sec->tls, false, "--etcd-", &err)) {
		cli_fail(BF_EXIT_USAGE, "%s", bf_err_text(&err));
		return false;
	}
	return tls_files_readable(&sec->tls, "--etcd-");
}

bool cli_tls_check(const bf_tls *tls, bool server)
{
	bf_err err = { 0 };

	/* bfill-store serves and forwards with the same files: both roles. */
	if ((server && bf_tls_check(tls, true, NULL, &err)) || bf_tls_check(tls, false, NULL, &err)) {
		cli_fail(BF_EXIT_USAGE, "%s", bf_err_text(&err));
		return false;
	}
	return tls_files_readable(tls, "--");
}

int cli_finish(int code)
{
	/* fflush reports a failure of the bytes still buffered; ferror one
	 * of an earlier write that already failed. */
	int flushed = fflush(stdout), saved = errno;

	if ((flushed || ferror(stdout)) && code == BF_EXIT_OK)
		return cli_fail(BF_EXIT_FAIL, "could not write the output: %s",
				flushed ? strerror(saved) : "write error");
	return code;
}

int cli_json_print(cJSON *o)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	int code = BF_EXIT_OK;

	if (text)
		puts(text);
	else
		code = cli_fail(BF_EXIT_FAIL, "out of memory rendering the JSON output");
	free(text);
	cJSON_Delete(o);
	return code;
}

void cli_json_num_or_null(cJSON *o, const char *k, bool known, double v)
{
	if (known)
		cJSON_AddNumberToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

double cli_round(double v, int decimals)
{
	double scale = pow(10, decimals);
	return round(v * scale) / scale;
}

#define PLAIN_EVERY_MS 5000
#define TTY_EVERY_MS 200

void cli_progress_init(cli_progress *p, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO);
	p->quiet = quiet;
	p->start_ms = p->last_ms = bf_now_ms();
}

void cli_progress_update(cli_progress *p, const char *phase, uint64_t done,
			 uint64_t total, const char *note)
{
	int64_t now = bf_now_ms();
	double secs = (double)(now - p->start_ms) / 1000.0;
	double rate = secs > 0 ? (double)done / secs : 0;
	char eta[32] = "-", of[32] = "";

	if (p->quiet || now - p->last_ms < (p->tty ? TTY_EVERY_MS : PLAIN_EVERY_MS))
		return;
	p->last_ms = now;
	/* A total of 0 is an unknown one (a load reading its input). */
	if (total)
		snprintf(of, sizeof(of), "/%" PRIu64, total);
	if (total && rate > 0 && done <= total)
		snprintf(eta, sizeof(eta), "%.0fs", (double)(total - done) / rate);
	if (p->tty) {
		int width = 30, fill = total ? (int)((double)done / (double)total * width) : 0;
		char bar[64];
		if (fill > width)
			fill = width;
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(width - fill));
		bar[width] = '\0';
		fprintf(stderr, "\r\033[K%-7s [%s] %" PRIu64 "%s rows  %.0f rows/s  ETA %s%s%s",
			phase, bar, done, of, rate, eta, note && *note ? "  " : "", note ? note : "");
		p->drawn = true;
	} else {
		fprintf(stderr, "%s: %" PRIu64 "%s rows, %.0f rows/s, ETA %s%s%s\n",
			phase, done, of, rate, eta, note && *note ? ", " : "", note ? note : "");
	}
	fflush(stderr);
}

void cli_progress_done(cli_progress *p)
{
	if (p->tty && p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
}

/* Below this the fixed needs (row batches, RocksDB's readers, the
 * import's merge buffers) would leave the sort buffers too little. */
#define MEM_MIN (32ULL << 20)

/* The machine's physical memory in bytes; 0 when it can't be told. */
static uint64_t phys_mem(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
	return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

/* A budget beyond the machine's memory is refused here rather than when
 * the job allocates it, after the scan has started. */
bool cli_compression(const char *opt, const char *val, bf_compression *out)
{
	if (bf_compression_parse(val, out) == 0)
		return true;
	cli_fail(BF_EXIT_USAGE, "%s must be none, lz4 or zstd, got '%s'", opt, val);
	return false;
}

bool cli_mem(const char *opt, const char *val, uint64_t *out)
{
	uint64_t phys = phys_mem();
	char b[32];

	if (!cli_size(opt, val, out))
		return false;
	if (*out < MEM_MIN) {
		cli_fail(BF_EXIT_USAGE, "%s must be at least 32M, got '%s'", opt, val);
		return false;
	}
	if (phys && *out > phys) {
		cli_fail(BF_EXIT_USAGE, "%s %s is more than this machine's memory (%s)", opt, val,
			 bf_fmt_bytes(phys, b, sizeof(b)));
		return false;
	}
	return true;
}
