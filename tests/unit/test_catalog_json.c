/*
 * The catalog's records as text (engine/catalog_json.c): every field the
 * encoders write decodes back identically, every impossible value is
 * refused with a message naming the record and the field, the encoders
 * refuse to write what the decoders would refuse.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/catalog.h"
#include "engine/catalog_json.h"
#include "tests/support/records.h"

#define JOB_RECORD "mbfill/job/00000000000000000007"
#define TABLE_RECORD "mbfill/table/orders"

static char *encode_job(const bf_job *j)
{
	char *text = NULL;
	bf_err err = { 0 };
	cr_assert_eq(bf_catalog_encode_job(j, &text, &err), 0, "%s", bf_err_text(&err));
	return text;
}

static char *encode_table(const bf_table *t)
{
	char *text = NULL;
	bf_err err = { 0 };
	cr_assert_eq(bf_catalog_encode_table(t, &text, &err), 0, "%s", bf_err_text(&err));
	return text;
}

/* ---- round trips ---- */

Test(catalog_json, job_round_trip_every_field)
{
	bf_job j, back;
	bf_err err = { 0 };

	t_sample_job(&j, 7);
	j.cp.has_imported = true;
	bf_codec_record_key(j.cp.imported_key, 100, -42);
	j.cp.imported_rows = 17;
	j.rolled_back = true;
	j.end_ms = 1700000009999LL;
	j.rate = 0.1; /* no short decimal form: needs all 17 digits */
	j.cfg.run_compression = 1;
	char *text = encode_job(&j);
	cr_assert_eq(bf_catalog_decode_job(text, strlen(text), JOB_RECORD, &back, &err), 0, "%s",
		     bf_err_text(&err));
	t_expect_same_job(&j, &back);
	free(text);

	/* Each state, each index count, the key past all rows of the table. */
	j.cp.flushed_key[10] = 's';
	memset(j.cp.flushed_key + 11, 0, 8);
	for (int n = 1; n <= BF_MAX_JOB_INDEXES; n++) {
		j.nindexes = n;
		j.state = (bf_job_state)(n % 6);
		for (int i = 0; i < n; i++) {
			j.index_ids[i] = 1000 + i;
			snprintf(j.index_names[i], BF_NAME_MAX, "idx_%d", i);
			j.lock_leases[i] = i * 3;
		}
		text = encode_job(&j);
		cr_assert_eq(bf_catalog_decode_job(text, strlen(text), JOB_RECORD, &back, &err), 0,
			     "%d indexes: %s", n, bf_err_text(&err));
		t_expect_same_job(&j, &back);
		free(text);
	}
}

Test(catalog_json, table_round_trip_every_field)
{
	bf_table t, back;
	bf_err err = { 0 };

	t_sample_table(&t);
	char *text = encode_table(&t);
	cr_assert_eq(bf_catalog_decode_table(text, strlen(text), TABLE_RECORD, &back, &err), 0, "%s",
		     bf_err_text(&err));
	t_expect_same_table(&t, &back);
	free(text);

	/* The widest table: every column, every index, every index column,
	 * names of 64 four-byte characters. */
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < BF_NAME_CHARS; i++)
		memcpy(t.name + 4 * i, "\xf0\x9f\x98\x80", 4);
	t.id = INT64_MAX;
	t.ncols = BF_MAX_COLUMNS;
	for (int i = 0; i < t.ncols; i++) {
		snprintf(t.cols[i].name, BF_NAME_MAX, "col \"%d\" \\", i);
		t.cols[i].id = (int64_t)UINT32_MAX - i;
		static const int int_lens[] = { 1, 2, 3, 4, 8 };
		t.cols[i].type = (bf_coltype)(i % 4);
		t.cols[i].len = t.cols[i].type == BF_COL_CHAR	 ? 255
				: t.cols[i].type == BF_COL_VARCHAR ? 65535
								   : int_lens[i % 5];
		t.cols[i].not_null = i % 3 == 0;
	}
	t.handle_col = 2;
	t.cols[2].type = BF_COL_INT;
	t.cols[2].len = 8;
	t.nindexes = BF_MAX_INDEXES;
	t.next_index_id = INT64_MAX;
	for (int i = 0; i < t.nindexes; i++) {
		bf_index *x = &t.indexes[i];
		snprintf(x->name, BF_NAME_MAX, "i%d", i);
		x->id = INT64_MAX - 1 - i;
		x->ncols = BF_MAX_INDEX_COLUMNS;
		for (int k = 0; k < x->ncols; k++)
			x->cols[k] = (i + k * 3) % BF_MAX_COLUMNS;
		x->unique = i % 2;
		x->state = (bf_index_state)(i % 3);
		x->job_id = x->state == BF_INDEX_PUBLIC ? 0 : INT64_MAX - i;
	}
	t.rows_hint = INT64_MAX;
	text = encode_table(&t);
	cr_assert_eq(bf_catalog_decode_table(text, strlen(text), TABLE_RECORD, &back, &err), 0, "%s",
		     bf_err_text(&err));
	t_expect_same_table(&t, &back);
	free(text);
}

/* ---- refusals ---- */

/* What to do to one field of a good record. */
typedef enum { SET, DEL, DUP } op_kind;

typedef struct mutation {
	const char *path;  /* "config.workers", "indexes[1].id" */
	op_kind op;
	const char *value; /* JSON text for SET and DUP */
	const char *why;   /* what the message must say */
} mutation;

/* The item at path in root, and the container and key/position it sits at. */
static cJSON *walk(cJSON *root, const char *path, cJSON **parent, char *key, int *pos)
{
	char buf[128];
	cJSON *cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *part = strtok_r(buf, ".", &save); part;
	     part = strtok_r(NULL, ".", &save)) {
		char *br = strchr(part, '[');
		*pos = -1;
		if (br)
			*br = '\0';
		*parent = cur;
		snprintf(key, 64, "%s", part);
		cur = cJSON_GetObjectItemCaseSensitive(cur, part);
		if (br) {
			*parent = cur;
			*pos = atoi(br + 1);
			cur = cJSON_GetArrayItem(cur, *pos);
		}
	}
	return cur;
}

static char *mutate(const char *text, const mutation *m)
{
	cJSON *root = cJSON_Parse(text), *parent = NULL;
	char key[64];
	int pos = -1;

	cr_assert_not_null(root);
	cJSON *item = walk(root, m->path, &parent, key, &pos);
	cJSON *v = m->value ? cJSON_Parse(m->value) : NULL;
	cr_assert(m->op == DEL || v, "%s: bad test value %s", m->path, m->value);
	if (m->op == SET && pos >= 0)
		cr_assert(cJSON_ReplaceItemInArray(parent, pos, v));
	else if (m->op == SET && item)
		cr_assert(cJSON_ReplaceItemInObjectCaseSensitive(parent, key, v));
	else if (m->op == SET || m->op == DUP)
		cr_assert(cJSON_AddItemToObject(parent, key, v));
	else if (pos >= 0)
		cJSON_DeleteItemFromArray(parent, pos);
	else
		cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
	char *out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

static void expect_refusals(const char *good, const mutation *ms, size_t n, bool job,
			    const char *record)
{
	for (size_t i = 0; i < n; i++) {
		char *text = mutate(good, &ms[i]);
		bf_err err = { 0 };
		bf_job j;
		bf_table t;
		int rc = job ? bf_catalog_decode_job(text, strlen(text), record, &j, &err)
			     : bf_catalog_decode_table(text, strlen(text), record, &t, &err);
		cr_assert_eq(rc, BF_ECORRUPT, "%s %s accepted", ms[i].path, ms[i].value);
		cr_assert_eq(err.code, BF_ECORRUPT);
		cr_assert_not_null(strstr(err.msg, record), "%s: record not named: %s", ms[i].path,
				   err.msg);
		cr_assert_not_null(strstr(err.msg, ms[i].why), "%s %s: message \"%s\" lacks \"%s\"",
				   ms[i].path, ms[i].value ? ms[i].value : "(deleted)", err.msg,
				   ms[i].why);
		cr_assert_null(strchr(err.msg, '\n'), "one line: %s", err.msg);
		free(text);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(catalog_json, job_refusals)
{
	static const mutation ms[] = {
		{ "id", SET, "\"0\"", "id = 0 is out of range 1..9223372036854775807" },
		{ "id", SET, "\"-5\"", "id = -5 is out of range" },
		{ "id", SET, "\"abc\"", "id \"abc\" is not an integer" },
		{ "id", SET, "7", "id (a number) is not an integer" },
		{ "id", SET, "\"9223372036854775808\"", "is not an integer" },
		{ "id", SET, "\" 7\"", "is not an integer" },
		{ "id", DEL, NULL, "id is missing" },
		{ "id", DUP, "\"8\"", "id appears twice" },
		{ "table", SET, "\"a\\nb\"", "table \"a\\x0ab\" is not a valid name" },
		{ "table", SET, "\"trailing \"", "is not a valid name" },
		{ "table", SET, "\"\"", "is not a valid name" },
		{ "table", SET, "null", "table is not a string" },
		{ "table_id", SET, "\"0\"", "table_id = 0 is out of range" },
		{ "indexes", SET, "[]", "indexes is empty" },
		{ "indexes", SET, "{}", "indexes is not an array" },
		{ "indexes", SET, "[{},{},{},{},{},{},{},{},{}]", "indexes has 9 items, more than 8" },
		{ "indexes[1]", SET, "[]", "indexes[1] is not an object" },
		{ "indexes[1].id", SET, "\"3\"", "indexes[1].id 3 is also the id of indexes[0]" },
		{ "indexes[1].name", SET, "\"K_C\"", "indexes[1].name is also the name of indexes[0]" },
		{ "indexes[0].name", SET, "\"tab\\there\"", "indexes[0].name" },
		{ "state", SET, "\"exploded\"", "state \"exploded\" is not a job state" },
		{ "state", SET, "\"Done\"", "is not a job state" },
		{ "phase", SET, "\"0123456789012345678901234567890123456789\"",
		  "phase is 40 bytes, more than the 31 it may have" },
		{ "waiting", SET, "1", "waiting is not a string" },
		{ "rows_done", SET, "\"-1\"", "rows_done = -1 is out of range 0.." },
		{ "rows_total", SET, "\"18446744073709551615\"", "rows_total" },
		{ "rate", SET, "-1", "rate is not a number of rows per second" },
		{ "rate", SET, "\"fast\"", "rate is not a number" },
		{ "rate", SET, "1e999", "rate is not a number" },
		{ "start_ms", SET, "\"-1\"", "start_ms = -1" },
		{ "pid", SET, "\"4294967296\"", "pid = 4294967296 is out of range 0..2147483647" },
		{ "importing", SET, "\"yes\"", "importing is not true or false" },
		{ "rolled_back", SET, "0", "rolled_back is not true or false" },
		{ "rows_scanned", SET, "\"x\"", "rows_scanned \"x\" is not an integer" },
		{ "lock_leases", SET, "[\"1\"]", "lock_leases has 1 items for 2 indexes" },
		{ "lock_leases[0]", SET, "\"-3\"", "lock_leases[0] is not a lease id" },
		{ "lock_leases[1]", SET, "5", "lock_leases[1] is not a lease id" },
		{ "lock_key", SET, "7", "lock_key is not a string" },
		{ "last_error", DEL, NULL, "last_error is missing" },
		{ "checkpoint", SET, "[]", "checkpoint is not an object" },
		{ "checkpoint", DEL, NULL, "checkpoint is missing" },
		{ "checkpoint.flushed_key", SET, "\"74\"", "checkpoint.flushed_key is not 38 hex digits" },
		{ "checkpoint.flushed_key", SET, "\"zz800000000000006400000000000000000000\"",
		  "is not 38 hex digits" },
		{ "checkpoint.flushed_key", SET, "\"748000000000000065" "5f72" "8000000000000001\"",
		  "checkpoint.flushed_key is not a record key of table 100" },
		{ "checkpoint.flushed_key", SET, "\"748000000000000064" "5f69" "8000000000000001\"",
		  "is not a record key of table 100" },
		{ "checkpoint.flushed_key", SET, "\"748000000000000064" "5f73" "0000000000000001\"",
		  "is not a record key of table 100" },
		{ "checkpoint.flushed_key", DEL, NULL, "checkpoint.flushed_key is missing" },
		{ "checkpoint.imported_rows", SET, "\"5\"",
		  "checkpoint.imported_rows = 5 without an imported_key" },
		{ "checkpoint.engine_id", SET, "\"job-7\"", "checkpoint.engine_id is not g<generation>" },
		{ "checkpoint.engine_id", SET, "\"g\"", "is not g<generation>" },
		{ "checkpoint.engine_id", SET, "\"g-1\"", "is not g<generation>" },
		{ "checkpoint.first_gen", SET, "\"11\"",
		  "checkpoint.first_gen = 11 is past the engine's generation 10" },
		{ "config", SET, "\"x\"", "config is not an object" },
		{ "config.workers", SET, "\"0\"", "config.workers = 0 is out of range 1..64" },
		{ "config.workers", SET, "\"65\"", "config.workers = 65 is out of range 1..64" },
		{ "config.workers", DEL, NULL, "config.workers is missing" },
		{ "config.mem_bytes", SET, "\"1048575\"",
		  "config.mem_bytes = 1048575 is out of range 1048576..1125899906842624" },
		{ "config.mem_bytes", SET, "\"1125899906842625\"", "config.mem_bytes" },
		{ "config.import_every", SET, "\"-1\"", "config.import_every = -1" },
		{ "config.lock_ttl_s", SET, "\"0\"", "config.lock_ttl_s = 0 is out of range 1..3600" },
		{ "config.lock_ttl_s", SET, "\"3601\"", "config.lock_ttl_s = 3601" },
		{ "config.lock_timeout_s", SET, "\"86401\"",
		  "config.lock_timeout_s = 86401 is out of range 1..86400" },
		{ "config.run_compression", SET, "\"3\"", "config.run_compression = 3 is out of range 0..2" },
		{ "config.target_compression", SET, "\"-1\"", "config.target_compression = -1" },
		{ "config.sort_dir", SET, "\"\"", "config.sort_dir is empty" },
		{ "config.lock_prefix", SET, "\"\"", "config.lock_prefix is empty" },
		{ "config.etcd", SET, "false", "config.etcd is not a string" },
	};
	bf_job j;

	t_sample_job(&j, 7);
	char *good = encode_job(&j);
	expect_refusals(good, ms, N(ms), true, JOB_RECORD);
	free(good);
}

/* Strings longer than their fields are refused, not cut. */
Test(catalog_json, job_strings_too_long)
{
	static const struct { const char *path; size_t fits; } fields[] = {
		{ "table", BF_NAME_MAX - 1 },
		{ "phase", 31 },
		{ "waiting", 255 },
		{ "lock_key", BF_FENCE_KEY_MAX - 1 },
		{ "last_error", BF_ERR_MSG_MAX - 1 },
		{ "checkpoint.engine_id", 39 },
		{ "config.sort_dir", 1023 },
		{ "config.etcd", 511 },
		{ "config.lock_prefix", 127 },
	};
	bf_job j;

	t_sample_job(&j, 7);
	char *good = encode_job(&j);
	for (size_t i = 0; i < N(fields); i++) {
		size_t n = fields[i].fits + 1;
		char *value = malloc(n + 3), why[160];
		value[0] = '"';
		memset(value + 1, 'x', n);
		memcpy(value + 1 + n, "\"", 2);
		snprintf(why, sizeof(why), "%s is %zu bytes, more than the %zu it may have",
			 fields[i].path, n, fields[i].fits);
		mutation m = { fields[i].path, SET, value, why };
		/* A name can't be that long: it fails as a string first. */
		expect_refusals(good, &m, 1, true, JOB_RECORD);
		free(value);
	}
	free(good);
}

Test(catalog_json, table_refusals)
{
	static const mutation ms[] = {
		{ "name", SET, "\"a\\tb\"", "name \"a\\x09b\" is not a valid name" },
		{ "id", SET, "\"0\"", "id = 0 is out of range" },
		{ "handle", SET, "\"nope\"", "handle \"nope\" is not a column" },
		{ "handle", SET, "\"c\"", "handle \"c\" is not a signed integer column" },
		{ "handle", SET, "\"qty\"", "is not a signed integer column" },
		{ "next_index_id", SET, "\"0\"", "next_index_id = 0 is out of range" },
		{ "next_index_id", SET, "\"5\"", "indexes[2].id 5 is not below next_index_id 5" },
		{ "rows_hint", SET, "\"-2\"", "rows_hint = -2" },
		{ "columns", SET, "[]", "handle \"id\" is not a column" },
		{ "columns", SET, "{}", "columns is not an array" },
		{ "columns[1]", SET, "\"k\"", "columns[1] is not an object" },
		{ "columns[1].id", SET, "\"0\"", "columns[1].id = 0 is out of range 1..4294967295" },
		{ "columns[1].id", SET, "\"4294967296\"", "columns[1].id = 4294967296" },
		{ "columns[1].id", SET, "\"1\"", "columns[1].id 1 is also the id of columns[0]" },
		{ "columns[1].name", SET, "\"ID\"", "columns[1].name is also the name of columns[0]" },
		{ "columns[1].name", SET, "\"k\\u0085\"", "is not a valid name" },
		{ "columns[1].type", SET, "\"float\"", "columns[1].type \"float\" is not a column type" },
		{ "columns[1].type", SET, "\"char(0)\"", "is not a column type" },
		{ "columns[1].not_null", SET, "\"yes\"", "columns[1].not_null is not true or false" },
		{ "columns[1].not_null", DEL, NULL, "columns[1].not_null is missing" },
		{ "indexes", SET, "7", "indexes is not an array" },
		{ "indexes[0].columns", SET, "[]", "indexes[0].columns is empty" },
		{ "indexes[0].columns", SET, "[\"nope\"]",
		  "indexes[0].columns[0] \"nope\" is not a column of the table" },
		{ "indexes[0].columns", SET, "[1]", "indexes[0].columns[0] (a number) is not a column" },
		{ "indexes[1].columns", SET, "[\"c\",\"C\"]", "indexes[1].columns[1] repeats columns[0]" },
		{ "indexes[0].columns",  SET,
		  "[\"id\",\"k\",\"c\",\"pad\",\"qty\",\"note\",\"id\",\"k\",\"c\",\"pad\",\"qty\","
		  "\"note\",\"id\",\"k\",\"c\",\"pad\",\"qty\"]",
		  "indexes[0].columns has 17 items, more than 16" },
		{ "indexes[0].state", SET, "\"building\"", "indexes[0].state \"building\" is not an index state" },
		{ "indexes[0].job_id", SET, "\"5\"", "indexes[0].job_id = 5 on a public index" },
		{ "indexes[1].job_id", SET, "\"-1\"", "indexes[1].job_id = -1" },
		{ "indexes[1].unique", SET, "null", "indexes[1].unique is not true or false" },
		{ "indexes[2].id", SET, "\"1\"", "indexes[2].id 1 is also the id of indexes[0]" },
		{ "indexes[2].name", SET, "\"K_1\"", "indexes[2].name is also the name of indexes[0]" },
	};
	bf_table t;

	t_sample_table(&t);
	char *good = encode_table(&t);
	expect_refusals(good, ms, N(ms), false, TABLE_RECORD);
	free(good);
}

Test(catalog_json, table_too_wide)
{
	char cols[16384] = "[", idxs[4096] = "[";
	char text[24576];
	bf_table t;
	bf_err err = { 0 };

	for (int i = 0; i <= BF_MAX_COLUMNS; i++)
		snprintf(cols + strlen(cols), sizeof(cols) - strlen(cols),
			 "%s{\"name\":\"c%d\",\"id\":\"%d\",\"type\":\"bigint\",\"not_null\":true}",
			 i ? "," : "", i, i + 1);
	strcat(cols, "]");
	for (int i = 0; i <= BF_MAX_INDEXES; i++)
		snprintf(idxs + strlen(idxs), sizeof(idxs) - strlen(idxs),
			 "%s{\"name\":\"i%d\",\"id\":\"%d\",\"columns\":[\"c0\"],\"unique\":false,"
			 "\"state\":\"public\",\"job_id\":\"0\"}", i ? "," : "", i, i + 1);
	strcat(idxs, "]");
	snprintf(text, sizeof(text), "{\"name\":\"w\",\"id\":\"100\",\"handle\":\"c0\","
		 "\"next_index_id\":\"100\",\"rows_hint\":\"0\",\"columns\":%s,\"indexes\":[]}", cols);
	cr_assert_eq(bf_catalog_decode_table(text, strlen(text), "w", &t, &err), BF_ECORRUPT);
	cr_assert_not_null(strstr(err.msg, "columns has 65 items, more than 64"), "%s", err.msg);
	snprintf(text, sizeof(text), "{\"name\":\"w\",\"id\":\"100\",\"handle\":\"c0\","
		 "\"next_index_id\":\"100\",\"rows_hint\":\"0\",\"columns\":[{\"name\":\"c0\",\"id\":"
		 "\"1\",\"type\":\"bigint\",\"not_null\":true}],\"indexes\":%s}", idxs);
	cr_assert_eq(bf_catalog_decode_table(text, strlen(text), "w", &t, &err), BF_ECORRUPT);
	cr_assert_not_null(strstr(err.msg, "indexes has 17 items, more than 16"), "%s", err.msg);
}

/* Whole-text damage: not JSON, not one object, bytes cJSON would cut. */
Test(catalog_json, text_refusals)
{
#define TEXT(s) s, sizeof(s) - 1
	static const struct { const char *text; size_t len; const char *why; } bad[] = {
		{ TEXT(""), "is not valid JSON" },
		{ TEXT("{"), "is not valid JSON" },
		{ TEXT("[]"), "is not a JSON object" },
		{ TEXT("\"x\""), "is not a JSON object" },
		{ TEXT("{} {}"), "is not valid JSON" },
		{ TEXT("{}x"), "is not valid JSON" },
		{ TEXT("{\"id\":\"1\0\"}"), "holds a NUL byte" },
		{ TEXT("{\"table\":\"a\\u0000b\"}"), "holds \\u0000" },
		{ TEXT("{}"), "id is missing" },
	};
	bf_job j;
	bf_err err;

	for (size_t i = 0; i < N(bad); i++) {
		bf_err_clear(&err);
		cr_assert_eq(bf_catalog_decode_job(bad[i].text, bad[i].len, "rec", &j, &err), BF_ECORRUPT,
			     "case %zu accepted", i);
		cr_assert_not_null(strstr(err.msg, bad[i].why), "case %zu: %s", i, err.msg);
	}
	/* Whitespace around the object is fine; an escaped backslash before
	 * "u0000" is no NUL. */
	bf_job good;
	t_sample_job(&good, 7);
	snprintf(good.last_error, sizeof(good.last_error), "path C:\\u0000\\x");
	char *text = encode_job(&good);
	size_t n = strlen(text);
	char *padded = malloc(n + 5);
	sprintf(padded, " \n%s\t\r", text);
	cr_assert_eq(bf_catalog_decode_job(padded, n + 4, "rec", &j, &err), 0, "%s", err.msg);
	cr_assert_str_eq(j.last_error, good.last_error);
	free(padded);
	free(text);
}

/* ---- the encoders refuse what the decoders would ---- */

Test(catalog_json, encoder_refuses_impossible_jobs)
{
	bf_job j;
	char *text = (char *)1;
	bf_err err = { 0 };

	t_sample_job(&j, 12);
	j.cfg.workers = 0;
	cr_assert_eq(bf_catalog_encode_job(&j, &text, &err), BF_EINVAL);
	cr_assert_null(text);
	cr_assert_str_eq(err.msg, "job 12 can't be recorded: config.workers = 0 is out of range 1..64");

	t_sample_job(&j, 12);
	j.rate = NAN;
	cr_assert_eq(bf_catalog_encode_job(&j, &text, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "rate is not a number"), "%s", err.msg);

	t_sample_job(&j, 12);
	j.rows_done = (uint64_t)INT64_MAX + 1;
	cr_assert_eq(bf_catalog_encode_job(&j, &text, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "rows_done \"-9223372036854775808\""), "%s", err.msg);

	t_sample_job(&j, 12);
	j.nindexes = BF_MAX_JOB_INDEXES + 1;
	cr_assert_eq(bf_catalog_encode_job(&j, &text, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "9 indexes"), "%s", err.msg);

	t_sample_job(&j, 12);
	memset(j.phase, 'x', sizeof(j.phase));
	cr_assert_eq(bf_catalog_encode_job(&j, &text, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "not NUL-terminated"), "%s", err.msg);

	t_sample_job(&j, 12);
	snprintf(j.cp.engine_id, sizeof(j.cp.engine_id), "g1");
	j.cp.first_gen = 1;
	cr_assert_eq(bf_catalog_encode_job(&j, &text, &err), 0, "%s", err.msg);
	free(text);
	j.cp.first_gen = 2;
	cr_assert_eq(bf_catalog_encode_job(&j, &text, &err), BF_EINVAL);
	cr_assert_null(text);
}

Test(catalog_json, encoder_refuses_impossible_tables)
{
	bf_table t;
	char *text = (char *)1;
	bf_err err = { 0 };

	t_sample_table(&t);
	t.handle_col = t.ncols;
	cr_assert_eq(bf_catalog_encode_table(&t, &text, &err), BF_EINVAL);
	cr_assert_null(text);
	cr_assert_str_eq(err.msg, "table \"orders\" can't be recorded: handle column 6 is not a column");

	t_sample_table(&t);
	t.indexes[1].cols[1] = 99;
	cr_assert_eq(bf_catalog_encode_table(&t, &text, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "indexes[1].columns[1] = 99 is not a column"), "%s", err.msg);

	t_sample_table(&t);
	snprintf(t.name, sizeof(t.name), "two\nlines");
	cr_assert_eq(bf_catalog_encode_table(&t, &text, &err), BF_EINVAL);
	cr_assert_str_eq(err.msg, "table \"two\\x0alines\" can't be recorded: name \"two\\x0alines\" is not a valid name");

	t_sample_table(&t);
	t.next_index_id = 5;
	cr_assert_eq(bf_catalog_encode_table(&t, &text, &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "is not below next_index_id"), "%s", err.msg);
}

Test(catalog_json, record_id_reads_damaged_records)
{
	static const char damaged[] = "{\"id\":\"41\",\"name\":\"bad\nname\",\"columns\":7}";
	cr_assert_eq(bf_catalog_record_id(damaged, strlen(damaged)), 41);
	cr_assert_eq(bf_catalog_record_id("{\"id\":\"x\"}", 10), 0);
	cr_assert_eq(bf_catalog_record_id("garbage", 7), 0);
	cr_assert_eq(bf_catalog_record_id("{\"id\":\"-3\"}", 11), 0);
}
