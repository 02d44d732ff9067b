/*
 * A streaming RFC 4180 CSV reader for `bfill load --csv`: it splits input
 * into records and fields and nothing more (the loader gives fields their
 * types). Depends on libc and bfill/error.h only. Not part of the public API.
 *
 * What it accepts:
 *  - fields separated by commas, records ended by LF or CRLF; the last
 *    record may lack a line end. A CR not followed by LF in an unquoted
 *    field is data (so is one at the very end of the input).
 *  - fields in double quotes may hold commas, CR, LF and doubled quotes
 *    (""), which read as one quote; quoted[i] tells "" apart from an empty
 *    unquoted field.
 *  - a completely empty line (nothing between two line ends, LF or CRLF) is
 *    skipped rather than read as a record of one empty field: a blank line,
 *    often a trailing one, is far more likely than a one-column table
 *    holding an empty value. Write "" for that.
 *  - a UTF-8 byte order mark at the very start is skipped.
 * What it refuses, with BF_EINVAL and one line in err (no file name, which
 * the caller adds; lines and columns 1-based, columns in bytes):
 *  - "line L, column C: quote inside an unquoted field"
 *  - "line L, column C: text after a closing quote"
 *  - "line L: quoted field never closed (end of input)", L where it opened
 *  - a record over CSV_RECORD_MAX bytes or CSV_FIELDS_MAX fields, naming
 *    the line where the record started; memory stays bounded by them.
 * A read error is BF_EIO. Errors are final: every later csv_next returns
 * the same code and message.
 */
#ifndef BFILL_CSV_H
#define BFILL_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"

/* Bytes of one record: its field bytes (after unquoting) plus one per field. */
#define CSV_RECORD_MAX ((size_t)64 << 20)
/* Fields in one record. */
#define CSV_FIELDS_MAX 4096

typedef struct csv_reader csv_reader;

/*
 * Opens path for reading; "-" reads standard input, which csv_close leaves
 * open. A missing file is BF_ENOTFOUND, any other failure (a directory
 * included) BF_EIO, with the path and strerror in err. *out is the caller's
 * to csv_close.
 */
int csv_open(const char *path, csv_reader **out, bf_err *err);

/*
 * Reads from fd, which stays the caller's: csv_close does not close it.
 * name (copied; NULL reads as "input") is what I/O errors call the input.
 * *out is the caller's to csv_close.
 */
int csv_open_fd(int fd, const char *name, csv_reader **out, bf_err *err);

/*
 * The next record: 1 with one, 0 at the end of the input, negative on error.
 * fields[i] is field i, NUL-terminated; it holds NUL bytes only where the
 * input does, so lens[i] is its true length. quoted[i] is true when it was
 * in double quotes. Every array and field is borrowed from r until the next
 * csv_next or csv_close; fields may be modified in place within lens[i].
 * lens and quoted may be NULL when not wanted.
 */
int csv_next(csv_reader *r, int *nfields, char *const **fields, const size_t **lens,
	     const bool **quoted, bf_err *err);

/*
 * The 1-based line on which the record last returned started (a quoted
 * field may carry it over several lines); after an error, the line where
 * the failing record started; 0 before the first record.
 */
uint64_t csv_line(const csv_reader *r);

/*
 * Lowers the limits below CSV_RECORD_MAX / CSV_FIELDS_MAX (0 keeps the
 * default; larger values are clamped to it), for callers that want a
 * tighter bound and for tests that reach a limit without 64 MiB of input.
 * Call it before the first csv_next.
 */
void csv_set_limits(csv_reader *r, size_t record_max, int fields_max);

/* Frees r and closes the file csv_open opened. NULL is allowed. */
void csv_close(csv_reader *r);

#endif
