/*
 * `bfill gen`: loads a sysbench sbtest table. Rows are produced in handle
 * order by several threads, each writing sorted SSTs for its own handle
 * range; all files are then ingested into the store in one atomic step, so
 * a failed load leaves the store exactly as it was.
 * Depends on codec, engine (sst, catalog), ingest (target) and util.
 */
#include "bfill/gen.h"
#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "pipeline/load_impl.h"
#include "util/util.h"

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* SSTs are cut at this many raw bytes so that no file is unwieldy. */
#define GEN_FILE_BYTES (256ULL << 20)
/* An SST stores each entry's three lengths (up to 4 bytes here) and only
 * the bytes of its key not shared with the previous key (2 of a record
 * key's 19), which pays for restart points and index blocks: so key +
 * value + 4 bounds a row from above (211 bytes measured, 220 bounded). */
#define GEN_SST_ENTRY_LENGTHS 4
#define GEN_MAX_THREADS 64
#define DIGITS_PER_GROUP 11

typedef struct gen_shared {
	const bf_gen_opts *opts;
	int64_t table_id;
	char tmpdir[PATH_MAX];
	atomic_uint_fast64_t rows_done;
	atomic_int failed;
} gen_shared;

typedef struct gen_worker {
	gen_shared *sh;
	int index;
	int64_t first, last; /* handles, inclusive */
	char **files;
	size_t nfiles, cap;
	uint64_t bytes;
	bf_err err;
	int rc;
	pthread_t thread;
} gen_worker;

/* Uniform digits from a 64-bit fraction: multiplying by 10 moves the next
 * decimal digit of r/2^64 into the high half. */
static void digit_groups(uint64_t *state, char *out, int groups)
{
	uint64_t r = 0;
	int left = 0;

	for (int g = 0; g < groups; g++) {
		if (g)
			*out++ = '-';
		for (int d = 0; d < DIGITS_PER_GROUP; d++) {
			if (left == 0) {
				r = bf_splitmix64(state);
				left = 16; /* well under log10(2^64), keeps digits unbiased */
			}
			unsigned __int128 m = (unsigned __int128)r * 10;
			*out++ = (char)('0' + (int)(m >> 64));
			r = (uint64_t)m;
			left--;
		}
	}
}

void bf_gen_sbtest_row(uint64_t seed, int64_t handle, uint64_t rows, int64_t *k,
		       char c[BF_SBTEST_C_LEN], char pad[BF_SBTEST_PAD_LEN])
{
	/* Each row has its own stream, so the data does not depend on how
	 * handles are split between threads. */
	uint64_t state = seed ^ ((uint64_t)handle * 0xD1B54A32D192ED03ULL);
	uint64_t r = bf_splitmix64(&state);
	*k = rows ? (int64_t)(r % rows) + 1 : 0;
	digit_groups(&state, c, 10);
	digit_groups(&state, pad, 5);
}

/* A row's columns but its handle, as bf_codec_row_encode takes them. */
static void sbtest_cols(bf_row_col cols[3], int64_t k, const char *c, const char *pad)
{
	cols[0] = (bf_row_col){ 2, bf_datum_int(k) };
	cols[1] = (bf_row_col){ 3, bf_datum_bytes(c, BF_SBTEST_C_LEN) };
	cols[2] = (bf_row_col){ 4, bf_datum_bytes(pad, BF_SBTEST_PAD_LEN) };
}

/* An upper bound on the bytes a load of `rows` rows leaves in the store,
 * uncompressed: each row as its widest (k, in [1, rows], at its largest). */
static uint64_t load_bytes(uint64_t rows)
{
	char c[BF_SBTEST_C_LEN] = { 0 }, pad[BF_SBTEST_PAD_LEN] = { 0 };
	bf_row_col cols[3];
	uint64_t per_row;

	sbtest_cols(cols, rows > INT64_MAX ? INT64_MAX : (int64_t)rows, c, pad);
	per_row = BF_RECORD_KEY_LEN + bf_codec_row_len(cols, 3) + GEN_SST_ENTRY_LENGTHS;
	return rows > UINT64_MAX / per_row ? UINT64_MAX : rows * per_row;
}

static int add_file(gen_worker *w, const char *path)
{
	if (w->nfiles == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		char **f = realloc(w->files, cap * sizeof(*f));
		if (!f)
			return BF_ENOMEM;
		w->files = f;
		w->cap = cap;
	}
	w->files[w->nfiles] = strdup(path);
	if (!w->files[w->nfiles])
		return BF_ENOMEM;
	w->nfiles++;
	return 0;
}

static void *gen_thread(void *arg)
{
	gen_worker *w = arg;
	gen_shared *sh = w->sh;
	const bf_gen_opts *o = sh->opts;
	bf_sst_writer *sst = NULL;
	uint8_t key[BF_RECORD_KEY_LEN], val[512];
	char c[BF_SBTEST_C_LEN], pad[BF_SBTEST_PAD_LEN], path[PATH_MAX];
	int order[3];
	uint64_t pending = 0;
	int rc = 0;

	for (int64_t h = w->first; h <= w->last; h++) {
		if (!sst) {
			snprintf(path, sizeof(path), "%s/%02d-%06zu.sst", sh->tmpdir, w->index, w->nfiles);
			rc = bf_sst_writer_open(path, o->compression, 0, &sst, &w->err);
			if (rc)
				goto out;
		}
		int64_t k;
		bf_gen_sbtest_row(o->seed, h, o->rows, &k, c, pad);
		bf_row_col cols[3];
		sbtest_cols(cols, k, c, pad);
		long vlen = bf_codec_row_encode(val, cols, 3, order);
		if (vlen < 0) {
			rc = bf_errf(&w->err, (int)vlen, "row %" PRId64 ": encode failed", h);
			goto out;
		}
		bf_codec_record_key(key, sh->table_id, h);
		rc = bf_sst_writer_put(sst, key, sizeof(key), val, (size_t)vlen, &w->err);
		if (rc)
			goto out;
		w->bytes += sizeof(key) + (size_t)vlen;
		if (++pending == 4096) {
			atomic_fetch_add(&sh->rows_done, pending);
			pending = 0;
			if (atomic_load(&sh->failed)) {
				rc = BF_ECANCELLED;
				goto out;
			}
		}
		if (bf_sst_writer_raw_bytes(sst) >= GEN_FILE_BYTES || h == w->last) {
			rc = bf_sst_writer_finish(sst, NULL, &w->err);
			if (rc == 0)
				rc = add_file(w, path);
			bf_sst_writer_destroy(sst);
			sst = NULL;
			if (rc)
				goto out;
		}
	}
out:
	atomic_fetch_add(&sh->rows_done, pending);
	bf_sst_writer_destroy(sst);
	if (rc) {
		if (!w->err.code)
			bf_errf(&w->err, rc, "generator: %s", bf_strerror(rc));
		atomic_store(&sh->failed, 1);
	}
	w->rc = rc;
	return NULL;
}

/*
 * True for "bfill-gen.<pid>[.<n>].tmp" and "bfill-load.<pid>[.<n>].tmp"
 * of a process other than this one: a load's scratch directory (see
 * place_scratch_dir).
 */
static bool stale_scratch(const char *name)
{
	static const char *const tags[] = { "bfill-gen.", "bfill-load." };
	size_t n = strlen(name);

	if (n < 4 || strcmp(name + n - 4, ".tmp"))
		return false;
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		size_t tl = strlen(tags[i]);
		if (!strncmp(name, tags[i], tl))
			return strtol(name + tl, NULL, 10) != (long)getpid();
	}
	return false;
}

static void remove_stale_tmp(const char *parent)
{
	DIR *d = opendir(parent);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!stale_scratch(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
		bf_rmtree(path, NULL);
	}
	closedir(d);
}

int place_scratch_dir(const bf_gen_place *pl, const char *tag, char *out, size_t cap,
		      bf_err *err)
{
	static atomic_uint made;
	unsigned n = atomic_fetch_add(&made, 1);
	int rc;

	if (pl->tmp_parent_is_ours)
		remove_stale_tmp(pl->tmp_parent);
	if (n == 0)
		snprintf(out, cap, "%s/bfill-%s.%d.tmp", pl->tmp_parent, tag, (int)getpid());
	else
		snprintf(out, cap, "%s/bfill-%s.%d.%u.tmp", pl->tmp_parent, tag, (int)getpid(), n);
	/* One left by an earlier process with this pid is stale too. */
	rc = bf_rmtree(out, err);
	return rc ? rc : bf_mkdirs(out, err);
}

static int store_room(void *arg, uint64_t bytes, const char *to_do, bf_err *err)
{
	return bf_store_check_free(arg, bytes, to_do, err);
}

void bf_gen_place_store(bf_store *st, bf_target *t, bf_gen_place *pl)
{
	*pl = (bf_gen_place){
		.catalog = bf_store_catalog(st), .target = t, .tmp_parent = bf_store_path(st),
		/* This process holds the store's write lock, so any generator
		 * scratch directory in it belongs to a load that was killed. */
		.tmp_parent_is_ours = true,
		.check_room = store_room, .check_arg = st,
	};
}

int bf_gen_sbtest(bf_store *st, const bf_gen_opts *opts, bf_gen_stats *stats,
		  bf_err *err)
{
	bf_target *t = NULL;
	int rc = bf_target_local_create(st, &t, err);
	bf_gen_place pl;

	bf_gen_place_store(st, t, &pl);

	memset(stats, 0, sizeof(*stats));
	if (rc == 0)
		rc = bf_gen_sbtest_in(&pl, opts, stats, err);
	bf_target_destroy(t);
	return rc;
}

int bf_gen_sbtest_in(const bf_gen_place *pl, const bf_gen_opts *opts, bf_gen_stats *stats,
		     bf_err *err)
{
	gen_shared sh = { .opts = opts };
	gen_worker *workers = NULL;
	const char **files = NULL;
	bf_table t;
	const char *name = opts->table ? opts->table : "sbtest1";
	char to_do[64];
	int nthreads = opts->threads > 0 ? opts->threads : bf_ncpu();
	int started = 0, rc;
	size_t nfiles = 0;
	int64_t t0 = bf_now_ns();

	memset(stats, 0, sizeof(*stats));
	if (!bf_name_valid(name))
		return bf_errf(err, BF_EINVAL, "bad table name: 1..%d characters, no control"
			       " characters, no trailing space", BF_NAME_CHARS);
	rc = bf_catalog_get_table(pl->catalog, name, &t, err);
	if (rc == 0)
		return bf_errf(err, BF_EEXIST, "table '%s' already exists", name);
	if (rc != BF_ENOTFOUND)
		return rc;
	/* Refused before any work: a load that cannot fit would otherwise
	 * run until the disk is full. */
	snprintf(to_do, sizeof(to_do), "load %" PRIu64 " rows", opts->rows);
	rc = pl->check_room ? pl->check_room(pl->check_arg, load_bytes(opts->rows), to_do, err) : 0;
	if (rc)
		return rc;
	if (nthreads > GEN_MAX_THREADS)
		nthreads = GEN_MAX_THREADS;
	if ((uint64_t)nthreads > opts->rows)
		nthreads = opts->rows ? (int)opts->rows : 1;

	rc = place_scratch_dir(pl, "gen", sh.tmpdir, sizeof(sh.tmpdir), err);
	if (rc)
		return rc;
	bf_table_sbtest(&t, name);
	/* Ids are only consumed once the load is known to be worth doing. */
	rc = bf_catalog_next_id(pl->catalog, "table", &t.id, err);
	if (rc)
		goto out;
	sh.table_id = t.id;

	workers = calloc((size_t)nthreads, sizeof(*workers));
	if (!workers) {
		rc = bf_errf(err, BF_ENOMEM, "generator: out of memory");
		goto out;
	}
	if (opts->rows > 0) {
		uint64_t per = opts->rows / (uint64_t)nthreads, extra = opts->rows % (uint64_t)nthreads;
		int64_t next = 1;
		for (int i = 0; i < nthreads; i++) {
			gen_worker *w = &workers[i];
			w->sh = &sh;
			w->index = i;
			w->first = next;
			w->last = next + (int64_t)(per + ((uint64_t)i < extra)) - 1;
			next = w->last + 1;
			if (pthread_create(&w->thread, NULL, gen_thread, w)) {
				rc = bf_errf(err, BF_ENOMEM, "generator: cannot start thread");
				atomic_store(&sh.failed, 1);
				break;
			}
			started++;
		}
		/* Short naps so the load ends when the rows do, not on a tick. */
		int64_t last = 0;
		for (;;) {
			uint64_t done = atomic_load(&sh.rows_done);
			bool over = done >= opts->rows || atomic_load(&sh.failed);
			if (opts->progress && (over || bf_now_ms() - last >= 100)) {
				opts->progress(done, opts->rows, opts->progress_arg);
				last = bf_now_ms();
			}
			if (over)
				break;
			bf_sleep_ms(5);
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	/* The first real failure explains the others' cancellations. */
	for (int i = 0; i < started; i++) {
		if (workers[i].rc && (rc == 0 || rc == BF_ECANCELLED)) {
			rc = workers[i].rc;
			if (err)
				*err = workers[i].err;
		}
	}
	if (rc)
		goto out;

	for (int i = 0; i < started; i++) {
		nfiles += workers[i].nfiles;
		stats->bytes += workers[i].bytes;
	}
	files = calloc(nfiles ? nfiles : 1, sizeof(*files));
	if (!files) {
		rc = bf_errf(err, BF_ENOMEM, "generator: out of memory");
		goto out;
	}
	nfiles = 0;
	for (int i = 0; i < started; i++)
		for (size_t f = 0; f < workers[i].nfiles; f++)
			files[nfiles++] = workers[i].files[f];
	rc = bf_target_ingest(pl->target, files, nfiles, NULL, err);
	if (rc)
		goto out;
	t.rows_hint = opts->rows;
	rc = bf_catalog_put_table(pl->catalog, &t, err);
	if (rc) {
		/* Without its catalog record the data would be unreachable. */
		uint8_t lo[BF_TABLE_PREFIX_LEN], hi[BF_TABLE_PREFIX_LEN];
		bf_codec_table_prefix(lo, t.id);
		bf_codec_table_prefix(hi, t.id + 1);
		bf_target_delete_range(pl->target, lo, sizeof(lo), hi, sizeof(hi), NULL);
		goto out;
	}
	stats->table_id = t.id;
	stats->rows = opts->rows;
	stats->files = nfiles;
out:
	if (workers) {
		for (int i = 0; i < nthreads; i++) {
			for (size_t f = 0; f < workers[i].nfiles; f++)
				free(workers[i].files[f]);
			free(workers[i].files);
		}
	}
	free(workers);
	free(files);
	bf_rmtree(sh.tmpdir, NULL);
	stats->seconds = (double)(bf_now_ns() - t0) / 1e9;
	return rc;
}
