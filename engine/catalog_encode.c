/*
 * The encoders of catalog records (JSON). Each record is decoded again
 * (catalog_decode.c) before it is handed out, so that a struct the
 * decoder would refuse is refused here, before it reaches the store.
 * Depends on cJSON and util.
 */
#include "engine/catalog_json.h"
#include "util/util.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN 64 /* bytes of a table name shown in a message */

/* Adds v under k (k NULL: to the array o); a v that could not be made, or
 * could not be added, clears *ok. */
static void add(cJSON *o, const char *k, cJSON *v, bool *ok)
{
	if (v && (k ? cJSON_AddItemToObject(o, k, v) : cJSON_AddItemToArray(o, v)))
		return;
	cJSON_Delete(v);
	*ok = false;
}

static void add_i64(cJSON *o, const char *k, int64_t v, bool *ok)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	add(o, k, cJSON_CreateString(buf), ok);
}

static void add_str(cJSON *o, const char *k, const char *v, bool *ok)
{
	add(o, k, cJSON_CreateString(v), ok);
}

static void add_bool(cJSON *o, const char *k, bool v, bool *ok)
{
	add(o, k, cJSON_CreateBool(v), ok);
}

/* A counter goes through int64; one past INT64_MAX comes out negative and
 * the check decode refuses it. */
static void add_count(cJSON *o, const char *k, uint64_t v, bool *ok)
{
	add_i64(o, k, (int64_t)v, ok);
}

static void add_ckpt_key(cJSON *o, const char *k, bool has, const uint8_t *key, bool *ok)
{
	char hex[2 * BF_RECORD_KEY_LEN + 1];

	if (!has) {
		add(o, k, cJSON_CreateNull(), ok);
		return;
	}
	bf_hex_encode(key, BF_RECORD_KEY_LEN, hex);
	add_str(o, k, hex, ok);
}

static bool terminated(const char *s, size_t size) { return memchr(s, '\0', size) != NULL; }
#define TERMINATED(f) terminated((f), sizeof(f))

/* What the encoder itself relies on: counts and positions inside their
 * arrays, strings ending inside their fields. */
static int table_shape(bf_err *r, const void *in)
{
	const bf_table *t = in;

	if (t->ncols < 0 || t->ncols > BF_MAX_COLUMNS || t->nindexes < 0 ||
	    t->nindexes > BF_MAX_INDEXES)
		return bf_errf(r, BF_EINVAL, "%d columns and %d indexes", t->ncols, t->nindexes);
	if (t->handle_col < -1 || t->handle_col >= t->ncols)
		return bf_errf(r, BF_EINVAL, "handle column %d is not a column", t->handle_col);
	if (!TERMINATED(t->name))
		return bf_errf(r, BF_EINVAL, "name is not NUL-terminated");
	for (int i = 0; i < t->ncols; i++)
		if (!TERMINATED(t->cols[i].name))
			return bf_errf(r, BF_EINVAL, "columns[%d].name is not NUL-terminated", i);
	for (int i = 0; i < t->nindexes; i++) {
		const bf_index *x = &t->indexes[i];
		if (!TERMINATED(x->name))
			return bf_errf(r, BF_EINVAL, "indexes[%d].name is not NUL-terminated", i);
		if (x->ncols < 0 || x->ncols > BF_MAX_INDEX_COLUMNS)
			return bf_errf(r, BF_EINVAL, "indexes[%d] has %d columns", i, x->ncols);
		for (int k = 0; k < x->ncols; k++) {
			if (x->cols[k] < 0 || x->cols[k] >= t->ncols)
				return bf_errf(r, BF_EINVAL, "indexes[%d].columns[%d] = %d"
					       " is not a column", i, k, x->cols[k]);
			if (x->prefix[k] && !bf_index_prefix_fits(&t->cols[x->cols[k]],
								  x->prefix[k]))
				return bf_errf(r, BF_EINVAL, "indexes[%d].prefix[%d] = %d does not"
					       " fit its column", i, k, x->prefix[k]);
		}
	}
	return 0;
}

static bool index_has_prefix(const bf_index *x)
{
	for (int k = 0; k < x->ncols; k++)
		if (x->prefix[k])
			return true;
	return false;
}

static cJSON *table_json(const void *in, bool *ok)
{
	const bf_table *t = in;
	cJSON *o = cJSON_CreateObject(), *cols = cJSON_CreateArray(), *idxs = cJSON_CreateArray();
	char type[32];

	add_str(o, "name", t->name, ok);
	add_i64(o, "id", t->id, ok);
	add_str(o, "handle", t->handle_col < 0 ? BF_ROWID_NAME : t->cols[t->handle_col].name, ok);
	add_i64(o, "next_index_id", t->next_index_id, ok);
	add_count(o, "rows_hint", t->rows_hint, ok);
	for (int i = 0; i < t->ncols; i++) {
		cJSON *c = cJSON_CreateObject();
		add_str(c, "name", t->cols[i].name, ok);
		add_i64(c, "id", t->cols[i].id, ok);
		add_str(c, "type", bf_coltype_format(&t->cols[i], type, sizeof(type)), ok);
		add_bool(c, "not_null", t->cols[i].not_null, ok);
		add(cols, NULL, c, ok);
	}
	for (int i = 0; i < t->nindexes; i++) {
		const bf_index *x = &t->indexes[i];
		cJSON *c = cJSON_CreateObject(), *ic = cJSON_CreateArray();
		add_str(c, "name", x->name, ok);
		add_i64(c, "id", x->id, ok);
		for (int k = 0; k < x->ncols; k++)
			add_str(ic, NULL, t->cols[x->cols[k]].name, ok);
		add(c, "columns", ic, ok);
		/* Written only for a prefix index, so that other records read
		 * as they always did. */
		if (index_has_prefix(x)) {
			cJSON *pl = cJSON_CreateArray();
			for (int k = 0; k < x->ncols; k++)
				add_i64(pl, NULL, x->prefix[k], ok);
			add(c, "prefix", pl, ok);
		}
		add_bool(c, "unique", x->unique, ok);
		add_str(c, "state", bf_index_state_name(x->state), ok);
		add_i64(c, "job_id", x->job_id, ok);
		add(idxs, NULL, c, ok);
	}
	add(o, "columns", cols, ok);
	add(o, "indexes", idxs, ok);
	return o;
}

static int job_shape(bf_err *r, const void *in)
{
	const bf_job *j = in;

	if (j->nindexes < 0 || j->nindexes > BF_MAX_JOB_INDEXES)
		return bf_errf(r, BF_EINVAL, "%d indexes", j->nindexes);
	for (int i = 0; i < j->nindexes; i++)
		if (!TERMINATED(j->index_names[i]))
			return bf_errf(r, BF_EINVAL, "indexes[%d].name is not NUL-terminated", i);
	if (!TERMINATED(j->table) || !TERMINATED(j->phase) || !TERMINATED(j->waiting) ||
	    !TERMINATED(j->lock_key) || !TERMINATED(j->last_error) ||
	    !TERMINATED(j->cp.engine_id) || !TERMINATED(j->cfg.sort_dir) ||
	    !TERMINATED(j->cfg.etcd) || !TERMINATED(j->cfg.lock_prefix))
		return bf_errf(r, BF_EINVAL, "a text field is not NUL-terminated");
	return 0;
}

static void add_checkpoint(cJSON *o, const bf_checkpoint *c, bool *ok)
{
	cJSON *cp = cJSON_CreateObject();

	add_ckpt_key(cp, "flushed_key", c->has_flushed, c->flushed_key, ok);
	add_count(cp, "flushed_rows", c->flushed_rows, ok);
	add_ckpt_key(cp, "imported_key", c->has_imported, c->imported_key, ok);
	add_count(cp, "imported_rows", c->imported_rows, ok);
	add_str(cp, "engine_id", c->engine_id, ok);
	add_count(cp, "first_gen", c->first_gen, ok);
	add_count(cp, "imports", c->imports, ok);
	add(o, "checkpoint", cp, ok);
}

static void add_config(cJSON *o, const bf_job_config *c, bool *ok)
{
	cJSON *cfg = cJSON_CreateObject();

	add_i64(cfg, "workers", c->workers, ok);
	add_count(cfg, "mem_bytes", c->mem_bytes, ok);
	add_count(cfg, "import_every", c->import_every, ok);
	add_str(cfg, "sort_dir", c->sort_dir, ok);
	add_str(cfg, "etcd", c->etcd, ok);
	add_str(cfg, "lock_prefix", c->lock_prefix, ok);
	add_i64(cfg, "lock_ttl_s", c->lock_ttl_s, ok);
	add_i64(cfg, "lock_timeout_s", c->lock_timeout_s, ok);
	add_i64(cfg, "run_compression", c->run_compression, ok);
	add_i64(cfg, "target_compression", c->target_compression, ok);
	add(o, "config", cfg, ok);
}

static cJSON *job_json(const void *in, bool *ok)
{
	const bf_job *j = in;
	cJSON *o = cJSON_CreateObject(), *idx = cJSON_CreateArray(), *leases = cJSON_CreateArray();

	add_i64(o, "id", j->id, ok);
	add_str(o, "table", j->table, ok);
	add_i64(o, "table_id", j->table_id, ok);
	for (int i = 0; i < j->nindexes; i++) {
		cJSON *x = cJSON_CreateObject();
		add_i64(x, "id", j->index_ids[i], ok);
		add_str(x, "name", j->index_names[i], ok);
		add(idx, NULL, x, ok);
		add_i64(leases, NULL, j->lock_leases[i], ok);
	}
	add(o, "indexes", idx, ok);
	add_str(o, "state", bf_job_state_name(j->state), ok);
	add_str(o, "phase", j->phase, ok);
	add_str(o, "waiting", j->waiting, ok);
	add_count(o, "rows_done", j->rows_done, ok);
	add_count(o, "rows_total", j->rows_total, ok);
	/* cJSON writes a NaN or an infinity as null, which the check refuses. */
	add(o, "rate", cJSON_CreateNumber(j->rate), ok);
	add_i64(o, "start_ms", j->start_ms, ok);
	add_i64(o, "update_ms", j->update_ms, ok);
	add_i64(o, "end_ms", j->end_ms, ok);
	add_i64(o, "pid", j->pid, ok);
	add_bool(o, "importing", j->importing, ok);
	add_bool(o, "rolled_back", j->rolled_back, ok);
	add_count(o, "rows_scanned", j->rows_scanned, ok);
	add_str(o, "lock_key", j->lock_key, ok);
	add(o, "lock_leases", leases, ok);
	add_str(o, "last_error", j->last_error, ok);
	add_checkpoint(o, &j->cp, ok);
	add_config(o, &j->cfg, ok);
	return o;
}

/* One kind of record, for encoding. */
typedef struct kind {
	int (*shape)(bf_err *r, const void *in);
	cJSON *(*json)(const void *in, bool *ok);
	int (*read)(const char *json, size_t len, void *out, bf_err *why);
	size_t size; /* of the struct read fills */
} kind;

static int read_table(const char *json, size_t len, void *out, bf_err *why)
{
	return bf_catalog_read_table(json, len, out, why);
}

static int read_job(const char *json, size_t len, void *out, bf_err *why)
{
	return bf_catalog_read_job(json, len, out, why);
}

/* Encodes in, then decodes the text into a scratch struct: only a record
 * the decoder takes is handed out. The reason for a refusal goes to err. */
static int encode(const kind *k, const void *in, char **text, bf_err *err)
{
	void *scratch = malloc(k->size);
	bool ok = true;
	cJSON *o = NULL;
	int rc = scratch ? k->shape(err, in) : BF_ENOMEM;

	*text = NULL;
	if (rc)
		goto out;
	o = k->json(in, &ok);
	*text = ok && o ? cJSON_PrintUnformatted(o) : NULL;
	if (!*text) {
		rc = BF_ENOMEM;
		goto out;
	}
	rc = k->read(*text, strlen(*text), scratch, err);
	if (rc) {
		free(*text);
		*text = NULL;
	}
out:
	cJSON_Delete(o);
	free(scratch);
	return rc;
}

/* Names the record in a refusal; what the decoder calls damage is, before
 * writing, a bad argument. */
static int refused(int rc, const char *what, bf_err *err)
{
	if (rc == BF_ENOMEM)
		return bf_errf(err, rc, "%s: out of memory", what);
	if (err)
		err->code = BF_EINVAL;
	return bf_err_prefix(err, BF_EINVAL, "%s can't be recorded", what);
}

int bf_catalog_encode_table(const bf_table *t, char **text, bf_err *err)
{
	static const kind table = { table_shape, table_json, read_table, sizeof(bf_table) };
	char name[SHOWN], what[SHOWN + 16];
	int rc = encode(&table, t, text, err);

	if (rc == 0)
		return 0;
	snprintf(what, sizeof(what), "table \"%s\"",
		 bf_printable(t->name, strnlen(t->name, sizeof(t->name)), name, sizeof(name)));
	return refused(rc, what, err);
}

int bf_catalog_encode_job(const bf_job *j, char **text, bf_err *err)
{
	static const kind job = { job_shape, job_json, read_job, sizeof(bf_job) };
	char what[32];
	int rc = encode(&job, j, text, err);

	if (rc == 0)
		return 0;
	snprintf(what, sizeof(what), "job %" PRId64, j->id);
	return refused(rc, what, err);
}
