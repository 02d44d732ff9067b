/*
 * The strict decoders of catalog records (JSON).
 *
 * Integers travel as decimal strings (a JSON number is a double and holds
 * only 53 bits) and are read back only from one. Every field is type- and
 * range-checked, a string that does not fit its field is refused rather
 * than cut, and the first problem is reported with the field's path
 * ("config.workers = 0 is out of range 1..64"). The encoders
 * (catalog_encode.c) run their output through here before it is written.
 * Depends on cJSON, the codec (checkpoint keys) and util.
 */
#include "engine/catalog_json.h"
#include "bfill/sst.h"
#include "util/util.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHOWN 64 /* bytes of a bad value quoted in a message */

/* Every refusal here is damage; the message is the field and what is wrong. */
#define bad(r, ...) bf_errf((r), BF_ECORRUPT, __VA_ARGS__)

static const char *shown(const char *s, char buf[SHOWN])
{
	return bf_printable(s, strlen(s), buf, SHOWN);
}

/* A value for a message: a string quoted and made printable, else its kind. */
static const char *shown_value(const cJSON *v, char buf[SHOWN])
{
	if (!cJSON_IsString(v))
		return cJSON_IsNumber(v) ? "(a number)"
		       : cJSON_IsNull(v) ? "(null)"
					 : "(not a string)";
	buf[0] = '"';
	bf_printable(v->valuestring, strlen(v->valuestring), buf + 1, SHOWN - 2);
	strcat(buf, "\"");
	return buf;
}

/* ---- reading fields ---- */

/*
 * Member k of object o, at path `at` ("config.") for messages. Absent:
 * *out is NULL, and that is damage only when the field is required. A key
 * given twice is damage: which of the two would be meant?
 */
static int member(bf_err *r, const cJSON *o, const char *at, const char *k, bool required,
		  const cJSON **out)
{
	const cJSON *found = NULL, *it;

	cJSON_ArrayForEach(it, o) {
		if (!it->string || strcmp(it->string, k))
			continue;
		if (found)
			return bad(r, "%s%s appears twice", at, k);
		found = it;
	}
	if (!found && required)
		return bad(r, "%s%s is missing", at, k);
	*out = found;
	return 0;
}

static bool int_string(const cJSON *v, int64_t *x)
{
	return cJSON_IsString(v) && bf_parse_i64(v->valuestring, x) == 0;
}

/* An integer in lo..hi; *out keeps its value when an optional field is absent. */
static int get_i64(bf_err *r, const cJSON *o, const char *at, const char *k, bool required,
		   int64_t lo, int64_t hi, int64_t *out)
{
	const cJSON *v;
	char buf[SHOWN];
	int64_t x;
	int rc = member(r, o, at, k, required, &v);

	if (rc || !v)
		return rc;
	if (!int_string(v, &x))
		return bad(r, "%s%s %s is not an integer", at, k, shown_value(v, buf));
	if (x < lo || x > hi)
		return bad(r, "%s%s = %" PRId64 " is out of range %" PRId64 "..%" PRId64, at, k,
			   x, lo, hi);
	*out = x;
	return 0;
}

static int get_int(bf_err *r, const cJSON *o, const char *at, const char *k, int lo, int hi,
		   int *out)
{
	int64_t v = *out;
	int rc = get_i64(r, o, at, k, true, lo, hi, &v);
	*out = (int)v;
	return rc;
}

/* A counter: 0..INT64_MAX, since it is written through int64. */
static int get_count(bf_err *r, const cJSON *o, const char *at, const char *k, bool required,
		     uint64_t *out)
{
	int64_t v = (int64_t)*out;
	int rc = get_i64(r, o, at, k, required, 0, INT64_MAX, &v);
	*out = (uint64_t)v;
	return rc;
}

static int get_str(bf_err *r, const cJSON *o, const char *at, const char *k, bool required,
		   char *dst, size_t size)
{
	const cJSON *v;
	size_t n;
	int rc = member(r, o, at, k, required, &v);

	if (rc || !v)
		return rc;
	if (!cJSON_IsString(v))
		return bad(r, "%s%s is not a string", at, k);
	n = strlen(v->valuestring);
	if (n >= size)
		return bad(r, "%s%s is %zu bytes, more than the %zu it may have", at, k, n,
			   size - 1);
	memcpy(dst, v->valuestring, n + 1);
	return 0;
}

static int get_name(bf_err *r, const cJSON *o, const char *at, const char *k, char dst[BF_NAME_MAX])
{
	char buf[SHOWN];
	int rc = get_str(r, o, at, k, true, dst, BF_NAME_MAX);

	if (rc == 0 && !bf_name_valid(dst))
		return bad(r, "%s%s \"%s\" is not a valid name", at, k, shown(dst, buf));
	return rc;
}

static int get_bool(bf_err *r, const cJSON *o, const char *at, const char *k, bool required,
		    bool *out)
{
	const cJSON *v;
	int rc = member(r, o, at, k, required, &v);

	if (rc || !v)
		return rc;
	if (!cJSON_IsBool(v))
		return bad(r, "%s%s is not true or false", at, k);
	*out = cJSON_IsTrue(v);
	return 0;
}

/* An array of at most max items, or an object (max < 0). */
static int get_node(bf_err *r, const cJSON *o, const char *at, const char *k, bool required,
		    int max, const cJSON **out)
{
	int rc = member(r, o, at, k, required, out);

	if (rc || !*out)
		return rc;
	if (max < 0)
		return cJSON_IsObject(*out) ? 0 : bad(r, "%s%s is not an object", at, k);
	if (!cJSON_IsArray(*out))
		return bad(r, "%s%s is not an array", at, k);
	if (cJSON_GetArraySize(*out) > max)
		return bad(r, "%s%s has %d items, more than %d", at, k, cJSON_GetArraySize(*out),
			   max);
	return 0;
}

/* ---- parsing ---- */

/* cJSON turns \u0000 into a NUL that silently cuts a string short; bfill
 * never writes one, so a record holding one is damaged. */
static bool has_nul_escape(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && n - i >= 6 && !memcmp(s + i + 2, "0000", 4))
			return true;
		i++; /* the escaped character, which may be a backslash */
	}
	return false;
}

/*
 * Parses one JSON object that is the whole text. cJSON 1.7.15 may read a
 * byte past the length it is given (upstream issue #804), so it parses a
 * NUL-terminated copy.
 */
static int parse_object(bf_err *r, const char *json, size_t len, cJSON **out)
{
	const char *end = NULL;
	char *copy;

	*out = NULL;
	if (memchr(json, '\0', len))
		return bad(r, "it holds a NUL byte");
	if (has_nul_escape(json, len))
		return bad(r, "a string in it holds \\u0000");
	copy = malloc(len + 1);
	if (!copy)
		return BF_ENOMEM;
	memcpy(copy, json, len);
	copy[len] = '\0';
	*out = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
	if (*out) {
		end += strspn(end, " \t\r\n");
		if (end != copy + len) {
			cJSON_Delete(*out);
			*out = NULL;
		}
	}
	free(copy);
	if (!*out)
		return bad(r, "it is not valid JSON");
	if (!cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		return bad(r, "it is not a JSON object");
	}
	return 0;
}

/* ---- tables ---- */

static int decode_column(bf_err *r, const cJSON *it, bf_table *t)
{
	bf_column *c = &t->cols[t->ncols];
	char at[32], type[32], buf[SHOWN];
	int rc;

	snprintf(at, sizeof(at), "columns[%d].", t->ncols);
	if (!cJSON_IsObject(it))
		return bad(r, "columns[%d] is not an object", t->ncols);
	/* Row v2 keeps column ids in 32 bits. */
	if ((rc = get_name(r, it, at, "name", c->name)) ||
	    (rc = get_i64(r, it, at, "id", true, 1, UINT32_MAX, &c->id)) ||
	    (rc = get_str(r, it, at, "type", true, type, sizeof(type))) ||
	    (rc = get_bool(r, it, at, "not_null", true, &c->not_null)))
		return rc;
	if (bf_coltype_parse(type, c))
		return bad(r, "%stype \"%s\" is not a column type", at, shown(type, buf));
	if (!strcasecmp(c->name, BF_ROWID_NAME))
		return bad(r, "%sname %s is reserved for the hidden handle", at, BF_ROWID_NAME);
	for (int i = 0; i < t->ncols; i++) {
		if (!strcasecmp(t->cols[i].name, c->name))
			return bad(r, "%sname is also the name of columns[%d]", at, i);
		if (t->cols[i].id == c->id)
			return bad(r, "%sid %" PRId64 " is also the id of columns[%d]", at, c->id,
				   i);
	}
	t->ncols++;
	return 0;
}

static int decode_index_columns(bf_err *r, const cJSON *arr, const char *at, const bf_table *t,
				bf_index *x)
{
	const cJSON *cn;
	char buf[SHOWN];

	cJSON_ArrayForEach(cn, arr) {
		int pos = cJSON_IsString(cn) ? bf_table_column(t, cn->valuestring) : -1;
		if (pos < 0)
			return bad(r, "%scolumns[%d] %s is not a column of the table", at, x->ncols,
				   shown_value(cn, buf));
		for (int k = 0; k < x->ncols; k++)
			if (x->cols[k] == pos)
				return bad(r, "%scolumns[%d] repeats columns[%d]", at, x->ncols, k);
		x->cols[x->ncols++] = pos;
	}
	if (x->ncols == 0)
		return bad(r, "%scolumns is empty", at);
	return 0;
}

/* Prefix lengths, one per index column; absent on an index without one. */
static int decode_index_prefix(bf_err *r, const cJSON *it, const char *at, const bf_table *t,
			       bf_index *x)
{
	const cJSON *arr, *p;
	int n = 0, rc = get_node(r, it, at, "prefix", false, BF_MAX_INDEX_COLUMNS, &arr);

	if (rc || !arr)
		return rc;
	if (cJSON_GetArraySize(arr) != x->ncols)
		return bad(r, "%sprefix has %d items for %d columns", at, cJSON_GetArraySize(arr),
			   x->ncols);
	cJSON_ArrayForEach(p, arr) {
		int64_t v;
		if (!int_string(p, &v) || v < 0 || v > INT32_MAX ||
		    (v && !bf_index_prefix_fits(&t->cols[x->cols[n]], (int)v)))
			return bad(r, "%sprefix[%d] is not a prefix length of its column", at, n);
		x->prefix[n++] = (int)v;
	}
	return 0;
}

static int decode_index_state(bf_err *r, const cJSON *it, const char *at, bf_index *x)
{
	char state[16], buf[SHOWN];
	int rc = get_str(r, it, at, "state", true, state, sizeof(state));

	if (rc)
		return rc;
	for (int s = BF_INDEX_NONE; s <= BF_INDEX_PUBLIC; s++) {
		if (!strcmp(state, bf_index_state_name((bf_index_state)s))) {
			x->state = (bf_index_state)s;
			return 0;
		}
	}
	return bad(r, "%sstate \"%s\" is not an index state", at, shown(state, buf));
}

static int decode_index(bf_err *r, const cJSON *it, bf_table *t)
{
	bf_index *x = &t->indexes[t->nindexes];
	const cJSON *cols;
	char at[32];
	int rc;

	snprintf(at, sizeof(at), "indexes[%d].", t->nindexes);
	if (!cJSON_IsObject(it))
		return bad(r, "indexes[%d] is not an object", t->nindexes);
	if ((rc = get_name(r, it, at, "name", x->name)) ||
	    (rc = get_i64(r, it, at, "id", true, 1, INT64_MAX, &x->id)) ||
	    (rc = get_node(r, it, at, "columns", true, BF_MAX_INDEX_COLUMNS, &cols)) ||
	    (rc = decode_index_columns(r, cols, at, t, x)) ||
	    (rc = decode_index_prefix(r, it, at, t, x)) ||
	    (rc = get_bool(r, it, at, "unique", true, &x->unique)) ||
	    (rc = decode_index_state(r, it, at, x)) ||
	    (rc = get_i64(r, it, at, "job_id", true, 0, INT64_MAX, &x->job_id)))
		return rc;
	if (x->state == BF_INDEX_PUBLIC && x->job_id != 0)
		return bad(r, "%sjob_id = %" PRId64 " on a public index", at, x->job_id);
	if (x->id >= t->next_index_id)
		return bad(r, "%sid %" PRId64 " is not below next_index_id %" PRId64, at, x->id,
			   t->next_index_id);
	for (int i = 0; i < t->nindexes; i++) {
		if (!strcasecmp(t->indexes[i].name, x->name))
			return bad(r, "%sname is also the name of indexes[%d]", at, i);
		if (t->indexes[i].id == x->id)
			return bad(r, "%sid %" PRId64 " is also the id of indexes[%d]", at, x->id,
				   i);
	}
	t->nindexes++;
	return 0;
}

static int decode_table(bf_err *r, const cJSON *o, bf_table *t)
{
	const cJSON *cols, *idxs, *it;
	char handle[BF_NAME_MAX], buf[SHOWN];
	int rc;

	memset(t, 0, sizeof(*t));
	if ((rc = get_name(r, o, "", "name", t->name)) ||
	    (rc = get_i64(r, o, "", "id", true, 1, INT64_MAX, &t->id)) ||
	    (rc = get_str(r, o, "", "handle", true, handle, sizeof(handle))) ||
	    (rc = get_i64(r, o, "", "next_index_id", true, 1, INT64_MAX, &t->next_index_id)) ||
	    (rc = get_count(r, o, "", "rows_hint", true, &t->rows_hint)) ||
	    (rc = get_node(r, o, "", "columns", true, BF_MAX_COLUMNS, &cols)) ||
	    (rc = get_node(r, o, "", "indexes", true, BF_MAX_INDEXES, &idxs)))
		return rc;
	cJSON_ArrayForEach(it, cols) {
		if ((rc = decode_column(r, it, t)))
			return rc;
	}
	t->handle_col = bf_table_column(t, handle);
	if (t->handle_col < 0 && strcmp(handle, BF_ROWID_NAME))
		return bad(r, "handle \"%s\" is not a column", shown(handle, buf));
	/* The handle is the int64 in every record key. */
	if (t->handle_col >= 0 && t->cols[t->handle_col].type != BF_COL_INT)
		return bad(r, "handle \"%s\" is not a signed integer column", shown(handle, buf));
	cJSON_ArrayForEach(it, idxs) {
		if ((rc = decode_index(r, it, t)))
			return rc;
	}
	return 0;
}

/* ---- jobs ---- */

static int decode_job_indexes(bf_err *r, const cJSON *arr, bf_job *j)
{
	const cJSON *it;
	char at[32];
	int rc;

	cJSON_ArrayForEach(it, arr) {
		int n = j->nindexes;
		snprintf(at, sizeof(at), "indexes[%d].", n);
		if (!cJSON_IsObject(it))
			return bad(r, "indexes[%d] is not an object", n);
		if ((rc = get_i64(r, it, at, "id", true, 1, INT64_MAX, &j->index_ids[n])) ||
		    (rc = get_name(r, it, at, "name", j->index_names[n])))
			return rc;
		for (int i = 0; i < n; i++) {
			if (j->index_ids[i] == j->index_ids[n])
				return bad(r, "%sid %" PRId64 " is also the id of indexes[%d]", at,
					   j->index_ids[n], i);
			if (!strcasecmp(j->index_names[i], j->index_names[n]))
				return bad(r, "%sname is also the name of indexes[%d]", at, i);
		}
		j->nindexes++;
	}
	if (j->nindexes == 0)
		return bad(r, "indexes is empty");
	return 0;
}

/* Lease ids of the last run's lock sessions, one per index; a record from
 * before they were kept has none (all 0). */
static int decode_leases(bf_err *r, const cJSON *o, bf_job *j)
{
	const cJSON *arr, *it;
	int n = 0, rc = get_node(r, o, "", "lock_leases", false, BF_MAX_JOB_INDEXES, &arr);

	if (rc || !arr)
		return rc;
	if (cJSON_GetArraySize(arr) != j->nindexes)
		return bad(r, "lock_leases has %d items for %d indexes", cJSON_GetArraySize(arr),
			   j->nindexes);
	cJSON_ArrayForEach(it, arr) {
		int64_t v;
		if (!int_string(it, &v) || v < 0)
			return bad(r, "lock_leases[%d] is not a lease id", n);
		j->lock_leases[n++] = v;
	}
	return 0;
}

/*
 * A checkpoint key: null (none), or the hex of a record key of the job's
 * table, or of the key past all of them (the "_s" prefix padded with
 * zeros) that a finished scan leaves.
 */
static int decode_ckpt_key(bf_err *r, const cJSON *cp, const char *k, int64_t table_id, bool *has,
			   uint8_t key[BF_RECORD_KEY_LEN])
{
	static const uint8_t zeros[BF_RECORD_KEY_LEN - BF_RECORD_PREFIX_LEN];
	const cJSON *v;
	int rc = member(r, cp, "checkpoint.", k, true, &v);

	if (rc)
		return rc;
	*has = !cJSON_IsNull(v);
	if (!*has)
		return 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) != 2 * BF_RECORD_KEY_LEN ||
	    bf_hex_decode(v->valuestring, key, BF_RECORD_KEY_LEN) != BF_RECORD_KEY_LEN)
		return bad(r, "checkpoint.%s is not %d hex digits", k, 2 * BF_RECORD_KEY_LEN);
	bool ours = key[0] == 't' && bf_codec_get_int(key + 1) == table_id && key[9] == '_';
	bool end = key[10] == 's' && !memcmp(key + BF_RECORD_PREFIX_LEN, zeros, sizeof(zeros));
	if (!ours || (key[10] != 'r' && !end))
		return bad(r, "checkpoint.%s is not a record key of table %" PRId64, k, table_id);
	return 0;
}

static int decode_checkpoint(bf_err *r, const cJSON *cp, int64_t table_id, bf_checkpoint *c)
{
	uint64_t gen = 0;
	int rc;

	if ((rc = decode_ckpt_key(r, cp, "flushed_key", table_id, &c->has_flushed,
				  c->flushed_key)) ||
	    (rc = get_count(r, cp, "checkpoint.", "flushed_rows", true, &c->flushed_rows)) ||
	    (rc = decode_ckpt_key(r, cp, "imported_key", table_id, &c->has_imported,
				  c->imported_key)) ||
	    (rc = get_count(r, cp, "checkpoint.", "imported_rows", true, &c->imported_rows)) ||
	    (rc = get_str(r, cp, "checkpoint.", "engine_id", true, c->engine_id,
			  sizeof(c->engine_id))) ||
	    (rc = get_count(r, cp, "checkpoint.", "first_gen", false, &c->first_gen)) ||
	    (rc = get_count(r, cp, "checkpoint.", "imports", true, &c->imports)))
		return rc;
	if (!c->has_flushed && c->flushed_rows)
		return bad(r, "checkpoint.flushed_rows = %" PRIu64 " without a flushed_key",
			   c->flushed_rows);
	if (!c->has_imported && c->imported_rows)
		return bad(r, "checkpoint.imported_rows = %" PRIu64 " without an imported_key",
			   c->imported_rows);
	/* "g<N>": the generation the writers fill; first_gen..N may hold data. */
	if (c->engine_id[0] && (c->engine_id[0] != 'g' || bf_parse_u64(c->engine_id + 1, &gen)))
		return bad(r, "checkpoint.engine_id is not g<generation>");
	if (c->first_gen > gen)
		return bad(r, "checkpoint.first_gen = %" PRIu64
			   " is past the engine's generation %" PRIu64, c->first_gen, gen);
	return 0;
}

static int decode_config(bf_err *r, const cJSON *cfg, bf_job_config *c)
{
	static const char at[] = "config.";
	int64_t mem = 0;
	int rc;

	if ((rc = get_int(r, cfg, at, "workers", 1, BF_JOB_WORKERS_MAX, &c->workers)) ||
	    (rc = get_i64(r, cfg, at, "mem_bytes", true, (int64_t)BF_JOB_MEM_MIN,
			  (int64_t)BF_JOB_MEM_MAX, &mem)) ||
	    (rc = get_count(r, cfg, at, "import_every", true, &c->import_every)) ||
	    (rc = get_str(r, cfg, at, "sort_dir", true, c->sort_dir, sizeof(c->sort_dir))) ||
	    (rc = get_str(r, cfg, at, "etcd", true, c->etcd, sizeof(c->etcd))) ||
	    (rc = get_str(r, cfg, at, "lock_prefix", true, c->lock_prefix,
			  sizeof(c->lock_prefix))) ||
	    (rc = get_int(r, cfg, at, "lock_ttl_s", 1, BF_JOB_LOCK_TTL_MAX, &c->lock_ttl_s)) ||
	    (rc = get_int(r, cfg, at, "lock_timeout_s", 1, BF_JOB_LOCK_TIMEOUT_MAX,
			  &c->lock_timeout_s)) ||
	    (rc = get_int(r, cfg, at, "run_compression", BF_COMPRESS_NONE, BF_COMPRESS_ZSTD,
			  &c->run_compression)) ||
	    (rc = get_int(r, cfg, at, "target_compression", BF_COMPRESS_NONE, BF_COMPRESS_ZSTD,
			  &c->target_compression)))
		return rc;
	c->mem_bytes = (uint64_t)mem;
	/* The job's sort files go under sort_dir: an empty one would be "/". */
	if (!c->sort_dir[0])
		return bad(r, "config.sort_dir is empty");
	if (!c->lock_prefix[0])
		return bad(r, "config.lock_prefix is empty");
	return 0;
}

static int decode_job_state(bf_err *r, const cJSON *o, bf_job *j)
{
	char state[16], buf[SHOWN];
	int rc = get_str(r, o, "", "state", true, state, sizeof(state));

	if (rc == 0 && bf_job_state_parse(state, &j->state))
		return bad(r, "state \"%s\" is not a job state", shown(state, buf));
	return rc;
}

static int decode_rate(bf_err *r, const cJSON *o, double *rate)
{
	const cJSON *v;
	int rc = member(r, o, "", "rate", true, &v);

	if (rc)
		return rc;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
		return bad(r, "rate is not a number of rows per second");
	*rate = v->valuedouble;
	return 0;
}

static int decode_job(bf_err *r, const cJSON *o, bf_job *j)
{
	const cJSON *idx, *cp, *cfg;
	int rc;

	memset(j, 0, sizeof(*j));
	if ((rc = get_i64(r, o, "", "id", true, 1, INT64_MAX, &j->id)) ||
	    (rc = get_name(r, o, "", "table", j->table)) ||
	    (rc = get_i64(r, o, "", "table_id", true, 1, INT64_MAX, &j->table_id)) ||
	    (rc = get_node(r, o, "", "indexes", true, BF_MAX_JOB_INDEXES, &idx)) ||
	    (rc = decode_job_indexes(r, idx, j)) ||
	    (rc = decode_job_state(r, o, j)) ||
	    (rc = get_str(r, o, "", "phase", true, j->phase, sizeof(j->phase))) ||
	    (rc = get_str(r, o, "", "waiting", true, j->waiting, sizeof(j->waiting))) ||
	    (rc = get_count(r, o, "", "rows_done", true, &j->rows_done)) ||
	    (rc = get_count(r, o, "", "rows_total", true, &j->rows_total)) ||
	    (rc = decode_rate(r, o, &j->rate)) ||
	    (rc = get_i64(r, o, "", "start_ms", true, 0, INT64_MAX, &j->start_ms)) ||
	    (rc = get_i64(r, o, "", "update_ms", true, 0, INT64_MAX, &j->update_ms)) ||
	    (rc = get_i64(r, o, "", "end_ms", true, 0, INT64_MAX, &j->end_ms)) ||
	    (rc = get_i64(r, o, "", "pid", true, 0, INT32_MAX, &j->pid)) ||
	    (rc = get_bool(r, o, "", "importing", false, &j->importing)) ||
	    (rc = get_bool(r, o, "", "rolled_back", false, &j->rolled_back)) ||
	    (rc = get_count(r, o, "", "rows_scanned", false, &j->rows_scanned)) ||
	    (rc = get_str(r, o, "", "lock_key", false, j->lock_key, sizeof(j->lock_key))) ||
	    (rc = decode_leases(r, o, j)) ||
	    (rc = get_str(r, o, "", "last_error", true, j->last_error, sizeof(j->last_error))) ||
	    (rc = get_node(r, o, "", "checkpoint", true, -1, &cp)) ||
	    (rc = decode_checkpoint(r, cp, j->table_id, &j->cp)) ||
	    (rc = get_node(r, o, "", "config", true, -1, &cfg)) ||
	    (rc = decode_config(r, cfg, &j->cfg)))
		return rc;
	return 0;
}

/* ---- decoding a whole record ---- */

typedef int (*decode_fn)(bf_err *r, const cJSON *o, void *out);

static int table_fn(bf_err *r, const cJSON *o, void *out) { return decode_table(r, o, out); }
static int job_fn(bf_err *r, const cJSON *o, void *out) { return decode_job(r, o, out); }

static int decode_text(bf_err *r, const char *json, size_t len, decode_fn fn, void *out)
{
	cJSON *o = NULL;
	int rc = parse_object(r, json, len, &o);

	if (rc == 0)
		rc = fn(r, o, out);
	cJSON_Delete(o);
	if (rc == BF_ENOMEM)
		bf_errf(r, rc, "out of memory");
	return rc;
}

int bf_catalog_read_table(const char *json, size_t len, bf_table *out, bf_err *why)
{
	return decode_text(why, json, len, table_fn, out);
}

int bf_catalog_read_job(const char *json, size_t len, bf_job *out, bf_err *why)
{
	return decode_text(why, json, len, job_fn, out);
}

static int name_record(int rc, const char *record, bf_err *err)
{
	if (rc == BF_ENOMEM)
		return bf_err_prefix(err, rc, "catalog record %s", record);
	return rc ? bf_err_prefix(err, rc, "catalog record %s is damaged", record) : 0;
}

int bf_catalog_decode_table(const char *json, size_t len, const char *record, bf_table *out,
			    bf_err *err)
{
	return name_record(bf_catalog_read_table(json, len, out, err), record, err);
}

int bf_catalog_decode_job(const char *json, size_t len, const char *record, bf_job *out,
			  bf_err *err)
{
	return name_record(bf_catalog_read_job(json, len, out, err), record, err);
}

int64_t bf_catalog_record_id(const char *json, size_t len)
{
	cJSON *o = NULL;
	bf_err r;
	int64_t id = 0;

	if (parse_object(&r, json, len, &o) == 0)
		get_i64(&r, o, "", "id", true, 1, INT64_MAX, &id);
	cJSON_Delete(o);
	return id;
}
