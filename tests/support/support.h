/*
 * Helpers shared by bfill's Criterion tests: temporary directories, running
 * the bfill binary and capturing its output, and checking what it printed.
 */
#ifndef BFILL_TEST_SUPPORT_H
#define BFILL_TEST_SUPPORT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) named bfill-<tag>-XXXXXX;
 * the returned string is malloc'd. Aborts the test on failure. */
char *t_tmpdir(const char *tag);
/* rm -rf path and free it (path may be NULL). */
void t_rmdir(char *path);

/* "<dir>/<name>"; malloc'd, the caller frees it. */
char *t_path_in(const char *dir, const char *name);
/* True when p exists (stat succeeds). */
bool t_path_exists(const char *p);
/* The whole file at path, asserting that it opens; malloc'd and
 * NUL-terminated, the caller frees it. */
char *t_read_file(const char *path);

/*
 * The running test's scratch directory, NULL while it has none. Criterion
 * runs every test in a process of its own, so one per process is one per
 * test. Owned here: set by t_scratch_new, freed by t_scratch_remove.
 */
extern char *t_scratch_dir;
/* Creates t_scratch_dir through t_tmpdir(tag), asserting that the test has
 * none yet; returns it (borrowed). */
char *t_scratch_new(const char *tag);
/* Removes t_scratch_dir and sets it to NULL. Meant as a suite's .fini, so
 * the directory goes even when an assertion ends the test early. */
void t_scratch_remove(void);

/* SIGKILLs and reaps *pid when it is > 0, then sets it to 0: .fini hooks
 * use it so no background bfill outlives its test. */
void t_kill_reap(pid_t *pid);

/* Path of the bfill binary (env BFILL_BIN, else ./bin/bfill). Static. */
const char *t_bfill(void);
/* Asserts that the bfill binary is there and executable; a suite's or a
 * test's .init. */
void t_need_bfill(void);

typedef struct t_run {
	int status;      /* exit code, or 128+signal when killed */
	bool signaled;
	char *out;       /* stdout, NUL-terminated, malloc'd */
	char *err;       /* stderr, NUL-terminated, malloc'd */
} t_run;

/*
 * Runs argv (argv[0] is looked up in PATH unless it has a '/') with extra
 * environment entries env ("K=V", NULL-terminated; may be NULL), waits,
 * and captures output. Free with t_run_free.
 */
t_run t_exec(char *const argv[], char *const env[]);
/* printf-style: runs `bfill <args>` through /bin/sh -c. */
t_run t_bfillf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* t_bfillf with BFILL_FAULT=fault in bfill's environment; NULL sets it
 * empty, so no fault armed in the test's own environment gets in. */
t_run t_bfill_faultf(const char *fault, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void t_run_free(t_run *r);

/* Number of lines in s. */
size_t t_count_lines(const char *s);

/* Starts `bfill <args>` in the background (sh -c), stdout and stderr to
 * logpath; returns the pid, which the caller reaps. */
int t_spawn_bfillf(const char *logpath, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* t_spawn_bfillf with BFILL_FAULT=fault (NULL: empty) in bfill's
 * environment. */
int t_spawn_bfill_faultf(const char *fault, const char *logpath, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Runs `bfill gen --store store --rows rows --seed seed --quiet` and
 * asserts that it succeeds. */
void t_bfill_gen(const char *store, long rows, int seed);
/* A new scratch directory (t_scratch_new(tag)) with a store of `rows`
 * sysbench rows in it, made by t_bfill_gen; the store's path is malloc'd. */
char *t_scratch_store(const char *tag, long rows, int seed);
/* Asserts that `bfill check-index` finds index `index` of table sbtest1 in
 * store exact: exit 0 and "<rows> found: OK". */
void t_check_index_ok(const char *store, const char *index, long rows);

/*
 * Asserts that r is an error as bfill's CLI must report one: exit code
 * `code`, nothing on stdout, and exactly one newline-terminated line on
 * stderr that starts with prefix and contains each needle (NULL: none).
 * `what` names the case in the messages. Frees r's output once checked.
 */
void t_expect_cli_error(t_run *r, int code, const char *prefix, const char *what,
			const char *needle1, const char *needle2);

/* Parses text, asserting that it is JSON (`what` names it in the
 * message); the caller frees the result with cJSON_Delete. */
cJSON *t_json_parse(const char *text, const char *what);
/* printf-style: runs `bfill <args>`, asserts that it exits 0 with nothing
 * on stderr, and parses its stdout as JSON; the caller frees the result
 * with cJSON_Delete. */
cJSON *t_bfill_jsonf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Member k of object o, asserting that it is there; borrowed from o. */
const cJSON *t_json_field(const cJSON *o, const char *k);
/* Member k of object o, asserting that it is a number. */
double t_json_num(const cJSON *o, const char *k);
/* Member k of object o, asserting that it is a string; borrowed from o. */
const char *t_json_str(const cJSON *o, const char *k);

/* True when p[0..len) is `groups` runs of 11 digits joined by '-': the
 * shape of sysbench's c (10 groups) and pad (5 groups) columns. */
bool t_is_digit_groups(const void *p, size_t len, int groups);

/* A loopback port the kernel just handed out and the test let go of
 * again, for a server the test starts next. */
int t_free_port(void);

/*
 * A full disk, for real: a tmpfs of `mib` MiB mounted at <scratch>/<name>
 * (the path is malloc'd). Skips the test, saying why, where mounting is
 * not allowed (it needs root or CAP_SYS_ADMIN). One per test;
 * t_small_fs_unmount (a suite's .fini, before t_scratch_remove) lets go
 * of it.
 */
char *t_small_fs(const char *name, int mib);
void t_small_fs_unmount(void);
/* Bytes free on the file system that holds path. */
uint64_t t_free_bytes(const char *path);
/* Fills the file system at fs to the last byte with a file of its own. */
void t_fill_up(const char *fs);

/* Advances a xorshift64 state and returns it: a cheap sequence that
 * repeats from the same seed, for a test's random inputs. */
uint64_t t_xorshift64(uint64_t *state);

#endif
