/*
 * A cluster of store nodes as an import target (include/bfill/target.h,
 * docs/cluster.md). Ingest reads the files back through a scratch
 * database and hands them to region jobs (ingest/region_job.c); exists,
 * delete_range and scan go region by region to each leader, retrying as
 * ingest/cluster_retry.h says. The layout comes from the cluster's region
 * cache, which keeps serving while etcd is away.
 * Depends on: ingest/region_job, ingest/tikv_client, ingest/cluster_retry,
 * engine (scratch reader), bfill/cluster.h, util.
 */
#include "bfill/cluster.h"
#include "bfill/target.h"
#include "ingest/cluster_retry.h"
#include "ingest/region_job.h"
#include "ingest/tikv_client.h"
#include "util/trace.h"
#include "util/util.h"

#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keys per KvBatchGet: a probe batch is cut into requests this big. */
#define BATCH_GET_MAX 4096

typedef struct cluster_target {
	bf_cluster *cluster;    /* borrowed */
	bf_tikv_client *client; /* owned */
	bf_target_cluster_opts o; /* defaults filled in */
	char work_dir[PATH_MAX];
	atomic_uint_fast64_t seq; /* names each ingest's scratch database */
	atomic_uint_fast64_t ingests, files, probes, probe_reads, refusals;
	atomic_bool cancelled; /* see bf_target_ops.cancel */
	bf_retry_board board;  /* what the retries wait out, see bf_target_ops.waiting */
} cluster_target;

/* Failures of no known kind one operation retries before giving up. */
#define MAX_OTHER_FAILURES 5

/* The retry policy of one operation; a cancel stops it unless it is a
 * clean-up (a rollback's delete_range must run to its end). */
static bf_retry_opts retry_opts(cluster_target *t, bool cleanup)
{
	bf_retry_opts ro = {
		.base_ms = t->o.backoff_base_ms,
		.cap_ms = t->o.backoff_cap_ms,
		.budget_ms = t->o.total_timeout_ms,
		.max_other_failures = MAX_OTHER_FAILURES,
		.cancel = cleanup ? NULL : &t->cancelled,
		.board = &t->board,
	};
	return ro;
}

/* A fresh retry budget for one operation. */
static void retry_start(cluster_target *t, bf_retry *rt, bool cleanup)
{
	bf_retry_opts ro = retry_opts(t, cleanup);
	bf_retry_init(rt, t->cluster, &ro, (uint64_t)bf_now_ns() ^ atomic_fetch_add(&t->seq, 1));
}

/*
 * After a failed call: BF_RETRY_FAIL's code, or 0 to go on (whatever the
 * next step, these operations simply ask the cache again).
 */
static int retry_or_fail(bf_retry *rt, const bf_region *r, int rc, const bf_tikv_error *re,
			 bf_err *err)
{
	int code = 0;
	if (bf_retry_after(rt, r, rc, re, &code, err) == BF_RETRY_FAIL)
		return code ? code : BF_EIO;
	return 0;
}

/* ---- split points ---- */

static int cluster_split_points(void *impl, const void *lo, size_t lolen, const void *hi,
				size_t hilen, bf_keys *out, bf_err *err)
{
	cluster_target *t = impl;
	bf_region *regions = NULL;
	size_t n = 0;
	int rc = bf_cluster_regions(t->cluster, lo, lolen, hi, hilen, &regions, &n, err);

	if (rc == 0)
		rc = bf_range_split_points(regions, n, lo, lolen, hi, hilen, out, err);
	free(regions);
	return rc;
}

/* ---- ingest ---- */

/* The data's first key and the key right after its last, read from the
 * scratch database; *lo and *hi are malloc'd. BF_ENOTFOUND when empty. */
static int data_bounds(bf_sst_files *f, uint8_t **lo, size_t *lolen, uint8_t **hi,
		       size_t *hilen, bf_err *err)
{
	bf_store_iter *it = NULL;
	const uint8_t *k;
	size_t kl;
	int rc = bf_sst_files_iter(f, NULL, 0, NULL, 0, &it, err);

	*lo = *hi = NULL;
	if (rc)
		return rc;
	if (!bf_store_iter_valid(it)) {
		rc = bf_store_iter_status(it, err);
		if (rc == 0)
			rc = BF_ENOTFOUND;
		goto out;
	}
	k = bf_store_iter_key(it, &kl);
	if (!(*lo = malloc(kl ? kl : 1)))
		goto nomem;
	memcpy(*lo, k, kl);
	*lolen = kl;
	bf_store_iter_seek_last(it);
	k = bf_store_iter_key(it, &kl);
	/* last + 0x00: the smallest key above the last one. */
	if (!(*hi = malloc(kl + 1)))
		goto nomem;
	memcpy(*hi, k, kl);
	(*hi)[kl] = 0;
	*hilen = kl + 1;
	rc = bf_store_iter_status(it, err);
	goto out;
nomem:
	rc = bf_errf(err, BF_ENOMEM, "cluster target: out of memory");
out:
	if (rc) {
		free(*lo);
		free(*hi);
		*lo = *hi = NULL;
	}
	bf_store_iter_destroy(it);
	return rc;
}

static int cluster_ingest(void *impl, const char *const *paths, size_t n,
			  const bf_fence_token *token, bf_err *err)
{
	cluster_target *t = impl;
	bf_region_jobs_opts jo = {
		.cluster = t->cluster,
		.client = t->client,
		.token = token,
		.workers = t->o.concurrency,
		.batch_bytes = t->o.batch_bytes,
		.write_max_bytes = t->o.write_max_bytes,
		.write_max_keys = t->o.write_max_keys,
		.commit_ts = t->o.commit_ts,
		.retry = retry_opts(t, false),
	};
	bf_region_jobs_stats st = { 0 };
	bf_sst_files *files = NULL;
	uint8_t *lo = NULL, *hi = NULL;
	size_t lolen = 0, hilen = 0;
	char dir[PATH_MAX];
	int rc;

	snprintf(dir, sizeof(dir), "%s/ingest-%ld-%" PRIuFAST64, t->work_dir, (long)getpid(),
		 (uint_fast64_t)atomic_fetch_add(&t->seq, 1));
	rc = bf_sst_files_open(dir, paths, n, &files, err);
	if (rc) {
		bf_err_prefix(err, rc, "cluster ingest");
		return rc;
	}
	rc = data_bounds(files, &lo, &lolen, &hi, &hilen, err);
	if (rc == BF_ENOTFOUND) {
		rc = 0; /* files with no keys: nothing to send */
		goto out;
	}
	if (rc)
		goto out;
	jo.files = files;
	rc = bf_region_jobs_run(&jo, lo, lolen, hi, hilen, &st, err);
out:
	bf_sst_files_close(files);
	free(lo);
	free(hi);
	if (rc == BF_EFENCED)
		atomic_fetch_add(&t->refusals, 1);
	if (rc) {
		bf_err_prefix(err, rc, "cluster ingest");
		return rc;
	}
	atomic_fetch_add(&t->ingests, 1);
	atomic_fetch_add(&t->files, n);
	bf_trace("ingest", "files=%zu lock=%s revision=%" PRId64 " regions=%" PRIu64
		 " keys=%" PRIu64 " retries=%" PRIu64,
		 n, token ? token->key : "", token ? token->revision : 0, st.ingests, st.keys,
		 st.retries);
	return 0;
}

/* ---- exists ---- */

/* Marks the probes in [lo, hi) that a batch get found. */
static void mark_found(bf_probe *probes, size_t lo, size_t hi, const bf_tikv_pairs *pairs)
{
	for (size_t i = 0; i < bf_tikv_pairs_count(pairs); i++) {
		size_t kl, vl, a = lo, b = hi;
		const uint8_t *k = bf_tikv_pairs_key(pairs, i, &kl);
		const uint8_t *v = bf_tikv_pairs_value(pairs, i, &vl);
		/* The first probe not below k (probes are sorted). */
		while (a < b) {
			size_t m = a + (b - a) / 2;
			if (bf_key_cmp(probes[m].key, probes[m].klen, k, kl) < 0)
				a = m + 1;
			else
				b = m;
		}
		for (; a < hi && bf_key_cmp(probes[a].key, probes[a].klen, k, kl) == 0; a++)
			probes[a].result = vl == probes[a].expect_len &&
						   (vl == 0 || !memcmp(v, probes[a].expect, vl))
					   ? BF_PROBE_SAME
					   : BF_PROBE_DIFFERENT;
	}
}

static int cluster_exists(void *impl, bf_probe *probes, size_t n, bf_err *err)
{
	cluster_target *t = impl;
	bf_retry rt;
	size_t i = 0;
	uint64_t reads = 0;
	int rc = 0;

	retry_start(t, &rt, false);
	while (rc == 0 && i < n) {
		bf_tikv_pairs *pairs = NULL;
		bf_tikv_error re = { 0 };
		bf_region r;
		size_t j = i;

		rc = bf_cluster_locate(t->cluster, probes[i].key, probes[i].klen, &r, err);
		if (rc) {
			rc = retry_or_fail(&rt, NULL, BF_ESTATE, NULL, err);
			continue;
		}
		while (j < n && j - i < BATCH_GET_MAX && bf_region_contains(&r, probes[j].key, probes[j].klen))
			probes[j++].result = BF_PROBE_ABSENT;
		rc = bf_tikv_batch_get(t->client, &r, probes + i, j - i, &pairs, &re, err);
		if (rc == 0 && re.kind == BF_TIKV_OK) {
			mark_found(probes, i, j, pairs);
			reads += j - i;
			i = j;
			bf_retry_success(&rt);
		} else {
			rc = retry_or_fail(&rt, &r, rc, &re, err);
		}
		bf_tikv_pairs_free(pairs);
		bf_tikv_error_free(&re);
	}
	atomic_fetch_add(&t->probes, n);
	atomic_fetch_add(&t->probe_reads, reads);
	if (rc)
		bf_err_prefix(err, rc, "cluster exists");
	return rc;
}

/* ---- delete_range ---- */

static int cluster_delete_range(void *impl, const void *lo, size_t lolen, const void *hi,
				size_t hilen, bf_err *err)
{
	cluster_target *t = impl;
	uint8_t *cur = malloc(lolen ? lolen : 1);
	size_t curlen = lolen;
	bool done = false;
	bf_retry rt;
	int rc = 0;

	if (!cur)
		return bf_errf(err, BF_ENOMEM, "cluster target: out of memory");
	memcpy(cur, lo, lolen);
	retry_start(t, &rt, true);
	while (rc == 0 && !done) {
		bf_region *regions = NULL;
		bf_range_piece *pieces = NULL;
		size_t np = 0, i;

		rc = bf_region_pieces(&rt, cur, curlen, hi, hilen, &regions, &pieces, &np, err);
		for (i = 0; rc == 0 && i < np; i++) {
			const bf_range_piece *p = &pieces[i];
			bf_tikv_error re = { 0 };
			rc = bf_tikv_delete_range(t->client, p->region, p->lo, p->lolen, p->hi,
						  p->hi ? p->hilen : 0, &re, err);
			if (rc == 0 && re.kind == BF_TIKV_OK) {
				bf_retry_success(&rt);
				continue;
			}
			rc = retry_or_fail(&rt, p->region, rc, &re, err);
			bf_tikv_error_free(&re);
			if (rc == 0) {
				/* Go on from this piece, by the cache as it is now. */
				uint8_t *next = malloc(p->lolen ? p->lolen : 1);
				if (!next) {
					rc = bf_errf(err, BF_ENOMEM, "cluster target: out of memory");
					break;
				}
				memcpy(next, p->lo, p->lolen);
				free(cur);
				cur = next;
				curlen = p->lolen;
			}
			break;
		}
		done = rc == 0 && i == np;
		free(pieces);
		free(regions);
	}
	free(cur);
	if (rc)
		bf_err_prefix(err, rc, "cluster delete_range");
	return rc;
}

/* ---- scan ---- */

typedef struct scan_iter {
	cluster_target *t;
	uint8_t *lo, *hi; /* owned; hi NULL: unbounded */
	size_t lolen, hilen;
	uint8_t *cur;     /* where the next page starts; owned */
	size_t curlen;
	bool exhausted;   /* no page after the current one */
	bf_tikv_pairs *page;
	size_t idx;
	int rc;
	bf_err err;
} scan_iter;

static int set_cur(scan_iter *s, const void *k, size_t klen, bool plus_zero)
{
	uint8_t *c = malloc(klen + 1);
	if (!c)
		return BF_ENOMEM;
	memcpy(c, k, klen);
	c[klen] = 0;
	free(s->cur);
	s->cur = c;
	s->curlen = klen + (plus_zero ? 1 : 0);
	return 0;
}

/* Stops the iterator with an error. */
static void scan_fail(scan_iter *s, int rc)
{
	s->rc = rc;
	s->exhausted = true;
	bf_tikv_pairs_free(s->page);
	s->page = NULL;
}

/* Reads pages from cur on until one has pairs or the range is done. */
static void scan_fetch(scan_iter *s)
{
	cluster_target *t = s->t;
	bf_retry rt;

	retry_start(t, &rt, false);
	bf_tikv_pairs_free(s->page);
	s->page = NULL;
	s->idx = 0;
	while (!s->exhausted) {
		bf_tikv_error re = { 0 };
		bf_region r;
		const uint8_t *end;
		size_t endlen;
		bool last;
		int rc = bf_cluster_locate(t->cluster, s->cur, s->curlen, &r, &s->err);

		if (rc) {
			rc = retry_or_fail(&rt, NULL, BF_ESTATE, NULL, &s->err);
			if (rc)
				scan_fail(s, rc);
			continue;
		}
		last = !r.end_len || (s->hi && bf_key_cmp(s->hi, s->hilen, r.end, r.end_len) <= 0);
		end = last ? s->hi : r.end;
		endlen = last ? (s->hi ? s->hilen : 0) : r.end_len;
		rc = bf_tikv_scan(t->client, &r, t->o.read_replica, s->cur, s->curlen, end, endlen, t->o.scan_page_keys,
				  false, &s->page, &re, &s->err);
		if (rc || re.kind != BF_TIKV_OK) {
			rc = retry_or_fail(&rt, &r, rc, &re, &s->err);
			bf_tikv_error_free(&re);
			if (rc)
				scan_fail(s, bf_err_prefix(&s->err, rc, "cluster scan"));
			continue;
		}
		bf_retry_success(&rt);
		/* A node may answer fewer pairs than asked (it keeps a reply
		 * under a byte budget), so only an empty page ends a region. */
		size_t n = bf_tikv_pairs_count(s->page);
		if (n > 0) {
			size_t kl;
			const uint8_t *k = bf_tikv_pairs_key(s->page, n - 1, &kl);
			rc = set_cur(s, k, kl, true);
		} else if (last) {
			s->exhausted = true;
		} else {
			rc = set_cur(s, r.end, r.end_len, false);
		}
		if (rc)
			scan_fail(s, bf_errf(&s->err, BF_ENOMEM, "cluster scan: out of memory"));
		if (n > 0 || s->rc)
			return;
		bf_tikv_pairs_free(s->page);
		s->page = NULL;
	}
}

static bool scan_valid(void *it)
{
	scan_iter *s = it;
	return s->page && s->idx < bf_tikv_pairs_count(s->page);
}

static void scan_next(void *it)
{
	scan_iter *s = it;
	if (++s->idx >= bf_tikv_pairs_count(s->page))
		scan_fetch(s);
}

/*
 * The last key of the range: TiKV's reverse scan, one pair, region by
 * region from the last. What follows it is the end.
 */
static void scan_seek_last(void *it)
{
	scan_iter *s = it;
	cluster_target *t = s->t;
	bf_retry rt;
	bool again = true;

	retry_start(t, &rt, false);
	bf_tikv_pairs_free(s->page);
	s->page = NULL;
	s->idx = 0;
	s->exhausted = true;
	while (again && s->rc == 0) {
		bf_region *regions = NULL;
		bf_range_piece *pieces = NULL;
		size_t np = 0;
		int rc = bf_region_pieces(&rt, s->lo, s->lolen, s->hi, s->hilen, &regions, &pieces,
					  &np, &s->err);
		again = false;
		for (size_t i = np; rc == 0 && i-- > 0;) {
			const bf_range_piece *p = &pieces[i];
			bf_tikv_error re = { 0 };
			rc = bf_tikv_scan(t->client, p->region, t->o.read_replica, p->hi, p->hi ? p->hilen : 0, p->lo,
					  p->lolen, 1, true, &s->page, &re, &s->err);
			if (rc || re.kind != BF_TIKV_OK) {
				rc = retry_or_fail(&rt, p->region, rc, &re, &s->err);
				bf_tikv_error_free(&re);
				again = rc == 0;
				break;
			}
			if (bf_tikv_pairs_count(s->page) > 0)
				break;
			bf_tikv_pairs_free(s->page);
			s->page = NULL;
		}
		if (rc)
			scan_fail(s, bf_err_prefix(&s->err, rc, "cluster scan"));
		free(pieces);
		free(regions);
	}
}

static const uint8_t *scan_key(void *it, size_t *len)
{
	scan_iter *s = it;
	return bf_tikv_pairs_key(s->page, s->idx, len);
}

static const uint8_t *scan_value(void *it, size_t *len)
{
	scan_iter *s = it;
	return bf_tikv_pairs_value(s->page, s->idx, len);
}

static int scan_status(void *it, bf_err *err)
{
	scan_iter *s = it;
	if (s->rc && err)
		*err = s->err;
	return s->rc;
}

static void scan_destroy(void *it)
{
	scan_iter *s = it;
	if (!s)
		return;
	bf_tikv_pairs_free(s->page);
	free(s->lo);
	free(s->hi);
	free(s->cur);
	free(s);
}

static const bf_target_iter_ops scan_ops = {
	.valid = scan_valid, .next = scan_next, .seek_last = scan_seek_last, .key = scan_key,
	.value = scan_value, .status = scan_status, .destroy = scan_destroy,
};

static int cluster_scan(void *impl, const void *lo, size_t lolen, const void *hi, size_t hilen,
			const bf_scan_opts *opts, const bf_target_iter_ops **ops, void **it,
			bf_err *err)
{
	scan_iter *s = calloc(1, sizeof(*s));
	int rc = 0;

	(void)opts; /* no snapshots, and the nodes choose their own reads */
	if (!s)
		return bf_errf(err, BF_ENOMEM, "cluster scan: out of memory");
	s->t = impl;
	s->lo = malloc(lolen + 1);
	s->hi = hi ? malloc(hilen + 1) : NULL;
	if (!s->lo || (hi && !s->hi) || set_cur(s, lo, lolen, false)) {
		scan_destroy(s);
		return bf_errf(err, BF_ENOMEM, "cluster scan: out of memory");
	}
	memcpy(s->lo, lo, lolen);
	s->lolen = lolen;
	if (hi) {
		memcpy(s->hi, hi, hilen);
		s->hilen = hilen;
	}
	scan_fetch(s);
	if (s->rc) {
		rc = s->rc;
		if (err)
			*err = s->err;
		scan_destroy(s);
		return rc;
	}
	*ops = &scan_ops;
	*it = s;
	return 0;
}

/* ---- the rest ---- */

static void cluster_stats(void *impl, bf_target_stats *out)
{
	cluster_target *t = impl;
	out->ingests = atomic_load(&t->ingests);
	out->ingested_files = atomic_load(&t->files);
	out->probes = atomic_load(&t->probes);
	out->probe_keys_read = atomic_load(&t->probe_reads);
	out->fence_refusals = atomic_load(&t->refusals);
}

static void cluster_destroy(void *impl)
{
	cluster_target *t = impl;
	bf_tikv_client_destroy(t->client);
	pthread_mutex_destroy(&t->board.mu);
	free(t);
}

static bool cluster_waiting(void *impl, char *out, size_t n)
{
	cluster_target *t = impl;
	return bf_retry_board_read(&t->board, out, n);
}

static void cluster_cancel(void *impl, bool on)
{
	cluster_target *t = impl;
	atomic_store(&t->cancelled, on);
}

static const bf_target_ops cluster_ops = {
	.kind = "cluster",
	.split_points = cluster_split_points,
	.ingest = cluster_ingest,
	.exists = cluster_exists,
	.delete_range = cluster_delete_range,
	.approx_size = NULL, /* the nodes report no sizes: planning goes by count */
	.snapshot = NULL,    /* no MVCC on the nodes: scans read the latest */
	.snapshot_release = NULL,
	.scan = cluster_scan,
	.stats = cluster_stats,
	.destroy = cluster_destroy,
	.cancel = cluster_cancel,
	.waiting = cluster_waiting,
};

/* The options with every 0 replaced by its default. */
static void fill_defaults(bf_target_cluster_opts *o)
{
	if (o->concurrency <= 0)
		o->concurrency = 4;
	if (!o->batch_bytes)
		o->batch_bytes = 256 << 10;
	if (!o->write_max_bytes)
		o->write_max_bytes = 96ULL << 20;
	if (!o->write_max_keys)
		o->write_max_keys = 1280000;
	if (o->total_timeout_ms <= 0)
		o->total_timeout_ms = 300000;
	if (o->rpc_timeout_ms <= 0)
		o->rpc_timeout_ms = 30000;
	if (o->backoff_base_ms <= 0)
		o->backoff_base_ms = 50;
	if (o->backoff_cap_ms <= 0)
		o->backoff_cap_ms = 3000;
	if (!o->scan_page_keys)
		o->scan_page_keys = 4096;
	/* Like a TSO: physical milliseconds above 18 logical bits. */
	if (!o->commit_ts)
		o->commit_ts = (uint64_t)bf_wall_ms() << 18;
}

int bf_target_cluster_create(bf_cluster *c, const bf_target_cluster_opts *o, bf_target **out,
			     bf_err *err)
{
	cluster_target *t;
	int rc;

	*out = NULL;
	if (!c || !o || !o->work_dir || !*o->work_dir)
		return bf_errf(err, BF_EINVAL, "cluster target: a cluster and a work directory are required");
	t = calloc(1, sizeof(*t));
	if (!t)
		return bf_errf(err, BF_ENOMEM, "cluster target: out of memory");
	t->cluster = c;
	t->o = *o;
	t->o.tls = NULL; /* read below, not kept */
	pthread_mutex_init(&t->board.mu, NULL);
	fill_defaults(&t->o);
	snprintf(t->work_dir, sizeof(t->work_dir), "%s", o->work_dir);
	t->o.work_dir = t->work_dir;
	rc = bf_mkdirs(t->work_dir, err);
	if (rc == 0)
		rc = bf_tikv_client_create(c, t->o.rpc_timeout_ms, o->tls, &t->client, err);
	if (rc == 0)
		rc = bf_target_create(&cluster_ops, t, out, err);
	if (rc)
		cluster_destroy(t);
	return rc;
}
