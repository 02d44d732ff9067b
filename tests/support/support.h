/*
 * Helpers shared by bfill's Criterion tests: temporary directories, running
 * the bfill binary and capturing its output.
 */
#ifndef BFILL_TEST_SUPPORT_H
#define BFILL_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) named bfill-<tag>-XXXXXX;
 * the returned string is malloc'd. Aborts the test on failure. */
char *t_tmpdir(const char *tag);
/* rm -rf path and free it (path may be NULL). */
void t_rmdir(char *path);

/* Path of the bfill binary (env BFILL_BIN, else ./bin/bfill). Static. */
const char *t_bfill(void);

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
void t_run_free(t_run *r);

/* Number of lines in s. */
size_t t_count_lines(const char *s);

/* Starts `bfill <args>` in the background (sh -c), output to files under
 * dir; returns the pid. */
int t_spawn_bfillf(const char *logpath, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
