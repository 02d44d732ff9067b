/*
 * custom_target: an import target of your own (include/bfill/target.h),
 * driven by the real add-index pipeline.
 *
 *   custom_target [SCRATCH_DIR [ROWS]]
 *
 * A target is where a job reads its table from and where its sorted index
 * files go. bfill ships two (the local store and a cluster of store nodes);
 * a researcher's own fills a bf_target_ops table and hands it to
 * bf_target_create with its own state. This one wraps the local store's
 * target and, before passing each ingest on, reads the SST files it is
 * given (bf_sst_files, include/bfill/sst.h) to count their files, keys
 * and bytes and to checksum every key and value. Everything else goes
 * straight to the store's target.
 *
 * The program makes a store with ROWS (default 50000) sysbench rows
 * (bf_gen_sbtest), builds index k_1 on column k through the wrapper with
 * imports every 256 KiB (so there are several ingests), checks the index
 * (bf_check_index) and then reads the index back from the store: what the
 * wrapper saw ingested must be exactly what the index holds.
 *
 * Everything lives in a fresh directory made under SCRATCH_DIR (default
 * $TMPDIR, else /tmp) and removed at the end. Exit status 0 on success, 1
 * with one line on stderr on any failure (2: bad usage).
 */
#define _XOPEN_SOURCE 700 /* link, mkdtemp, nftw: scratch.h */

#include <bfill/catalog.h>
#include <bfill/check.h>
#include <bfill/codec.h>
#include <bfill/error.h>
#include <bfill/gen.h>
#include <bfill/job.h>
#include <bfill/sst.h>
#include <bfill/store.h>
#include <bfill/target.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scratch.h"

#define TABLE "sbtest1"
#define INDEX "k_1"

/* ---- the wrapper ------------------------------------------------------ */

typedef struct counting_target {
	bf_target *inner;            /* the store's own target; owned */
	char peek_dir[PATH_MAX];     /* scratch databases for reading files */
	atomic_uint_fast64_t peeks;  /* names those databases apart */
	/* Totals of successful ingests. The pipeline may ingest from several
	 * threads at once, hence the lock; the checksum is a sum of
	 * per-entry hashes, so it does not depend on the order of ingests. */
	pthread_mutex_t mu;
	uint64_t ingests, files, keys, bytes, checksum;
	atomic_uint_fast64_t scans;  /* table and index scans served */
} counting_target;

/* FNV-1a, 64-bit. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* One key-value's hash; lengths are hashed too, so "ab"+"c" and "a"+"bc"
 * differ. */
static uint64_t entry_hash(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
	uint64_t h = 0xcbf29ce484222325ULL, lens[2] = { klen, vlen };
	h = fnv1a(h, lens, sizeof(lens));
	h = fnv1a(h, k, klen);
	return fnv1a(h, v, vlen);
}

typedef struct tally {
	uint64_t keys, bytes, checksum;
} tally;

/* Adds every key-value an iterator yields to t. */
static int tally_iter(bf_store_iter *it, tally *t, bf_err *err)
{
	for (; bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = bf_store_iter_key(it, &klen), *v = bf_store_iter_value(it, &vlen);
		t->keys++;
		t->bytes += klen + vlen;
		t->checksum += entry_hash(k, klen, v, vlen);
	}
	return bf_store_iter_status(it, err);
}

/*
 * Reads paths[0..n) without taking them: bf_sst_files_open moves the files
 * it is given into a scratch database, so it gets a hard link to each
 * (next to the file, so on its file system) and the original names stay
 * for the real ingest. Nothing is copied.
 */
static int peek_files(counting_target *ct, const char *const *paths, size_t n, tally *t,
		      bf_err *err)
{
	char dir[PATH_MAX], name[64];
	char (*links)[PATH_MAX] = calloc(n, sizeof(*links));
	const char **link_names = calloc(n, sizeof(*link_names));
	bf_sst_files *files = NULL;
	bf_store_iter *it = NULL;
	size_t linked = 0;
	int rc = 0;

	if (!links || !link_names) {
		rc = bf_errf(err, BF_ENOMEM, "counting target: out of memory");
		goto out;
	}
	for (; linked < n; linked++) {
		int len = snprintf(links[linked], PATH_MAX, "%s.peek", paths[linked]);
		if (len < 0 || len >= PATH_MAX) {
			rc = bf_errf(err, BF_EINVAL, "counting target: %s: name too long",
				     paths[linked]);
			goto out;
		}
		link_names[linked] = links[linked];
		if (link(paths[linked], links[linked])) {
			rc = bf_errf(err, -errno, "counting target: link %s: %s", paths[linked],
				     strerror(errno));
			goto out;
		}
	}
	snprintf(name, sizeof(name), "ingest-%" PRIuFAST64, atomic_fetch_add(&ct->peeks, 1));
	if (!scratch_path(dir, ct->peek_dir, name)) {
		rc = bf_errf(err, BF_EINVAL, "counting target: %s: name too long", ct->peek_dir);
		goto out;
	}
	rc = bf_sst_files_open(dir, link_names, n, &files, err);
	if (rc)
		goto out;
	linked = 0; /* the links are the scratch database's now */
	rc = bf_sst_files_iter(files, NULL, 0, NULL, 0, &it, err);
	if (rc == 0)
		rc = tally_iter(it, t, err);
out:
	bf_store_iter_destroy(it);
	bf_sst_files_close(files); /* removes dir */
	for (size_t i = 0; i < linked; i++)
		unlink(links[i]);
	free(link_names);
	free(links);
	return rc;
}

static int counting_ingest(void *impl, const char *const *paths, size_t n,
			   const bf_fence_token *token, bf_err *err)
{
	counting_target *ct = impl;
	tally t = { 0 };
	int rc = peek_files(ct, paths, n, &t, err);

	/* The store's target does the ingest itself, fencing included:
	 * a stale token is refused there (BF_EFENCED). */
	if (rc == 0)
		rc = bf_target_ingest(ct->inner, paths, n, token, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&ct->mu);
	ct->ingests++;
	ct->files += n;
	ct->keys += t.keys;
	ct->bytes += t.bytes;
	ct->checksum += t.checksum;
	pthread_mutex_unlock(&ct->mu);
	return 0;
}

/* Everything else is passed on as it is. */

static int counting_split_points(void *impl, const void *lo, size_t lolen, const void *hi,
				 size_t hilen, bf_keys *out, bf_err *err)
{
	return bf_target_split_points(((counting_target *)impl)->inner, lo, lolen, hi, hilen,
				      out, err);
}

static int counting_exists(void *impl, bf_probe *probes, size_t n, bf_err *err)
{
	return bf_target_exists(((counting_target *)impl)->inner, probes, n, err);
}

static int counting_delete_range(void *impl, const void *lo, size_t lolen, const void *hi,
				 size_t hilen, bf_err *err)
{
	return bf_target_delete_range(((counting_target *)impl)->inner, lo, lolen, hi, hilen,
				      err);
}

static int counting_approx_size(void *impl, const void *lo, size_t lolen, const void *hi,
				size_t hilen, uint64_t *bytes, bf_err *err)
{
	return bf_target_approx_size(((counting_target *)impl)->inner, lo, lolen, hi, hilen,
				     bytes, err);
}

static bf_target_snap *counting_snapshot(void *impl)
{
	return bf_target_snapshot(((counting_target *)impl)->inner);
}

static void counting_snapshot_release(void *impl, bf_target_snap *snap)
{
	bf_target_snapshot_release(((counting_target *)impl)->inner, snap);
}

/* A scan hands back an iterator as an ops table plus a pointer; the
 * inner target's bf_target_iter serves as the pointer, with ops that
 * call the bf_target_iter_* functions on it. */
static bool iter_valid(void *it) { return bf_target_iter_valid(it); }
static void iter_next(void *it) { bf_target_iter_next(it); }
static void iter_seek_last(void *it) { bf_target_iter_seek_last(it); }
static const uint8_t *iter_key(void *it, size_t *len) { return bf_target_iter_key(it, len); }
static const uint8_t *iter_value(void *it, size_t *len) { return bf_target_iter_value(it, len); }
static int iter_status(void *it, bf_err *err) { return bf_target_iter_status(it, err); }
static void iter_destroy(void *it) { bf_target_iter_destroy(it); }

static const bf_target_iter_ops passthrough_iter_ops = {
	.valid = iter_valid, .next = iter_next, .seek_last = iter_seek_last,
	.key = iter_key, .value = iter_value, .status = iter_status, .destroy = iter_destroy,
};

static int counting_scan(void *impl, const void *lo, size_t lolen, const void *hi, size_t hilen,
			 const bf_scan_opts *opts, const bf_target_iter_ops **ops, void **it,
			 bf_err *err)
{
	counting_target *ct = impl;
	bf_target_iter *inner_it = NULL;
	int rc = bf_target_scan(ct->inner, lo, lolen, hi, hilen, opts, &inner_it, err);

	if (rc)
		return rc;
	atomic_fetch_add(&ct->scans, 1);
	*ops = &passthrough_iter_ops;
	*it = inner_it;
	return 0;
}

static void counting_stats(void *impl, bf_target_stats *out)
{
	bf_target_stats_get(((counting_target *)impl)->inner, out);
}

static void counting_cancel(void *impl, bool on)
{
	bf_target_cancel(((counting_target *)impl)->inner, on);
}

static bool counting_waiting(void *impl, char *out, size_t n)
{
	return bf_target_waiting(((counting_target *)impl)->inner, out, n);
}

static void counting_destroy(void *impl)
{
	counting_target *ct = impl;
	bf_target_destroy(ct->inner);
	pthread_mutex_destroy(&ct->mu);
	free(ct);
}

static const bf_target_ops counting_ops = {
	.kind = "counting",
	.split_points = counting_split_points,
	.ingest = counting_ingest,
	.exists = counting_exists,
	.delete_range = counting_delete_range,
	.approx_size = counting_approx_size,
	.snapshot = counting_snapshot,
	.snapshot_release = counting_snapshot_release,
	.scan = counting_scan,
	.stats = counting_stats,
	.destroy = counting_destroy,
	.cancel = counting_cancel,
	.waiting = counting_waiting,
};

/* The wrapper around st's own target. st is borrowed and must outlive
 * *out; peek_dir is where ingested files are read back. */
static int counting_target_create(bf_store *st, const char peek_dir[PATH_MAX], bf_target **out,
				  bf_err *err)
{
	counting_target *ct = calloc(1, sizeof(*ct));
	int rc;

	*out = NULL;
	if (!ct)
		return bf_errf(err, BF_ENOMEM, "counting target: out of memory");
	memcpy(ct->peek_dir, peek_dir, sizeof(ct->peek_dir));
	pthread_mutex_init(&ct->mu, NULL);
	rc = bf_target_local_create(st, &ct->inner, err);
	if (rc == 0)
		rc = bf_target_create(&counting_ops, ct, out, err);
	if (rc)
		counting_destroy(ct); /* not taken over on failure */
	return rc;
}

/* ---- the program ------------------------------------------------------ */

/* Every key-value of index `index` of table `table`, read from target. */
static int tally_index(bf_store *st, bf_target *target, const char *table, const char *index,
		       tally *t, bf_err *err)
{
	uint8_t lo[BF_INDEX_PREFIX_LEN], hi[BF_INDEX_PREFIX_LEN];
	bf_target_iter *it = NULL;
	bf_table tb;
	int ix, rc = bf_catalog_get_table(bf_store_catalog(st), table, &tb, err);

	if (rc)
		return rc;
	ix = bf_table_index(&tb, index);
	if (ix < 0)
		return bf_errf(err, BF_ENOTFOUND, "table %s has no index %s", table, index);
	/* The index's keys are exactly those that start with its prefix. */
	bf_codec_index_prefix(lo, tb.id, tb.indexes[ix].id);
	memcpy(hi, lo, sizeof(lo));
	rc = bf_target_scan(target, lo, sizeof(lo), hi, bf_codec_prefix_next(hi, sizeof(hi)),
			    &(bf_scan_opts){ .fill_cache = false }, &it, err);
	for (; rc == 0 && bf_target_iter_valid(it); bf_target_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = bf_target_iter_key(it, &klen), *v = bf_target_iter_value(it, &vlen);
		t->keys++;
		t->bytes += klen + vlen;
		t->checksum += entry_hash(k, klen, v, vlen);
	}
	if (rc == 0)
		rc = bf_target_iter_status(it, err);
	bf_target_iter_destroy(it);
	return rc;
}

static int fail(const char *what, const bf_err *err)
{
	fprintf(stderr, "custom_target: %s: %s\n", what, bf_err_text(err));
	return 1;
}

int main(int argc, char **argv)
{
	char scratch[PATH_MAX], store_dir[PATH_MAX], peek_dir[PATH_MAX], check_dir[PATH_MAX];
	char sort_dir[PATH_MAX];
	uint64_t rows = 50000;
	bf_store *st = NULL;
	bf_target *target = NULL, *own = NULL;
	counting_target *ct;
	bf_job_env env;
	bf_add_index_opts o = {
		.table = TABLE, .nspecs = 1,
		.specs = { { .name = INDEX, .columns = "k", .unique = false } },
		.workers = 2,
		.mem = 64ULL << 20,
		.import_every = 256ULL << 10, /* several imports, so several ingests */
		.run_compression = -1, .target_compression = -1,
	};
	bf_add_index_result res;
	bf_check_result check;
	bf_gen_stats gen;
	tally stored = { 0 };
	bf_err err = { 0 };
	int status = 1;

	if (argc > 3 || (argc == 3 && (sscanf(argv[2], "%" SCNu64, &rows) != 1 || rows == 0))) {
		fprintf(stderr, "usage: custom_target [SCRATCH_DIR [ROWS]]\n");
		return 2;
	}
	if (!scratch_make("custom_target", argc > 1 ? argv[1] : NULL, "bfill-target", scratch))
		return 1;
	if (!scratch_path(store_dir, scratch, "store") || !scratch_path(peek_dir, scratch, "peek") ||
	    !scratch_path(check_dir, scratch, "check")) {
		fprintf(stderr, "custom_target: path too long under %s\n", scratch);
		goto out;
	}

	/* A fresh store with a sysbench table in it. */
	if (bf_store_open(store_dir, BF_STORE_CREATE, &st, &err)) {
		status = fail(store_dir, &err);
		goto out;
	}
	if (bf_gen_sbtest(st, &(bf_gen_opts){ .table = TABLE, .rows = rows, .seed = 1, .threads = 2 },
			  &gen, &err)) {
		status = fail("generating rows", &err);
		goto out;
	}

	/* The job's environment is the store's (catalog, lock scope, sort
	 * directory) with our target in place of the store's own. */
	if (counting_target_create(st, peek_dir, &target, &err) ||
	    bf_job_env_store(st, target, &env, sort_dir, sizeof(sort_dir), &own, &err)) {
		status = fail("making the target", &err);
		goto out;
	}
	if (bf_add_index_in(&env, &o, &res, &err)) {
		status = fail("add-index", &err);
		goto out;
	}
	/* check-index reads the rows and the index through the target too. */
	if (bf_check_index(st, target, TABLE, INDEX, check_dir, 64ULL << 20, &check, &err)) {
		status = fail("check-index", &err);
		goto out;
	}
	if (check.missing || check.extra || check.wrong_value) {
		fprintf(stderr, "custom_target: check-index: %" PRIu64 " missing, %" PRIu64
			" extra, %" PRIu64 " wrong value\n", check.missing, check.extra,
			check.wrong_value);
		goto out;
	}
	if (tally_index(st, target, TABLE, INDEX, &stored, &err)) {
		status = fail("reading the index back", &err);
		goto out;
	}

	ct = bf_target_impl(target);
	printf("custom_target: %" PRIu64 " rows; index %s: %" PRIu64 " keys built in %.2f s; "
	       "target '%s' saw %" PRIu64 " ingests, %" PRIu64 " files, %" PRIu64 " keys, %" PRIu64
	       " bytes, checksum %016" PRIx64 ", %" PRIuFAST64 " scans; check-index: %" PRIu64
	       " found: OK\n", gen.rows, INDEX, res.index_keys, res.seconds, bf_target_kind(target),
	       ct->ingests, ct->files, ct->keys, ct->bytes, ct->checksum,
	       atomic_load(&ct->scans), check.found);
	/* Each index entry is ingested once, so what went through the target
	 * is what the index holds now, byte for byte. */
	if (ct->ingests == 0 || ct->keys != stored.keys || ct->bytes != stored.bytes ||
	    ct->checksum != stored.checksum || ct->keys != res.index_keys) {
		fprintf(stderr, "custom_target: the target ingested %" PRIu64 " keys (checksum %016"
			PRIx64 "), the index holds %" PRIu64 " (checksum %016" PRIx64 "), the job "
			"reports %" PRIu64 "\n", ct->keys, ct->checksum, stored.keys,
			stored.checksum, res.index_keys);
		goto out;
	}
	status = 0;
out:
	bf_target_destroy(own);
	bf_target_destroy(target);
	bf_store_close(st);
	/* The store, its sort directory ("<store>.sort") and the scratch
	 * directories. */
	if (!scratch_remove("custom_target", scratch))
		status = 1;
	return status;
}
