/*
 * Scratch directories for the examples: each makes a fresh directory,
 * works inside it and removes it at the end. Not part of bfill's API;
 * plain POSIX (a file that includes this defines _XOPEN_SOURCE 700 before
 * any system header, for mkdtemp and nftw).
 */
#ifndef BFILL_EXAMPLE_SCRATCH_H
#define BFILL_EXAMPLE_SCRATCH_H

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<dir>/<name>" into out; false when it does not fit PATH_MAX. */
static inline bool scratch_path(char out[PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	return n >= 0 && n < PATH_MAX;
}

/* A fresh directory "<parent>/<tag>-" plus six random characters (made
 * by mkdtemp) into out; parent NULL or "" means $TMPDIR, else /tmp. Prints why on stderr (prog: ...) and returns
 * false when it cannot be made. */
static inline bool scratch_make(const char *prog, const char *parent, const char *tag,
				char out[PATH_MAX])
{
	char pattern[64];

	if (!parent || !*parent)
		parent = getenv("TMPDIR");
	if (!parent || !*parent)
		parent = "/tmp";
	/* mkdtemp replaces the template's trailing six X's. */
	snprintf(pattern, sizeof(pattern), "%s-XXXXXX", tag);
	if (!scratch_path(out, parent, pattern)) {
		fprintf(stderr, "%s: directory name too long under %s\n", prog, parent);
		return false;
	}
	if (!mkdtemp(out)) {
		fprintf(stderr, "%s: cannot make a directory under %s: %s\n", prog, parent,
			strerror(errno));
		return false;
	}
	return true;
}

static int scratch_remove_entry(const char *path, const struct stat *sb, int type,
				struct FTW *ftw)
{
	(void)sb, (void)type, (void)ftw;
	return remove(path);
}

/* rm -rf dir; prints why on stderr (prog: ...) and returns false when
 * something could not be removed. */
static inline bool scratch_remove(const char *prog, const char *dir)
{
	if (nftw(dir, scratch_remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
		return true;
	fprintf(stderr, "%s: cannot remove %s: %s\n", prog, dir, strerror(errno));
	return false;
}

#endif
