/*
 * The sort engine: a directory of sorted runs (engine/run.h), each written
 * whole from a sort buffer and renamed into place, and read back merged
 * (engine/merge.c) by the import. A run is there under its name or not at
 * all, so a crash leaves at most a *.tmp file, removed at the next open. A
 * sample of keys (every SAMPLE_EVERY-th key of every run) is kept beside
 * the runs so the import can be split into equal parts for parallel
 * export.
 * Depends on engine/run, engine/sortbuf and util.
 */
#include "engine/engine_impl.h"
#include "bfill/fault.h"
#include "util/util.h"

#include <dirent.h>
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
#define RUN_SUFFIX ".run"
#define TMP_SUFFIX ".tmp"

typedef struct sample {
	uint8_t *key;
	size_t len;
} sample;

struct bf_engine {
	bf_compression run_compression;
	char dir[PATH_MAX];
	atomic_uint_fast64_t bytes, keys, runs, seq;

	pthread_mutex_t run_mu;    /* guards the run list */
	run_info **run;            /* each allocated on its own: never moves */
	size_t nrun, run_cap;

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

static int add_run(bf_engine *e, run_info *ri, bf_err *err)
{
	run_info *copy = malloc(sizeof(*copy));
	int rc = 0;

	if (!copy)
		return bf_errf(err, BF_ENOMEM, "engine: out of memory");
	pthread_mutex_lock(&e->run_mu);
	if (e->nrun == e->run_cap) {
		size_t cap = e->run_cap ? e->run_cap * 2 : 16;
		run_info **r = realloc(e->run, cap * sizeof(*r));
		if (!r)
			rc = bf_errf(err, BF_ENOMEM, "engine: out of memory");
		else {
			e->run = r;
			e->run_cap = cap;
		}
	}
	if (rc == 0) {
		*copy = *ri;
		e->run[e->nrun++] = copy;
		atomic_fetch_add(&e->bytes, ri->size);
		atomic_fetch_add(&e->keys, ri->keys);
		atomic_fetch_add(&e->runs, 1);
	}
	pthread_mutex_unlock(&e->run_mu);
	if (rc) {
		free(copy);
		run_info_free(ri);
	}
	return rc;
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return n > k && strcmp(name + n - k, suffix) == 0;
}

/* Picks up the runs in dir; a *.tmp is a run whose writer died before it
 * was whole, and goes. A RocksDB directory is an older bfill's engine. */
static int load_runs(bf_engine *e, bf_err *err)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dh = opendir(e->dir);
	int rc = 0;

	if (!dh)
		return bf_errf(err, BF_EIO, "engine %s: %s", e->dir, strerror(errno));
	while (rc == 0 && (d = readdir(dh))) {
		snprintf(path, sizeof(path), "%s/%s", e->dir, d->d_name);
		if (!strcmp(d->d_name, "CURRENT"))
			rc = bf_errf(err, BF_ECORRUPT, "sort dir %s holds an engine of an older bfill; "
				     "remove it and run the job again", e->dir);
		else if (has_suffix(d->d_name, TMP_SUFFIX))
			unlink(path);
		else if (has_suffix(d->d_name, RUN_SUFFIX)) {
			/* New runs are named after every run there, even one this
			 * very process wrote into the directory before. */
			int pid;
			unsigned long long seq;
			if (sscanf(d->d_name, "run-%d-%llu", &pid, &seq) == 2 && seq >= atomic_load(&e->seq))
				atomic_store(&e->seq, seq + 1);
			run_info ri;
			rc = run_info_load(path, &ri, err);
			if (rc == 0)
				rc = add_run(e, &ri, err);
		}
	}
	closedir(dh);
	return rc;
}

int bf_engine_open(const char *dir, const bf_engine_opts *opts, bf_engine **out, bf_err *err)
{
	bf_engine *e = calloc(1, sizeof(*e));
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	if (!e)
		return bf_errf(err, BF_ENOMEM, "engine: out of memory");
	pthread_mutex_init(&e->sample_mu, NULL);
	pthread_mutex_init(&e->run_mu, NULL);
	snprintf(e->dir, sizeof(e->dir), "%s", dir);
	e->run_compression = opts ? opts->run_compression : BF_COMPRESS_NONE;
	rc = bf_mkdirs(dir, err);
	if (rc == 0)
		rc = load_runs(e, err);
	if (rc)
		goto out;
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
	for (size_t i = 0; i < e->nrun; i++) {
		run_info_free(e->run[i]);
		free(e->run[i]);
	}
	free(e->run);
	for (size_t i = 0; i < e->nsamples; i++)
		free(e->samples[i].key);
	free(e->samples);
	pthread_mutex_destroy(&e->sample_mu);
	pthread_mutex_destroy(&e->run_mu);
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

/* The name of a new run, and the name it is written under until whole. */
static void run_names(bf_engine *e, char path[PATH_MAX], char tmp[PATH_MAX])
{
	unsigned long long seq = (unsigned long long)atomic_fetch_add(&e->seq, 1);
	snprintf(path, PATH_MAX, "%s/run-%d-%llu%s", e->dir, (int)getpid(), seq, RUN_SUFFIX);
	snprintf(tmp, PATH_MAX, "%s/run-%d-%llu%s", e->dir, (int)getpid(), seq, TMP_SUFFIX);
}

/* Keeps a key as a split sample, in memory and in the samples file. */
static int keep_sample(void *arg, const uint8_t *k, size_t kl)
{
	bf_engine *e = arg;
	pthread_mutex_lock(&e->sample_mu);
	int rc = add_sample(e, k, kl);
	if (rc == 0) {
		uint8_t hdr[2] = { (uint8_t)kl, (uint8_t)(kl >> 8) };
		fwrite(hdr, 1, 2, e->sample_file);
		fwrite(k, 1, kl, e->sample_file);
	}
	pthread_mutex_unlock(&e->sample_mu);
	return rc;
}

int bf_engine_write_run(bf_engine *e, bf_sortbuf *b, bf_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	run_info ri;
	int rc;

	if (bf_sortbuf_count(b) == 0)
		return 0;
	if (bf_fault_hit("engine.write"))
		return bf_errf(err, BF_EFAULT, "engine %s: injected write failure", e->dir);
	bf_sortbuf_sort(b);
	run_names(e, path, tmp);
	/* A failure after the write leaves no run: the rename comes last. */
	if (bf_fault_hit("engine.ingest"))
		return bf_errf(err, BF_EFAULT, "engine %s: injected ingest failure", e->dir);
	rc = run_write(tmp, path, b, e->run_compression, SAMPLE_EVERY, keep_sample, e, &ri, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&e->sample_mu);
	fflush(e->sample_file);
	pthread_mutex_unlock(&e->sample_mu);
	rc = add_run(e, &ri, err);
	if (rc == 0)
		bf_sortbuf_reset(b);
	return rc;
}

/* Merges the n oldest runs into one new run, then drops them. A crash in
 * between leaves the same entries twice, which the merge reads once. */
static int merge_oldest(bf_engine *e, size_t n, volatile int *stop, bf_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	run_writer *rw = NULL;
	bf_merge *m = NULL;
	run_info ri;
	uint64_t steps = 0;
	int rc;

	run_names(e, path, tmp);
	rc = merge_open_runs(e->run, n, NULL, 0, NULL, 0, NULL, 0, &m, err);
	if (rc == 0)
		rc = run_writer_open(tmp, e->run_compression, SAMPLE_EVERY, NULL, NULL, &rw, err);
	while (rc == 0 && bf_merge_valid(m)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		if ((++steps & 1023) == 0 && stop && *stop) {
			rc = bf_errf(err, BF_ECANCELLED, "engine merge cancelled");
			break;
		}
		bf_merge_get(m, &k, &kl, &v, &vl);
		rc = run_writer_add(rw, k, kl, v, vl, err);
		if (rc == 0)
			rc = bf_merge_next(m, err);
	}
	bf_merge_close(m);
	if (rc) {
		run_writer_abort(rw);
		return rc;
	}
	rc = run_writer_finish(rw, path, &ri, err);
	if (rc)
		return rc;
	rc = add_run(e, &ri, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&e->run_mu);
	for (size_t i = 0; i < n; i++) {
		atomic_fetch_sub(&e->bytes, e->run[i]->size);
		atomic_fetch_sub(&e->keys, e->run[i]->keys);
		atomic_fetch_sub(&e->runs, 1);
		unlink(e->run[i]->path);
		run_info_free(e->run[i]);
		free(e->run[i]);
	}
	memmove(e->run, e->run + n, (e->nrun - n) * sizeof(*e->run));
	e->nrun -= n;
	pthread_mutex_unlock(&e->run_mu);
	return 0;
}

int bf_engine_reduce(bf_engine *e, size_t max_runs, volatile int *stop, bf_err *err)
{
	if (max_runs < 2)
		max_runs = 2;
	for (;;) {
		pthread_mutex_lock(&e->run_mu);
		size_t n = e->nrun;
		pthread_mutex_unlock(&e->run_mu);
		if (n <= max_runs)
			return 0;
		size_t take = n - max_runs + 1;
		int rc = merge_oldest(e, take < max_runs ? take : max_runs, stop, err);
		if (rc)
			return rc;
	}
}

int engine_runs(bf_engine *e, run_info ***out, size_t *n, bf_err *err)
{
	pthread_mutex_lock(&e->run_mu);
	*n = e->nrun;
	*out = malloc((e->nrun ? e->nrun : 1) * sizeof(**out));
	if (*out && e->nrun)
		memcpy(*out, e->run, e->nrun * sizeof(**out));
	pthread_mutex_unlock(&e->run_mu);
	if (!*out)
		return bf_errf(err, BF_ENOMEM, "engine: out of memory");
	return 0;
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
