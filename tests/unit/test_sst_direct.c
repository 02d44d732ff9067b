/*
 * Forward scans on a snapshot read the store's table files directly
 * (engine/sst_direct.c): every scan here is checked against RocksDB's own
 * iterator on the same snapshot, over many bounds, on files written plain,
 * with LZ4 and with zstd (which the direct reader leaves to RocksDB), with
 * deletions, overwrites, range deletions and writes after the snapshot,
 * and older versions of keys kept in one file for an older snapshot;
 * a damaged block is an error, never a silently different scan.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfill/sst.h"
#include "bfill/store.h"
#include "engine/rdb.h"
#include "engine/store_impl.h"
#include "tests/support/support.h"

TestSuite(sst_direct, .fini = t_scratch_remove);

#define KEYS_PER_FILE 3000

static bf_store *open_store(const char *dir)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	cr_assert_eq(bf_store_open(dir, BF_STORE_CREATE, &st, &err), 0, "%s", bf_err_text(&err));
	return st;
}

static size_t make_key(char *k, int file, int i)
{
	/* Shared prefixes of varying length, so entries are prefix-compressed. */
	return (size_t)sprintf(k, "t%02d_r%06d%s", file, i * 3, i % 7 ? "" : "-long-suffix");
}

/* Writes and ingests one file of KEYS_PER_FILE keys, small blocks so the
 * index has many entries. */
static void ingest_file(bf_store *st, int file, bf_compression c)
{
	char path[4096], k[64], v[128];
	bf_sst_writer *w;
	bf_err err = { 0 };
	const char *paths[1] = { path };

	snprintf(path, sizeof(path), "%s/in-%d.sst", t_scratch_dir, file);
	cr_assert_eq(bf_sst_writer_open(path, c, 512, &w, &err), 0, "%s", bf_err_text(&err));
	for (int i = 0; i < KEYS_PER_FILE; i++) {
		size_t kl = make_key(k, file, i);
		int vl = snprintf(v, sizeof(v), "value-%d-%d-%0*d", file, i, i % 50, 0);
		cr_assert_eq(bf_sst_writer_put(w, k, kl, v, (size_t)vl, &err), 0, "%s", bf_err_text(&err));
	}
	cr_assert_eq(bf_sst_writer_finish(w, NULL, &err), 0, "%s", bf_err_text(&err));
	bf_sst_writer_destroy(w);
	cr_assert_eq(bf_store_ingest(st, paths, 1, &err), 0, "%s", bf_err_text(&err));
}

/* A new store (its directory in *dir) holding files 0..n-1. */
static bf_store *store_with_files(char **dir, int n, bf_compression c)
{
	*dir = t_path_in(t_scratch_new("sst-direct"), "store");
	bf_store *st = open_store(*dir);
	for (int f = 0; f < n; f++)
		ingest_file(st, f, c);
	return st;
}

typedef struct scan_out {
	char *buf;
	size_t len;
	size_t n;
	bool direct;
} scan_out;

/* Every key and value in [lo, hi), length-prefixed, into one buffer. */
static scan_out scan(bf_store *st, const bf_store_snap *snap, const char *lo, const char *hi,
		     bool forward_only)
{
	bf_iter_opts o = { .snap = snap, .forward_only = forward_only };
	bf_store_iter *it;
	bf_err err = { 0 };
	scan_out s = { 0 };
	FILE *f = open_memstream(&s.buf, &s.len);

	cr_assert_eq(bf_store_iter_create(st, lo, lo ? strlen(lo) : 0, hi, hi ? strlen(hi) : 0, &o,
					  &it, &err), 0, "%s", bf_err_text(&err));
	s.direct = bf_rdb_iter_direct(it);
	for (; bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = bf_store_iter_key(it, &kl), *v = bf_store_iter_value(it, &vl);
		fprintf(f, "%zu:", kl);
		fwrite(k, 1, kl, f);
		fprintf(f, "=%zu:", vl);
		fwrite(v, 1, vl, f);
		fputc('\n', f);
		s.n++;
	}
	cr_assert_eq(bf_store_iter_status(it, &err), 0, "%s", bf_err_text(&err));
	bf_store_iter_destroy(it);
	fclose(f);
	return s;
}

/* The forward scan of [lo, hi) on snap is RocksDB's, byte for byte. */
static bool expect_same(bf_store *st, const bf_store_snap *snap, const char *lo, const char *hi)
{
	scan_out want = scan(st, snap, lo, hi, false), got = scan(st, snap, lo, hi, true);
	cr_assert_eq(got.n, want.n, "[%s, %s): %zu keys, RocksDB %zu", lo ? lo : "-", hi ? hi : "-",
		     got.n, want.n);
	cr_assert(got.len == want.len && !memcmp(got.buf, want.buf, want.len),
		  "[%s, %s): the scans differ", lo ? lo : "-", hi ? hi : "-");
	free(want.buf);
	free(got.buf);
	return got.direct;
}

/* Bounds at, between and around keys and files, and open ones. */
static int expect_same_everywhere(bf_store *st, const bf_store_snap *snap)
{
	static const char *const bounds[] = {
		NULL, "", "t", "t00", "t00_r000000", "t00_r000001", "t00_r000300", "t00_r004500-",
		"t00_r004501", "t00_r008997", "t00_r009999", "t01", "t01_r001500", "t01_r001502",
		"t02_r000000", "t02_r005000", "t02_r008997-long-suffix", "t03", "u", "\xff",
	};
	size_t nb = sizeof(bounds) / sizeof(bounds[0]);
	int direct = 0;
	for (size_t a = 0; a < nb; a++)
		for (size_t b = 0; b < nb; b++) {
			const char *lo = bounds[a], *hi = bounds[b];
			if (lo && hi && strcmp(lo, hi) >= 0)
				continue;
			direct += expect_same(st, snap, lo, hi);
		}
	return direct;
}

static void files_of(bf_compression c)
{
	char *dir;
	bf_store *st = store_with_files(&dir, 3, c);
	bf_store_snap *snap = bf_store_snapshot(st);
	int direct = expect_same_everywhere(st, snap);
	if (c == BF_COMPRESS_ZSTD) {
		scan_out all = scan(st, snap, "t", "u", true);
		cr_assert_not(all.direct, "zstd blocks are RocksDB's to read");
		free(all.buf);
	} else {
		cr_assert_gt(direct, 100, "the files are read directly (%d scans)", direct);
		scan_out all = scan(st, snap, "t", "u", true);
		cr_assert_eq(all.n, 3 * KEYS_PER_FILE);
		free(all.buf);
	}
	bf_store_snapshot_release(st, snap);
	bf_store_close(st);
	free(dir);
}

Test(sst_direct, plain_files_read_like_rocksdb) { files_of(BF_COMPRESS_NONE); }
Test(sst_direct, lz4_files_read_like_rocksdb) { files_of(BF_COMPRESS_LZ4); }
Test(sst_direct, zstd_files_left_to_rocksdb) { files_of(BF_COMPRESS_ZSTD); }

Test(sst_direct, writes_deletes_and_range_deletes)
{
	char *dir, k[64];
	bf_store *st = store_with_files(&dir, 3, BF_COMPRESS_LZ4);
	bf_err err = { 0 };
	/* The store's own records go to a file of their own first. */
	bf_store_snapshot_release(st, bf_store_snapshot(st));

	/* Overwrites and deletions inside the files' ranges, still in the
	 * memtable: the snapshot flushes them into a file that overlaps. */
	for (int i = 0; i < 200; i += 3) {
		size_t kl = make_key(k, 1, i);
		if (i % 2)
			cr_assert_eq(bf_store_delete(st, k, kl, &err), 0, "%s", bf_err_text(&err));
		else
			cr_assert_eq(bf_store_put(st, k, kl, "new", 3, &err), 0, "%s", bf_err_text(&err));
	}
	bf_store_snap *snap = bf_store_snapshot(st);
	/* Written after the snapshot: seen by neither scan. */
	cr_assert_eq(bf_store_put(st, "t00_r000001", 11, "late", 4, &err), 0);
	expect_same_everywhere(st, snap);
	cr_assert(expect_same(st, snap, "t00", "t01"), "file 0 overlaps nothing: read directly");
	cr_assert_not(expect_same(st, snap, "t01", "t02"), "file 1 and the flushed writes overlap");
	bf_store_snapshot_release(st, snap);

	/* A range deletion: in a file's own range-deletion block, which the
	 * data blocks do not show. */
	cr_assert_eq(bf_store_delete_range(st, "t02_r001000", 11, "t02_r002000", 11, &err), 0, "%s",
		     bf_err_text(&err));
	snap = bf_store_snapshot(st);
	expect_same_everywhere(st, snap);
	scan_out all = scan(st, snap, "t02", "t03", true);
	cr_assert_lt(all.n, (size_t)KEYS_PER_FILE, "the deleted range is gone");
	free(all.buf);
	bf_store_snapshot_release(st, snap);
	bf_store_close(st);
	free(dir);
}

Test(sst_direct, seeks_hand_over_to_rocksdb)
{
	char *dir;
	bf_store *st = store_with_files(&dir, 1, BF_COMPRESS_NONE);
	bf_err err = { 0 };
	bf_store_snap *snap = bf_store_snapshot(st);
	bf_iter_opts o = { .snap = snap, .forward_only = true };
	bf_store_iter *it;
	size_t kl;
	cr_assert_eq(bf_store_iter_create(st, "t", 1, "u", 1, &o, &it, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert(bf_rdb_iter_direct(it));
	for (int i = 0; i < 10; i++)
		bf_store_iter_next(it);
	cr_assert_eq(memcmp(bf_store_iter_key(it, &kl), "t00_r000030", 11), 0);
	bf_store_iter_prev(it);
	cr_assert_not(bf_rdb_iter_direct(it), "a prev is RocksDB's");
	cr_assert_eq(memcmp(bf_store_iter_key(it, &kl), "t00_r000027", 11), 0);
	bf_store_iter_seek(it, "t00_r000301", 11);
	cr_assert_eq(memcmp(bf_store_iter_key(it, &kl), "t00_r000303", 11), 0);
	bf_store_iter_seek_last(it);
	cr_assert_eq(memcmp(bf_store_iter_key(it, &kl), "t00_r008997", 11), 0);
	cr_assert_eq(bf_store_iter_status(it, &err), 0, "%s", bf_err_text(&err));
	bf_store_iter_destroy(it);
	bf_store_snapshot_release(st, snap);
	bf_store_close(st);
	free(dir);
}

Test(sst_direct, older_versions_in_one_file_are_read_once)
{
	char *dir = t_path_in(t_scratch_new("sst-direct"), "store"), k[32], v[32];
	bf_store *st = open_store(dir);
	bf_err err = { 0 };

	for (int i = 0; i < 2000; i++) {
		int kl = snprintf(k, sizeof(k), "v%06d", i), vl = snprintf(v, sizeof(v), "old-%d", i);
		cr_assert_eq(bf_store_put(st, k, (size_t)kl, v, (size_t)vl, &err), 0);
	}
	bf_store_snap *older = bf_store_snapshot(st);
	for (int i = 0; i < 2000; i += 3) {
		int kl = snprintf(k, sizeof(k), "v%06d", i), vl = snprintf(v, sizeof(v), "new-%d", i);
		cr_assert_eq(bf_store_put(st, k, (size_t)kl, v, (size_t)vl, &err), 0);
	}
	bf_store_snap *newer = bf_store_snapshot(st);
	/* One file with both versions of every third key: the older snapshot
	 * still needs the old ones. Versions of a key sit side by side, at
	 * restart points or not, some across blocks. */
	rocksdb_compact_range(st->db, NULL, 0, NULL, 0);
	bf_store_snap *after = bf_store_snapshot(st);
	cr_assert(expect_same(st, after, "v", "w"), "one file: read directly");
	expect_same_everywhere(st, after);
	cr_assert_not(expect_same(st, older, "v", "w"), "its files were compacted away");
	scan_out all = scan(st, after, "v", "w", true);
	cr_assert_eq(all.n, 2000u, "each key once");
	cr_assert(strstr(all.buf, "=5:new-0\n") && strstr(all.buf, "=8:new-1998\n") &&
		  strstr(all.buf, "=8:old-1999\n"), "the newest version of each");
	free(all.buf);
	bf_store_snapshot_release(st, after);
	bf_store_snapshot_release(st, newer);
	bf_store_snapshot_release(st, older);
	bf_store_close(st);
	free(dir);
}

/* The largest .sst in dir. */
static char *largest_sst(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *best = NULL;
	off_t size = -1;
	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		struct stat sb;
		char *p = t_path_in(dir, e->d_name);
		if (n > 4 && !strcmp(e->d_name + n - 4, ".sst") && !stat(p, &sb) && sb.st_size > size) {
			free(best);
			best = p;
			size = sb.st_size;
		} else {
			free(p);
		}
	}
	closedir(d);
	cr_assert_not_null(best);
	return best;
}

Test(sst_direct, damaged_block_is_an_error)
{
	char *dir;
	bf_store *st = store_with_files(&dir, 1, BF_COMPRESS_NONE);
	bf_err err = { 0 };
	char *file = largest_sst(dir);
	int fd = open(file, O_RDWR);
	uint8_t b;
	cr_assert_geq(fd, 0);
	/* A byte of a value in the first data blocks. */
	cr_assert_eq(pread(fd, &b, 1, 700), 1);
	b ^= 0x20;
	cr_assert_eq(pwrite(fd, &b, 1, 700), 1);
	close(fd);

	bf_store_snap *snap = bf_store_snapshot(st);
	bf_iter_opts o = { .snap = snap, .forward_only = true };
	bf_store_iter *it;
	int rc = bf_store_iter_create(st, "t", 1, "u", 1, &o, &it, &err);
	size_t n = 0;
	if (rc == 0) {
		for (; bf_store_iter_valid(it); bf_store_iter_next(it))
			n++;
		rc = bf_store_iter_status(it, &err);
		bf_store_iter_destroy(it);
	}
	cr_assert_eq(rc, BF_ECORRUPT, "a damaged block fails the scan (rc %d, %zu keys)", rc, n);
	cr_assert_lt(n, (size_t)KEYS_PER_FILE);
	cr_assert(strstr(bf_err_text(&err), "checksum mismatch"), "%s", bf_err_text(&err));
	bf_store_snapshot_release(st, snap);
	bf_store_close(st);
	free(file);
	free(dir);
}
