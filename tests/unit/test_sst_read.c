/*
 * Reading SST files back through a scratch database (engine/sst_read.c):
 * every key of several files in order, bounded iterators (first and last
 * key of a range, as region jobs use them), iterators from several threads,
 * the files taken over, the scratch directory removed, and a failed open
 * that leaves the files where they were.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/sst.h"
#include "tests/support/support.h"

#define FILES 3
#define PER_FILE 1000

static void key_of(int i, char *k, size_t n)
{
	snprintf(k, n, "t_i%08d", i);
}

/* Writes FILES non-overlapping files of PER_FILE keys each into dir. */
static void write_files(const char *dir, char paths[FILES][512])
{
	for (int f = 0; f < FILES; f++) {
		bf_sst_writer *w = NULL;
		bf_err err;
		snprintf(paths[f], 512, "%s/in-%d.sst", dir, f);
		cr_assert_eq(bf_sst_writer_open(paths[f], BF_COMPRESS_NONE, 0, &w, &err), 0, "%s",
			     err.msg);
		for (int i = f * PER_FILE; i < (f + 1) * PER_FILE; i++) {
			char k[32], v[32];
			key_of(i, k, sizeof(k));
			snprintf(v, sizeof(v), "value-%d", i);
			cr_assert_eq(bf_sst_writer_put(w, k, strlen(k), v, strlen(v), &err), 0);
		}
		cr_assert_eq(bf_sst_writer_finish(w, NULL, &err), 0);
		bf_sst_writer_destroy(w);
	}
}

static bf_sst_files *open_files(const char *dir, char paths[FILES][512], char *scratch)
{
	const char *p[FILES];
	bf_sst_files *f = NULL;
	bf_err err;

	for (int i = 0; i < FILES; i++)
		p[i] = paths[i];
	snprintf(scratch, 512, "%s/scratch", dir);
	cr_assert_eq(bf_sst_files_open(scratch, p, FILES, &f, &err), 0, "%s", err.msg);
	return f;
}

TestSuite(sst_read, .fini = t_scratch_remove);

Test(sst_read, every_key_in_order_and_files_taken_over)
{
	char *dir = t_scratch_new("sstread"), paths[FILES][512], scratch[512];
	bf_sst_files *f;
	bf_store_iter *it = NULL;
	bf_err err;
	int n = 0;

	write_files(dir, paths);
	f = open_files(dir, paths, scratch);
	for (int i = 0; i < FILES; i++)
		cr_assert_not(t_path_exists(paths[i]), "%s is the reader's now", paths[i]);
	cr_assert_eq(bf_sst_files_iter(f, NULL, 0, NULL, 0, &it, &err), 0);
	for (; bf_store_iter_valid(it); bf_store_iter_next(it), n++) {
		size_t kl, vl;
		char k[32], v[32];
		const uint8_t *key = bf_store_iter_key(it, &kl), *val = bf_store_iter_value(it, &vl);
		key_of(n, k, sizeof(k));
		snprintf(v, sizeof(v), "value-%d", n);
		cr_assert_eq(kl, strlen(k));
		cr_assert_eq(memcmp(key, k, kl), 0);
		cr_assert_eq(vl, strlen(v));
		cr_assert_eq(memcmp(val, v, vl), 0);
	}
	cr_assert_eq(bf_store_iter_status(it, &err), 0);
	cr_assert_eq(n, FILES * PER_FILE);
	bf_store_iter_destroy(it);
	bf_sst_files_close(f);
	cr_assert_not(t_path_exists(scratch), "closing removes the scratch database");
}

Test(sst_read, bounded_first_and_last)
{
	char *dir = t_scratch_new("sstread"), paths[FILES][512], scratch[512];
	char lo[32], hi[32], k[32];
	bf_sst_files *f;
	bf_store_iter *it = NULL;
	size_t kl;
	bf_err err;

	write_files(dir, paths);
	f = open_files(dir, paths, scratch);
	/* A range across a file boundary, as a region's piece may be. */
	key_of(990, lo, sizeof(lo));
	key_of(1500, hi, sizeof(hi));
	cr_assert_eq(bf_sst_files_iter(f, lo, strlen(lo), hi, strlen(hi), &it, &err), 0);
	cr_assert(bf_store_iter_valid(it));
	const uint8_t *first = bf_store_iter_key(it, &kl);
	cr_assert_eq(memcmp(first, lo, kl), 0);
	bf_store_iter_seek_last(it);
	cr_assert(bf_store_iter_valid(it));
	key_of(1499, k, sizeof(k));
	cr_assert_eq(memcmp(bf_store_iter_key(it, &kl), k, kl), 0, "the last key below the bound");
	bf_store_iter_seek(it, lo, strlen(lo));
	cr_assert_eq(memcmp(bf_store_iter_key(it, &kl), lo, kl), 0, "and back to the first");
	bf_store_iter_destroy(it);
	/* A range with nothing in it. */
	cr_assert_eq(bf_sst_files_iter(f, "u", 1, "v", 1, &it, &err), 0);
	cr_assert_not(bf_store_iter_valid(it));
	bf_store_iter_destroy(it);
	bf_sst_files_close(f);
}

typedef struct reader {
	bf_sst_files *f;
	int part;
	int count;
} reader;

static void *read_part(void *arg)
{
	reader *r = arg;
	char lo[32], hi[32];
	bf_store_iter *it = NULL;

	key_of(r->part * 750, lo, sizeof(lo));
	key_of((r->part + 1) * 750, hi, sizeof(hi));
	if (bf_sst_files_iter(r->f, lo, strlen(lo), hi, strlen(hi), &it, NULL) == 0) {
		for (; bf_store_iter_valid(it); bf_store_iter_next(it))
			r->count++;
		bf_store_iter_destroy(it);
	}
	return NULL;
}

Test(sst_read, iterators_from_several_threads)
{
	char *dir = t_scratch_new("sstread"), paths[FILES][512], scratch[512];
	reader readers[4];
	pthread_t th[4];
	bf_sst_files *f;

	write_files(dir, paths);
	f = open_files(dir, paths, scratch);
	for (int i = 0; i < 4; i++) {
		readers[i] = (reader){ .f = f, .part = i };
		cr_assert_eq(pthread_create(&th[i], NULL, read_part, &readers[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(readers[i].count, 750, "part %d", i);
	}
	bf_sst_files_close(f);
}

Test(sst_read, a_failed_open_leaves_the_files)
{
	char *dir = t_scratch_new("sstread"), paths[FILES][512], scratch[512];
	const char *p[FILES + 1];
	bf_sst_files *f = NULL;
	bf_err err;

	write_files(dir, paths);
	for (int i = 0; i < FILES; i++)
		p[i] = paths[i];
	p[FILES] = "/nonexistent/missing.sst";
	snprintf(scratch, sizeof(scratch), "%s/scratch", dir);
	cr_assert_neq(bf_sst_files_open(scratch, p, FILES + 1, &f, &err), 0);
	cr_assert_null(f);
	for (int i = 0; i < FILES; i++)
		cr_assert(t_path_exists(paths[i]), "%s must stay for the caller", paths[i]);
	cr_assert_not(t_path_exists(scratch));
}
