/*
 * Schemas written as SQL column definitions, and values given as text or
 * datums checked against a column's type (include/bfill/table.h).
 */
#include "bfill/table.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- a tokenizer for column definitions ---- */

typedef struct lexer {
	const char *p;
	char tok[BF_NAME_MAX]; /* the current token, unquoted */
	bool quoted;           /* it was `quoted` (a name, never a keyword) */
	bool end;
} lexer;

/* Moves to the next token: a word, a number, a `quoted name` or one of
 * ( ) , ; false with err set on a bad token. */
static bool lex(lexer *lx, bf_err *err)
{
	size_t n = 0;

	while (isspace((unsigned char)*lx->p))
		lx->p++;
	lx->quoted = false;
	lx->end = !*lx->p;
	lx->tok[0] = '\0';
	if (lx->end)
		return true;
	if (*lx->p == '`') {
		/* `` inside a quoted name is one backquote, as in MySQL. */
		for (lx->p++;; lx->p++) {
			if (!*lx->p) {
				bf_errf(err, BF_EINVAL, "schema: a `quoted name` is not closed");
				return false;
			}
			if (*lx->p == '`' && lx->p[1] != '`')
				break;
			if (*lx->p == '`')
				lx->p++;
			if (n + 1 >= sizeof(lx->tok)) {
				bf_errf(err, BF_EINVAL, "schema: a name is longer than %d characters",
					BF_NAME_CHARS);
				return false;
			}
			lx->tok[n++] = *lx->p;
		}
		lx->p++;
		lx->tok[n] = '\0';
		lx->quoted = true;
		return true;
	}
	if (strchr("(),", *lx->p)) {
		lx->tok[0] = *lx->p++;
		lx->tok[1] = '\0';
		return true;
	}
	while (*lx->p && (isalnum((unsigned char)*lx->p) || *lx->p == '_' || *lx->p == '$' ||
			  (unsigned char)*lx->p >= 0x80)) {
		if (n + 1 >= sizeof(lx->tok)) {
			bf_errf(err, BF_EINVAL, "schema: a name is longer than %d characters",
				BF_NAME_CHARS);
			return false;
		}
		lx->tok[n++] = *lx->p++;
	}
	if (n == 0) {
		bf_errf(err, BF_EINVAL, "schema: unexpected '%c'", *lx->p);
		return false;
	}
	lx->tok[n] = '\0';
	return true;
}

static bool is_kw(const lexer *lx, const char *kw)
{
	return !lx->quoted && !lx->end && !strcasecmp(lx->tok, kw);
}

/* Expects the keyword or punctuation kw and moves past it. */
static bool expect(lexer *lx, const char *kw, const char *col, bf_err *err)
{
	if (!is_kw(lx, kw)) {
		bf_errf(err, BF_EINVAL, "schema: column '%s': expected %s, found %s", col, kw,
			lx->end ? "the end" : lx->tok);
		return false;
	}
	return lex(lx, err);
}

/* "(n)" or "(n,m)" after a type name; *nargs = 0 when there is none. */
static bool type_args(lexer *lx, const char *col, int args[2], int *nargs, bf_err *err)
{
	*nargs = 0;
	if (!is_kw(lx, "("))
		return true;
	if (!lex(lx, err))
		return false;
	for (;;) {
		char *end;
		long v = strtol(lx->tok, &end, 10);
		if (lx->quoted || lx->end || *end || !isdigit((unsigned char)lx->tok[0]) ||
		    v > 65535 || *nargs == 2) {
			bf_errf(err, BF_EINVAL, "schema: column '%s': bad type length '%s'", col,
				lx->end ? "" : lx->tok);
			return false;
		}
		args[(*nargs)++] = (int)v;
		if (!lex(lx, err))
			return false;
		if (is_kw(lx, ")"))
			return lex(lx, err);
		if (!expect(lx, ",", col, err))
			return false;
	}
}

static bool int_type(const char *word, int *len)
{
	static const struct { const char *name; int len; } ints[] = {
		{ "tinyint", 1 }, { "smallint", 2 }, { "mediumint", 3 }, { "int", 4 },
		{ "integer", 4 }, { "bigint", 8 },
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		if (!strcasecmp(word, ints[i].name)) {
			*len = ints[i].len;
			return true;
		}
	}
	return false;
}

/* The type after a column's name. */
static bool parse_type(lexer *lx, bf_column *c, bf_err *err)
{
	char word[32];
	int args[2], nargs, len;

	snprintf(word, sizeof(word), "%s", lx->end || lx->quoted ? "" : lx->tok);
	if (!lex(lx, err) || !type_args(lx, c->name, args, &nargs, err))
		return false;
	if (int_type(word, &len)) {
		/* A display width, INT(11), changes nothing stored. */
		c->type = BF_COL_INT;
		c->len = len;
		if (is_kw(lx, "unsigned")) {
			c->type = BF_COL_UINT;
			return lex(lx, err);
		}
		return true;
	}
	if (!strcasecmp(word, "char") || !strcasecmp(word, "varchar")) {
		bool var = word[0] == 'v' || word[0] == 'V';
		c->type = var ? BF_COL_VARCHAR : BF_COL_CHAR;
		c->len = nargs ? args[0] : 1;
		if ((var && nargs != 1) || nargs > 1 || c->len < 1 || c->len > (var ? 65535 : 255))
			return bf_errf(err, BF_EINVAL, "schema: column '%s': %s needs a length of 1..%d",
				       c->name, var ? "VARCHAR(n)" : "CHAR(n)", var ? 65535 : 255), false;
		return true;
	}
	if (!strcasecmp(word, "double")) {
		c->type = BF_COL_DOUBLE;
		c->len = 8;
		return true;
	}
	if (!strcasecmp(word, "datetime")) {
		c->type = BF_COL_DATETIME;
		c->len = nargs ? args[0] : 0;
		if (nargs > 1 || c->len > 6)
			return bf_errf(err, BF_EINVAL, "schema: column '%s': DATETIME(fsp) takes 0..6"
				       " fraction digits", c->name), false;
		return true;
	}
	if (!strcasecmp(word, "decimal") || !strcasecmp(word, "numeric")) {
		/* MySQL's defaults: DECIMAL is DECIMAL(10,0). */
		c->type = BF_COL_DECIMAL;
		c->len = nargs ? args[0] : 10;
		c->scale = nargs > 1 ? args[1] : 0;
		if (!bf_decimal_bin_len(c->len, c->scale))
			return bf_errf(err, BF_EINVAL, "schema: column '%s': DECIMAL(p,s) needs 1 <= p"
				       " <= %d and 0 <= s <= min(p, %d)", c->name, BF_DECIMAL_MAX_PREC,
				       BF_DECIMAL_MAX_FRAC), false;
		return true;
	}
	bf_errf(err, BF_EINVAL, "schema: column '%s': unknown type '%s' (bfill knows TINYINT .."
		" BIGINT [UNSIGNED], CHAR(n), VARCHAR(n), DOUBLE, DATETIME[(fsp)], DECIMAL(p,s))",
		c->name, word);
	return false;
}

/* NOT NULL, NULL and PRIMARY KEY after a column's type. */
static bool parse_attrs(lexer *lx, bf_table *t, int pos, bf_err *err)
{
	bf_column *c = &t->cols[pos];

	for (;;) {
		if (is_kw(lx, "not")) {
			if (!lex(lx, err) || !expect(lx, "NULL", c->name, err))
				return false;
			c->not_null = true;
		} else if (is_kw(lx, "null")) {
			if (!lex(lx, err))
				return false;
		} else if (is_kw(lx, "primary")) {
			if (!lex(lx, err) || !expect(lx, "KEY", c->name, err))
				return false;
			if (t->handle_col >= 0)
				return bf_errf(err, BF_EINVAL, "schema: more than one PRIMARY KEY"), false;
			t->handle_col = pos;
		} else {
			return true;
		}
	}
}

/* A table-level "PRIMARY KEY (col)". */
static bool parse_table_pk(lexer *lx, bf_table *t, bf_err *err)
{
	if (!lex(lx, err) || !expect(lx, "KEY", "PRIMARY KEY", err) ||
	    !expect(lx, "(", "PRIMARY KEY", err))
		return false;
	int pos = bf_table_column(t, lx->tok);
	if (lx->end || pos < 0)
		return bf_errf(err, BF_EINVAL, "schema: PRIMARY KEY (%s): no such column",
			       lx->end ? "" : lx->tok), false;
	if (t->handle_col >= 0)
		return bf_errf(err, BF_EINVAL, "schema: more than one PRIMARY KEY"), false;
	t->handle_col = pos;
	if (!lex(lx, err))
		return false;
	if (is_kw(lx, ","))
		return bf_errf(err, BF_EINVAL, "schema: a PRIMARY KEY over several columns is not"
			       " supported: leave it out for a hidden _tidb_rowid handle"), false;
	return expect(lx, ")", "PRIMARY KEY", err);
}

static bool parse_column(lexer *lx, bf_table *t, bf_err *err)
{
	bf_column *c = &t->cols[t->ncols];

	if (t->ncols == BF_MAX_COLUMNS)
		return bf_errf(err, BF_EINVAL, "schema: more than %d columns", BF_MAX_COLUMNS), false;
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", lx->tok);
	if (!bf_name_valid(c->name))
		return bf_errf(err, BF_EINVAL, "schema: column name '%s' must be 1..%d characters, no"
			       " control characters and no trailing space", c->name, BF_NAME_CHARS),
		       false;
	if (!strcasecmp(c->name, BF_ROWID_NAME))
		return bf_errf(err, BF_EINVAL, "schema: the name %s is reserved for the hidden handle",
			       BF_ROWID_NAME), false;
	if (bf_table_column(t, c->name) >= 0)
		return bf_errf(err, BF_EINVAL, "schema: column '%s' appears twice", c->name), false;
	c->id = t->ncols + 1;
	if (!lex(lx, err) || !parse_type(lx, c, err))
		return false;
	t->ncols++;
	return parse_attrs(lx, t, t->ncols - 1, err);
}

int bf_schema_parse(const char *name, const char *schema, bf_table *out, bf_err *err)
{
	lexer lx = { .p = schema ? schema : "" };

	memset(out, 0, sizeof(*out));
	if (!name || !bf_name_valid(name))
		return bf_errf(err, BF_EINVAL, "table name must be 1..%d characters, no control"
			       " characters and no trailing space", BF_NAME_CHARS);
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->handle_col = -1;
	out->next_index_id = 1;
	if (!lex(&lx, err))
		return BF_EINVAL;
	while (!lx.end) {
		bool ok = is_kw(&lx, "primary") ? parse_table_pk(&lx, out, err)
						: parse_column(&lx, out, err);
		if (!ok)
			return BF_EINVAL;
		if (lx.end)
			break;
		if (!is_kw(&lx, ","))
			return bf_errf(err, BF_EINVAL, "schema: expected ',' or the end after column"
				       " '%s', found '%s'", out->ncols ? out->cols[out->ncols - 1].name
				       : "", lx.tok);
		if (!lex(&lx, err))
			return BF_EINVAL;
		if (lx.end)
			return bf_errf(err, BF_EINVAL, "schema: a trailing ','");
	}
	if (out->ncols == 0)
		return bf_errf(err, BF_EINVAL, "schema: no columns");
	if (out->handle_col >= 0) {
		bf_column *pk = &out->cols[out->handle_col];
		/* The record key holds the handle as a signed 64-bit integer. */
		if (pk->type != BF_COL_INT)
			return bf_errf(err, BF_EINVAL, "schema: PRIMARY KEY column '%s' must be a signed"
				       " integer (it becomes the row's handle); leave the key out for"
				       " a hidden _tidb_rowid handle", pk->name);
		pk->not_null = true;
	}
	return 0;
}

/* ---- values ---- */

static const char *type_text(const bf_column *c, char *buf, size_t n)
{
	bf_coltype_format(c, buf, n);
	for (char *p = buf; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return buf;
}
/* The column's type for a message: formatted only when one is written,
 * since values are checked by the million. */
#define TY(c) type_text((c), (char[32]){ 0 }, 32)

static void int_range(const bf_column *c, int64_t *lo, int64_t *hi, uint64_t *uhi)
{
	int bits = c->len * 8;
	*uhi = bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
	*hi = bits >= 64 ? INT64_MAX : (INT64_C(1) << (bits - 1)) - 1;
	*lo = -*hi - 1;
}

/* Characters of valid UTF-8 in s[0..n), or -1 when it is not. */
static long utf8_chars(const uint8_t *s, size_t n)
{
	long chars = 0;

	for (size_t i = 0; i < n; chars++) {
		uint8_t b = s[i];
		size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 :
			     (b & 0xF8) == 0xF0 ? 4 : 0;
		if (len == 0 || i + len > n)
			return -1;
		uint32_t cp = len == 1 ? b : (uint32_t)(b & (0x7F >> len));
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
		if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return -1;
		i += len;
	}
	return chars;
}

int bf_column_check_value(const bf_column *c, const bf_datum *d, bf_err *err)
{
	char buf[64];
	int64_t lo, hi;
	uint64_t uhi;

	if (d->kind == BF_DATUM_NULL) {
		if (c->not_null)
			return bf_errf(err, BF_EINVAL, "NULL in a NOT NULL column");
		return 0;
	}
	switch (c->type) {
	case BF_COL_INT:
		int_range(c, &lo, &hi, &uhi);
		if (d->kind != BF_DATUM_INT)
			break;
		if (d->v.i < lo || d->v.i > hi)
			return bf_errf(err, BF_ERANGE, "%" PRId64 " is out of range for %s", d->v.i, TY(c));
		return 0;
	case BF_COL_UINT:
		int_range(c, &lo, &hi, &uhi);
		if (d->kind != BF_DATUM_UINT)
			break;
		if (d->v.u > uhi)
			return bf_errf(err, BF_ERANGE, "%" PRIu64 " is out of range for %s", d->v.u, TY(c));
		return 0;
	case BF_COL_CHAR:
	case BF_COL_VARCHAR: {
		if (d->kind != BF_DATUM_BYTES)
			break;
		long chars = utf8_chars(d->v.b.ptr, d->v.b.len);
		if (chars < 0)
			return bf_errf(err, BF_EINVAL, "the value is not valid UTF-8");
		if (chars > c->len)
			return bf_errf(err, BF_ERANGE, "%ld characters are too many for %s", chars, TY(c));
		return 0;
	}
	case BF_COL_DOUBLE:
		if (d->kind != BF_DATUM_FLOAT)
			break;
		if (!isfinite(d->v.f))
			return bf_errf(err, BF_EINVAL, "DOUBLE takes finite numbers only");
		return 0;
	case BF_COL_DATETIME:
		if (d->kind != BF_DATUM_UINT)
			break;
		if (bf_datetime_format(d->v.u, c->len, buf, sizeof(buf)))
			return bf_errf(err, BF_EINVAL, "0x%" PRIx64 " is not a packed %s", d->v.u, TY(c));
		return 0;
	case BF_COL_DECIMAL:
		if (d->kind != BF_DATUM_DECIMAL)
			break;
		if (d->v.dec.prec != c->len || d->v.dec.frac != c->scale ||
		    d->v.dec.len != bf_decimal_bin_len(c->len, c->scale) ||
		    bf_decimal_check(d->v.dec.ptr, d->v.dec.len, c->len, c->scale))
			return bf_errf(err, BF_EINVAL, "not a binary %s value", TY(c));
		return 0;
	}
	return bf_errf(err, BF_EINVAL, "a value of the wrong kind for %s", TY(c));
}

void bf_column_format_value(const bf_column *c, const bf_datum *d, char *out, size_t n)
{
	switch (d->kind) {
	case BF_DATUM_NULL: snprintf(out, n, "NULL"); return;
	case BF_DATUM_INT: snprintf(out, n, "%" PRId64, d->v.i); return;
	case BF_DATUM_UINT:
		if (c->type != BF_COL_DATETIME || bf_datetime_format(d->v.u, c->len, out, n))
			snprintf(out, n, "%" PRIu64, d->v.u);
		return;
	case BF_DATUM_BYTES: snprintf(out, n, "%.*s", (int)d->v.b.len, (const char *)d->v.b.ptr); return;
	case BF_DATUM_FLOAT:
		for (int digits = 15; digits <= 17; digits++) {
			snprintf(out, n, "%.*g", digits, d->v.f);
			if (strtod(out, NULL) == d->v.f)
				return;
		}
		return;
	case BF_DATUM_DECIMAL:
		if (bf_decimal_format(d->v.dec.ptr, d->v.dec.len, d->v.dec.prec, d->v.dec.frac, out, n))
			snprintf(out, n, "?");
		return;
	}
	snprintf(out, n, "?");
}

/* s[0..n) as a NUL-terminated number in buf; false when it cannot be one. */
static bool number_text(const char *s, size_t n, char *buf, size_t cap)
{
	if (n == 0 || n >= cap || isspace((unsigned char)s[0]))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return strlen(buf) == n;
}

/*
 * num as c's integer type: BF_EINVAL (no message) when it is not a number
 * at all, so the caller names the value and the type as for any other.
 * strtoull would take "-1" as 2^64-1, hence the explicit sign check.
 */
static int parse_integer(const bf_column *c, const char *num, bf_datum *out, bf_err *err)
{
	bool is_signed = c->type == BF_COL_INT;
	char *end;

	if (!is_signed && num[0] == '-')
		return BF_EINVAL;
	errno = 0;
	*out = is_signed ? bf_datum_int(strtoll(num, &end, 10)) : bf_datum_uint(strtoull(num, &end, 10));
	if (*end)
		return BF_EINVAL;
	if (errno == ERANGE)
		return bf_errf(err, BF_ERANGE, "'%s' is out of range for %s", num, TY(c));
	return bf_column_check_value(c, out, err);
}

int bf_column_parse_value(const bf_column *c, const char *s, size_t n, bf_datum *out,
			  uint8_t *scratch, bf_err *err)
{
	char num[400];
	char *end;
	int rc;

	switch (c->type) {
	case BF_COL_INT:
	case BF_COL_UINT:
		if (!number_text(s, n, num, sizeof(num)))
			break;
		rc = parse_integer(c, num, out, err);
		if (rc != BF_EINVAL)
			return rc;
		break;
	case BF_COL_CHAR:
	case BF_COL_VARCHAR:
		*out = bf_datum_bytes(s, n);
		return bf_column_check_value(c, out, err);
	case BF_COL_DOUBLE:
		if (!number_text(s, n, num, sizeof(num)) || !strpbrk(num, "0123456789") ||
		    strpbrk(num, "xXnN"))
			break;
		errno = 0;
		*out = bf_datum_float(strtod(num, &end));
		if (*end)
			break;
		if (errno == ERANGE && fabs(out->v.f) > 1)
			return bf_errf(err, BF_ERANGE, "'%s' is out of range for DOUBLE", num);
		return bf_column_check_value(c, out, err);
	case BF_COL_DATETIME: {
		uint64_t packed;
		if (bf_datetime_parse(s, n, c->len, &packed))
			break;
		*out = bf_datum_uint(packed);
		return 0;
	}
	case BF_COL_DECIMAL:
		rc = bf_decimal_parse(s, n, c->len, c->scale, scratch);
		if (rc == BF_ERANGE)
			return bf_errf(err, BF_ERANGE, "'%.*s' is out of range for %s",
				       (int)(n > 64 ? 64 : n), s, TY(c));
		if (rc)
			break;
		*out = bf_datum_decimal(scratch, bf_decimal_bin_len(c->len, c->scale), c->len,
					c->scale);
		return 0;
	}
	char shown[80];
	return bf_errf(err, BF_EINVAL, "'%s' is not a value of type %s",
		       bf_printable(s, n, shown, sizeof(shown)), TY(c));
}
