/*
 * csv: records and fields as RFC 4180 has them, the reader's own rules
 * (empty lines, lone CRs, the BOM), every error with its line and column,
 * records that straddle the reader's read blocks at every offset that
 * matters, its limits, and its inputs: files, pipes, standard input.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfill/error.h"
#include "tests/support/support.h"
#include "util/csv.h"

/* The reader's read(2) block (CSV_BLOCK in util/csv.c): reads of a regular
 * file return whole blocks, so the boundary tests know where it falls. */
#define READ_BLOCK ((size_t)1 << 20)

TestSuite(csv, .fini = t_scratch_remove);

/* Opens data[0..n) through a file in the scratch directory, unlinked at
 * once (the reader keeps it open). */
static csv_reader *open_input(const void *data, size_t n)
{
	static int seq;
	char name[32];
	csv_reader *r = NULL;
	bf_err err;

	if (!t_scratch_dir)
		t_scratch_new("csv");
	snprintf(name, sizeof(name), "in%d.csv", seq++);
	char *path = t_path_in(t_scratch_dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert(f, "fopen %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
	bf_err_clear(&err);
	cr_assert_eq(csv_open(path, &r, &err), 0, "csv_open: %s", bf_err_text(&err));
	cr_assert_eq(unlink(path), 0);
	free(path);
	return r;
}

static const char *code_name(int rc)
{
	return rc == BF_EINVAL ? "EINVAL" : rc == BF_EIO ? "EIO" : rc == BF_ENOMEM ? "ENOMEM" : "?";
}

/* Field bytes with \n, \r, \0 and \\ spelled out, so a dump is one line. */
static void put_escaped(FILE *out, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (p[i]) {
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\0': fputs("\\0", out); break;
		case '\\': fputs("\\\\", out); break;
		default: fputc(p[i], out); break;
		}
	}
}

/*
 * Every record r still has, one per line as "L:[field]{quoted field}",
 * L being csv_line; a failure ends it with "error CODE: message". Checks
 * each field's NUL terminator and that a message is one line. Malloc'd.
 */
static char *dump_reader(csv_reader *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	cr_assert(out);
	for (;;) {
		int n = -1, rc;
		char *const *fields;
		const size_t *lens;
		const bool *quoted;
		bf_err err;

		bf_err_clear(&err);
		rc = csv_next(r, &n, &fields, &lens, &quoted, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			cr_assert_eq(err.code, rc);
			cr_assert_null(strchr(err.msg, '\n'), "message has a newline: %s", err.msg);
			fprintf(out, "error %s: %s", code_name(rc), err.msg);
			break;
		}
		cr_assert_eq(rc, 1);
		cr_assert(n >= 1);
		fprintf(out, "%llu:", (unsigned long long)csv_line(r));
		for (int i = 0; i < n; i++) {
			cr_assert_eq(fields[i][lens[i]], '\0', "field %d not NUL-terminated", i);
			fputc(quoted[i] ? '{' : '[', out);
			put_escaped(out, fields[i], lens[i]);
			fputc(quoted[i] ? '}' : ']', out);
		}
		fputc('\n', out);
	}
	cr_assert_eq(fclose(out), 0);
	return text;
}

static void expect_parse(const char *input, size_t n, const char *want)
{
	csv_reader *r = open_input(input, n);
	char *got = dump_reader(r);

	cr_assert_str_eq(got, want, "input \"%s\"", input);
	free(got);
	csv_close(r);
}

/* A string literal with its length, NUL bytes and all. */
#define EXPECT(input, want) expect_parse(input, sizeof(input) - 1, want)

Test(csv, simple_records)
{
	EXPECT("a,b,c\n1,2,3\n", "1:[a][b][c]\n2:[1][2][3]\n");
	EXPECT("one\n", "1:[one]\n");
	EXPECT(" spaced , out \n", "1:[ spaced ][ out ]\n");
	EXPECT("", "");
}

Test(csv, quoted_fields)
{
	EXPECT("\"a,b\",\"x\ny\",\"say \"\"hi\"\"\"\n", "1:{a,b}{x\\ny}{say \"hi\"}\n");
	EXPECT("\"\"\"\"\n", "1:{\"}\n");
	EXPECT("\"a\",b,\"c\"\n", "1:{a}[b]{c}\n");
	/* CR and CRLF inside quotes are data. */
	EXPECT("\"a\r\nb\rc\"\n", "1:{a\\r\\nb\\rc}\n");
}

Test(csv, crlf_and_lone_cr)
{
	EXPECT("a,b\r\nc,d\r\n", "1:[a][b]\n2:[c][d]\n");
	EXPECT("\"a\",\"b\"\r\n\"c\"\r\n", "1:{a}{b}\n2:{c}\n");
	/* A CR not followed by LF in an unquoted field is data, even at the
	 * end of the input; only the one just before an LF is a line end. */
	EXPECT("a\rb,c\r\n", "1:[a\\rb][c]\n");
	EXPECT("a\r\r\n", "1:[a\\r]\n");
	EXPECT("a,b\r", "1:[a][b\\r]\n");
	EXPECT("a,\r\n", "1:[a][]\n");
}

Test(csv, no_final_line_end)
{
	EXPECT("a,b\nc,d", "1:[a][b]\n2:[c][d]\n");
	EXPECT("a,\"b\"", "1:[a]{b}\n");
	EXPECT("a,b,", "1:[a][b][]\n");
	EXPECT("\"\"", "1:{}\n");
	EXPECT("x", "1:[x]\n");
}

Test(csv, empty_and_quoted_empty_fields)
{
	EXPECT(",\"\",\n", "1:[]{}[]\n");
	EXPECT(",\n", "1:[][]\n");
	EXPECT("\"\",\"\"\n", "1:{}{}\n");
	/* One quoted empty field is a record; an empty line is not. */
	EXPECT("\"\"\n\n\"\"\n", "1:{}\n3:{}\n");
}

Test(csv, empty_lines_skipped)
{
	EXPECT("\n\na\n\r\n\nb\n\n", "3:[a]\n6:[b]\n");
	EXPECT("\n", "");
	EXPECT("\r\n\r\n", "");
	/* Not empty: a space, or a lone CR, is a field. */
	EXPECT(" \n", "1:[ ]\n");
	EXPECT("\r\r\n", "1:[\\r]\n");
}

Test(csv, nul_bytes)
{
	EXPECT("a\0b,\"\0\"\n", "1:[a\\0b]{\\0}\n");
}

Test(csv, byte_order_mark)
{
	EXPECT("\xef\xbb\xbf" "a,b\n", "1:[a][b]\n");
	EXPECT("\xef\xbb\xbf", "");
	EXPECT("\xef\xbb\xbf\"q\"\n", "1:{q}\n");
	/* Only at the very start; elsewhere it is data. */
	EXPECT("a\n\xef\xbb\xbf" "b\n", "1:[a]\n2:[\xef\xbb\xbf" "b]\n");
	EXPECT("\xef\xbb", "1:[\xef\xbb]\n");
	/* Columns count from after it. */
	EXPECT("\xef\xbb\xbf" "ab\"c\n",
	       "error EINVAL: line 1, column 3: quote inside an unquoted field");
}

Test(csv, quote_inside_unquoted_field)
{
	EXPECT("a,b\"c\n", "error EINVAL: line 1, column 4: quote inside an unquoted field");
	EXPECT("x\nab\"\n", "1:[x]\nerror EINVAL: line 2, column 3: quote inside an unquoted field");
	EXPECT(" \"a\"\n", "error EINVAL: line 1, column 2: quote inside an unquoted field");
}

Test(csv, text_after_closing_quote)
{
	EXPECT("\"a\"b\n", "error EINVAL: line 1, column 4: text after a closing quote");
	EXPECT("x,\"a\" ,b\n", "error EINVAL: line 1, column 6: text after a closing quote");
	/* A CR after a closing quote must start a CRLF. */
	EXPECT("\"a\"\r\r\n", "error EINVAL: line 1, column 4: text after a closing quote");
	EXPECT("\"a\"\rb\n", "error EINVAL: line 1, column 4: text after a closing quote");
	EXPECT("\"a\"\r", "error EINVAL: line 1, column 4: text after a closing quote");
	/* After a field over several lines: the line and column of the text. */
	EXPECT("\"a\nbc\"x\n", "error EINVAL: line 2, column 4: text after a closing quote");
}

Test(csv, unterminated_quoted_field)
{
	EXPECT("a\n\"b\nc\nd", "1:[a]\nerror EINVAL: line 2: quoted field never closed (end of input)");
	EXPECT("x,\"", "error EINVAL: line 1: quoted field never closed (end of input)");
	EXPECT("\"a\"\"", "error EINVAL: line 1: quoted field never closed (end of input)");
	/* The line where the quote opened, not where its record started. */
	EXPECT("p\nq,\"r\n\n\ns\",\"t\n",
	       "1:[p]\nerror EINVAL: line 5: quoted field never closed (end of input)");
}

Test(csv, errors_are_final)
{
	static const char in[] = "ok\n\nbad\"\nnever,read\n";
	csv_reader *r = open_input(in, sizeof(in) - 1);
	char *const *fields;
	int n;
	bf_err err;

	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, NULL), 1);
	cr_assert_eq(csv_line(r), 1);
	bf_err_clear(&err);
	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, &err), BF_EINVAL);
	cr_assert_str_eq(err.msg, "line 3, column 4: quote inside an unquoted field");
	cr_assert_eq(csv_line(r), 3, "csv_line names the failing record's line");
	bf_err_clear(&err);
	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, &err), BF_EINVAL);
	cr_assert_str_eq(err.msg, "line 3, column 4: quote inside an unquoted field");
	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, NULL), BF_EINVAL);
	csv_close(r);
}

Test(csv, lines_across_multiline_fields)
{
	EXPECT("a,\"x\ny\nz\"\nb\n\"p\r\nq\",r\r\n\n\"\n\"\nlast",
	       "1:[a]{x\\ny\\nz}\n4:[b]\n5:{p\\r\\nq}[r]\n8:{\\n}\n10:[last]\n");
	/* csv_line before any record. */
	csv_reader *r = open_input("a\n", 2);
	cr_assert_eq(csv_line(r), 0);
	csv_close(r);
}

Test(csv, borrowed_arrays_optional)
{
	static const char in[] = "a,\"b\"\n";
	csv_reader *r = open_input(in, sizeof(in) - 1);
	char *const *fields;
	int n;

	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, NULL), 1);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(fields[0], "a");
	cr_assert_str_eq(fields[1], "b");
	/* Fields may be changed in place. */
	fields[1][0] = 'B';
	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, NULL), 0);
	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, NULL), 0, "the end stays the end");
	csv_close(r);
	csv_close(NULL);
}

/* size 'x' bytes and then tail, malloc'd; *n is the total length. */
static char *x_then(size_t size, const char *tail, size_t *n)
{
	size_t tail_len = strlen(tail);
	char *buf = malloc(size + tail_len);

	cr_assert(buf);
	memset(buf, 'x', size);
	memcpy(buf + size, tail, tail_len);
	*n = size + tail_len;
	return buf;
}

/* Reads the next record of r, asserting that it is line 1 and one unquoted
 * field of `size` x's: the record that fills the first block. */
static void expect_long_x(csv_reader *r, size_t size)
{
	char *const *fields;
	const size_t *lens;
	const bool *quoted;
	int n;
	bf_err err;

	bf_err_clear(&err);
	cr_assert_eq(csv_next(r, &n, &fields, &lens, &quoted, &err), 1, "%s", bf_err_text(&err));
	cr_assert_eq(n, 1);
	cr_assert_eq(lens[0], size);
	cr_assert(!quoted[0]);
	for (size_t i = 0; i < size; i++)
		cr_assert_eq(fields[0][i], 'x', "byte %zu of %zu", i, size);
	cr_assert_eq(csv_line(r), 1);
}

/*
 * A first record of `size` bytes pushes what follows across the end of the
 * first read block; every size from 24 bytes short of it to 2 past it puts
 * another byte of a CRLF, a doubled quote, a closing quote, a separator or
 * a quoted CRLF right at the boundary.
 */
Test(csv, records_straddle_block_boundary)
{
	static const char tail[] = "\r\n\"q\"\"z\",\"m\r\nn\"\r\n\"\",tail\r\n";
	static const char want[] = "2:{q\"z}{m\\r\\nn}\n4:{}[tail]\n";

	for (size_t size = READ_BLOCK - 24; size <= READ_BLOCK + 2; size++) {
		size_t n;
		char *buf = x_then(size, tail, &n);
		csv_reader *r = open_input(buf, n);

		expect_long_x(r, size);
		char *got = dump_reader(r);
		cr_assert_str_eq(got, want, "first record of %zu bytes", size);
		free(got);
		csv_close(r);
		free(buf);
	}
}

/* Errors whose offending byte lands on either side of the boundary still
 * name the right line and column. */
Test(csv, errors_straddle_block_boundary)
{
	static const struct {
		const char *tail;
		const char *want;
	} cases[] = {
		{ "\n\"ab\"c\n", "error EINVAL: line 2, column 5: text after a closing quote" },
		{ "\r\n\"ab\"\rc", "error EINVAL: line 2, column 5: text after a closing quote" },
		{ "\nab\"\n", "error EINVAL: line 2, column 3: quote inside an unquoted field" },
		{ "\n\"a\nb\"\"", "error EINVAL: line 2: quoted field never closed (end of input)" },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (size_t size = READ_BLOCK - 8; size <= READ_BLOCK + 1; size++) {
			size_t n;
			char *buf = x_then(size, cases[c].tail, &n);
			csv_reader *r = open_input(buf, n);

			expect_long_x(r, size);
			char *got = dump_reader(r);
			cr_assert_str_eq(got, cases[c].want, "case %zu, first record of %zu bytes", c, size);
			free(got);
			csv_close(r);
			free(buf);
		}
	}
}

/* One generated record: what the reader must give back, and how it is
 * written. */
typedef struct gen_record {
	int nfields;
	char bytes[8][4096];
	size_t lens[8];
	bool quoted[8];
	bool crlf;
	int blank_lines; /* empty lines before it */
} gen_record;

/* Draws the next record from state; the same seed draws the same ones. */
static void gen_next(uint64_t *state, gen_record *g)
{
	static const char alphabet[] = "abcxyz09 ,\"\n\r\0\t";

	g->nfields = 1 + (int)(t_xorshift64(state) % 8);
	for (int i = 0; i < g->nfields; i++) {
		uint64_t roll = t_xorshift64(state);
		size_t len = roll % 100 == 0 ? 1000 + roll % 3000 : roll % 12;
		bool special = false;

		for (size_t k = 0; k < len; k++) {
			char c = alphabet[t_xorshift64(state) % (sizeof(alphabet) - 1)];
			g->bytes[i][k] = c;
			special |= c == ',' || c == '"' || c == '\n' || c == '\r';
		}
		g->lens[i] = len;
		/* Quoted when it has to be, else at random; a lone empty field
		 * must be quoted or it would be an empty line. */
		g->quoted[i] = special || t_xorshift64(state) % 4 == 0 || (g->nfields == 1 && len == 0);
	}
	g->crlf = t_xorshift64(state) % 2;
	g->blank_lines = t_xorshift64(state) % 40 == 0 ? 1 + (int)(t_xorshift64(state) % 3) : 0;
}

static void gen_write(FILE *out, const gen_record *g)
{
	for (int b = 0; b < g->blank_lines; b++)
		fputs(g->crlf ? "\r\n" : "\n", out);
	for (int i = 0; i < g->nfields; i++) {
		if (i)
			fputc(',', out);
		if (g->quoted[i])
			fputc('"', out);
		for (size_t k = 0; k < g->lens[i]; k++) {
			if (g->bytes[i][k] == '"')
				fputc('"', out);
			fputc(g->bytes[i][k], out);
		}
		if (g->quoted[i])
			fputc('"', out);
	}
	fputs(g->crlf ? "\r\n" : "\n", out);
}

/* Several megabytes of random records, read back field by field: any state
 * of the reader meets the block boundary somewhere in them. */
Test(csv, random_records_round_trip)
{
	const uint64_t seed = 0x5eed2024;
	uint64_t state = seed;
	static gen_record g;
	char *text = NULL;
	size_t len = 0, records = 0;
	FILE *out = open_memstream(&text, &len);

	cr_assert(out);
	while (ftell(out) < (long)(3 * READ_BLOCK + 12345)) {
		gen_next(&state, &g);
		gen_write(out, &g);
		records++;
	}
	cr_assert_eq(fclose(out), 0);

	csv_reader *r = open_input(text, len);
	uint64_t line = 1;
	state = seed;
	for (size_t rec = 0; rec < records; rec++) {
		char *const *fields;
		const size_t *lens;
		const bool *quoted;
		int n;
		bf_err err;

		gen_next(&state, &g);
		line += (uint64_t)g.blank_lines;
		bf_err_clear(&err);
		cr_assert_eq(csv_next(r, &n, &fields, &lens, &quoted, &err), 1, "record %zu: %s", rec,
			     bf_err_text(&err));
		cr_assert_eq(n, g.nfields, "record %zu", rec);
		cr_assert_eq(csv_line(r), line, "record %zu", rec);
		for (int i = 0; i < n; i++) {
			cr_assert_eq(lens[i], g.lens[i], "record %zu field %d", rec, i);
			cr_assert(memcmp(fields[i], g.bytes[i], lens[i]) == 0, "record %zu field %d", rec, i);
			cr_assert_eq(quoted[i], g.quoted[i], "record %zu field %d", rec, i);
			for (size_t k = 0; k < g.lens[i]; k++)
				line += g.bytes[i][k] == '\n';
		}
		line++;
	}
	cr_assert_eq(csv_next(r, &(int){ 0 }, &(char *const *){ NULL }, NULL, NULL, NULL), 0);
	csv_close(r);
	free(text);
}

/* "f,f,...,f\n" with `fields` fields, malloc'd. */
static char *record_of(int fields, size_t *n)
{
	char *buf = malloc((size_t)fields * 2);

	cr_assert(buf);
	for (int i = 0; i < fields; i++) {
		buf[2 * i] = 'f';
		buf[2 * i + 1] = i + 1 < fields ? ',' : '\n';
	}
	*n = (size_t)fields * 2;
	return buf;
}

Test(csv, field_count_limit)
{
	size_t n1, n2;
	char *ok = record_of(CSV_FIELDS_MAX, &n1);
	char *over = record_of(CSV_FIELDS_MAX + 1, &n2);
	char *both = malloc(n1 + n2);
	char *const *fields;
	int n;
	bf_err err;

	cr_assert(both);
	memcpy(both, ok, n1);
	memcpy(both + n1, over, n2);
	csv_reader *r = open_input(both, n1 + n2);
	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, NULL), 1);
	cr_assert_eq(n, CSV_FIELDS_MAX);
	bf_err_clear(&err);
	cr_assert_eq(csv_next(r, &n, &fields, NULL, NULL, &err), BF_EINVAL);
	cr_assert_str_eq(err.msg, "line 2: more than 4096 fields in a record");
	csv_close(r);
	free(ok);
	free(over);
	free(both);
}

Test(csv, lowered_limits)
{
	static const char in[] = "abc,def\nabcd,def\n";
	csv_reader *r = open_input(in, sizeof(in) - 1);
	char *got;

	/* "abc,def" takes 3 + 1 + 3 + 1 bytes: exactly the limit. */
	csv_set_limits(r, 8, 0);
	got = dump_reader(r);
	cr_assert_str_eq(got, "1:[abc][def]\nerror EINVAL: line 2: record longer than 8 bytes");
	free(got);
	csv_close(r);

	static const char in2[] = "a,b\n\"x\ny\",b,c\n";
	r = open_input(in2, sizeof(in2) - 1);
	csv_set_limits(r, 0, 2);
	got = dump_reader(r);
	cr_assert_str_eq(got, "1:[a][b]\nerror EINVAL: line 2: more than 2 fields in a record");
	free(got);
	csv_close(r);
}

/* A child that writes what produce() writes into a pipe; returns the read
 * end, the child's pid in *pid. */
static int spawn_writer(void (*produce)(int fd), pid_t *pid)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	*pid = fork();
	cr_assert(*pid >= 0);
	if (*pid == 0) {
		close(p[0]);
		produce(p[1]);
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

static void write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(1);
		p += w;
		n -= (size_t)w;
	}
}

/* Writes `count` bytes of c in large pieces. */
static void write_run(int fd, char c, size_t count)
{
	static char chunk[1 << 16];

	memset(chunk, c, sizeof(chunk));
	while (count > 0) {
		size_t n = count < sizeof(chunk) ? count : sizeof(chunk);
		write_all(fd, chunk, n);
		count -= n;
	}
}

/* A record of exactly CSV_RECORD_MAX bytes (one field and its NUL), then
 * one a byte longer. */
static void produce_huge(int fd)
{
	write_run(fd, 'y', CSV_RECORD_MAX - 1);
	write_all(fd, "\n", 1);
	write_run(fd, 'z', CSV_RECORD_MAX);
	write_all(fd, "\n", 1);
}

Test(csv, record_length_limit, .timeout = 120)
{
	pid_t pid;
	int fd = spawn_writer(produce_huge, &pid);
	csv_reader *r = NULL;
	char *const *fields;
	const size_t *lens;
	int n;
	bf_err err;

	cr_assert_eq(csv_open_fd(fd, "huge", &r, NULL), 0);
	bf_err_clear(&err);
	cr_assert_eq(csv_next(r, &n, &fields, &lens, NULL, &err), 1, "%s", bf_err_text(&err));
	cr_assert_eq(lens[0], CSV_RECORD_MAX - 1);
	cr_assert_eq(csv_next(r, &n, &fields, &lens, NULL, &err), BF_EINVAL);
	cr_assert_str_eq(err.msg, "line 2: record longer than 67108864 bytes");
	csv_close(r);
	/* The writer may be blocked on the pipe; it has nothing more to say. */
	close(fd);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
}

/* Dribbles a record set into the pipe so the reader sees short reads,
 * one of them splitting the BOM. */
static void produce_dribble(int fd)
{
	static const char *const pieces[] = { "\xef", "\xbb\xbf" "a,\"b", "\"\"c\"\r", "\nd", "\n" };

	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		write_all(fd, pieces[i], strlen(pieces[i]));
		usleep(20 * 1000);
	}
}

Test(csv, pipe_through_open_fd)
{
	pid_t pid;
	int fd = spawn_writer(produce_dribble, &pid), status;
	csv_reader *r = NULL;

	cr_assert_eq(csv_open_fd(fd, "pipe", &r, NULL), 0);
	char *got = dump_reader(r);
	cr_assert_str_eq(got, "1:[a]{b\"c}\n2:[d]\n");
	free(got);
	csv_close(r);
	cr_assert_neq(fcntl(fd, F_GETFD), -1, "csv_close must leave the caller's fd open");
	close(fd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(csv, standard_input)
{
	static const char in[] = "x,y\r\n\"1\",2";
	int p[2];
	csv_reader *r = NULL;

	cr_assert_eq(pipe(p), 0);
	write_all(p[1], in, sizeof(in) - 1);
	close(p[1]);
	cr_assert_eq(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	close(p[0]);
	cr_assert_eq(csv_open("-", &r, NULL), 0);
	char *got = dump_reader(r);
	cr_assert_str_eq(got, "1:[x][y]\n2:{1}[2]\n");
	free(got);
	csv_close(r);
	cr_assert_neq(fcntl(STDIN_FILENO, F_GETFD), -1, "standard input stays open");
}

Test(csv, missing_file)
{
	char *dir = t_scratch_new("csv");
	char *path = t_path_in(dir, "nope.csv");
	csv_reader *r = (csv_reader *)&r;
	bf_err err;
	char want[1024];

	bf_err_clear(&err);
	cr_assert_eq(csv_open(path, &r, &err), BF_ENOTFOUND);
	cr_assert_null(r);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	cr_assert_str_eq(err.msg, want);
	free(path);
}

Test(csv, unreadable_inputs)
{
	char *dir = t_scratch_new("csv");
	csv_reader *r = NULL;
	bf_err err;
	char want[1024];

	/* A directory is refused at open... */
	bf_err_clear(&err);
	cr_assert_eq(csv_open(dir, &r, &err), BF_EIO);
	cr_assert_null(r);
	snprintf(want, sizeof(want), "%s: %s", dir, strerror(EISDIR));
	cr_assert_str_eq(err.msg, want);

	/* ...and one handed over as an fd fails at the first read. */
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert(fd >= 0);
	cr_assert_eq(csv_open_fd(fd, "the dir", &r, NULL), 0);
	char *got = dump_reader(r);
	snprintf(want, sizeof(want), "error EIO: the dir: read: %s", strerror(EISDIR));
	cr_assert_str_eq(got, want);
	free(got);
	csv_close(r);
	close(fd);
}
