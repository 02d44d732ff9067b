/*
 * bf_trace (see util/trace.h). Depends on libc only.
 */
#include "util/trace.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void bf_trace(const char *event, const char *fmt, ...)
{
	const char *path = getenv("BFILL_TRACE");
	char line[1024];
	struct timespec ts;
	va_list ap;
	int n, fd;

	if (!path || !*path)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "%" PRId64 " %s ",
		     (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, event);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write with O_APPEND: lines of several processes never mix. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) < 0) {
		/* A trace that can't be written is no reason to fail. */
	}
	close(fd);
}
