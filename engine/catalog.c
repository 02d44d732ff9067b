/*
 * The catalog: schema helpers (column types, names, lookups) and the
 * records in the store (tables, jobs, id counters, fences). The records'
 * JSON is engine/catalog_json.c's. Depends on the store, the codec and
 * util.
 */
#include "bfill/catalog.h"
#include "engine/catalog_json.h"
#include "util/util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TABLE_KEY BF_CATALOG_PREFIX "table/"
#define JOB_KEY BF_CATALOG_PREFIX "job/"
#define COUNTER_KEY BF_CATALOG_PREFIX "counter/"
#define FENCE_KEY BF_CATALOG_PREFIX "fence/"
/* Ends of the key ranges of tables and jobs: '0' follows '/'. */
#define TABLE_END BF_CATALOG_PREFIX "table0"
#define JOB_END BF_CATALOG_PREFIX "job0"

#define TABLE_KEY_MAX (sizeof(TABLE_KEY) + BF_NAME_MAX)
#define JOB_KEY_MAX 64
#define COUNTER_KEY_MAX 128
#define FENCE_KEY_MAX (sizeof(FENCE_KEY) + BF_FENCE_KEY_MAX)
#define SHOWN_KEY 160 /* bytes of a record key shown in a message */

static const char *const index_states[] = { "none", "write-reorg", "public" };
static const char *const job_states[] = { "queueing", "running", "done",
					  "failed", "cancelled", "paused" };

const char *bf_index_state_name(bf_index_state s)
{
	return (unsigned)s < 3 ? index_states[s] : "unknown";
}

const char *bf_job_state_name(bf_job_state s)
{
	return (unsigned)s < 6 ? job_states[s] : "unknown";
}

int bf_job_state_parse(const char *s, bf_job_state *out)
{
	for (int i = 0; i < 6; i++) {
		if (!strcmp(s, job_states[i])) {
			*out = (bf_job_state)i;
			return 0;
		}
	}
	return BF_EINVAL;
}

bool bf_job_state_final(bf_job_state s)
{
	return s == BF_JOB_DONE || s == BF_JOB_CANCELLED;
}

static const char *int_name(int len, bool is_unsigned)
{
	static const char *const s[] = { "tinyint", "smallint", "mediumint", "int", "bigint" };
	static const char *const u[] = { "tinyint unsigned", "smallint unsigned",
					 "mediumint unsigned", "int unsigned", "bigint unsigned" };
	int i = len == 1 ? 0 : len == 2 ? 1 : len == 3 ? 2 : len == 4 ? 3 : 4;
	return is_unsigned ? u[i] : s[i];
}

/* DOUBLE, DATETIME[(fsp)] and DECIMAL(p,s), from lower-case text. */
static int parse_other_type(const char *buf, bf_column *c)
{
	int len = 0, scale = 0, end = 0;

	if (!strcmp(buf, "double")) {
		c->type = BF_COL_DOUBLE;
		c->len = 8;
		return 0;
	}
	if (!strcmp(buf, "datetime") ||
	    (sscanf(buf, "datetime(%d)%n", &len, &end) == 1 && end && !buf[end] && len >= 0 &&
	     len <= 6)) {
		c->type = BF_COL_DATETIME;
		c->len = len;
		return 0;
	}
	if (sscanf(buf, "decimal(%d,%d)%n", &len, &scale, &end) == 2 && end && !buf[end] &&
	    bf_decimal_bin_len(len, scale)) {
		c->type = BF_COL_DECIMAL;
		c->len = len;
		c->scale = scale;
		return 0;
	}
	return BF_EINVAL;
}

char *bf_coltype_format(const bf_column *c, char *buf, size_t n)
{
	switch (c->type) {
	case BF_COL_INT: snprintf(buf, n, "%s", int_name(c->len, false)); break;
	case BF_COL_UINT: snprintf(buf, n, "%s", int_name(c->len, true)); break;
	case BF_COL_CHAR: snprintf(buf, n, "char(%d)", c->len); break;
	case BF_COL_VARCHAR: snprintf(buf, n, "varchar(%d)", c->len); break;
	case BF_COL_DOUBLE: snprintf(buf, n, "double"); break;
	case BF_COL_DATETIME:
		if (c->len)
			snprintf(buf, n, "datetime(%d)", c->len);
		else
			snprintf(buf, n, "datetime");
		break;
	case BF_COL_DECIMAL: snprintf(buf, n, "decimal(%d,%d)", c->len, c->scale); break;
	}
	return buf;
}

int bf_coltype_parse(const char *text, bf_column *c)
{
	static const struct { const char *name; int len; } ints[] = {
		{ "tinyint", 1 }, { "smallint", 2 }, { "mediumint", 3 }, { "int", 4 }, { "bigint", 8 },
	};
	char buf[64];
	size_t n = strlen(text);

	if (n >= sizeof(buf))
		return BF_EINVAL;
	for (size_t i = 0; i <= n; i++)
		buf[i] = (char)tolower((unsigned char)text[i]);
	c->scale = 0;
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		size_t l = strlen(ints[i].name);
		if (strncmp(buf, ints[i].name, l))
			continue;
		if (buf[l] == '\0') {
			c->type = BF_COL_INT;
		} else if (!strcmp(buf + l, " unsigned")) {
			c->type = BF_COL_UINT;
		} else {
			continue;
		}
		c->len = ints[i].len;
		return 0;
	}
	/* %n is set only when the closing parenthesis matched; nothing may follow it. */
	int len = 0, end = 0;
	if (sscanf(buf, "char(%d)%n", &len, &end) == 1 && end && !buf[end] && len > 0 && len <= 255) {
		c->type = BF_COL_CHAR;
		c->len = len;
		return 0;
	}
	end = 0;
	if (sscanf(buf, "varchar(%d)%n", &len, &end) == 1 && end && !buf[end] && len > 0 &&
	    len <= 65535) {
		c->type = BF_COL_VARCHAR;
		c->len = len;
		return 0;
	}
	return parse_other_type(buf, c);
}

int bf_table_column(const bf_table *t, const char *name)
{
	/* Column names, like index names, ignore case (as in MySQL). */
	for (int i = 0; i < t->ncols; i++)
		if (!strcasecmp(t->cols[i].name, name))
			return i;
	return -1;
}

int bf_table_index(const bf_table *t, const char *name)
{
	for (int i = 0; i < t->nindexes; i++)
		if (!strcasecmp(t->indexes[i].name, name))
			return i;
	return -1;
}

int bf_table_index_by_id(const bf_table *t, int64_t id)
{
	for (int i = 0; i < t->nindexes; i++)
		if (t->indexes[i].id == id)
			return i;
	return -1;
}

void bf_table_sbtest(bf_table *t, const char *name)
{
	static const struct { const char *name; bf_coltype type; int len; bool nn; } cols[] = {
		{ "id", BF_COL_INT, 8, true },
		{ "k", BF_COL_INT, 4, true },
		{ "c", BF_COL_CHAR, 120, true },
		{ "pad", BF_COL_CHAR, 60, true },
	};
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->ncols = 4;
	for (int i = 0; i < 4; i++) {
		snprintf(t->cols[i].name, sizeof(t->cols[i].name), "%s", cols[i].name);
		t->cols[i].id = i + 1;
		t->cols[i].type = cols[i].type;
		t->cols[i].len = cols[i].len;
		t->cols[i].not_null = cols[i].nn;
	}
	t->handle_col = 0;
	t->next_index_id = 1;
}

int bf_table_decode_column(const bf_table *t, int col, const bf_row_view *rv,
			   int64_t handle, bf_datum *out)
{
	const bf_column *c = &t->cols[col];
	const uint8_t *p;
	size_t n;
	int rc;

	if (col == t->handle_col) {
		*out = bf_datum_int(handle);
		return 0;
	}
	rc = bf_codec_row_find(rv, c->id, &p, &n);
	if (rc != BF_ROW_PRESENT) {
		*out = bf_datum_null();
		return 0;
	}
	switch (c->type) {
	case BF_COL_INT:
		out->kind = BF_DATUM_INT;
		return bf_codec_row_decode_int(p, n, &out->v.i);
	case BF_COL_UINT:
		out->kind = BF_DATUM_UINT;
		return bf_codec_row_decode_uint(p, n, &out->v.u);
	case BF_COL_CHAR:
	case BF_COL_VARCHAR:
		/* Lengths are in characters; with a binary collation a character
		 * is at most 4 bytes of UTF-8. */
		if (n > (size_t)c->len * 4)
			return BF_ECORRUPT;
		*out = bf_datum_bytes(p, n);
		return 0;
	case BF_COL_DOUBLE:
		out->kind = BF_DATUM_FLOAT;
		return bf_codec_row_decode_float(p, n, &out->v.f);
	case BF_COL_DATETIME:
		/* TiDB's packed form, stored as an unsigned integer. */
		out->kind = BF_DATUM_UINT;
		return bf_codec_row_decode_uint(p, n, &out->v.u);
	case BF_COL_DECIMAL:
		return bf_codec_row_decode_decimal(p, n, c->len, c->scale, out);
	}
	return BF_ECORRUPT;
}

/* Length of the UTF-8 sequence at s and its code point in *cp; 0 when it
 * is not valid UTF-8 (a bad lead byte, a missing continuation, an overlong
 * form, a surrogate, past U+10FFFF). Stops at a NUL, which is no
 * continuation byte. */
static size_t utf8_char(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		n = 2, c &= 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3, c &= 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

bool bf_index_prefix_fits(const bf_column *c, int prefix)
{
	return (c->type == BF_COL_CHAR || c->type == BF_COL_VARCHAR) && prefix >= 1 &&
	       prefix <= c->len;
}

size_t bf_index_prefix_bytes(const uint8_t *s, size_t n, int chars)
{
	size_t i = 0;

	for (int k = 0; k < chars && i < n; k++) {
		i++;
		while (i < n && (s[i] & 0xC0) == 0x80)
			i++;
	}
	return i;
}

void bf_index_cut_prefix(const int *prefix, bf_datum *cols, int ncols)
{
	for (int k = 0; k < ncols; k++)
		if (prefix[k] && cols[k].kind == BF_DATUM_BYTES)
			cols[k].v.b.len = bf_index_prefix_bytes(cols[k].v.b.ptr, cols[k].v.b.len,
								prefix[k]);
}

bool bf_name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	uint32_t cp = 0;
	size_t chars = 0, n;

	if (!name || !*name)
		return false;
	for (; *p; p += n) {
		n = utf8_char(p, &cp);
		/* C0 controls, DEL and C1 controls would break a line of output. */
		if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || ++chars > BF_NAME_CHARS)
			return false;
	}
	/* TiDB refuses a trailing space (isIncorrectName), as MySQL does. */
	return cp != ' ';
}

/* ---- records in the store ---- */

/* A key for messages: record keys hold user names, which may be anything. */
static const char *shown_key(const void *key, size_t len, char buf[SHOWN_KEY])
{
	return bf_printable(key, len, buf, SHOWN_KEY);
}

struct bf_catalog {
	const bf_catalog_kv_ops *ops;
	void *impl;
};

int bf_catalog_create(const bf_catalog_kv_ops *ops, void *impl, bf_catalog **out, bf_err *err)
{
	bf_catalog *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return bf_errf(err, BF_ENOMEM, "catalog: out of memory");
	c->ops = ops;
	c->impl = impl;
	*out = c;
	return 0;
}

void bf_catalog_destroy(bf_catalog *c)
{
	if (!c)
		return;
	if (c->ops->destroy)
		c->ops->destroy(c->impl);
	free(c);
}

static int kv_get(bf_catalog *c, const char *key, char **val, size_t *vlen, bf_err *err)
{
	*val = NULL;
	*vlen = 0;
	return c->ops->get(c->impl, key, val, vlen, err);
}

/*
 * Writes n records (each text freed here) in one atomic, durable step,
 * so that records written together (a table and its job) never disagree.
 */
static int put_fenced(bf_catalog *c, const char *const *keys, char **texts, int n,
		      const bf_fence_token *fences, int nfences, bf_err *err)
{
	int rc = c->ops->put(c->impl, keys, texts, n, fences, nfences, err);
	for (int i = 0; i < n; i++)
		free(texts[i]);
	return rc;
}

static int put_records(bf_catalog *c, const char *const *keys, char **texts, int n, bf_err *err)
{
	return put_fenced(c, keys, texts, n, NULL, 0, err);
}

/* The key of table `name`, a valid name (so that the key fits). */
static void table_key(char key[TABLE_KEY_MAX], const char *name)
{
	snprintf(key, TABLE_KEY_MAX, "%s%s", TABLE_KEY, name);
}

int bf_catalog_get_table(bf_catalog *cat, const char *name, bf_table *out, bf_err *err)
{
	char key[TABLE_KEY_MAX], shown[SHOWN_KEY], *val = NULL;
	size_t vlen = 0;
	int rc;

	/* A name no table can have names no table; it may not even print. */
	if (!bf_name_valid(name))
		return bf_errf(err, BF_ENOTFOUND, "table '%s' does not exist",
			       shown_key(name ? name : "", name ? strlen(name) : 0, shown));
	table_key(key, name);
	rc = kv_get(cat, key, &val, &vlen, err);
	if (rc == BF_ENOTFOUND)
		return bf_errf(err, rc, "table '%s' does not exist", name);
	if (rc)
		return rc;
	rc = bf_catalog_decode_table(val, vlen, key, out, err);
	free(val);
	if (rc == 0 && strcmp(out->name, name))
		return bf_errf(err, BF_ECORRUPT,
			       "catalog record %s is damaged: its name is not the one in its key", key);
	return rc;
}

int bf_catalog_put_table(bf_catalog *cat, const bf_table *t, bf_err *err)
{
	char key[TABLE_KEY_MAX], *text = NULL;
	const char *keys[1] = { key };
	/* Encoding checks the name, so it makes a key. */
	int rc = bf_catalog_encode_table(t, &text, err);

	if (rc)
		return rc;
	table_key(key, t->name);
	return put_records(cat, keys, &text, 1, err);
}

int bf_catalog_delete_table(bf_catalog *cat, const char *name, bf_err *err)
{
	char key[TABLE_KEY_MAX];

	if (!bf_name_valid(name))
		return 0; /* no table can have that name: nothing to delete */
	table_key(key, name);
	return cat->ops->del(cat->impl, key, err);
}

/* ---- id counters ---- */

/*
 * A counter or fence value: the decimal text of a non-negative int64 and
 * nothing else. A NUL inside would let "12\0junk" pass as 12.
 */
static bool stored_int(const void *val, size_t vlen, int64_t *out)
{
	char buf[24];

	if (vlen == 0 || vlen >= sizeof(buf) || memchr(val, '\0', vlen))
		return false;
	memcpy(buf, val, vlen);
	buf[vlen] = '\0';
	return bf_parse_i64(buf, out) == 0 && *out >= 0;
}

typedef struct highest_walk {
	bool jobs;
	size_t prefix;
	int64_t max;
} highest_walk;

static int highest_one(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
	highest_walk *h = arg;
	int64_t id = 0;
	if (h->jobs)
		stored_int(k + h->prefix, klen - h->prefix, &id);
	else
		id = bf_catalog_record_id(v, vlen);
	if (id > h->max)
		h->max = id;
	return 0;
}

/* The highest id that a record of this counter's kind has: jobs carry it
 * in their keys, tables in their records. 0 when none. */
static int highest_record_id(bf_catalog *cat, const char *counter, int64_t *max, bf_err *err)
{
	highest_walk h = { .jobs = !strcmp(counter, "job") };
	const char *lo = h.jobs ? JOB_KEY : TABLE_KEY, *hi = h.jobs ? JOB_END : TABLE_END;
	int rc;

	*max = 0;
	if (!h.jobs && strcmp(counter, "table"))
		return 0;
	h.prefix = strlen(lo);
	rc = cat->ops->scan(cat->impl, lo, hi, highest_one, &h, err);
	*max = h.max;
	return rc;
}

/*
 * The last id the counter handed out, at least the highest id a record
 * has: an id given by the caller (--job-id) is never handed out again,
 * and a counter that is absent or damaged is rebuilt from the records
 * instead of starting over. *stored tells whether the counter holds
 * exactly *last already.
 */
static int last_id(bf_catalog *cat, const char *counter, const char *key, int64_t *last,
		   bool *stored, bf_err *err)
{
	char *val = NULL;
	size_t vlen = 0;
	int64_t used = 0;
	int rc = kv_get(cat, key, &val, &vlen, err);

	if (rc && rc != BF_ENOTFOUND)
		return rc;
	*stored = rc == 0 && stored_int(val, vlen, last);
	free(val);
	/* TiDB's user tables start above its system ids; keep that look. */
	if (!*stored)
		*last = !strcmp(counter, "table") ? 99 : 0;
	rc = highest_record_id(cat, counter, &used, err);
	if (rc == 0 && used > *last) {
		*last = used;
		*stored = false;
	}
	return rc;
}

static int counter_key(char key[COUNTER_KEY_MAX], const char *counter, bf_err *err)
{
	if (!counter || !*counter || (size_t)snprintf(key, COUNTER_KEY_MAX, "%s%s", COUNTER_KEY,
						       counter) >= COUNTER_KEY_MAX)
		return bf_errf(err, BF_EINVAL, "bad id counter name");
	return 0;
}

/* Counters and fences: the decimal text of the value. */
static int put_int(bf_catalog *cat, const char *key, int64_t v, bf_err *err)
{
	char buf[24];
	const char *keys[1] = { key };
	char *text;
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	text = strdup(buf);
	if (!text)
		return bf_errf(err, BF_ENOMEM, "catalog: out of memory");
	return put_records(cat, keys, &text, 1, err);
}

int bf_catalog_next_id(bf_catalog *cat, const char *counter, int64_t *id, bf_err *err)
{
	char key[COUNTER_KEY_MAX];
	int64_t last = 0;
	bool stored;
	int rc = counter_key(key, counter, err);

	if (rc == 0)
		rc = last_id(cat, counter, key, &last, &stored, err);
	if (rc == 0 && last == INT64_MAX)
		rc = bf_errf(err, BF_ERANGE, "the %s id counter is used up", counter);
	if (rc == 0)
		rc = put_int(cat, key, last + 1, err);
	if (rc == 0)
		*id = last + 1;
	return rc;
}

int bf_catalog_reserve_id(bf_catalog *cat, const char *counter, int64_t id, bf_err *err)
{
	char key[COUNTER_KEY_MAX];
	int64_t last = 0;
	bool stored;
	int rc = counter_key(key, counter, err);

	if (rc == 0 && id <= 0)
		rc = bf_errf(err, BF_EINVAL, "id %" PRId64 " is not positive", id);
	if (rc == 0)
		rc = last_id(cat, counter, key, &last, &stored, err);
	if (rc || (stored && last >= id))
		return rc;
	return put_int(cat, key, last > id ? last : id, err);
}

/* ---- jobs ---- */

static void job_key(char key[JOB_KEY_MAX], int64_t id)
{
	snprintf(key, JOB_KEY_MAX, "%s%020" PRId64, JOB_KEY, id);
}

/* A job record whose id is not the one in its key would be found under
 * one id and act as another. */
static bool job_matches_key(const bf_job *job, const uint8_t *key, size_t klen)
{
	int64_t id;
	return stored_int(key + strlen(JOB_KEY), klen - strlen(JOB_KEY), &id) && id == job->id;
}

int bf_catalog_get_job(bf_catalog *cat, int64_t id, bf_job *out, bf_err *err)
{
	char key[JOB_KEY_MAX], *val = NULL;
	size_t vlen = 0;
	int rc;

	job_key(key, id);
	rc = kv_get(cat, key, &val, &vlen, err);
	if (rc == BF_ENOTFOUND)
		return bf_errf(err, rc, "job %" PRId64 " does not exist", id);
	if (rc)
		return rc;
	rc = bf_catalog_decode_job(val, vlen, key, out, err);
	free(val);
	if (rc == 0 && out->id != id)
		return bf_errf(err, BF_ECORRUPT, "catalog record %s is damaged: id %" PRId64
			       " is not the id in its key", key, out->id);
	return rc;
}

int bf_catalog_put_job(bf_catalog *cat, const bf_job *job, bf_err *err)
{
	char key[JOB_KEY_MAX], *text = NULL;
	const char *keys[1] = { key };
	int rc = bf_catalog_encode_job(job, &text, err);

	job_key(key, job->id);
	return rc ? rc : put_records(cat, keys, &text, 1, err);
}

int bf_catalog_put_table_and_job_fenced(bf_catalog *cat, const bf_table *t, const bf_job *job,
					const bf_fence_token *fences, int nfences, bf_err *err)
{
	char tkey[TABLE_KEY_MAX], jkey[JOB_KEY_MAX], *texts[2] = { NULL, NULL };
	const char *keys[2] = { tkey, jkey };
	int rc = bf_catalog_encode_table(t, &texts[0], err);

	if (rc == 0)
		rc = bf_catalog_encode_job(job, &texts[1], err);
	if (rc) {
		free(texts[0]);
		return rc;
	}
	table_key(tkey, t->name);
	job_key(jkey, job->id);
	return put_fenced(cat, keys, texts, 2, fences, nfences, err);
}

int bf_catalog_put_table_and_job(bf_catalog *cat, const bf_table *t, const bf_job *job,
				 bf_err *err)
{
	return bf_catalog_put_table_and_job_fenced(cat, t, job, NULL, 0, err);
}

/* One record of the walk: 0, or the reason it is damaged in why. */
static int walk_one(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen, bf_job *job,
		    bf_err *why)
{
	int rc = bf_catalog_read_job((const char *)v, vlen, job, why);

	if (rc == 0 && !job_matches_key(job, k, klen))
		rc = bf_errf(why, BF_ECORRUPT, "id %" PRId64 " is not the id in its key", job->id);
	return rc;
}

typedef struct job_walk {
	int (*fn)(const bf_job *job, void *arg);
	void (*damaged)(const char *record, const char *why, void *arg);
	void *arg;
	bf_job job;
	bf_err *err;
} job_walk;

static int job_one(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
	job_walk *w = arg;
	char rec[SHOWN_KEY];
	bf_err why;
	int rc;

	bf_err_clear(&why);
	rc = walk_one((const uint8_t *)k, klen, (const uint8_t *)v, vlen, &w->job, &why);
	shown_key(k, klen, rec);
	if (rc == BF_ECORRUPT && w->damaged) {
		w->damaged(rec, why.msg, w->arg);
		return 0;
	}
	if (rc == BF_ECORRUPT)
		return bf_errf(w->err, rc, "catalog record %s is damaged: %s", rec, why.msg);
	if (rc)
		return bf_errf(w->err, rc, "catalog record %s: %s", rec, why.msg);
	return w->fn(&w->job, w->arg);
}

int bf_catalog_foreach_job(bf_catalog *cat, int (*fn)(const bf_job *job, void *arg),
			   void (*damaged)(const char *record, const char *why, void *arg),
			   void *arg, bf_err *err)
{
	job_walk *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return bf_errf(err, BF_ENOMEM, "catalog: out of memory");
	w->fn = fn;
	w->damaged = damaged;
	w->arg = arg;
	w->err = err;
	rc = cat->ops->scan(cat->impl, JOB_KEY, JOB_END, job_one, w, err);
	free(w);
	return rc;
}

/* ---- fence records ---- */

static int fence_key(char k[FENCE_KEY_MAX], const char *key, bf_err *err)
{
	if ((size_t)snprintf(k, FENCE_KEY_MAX, "%s%s", FENCE_KEY, key) >= FENCE_KEY_MAX)
		return bf_errf(err, BF_EINVAL, "fence key %s is too long", key);
	return 0;
}

int bf_catalog_get_fence(bf_catalog *cat, const char *key, int64_t *revision, bf_err *err)
{
	char k[FENCE_KEY_MAX], *val = NULL;
	size_t vlen = 0;
	int rc = fence_key(k, key, err);

	*revision = 0;
	if (rc == 0)
		rc = kv_get(cat, k, &val, &vlen, err);
	if (rc == 0 && !stored_int(val, vlen, revision)) {
		*revision = 0;
		rc = bf_errf(err, BF_ECORRUPT, "catalog record %s is damaged: not a revision", k);
	}
	free(val);
	return rc == BF_ENOTFOUND ? 0 : rc;
}

int bf_catalog_put_fence(bf_catalog *cat, const char *key, int64_t revision, bf_err *err)
{
	char k[FENCE_KEY_MAX];
	int rc = fence_key(k, key, err);

	if (rc == 0 && revision < 0)
		rc = bf_errf(err, BF_EINVAL, "fence revision %" PRId64 " is negative", revision);
	return rc ? rc : put_int(cat, k, revision, err);
}
