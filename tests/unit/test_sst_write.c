/*
 * bfill's own table writer (engine/sst_build.c) against RocksDB, which
 * reads what it writes: files of awkward keys (empty, prefixes of the next,
 * bytes equal to the key trailer's), empty and oversized values, block
 * sizes from 64 bytes to the default, plain and LZ4, are ingested and read
 * back through RocksDB's iterator, seeks and point reads, then compacted;
 * keys out of order, an empty file, an unwritable path and a full disk
 * are errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bfill/sst.h"
#include "bfill/store.h"
#include "util/util.h"
#include "tests/support/support.h"

static void unmount_scratch(void)
{
	t_small_fs_unmount();
	t_scratch_remove();
}

TestSuite(sst_write, .fini = unmount_scratch);

typedef struct kv {
	uint8_t *k, *v;
	size_t kl, vl;
} kv;

static int cmp_kv(const void *a, const void *b)
{
	const kv *x = a, *y = b;
	return bf_key_cmp(x->k, x->kl, y->k, y->kl);
}

/*
 * n random keys, sorted and without repeats, over a small alphabet (0x00,
 * 0x01, 'a', 0xff) so keys are often prefixes of the next and run into
 * bytes the key trailer holds; values of 0 to 300 bytes, now and then one
 * larger than any block. Returns how many are left after repeats go.
 */
static size_t make_keys(kv *out, size_t n, uint64_t seed)
{
	static const uint8_t alphabet[] = { 0x00, 0x01, 'a', 0xff };
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		kv *e = &out[i];
		e->kl = t_xorshift64(&seed) % 24;
		e->vl = t_xorshift64(&seed) % 50 == 0 ? 70000 : t_xorshift64(&seed) % 300;
		e->k = malloc(e->kl + 1);
		e->v = malloc(e->vl + 1);
		for (size_t j = 0; j < e->kl; j++)
			e->k[j] = alphabet[t_xorshift64(&seed) % 4];
		for (size_t j = 0; j < e->vl; j++)
			e->v[j] = (uint8_t)(j % 7 ? 'v' : t_xorshift64(&seed));
	}
	qsort(out, n, sizeof(*out), cmp_kv);
	for (size_t i = 0; i < n; i++) {
		if (m && cmp_kv(&out[m - 1], &out[i]) == 0) {
			free(out[i].k);
			free(out[i].v);
			continue;
		}
		out[m++] = out[i];
	}
	return m;
}

static void free_keys(kv *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys[i].k);
		free(keys[i].v);
	}
}

static void write_file(const char *path, bf_compression c, size_t block, const kv *keys, size_t n)
{
	bf_sst_writer *w;
	bf_err err = { 0 };
	uint64_t size = 0;
	struct stat st;

	cr_assert_eq(bf_sst_writer_open(path, c, block, &w, &err), 0, "%s", bf_err_text(&err));
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(bf_sst_writer_put(w, keys[i].k, keys[i].kl, keys[i].v, keys[i].vl, &err),
			     0, "key %zu: %s", i, bf_err_text(&err));
	cr_assert_eq(bf_sst_writer_finish(w, &size, &err), 0, "%s", bf_err_text(&err));
	bf_sst_writer_destroy(w);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, size, "finish reports the file's size");
}

static void expect_entry(bf_store_iter *it, const kv *want, const char *what, size_t i)
{
	size_t kl, vl;
	cr_assert(bf_store_iter_valid(it), "%s %zu: no entry", what, i);
	const uint8_t *k = bf_store_iter_key(it, &kl), *v = bf_store_iter_value(it, &vl);
	cr_assert(kl == want->kl && !memcmp(k, want->k, kl), "%s %zu: another key", what, i);
	cr_assert(vl == want->vl && !memcmp(v, want->v, vl), "%s %zu: another value", what, i);
}

/* Every key in order, a seek to each 13th and just past it, the last key. */
static void expect_reads(bf_store_iter *it, const kv *keys, size_t n)
{
	bf_err err = { 0 };
	size_t i = 0;
	for (; bf_store_iter_valid(it); bf_store_iter_next(it), i++) {
		cr_assert_lt(i, n, "more entries than were written");
		expect_entry(it, &keys[i], "scan", i);
	}
	cr_assert_eq(bf_store_iter_status(it, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(i, n);
	for (i = 0; i < n; i += 13) {
		bf_store_iter_seek(it, keys[i].k, keys[i].kl);
		expect_entry(it, &keys[i], "seek", i);
		uint8_t past[32];
		memcpy(past, keys[i].k, keys[i].kl);
		past[keys[i].kl] = 0; /* the smallest key after it */
		bf_store_iter_seek(it, past, keys[i].kl + 1);
		if (i + 1 < n)
			expect_entry(it, &keys[i + 1], "seek past", i);
		else
			cr_assert_not(bf_store_iter_valid(it));
	}
	bf_store_iter_seek_last(it);
	expect_entry(it, &keys[n - 1], "last", n - 1);
}

Test(sst_write, rocksdb_reads_every_shape_back)
{
	static const size_t blocks[] = { 64, 4096, 0 };
	static const bf_compression codecs[] = { BF_COMPRESS_NONE, BF_COMPRESS_LZ4 };
	static kv keys[6000];
	size_t n = make_keys(keys, 6000, 7);
	char *dir = t_scratch_new("sst-write");
	bf_err err = { 0 };

	cr_assert_gt(n, 2000);
	cr_assert_eq(keys[0].kl, 0, "the empty key is among them");
	for (size_t c = 0; c < 2; c++)
		for (size_t b = 0; b < 3; b++) {
			char path[4096], scratch[4096];
			const char *paths[1] = { path };
			bf_sst_files *f;
			bf_store_iter *it;
			snprintf(path, sizeof(path), "%s/f-%zu-%zu.sst", dir, c, b);
			snprintf(scratch, sizeof(scratch), "%s/scratch-%zu-%zu", dir, c, b);
			write_file(path, codecs[c], blocks[b], keys, n);
			cr_assert_eq(bf_sst_files_open(scratch, paths, 1, &f, &err), 0, "%s",
				     bf_err_text(&err));
			cr_assert_eq(bf_sst_files_iter(f, NULL, 0, NULL, 0, &it, &err), 0, "%s",
				     bf_err_text(&err));
			expect_reads(it, keys, n);
			bf_store_iter_destroy(it);
			bf_sst_files_close(f);
		}
	free_keys(keys, n);
}

Test(sst_write, point_reads_and_a_compaction_over_the_files)
{
	static kv keys[3000];
	size_t n = make_keys(keys, 3000, 11);
	char *dir = t_scratch_new("sst-write"), *sdir = t_path_in(dir, "store");
	char path[4096];
	const char *paths[1] = { path };
	bf_store *st = NULL;
	bf_err err = { 0 };

	snprintf(path, sizeof(path), "%s/in.sst", dir);
	write_file(path, BF_COMPRESS_LZ4, 512, keys, n);
	cr_assert_eq(bf_store_open(sdir, BF_STORE_CREATE, &st, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_store_ingest(st, paths, 1, &err), 0, "%s", bf_err_text(&err));
	for (size_t i = 0; i < n; i++) {
		char *v = NULL;
		size_t vl;
		cr_assert_eq(bf_store_get(st, keys[i].k, keys[i].kl, &v, &vl, &err), 0, "get %zu: %s",
			     i, bf_err_text(&err));
		cr_assert(vl == keys[i].vl && !memcmp(v, keys[i].v, vl), "get %zu: another value", i);
		free(v);
	}
	/* Deleting the middle third rewrites the file around it: RocksDB reads
	 * every block of it and writes the rest again. */
	size_t lo = n / 3, hi = 2 * n / 3;
	cr_assert_eq(bf_store_delete_range(st, keys[lo].k, keys[lo].kl, keys[hi].k, keys[hi].kl,
					   &err), 0, "%s", bf_err_text(&err));
	for (size_t i = 0; i < n; i++) {
		char *v = NULL;
		size_t vl;
		int rc = bf_store_get(st, keys[i].k, keys[i].kl, &v, &vl, &err);
		cr_assert_eq(rc, i >= lo && i < hi ? BF_ENOTFOUND : 0, "get %zu after: %d", i, rc);
		free(v);
	}
	bf_store_close(st);
	free(sdir);
	free_keys(keys, n);
}

Test(sst_write, keys_out_of_order_are_refused)
{
	char *dir = t_scratch_new("sst-write"), path[4096];
	bf_sst_writer *w;
	bf_err err = { 0 };

	snprintf(path, sizeof(path), "%s/o.sst", dir);
	cr_assert_eq(bf_sst_writer_open(path, BF_COMPRESS_NONE, 0, &w, &err), 0);
	cr_assert_eq(bf_sst_writer_put(w, "ab", 2, "1", 1, &err), 0);
	cr_assert_eq(bf_sst_writer_put(w, "ab", 2, "2", 1, &err), BF_EINVAL, "the same key again");
	cr_assert(strstr(err.msg, "out of order") && strstr(err.msg, path), "%s", err.msg);
	cr_assert_eq(bf_sst_writer_put(w, "a", 1, "3", 1, &err), BF_EINVAL, "a prefix of it");
	cr_assert_eq(bf_sst_writer_put(w, "aa", 2, "4", 1, &err), BF_EINVAL, "a smaller key");
	cr_assert_eq(bf_sst_writer_put(w, "ab\x00", 3, "5", 1, &err), 0, "the next key");
	cr_assert_eq(bf_sst_writer_keys(w), 2);
	cr_assert_eq(bf_sst_writer_finish(w, NULL, &err), 0, "%s", bf_err_text(&err));
	bf_sst_writer_destroy(w);

	kv want[2] = { { (uint8_t *)"ab", (uint8_t *)"1", 2, 1 },
		       { (uint8_t *)"ab\x00", (uint8_t *)"5", 3, 1 } };
	char scratch[4096];
	const char *paths[1] = { path };
	bf_sst_files *f;
	bf_store_iter *it;
	snprintf(scratch, sizeof(scratch), "%s/scratch", dir);
	cr_assert_eq(bf_sst_files_open(scratch, paths, 1, &f, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_sst_files_iter(f, NULL, 0, NULL, 0, &it, &err), 0);
	expect_reads(it, want, 2);
	bf_store_iter_destroy(it);
	bf_sst_files_close(f);
}

Test(sst_write, an_empty_file_and_a_missing_directory_are_errors)
{
	char *dir = t_scratch_new("sst-write"), path[4096];
	bf_sst_writer *w;
	bf_err err = { 0 };

	snprintf(path, sizeof(path), "%s/empty.sst", dir);
	cr_assert_eq(bf_sst_writer_open(path, BF_COMPRESS_LZ4, 0, &w, &err), 0);
	cr_assert_eq(bf_sst_writer_finish(w, NULL, &err), BF_EINVAL);
	cr_assert(strstr(err.msg, "no keys"), "%s", err.msg);
	bf_sst_writer_destroy(w);
	cr_assert_not(t_path_exists(path), "an unfinished file is removed");

	snprintf(path, sizeof(path), "%s/no/such/dir.sst", dir);
	cr_assert_eq(bf_sst_writer_open(path, BF_COMPRESS_NONE, 0, &w, &err), BF_EIO);
	cr_assert(strstr(err.msg, path) && strstr(err.msg, "No such file"), "%s", err.msg);
	cr_assert_null(w);
}

Test(sst_write, a_full_disk_is_an_error_naming_the_file)
{
	char *dir = t_scratch_new("sst-write"), *fs = t_small_fs("small", 2), path[4096];
	bf_sst_writer *w;
	bf_err err = { 0 };
	char key[32], val[1000];
	int rc = 0;

	(void)dir;
	memset(val, 'x', sizeof(val));
	snprintf(path, sizeof(path), "%s/big.sst", fs);
	cr_assert_eq(bf_sst_writer_open(path, BF_COMPRESS_NONE, 0, &w, &err), 0);
	for (int i = 0; i < 10000 && rc == 0; i++) {
		int kl = snprintf(key, sizeof(key), "k%08d", i);
		rc = bf_sst_writer_put(w, key, (size_t)kl, val, sizeof(val), &err);
	}
	if (rc == 0)
		rc = bf_sst_writer_finish(w, NULL, &err);
	cr_assert_eq(rc, BF_ENOSPC, "10 MB into 2 MiB: %d %s", rc, err.msg);
	cr_assert(strstr(err.msg, path) && strstr(err.msg, "No space left"), "%s", err.msg);
	bf_sst_writer_destroy(w);
	cr_assert_not(t_path_exists(path), "the half-written file is removed");
	free(fs);
}
