/*
 * Event trace for tests and debugging: when the environment variable
 * BFILL_TRACE names a file, bf_trace appends one line per event to it
 * ("<wall-clock µs> <event> <details>"), with O_APPEND so that several
 * processes can share one file. Without it, nothing happens. The ingest of
 * an import is traced, so a test can tell when each holder ingested.
 */
#ifndef BFILL_UTIL_TRACE_H
#define BFILL_UTIL_TRACE_H

void bf_trace(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
