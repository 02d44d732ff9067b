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
/* One fence per index of a job (BF_MAX_JOB_INDEXES). */
#define FENCES_MAX 8

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

/* Where a subtask's range [lo, hi) takes key k strictly inside. */
static bool inside(const bf_subtask *s, const uint8_t *k, size_t klen)
{
	return bf_key_cmp(s->lo, s->lolen, k, klen) < 0 && bf_key_cmp(k, klen, s->hi, s->hilen) < 0;
}

/* The handle a bound names, when it is a record key of table_id. */
static bool bound_handle(const uint8_t *k, size_t len, int64_t table_id, int64_t *h)
{
	int64_t t;
	return len == BF_RECORD_KEY_LEN && bf_codec_decode_record_key(k, len, &t, h) == 0 &&
	       t == table_id;
}

/* Whether cut point k is within `gap` handles of s's bounds: a cut there
 * would leave a sliver of a subtask beside a region boundary. */
static bool near_bound(const bf_subtask *s, int64_t table_id, const uint8_t *k, uint64_t gap)
{
	int64_t h, b;

	bound_handle(k, BF_RECORD_KEY_LEN, table_id, &h);
	if (bound_handle(s->lo, s->lolen, table_id, &b) && (uint64_t)h - (uint64_t)b < gap)
		return true;
	return bound_handle(s->hi, s->hilen, table_id, &b) && (uint64_t)b - (uint64_t)h < gap;
}

int bf_subtask_refine(bf_subtask **s, size_t *n, int64_t table_id, int64_t first, int64_t last,
		      int want, bf_err *err)
{
	size_t cap = *n + (size_t)(want > 0 ? want : 0), m = 0;
	bf_subtask *out;

	if (want > MAX_SUBTASKS)
		want = MAX_SUBTASKS;
	if (*n == 0 || (int)*n >= want || last <= first)
		return 0;
	if (!(out = calloc(cap, sizeof(*out))))
		return bf_errf(err, BF_ENOMEM, "out of memory planning %d subtasks", want);
	/* Cut points at even handle steps; each lands in one subtask (or on
	 * a boundary already there). */
	uint64_t span = (uint64_t)last - (uint64_t)first;
	int step = 1;
	for (size_t i = 0; i < *n; i++) {
		bf_subtask cur = (*s)[i];
		for (; step < want && m + 1 < cap; step++) {
			uint8_t k[BF_RECORD_KEY_LEN];
			unsigned __int128 off = (unsigned __int128)span * (unsigned)step / (unsigned)want;
			bf_codec_record_key(k, table_id, (int64_t)((uint64_t)first + (uint64_t)off));
			if (bf_key_cmp(k, sizeof(k), cur.hi, cur.hilen) >= 0)
				break; /* past this subtask: the next one's */
			if (!inside(&cur, k, sizeof(k)) || near_bound(&cur, table_id, k, span / (unsigned)want / 2))
				continue;
			out[m] = cur;
			memcpy(out[m].hi, k, sizeof(k));
			out[m].hilen = sizeof(k);
			m++;
			memcpy(cur.lo, k, sizeof(k));
			cur.lolen = sizeof(k);
			memcpy(cur.next, k, sizeof(k));
			cur.nextlen = sizeof(k);
		}
		out[m++] = cur;
	}
	for (size_t i = 0; i < m; i++)
		out[i].seq = (int)i;
	free(*s);
	*s = out;
	*n = m;
	return 0;
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
	    cJSON_AddBoolToObject(o, "done", s->done) &&
	    cJSON_AddNumberToObject(o, "claims", s->claims))
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
	const cJSON *claims = cJSON_GetObjectItemCaseSensitive(o, "claims");
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
	else if (claims && (!cJSON_IsNumber(claims) || claims->valuedouble < 0 ||
			    claims->valuedouble > 1e9))
		bad = "claims must be a count";
	if (!bad) {
		s->job_id = job;
		s->seq = (int)seqv;
		s->rows = (uint64_t)rows->valuedouble;
		s->done = cJSON_IsTrue(done);
		s->claims = claims ? (int)claims->valuedouble : 0;
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

/* A progress record into s's live fields; a damaged one is ignored: it
 * only feeds status. */
static void progress_parse(const bf_etcd_kv *kv, bf_subtask *s)
{
	cJSON *o = cJSON_ParseWithLength(kv->value, kv->value_len);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
	const cJSON *rate = cJSON_GetObjectItemCaseSensitive(o, "rate");
	const cJSON *phase = cJSON_GetObjectItemCaseSensitive(o, "phase");
	const cJSON *waiting = cJSON_GetObjectItemCaseSensitive(o, "waiting");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at_ms");

	if (cJSON_IsNumber(rows) && rows->valuedouble >= 0 && cJSON_IsNumber(rate) &&
	    cJSON_IsString(phase) && cJSON_IsString(waiting) && cJSON_IsNumber(at)) {
		s->live = true;
		s->live_rows = (uint64_t)rows->valuedouble;
		s->live_rate = rate->valuedouble;
		snprintf(s->live_phase, sizeof(s->live_phase), "%s", phase->valuestring);
		snprintf(s->live_waiting, sizeof(s->live_waiting), "%s", waiting->valuestring);
		s->live_ms = (int64_t)at->valuedouble;
	}
	cJSON_Delete(o);
}

/* Joins records keyed by subtask number into s[0..n) (both in key order:
 * the numbers are fixed width). */
static void join(bf_subtask *s, size_t n, const bf_etcd_range_result *r,
		 void (*apply)(const bf_etcd_kv *kv, bf_subtask *s))
{
	for (size_t i = 0, j = 0; i < n && j < r->n_kvs;) {
		int64_t seq = key_seq(r->kvs[j].key);
		if (seq < s[i].seq) {
			j++;
		} else if (seq > s[i].seq) {
			i++;
		} else {
			apply(&r->kvs[j], &s[i]);
			i++;
			j++;
		}
	}
}

static void claim_apply(const bf_etcd_kv *kv, bf_subtask *s)
{
	snprintf(s->worker, sizeof(s->worker), "%.*s", (int)kv->value_len, kv->value);
}

int bf_subtask_list(bf_etcd *etcd, const char *root, int64_t job_id, bf_subtask **out,
		    size_t *n, bf_err *err)
{
	char prefix[KEY_MAX];
	bf_etcd_range_result subs = { 0 }, claims = { 0 }, progress = { 0 };
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
	subtask_key(prefix, root, "progress", job_id, -1);
	if (rc == 0)
		rc = range_prefix(etcd, prefix, &progress, err);
	if (rc == 0) {
		join(s, subs.n_kvs, &claims, claim_apply);
		join(s, subs.n_kvs, &progress, progress_parse);
	}
	if (rc == 0) {
		*out = s;
		*n = subs.n_kvs;
		s = NULL;
	}
	free(s);
	bf_etcd_range_result_free(&subs);
	bf_etcd_range_result_free(&claims);
	bf_etcd_range_result_free(&progress);
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

static bf_etcd_compare claim_is(const char *ckey, const char *worker)
{
	return (bf_etcd_compare){ .key = ckey, .target = BF_ETCD_CMP_VALUE, .result = BF_ETCD_EQUAL,
				  .value = worker, .value_len = strlen(worker) };
}

int bf_subtask_claim(bf_etcd *etcd, const char *root, int64_t job_id, const char *worker,
		     int64_t lease, bf_subtask *out, bf_err *err)
{
	bf_subtask *s = NULL;
	size_t n = 0;
	int rc = check_worker(worker, err);

	if (rc == 0)
		rc = bf_subtask_list(etcd, root, job_id, &s, &n, err);
	/* Unclaimed ones first; then one of this worker's own claims. */
	for (size_t k = 0; rc == 0 && k < 2 * n; k++) {
		size_t i = k % n;
		char skey[KEY_MAX], ckey[KEY_MAX], *value;
		bf_etcd_txn_result res = { 0 };
		/* A claim of this worker's own is its to take again: one it
		 * could not give back (etcd failed at that moment) would
		 * otherwise keep the subtask from everyone while it lives. */
		bool mine = !strcmp(s[i].worker, worker);
		if (s[i].done || (s[i].worker[0] && !mine) || (mine && k < n))
			continue;
		subtask_key(skey, root, "subtask", job_id, s[i].seq);
		subtask_key(ckey, root, "claim", job_id, s[i].seq);
		/* Counted in the record, so that status can tell a job that
		 * has been worked on (its workers may all be gone now) from
		 * one never started. */
		s[i].claims++;
		if (!(value = record_make(&s[i]))) {
			rc = bf_errf(err, BF_ENOMEM, "out of memory");
			break;
		}
		/* Unclaimed (or still this worker's), and the record as listed
		 * (not finished since). */
		bf_etcd_compare cmp[2] = {
			mine ? claim_is(ckey, worker)
			     : (bf_etcd_compare){ .key = ckey, .target = BF_ETCD_CMP_CREATE,
						  .result = BF_ETCD_EQUAL },
			{ .key = skey, .target = BF_ETCD_CMP_MOD, .result = BF_ETCD_EQUAL,
			  .number = s[i].mod_revision },
		};
		bf_etcd_op put[2] = {
			{ .kind = BF_ETCD_OP_PUT, .key = ckey, .value = worker,
			  .value_len = strlen(worker), .lease = lease },
			{ .kind = BF_ETCD_OP_PUT, .key = skey, .value = value,
			  .value_len = strlen(value) },
		};
		bf_etcd_txn_req req = { .compare = cmp, .n_compare = 2, .success = put,
					.n_success = 2 };
		rc = bf_etcd_txn(etcd, &req, &res, err);
		free(value);
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
		      const bf_fence_token *fences, int nfences, bool *all_done, bf_err *err)
{
	char skey[KEY_MAX], ckey[KEY_MAX], *value = NULL;
	bf_etcd_compare cmp[1 + FENCES_MAX];
	bf_subtask fin = *s, *list = NULL;
	size_t n = 0, ncmp = 0;
	int rc = check_worker(worker, err);

	*all_done = false;
	if (rc)
		return rc;
	if (nfences > FENCES_MAX)
		return bf_errf(err, BF_EINVAL, "at most %d fences", FENCES_MAX);
	fin.done = true;
	memcpy(fin.next, fin.hi, fin.hilen);
	fin.nextlen = fin.hilen;
	if (!(value = record_make(&fin)))
		return bf_errf(err, BF_ENOMEM, "out of memory");
	subtask_key(skey, root, "subtask", s->job_id, s->seq);
	subtask_key(ckey, root, "claim", s->job_id, s->seq);
	cmp[ncmp++] = claim_is(ckey, worker);
	for (int i = 0; i < nfences; i++)
		if (fences[i].holder[0])
			cmp[ncmp++] = (bf_etcd_compare){ .key = fences[i].holder,
							 .target = BF_ETCD_CMP_CREATE,
							 .result = BF_ETCD_EQUAL,
							 .number = fences[i].revision };
	bf_etcd_op ops[2] = {
		{ .kind = BF_ETCD_OP_PUT, .key = skey, .value = value, .value_len = strlen(value) },
		{ .kind = BF_ETCD_OP_DELETE, .key = ckey },
	};
	rc = guarded(etcd, cmp, ncmp, ops, 2, s,
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

/* ---- progress, stop ---- */

int bf_subtask_progress(bf_etcd *etcd, const char *root, const bf_subtask *s, const char *worker,
			int64_t lease, bf_err *err)
{
	char key[KEY_MAX], *text = NULL;
	cJSON *o = cJSON_CreateObject();
	int rc;

	subtask_key(key, root, "progress", s->job_id, s->seq);
	if (o && cJSON_AddStringToObject(o, "worker", worker) &&
	    cJSON_AddNumberToObject(o, "rows", (double)s->live_rows) &&
	    cJSON_AddNumberToObject(o, "rate", s->live_rate) &&
	    cJSON_AddStringToObject(o, "phase", s->live_phase) &&
	    cJSON_AddStringToObject(o, "waiting", s->live_waiting) &&
	    cJSON_AddNumberToObject(o, "at_ms", (double)s->live_ms))
		text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text)
		return bf_errf(err, BF_ENOMEM, "out of memory");
	rc = bf_etcd_put(etcd, key, text, strlen(text), lease, NULL, err);
	free(text);
	return rc;
}

static void stop_key(char *out, const char *root, int64_t job_id)
{
	snprintf(out, KEY_MAX, "%sstop/%020" PRId64, root, job_id);
}

int bf_subtask_stop(bf_etcd *etcd, const char *root, int64_t job_id, const char *why,
		    bf_err *err)
{
	char key[KEY_MAX];

	stop_key(key, root, job_id);
	return bf_etcd_put(etcd, key, why, strlen(why), 0, NULL, err);
}

int bf_subtask_stopping(bf_etcd *etcd, const char *root, int64_t job_id, char *why, size_t cap,
			bf_err *err)
{
	char key[KEY_MAX];

	stop_key(key, root, job_id);
	return bf_etcd_get_text(etcd, key, why, cap, err);
}

int bf_subtask_wait_unclaimed(bf_etcd *etcd, const char *root, int64_t job_id, int timeout_ms,
			      bf_err *err)
{
	int64_t deadline = bf_now_ms() + timeout_ms;
	char prefix[KEY_MAX];

	subtask_key(prefix, root, "claim", job_id, -1);
	for (;;) {
		bf_etcd_range_result res = { 0 };
		int rc = range_prefix(etcd, prefix, &res, err);
		if (rc == 0 && res.n_kvs > 0 && bf_now_ms() >= deadline)
			rc = bf_errf(err, BF_ETIMEDOUT, "job %" PRId64 ": worker %.*s still holds "
				     "subtask %s after %d s", job_id, (int)res.kvs[0].value_len,
				     res.kvs[0].value, strrchr(res.kvs[0].key, '/') + 1,
				     timeout_ms / 1000);
		size_t left = res.n_kvs;
		bf_etcd_range_result_free(&res);
		if (rc || left == 0)
			return rc;
		bf_sleep_ms(200);
	}
}
