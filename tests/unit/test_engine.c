/*
 * engine: the sort buffer's order against a reference sort over awkward
 * key shapes, runs in the engine (dedup, merge order, reopen), split keys,
 * and export (size/key caps, unique suffixes and duplicates, buffers
 * merged with runs).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/codec.h"
#include "bfill/engine.h"
#include "bfill/fault.h"
#include "bfill/store.h"
#include "tests/support/support.h"
#include "util/crc32c.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

static uint64_t rng = 42;
static uint64_t next_rand(void) { return t_xorshift64(&rng); }

typedef struct kv {
	uint8_t k[64];
	size_t kl;
} kv;

static int cmp_kv(const void *a, const void *b)
{
	const kv *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->kl < y->kl ? x->kl : y->kl);
	return c ? c : (x->kl > y->kl) - (x->kl < y->kl);
}

/* Shapes: a long shared prefix, prefixes of one another, ties in the
 * first window, random bytes, tiny alphabets; keys of one length where 8
 * or fewer positions vary (sorted by those bytes alone), 9, and one length
 * broken now and then. */
static void make_key(kv *e, int shape)
{
	memset(e->k, 0, sizeof(e->k));
	switch (shape) {
	case 0: /* shared 20-byte prefix, then an int with many duplicates */
		memset(e->k, 'p', 20);
		bf_codec_put_int(e->k + 20, (int64_t)(next_rand() % 50));
		bf_codec_put_int(e->k + 28, (int64_t)(next_rand() % 1000000));
		e->kl = 36;
		break;
	case 1: /* variable lengths, keys that are prefixes of others */
		e->kl = next_rand() % 12;
		for (size_t i = 0; i < e->kl; i++)
			e->k[i] = (uint8_t)(next_rand() % 2);
		break;
	case 2: /* random */
		e->kl = 1 + next_rand() % 40;
		for (size_t i = 0; i < e->kl; i++)
			e->k[i] = (uint8_t)next_rand();
		break;
	case 3: /* digits after a prefix, like the c index */
		memset(e->k, 't', 10);
		e->kl = 10 + 30;
		for (size_t i = 10; i < e->kl; i++)
			e->k[i] = (uint8_t)('0' + next_rand() % 10);
		break;
	case 4: /* like the k index: all one length, the low bytes of two ints vary */
		memset(e->k, 'p', 19);
		bf_codec_put_int(e->k + 19, (int64_t)(next_rand() % 3000000));
		bf_codec_put_int(e->k + 28, (int64_t)(next_rand() % 5000000));
		e->kl = 37;
		break;
	case 5: /* one length, exactly 8 (shape 5) or 9 (shape 6) bytes vary, scattered */
	case 6: {
		static const size_t at[] = { 0, 3, 7, 8, 15, 16, 28, 29, 31 };
		memset(e->k, 'q', 32);
		for (size_t i = 0; i < (shape == 5 ? 8u : 9u); i++)
			e->k[at[i]] = (uint8_t)('a' + next_rand() % 3);
		e->kl = 32;
		break;
	}
	default: /* one length, but now and then a key one byte longer */
		memset(e->k, 'r', 24);
		bf_codec_put_int(e->k + 16, (int64_t)(next_rand() % 100000));
		e->kl = next_rand() % 3000 ? 24 : 25;
	}
}

/* Sorts b and checks it holds ref's n keys (sorted), each with value "v". */
static void expect_sorted(bf_sortbuf *b, const kv *ref, size_t n, int what)
{
	bf_sortbuf_sort(b);
	cr_assert_eq(bf_sortbuf_count(b), n);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *k, *v;
		size_t kl, vl;
		bf_sortbuf_get(b, i, &k, &kl, &v, &vl);
		cr_assert(kl == ref[i].kl && memcmp(k, ref[i].k, kl) == 0,
			  "case %d entry %zu out of order", what, i);
		cr_assert(vl == 1 && v[0] == 'v', "case %d entry %zu: its value", what, i);
	}
}

Test(engine, sortbuf_orders_like_reference)
{
	for (int shape = 0; shape < 8; shape++) {
		size_t n = 20000;
		kv *ref = calloc(n, sizeof(*ref));
		bf_sortbuf *b;
		cr_assert_eq(bf_sortbuf_create(8 << 20, &b, NULL), 0);
		for (size_t i = 0; i < n; i++) {
			make_key(&ref[i], shape);
			cr_assert(bf_sortbuf_add(b, ref[i].k, ref[i].kl, "v", 1));
		}
		qsort(ref, n, sizeof(*ref), cmp_kv);
		expect_sorted(b, ref, n, shape);
		/* lower_bound agrees with the reference */
		for (int t = 0; t < 200; t++) {
			kv probe;
			make_key(&probe, shape);
			size_t want = 0;
			while (want < n && cmp_kv(&ref[want], &probe) < 0)
				want++;
			cr_assert_eq(bf_sortbuf_lower_bound(b, probe.k, probe.kl), want);
		}
		bf_sortbuf_reset(b);
		cr_assert_eq(bf_sortbuf_count(b), 0);
		bf_sortbuf_destroy(b);
		free(ref);
	}
}

Test(engine, sortbuf_respects_budget)
{
	bf_sortbuf *b;
	uint8_t key[100] = { 0 };
	size_t added = 0;
	cr_assert_eq(bf_sortbuf_create(1 << 20, &b, NULL), 0);
	while (bf_sortbuf_add(b, key, sizeof(key), NULL, 0))
		added++;
	/* entry bytes + two 16-byte sort slots each must fit the budget */
	cr_assert_leq(added * (4 + 100 + 32), 1u << 20);
	cr_assert_gt(added * (4 + 100 + 32), (1u << 20) - 200);
	uint8_t huge[70000] = { 0 };
	bf_sortbuf_reset(b);
	cr_assert(!bf_sortbuf_add(b, huge, sizeof(huge), NULL, 0), "keys over 64 KiB are refused");
	/* A fill cut short takes half as much; the next reset gives the
	 * whole budget back. */
	size_t half = 0, again = 0;
	bf_sortbuf_limit(b, 1u << 19);
	while (bf_sortbuf_add(b, key, sizeof(key), NULL, 0))
		half++;
	cr_assert_leq(half * (4 + 100 + 32), 1u << 19);
	cr_assert_gt(half * (4 + 100 + 32), (1u << 19) - 200);
	bf_sortbuf_reset(b);
	while (bf_sortbuf_add(b, key, sizeof(key), NULL, 0))
		again++;
	cr_assert_eq(again, added);
	bf_sortbuf_destroy(b);
}

/* Filled to the brim, twice, over a budget that is no whole number of the
 * steps in which the buffer's pages are made ready ahead of the writes
 * (data from below and sort entries from above meet in one step). */
Test(engine, sortbuf_full_fills_stay_ordered)
{
	size_t cap = (9u << 20) + 4096, n = 0;
	kv *ref = calloc(cap / 40, sizeof(*ref));
	bf_sortbuf *b;
	cr_assert_eq(bf_sortbuf_create(cap, &b, NULL), 0);
	for (int fill = 0; fill < 2; fill++) {
		n = 0;
		for (;;) {
			make_key(&ref[n], 3);
			if (!bf_sortbuf_add(b, ref[n].k, ref[n].kl, "v", 1))
				break;
			n++;
		}
		cr_assert_gt(n * (4 + 40 + 1 + 32), cap - 200, "fill %d used the budget", fill);
		qsort(ref, n, sizeof(*ref), cmp_kv);
		expect_sorted(b, ref, n, fill);
		bf_sortbuf_reset(b);
	}
	bf_sortbuf_destroy(b);
	free(ref);
}

static void put_run(bf_engine *e, const char *const *keys, int n)
{
	bf_sortbuf *b;
	cr_assert_eq(bf_sortbuf_create(1 << 20, &b, NULL), 0);
	for (int i = 0; i < n; i++)
		cr_assert(bf_sortbuf_add(b, keys[i], strlen(keys[i]), "v", 1));
	bf_err err = { 0 };
	cr_assert_eq(bf_engine_write_run(e, b, &err), 0, "%s", err.msg);
	cr_assert_eq(bf_sortbuf_count(b), 0, "a written run empties the buffer");
	bf_sortbuf_destroy(b);
}

static void step(bf_merge *m)
{
	bf_err err = { 0 };
	cr_assert_eq(bf_merge_next(m, &err), 0, "%s", err.msg);
}

static int collect(bf_engine *e, char out[][16], int max)
{
	bf_merge *m;
	int n = 0;
	cr_assert_eq(bf_merge_open(&e, 1, NULL, 0, NULL, 0, NULL, 0, &m, NULL), 0);
	for (; bf_merge_valid(m) && n < max; step(m)) {
		size_t kl;
		const uint8_t *k;
		bf_merge_get(m, &k, &kl, NULL, NULL);
		snprintf(out[n++], 16, "%.*s", (int)kl, (const char *)k);
	}
	bf_merge_close(m);
	return n;
}

Test(engine, runs_merge_dedup_and_survive_reopen)
{
	char *dir = t_tmpdir("engine");
	char edir[512], got[16][16];
	bf_engine *e;
	bf_engine_opts eo = { .run_compression = BF_COMPRESS_LZ4 };
	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, &eo, &e, NULL), 0);
	const char *r1[] = { "d", "a", "c", "a" }, *r2[] = { "b", "c", "e" };
	put_run(e, r1, 4);
	put_run(e, r2, 3);
	cr_assert_eq(bf_engine_runs(e), 2);
	int n = collect(e, got, 16);
	const char *want[] = { "a", "b", "c", "d", "e" };
	cr_assert_eq(n, 5);
	for (int i = 0; i < 5; i++)
		cr_assert_str_eq(got[i], want[i]);
	bf_engine_close(e);
	cr_assert_eq(bf_engine_open(edir, &eo, &e, NULL), 0);
	cr_assert_eq(collect(e, got, 16), 5, "runs are durable across a reopen");
	cr_assert_gt(bf_engine_bytes(e), 0);
	cr_assert_eq(bf_engine_remove(e, edir, NULL), 0);
	t_rmdir(dir);
}

typedef struct files {
	int n;
	uint64_t keys[64];
	char paths[64][512];
} files;

static int keep_file(const char *path, uint64_t keys, uint64_t bytes, void *arg, bf_err *err)
{
	files *f = arg;
	(void)bytes;
	(void)err;
	snprintf(f->paths[f->n], sizeof(f->paths[0]), "%s", path);
	f->keys[f->n++] = keys;
	return 0;
}

Test(engine, export_cuts_by_keys_and_merges_buffers)
{
	char *dir = t_tmpdir("export");
	char edir[512];
	bf_engine *e;
	bf_sortbuf *extra;
	files f = { 0 };
	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	const char *r1[] = { "k00", "k02", "k04", "k06", "k08" };
	put_run(e, r1, 5);
	cr_assert_eq(bf_sortbuf_create(1 << 20, &extra, NULL), 0);
	const char *mem[] = { "k01", "k03", "k05", "k07", "k08" }; /* k08 also in the run */
	for (int i = 0; i < 5; i++)
		bf_sortbuf_add(extra, mem[i], 3, "v", 1);
	bf_sortbuf_sort(extra);
	bf_export_opts o = {
		.out_dir = dir, .file_tag = "t", .max_bytes = 1 << 20, .max_keys = 4,
		.on_file = keep_file, .arg = &f, .extra = &extra, .nextra = 1,
	};
	uint64_t keys, bytes;
	bf_err err = { 0 };
	cr_assert_eq(bf_engine_export(&e, 1, &o, &keys, &bytes, &err), 0, "%s", err.msg);
	cr_assert_eq(keys, 9, "k08 is written once");
	cr_assert_eq(f.n, 3);
	cr_assert_eq(f.keys[0], 4);
	cr_assert_eq(f.keys[1], 4);
	cr_assert_eq(f.keys[2], 1);
	bf_sortbuf_destroy(extra);
	bf_engine_remove(e, edir, NULL);
	t_rmdir(dir);
}

Test(engine, export_unique_suffix_and_duplicates)
{
	char *dir = t_tmpdir("export-uniq");
	char edir[512];
	bf_engine *e;
	bf_sortbuf *b;
	files f = { 0 };
	uint8_t key[16], dup[64];
	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	cr_assert_eq(bf_sortbuf_create(1 << 20, &b, NULL), 0);
	/* values "a", "b", "c" with handles 1..3 — distinct */
	for (int i = 0; i < 3; i++) {
		key[0] = (uint8_t)('a' + i);
		bf_codec_put_int(key + 1, i + 1);
		bf_sortbuf_add(b, key, 9, "h", 1);
	}
	cr_assert_eq(bf_engine_write_run(e, b, NULL), 0);
	bf_export_opts o = {
		.out_dir = dir, .file_tag = "u", .max_bytes = 1 << 20, .max_keys = 100,
		.handle_suffix = true, .dup_key = dup, .dup_key_cap = sizeof(dup),
		.on_file = keep_file, .arg = &f,
	};
	uint64_t keys;
	cr_assert_eq(bf_engine_export(&e, 1, &o, &keys, NULL, NULL), 0);
	cr_assert_eq(keys, 3);
	/* now "b" again with handle 9: a duplicate */
	key[0] = 'b';
	bf_codec_put_int(key + 1, 9);
	bf_sortbuf_add(b, key, 9, "h", 1);
	cr_assert_eq(bf_engine_write_run(e, b, NULL), 0);
	f.n = 0;
	bf_err err = { 0 };
	cr_assert_eq(bf_engine_export(&e, 1, &o, &keys, NULL, &err), BF_EDUP);
	cr_assert_eq(o.dup_key_len, 1);
	cr_assert_eq(dup[0], 'b');
	for (int i = 0; i < f.n; i++)
		remove(f.paths[i]);
	bf_sortbuf_destroy(b);
	bf_engine_remove(e, edir, NULL);
	t_rmdir(dir);
}

Test(engine, split_keys_balance)
{
	char *dir = t_tmpdir("split");
	char edir[512];
	bf_engine *e;
	bf_sortbuf *b;
	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	cr_assert_eq(bf_sortbuf_create(4 << 20, &b, NULL), 0);
	for (int i = 0; i < 50000; i++) {
		uint8_t k[8];
		bf_codec_put_int(k, (int64_t)i);
		bf_sortbuf_add(b, k, 8, NULL, 0);
	}
	cr_assert_eq(bf_engine_write_run(e, b, NULL), 0);
	uint8_t **keys;
	size_t *lens;
	int n;
	cr_assert_eq(bf_engine_split_keys(&e, 1, NULL, 0, 4, 0, &keys, &lens, &n, NULL), 0);
	cr_assert_eq(n, 3);
	for (int i = 0; i < n; i++) {
		int64_t v = bf_codec_get_int(keys[i]);
		int64_t want = 50000LL * (i + 1) / 4;
		cr_assert(v > want - 2000 && v < want + 2000, "split %d at %lld, want ~%lld", i, (long long)v, (long long)want);
		free(keys[i]);
	}
	free(keys);
	free(lens);
	bf_sortbuf_destroy(b);
	bf_engine_remove(e, edir, NULL);
	t_rmdir(dir);
}

/* Many runs of many blocks each, merged over ranges that start and end
 * inside blocks, against a reference: every compression. */
static void merge_ranges_with(bf_compression c)
{
	enum { RUNS = 5, PER = 3000 };
	char *dir = t_tmpdir("merge");
	char edir[512];
	bf_engine *e;
	bf_engine_opts eo = { .run_compression = c };
	bf_sortbuf *b, *extra;
	kv *all = calloc(RUNS * PER + PER, sizeof(*all));
	size_t n = 0;
	uint8_t val[40];

	memset(val, 'v', sizeof(val));
	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, &eo, &e, NULL), 0);
	cr_assert_eq(bf_sortbuf_create(4 << 20, &b, NULL), 0);
	cr_assert_eq(bf_sortbuf_create(4 << 20, &extra, NULL), 0);
	for (int r = 0; r <= RUNS; r++) {
		bf_sortbuf *to = r < RUNS ? b : extra;
		for (int i = 0; i < PER; i++) {
			kv *x = &all[n++];
			make_key(x, 3);
			cr_assert(bf_sortbuf_add(to, x->k, x->kl, val, (size_t)(x->k[39] - '0') * 4));
		}
		if (r < RUNS) {
			bf_err err = { 0 };
			cr_assert_eq(bf_engine_write_run(e, b, &err), 0, "%s", err.msg);
		}
	}
	bf_sortbuf_sort(extra);
	qsort(all, n, sizeof(*all), cmp_kv);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || cmp_kv(&all[u - 1], &all[i]))
			all[u++] = all[i];
	/* bounds: open, then ranges cut at keys present and absent */
	for (int t = 0; t < 6; t++) {
		size_t from = t == 0 ? 0 : next_rand() % u, to = t == 0 ? u : from + next_rand() % (u - from);
		uint8_t lo[64], hi[64];
		size_t lolen = all[from].kl, hilen = to < u ? all[to].kl : 0;
		memcpy(lo, all[from].k, lolen);
		if (to < u)
			memcpy(hi, all[to].k, hilen);
		if (t % 2 && lolen > 12)
			lolen--; /* a bound that is no key: from the same place on */
		bf_merge *m;
		bf_sortbuf *x[1] = { extra };
		bf_err err = { 0 };
		cr_assert_eq(bf_merge_open(&e, 1, x, 1, t ? lo : NULL, lolen, to < u && t ? hi : NULL,
					   hilen, &m, &err), 0, "%s", err.msg);
		size_t i = from;
		for (; bf_merge_valid(m); step(m), i++) {
			const uint8_t *k, *v;
			size_t kl, vl;
			bf_merge_get(m, &k, &kl, &v, &vl);
			cr_assert_lt(i, t ? to : u, "no key past the upper bound");
			cr_assert(kl == all[i].kl && !memcmp(k, all[i].k, kl), "key %zu in order", i);
			cr_assert_eq(vl, (size_t)(k[39] - '0') * 4, "its value");
		}
		cr_assert_eq(i, t ? to : u, "every key of [%zu, %zu) once", from, to);
		bf_merge_close(m);
	}
	cr_assert_gt(bf_engine_bytes(e), 0);
	bf_sortbuf_destroy(b);
	bf_sortbuf_destroy(extra);
	free(all);
	cr_assert_eq(bf_engine_remove(e, edir, NULL), 0);
	t_rmdir(dir);
}

Test(engine, merge_ranges_of_plain_runs) { merge_ranges_with(BF_COMPRESS_NONE); }
Test(engine, merge_ranges_of_lz4_runs) { merge_ranges_with(BF_COMPRESS_LZ4); }
Test(engine, merge_ranges_of_zstd_runs) { merge_ranges_with(BF_COMPRESS_ZSTD); }

/* Where O_DIRECT is refused (tmpfs on older kernels, some network file
 * systems), runs go through the page cache, in the same format. */
Test(engine, merge_ranges_without_direct_io)
{
	bf_fault_arm("run.nodirect", 1);
	merge_ranges_with(BF_COMPRESS_NONE);
	merge_ranges_with(BF_COMPRESS_LZ4);
	bf_fault_reset();
}

static void first_run(const char *edir, char *out, size_t n)
{
	DIR *d = opendir(edir);
	struct dirent *de;
	out[0] = 0;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".run"))
			snprintf(out, n, "%s/%s", edir, de->d_name);
	closedir(d);
	cr_assert(out[0], "a run file in %s", edir);
}

/* A flipped byte in a block is found by its checksum and named; a cut
 * file is refused at open; a half-written run is dropped; an engine
 * directory of an older format is refused with what to do. */
Test(engine, damaged_runs_are_reported_not_read)
{
	char *dir = t_tmpdir("damage");
	char edir[512], run[1024], tmp[1024];
	bf_engine *e;
	bf_sortbuf *b;
	bf_err err = { 0 };
	kv x;

	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	cr_assert_eq(bf_sortbuf_create(4 << 20, &b, NULL), 0);
	for (int i = 0; i < 4000; i++) {
		make_key(&x, 3);
		cr_assert(bf_sortbuf_add(b, x.k, x.kl, "v", 1));
	}
	cr_assert_eq(bf_engine_write_run(e, b, &err), 0, "%s", err.msg);
	bf_sortbuf_destroy(b);
	bf_engine_close(e);
	first_run(edir, run, sizeof(run));

	int fd = open(run, O_RDWR);
	uint8_t byte;
	cr_assert_eq(pread(fd, &byte, 1, 40000), 1);
	byte ^= 0x10;
	cr_assert_eq(pwrite(fd, &byte, 1, 40000), 1);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0, "the trailer is intact");
	bf_merge *m;
	int rc = bf_merge_open(&e, 1, NULL, 0, NULL, 0, NULL, 0, &m, &err);
	while (rc == 0 && bf_merge_valid(m))
		rc = bf_merge_next(m, &err);
	cr_assert_eq(rc, BF_ECORRUPT, "the damaged block is found");
	cr_assert(strstr(err.msg, run) && strstr(err.msg, "checksum"), "%s", err.msg);
	bf_merge_close(m);
	bf_engine_close(e);

	cr_assert_eq(ftruncate(fd, 50000), 0);
	close(fd);
	memset(&err, 0, sizeof(err));
	cr_assert_eq(bf_engine_open(edir, NULL, &e, &err), BF_ECORRUPT);
	cr_assert(strstr(err.msg, run) && strstr(err.msg, "damaged"), "%s", err.msg);
	cr_assert_eq(unlink(run), 0);

	snprintf(tmp, sizeof(tmp), "%s/run-1-1.tmp", edir);
	fd = open(tmp, O_CREAT | O_WRONLY, 0644);
	cr_assert_eq(write(fd, "half", 4), 4);
	close(fd);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	cr_assert_eq(bf_engine_runs(e), 0);
	cr_assert_eq(access(tmp, F_OK), -1, "the half-written run is gone");
	bf_engine_close(e);

	snprintf(tmp, sizeof(tmp), "%s/CURRENT", edir);
	fd = open(tmp, O_CREAT | O_WRONLY, 0644);
	close(fd);
	memset(&err, 0, sizeof(err));
	cr_assert_eq(bf_engine_open(edir, NULL, &e, &err), BF_ECORRUPT);
	cr_assert(strstr(err.msg, "older bfill"), "%s", err.msg);
	t_rmdir(dir);
}

/* Many small runs (a small budget) merged down to a few: the same keys,
 * once each, and the sort dir holds only the merged runs. */
Test(engine, reduce_merges_runs_down)
{
	char *dir = t_tmpdir("reduce");
	char edir[512], got[64][16];
	bf_engine *e;
	bf_sortbuf *b;
	bf_err err = { 0 };

	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	cr_assert_eq(bf_sortbuf_create(1 << 20, &b, NULL), 0);
	for (int r = 0; r < 9; r++) {
		for (int i = 0; i < 5; i++) {
			char k[16];
			snprintf(k, sizeof(k), "k%02d", (i * 9 + r * 4) % 40); /* overlaps between runs */
			cr_assert(bf_sortbuf_add(b, k, strlen(k), "v", 1));
		}
		cr_assert_eq(bf_engine_write_run(e, b, &err), 0, "%s", err.msg);
	}
	char before[64][16];
	int n = collect(e, before, 64);
	cr_assert_eq(bf_engine_reduce(e, 3, NULL, &err), 0, "%s", err.msg);
	cr_assert_leq(bf_engine_runs(e), 3);
	cr_assert_eq(collect(e, got, 64), n, "the same keys after the merge");
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(got[i], before[i]);
	bf_engine_close(e);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	cr_assert_leq(bf_engine_runs(e), 3, "the merged runs are gone from the dir");
	cr_assert_eq(collect(e, got, 64), n);
	bf_sortbuf_destroy(b);
	cr_assert_eq(bf_engine_remove(e, edir, NULL), 0);
	t_rmdir(dir);
}

/*
 * Runs keep only what a key does not share with the one before it. Long
 * keys sharing more than a header byte can say (300+ bytes), keys that are
 * prefixes of their neighbours, blocks cut mid-stream, the same keys in
 * several runs (dropped by the merge while the key it returned last lives
 * in a run cursor's key buffer) and a reduce that writes keys rebuilt from
 * other runs: every key comes back whole, once, in order.
 */
#define LONG_KEYS 3000
#define LONG_RUNS 4

static size_t long_key(uint8_t *k, int i)
{
	size_t n = 300 + (size_t)(i % 7) * 60; /* 300..660 bytes */
	memset(k, 'L', n);
	/* Positions past 255 vary; every 5th key stops right after them, a
	 * prefix of the keys that continue. */
	snprintf((char *)k + 280, 9, "%08d", i / 3);
	if (i % 5 == 0)
		return 288;
	k[n - 1] = (uint8_t)('a' + i % 3);
	return n;
}

static int cmp_long(const void *a, const void *b)
{
	const uint8_t *x = a, *y = b;
	size_t xl = (size_t)x[0] << 8 | x[1], yl = (size_t)y[0] << 8 | y[1];
	int c = memcmp(x + 2, y + 2, xl < yl ? xl : yl);
	return c ? c : (xl > yl) - (xl < yl);
}

static void expect_long_keys(bf_engine *e, const uint8_t *ref, size_t n, size_t stride)
{
	bf_merge *m;
	bf_err err = { 0 };
	size_t i = 0;
	cr_assert_eq(bf_merge_open(&e, 1, NULL, 0, NULL, 0, NULL, 0, &m, &err), 0, "%s", err.msg);
	for (; bf_merge_valid(m); step(m), i++) {
		const uint8_t *k, *v;
		size_t kl, vl, rl;
		cr_assert_lt(i, n, "more keys than were written");
		const uint8_t *r = ref + i * stride;
		rl = (size_t)r[0] << 8 | r[1];
		bf_merge_get(m, &k, &kl, &v, &vl);
		cr_assert(kl == rl && memcmp(k, r + 2, kl) == 0, "key %zu differs", i);
		cr_assert(vl == 1 && v[0] == 'v', "key %zu: its value", i);
	}
	cr_assert_eq(i, n, "every key once");
	bf_merge_close(m);
}

Test(engine, runs_store_keys_against_the_key_before)
{
	char *dir = t_tmpdir("shared");
	char edir[512];
	bf_engine *e;
	bf_sortbuf *b;
	bf_err err = { 0 };
	size_t stride = 2 + 700, n = 0;
	uint8_t *ref = calloc(LONG_KEYS, stride), k[700];

	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	cr_assert_eq(bf_sortbuf_create(8 << 20, &b, NULL), 0);
	for (int r = 0; r < LONG_RUNS; r++) {
		/* Each run holds a window of keys overlapping the next one's. */
		for (int i = r * LONG_KEYS / 8; i < LONG_KEYS / 2 + r * LONG_KEYS / 8; i++) {
			size_t kl = long_key(k, i);
			cr_assert(bf_sortbuf_add(b, k, kl, "v", 1));
		}
		cr_assert_eq(bf_engine_write_run(e, b, &err), 0, "%s", err.msg);
	}
	/* The reference: every key written, once. */
	for (int i = 0; i < LONG_KEYS / 2 + (LONG_RUNS - 1) * LONG_KEYS / 8; i++) {
		size_t kl = long_key(k, i);
		uint8_t *r = ref + n * stride;
		r[0] = (uint8_t)(kl >> 8);
		r[1] = (uint8_t)kl;
		memcpy(r + 2, k, kl);
		n++;
	}
	qsort(ref, n, stride, cmp_long);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || cmp_long(ref + (u - 1) * stride, ref + i * stride))
			memmove(ref + u++ * stride, ref + i * stride, stride);
	cr_assert_gt(bf_engine_bytes(e), 0);
	expect_long_keys(e, ref, u, stride);
	cr_assert_eq(bf_engine_reduce(e, 2, NULL, &err), 0, "%s", err.msg);
	cr_assert_leq(bf_engine_runs(e), 2);
	expect_long_keys(e, ref, u, stride);
	bf_sortbuf_destroy(b);
	cr_assert_eq(bf_engine_remove(e, edir, NULL), 0);
	free(ref);
	t_rmdir(dir);
}

/* A run of the format before keys were stored against the key before
 * (a sort dir left by an older bfill) is refused with what to do. */
Test(engine, runs_of_an_older_format_are_refused)
{
	char *dir = t_tmpdir("oldrun");
	char edir[512], run[1024];
	bf_engine *e;
	bf_err err = { 0 };
	const char *keys[] = { "a", "b" };
	uint8_t t[64];

	snprintf(edir, sizeof(edir), "%s/e", dir);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, NULL), 0);
	put_run(e, keys, 2);
	bf_engine_close(e);
	first_run(edir, run, sizeof(run));
	int fd = open(run, O_RDWR);
	off_t size = lseek(fd, 0, SEEK_END);
	cr_assert_eq(pread(fd, t, sizeof(t), size - 64), 64);
	memcpy(t, "BFRUN001", 8);
	uint32_t crc = bf_crc32c(0, t, 60);
	memcpy(t + 60, &crc, 4);
	cr_assert_eq(pwrite(fd, t, sizeof(t), size - 64), 64);
	close(fd);
	cr_assert_eq(bf_engine_open(edir, NULL, &e, &err), BF_ECORRUPT);
	cr_assert(strstr(err.msg, run) && strstr(err.msg, "older bfill") && strstr(err.msg, "remove"),
		  "%s", err.msg);
	t_rmdir(dir);
}
