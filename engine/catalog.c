/*
 * Catalog records (tables, jobs, id counters) as JSON values in the store.
 * Depends on the store and cJSON.
 */
#include "bfill/catalog.h"
#include "util/util.h"

#include <cjson/cJSON.h>
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
#define TABLE_KEY_MAX (sizeof(TABLE_KEY) + BF_NAME_MAX)

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

char *bf_coltype_format(const bf_column *c, char *buf, size_t n)
{
	switch (c->type) {
	case BF_COL_INT: snprintf(buf, n, "%s", int_name(c->len, false)); break;
	case BF_COL_UINT: snprintf(buf, n, "%s", int_name(c->len, true)); break;
	case BF_COL_CHAR: snprintf(buf, n, "char(%d)", c->len); break;
	case BF_COL_VARCHAR: snprintf(buf, n, "varchar(%d)", c->len); break;
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
	return BF_EINVAL;
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

/* ---- JSON helpers ---- */

static int64_t json_int(const cJSON *o, const char *k, int64_t def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsString(v))
		return strtoll(v->valuestring, NULL, 10);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

/* 64-bit counters go through strings: a JSON double holds only 53 bits. */
static void json_put_int(cJSON *o, const char *k, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	cJSON_AddStringToObject(o, k, buf);
}

static void json_str(const cJSON *o, const char *k, char *dst, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (uint8_t)v;
	}
	return true;
}

/*
 * Writes n JSON records (each deleted here) in one atomic, durable batch,
 * so that records written together (a table and its job) never disagree.
 */
static int put_records(bf_store *st, const char *const *keys, cJSON **objs, int n, bf_err *err)
{
	bf_store_batch *b = bf_store_batch_create();
	int rc = 0;

	for (int i = 0; i < n; i++) {
		char *text = rc == 0 && objs[i] ? cJSON_PrintUnformatted(objs[i]) : NULL;
		cJSON_Delete(objs[i]);
		if (rc)
			continue;
		if (!text) {
			rc = bf_errf(err, BF_ENOMEM, "catalog: out of memory");
			continue;
		}
		/* The batch keeps its own copy. */
		bf_store_batch_put(b, keys[i], strlen(keys[i]), text, strlen(text));
		free(text);
	}
	if (rc == 0)
		rc = bf_store_batch_commit(st, b, err);
	bf_store_batch_destroy(b);
	return rc;
}

static int get_json(bf_store *st, const char *key, cJSON **out, bf_err *err)
{
	char *val = NULL;
	size_t vlen;
	int rc = bf_store_get(st, key, strlen(key), &val, &vlen, err);

	*out = NULL;
	if (rc)
		return rc;
	*out = cJSON_ParseWithLength(val, vlen);
	free(val);
	if (!*out)
		return bf_errf(err, BF_ECORRUPT, "catalog record %s is not valid JSON", key);
	return 0;
}

/* ---- tables ---- */

static cJSON *table_to_json(const bf_table *t)
{
	cJSON *o = cJSON_CreateObject(), *cols = cJSON_AddArrayToObject(o, "columns");
	cJSON *idxs = cJSON_AddArrayToObject(o, "indexes");
	char type[32];

	cJSON_AddStringToObject(o, "name", t->name);
	json_put_int(o, "id", t->id);
	cJSON_AddStringToObject(o, "handle", t->cols[t->handle_col].name);
	json_put_int(o, "next_index_id", t->next_index_id);
	json_put_int(o, "rows_hint", (int64_t)t->rows_hint);
	for (int i = 0; i < t->ncols; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", t->cols[i].name);
		json_put_int(c, "id", t->cols[i].id);
		cJSON_AddStringToObject(c, "type", bf_coltype_format(&t->cols[i], type, sizeof(type)));
		cJSON_AddBoolToObject(c, "not_null", t->cols[i].not_null);
		cJSON_AddItemToArray(cols, c);
	}
	for (int i = 0; i < t->nindexes; i++) {
		const bf_index *x = &t->indexes[i];
		cJSON *c = cJSON_CreateObject(), *ic = cJSON_AddArrayToObject(c, "columns");
		cJSON_AddStringToObject(c, "name", x->name);
		json_put_int(c, "id", x->id);
		for (int k = 0; k < x->ncols; k++)
			cJSON_AddItemToArray(ic, cJSON_CreateString(t->cols[x->cols[k]].name));
		cJSON_AddBoolToObject(c, "unique", x->unique);
		cJSON_AddStringToObject(c, "state", bf_index_state_name(x->state));
		json_put_int(c, "job_id", x->job_id);
		cJSON_AddItemToArray(idxs, c);
	}
	return o;
}

static int table_from_json(const cJSON *o, bf_table *t)
{
	const cJSON *cols = cJSON_GetObjectItemCaseSensitive(o, "columns");
	const cJSON *idxs = cJSON_GetObjectItemCaseSensitive(o, "indexes");
	const cJSON *it;
	char handle[BF_NAME_MAX], buf[64];

	memset(t, 0, sizeof(*t));
	json_str(o, "name", t->name, sizeof(t->name));
	t->id = json_int(o, "id", 0);
	t->next_index_id = json_int(o, "next_index_id", 1);
	t->rows_hint = (uint64_t)json_int(o, "rows_hint", 0);
	json_str(o, "handle", handle, sizeof(handle));
	if (!cJSON_IsArray(cols) || cJSON_GetArraySize(cols) > BF_MAX_COLUMNS)
		return BF_ECORRUPT;
	cJSON_ArrayForEach(it, cols) {
		bf_column *c = &t->cols[t->ncols++];
		json_str(it, "name", c->name, sizeof(c->name));
		c->id = json_int(it, "id", 0);
		json_str(it, "type", buf, sizeof(buf));
		if (bf_coltype_parse(buf, c))
			return BF_ECORRUPT;
		c->not_null = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "not_null"));
	}
	t->handle_col = bf_table_column(t, handle);
	if (t->handle_col < 0)
		return BF_ECORRUPT;
	if (!cJSON_IsArray(idxs) || cJSON_GetArraySize(idxs) > BF_MAX_INDEXES)
		return BF_ECORRUPT;
	cJSON_ArrayForEach(it, idxs) {
		bf_index *x = &t->indexes[t->nindexes++];
		const cJSON *ic = cJSON_GetObjectItemCaseSensitive(it, "columns"), *cn;
		json_str(it, "name", x->name, sizeof(x->name));
		x->id = json_int(it, "id", 0);
		x->unique = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "unique"));
		x->job_id = json_int(it, "job_id", 0);
		json_str(it, "state", buf, sizeof(buf));
		x->state = BF_INDEX_NONE;
		for (int s = 0; s < 3; s++)
			if (!strcmp(buf, index_states[s]))
				x->state = (bf_index_state)s;
		if (!cJSON_IsArray(ic) || cJSON_GetArraySize(ic) > BF_MAX_INDEX_COLUMNS)
			return BF_ECORRUPT;
		cJSON_ArrayForEach(cn, ic) {
			int pos = cJSON_IsString(cn) ? bf_table_column(t, cn->valuestring) : -1;
			if (pos < 0)
				return BF_ECORRUPT;
			x->cols[x->ncols++] = pos;
		}
	}
	return 0;
}

static void table_key(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s%s", TABLE_KEY, name);
}

int bf_catalog_get_table(bf_store *st, const char *name, bf_table *out, bf_err *err)
{
	char key[TABLE_KEY_MAX];
	cJSON *o = NULL;
	int rc;

	table_key(key, sizeof(key), name);
	rc = get_json(st, key, &o, err);
	if (rc == BF_ENOTFOUND)
		return bf_errf(err, rc, "table '%s' does not exist", name);
	if (rc)
		return rc;
	rc = table_from_json(o, out);
	cJSON_Delete(o);
	if (rc)
		return bf_errf(err, rc, "catalog record of table '%s' is malformed", name);
	return 0;
}

int bf_catalog_put_table(bf_store *st, const bf_table *t, bf_err *err)
{
	char key[TABLE_KEY_MAX];
	const char *keys[1] = { key };
	cJSON *objs[1] = { table_to_json(t) };

	table_key(key, sizeof(key), t->name);
	return put_records(st, keys, objs, 1, err);
}

int bf_catalog_delete_table(bf_store *st, const char *name, bf_err *err)
{
	char key[TABLE_KEY_MAX];
	table_key(key, sizeof(key), name);
	return bf_store_delete(st, key, strlen(key), err);
}

int bf_catalog_next_id(bf_store *st, const char *counter, int64_t *id, bf_err *err)
{
	char key[128], *val = NULL, buf[32];
	size_t vlen;
	int64_t next = 1;
	int rc;

	snprintf(key, sizeof(key), "%s%s", COUNTER_KEY, counter);
	rc = bf_store_get(st, key, strlen(key), &val, &vlen, err);
	if (rc == 0) {
		snprintf(buf, sizeof(buf), "%.*s", (int)(vlen < 31 ? vlen : 31), val);
		next = strtoll(buf, NULL, 10) + 1;
		free(val);
	} else if (rc != BF_ENOTFOUND) {
		return rc;
	} else if (!strcmp(counter, "table")) {
		/* TiDB's user tables start above its system ids; keep that look. */
		next = 100;
	}
	snprintf(buf, sizeof(buf), "%" PRId64, next);
	rc = bf_store_put(st, key, strlen(key), buf, strlen(buf), err);
	if (rc == 0)
		*id = next;
	return rc;
}

/* ---- jobs ---- */

static void job_key(char *buf, size_t n, int64_t id)
{
	snprintf(buf, n, "%s%020" PRId64, JOB_KEY, id);
}

static void put_key_hex(cJSON *o, const char *k, bool has, const uint8_t *key)
{
	char hex[2 * BF_RECORD_KEY_LEN + 1];
	if (!has) {
		cJSON_AddNullToObject(o, k);
		return;
	}
	hex_encode(key, BF_RECORD_KEY_LEN, hex);
	cJSON_AddStringToObject(o, k, hex);
}

static bool get_key_hex(const cJSON *o, const char *k, uint8_t *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) && hex_decode(v->valuestring, key, BF_RECORD_KEY_LEN);
}

static cJSON *job_to_json(const bf_job *j)
{
	cJSON *o = cJSON_CreateObject(), *idx = cJSON_AddArrayToObject(o, "indexes");
	cJSON *cp = cJSON_AddObjectToObject(o, "checkpoint");
	cJSON *cfg = cJSON_AddObjectToObject(o, "config");

	json_put_int(o, "id", j->id);
	cJSON_AddStringToObject(o, "table", j->table);
	json_put_int(o, "table_id", j->table_id);
	for (int i = 0; i < j->nindexes; i++) {
		cJSON *x = cJSON_CreateObject();
		json_put_int(x, "id", j->index_ids[i]);
		cJSON_AddStringToObject(x, "name", j->index_names[i]);
		cJSON_AddItemToArray(idx, x);
	}
	cJSON_AddStringToObject(o, "state", bf_job_state_name(j->state));
	cJSON_AddStringToObject(o, "phase", j->phase);
	cJSON_AddStringToObject(o, "waiting", j->waiting);
	json_put_int(o, "rows_done", (int64_t)j->rows_done);
	json_put_int(o, "rows_total", (int64_t)j->rows_total);
	cJSON_AddNumberToObject(o, "rate", j->rate);
	json_put_int(o, "start_ms", j->start_ms);
	json_put_int(o, "update_ms", j->update_ms);
	json_put_int(o, "end_ms", j->end_ms);
	json_put_int(o, "pid", j->pid);
	cJSON_AddBoolToObject(o, "importing", j->importing);
	cJSON_AddBoolToObject(o, "rolled_back", j->rolled_back);
	json_put_int(o, "rows_scanned", (int64_t)j->rows_scanned);
	cJSON_AddStringToObject(o, "lock_key", j->lock_key);
	cJSON *leases = cJSON_AddArrayToObject(o, "lock_leases");
	for (int i = 0; i < j->nindexes; i++) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%" PRId64, j->lock_leases[i]);
		cJSON_AddItemToArray(leases, cJSON_CreateString(buf));
	}
	cJSON_AddStringToObject(o, "last_error", j->last_error);

	put_key_hex(cp, "flushed_key", j->cp.has_flushed, j->cp.flushed_key);
	json_put_int(cp, "flushed_rows", (int64_t)j->cp.flushed_rows);
	put_key_hex(cp, "imported_key", j->cp.has_imported, j->cp.imported_key);
	json_put_int(cp, "imported_rows", (int64_t)j->cp.imported_rows);
	cJSON_AddStringToObject(cp, "engine_id", j->cp.engine_id);
	json_put_int(cp, "first_gen", (int64_t)j->cp.first_gen);
	json_put_int(cp, "imports", (int64_t)j->cp.imports);

	json_put_int(cfg, "workers", j->cfg.workers);
	json_put_int(cfg, "mem_bytes", (int64_t)j->cfg.mem_bytes);
	json_put_int(cfg, "import_every", (int64_t)j->cfg.import_every);
	cJSON_AddStringToObject(cfg, "sort_dir", j->cfg.sort_dir);
	cJSON_AddStringToObject(cfg, "etcd", j->cfg.etcd);
	cJSON_AddStringToObject(cfg, "lock_prefix", j->cfg.lock_prefix);
	json_put_int(cfg, "lock_ttl_s", j->cfg.lock_ttl_s);
	json_put_int(cfg, "lock_timeout_s", j->cfg.lock_timeout_s);
	json_put_int(cfg, "run_compression", j->cfg.run_compression);
	json_put_int(cfg, "target_compression", j->cfg.target_compression);
	return o;
}

static int job_from_json(const cJSON *o, bf_job *j)
{
	const cJSON *idx = cJSON_GetObjectItemCaseSensitive(o, "indexes"), *it;
	const cJSON *cp = cJSON_GetObjectItemCaseSensitive(o, "checkpoint");
	const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
	const cJSON *rate = cJSON_GetObjectItemCaseSensitive(o, "rate");
	char buf[32];

	memset(j, 0, sizeof(*j));
	j->id = json_int(o, "id", 0);
	json_str(o, "table", j->table, sizeof(j->table));
	j->table_id = json_int(o, "table_id", 0);
	if (!cJSON_IsArray(idx) || cJSON_GetArraySize(idx) > BF_MAX_JOB_INDEXES ||
	    !cJSON_IsObject(cp) || !cJSON_IsObject(cfg))
		return BF_ECORRUPT;
	cJSON_ArrayForEach(it, idx) {
		j->index_ids[j->nindexes] = json_int(it, "id", 0);
		json_str(it, "name", j->index_names[j->nindexes], BF_NAME_MAX);
		j->nindexes++;
	}
	json_str(o, "state", buf, sizeof(buf));
	if (bf_job_state_parse(buf, &j->state))
		return BF_ECORRUPT;
	json_str(o, "phase", j->phase, sizeof(j->phase));
	json_str(o, "waiting", j->waiting, sizeof(j->waiting));
	j->rows_done = (uint64_t)json_int(o, "rows_done", 0);
	j->rows_total = (uint64_t)json_int(o, "rows_total", 0);
	j->rate = cJSON_IsNumber(rate) ? rate->valuedouble : 0;
	j->start_ms = json_int(o, "start_ms", 0);
	j->update_ms = json_int(o, "update_ms", 0);
	j->end_ms = json_int(o, "end_ms", 0);
	j->pid = json_int(o, "pid", 0);
	j->importing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "importing"));
	j->rolled_back = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "rolled_back"));
	j->rows_scanned = (uint64_t)json_int(o, "rows_scanned", 0);
	json_str(o, "lock_key", j->lock_key, sizeof(j->lock_key));
	const cJSON *leases = cJSON_GetObjectItemCaseSensitive(o, "lock_leases");
	int nl = 0;
	cJSON_ArrayForEach(it, leases) {
		if (nl < BF_MAX_JOB_INDEXES)
			j->lock_leases[nl++] = cJSON_IsString(it) ? strtoll(it->valuestring, NULL, 10) : 0;
	}
	json_str(o, "last_error", j->last_error, sizeof(j->last_error));

	j->cp.has_flushed = get_key_hex(cp, "flushed_key", j->cp.flushed_key);
	j->cp.flushed_rows = (uint64_t)json_int(cp, "flushed_rows", 0);
	j->cp.has_imported = get_key_hex(cp, "imported_key", j->cp.imported_key);
	j->cp.imported_rows = (uint64_t)json_int(cp, "imported_rows", 0);
	json_str(cp, "engine_id", j->cp.engine_id, sizeof(j->cp.engine_id));
	j->cp.first_gen = (uint64_t)json_int(cp, "first_gen", 0);
	j->cp.imports = (uint64_t)json_int(cp, "imports", 0);

	j->cfg.workers = (int)json_int(cfg, "workers", 0);
	j->cfg.mem_bytes = (uint64_t)json_int(cfg, "mem_bytes", 0);
	j->cfg.import_every = (uint64_t)json_int(cfg, "import_every", 0);
	json_str(cfg, "sort_dir", j->cfg.sort_dir, sizeof(j->cfg.sort_dir));
	json_str(cfg, "etcd", j->cfg.etcd, sizeof(j->cfg.etcd));
	json_str(cfg, "lock_prefix", j->cfg.lock_prefix, sizeof(j->cfg.lock_prefix));
	j->cfg.lock_ttl_s = (int)json_int(cfg, "lock_ttl_s", 10);
	j->cfg.lock_timeout_s = (int)json_int(cfg, "lock_timeout_s", 60);
	j->cfg.run_compression = (int)json_int(cfg, "run_compression", 0);
	j->cfg.target_compression = (int)json_int(cfg, "target_compression", 0);
	return 0;
}

int bf_catalog_get_job(bf_store *st, int64_t id, bf_job *out, bf_err *err)
{
	char key[128];
	cJSON *o = NULL;
	int rc;

	job_key(key, sizeof(key), id);
	rc = get_json(st, key, &o, err);
	if (rc == BF_ENOTFOUND)
		return bf_errf(err, rc, "job %" PRId64 " does not exist", id);
	if (rc)
		return rc;
	rc = job_from_json(o, out);
	cJSON_Delete(o);
	if (rc)
		return bf_errf(err, rc, "catalog record of job %" PRId64 " is malformed", id);
	return 0;
}

int bf_catalog_put_job(bf_store *st, const bf_job *job, bf_err *err)
{
	char key[128];
	const char *keys[1] = { key };
	cJSON *objs[1] = { job_to_json(job) };

	job_key(key, sizeof(key), job->id);
	return put_records(st, keys, objs, 1, err);
}

int bf_catalog_foreach_job(bf_store *st, int (*fn)(const bf_job *job, void *arg),
			   void (*damaged)(const char *record, const char *why, void *arg),
			   void *arg, bf_err *err)
{
	static const char lo[] = JOB_KEY, hi[] = BF_CATALOG_PREFIX "job0";
	bf_store_iter *it = NULL;
	bf_job job;
	int rc = bf_store_iter_create(st, lo, strlen(lo), hi, strlen(hi), NULL, &it, err);

	if (rc)
		return rc;
	for (; bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = bf_store_iter_key(it, &klen);
		const uint8_t *v = bf_store_iter_value(it, &vlen);
		cJSON *o = cJSON_ParseWithLength((const char *)v, vlen);
		rc = o ? job_from_json(o, &job) : BF_ECORRUPT;
		cJSON_Delete(o);
		if (rc && damaged) {
			char rec[128];
			snprintf(rec, sizeof(rec), "%.*s", (int)klen, (const char *)k);
			damaged(rec, "malformed", arg);
			rc = 0;
			continue;
		}
		if (rc) {
			rc = bf_errf(err, rc, "catalog record %.*s is malformed", (int)klen, (const char *)k);
			break;
		}
		rc = fn(&job, arg);
		if (rc)
			break;
	}
	if (rc == 0)
		rc = bf_store_iter_status(it, err);
	bf_store_iter_destroy(it);
	return rc;
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
	}
	return BF_ECORRUPT;
}

int bf_catalog_put_table_and_job(bf_store *st, const bf_table *t, const bf_job *job,
				 bf_err *err)
{
	char tkey[TABLE_KEY_MAX], jkey[128];
	const char *keys[2] = { tkey, jkey };
	cJSON *objs[2] = { table_to_json(t), job_to_json(job) };

	table_key(tkey, sizeof(tkey), t->name);
	job_key(jkey, sizeof(jkey), job->id);
	return put_records(st, keys, objs, 2, err);
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

int bf_catalog_reserve_id(bf_store *st, const char *counter, int64_t id, bf_err *err)
{
	char key[128], *val = NULL, buf[32];
	size_t vlen;
	int64_t cur = 0;
	int rc;

	snprintf(key, sizeof(key), "%s%s", COUNTER_KEY, counter);
	rc = bf_store_get(st, key, strlen(key), &val, &vlen, err);
	if (rc == 0) {
		snprintf(buf, sizeof(buf), "%.*s", (int)(vlen < 31 ? vlen : 31), val);
		cur = strtoll(buf, NULL, 10);
		free(val);
	} else if (rc != BF_ENOTFOUND) {
		return rc;
	}
	if (cur >= id)
		return 0;
	snprintf(buf, sizeof(buf), "%" PRId64, id);
	return bf_store_put(st, key, strlen(key), buf, strlen(buf), err);
}

int bf_catalog_decode_table(const char *json, size_t len, const char *record, bf_table *out,
			    bf_err *err)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	int rc = o ? table_from_json(o, out) : BF_ECORRUPT;
	cJSON_Delete(o);
	if (rc)
		return bf_errf(err, rc, "catalog record %s is damaged", record);
	return 0;
}

int bf_catalog_decode_job(const char *json, size_t len, const char *record, bf_job *out,
			  bf_err *err)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	int rc = o ? job_from_json(o, out) : BF_ECORRUPT;
	cJSON_Delete(o);
	if (rc)
		return bf_errf(err, rc, "catalog record %s is damaged", record);
	return 0;
}

static int fence_key(char *buf, size_t n, const char *key, bf_err *err)
{
	if ((size_t)snprintf(buf, n, "%s%s", FENCE_KEY, key) >= n)
		return bf_errf(err, BF_EINVAL, "fence key %s is too long", key);
	return 0;
}

int bf_catalog_get_fence(bf_store *st, const char *key, int64_t *revision, bf_err *err)
{
	char k[BF_FENCE_KEY_MAX + 32], *val = NULL, buf[32];
	size_t vlen;
	int rc = fence_key(k, sizeof(k), key, err);

	*revision = 0;
	if (rc)
		return rc;
	rc = bf_store_get(st, k, strlen(k), &val, &vlen, err);
	if (rc == BF_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	snprintf(buf, sizeof(buf), "%.*s", (int)(vlen < 31 ? vlen : 31), val);
	free(val);
	if (bf_parse_i64(buf, revision) || *revision < 0)
		return bf_errf(err, BF_ECORRUPT, "catalog record %s is damaged", k);
	return 0;
}

int bf_catalog_put_fence(bf_store *st, const char *key, int64_t revision, bf_err *err)
{
	char k[BF_FENCE_KEY_MAX + 32], buf[32];
	int rc = fence_key(k, sizeof(k), key, err);

	if (rc)
		return rc;
	snprintf(buf, sizeof(buf), "%" PRId64, revision);
	return bf_store_put(st, k, strlen(k), buf, strlen(buf), err);
}
