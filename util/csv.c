/*
 * The CSV reader (util/csv.h). Input is read in CSV_BLOCK blocks with
 * read(2) and parsed by a small state machine that survives block
 * boundaries, so a record may straddle any number of blocks and no byte is
 * ever read twice. Field bytes are copied into one record buffer that grows
 * geometrically up to the record limit: a block can then be refilled as
 * soon as it is scanned, and quoted fields are unquoted on the way. The hot
 * loops are a table lookup per byte for unquoted fields and memchr for
 * quoted ones. Depends on libc and util/error.c only.
 */
#include "util/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large enough that read(2) costs nothing per row, small enough to stay in L2/L3. */
#define CSV_BLOCK ((size_t)1 << 20)
#define RECORD_INITIAL ((size_t)64 << 10)
#define FIELDS_INITIAL 16

typedef enum parse_state {
	ST_FIELD_START,     /* nothing of the field read yet */
	ST_UNQUOTED,        /* inside an unquoted field */
	ST_QUOTED,          /* inside double quotes */
	ST_QUOTE,           /* a quote inside quotes: doubled, or the closing one */
	ST_CR_AFTER_QUOTE,  /* closing quote then CR: only LF may follow */
} parse_state;

struct csv_reader {
	int fd;
	bool own_fd;
	char *name;           /* for I/O errors; owned */

	char *block;          /* CSV_BLOCK bytes; owned */
	size_t block_len;     /* bytes of block holding input */
	size_t pos;           /* next byte of block to scan */
	uint64_t block_base;  /* stream offset of block[0] */
	bool eof;
	bool bom_checked;

	uint64_t line;        /* line of the byte at pos */
	uint64_t line_start;  /* stream offset where that line starts */
	uint64_t record_line; /* where the record being read started */
	uint64_t returned_line; /* what csv_line reports */
	uint64_t quote_line;  /* where the open quoted field started */
	uint64_t cr_offset;   /* stream offset of the CR in ST_CR_AFTER_QUOTE */
	parse_state state;

	char *rec;            /* field bytes, each NUL-terminated; owned */
	size_t rec_len, rec_cap;
	size_t field_start;   /* offset in rec of the field being read */
	bool field_quoted;

	int nfields, fields_cap;
	size_t *starts;       /* offsets in rec, turned into fields at the end */
	char **fields;
	size_t *lens;
	bool *quoted;

	size_t record_max;
	int fields_max;

	int failed;           /* the first error, returned again ever after */
	bf_err fail;
};

/* Bytes that end a run of an unquoted field. CR is not one of them: it is
 * copied, and dropped again when an LF follows it. */
static const unsigned char unquoted_stop[256] = {
	[','] = 1, ['\n'] = 1, ['"'] = 1,
};

/* Records the error in r (errors are final) and in err; returns code. */
static int __attribute__((format(printf, 4, 5)))
failf(csv_reader *r, bf_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	r->failed = code;
	r->fail.code = code;
	va_start(ap, fmt);
	vsnprintf(r->fail.msg, sizeof(r->fail.msg), fmt, ap);
	va_end(ap);
	r->returned_line = r->record_line;
	if (err)
		*err = r->fail;
	return code;
}

/* 1-based byte column of block position p on the current line. */
static unsigned long long column_at(const csv_reader *r, const char *p)
{
	return (unsigned long long)(r->block_base + (uint64_t)(p - r->block) - r->line_start + 1);
}

/* Makes room for extra more bytes of the record, within record_max. */
static int reserve(csv_reader *r, size_t extra, bf_err *err)
{
	size_t need = r->rec_len + extra, cap;
	char *grown;

	if (need <= r->rec_cap)
		return 0;
	if (extra > r->record_max || need > r->record_max)
		return failf(r, err, BF_EINVAL, "line %llu: record longer than %zu bytes",
			     (unsigned long long)r->record_line, r->record_max);
	cap = r->rec_cap ? r->rec_cap : RECORD_INITIAL;
	while (cap < need)
		cap *= 2;
	if (cap > r->record_max)
		cap = r->record_max;
	grown = realloc(r->rec, cap);
	if (!grown)
		return failf(r, err, BF_ENOMEM, "line %llu: no memory for a record of %zu bytes",
			     (unsigned long long)r->record_line, cap);
	r->rec = grown;
	r->rec_cap = cap;
	return 0;
}

/* Appends n bytes to the field, keeping room for its NUL. */
static inline int append(csv_reader *r, const char *src, size_t n, bf_err *err)
{
	if (r->rec_len + n + 1 > r->rec_cap) {
		int rc = reserve(r, n + 1, err);
		if (rc)
			return rc;
	}
	memcpy(r->rec + r->rec_len, src, n);
	r->rec_len += n;
	return 0;
}

/* Grows the per-field arrays by doubling, within fields_max. */
static int grow_fields(csv_reader *r, bf_err *err)
{
	int cap = r->fields_cap ? r->fields_cap * 2 : FIELDS_INITIAL;
	void *p;

	if (cap > r->fields_max)
		cap = r->fields_max;
	/* Each array is stored as soon as it grows, so a later failure
	 * leaves every pointer valid for csv_close. */
	if (!(p = realloc(r->starts, (size_t)cap * sizeof(*r->starts))))
		goto nomem;
	r->starts = p;
	if (!(p = realloc(r->fields, (size_t)cap * sizeof(*r->fields))))
		goto nomem;
	r->fields = p;
	if (!(p = realloc(r->lens, (size_t)cap * sizeof(*r->lens))))
		goto nomem;
	r->lens = p;
	if (!(p = realloc(r->quoted, (size_t)cap * sizeof(*r->quoted))))
		goto nomem;
	r->quoted = p;
	r->fields_cap = cap;
	return 0;
nomem:
	return failf(r, err, BF_ENOMEM, "line %llu: no memory for %d fields",
		     (unsigned long long)r->record_line, cap);
}

/* Closes the field being read and starts the next one. */
static int end_field(csv_reader *r, bf_err *err)
{
	int rc;

	if (r->nfields == r->fields_cap) {
		if (r->nfields >= r->fields_max)
			return failf(r, err, BF_EINVAL, "line %llu: more than %d fields in a record",
				     (unsigned long long)r->record_line, r->fields_max);
		if ((rc = grow_fields(r, err)))
			return rc;
	}
	if (r->rec_len + 1 > r->rec_cap && (rc = reserve(r, 1, err)))
		return rc;
	r->starts[r->nfields] = r->field_start;
	r->lens[r->nfields] = r->rec_len - r->field_start;
	r->quoted[r->nfields] = r->field_quoted;
	r->nfields++;
	r->rec[r->rec_len++] = '\0';
	r->field_start = r->rec_len;
	r->field_quoted = false;
	r->state = ST_FIELD_START;
	return 0;
}

/* Forgets the record read so far; the next one starts at the current line. */
static void reset_record(csv_reader *r)
{
	r->rec_len = 0;
	r->field_start = 0;
	r->field_quoted = false;
	r->nfields = 0;
	r->state = ST_FIELD_START;
	r->record_line = r->line;
}

/* Counts the line ends in [p, end) of the block. */
static void count_lines(csv_reader *r, const char *p, const char *end)
{
	const char *lf;

	while (p < end && (lf = memchr(p, '\n', (size_t)(end - p)))) {
		r->line++;
		p = lf + 1;
		r->line_start = r->block_base + (uint64_t)(p - r->block);
	}
}

/* Reads into block from block_len on; *got is 0 at the end of the input. */
static int read_more(csv_reader *r, size_t *got, bf_err *err)
{
	ssize_t n;

	do
		n = read(r->fd, r->block + r->block_len, CSV_BLOCK - r->block_len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return failf(r, err, BF_EIO, "%s: read: %s", r->name, strerror(errno));
	if (n == 0)
		r->eof = true;
	r->block_len += (size_t)n;
	*got = (size_t)n;
	return 0;
}

/* Starts a fresh block once the last one is scanned. */
static int refill(csv_reader *r, bf_err *err)
{
	size_t got;

	r->block_base += r->block_len;
	r->block_len = 0;
	r->pos = 0;
	return read_more(r, &got, err);
}

/* Skips a UTF-8 byte order mark at the very start; short reads (a pipe)
 * may deliver it a byte at a time. */
static int skip_bom(csv_reader *r, bf_err *err)
{
	static const char bom[3] = { '\xef', '\xbb', '\xbf' };
	size_t got;
	int rc;

	r->bom_checked = true;
	while (r->block_len < sizeof(bom) && !r->eof)
		if ((rc = read_more(r, &got, err)))
			return rc;
	if (r->block_len >= sizeof(bom) && !memcmp(r->block, bom, sizeof(bom))) {
		r->pos = sizeof(bom);
		/* Columns count from after the mark, as an editor shows them. */
		r->line_start = sizeof(bom);
	}
	return 0;
}

/* The record is complete: lays out the caller's view of it. */
static int deliver(csv_reader *r, int *nfields, char *const **fields, const size_t **lens,
		   const bool **quoted)
{
	for (int i = 0; i < r->nfields; i++)
		r->fields[i] = r->rec + r->starts[i];
	*nfields = r->nfields;
	*fields = r->fields;
	if (lens)
		*lens = r->lens;
	if (quoted)
		*quoted = r->quoted;
	r->returned_line = r->record_line;
	return 1;
}

/* Input ended in r->state: the last record, nothing, or an error. */
static int at_end(csv_reader *r, bf_err *err)
{
	uint64_t cr_col;

	switch (r->state) {
	case ST_FIELD_START:
		/* After a separator there is one more (empty) field; at a
		 * record boundary there is nothing left. */
		if (r->nfields == 0)
			return 0;
		break;
	case ST_UNQUOTED:
	case ST_QUOTE:
		break;
	case ST_QUOTED:
		return failf(r, err, BF_EINVAL, "line %llu: quoted field never closed (end of input)",
			     (unsigned long long)r->quote_line);
	case ST_CR_AFTER_QUOTE:
		cr_col = r->cr_offset - r->line_start + 1;
		return failf(r, err, BF_EINVAL, "line %llu, column %llu: text after a closing quote",
			     (unsigned long long)r->line, (unsigned long long)cr_col);
	}
	int rc = end_field(r, err);
	return rc ? rc : 1;
}

int csv_next(csv_reader *r, int *nfields, char *const **fields, const size_t **lens,
	     const bool **quoted, bf_err *err)
{
	int rc;

	if (r->failed) {
		if (err)
			*err = r->fail;
		return r->failed;
	}
	if (!r->bom_checked && (rc = skip_bom(r, err)))
		return rc;
	reset_record(r);
	for (;;) {
		if (r->pos == r->block_len) {
			if (r->eof) {
				rc = at_end(r, err);
				break;
			}
			if ((rc = refill(r, err)))
				return rc;
			continue;
		}
		char *p = r->block + r->pos, *end = r->block + r->block_len, *q;

		switch (r->state) {
		case ST_FIELD_START:
			if (*p == '"') {
				r->field_quoted = true;
				r->quote_line = r->line;
				r->state = ST_QUOTED;
				r->pos++;
			} else {
				r->state = ST_UNQUOTED;
			}
			continue;
		case ST_UNQUOTED:
			for (q = p; q < end && !unquoted_stop[(unsigned char)*q]; q++)
				;
			if ((rc = append(r, p, (size_t)(q - p), err)))
				return rc;
			r->pos = (size_t)(q - r->block);
			if (q == end)
				continue;
			if (*q == '"')
				return failf(r, err, BF_EINVAL,
					     "line %llu, column %llu: quote inside an unquoted field",
					     (unsigned long long)r->line, column_at(r, q));
			r->pos++;
			if (*q == ',') {
				if ((rc = end_field(r, err)))
					return rc;
				continue;
			}
			/* '\n': a CR just before it belongs to the line end. */
			if (r->rec_len > r->field_start && r->rec[r->rec_len - 1] == '\r')
				r->rec_len--;
			r->line++;
			r->line_start = r->block_base + r->pos;
			if (r->nfields == 0 && r->rec_len == r->field_start) {
				reset_record(r); /* an empty line is no record */
				continue;
			}
			if ((rc = end_field(r, err)))
				return rc;
			rc = 1;
			break;
		case ST_QUOTED:
			q = memchr(p, '"', (size_t)(end - p));
			if (!q)
				q = end;
			count_lines(r, p, q);
			if ((rc = append(r, p, (size_t)(q - p), err)))
				return rc;
			r->pos = (size_t)(q - r->block);
			if (q < end) {
				r->pos++;
				r->state = ST_QUOTE;
			}
			continue;
		case ST_QUOTE:
			if (*p == '"') {
				/* The first quote of a doubled pair stands for one. */
				if ((rc = append(r, p, 1, err)))
					return rc;
				r->pos++;
				r->state = ST_QUOTED;
				continue;
			}
			if (*p == '\r') {
				r->cr_offset = r->block_base + r->pos;
				r->pos++;
				r->state = ST_CR_AFTER_QUOTE;
				continue;
			}
			if (*p != ',' && *p != '\n')
				return failf(r, err, BF_EINVAL,
					     "line %llu, column %llu: text after a closing quote",
					     (unsigned long long)r->line, column_at(r, p));
			r->pos++;
			if ((rc = end_field(r, err)))
				return rc;
			if (*p == ',')
				continue;
			r->line++;
			r->line_start = r->block_base + r->pos;
			rc = 1;
			break;
		case ST_CR_AFTER_QUOTE:
			if (*p != '\n')
				return failf(r, err, BF_EINVAL,
					     "line %llu, column %llu: text after a closing quote",
					     (unsigned long long)r->line,
					     (unsigned long long)(r->cr_offset - r->line_start + 1));
			r->pos++;
			r->line++;
			r->line_start = r->block_base + r->pos;
			if ((rc = end_field(r, err)))
				return rc;
			rc = 1;
			break;
		}
		break;
	}
	if (rc == 1)
		rc = deliver(r, nfields, fields, lens, quoted);
	return rc;
}

uint64_t csv_line(const csv_reader *r)
{
	return r->returned_line;
}

void csv_set_limits(csv_reader *r, size_t record_max, int fields_max)
{
	r->record_max = record_max && record_max < CSV_RECORD_MAX ? record_max : CSV_RECORD_MAX;
	r->fields_max = fields_max > 0 && fields_max < CSV_FIELDS_MAX ? fields_max : CSV_FIELDS_MAX;
}

int csv_open_fd(int fd, const char *name, csv_reader **out, bf_err *err)
{
	csv_reader *r = calloc(1, sizeof(*r));
	int rc = 0;

	*out = NULL;
	if (!r || !(r->name = strdup(name ? name : "input")) || !(r->block = malloc(CSV_BLOCK))) {
		rc = bf_errf(err, BF_ENOMEM, "%s: no memory for a CSV reader", name ? name : "input");
		goto out;
	}
	r->fd = fd;
	r->line = 1;
	r->record_line = 1;
	csv_set_limits(r, 0, 0);
	*out = r;
	r = NULL;
out:
	csv_close(r);
	return rc;
}

int csv_open(const char *path, csv_reader **out, bf_err *err)
{
	struct stat st;
	int fd = -1, rc;

	*out = NULL;
	if (!strcmp(path, "-"))
		return csv_open_fd(STDIN_FILENO, "standard input", out, err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = bf_errf(err, errno == ENOENT ? BF_ENOTFOUND : BF_EIO, "%s: %s", path,
			     strerror(errno));
		goto out;
	}
	/* A directory opens fine and fails only at the first read; say so now. */
	if (fstat(fd, &st) < 0) {
		rc = bf_errf(err, BF_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = bf_errf(err, BF_EIO, "%s: %s", path, strerror(EISDIR));
		goto out;
	}
	if (S_ISREG(st.st_mode))
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((rc = csv_open_fd(fd, path, out, err)))
		goto out;
	(*out)->own_fd = true;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void csv_close(csv_reader *r)
{
	if (!r)
		return;
	if (r->own_fd)
		close(r->fd);
	free(r->name);
	free(r->block);
	free(r->rec);
	free(r->starts);
	free(r->fields);
	free(r->lens);
	free(r->quoted);
	free(r);
}
