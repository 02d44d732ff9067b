/*
 * The sort engine: a RocksDB directory that receives sorted runs as
 * ingested SST files and is read back, merged, in key order. Tuned so that
 * building never stalls: no memtable writes, no automatic compaction, no
 * L0 write limits. A sample of keys (every SAMPLE_EVERY-th key of every
 * run) is kept beside the database so the import can be split into equal
 * parts for parallel export.
 * Depends on engine/rdb, engine/sortbuf, engine/sst and util.
 */
#include "bfill/engine.h"
#include "bfill/fault.h"
#include "engine/rdb.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAMPLE_EVERY 512
#define SAMPLES_FILE "samples.bin"
#define DEFAULT_CACHE (8u << 20)
#define RUN_BLOCK_SIZE (32u << 10)
#define MERGE_READAHEAD_TOTAL (16u << 20) /* per merging iterator */
#define MERGE_READAHEAD_MAX (2u << 20)
#define MERGE_READAHEAD_MIN (64u << 10)

typedef struct sample {
	uint8_t *key;
	size_t len;
} sample;

struct bf_engine {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *table_opts;
	bf_compression run_compression;
	char dir[PATH_MAX];
	atomic_uint_fast64_t bytes, keys, runs, seq;

	pthread_mutex_t sample_mu; /* guards samples and the samples file */
	sample *samples;
	size_t nsamples, sample_cap;
	FILE *sample_file;
};

static int add_sample(bf_engine *e, const uint8_t *key, size_t len)
{
	if (e->nsamples == e->sample_cap) {
		size_t cap = e->sample_cap ? e->sample_cap * 2 : 256;
		sample *s = realloc(e->samples, cap * sizeof(*s));
		if (!s)
			return BF_ENOMEM;
		e->samples = s;
		e->sample_cap = cap;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return BF_ENOMEM;
	memcpy(copy, key, len);
	e->samples[e->nsamples].key = copy;
	e->samples[e->nsamples].len = len;
	e->nsamples++;
	return 0;
}

/* Samples only steer load balancing, so a short or damaged file is
 * read as far as it is intact. */
static void load_samples(bf_engine *e)
{
	char path[PATH_MAX];
	uint8_t buf[65536];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", e->dir, SAMPLES_FILE);
	f = fopen(path, "rb");
	if (!f)
		return;
	for (;;) {
		uint8_t hdr[2];
		if (fread(hdr, 1, 2, f) != 2)
			break;
		size_t len = (size_t)hdr[0] | ((size_t)hdr[1] << 8);
		if (fread(buf, 1, len, f) != len || add_sample(e, buf, len))
			break;
	}
	fclose(f);
}

static uint64_t prop_u64(rocksdb_t *db, const char *name)
{
	char *v = rocksdb_property_value(db, name);
	uint64_t n = v ? strtoull(v, NULL, 10) : 0;
	free(v);
	return n;
}

int bf_engine_open(const char *dir, const bf_engine_opts *opts, bf_engine **out, bf_err *err)
{
	bf_engine *e = calloc(1, sizeof(*e));
	char *errptr = NULL, path[PATH_MAX];
	int rc;

	*out = NULL;
	if (!e)
		return bf_errf(err, BF_ENOMEM, "engine: out of memory");
	pthread_mutex_init(&e->sample_mu, NULL);
	snprintf(e->dir, sizeof(e->dir), "%s", dir);
	e->run_compression = opts ? opts->run_compression : BF_COMPRESS_NONE;
	rc = bf_mkdirs(dir, err);
	if (rc)
		goto out;
	e->opts = rocksdb_options_create();
	e->cache = rocksdb_cache_create_lru(opts && opts->block_cache ? opts->block_cache : DEFAULT_CACHE);
	e->table_opts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(e->table_opts, e->cache);
	rocksdb_options_set_block_based_table_factory(e->opts, e->table_opts);
	bf_rdb_ingest_only_options(e->opts);
	e->db = rocksdb_open(e->opts, dir, &errptr);
	if (errptr) {
		rc = bf_rdb_open_err(errptr, "sort dir", dir, err);
		goto out;
	}
	atomic_store(&e->bytes, prop_u64(e->db, "rocksdb.total-sst-files-size"));
	atomic_store(&e->keys, prop_u64(e->db, "rocksdb.estimate-num-keys"));
	load_samples(e);
	snprintf(path, sizeof(path), "%s/%s", dir, SAMPLES_FILE);
	e->sample_file = fopen(path, "ab");
	if (!e->sample_file)
		rc = bf_errf(err, -errno, "engine %s: %s", path, strerror(errno));
out:
	if (rc) {
		bf_engine_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

void bf_engine_close(bf_engine *e)
{
	if (!e)
		return;
	if (e->sample_file)
		fclose(e->sample_file);
	if (e->db)
		rocksdb_close(e->db);
	if (e->opts)
		rocksdb_options_destroy(e->opts);
	if (e->table_opts)
		rocksdb_block_based_options_destroy(e->table_opts);
	if (e->cache)
		rocksdb_cache_destroy(e->cache);
	for (size_t i = 0; i < e->nsamples; i++)
		free(e->samples[i].key);
	free(e->samples);
	pthread_mutex_destroy(&e->sample_mu);
	free(e);
}

int bf_engine_remove(bf_engine *e, const char *dir, bf_err *err)
{
	char copy[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s", e ? e->dir : dir);
	bf_engine_close(e);
	return bf_rmtree(copy, err);
}

const char *bf_engine_dir(const bf_engine *e) { return e->dir; }
uint64_t bf_engine_bytes(const bf_engine *e) { return atomic_load(&e->bytes); }
uint64_t bf_engine_keys(const bf_engine *e) { return atomic_load(&e->keys); }
uint64_t bf_engine_runs(const bf_engine *e) { return atomic_load(&e->runs); }

/* Writes the sorted buffer to path, skipping repeated keys, and records
 * every SAMPLE_EVERY-th key as a sample. */
static int write_run_file(bf_engine *e, bf_sortbuf *b, const char *path, uint64_t *size,
			  uint64_t *keys, bf_err *err)
{
	bf_sst_writer *w = NULL;
	const uint8_t *prev = NULL;
	size_t prevlen = 0, n = bf_sortbuf_count(b);
	int rc;

	rc = bf_sst_writer_open(path, e->run_compression, RUN_BLOCK_SIZE, &w, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *k, *v;
		size_t kl, vl;
		/* Entries are scattered over the buffer in sorted order. */
		bf_sortbuf_prefetch(b, i + 8);
		bf_sortbuf_get(b, i, &k, &kl, &v, &vl);
		/* A re-scanned row yields the very same key; keep one. */
		if (prev && kl == prevlen && memcmp(k, prev, kl) == 0)
			continue;
		rc = bf_sst_writer_put(w, k, kl, v, vl, err);
		if (rc)
			goto out;
		if (i % SAMPLE_EVERY == 0) {
			pthread_mutex_lock(&e->sample_mu);
			rc = add_sample(e, k, kl);
			if (rc == 0) {
				uint8_t hdr[2] = { (uint8_t)kl, (uint8_t)(kl >> 8) };
				fwrite(hdr, 1, 2, e->sample_file);
				fwrite(k, 1, kl, e->sample_file);
			}
			pthread_mutex_unlock(&e->sample_mu);
			if (rc) {
				rc = bf_errf(err, rc, "engine: out of memory for samples");
				goto out;
			}
		}
		prev = k;
		prevlen = kl;
	}
	*keys = bf_sst_writer_keys(w);
	rc = bf_sst_writer_finish(w, size, err);
out:
	bf_sst_writer_destroy(w);
	return rc;
}

int bf_engine_write_run(bf_engine *e, bf_sortbuf *b, bf_err *err)
{
	char path[PATH_MAX], *errptr = NULL;
	const char *paths[1] = { path };
	rocksdb_ingestexternalfileoptions_t *io = NULL;
	uint64_t size = 0, keys = 0;
	int rc = 0;

	if (bf_sortbuf_count(b) == 0)
		return 0;
	if (bf_fault_hit("engine.write"))
		return bf_errf(err, BF_EFAULT, "engine %s: injected write failure", e->dir);
	bf_sortbuf_sort(b);
	snprintf(path, sizeof(path), "%s/run-%d-%llu.sst", e->dir, (int)getpid(),
		 (unsigned long long)atomic_fetch_add(&e->seq, 1));
	rc = write_run_file(e, b, path, &size, &keys, err);
	if (rc)
		goto out;
	pthread_mutex_lock(&e->sample_mu);
	fflush(e->sample_file);
	pthread_mutex_unlock(&e->sample_mu);
	if (bf_fault_hit("engine.ingest")) {
		rc = bf_errf(err, BF_EFAULT, "engine %s: injected ingest failure", e->dir);
		goto out;
	}
	io = rocksdb_ingestexternalfileoptions_create();
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	rocksdb_ingest_external_file(e->db, paths, 1, io, &errptr);
	rc = bf_rdb_err(errptr, err, "engine ingest");
	if (rc)
		goto out;
	atomic_fetch_add(&e->bytes, size);
	atomic_fetch_add(&e->keys, keys);
	atomic_fetch_add(&e->runs, 1);
	bf_sortbuf_reset(b);
out:
	if (io)
		rocksdb_ingestexternalfileoptions_destroy(io);
	if (rc)
		unlink(path);
	return rc;
}

static int cmp_sample(const void *a, const void *b)
{
	const sample *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

int bf_engine_split_keys(bf_engine *const *engines, int nengines, bf_sortbuf *const *extra,
			 int nextra, int n, size_t strip, uint8_t ***keys, size_t **lens, int *nkeys,
			 bf_err *err)
{
	uint8_t **out = NULL;
	size_t *outlen = NULL;
	sample *all = NULL;
	size_t nall = 0, cap = 0;
	int count = 0, rc = 0;

	*keys = NULL;
	*lens = NULL;
	*nkeys = 0;
	if (n <= 1)
		return 0;
	/* Every engine's samples stay locked until the split keys are copied:
	 * they are borrowed below. */
	for (int e = 0; e < nengines; e++) {
		pthread_mutex_lock(&engines[e]->sample_mu);
		cap += engines[e]->nsamples;
	}
	for (int x = 0; x < nextra; x++)
		cap += bf_sortbuf_count(extra[x]) / SAMPLE_EVERY + 1;
	all = malloc((cap ? cap : 1) * sizeof(*all));
	out = calloc((size_t)n, sizeof(*out));
	outlen = calloc((size_t)n, sizeof(*outlen));
	if (!all || !out || !outlen) {
		rc = bf_errf(err, BF_ENOMEM, "engine: out of memory");
		goto out;
	}
	/* Borrowed pointers: the engines' samples and the sorted buffers both
	 * outlive this function's use of them. */
	for (int e = 0; e < nengines; e++) {
		if (engines[e]->nsamples)
			memcpy(all + nall, engines[e]->samples, engines[e]->nsamples * sizeof(*all));
		nall += engines[e]->nsamples;
	}
	for (int x = 0; x < nextra; x++) {
		for (size_t i = 0; i < bf_sortbuf_count(extra[x]); i += SAMPLE_EVERY) {
			const uint8_t *k, *v;
			size_t kl, vl;
			bf_sortbuf_get(extra[x], i, &k, &kl, &v, &vl);
			all[nall].key = (uint8_t *)k;
			all[nall].len = kl;
			nall++;
		}
	}
	qsort(all, nall, sizeof(*all), cmp_sample);
	for (int i = 1; i < n && nall > 0; i++) {
		const sample *s = &all[nall * (size_t)i / (size_t)n];
		size_t len = s->len > strip ? s->len - strip : 0;
		if (len == 0)
			continue;
		/* Equal split keys would make an empty part. */
		if (count && outlen[count - 1] == len && !memcmp(out[count - 1], s->key, len))
			continue;
		out[count] = malloc(len);
		if (!out[count]) {
			rc = bf_errf(err, BF_ENOMEM, "engine: out of memory");
			goto out;
		}
		memcpy(out[count], s->key, len);
		outlen[count++] = len;
	}
out:
	for (int e = 0; e < nengines; e++)
		pthread_mutex_unlock(&engines[e]->sample_mu);
	free(all);
	if (rc) {
		for (int i = 0; i < count; i++)
			free(out[i]);
		free(out);
		free(outlen);
		return rc;
	}
	*keys = out;
	*lens = outlen;
	*nkeys = count;
	return 0;
}

int bf_engine_iter(bf_engine *e, const void *lo, size_t lolen, const void *hi, size_t hilen,
		   bf_store_iter **out, bf_err *err)
{
	/* One pass in key order over files much larger than the cache. The
	 * readahead buffer is per run file, so a merge of many runs (a small
	 * memory budget makes many) shares a fixed total instead. */
	uint64_t runs = atomic_load(&e->runs), ra = MERGE_READAHEAD_TOTAL / (runs ? runs : 1);
	if (ra > MERGE_READAHEAD_MAX)
		ra = MERGE_READAHEAD_MAX;
	if (ra < MERGE_READAHEAD_MIN)
		ra = MERGE_READAHEAD_MIN;
	return bf_rdb_iter_create(e->db, NULL, lo, lolen, hi, hilen, (size_t)ra, false, out, err);
}
