/*
 * Subtasks and claims in etcd (include/bfill/subtask.h).
 * Depends on: the etcd client, the cluster's region cache, codec (record
 * ranges), cJSON.
 */
#include "bfill/subtask.h"
#include "bfill/codec.h"
#include "util/util.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* etcd takes at most 128 operations a Txn (its --max-txn-ops default). */
#define MAX_SUBTASKS 120
#define KEY_MAX 512

static void subtask_key(char *out, const char *root, const char *kind, int64_t job, int seq)
{
	if (seq < 0)
		snprintf(out, KEY_MAX, "%s%s/%020" PRId64 "/", root, kind, job);
	else
		snprintf(out, KEY_MAX, "%s%s/%020" PRId64 "/%08d", root, kind, job, seq);
}

/* The subtask number a subtask or claim key ends in; -1 when none. */
static int64_t key_seq(const char *key)
{
	const char *slash = strrchr(key, '/');
	int64_t seq = -1;

	if (!slash || bf_parse_i64(slash + 1, &seq) || seq < 0 || seq >= MAX_SUBTASKS)
		return -1;
	return seq;
}

/* ---- planning ---- */

static int set_bound(uint8_t *dst, size_t *dstlen, const void *src, size_t len, bf_err *err)
{
	char shown[96];

	if (len > BF_SUBTASK_KEY_MAX)
		return bf_errf(err, BF_ERANGE, "a region boundary of %zu bytes (%s) is longer than "
			       "a subtask keeps (%d)", len, bf_printable(src, len, shown, sizeof(shown)),
			       BF_SUBTASK_KEY_MAX);
	memcpy(dst, src, len);
	*dstlen = len;
	return 0;
}

int bf_subtask_plan(bf_cluster *c, int64_t job_id, int64_t table_id, int regions_per,
		    bf_subtask **out, size_t *n, bf_err *err)
{
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN];
	bf_region *regions = NULL;
	bf_subtask *s = NULL;
	size_t nr = 0, ns = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (regions_per < 1)
		regions_per = 1;
	/* The table's rows: "t<id>_r" up to "t<id>_s". */
	bf_codec_record_prefix(lo, table_id);
	bf_codec_record_prefix(hi, table_id);
	hi[BF_RECORD_PREFIX_LEN - 1]++;
	rc = bf_cluster_regions(c, lo, sizeof(lo), hi, sizeof(hi), &regions, &nr, err);
	if (rc)
		goto out;
	if (nr == 0) {
		rc = bf_errf(err, BF_ESTATE, "cluster %s: no cached region holds table %" PRId64
			     "'s rows", bf_cluster_name(c), table_id);
		goto out;
	}
	ns = (nr + (size_t)regions_per - 1) / (size_t)regions_per;
	if (ns > MAX_SUBTASKS) {
		rc = bf_errf(err, BF_ERANGE, "%zu regions make %zu subtasks of %d regions, more than "
			     "%d", nr, ns, regions_per, MAX_SUBTASKS);
		goto out;
	}
	s = calloc(ns, sizeof(*s));
	if (!s) {
		rc = bf_errf(err, BF_ENOMEM, "out of memory planning %zu subtasks", ns);
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < ns; i++) {
		size_t first = i * (size_t)regions_per, next = first + (size_t)regions_per;
		s[i].job_id = job_id;
		s[i].seq = (int)i;
		/* The first starts at the table, the others where their first
		 * region does; the last ends at the table's end. */
		rc = i == 0 ? set_bound(s[i].lo, &s[i].lolen, lo, sizeof(lo), err)
			    : set_bound(s[i].lo, &s[i].lolen, regions[first].start,
					regions[first].start_len, err);
		if (rc == 0)
			rc = next >= nr ? set_bound(s[i].hi, &s[i].hilen, hi, sizeof(hi), err)
					: set_bound(s[i].hi, &s[i].hilen, regions[next].start,
						    regions[next].start_len, err);
		if (rc == 0)
			rc = set_bound(s[i].next, &s[i].nextlen, s[i].lo, s[i].lolen, err);
	}
	if (rc == 0) {
		*out = s;
		*n = ns;
		s = NULL;
	}
out:
	free(s);
	free(regions);
	return rc;
}

/* ---- records ---- */

static char *record_make(const bf_subtask *s)
{
	char lo[2 * BF_SUBTASK_KEY_MAX + 1], hi[sizeof(lo)], next[sizeof(lo)];
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;

	bf_hex_encode(s->lo, s->lolen, lo);
	bf_hex_encode(s->hi, s->hilen, hi);
	bf_hex_encode(s->next, s->nextlen, next);
	if (o && cJSON_AddStringToObject(o, "lo", lo) && cJSON_AddStringToObject(o, "hi", hi) &&
	    cJSON_AddStringToObject(o, "next", next) &&
	    cJSON_AddNumberToObject(o, "rows", (double)s->rows) &&
	    cJSON_AddBoolToObject(o, "done", s->done))
		text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

static int hex_field(const cJSON *o, const char *name, uint8_t *out, size_t *len)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
	long n = cJSON_IsString(f) ? bf_hex_decode(f->valuestring, out, BF_SUBTASK_KEY_MAX) : -1;

	if (n < 0)
		return -1;
	*len = (size_t)n;
	return 0;
}

static int record_parse(const bf_etcd_kv *kv, int64_t job, bf_subtask *s, bf_err *err)
{
	cJSON *o = cJSON_ParseWithLength(kv->value, kv->value_len);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
	const cJSON *done = cJSON_GetObjectItemCaseSensitive(o, "done");
	int64_t seqv = key_seq(kv->key);
	const char *bad = NULL;

	memset(s, 0, sizeof(*s));
	if (!o)
		bad = "not JSON";
	else if (seqv < 0)
		bad = "a key without a subtask number";
	else if (hex_field(o, "lo", s->lo, &s->lolen) || hex_field(o, "hi", s->hi, &s->hilen) ||
		 hex_field(o, "next", s->next, &s->nextlen))
		bad = "lo, hi and next must be hex keys";
	else if (!cJSON_IsNumber(rows) || rows->valuedouble < 0)
		bad = "rows must be a count";
	else if (!cJSON_IsBool(done))
		bad = "done must be true or false";
	if (!bad) {
		s->job_id = job;
		s->seq = (int)seqv;
		s->rows = (uint64_t)rows->valuedouble;
		s->done = cJSON_IsTrue(done);
		s->mod_revision = kv->mod_revision;
	}
	cJSON_Delete(o);
	return bad ? bf_errf(err, BF_EPROTO, "subtask record %s: %s", kv->key, bad) : 0;
}

int bf_subtask_put_all(bf_etcd *etcd, const char *root, const bf_subtask *s, size_t n,
		       bf_err *err)
{
	char (*keys)[KEY_MAX] = NULL;
	char **values = NULL;
	bf_etcd_op *ops = NULL;
	bf_etcd_txn_result res = { 0 };
	int rc = 0;

	if (n == 0 || n > MAX_SUBTASKS)
		return bf_errf(err, BF_EINVAL, "a job has 1..%d subtasks, not %zu", MAX_SUBTASKS, n);
	keys = calloc(n, sizeof(*keys));
	values = calloc(n, sizeof(*values));
	ops = calloc(n, sizeof(*ops));
	if (!keys || !values || !ops) {
		rc = bf_errf(err, BF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		subtask_key(keys[i], root, "subtask", s[i].job_id, s[i].seq);
		if (!(values[i] = record_make(&s[i]))) {
			rc = bf_errf(err, BF_ENOMEM, "out of memory");
			goto out;
		}
		ops[i] = (bf_etcd_op){ .kind = BF_ETCD_OP_PUT, .key = keys[i], .value = values[i],
				       .value_len = strlen(values[i]) };
	}
	/* The first subtask's absence stands for the job's: all or none. */
	bf_etcd_compare none = { .key = keys[0], .target = BF_ETCD_CMP_CREATE,
				 .result = BF_ETCD_EQUAL, .number = 0 };
	bf_etcd_txn_req req = { .compare = &none, .n_compare = 1, .success = ops, .n_success = n };
	rc = bf_etcd_txn(etcd, &req, &res, err);
	if (rc == 0 && !res.succeeded)
		rc = bf_errf(err, BF_EEXIST, "job %" PRId64 " has subtasks already", s[0].job_id);
out:
	bf_etcd_txn_result_free(&res);
	for (size_t i = 0; values && i < n; i++)
		free(values[i]);
	free(values);
	free(keys);
	free(ops);
	return rc;
}

/* ---- listing ---- */

static int range_prefix(bf_etcd *etcd, const char *prefix, bf_etcd_range_result *res, bf_err *err)
{
	char *end = NULL;
	int rc = bf_etcd_prefix_end(prefix, &end, err);

	if (rc == 0) {
		bf_etcd_range_req req = { .key = prefix, .range_end = end,
					  .sort_order = BF_ETCD_SORT_ASCEND,
					  .sort_target = BF_ETCD_BY_KEY };
		rc = bf_etcd_range(etcd, &req, res, err);
	}
	free(end);
	return rc;
}

int bf_subtask_list(bf_etcd *etcd, const char *root, int64_t job_id, bf_subtask **out,
		    size_t *n, bf_err *err)
{
	char prefix[KEY_MAX];
	bf_etcd_range_result subs = { 0 }, claims = { 0 };
	bf_subtask *s = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	subtask_key(prefix, root, "subtask", job_id, -1);
	rc = range_prefix(etcd, prefix, &subs, err);
	subtask_key(prefix, root, "claim", job_id, -1);
	if (rc == 0)
		rc = range_prefix(etcd, prefix, &claims, err);
	if (rc == 0 && !(s = calloc(subs.n_kvs ? subs.n_kvs : 1, sizeof(*s))))
		rc = bf_errf(err, BF_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < subs.n_kvs; i++)
		rc = record_parse(&subs.kvs[i], job_id, &s[i], err);
	/* Keys sort as the numbers do (fixed width): claims join in one pass. */
	for (size_t i = 0, j = 0; rc == 0 && i < subs.n_kvs && j < claims.n_kvs;) {
		int64_t seq = key_seq(claims.kvs[j].key);
		if (seq < s[i].seq) {
			j++;
		} else if (seq > s[i].seq) {
			i++;
		} else {
			snprintf(s[i].worker, sizeof(s[i].worker), "%.*s",
				 (int)claims.kvs[j].value_len, claims.kvs[j].value);
			i++;
			j++;
		}
	}
	if (rc == 0) {
		*out = s;
		*n = subs.n_kvs;
		s = NULL;
	}
	free(s);
	bf_etcd_range_result_free(&subs);
	bf_etcd_range_result_free(&claims);
	return rc;
}

/* ---- claims and progress ---- */

static int check_worker(const char *worker, bf_err *err)
{
	size_t len = worker ? strlen(worker) : 0;
	return len == 0 || len >= BF_SUBTASK_WORKER_MAX
		       ? bf_errf(err, BF_EINVAL, "a worker's name is 1..%d bytes",
				 BF_SUBTASK_WORKER_MAX - 1)
		       : 0;
}

int bf_subtask_claim(bf_etcd *etcd, const char *root, int64_t job_id, const char *worker,
		     int64_t lease, bf_subtask *out, bf_err *err)
{
	bf_subtask *s = NULL;
	size_t n = 0;
	int rc = check_worker(worker, err);

	if (rc == 0)
		rc = bf_subtask_list(etcd, root, job_id, &s, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char skey[KEY_MAX], ckey[KEY_MAX];
		bf_etcd_txn_result res = { 0 };
		if (s[i].done || s[i].worker[0])
			continue;
		subtask_key(skey, root, "subtask", job_id, s[i].seq);
		subtask_key(ckey, root, "claim", job_id, s[i].seq);
		/* Unclaimed, and the record as listed (not finished since). */
		bf_etcd_compare cmp[2] = {
			{ .key = ckey, .target = BF_ETCD_CMP_CREATE, .result = BF_ETCD_EQUAL },
			{ .key = skey, .target = BF_ETCD_CMP_MOD, .result = BF_ETCD_EQUAL,
			  .number = s[i].mod_revision },
		};
		bf_etcd_op put = { .kind = BF_ETCD_OP_PUT, .key = ckey, .value = worker,
				   .value_len = strlen(worker), .lease = lease };
		bf_etcd_txn_req req = { .compare = cmp, .n_compare = 2, .success = &put,
					.n_success = 1 };
		rc = bf_etcd_txn(etcd, &req, &res, err);
		bool won = rc == 0 && res.succeeded;
		bf_etcd_txn_result_free(&res);
		if (won) {
			*out = s[i];
			snprintf(out->worker, sizeof(out->worker), "%s", worker);
			free(s);
			return 0;
		}
		/* Another worker was quicker: the next one. */
	}
	free(s);
	if (rc == 0)
		rc = bf_errf(err, BF_ENOTFOUND, "job %" PRId64 ": no subtask left to claim", job_id);
	return rc;
}

/* Runs ops under compares that must all hold; BF_EFENCED with why when
 * one does not. */
static int guarded(bf_etcd *etcd, const bf_etcd_compare *cmp, size_t ncmp, const bf_etcd_op *ops,
		   size_t nops, const bf_subtask *s, const char *why, bf_err *err)
{
	bf_etcd_txn_result res = { 0 };
	bf_etcd_txn_req req = { .compare = cmp, .n_compare = ncmp, .success = ops,
				.n_success = nops };
	int rc = bf_etcd_txn(etcd, &req, &res, err);

	if (rc == 0 && !res.succeeded)
		rc = bf_errf(err, BF_EFENCED, "subtask %" PRId64 "/%d: %s", s->job_id, s->seq, why);
	bf_etcd_txn_result_free(&res);
	return rc;
}

static bf_etcd_compare claim_is(const char *ckey, const char *worker)
{
	return (bf_etcd_compare){ .key = ckey, .target = BF_ETCD_CMP_VALUE, .result = BF_ETCD_EQUAL,
				  .value = worker, .value_len = strlen(worker) };
}

int bf_subtask_checkpoint(bf_etcd *etcd, const char *root, const bf_subtask *s,
			  const char *worker, bf_err *err)
{
	char skey[KEY_MAX], ckey[KEY_MAX], *value;
	int rc = check_worker(worker, err);

	if (rc)
		return rc;
	if (!(value = record_make(s)))
		return bf_errf(err, BF_ENOMEM, "out of memory");
	subtask_key(skey, root, "subtask", s->job_id, s->seq);
	subtask_key(ckey, root, "claim", s->job_id, s->seq);
	bf_etcd_compare mine = claim_is(ckey, worker);
	bf_etcd_op put = { .kind = BF_ETCD_OP_PUT, .key = skey, .value = value,
			   .value_len = strlen(value) };
	rc = guarded(etcd, &mine, 1, &put, 1, s, "the claim is not this worker's any more", err);
	free(value);
	return rc;
}

int bf_subtask_finish(bf_etcd *etcd, const char *root, const bf_subtask *s, const char *worker,
		      const char *fence_key, int64_t fence_rev, bool *all_done, bf_err *err)
{
	char skey[KEY_MAX], ckey[KEY_MAX], *value = NULL;
	bf_subtask fin = *s, *list = NULL;
	size_t n = 0;
	int rc = check_worker(worker, err);

	*all_done = false;
	if (rc)
		return rc;
	fin.done = true;
	memcpy(fin.next, fin.hi, fin.hilen);
	fin.nextlen = fin.hilen;
	if (!(value = record_make(&fin)))
		return bf_errf(err, BF_ENOMEM, "out of memory");
	subtask_key(skey, root, "subtask", s->job_id, s->seq);
	subtask_key(ckey, root, "claim", s->job_id, s->seq);
	bf_etcd_compare cmp[2] = {
		claim_is(ckey, worker),
		{ .key = fence_key, .target = BF_ETCD_CMP_CREATE, .result = BF_ETCD_EQUAL,
		  .number = fence_rev },
	};
	bf_etcd_op ops[2] = {
		{ .kind = BF_ETCD_OP_PUT, .key = skey, .value = value, .value_len = strlen(value) },
		{ .kind = BF_ETCD_OP_DELETE, .key = ckey },
	};
	rc = guarded(etcd, cmp, 2, ops, 2, s,
		     "the claim or the job's lock is not this worker's any more", err);
	free(value);
	if (rc == 0)
		rc = bf_subtask_list(etcd, root, s->job_id, &list, &n, err);
	if (rc == 0) {
		*all_done = true;
		for (size_t i = 0; i < n; i++)
			*all_done = *all_done && list[i].done;
	}
	free(list);
	return rc;
}

int bf_subtask_release(bf_etcd *etcd, const char *root, const bf_subtask *s, const char *worker,
		       bf_err *err)
{
	char ckey[KEY_MAX];
	bf_etcd_txn_result res = { 0 };
	int rc = check_worker(worker, err);

	if (rc)
		return rc;
	subtask_key(ckey, root, "claim", s->job_id, s->seq);
	bf_etcd_compare mine = claim_is(ckey, worker);
	bf_etcd_op del = { .kind = BF_ETCD_OP_DELETE, .key = ckey };
	bf_etcd_txn_req req = { .compare = &mine, .n_compare = 1, .success = &del, .n_success = 1 };
	rc = bf_etcd_txn(etcd, &req, &res, err);
	bf_etcd_txn_result_free(&res);
	return rc;
}
