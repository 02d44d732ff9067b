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
bool cli_mem(const char *opt, const char *val, uint64_t *out);
/* A string that fits a field of `size` bytes (NUL included), so it is
 * stored whole rather than cut. */
bool cli_fits(const char *opt, const char *val, size_t size);

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
