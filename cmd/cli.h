/*
 * Shared pieces of the bfill command line: exit codes, one-line errors,
 * option helpers and the progress display.
 */
#ifndef BFILL_CMD_CLI_H
#define BFILL_CMD_CLI_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/etcd.h"
#include "bfill/sst.h"
#include "bfill/tls.h"

enum { BF_EXIT_OK = 0, BF_EXIT_FAIL = 1, BF_EXIT_USAGE = 2 };

/* Prints "<prog> <cmd>: <message>" ("<prog>: <message>" when cli_cmd is
 * NULL) on stderr and returns code. The message stays one line: control
 * characters in it (a newline in a RocksDB error, a tab in a name) print
 * as spaces. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exit code for a library error: usage for BF_EINVAL, else failure. */
int cli_exit_for(int rc);
/* The program ("bfill", "bfill-store") and subcommand names used in
 * messages. */
extern const char *cli_prog;
extern const char *cli_cmd;

struct option;
/*
 * getopt_long with bfill's one-line errors. Returns the option, -1 at the
 * end, or '?' after printing why the arguments are wrong. Positional
 * arguments are refused too.
 */
int cli_getopt(int argc, char **argv, const struct option *longopts);

/*
 * Option parsers: each returns false after printing exactly one line that
 * names the option, its value and what it takes (the caller then exits
 * with BF_EXIT_USAGE).
 */
/* A non-negative integer. */
bool cli_u64(const char *opt, const char *val, uint64_t *out);
/* An integer in lo..hi; unit ("seconds") follows the range in the message. */
bool cli_u64_in(const char *opt, const char *val, uint64_t lo, uint64_t hi, const char *unit,
		uint64_t *out);
/* A size like 512M. */
bool cli_size(const char *opt, const char *val, uint64_t *out);
/* A sort memory budget: a size, at least 128M, at most the machine's
 * memory (refused here rather than when a job allocates it). */
/* A compression name (none, lz4, zstd) for option opt; false after one
 * usage line. */
bool cli_compression(const char *opt, const char *val, bf_compression *out);
bool cli_mem(const char *opt, const char *val, uint64_t *out);
/* A string that fits a field of `size` bytes (NUL included), so it is
 * stored whole rather than cut. */
bool cli_fits(const char *opt, const char *val, size_t size);

/* ---- connection security, parsed once for every command ---- */

/* Option codes of the security flags, above every letter. */
enum {
	CLI_OPT_ETCD_CACERT = 0x100,
	CLI_OPT_ETCD_CERT,
	CLI_OPT_ETCD_KEY,
	CLI_OPT_ETCD_USER,
	CLI_OPT_ETCD_PASSWORD_FILE,
	CLI_OPT_CACERT,
	CLI_OPT_CERT,
	CLI_OPT_KEY,
	CLI_OPT_REQUIRE_CLIENT_CERT,
};

/*
 * How a command secures its connections to etcd (bf_etcd_security: TLS
 * and authentication): every command that takes --etcd puts these
 * in its options, hands each option to cli_etcd_security_opt, and checks
 * the lot with cli_etcd_security_check once --etcd is known.
 */
#define CLI_ETCD_SECURITY_OPTS                                                   \
	{ "etcd-cacert", required_argument, 0, CLI_OPT_ETCD_CACERT },            \
	{ "etcd-cert", required_argument, 0, CLI_OPT_ETCD_CERT },                \
	{ "etcd-key", required_argument, 0, CLI_OPT_ETCD_KEY },                  \
	{ "etcd-user", required_argument, 0, CLI_OPT_ETCD_USER },                \
	{ "etcd-password-file", required_argument, 0, CLI_OPT_ETCD_PASSWORD_FILE }
/* True when c was one of CLI_ETCD_SECURITY_OPTS (its value, borrowed from
 * argv, is then in sec). */
bool cli_etcd_security_opt(int c, const char *val, bf_etcd_security *sec);
/* True when sec was given any setting. */
bool cli_etcd_security_given(const bf_etcd_security *sec);
/*
 * Usage checks of sec against etcd (the --etcd value; NULL or "none": no
 * etcd, and then no setting may be given; "": endpoints not known here, a
 * job's, which the library checks): an https:// endpoint needs
 * --etcd-cacert, http:// takes no TLS, --etcd-cert goes with --etcd-key,
 * every file can be read. With --etcd-user it reads the password
 * (--etcd-password-file's first line, else BFILL_ETCD_PASSWORD) into
 * sec->password, which then lives as long as the process. False after
 * one line.
 */
bool cli_etcd_security_check(const char *etcd, bf_etcd_security *sec);

/* TLS to the store nodes (--cacert, --cert, --key), in the same way. */
#define CLI_STORE_TLS_OPTS                                                       \
	{ "cacert", required_argument, 0, CLI_OPT_CACERT },                      \
	{ "cert", required_argument, 0, CLI_OPT_CERT },                          \
	{ "key", required_argument, 0, CLI_OPT_KEY }
/* True when c was one of CLI_STORE_TLS_OPTS or --require-client-cert
 * (CLI_OPT_REQUIRE_CLIENT_CERT, a server's). */
bool cli_tls_opt(int c, const char *val, bf_tls *tls);
/* Usage checks of tls for its role (a server, bfill-store, uses it both
 * ways) and that every file can be read. False after one line. */
bool cli_tls_check(const bf_tls *tls, bool server);
/* File i of t (0 the CA, 1 the certificate, 2 the key; CLI_TLS_FILES in
 * all), NULL when t names none, and in *flag its flag's name after the
 * prefix ("cacert", "cert", "key"). Both borrowed. */
#define CLI_TLS_FILES 3
const char *cli_tls_file(const bf_tls *t, int i, const char **flag);

/* What --help says of the security flags, for every command with --etcd
 * (and --cluster: the store nodes' flags). */
#define CLI_ETCD_SECURITY_HELP                                                                   \
	"TLS to etcd: --etcd-cacert FILE (the CA of etcd's certificate; needed by https://\n"     \
	"endpoints, which host:port may also be) and --etcd-cert FILE --etcd-key FILE (this\n"    \
	"client's, when etcd asks for one). etcd authentication: --etcd-user NAME with the\n"     \
	"password in --etcd-password-file FILE or $BFILL_ETCD_PASSWORD. See docs/security.md.\n"
#define CLI_STORE_TLS_HELP                                                                       \
	"TLS to the store nodes (with --cluster): --cacert FILE [--cert FILE --key FILE].\n"

/*
 * Ends a command: stdout is flushed, and output that could not be written
 * (a full disk, /dev/full, a closed pipe) turns a success into one line on
 * stderr and BF_EXIT_FAIL. Returns the exit code.
 */
int cli_finish(int code);

/* ---- JSON output, built with cJSON so every string is escaped ---- */

/* Prints o as one line on stdout and frees it; BF_EXIT_OK, or BF_EXIT_FAIL
 * after one line on stderr when it could not be rendered. */
int cli_json_print(cJSON *o);
/* Adds number v under k, or null when !known: an unknown value is never
 * shown as a made-up 0. */
void cli_json_num_or_null(cJSON *o, const char *k, bool known, double v);
/* v rounded to `decimals` places, for figures whose noise is not worth
 * printing (seconds to the millisecond, rates to the row). */
double cli_round(double v, int decimals);
/* gen's and load's --json: the table, its id, rows, bytes, files,
 * seconds and rows/s of s. As cli_json_print. */
struct bf_gen_stats;
int cli_print_rows_json(const char *table, const struct bf_gen_stats *s);

/* Progress: a redrawn bar on a terminal, plain lines every few seconds
 * otherwise. */
typedef struct cli_progress {
	bool tty;
	bool quiet;
	int64_t start_ms, last_ms;
	bool drawn;
} cli_progress;

void cli_progress_init(cli_progress *p, bool quiet);
void cli_progress_update(cli_progress *p, const char *phase, uint64_t done,
			 uint64_t total, const char *note);
void cli_progress_done(cli_progress *p);

int cmd_gen(int argc, char **argv);
int cmd_create_table(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_add_index(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check_index(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_drop_index(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_worker(int argc, char **argv);

#endif
