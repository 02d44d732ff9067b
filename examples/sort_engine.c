/*
 * sort_engine: bfill's local sort engine on its own (include/bfill/engine.h).
 *
 *   sort_engine [SCRATCH_DIR [KEYS]]
 *
 * An external sort in three handles:
 *   bf_sortbuf  a fixed memory budget of key-values, sorted in place;
 *   bf_engine   a directory of sorted runs (each a sort buffer written out);
 *   bf_merge    every run, plus buffers still in memory, read in key order.
 *
 * KEYS (default 300000) random keys go into a 1 MiB buffer; each time it is
 * full it becomes a run. The runs are then merged down to a few (what a
 * build does so a merge opens a bounded number of files however small its
 * budget), and everything is read back through one merge together with the
 * last buffer, which never goes to disk. The program checks that the keys
 * come back in strictly increasing order, each with its own value, none
 * lost, and prints one line of figures.
 *
 * The engine lives in a fresh directory made under SCRATCH_DIR (default
 * $TMPDIR, else /tmp) and removed at the end. Exit status 0 on success, 1
 * with one line on stderr on any failure (2: bad usage).
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw: scratch.h */

#include <bfill/engine.h>
#include <bfill/error.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "scratch.h"

#define BUDGET (1u << 20) /* the smallest budget the engine takes */
#define KEY_LEN 12        /* 8 random bytes, then the key's number */
#define MAX_RUNS 4        /* runs left for the final merge */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: cheap, and the same keys on every run. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545F4914F6CDD1DULL;
}

/*
 * Key i: 8 random bytes, then i as 4 big-endian bytes. The suffix makes
 * every key unique (the merge returns a key present twice only once, so
 * duplicates would look like lost keys) and lets the reader check that
 * each key came back with its own value.
 */
static void make_key(uint64_t *state, uint32_t i, uint8_t key[KEY_LEN])
{
	uint64_t r = next_random(state);
	memcpy(key, &r, 8);
	key[8] = (uint8_t)(i >> 24);
	key[9] = (uint8_t)(i >> 16);
	key[10] = (uint8_t)(i >> 8);
	key[11] = (uint8_t)i;
}

static uint32_t key_number(const uint8_t *key)
{
	return (uint32_t)key[8] << 24 | (uint32_t)key[9] << 16 | (uint32_t)key[10] << 8 | key[11];
}

static int fail(const char *what, const bf_err *err)
{
	fprintf(stderr, "sort_engine: %s: %s\n", what, bf_err_text(err));
	return 1;
}

int main(int argc, char **argv)
{
	char scratch[PATH_MAX], engine_dir[PATH_MAX];
	bf_sortbuf *buf = NULL;
	bf_engine *engine = NULL;
	bf_merge *merge = NULL;
	bf_err err = { 0 };
	uint64_t nkeys = 300000, state = 42, seen = 0, runs_written;
	uint8_t key[KEY_LEN], prev[KEY_LEN];
	double t0, t_load, t_reduce, t_merge;
	int status = 1;

	if (argc > 3 || (argc == 3 && (sscanf(argv[2], "%" SCNu64, &nkeys) != 1 || nkeys == 0 ||
				       nkeys > UINT32_MAX))) {
		fprintf(stderr, "usage: sort_engine [SCRATCH_DIR [KEYS]]\n");
		return 2;
	}
	if (!scratch_make("sort_engine", argc > 1 ? argv[1] : NULL, "bfill-sort", scratch))
		return 1;
	if (!scratch_path(engine_dir, scratch, "engine")) {
		fprintf(stderr, "sort_engine: path too long under %s\n", scratch);
		goto out;
	}

	/* One buffer, allocated once and reused for every run. */
	if (bf_sortbuf_create(BUDGET, &buf, &err)) {
		status = fail("sort buffer", &err);
		goto out;
	}
	/* Creates the directory (an engine opened on one that has runs picks
	 * them up: that is how a build resumes). */
	if (bf_engine_open(engine_dir, &(bf_engine_opts){ .run_compression = BF_COMPRESS_NONE },
			   &engine, &err)) {
		status = fail(engine_dir, &err);
		goto out;
	}

	/* Load: a full buffer is written as a run (sorted, synced, and reset
	 * for reuse), and the key that did not fit goes in again. */
	t0 = now_s();
	for (uint32_t i = 0; i < nkeys; i++) {
		uint64_t value = i;
		make_key(&state, i, key);
		if (bf_sortbuf_add(buf, key, sizeof(key), &value, sizeof(value)))
			continue;
		if (bf_engine_write_run(engine, buf, &err)) {
			status = fail("writing a run", &err);
			goto out;
		}
		if (!bf_sortbuf_add(buf, key, sizeof(key), &value, sizeof(value))) {
			fprintf(stderr, "sort_engine: one key does not fit an empty buffer\n");
			goto out;
		}
	}
	runs_written = bf_engine_runs(engine);
	t_load = now_s() - t0;

	/* Fewer, longer runs: a merge then opens at most MAX_RUNS files. */
	t0 = now_s();
	if (bf_engine_reduce(engine, MAX_RUNS, NULL, &err)) {
		status = fail("reducing the runs", &err);
		goto out;
	}
	t_reduce = now_s() - t0;

	/* The last buffer joins the merge as it is, sorted but never written:
	 * a build does the same with its writers' buffers at the end. */
	t0 = now_s();
	bf_sortbuf_sort(buf);
	if (bf_merge_open(&engine, 1, &buf, 1, NULL, 0, NULL, 0, &merge, &err)) {
		status = fail("opening the merge", &err);
		goto out;
	}
	for (; bf_merge_valid(merge); seen++) {
		const uint8_t *k, *v;
		size_t klen, vlen;
		uint64_t value;

		bf_merge_get(merge, &k, &klen, &v, &vlen);
		if (klen != KEY_LEN || vlen != sizeof(value)) {
			fprintf(stderr, "sort_engine: entry %" PRIu64 " has a %zu-byte key and a "
				"%zu-byte value\n", seen, klen, vlen);
			goto out;
		}
		if (seen > 0 && memcmp(prev, k, KEY_LEN) >= 0) {
			fprintf(stderr, "sort_engine: entry %" PRIu64 " is out of order\n", seen);
			goto out;
		}
		memcpy(&value, v, sizeof(value));
		if (value != key_number(k)) {
			fprintf(stderr, "sort_engine: key %u came back with the value of key %"
				PRIu64 "\n", key_number(k), value);
			goto out;
		}
		memcpy(prev, k, KEY_LEN);
		if (bf_merge_next(merge, &err)) {
			status = fail("merging", &err);
			goto out;
		}
	}
	t_merge = now_s() - t0;
	if (seen != nkeys) {
		fprintf(stderr, "sort_engine: %" PRIu64 " keys put in, %" PRIu64 " read back\n",
			nkeys, seen);
		goto out;
	}

	printf("sort_engine: %" PRIu64 " keys, budget %u KiB: %" PRIu64 " runs written, %" PRIu64
	       " after reduce (%.1f MB); load %.3f s, reduce %.3f s, merge %.3f s "
	       "(%.2f M keys/s); in order, none lost\n",
	       nkeys, BUDGET >> 10, runs_written, bf_engine_runs(engine),
	       (double)bf_engine_bytes(engine) / 1e6, t_load, t_reduce, t_merge,
	       (double)nkeys / (t_merge > 0 ? t_merge : 1e-9) / 1e6);
	status = 0;
out:
	bf_merge_close(merge);
	/* Closes the engine and deletes its directory (scratch_remove gets
	 * whatever a failed open left). */
	if (engine && bf_engine_remove(engine, engine_dir, &err) && status == 0)
		status = fail("removing the engine", &err);
	bf_sortbuf_destroy(buf);
	if (!scratch_remove("sort_engine", scratch))
		status = 1;
	return status;
}
