/*
 * Checks shared by the fuzz targets. A broken promise aborts, which
 * libFuzzer reports as a crash and keeps the input for.
 */
#ifndef BFILL_FUZZ_H
#define BFILL_FUZZ_H

#include <stdlib.h>
#include <string.h>

/* Text that reaches messages and status lines: ends inside its buffer and
 * is one printable line. */
static inline void fuzz_one_line(const char *s, size_t size)
{
	if (!memchr(s, '\0', size))
		abort();
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			abort();
}

#endif
