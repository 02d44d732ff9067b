/*
 * store: opening (and refusing to open) directories, point reads and
 * writes, batches, range deletes, snapshot iterators, SST ingest and size
 * estimates, all against real RocksDB directories in temp dirs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfill/catalog.h"
#include "bfill/error.h"
#include "bfill/sst.h"
#include "bfill/store.h"
#include "tests/support/support.h"

/* Each test's scratch directory goes in the suite's fini, even when an
 * assertion ends the test early. */
TestSuite(store, .fini = t_scratch_remove);

static bf_store *open_or_die(const char *dir, unsigned flags)
{
	bf_store *st = NULL;
	bf_err err = { 0 };
	int rc = bf_store_open(dir, flags, &st, &err);
	cr_assert_eq(rc, 0, "open %s: %s", dir, bf_err_text(&err));
	cr_assert_not_null(st);
	return st;
}

static void put_str(bf_store *st, const char *k, const char *v)
{
	bf_err err = { 0 };
	cr_assert_eq(bf_store_put(st, k, strlen(k), v, strlen(v), &err), 0, "put %s: %s", k,
		     bf_err_text(&err));
}

/* Asserts key k holds exactly v (v NULL: the key is absent). */
static void expect_value(bf_store *st, const char *k, const char *v)
{
	char *got = NULL;
	size_t glen = 0;
	bf_err err = { 0 };
	int rc = bf_store_get(st, k, strlen(k), &got, &glen, &err);
	if (!v) {
		cr_assert_eq(rc, BF_ENOTFOUND, "key %s should be absent, rc %d", k, rc);
		cr_assert_null(got);
		return;
	}
	cr_assert_eq(rc, 0, "get %s: %s", k, bf_err_text(&err));
	cr_assert_eq(glen, strlen(v), "key %s: length %zu, want %zu", k, glen, strlen(v));
	cr_assert(memcmp(got, v, glen) == 0, "key %s: value differs", k);
	free(got);
}

/* Keys of [lo, hi) (NULL = open) as "k1,k2,...", read through opts. */
static void expect_scan(bf_store *st, const char *lo, const char *hi, const bf_iter_opts *opts,
			const char *want)
{
	bf_store_iter *it = NULL;
	bf_err err = { 0 };
	char got[1024] = "";
	size_t used = 0;
	int rc = bf_store_iter_create(st, lo, lo ? strlen(lo) : 0, hi, hi ? strlen(hi) : 0, opts,
				      &it, &err);
	cr_assert_eq(rc, 0, "iter: %s", bf_err_text(&err));
	for (; bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t klen;
		const uint8_t *k = bf_store_iter_key(it, &klen);
		used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%.*s", used ? "," : "",
					 (int)klen, (const char *)k);
		cr_assert_lt(used, sizeof(got));
	}
	cr_assert_eq(bf_store_iter_status(it, &err), 0);
	bf_store_iter_destroy(it);
	cr_assert_str_eq(got, want, "scan [%s, %s)", lo ? lo : "-", hi ? hi : "-");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static bool file_exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* ---- opening ---- */

Test(store, open_missing_without_create)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "absent");
	bf_store *st = NULL;
	bf_err err = { 0 };

	cr_assert_eq(bf_store_open(dir, 0, &st, &err), BF_ENOTFOUND);
	cr_assert_null(st);
	cr_assert_not_null(strstr(err.msg, dir), "message names the dir: %s", err.msg);
	/* Read-only never creates, even when asked to. */
	cr_assert_eq(bf_store_open(dir, BF_STORE_READONLY | BF_STORE_CREATE, &st, &err),
		     BF_ENOTFOUND);
	cr_assert(!file_exists(dir), "a failed open must not create %s", dir);
	/* An existing empty directory is not a store either. */
	cr_assert_eq(bf_store_open(tmp, 0, &st, &err), BF_ENOTFOUND);
	cr_assert_eq(bf_store_open("", BF_STORE_CREATE, &st, &err), BF_EINVAL);
	free(dir);
}

Test(store, create_then_reopen)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);

	cr_assert_str_eq(bf_store_path(st), dir);
	cr_assert(!bf_store_readonly(st));
	cr_assert_not_null(bf_store_rocksdb(st));
	put_str(st, "tkey", "value");
	bf_store_close(st);

	/* Durable across close; CREATE on an existing store just opens it. */
	st = open_or_die(dir, 0);
	expect_value(st, "tkey", "value");
	bf_store_close(st);
	st = open_or_die(dir, BF_STORE_CREATE);
	expect_value(st, "tkey", "value");
	bf_store_close(st);
	st = open_or_die(dir, BF_STORE_READONLY);
	cr_assert(bf_store_readonly(st));
	expect_value(st, "tkey", "value");
	bf_store_close(st);
	bf_store_close(NULL);
	free(dir);
}

Test(store, open_dir_with_unrelated_files)
{
	char *tmp = t_scratch_new("store");
	char *file = t_path_in(tmp, "notes.txt");
	bf_store *st = NULL;
	bf_err err = { 0 };

	write_file(file, "not a database\n");
	cr_assert_eq(bf_store_open(tmp, 0, &st, &err), BF_ENOTSTORE);
	cr_assert_not_null(strstr(err.msg, "not a bfill store"), "message: %s", err.msg);
	/* CREATE must not turn somebody's directory into a store. */
	cr_assert_eq(bf_store_open(tmp, BF_STORE_CREATE, &st, &err), BF_ENOTSTORE);
	cr_assert_eq(bf_store_open(tmp, BF_STORE_READONLY, &st, &err), BF_ENOTSTORE);
	cr_assert_null(st);
	char *current = t_path_in(tmp, "CURRENT");
	cr_assert(!file_exists(current), "a refused open must leave the directory alone");
	free(current);
	free(file);
}

Test(store, open_plain_rocksdb_is_not_a_store)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "plain");
	char *e = NULL;
	bf_store *st = NULL;
	bf_err err = { 0 };

	/* A RocksDB database made without bfill: no marker record. */
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_t *db = rocksdb_open(o, dir, &e);
	cr_assert_null(e, "rocksdb_open: %s", e);
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_put(db, wo, "a", 1, "b", 1, &e);
	cr_assert_null(e, "rocksdb_put: %s", e);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_close(db);
	rocksdb_options_destroy(o);

	cr_assert_eq(bf_store_open(dir, 0, &st, &err), BF_ENOTSTORE);
	cr_assert_not_null(strstr(err.msg, "not a bfill store"), "message: %s", err.msg);
	cr_assert_eq(bf_store_open(dir, BF_STORE_CREATE, &st, &err), BF_ENOTSTORE);
	cr_assert_eq(bf_store_open(dir, BF_STORE_READONLY, &st, &err), BF_ENOTSTORE);
	cr_assert_null(st);
	free(dir);
}

/*
 * A child process opens the store for writing, records a table and holds
 * the store until the parent releases it (or exits: EOF releases too).
 */
static void lock_holder(const char *dir, int ready_fd, int release_fd)
{
	bf_store *st = NULL;
	bf_table t;
	char c = 'e';

	if (bf_store_open(dir, BF_STORE_CREATE, &st, NULL) == 0) {
		bf_table_sbtest(&t, "held");
		t.id = 321;
		if (bf_catalog_put_table(bf_store_catalog(st), &t, NULL) == 0)
			c = 'r';
	}
	if (write(ready_fd, &c, 1) != 1)
		_exit(3);
	while (read(release_fd, &c, 1) < 0 && errno == EINTR)
		;
	bf_store_close(st);
	_exit(0);
}

Test(store, locked_by_another_process)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	int ready[2], release[2], status;
	char c = 0;
	bf_store *st = NULL;
	bf_err err = { 0 };
	bf_table t;

	/* Fork before this process touches RocksDB, so the child starts clean. */
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(release), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		close(release[1]);
		lock_holder(dir, ready[1], release[0]);
	}
	close(ready[1]);
	close(release[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "child died before opening the store");
	cr_assert_eq(c, 'r', "child could not create the store");

	cr_assert_eq(bf_store_open(dir, 0, &st, &err), BF_ELOCKED, "rc %d: %s", err.code,
		     err.msg);
	cr_assert_null(st);
	cr_assert_not_null(strstr(err.msg, "another process"), "message: %s", err.msg);
	cr_assert_not_null(strstr(err.msg, dir), "message names the dir: %s", err.msg);
	cr_assert_eq(bf_store_open(dir, BF_STORE_CREATE, &st, &err), BF_ELOCKED);

	/* Readers (bfill status) still get in and see committed catalog data. */
	st = open_or_die(dir, BF_STORE_READONLY);
	cr_assert_eq(bf_catalog_get_table(bf_store_catalog(st), "held", &t, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(t.id, 321);
	cr_assert_eq(bf_store_put(st, "x", 1, "y", 1, &err), BF_ESTATE);
	cr_assert_eq(bf_store_delete(st, "x", 1, &err), BF_ESTATE);
	bf_store_close(st);

	close(release[1]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	close(ready[0]);

	/* Released: a writer gets in now. */
	st = open_or_die(dir, 0);
	bf_store_close(st);
	free(dir);
}

Test(store, second_writer_in_same_process_is_refused)
{
	char *tmp = t_scratch_new("store");
	bf_store *a = open_or_die(tmp, BF_STORE_CREATE), *b = NULL;
	bf_err err = { 0 };

	cr_assert_eq(bf_store_open(tmp, 0, &b, &err), BF_ELOCKED, "rc %d: %s", err.code,
		     err.msg);
	cr_assert_null(b);
	bf_store_close(a);
}

/* ---- reads and writes ---- */

Test(store, get_put_delete)
{
	char *tmp = t_scratch_new("store");
	bf_store *st = open_or_die(tmp, BF_STORE_CREATE);
	bf_err err = { 0 };
	char *val = NULL;
	size_t vlen = 99;

	cr_assert_eq(bf_store_get(st, "t-missing", 9, &val, &vlen, &err), BF_ENOTFOUND);
	put_str(st, "t1", "one");
	expect_value(st, "t1", "one");
	put_str(st, "t1", "uno");
	expect_value(st, "t1", "uno");

	/* Binary keys and values, embedded NULs, an empty value. */
	const uint8_t bk[] = { 't', 0, 0xff, 0, 1 }, bv[] = { 0, 1, 2, 0, 0xfe };
	cr_assert_eq(bf_store_put(st, bk, sizeof(bk), bv, sizeof(bv), &err), 0);
	cr_assert_eq(bf_store_get(st, bk, sizeof(bk), &val, &vlen, &err), 0);
	cr_assert_eq(vlen, sizeof(bv));
	cr_assert(memcmp(val, bv, sizeof(bv)) == 0);
	free(val);
	cr_assert_eq(bf_store_get(st, bk, sizeof(bk) - 1, &val, &vlen, &err), BF_ENOTFOUND);
	cr_assert_eq(bf_store_put(st, "t-empty", 7, "", 0, &err), 0);
	cr_assert_eq(bf_store_get(st, "t-empty", 7, &val, &vlen, &err), 0);
	cr_assert_eq(vlen, 0);
	free(val);

	cr_assert_eq(bf_store_delete(st, "t1", 2, &err), 0);
	expect_value(st, "t1", NULL);
	/* Deleting an absent key is not an error. */
	cr_assert_eq(bf_store_delete(st, "t1", 2, &err), 0);
	bf_store_close(st);
}

Test(store, write_batch_is_atomic_and_invisible_until_commit)
{
	char *tmp = t_scratch_new("store");
	bf_store *st = open_or_die(tmp, BF_STORE_CREATE);
	bf_err err = { 0 };

	put_str(st, "ta", "old-a");
	put_str(st, "tb", "old-b");
	put_str(st, "td", "d");
	put_str(st, "te", "e");
	put_str(st, "tf", "f");

	bf_store_batch *b = bf_store_batch_create();
	cr_assert_not_null(b);
	bf_store_batch_put(b, "ta", 2, "new-a", 5);
	bf_store_batch_put(b, "tc", 2, "c", 1);
	bf_store_batch_delete(b, "tb", 2);
	bf_store_batch_delete_range(b, "td", 2, "tf", 2);
	/* Nothing is visible before the commit. */
	expect_value(st, "ta", "old-a");
	expect_value(st, "tb", "old-b");
	expect_value(st, "tc", NULL);
	expect_value(st, "td", "d");
	cr_assert_eq(bf_store_batch_commit(st, b, &err), 0, "%s", bf_err_text(&err));
	bf_store_batch_destroy(b);
	expect_value(st, "ta", "new-a");
	expect_value(st, "tb", NULL);
	expect_value(st, "tc", "c");
	expect_value(st, "td", NULL);
	expect_value(st, "te", NULL);
	expect_value(st, "tf", "f");

	/* A batch destroyed without commit changes nothing. */
	b = bf_store_batch_create();
	bf_store_batch_put(b, "tz", 2, "z", 1);
	bf_store_batch_delete(b, "ta", 2);
	bf_store_batch_destroy(b);
	bf_store_batch_destroy(NULL);
	expect_value(st, "tz", NULL);
	expect_value(st, "ta", "new-a");
	bf_store_close(st);

	/* A read-only store refuses a batch. */
	st = open_or_die(tmp, BF_STORE_READONLY);
	b = bf_store_batch_create();
	bf_store_batch_put(b, "tz", 2, "z", 1);
	cr_assert_eq(bf_store_batch_commit(st, b, &err), BF_ESTATE);
	bf_store_batch_destroy(b);
	bf_store_close(st);
}

Test(store, delete_range_is_half_open)
{
	char *tmp = t_scratch_new("store");
	bf_store *st = open_or_die(tmp, BF_STORE_CREATE);
	bf_err err = { 0 };
	char k[3] = "t?";

	for (char c = 'a'; c <= 'h'; c++) {
		k[1] = c;
		put_str(st, k, k);
	}
	cr_assert_eq(bf_store_delete_range(st, "tc", 2, "tf", 2, &err), 0, "%s",
		     bf_err_text(&err));
	expect_scan(st, "t", "u", NULL, "ta,tb,tf,tg,th");
	/* An empty range deletes nothing; the catalog ("m...") is untouched. */
	cr_assert_eq(bf_store_delete_range(st, "tg", 2, "tg", 2, &err), 0);
	expect_scan(st, "t", "u", NULL, "ta,tb,tf,tg,th");
	cr_assert_eq(bf_store_delete_range(st, "t", 1, "u", 1, &err), 0);
	expect_scan(st, "t", "u", NULL, "");
	expect_value(st, BF_CATALOG_PREFIX "store", "bfill-store-v1");
	bf_store_close(st);

	st = open_or_die(tmp, BF_STORE_READONLY);
	cr_assert_eq(bf_store_delete_range(st, "t", 1, "u", 1, &err), BF_ESTATE);
	bf_store_close(st);
}

Test(store, iterator_bounds_and_seek)
{
	char *tmp = t_scratch_new("store");
	bf_store *st = open_or_die(tmp, BF_STORE_CREATE);
	bf_iter_opts one_pass = { .readahead = 1 << 20, .fill_cache = false };

	put_str(st, "t1", "a");
	put_str(st, "t2", "b");
	put_str(st, "t3", "c");
	put_str(st, "t4", "d");
	put_str(st, "u1", "e");

	expect_scan(st, "t2", "t4", NULL, "t2,t3");
	expect_scan(st, "t2", "t4", &one_pass, "t2,t3");
	expect_scan(st, "t0", "t9", NULL, "t1,t2,t3,t4");
	expect_scan(st, "t3", NULL, NULL, "t3,t4,u1");
	expect_scan(st, "t25", "t35", NULL, "t3");
	expect_scan(st, "t5", "t9", NULL, "");
	/* No lower bound: the catalog records sort first ('m' < 't'). */
	expect_scan(st, NULL, "t2", NULL, BF_CATALOG_PREFIX "store," BF_CATALOG_PREFIX "uuid,t1");

	/* Seek stays inside the bounds and values follow their keys. */
	bf_store_iter *it = NULL;
	bf_err err = { 0 };
	size_t len;
	cr_assert_eq(bf_store_iter_create(st, "t2", 2, "t4", 2, NULL, &it, &err), 0);
	bf_store_iter_seek(it, "t3", 2);
	cr_assert(bf_store_iter_valid(it));
	const uint8_t *v = bf_store_iter_value(it, &len);
	cr_assert(len == 1 && v[0] == 'c');
	bf_store_iter_seek(it, "t4", 2);
	cr_assert(!bf_store_iter_valid(it), "seek to the upper bound leaves the range");
	bf_store_iter_seek(it, "t0", 2);
	cr_assert(bf_store_iter_valid(it));
	const uint8_t *k = bf_store_iter_key(it, &len);
	cr_assert(len == 2 && memcmp(k, "t2", 2) == 0, "seek below the lower bound clamps to it");
	cr_assert_eq(bf_store_iter_status(it, &err), 0);
	bf_store_iter_destroy(it);
	bf_store_iter_destroy(NULL);
	bf_store_close(st);
}

Test(store, snapshot_does_not_see_later_writes)
{
	char *tmp = t_scratch_new("store");
	bf_store *st = open_or_die(tmp, BF_STORE_CREATE);
	bf_err err = { 0 };

	put_str(st, "t1", "a");
	put_str(st, "t2", "b");
	put_str(st, "t3", "c");
	bf_store_snap *snap = bf_store_snapshot(st);
	cr_assert_not_null(snap);
	bf_iter_opts at_snap = { .snap = snap, .fill_cache = true };

	put_str(st, "t4", "d");
	put_str(st, "t3", "C");
	cr_assert_eq(bf_store_delete(st, "t1", 2, &err), 0);
	cr_assert_eq(bf_store_delete_range(st, "t2", 2, "t3", 2, &err), 0);

	expect_scan(st, "t", "u", &at_snap, "t1,t2,t3");
	expect_scan(st, "t", "u", NULL, "t3,t4");
	expect_scan(st, "t2", "t9", &at_snap, "t2,t3");

	/* The snapshot's t3 is the old value. */
	bf_store_iter *it = NULL;
	size_t len;
	cr_assert_eq(bf_store_iter_create(st, "t3", 2, NULL, 0, &at_snap, &it, &err), 0);
	cr_assert(bf_store_iter_valid(it));
	const uint8_t *v = bf_store_iter_value(it, &len);
	cr_assert(len == 1 && v[0] == 'c', "snapshot value of t3");
	bf_store_iter_destroy(it);

	bf_store_snapshot_release(st, snap);
	bf_store_snapshot_release(st, NULL);
	bf_store_close(st);
}

/* ---- SST files ---- */

static void sst_key(char *buf, size_t n, int i)
{
	snprintf(buf, n, "t%06d", i);
}

/* Writes keys t<from>..t<to-1> with value "v<i>:<tag>"; returns the file size. */
static uint64_t write_sst(const char *path, int from, int to, const char *tag, bf_compression c)
{
	bf_sst_writer *w = NULL;
	bf_err err = { 0 };
	char k[32], v[64];
	uint64_t size = 0, raw = 0;

	cr_assert_eq(bf_sst_writer_open(path, c, 0, &w, &err), 0, "%s", bf_err_text(&err));
	for (int i = from; i < to; i++) {
		sst_key(k, sizeof(k), i);
		int vn = snprintf(v, sizeof(v), "v%d:%s", i, tag);
		cr_assert_eq(bf_sst_writer_put(w, k, strlen(k), v, (size_t)vn, &err), 0, "%s",
			     bf_err_text(&err));
		raw += strlen(k) + (size_t)vn;
	}
	cr_assert_eq(bf_sst_writer_keys(w), (uint64_t)(to - from));
	cr_assert_eq(bf_sst_writer_raw_bytes(w), raw);
	cr_assert_eq(bf_sst_writer_finish(w, &size, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(size, 0);
	bf_sst_writer_destroy(w);
	cr_assert(file_exists(path), "a finished file is kept");
	return size;
}

static void expect_sst_keys(bf_store *st, int from, int to, const char *tag)
{
	char k[32], v[64];
	for (int i = from; i < to; i++) {
		sst_key(k, sizeof(k), i);
		snprintf(v, sizeof(v), "v%d:%s", i, tag);
		expect_value(st, k, v);
	}
}

/* Number of data ('t') keys in the store. */
static size_t count_data_keys(bf_store *st)
{
	bf_store_iter *it = NULL;
	bf_err err = { 0 };
	size_t n = 0;
	cr_assert_eq(bf_store_iter_create(st, "t", 1, "u", 1, NULL, &it, &err), 0);
	for (; bf_store_iter_valid(it); bf_store_iter_next(it))
		n++;
	cr_assert_eq(bf_store_iter_status(it, &err), 0);
	bf_store_iter_destroy(it);
	return n;
}

Test(store, sst_ingest_two_files_in_one_step)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	char *f1 = t_path_in(tmp, "a.sst"), *f2 = t_path_in(tmp, "b.sst");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);
	bf_err err = { 0 };

	write_sst(f1, 0, 5000, "a", BF_COMPRESS_LZ4);
	write_sst(f2, 5000, 12000, "b", BF_COMPRESS_ZSTD);
	/* An older value for a key in the files: ingested data is newer. */
	put_str(st, "t000007", "stale");
	const char *files[] = { f1, f2 };
	cr_assert_eq(bf_store_ingest(st, files, 2, &err), 0, "%s", bf_err_text(&err));
	expect_sst_keys(st, 0, 5000, "a");
	expect_sst_keys(st, 5000, 12000, "b");
	cr_assert_eq(count_data_keys(st), 12000);
	/* Ingest moves the files into the store. */
	cr_assert(!file_exists(f1) && !file_exists(f2), "ingested files are moved");
	/* Ingesting nothing is a no-op. */
	cr_assert_eq(bf_store_ingest(st, NULL, 0, &err), 0);
	bf_store_close(st);

	/* Durable: visible after reopening. */
	st = open_or_die(dir, BF_STORE_READONLY);
	cr_assert_eq(count_data_keys(st), 12000);
	expect_sst_keys(st, 11990, 12000, "b");
	char *f3 = t_path_in(tmp, "c.sst");
	write_sst(f3, 20000, 20010, "c", BF_COMPRESS_NONE);
	const char *ro_files[] = { f3 };
	cr_assert_eq(bf_store_ingest(st, ro_files, 1, &err), BF_ESTATE);
	bf_store_close(st);
	free(f1);
	free(f2);
	free(f3);
	free(dir);
}

Test(store, sst_writer_rejects_unordered_keys_and_cleans_up)
{
	char *tmp = t_scratch_new("store");
	char *f = t_path_in(tmp, "x.sst");
	bf_sst_writer *w = NULL;
	bf_err err = { 0 };

	cr_assert_eq(bf_sst_writer_open(f, BF_COMPRESS_NONE, 4096, &w, &err), 0);
	cr_assert_eq(bf_sst_writer_put(w, "t2", 2, "b", 1, &err), 0);
	cr_assert_neq(bf_sst_writer_put(w, "t1", 2, "a", 1, &err), 0, "keys must increase");
	cr_assert_neq(bf_sst_writer_put(w, "t2", 2, "a", 1, &err), 0, "duplicate key");
	cr_assert_eq(bf_sst_writer_keys(w), 1);
	/* An unfinished file is removed. */
	bf_sst_writer_destroy(w);
	bf_sst_writer_destroy(NULL);
	cr_assert(!file_exists(f), "unfinished %s must be removed", f);

	/* A path in a missing directory fails at open. */
	char *bad = t_path_in(tmp, "no/such/dir/x.sst");
	cr_assert_neq(bf_sst_writer_open(bad, BF_COMPRESS_NONE, 0, &w, &err), 0);
	cr_assert_null(w);
	free(bad);
	free(f);
}

Test(store, failed_ingest_leaves_nothing)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	char *good = t_path_in(tmp, "good.sst"), *junk = t_path_in(tmp, "junk.sst");
	char *missing = t_path_in(tmp, "missing.sst");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);
	bf_err err = { 0 };

	put_str(st, "t999999", "before");
	write_sst(good, 0, 3000, "g", BF_COMPRESS_LZ4);
	write_file(junk, "this is not an sst file, just text that is long enough to look like one\n");

	const char *only_junk[] = { junk };
	int rc = bf_store_ingest(st, only_junk, 1, &err);
	cr_assert_lt(rc, 0, "ingesting a non-SST must fail");
	cr_assert_neq(err.msg[0], '\0', "the failure has a message");
	cr_assert_eq(count_data_keys(st), 1);

	/* One bad file spoils the whole step: the good file's keys stay out. */
	const char *mixed[] = { good, junk };
	cr_assert_lt(bf_store_ingest(st, mixed, 2, &err), 0);
	cr_assert_eq(count_data_keys(st), 1);
	expect_value(st, "t000001", NULL);
	const char *absent[] = { good, missing };
	cr_assert_lt(bf_store_ingest(st, absent, 2, &err), 0);
	cr_assert_eq(count_data_keys(st), 1);
	expect_value(st, "t999999", "before");

	/* The good file was not consumed by the failures and still ingests. */
	cr_assert(file_exists(good));
	const char *just_good[] = { good };
	cr_assert_eq(bf_store_ingest(st, just_good, 1, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(count_data_keys(st), 3001);
	bf_store_close(st);
	free(good);
	free(junk);
	free(missing);
	free(dir);
}

Test(store, ingest_overrides_older_values)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	char *f = t_path_in(tmp, "a.sst"), *again = t_path_in(tmp, "again.sst");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);
	bf_err err = { 0 };

	put_str(st, "t000007", "stale");
	write_sst(f, 0, 100, "a", BF_COMPRESS_NONE);
	const char *files[] = { f };
	cr_assert_eq(bf_store_ingest(st, files, 1, &err), 0, "%s", bf_err_text(&err));
	expect_value(st, "t000007", "v7:a");

	/* Re-ingesting the same keys is idempotent. */
	write_sst(again, 0, 100, "a", BF_COMPRESS_NONE);
	const char *files2[] = { again };
	cr_assert_eq(bf_store_ingest(st, files2, 1, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(count_data_keys(st), 100);
	expect_sst_keys(st, 0, 100, "a");
	bf_store_close(st);
	free(f);
	free(again);
	free(dir);
}

Test(store, approx_size_tracks_ingested_data)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	char *f = t_path_in(tmp, "a.sst");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);
	bf_err err = { 0 };
	uint64_t bytes = 1;

	cr_assert_eq(bf_store_approx_size(st, "t", 1, "u", 1, &bytes, &err), 0);
	cr_assert_eq(bytes, 0, "empty store, %llu bytes", (unsigned long long)bytes);

	uint64_t size = write_sst(f, 0, 50000, "some-longer-value-to-take-up-space", BF_COMPRESS_NONE);
	const char *files[] = { f };
	cr_assert_eq(bf_store_ingest(st, files, 1, &err), 0, "%s", bf_err_text(&err));

	cr_assert_eq(bf_store_approx_size(st, "t", 1, "u", 1, &bytes, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_geq(bytes, size / 2, "whole range: %llu bytes, file %llu",
		      (unsigned long long)bytes, (unsigned long long)size);
	cr_assert_leq(bytes, size * 2);
	uint64_t half = 0;
	cr_assert_eq(bf_store_approx_size(st, "t000000", 7, "t025000", 7, &half, &err), 0);
	cr_assert_lt(half, bytes, "half the keys: %llu of %llu", (unsigned long long)half,
		     (unsigned long long)bytes);
	cr_assert_gt(half, bytes / 5);
	uint64_t outside = 1;
	cr_assert_eq(bf_store_approx_size(st, "v", 1, "w", 1, &outside, &err), 0);
	cr_assert_eq(outside, 0, "a range with no data: %llu bytes", (unsigned long long)outside);
	bf_store_close(st);
	free(f);
	free(dir);
}

/* ---- disk space ---- */

/* Entries (tombstones included) in the store's live SST files. */
static uint64_t live_entries(bf_store *st)
{
	const rocksdb_livefiles_t *files = rocksdb_livefiles(bf_store_rocksdb(st));
	uint64_t n = 0;

	cr_assert_not_null(files);
	for (int i = 0; i < rocksdb_livefiles_count(files); i++)
		n += rocksdb_livefiles_entries(files, i);
	rocksdb_livefiles_destroy(files);
	return n;
}

static void ingest_one(bf_store *st, const char *path)
{
	bf_err err = { 0 };
	const char *files[] = { path };
	cr_assert_eq(bf_store_ingest(st, files, 1, &err), 0, "%s", bf_err_text(&err));
}

Test(store, delete_range_gives_the_space_back)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	char *a = t_path_in(tmp, "a.sst"), *b = t_path_in(tmp, "b.sst"), *c = t_path_in(tmp, "c.sst");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);
	bf_err err = { 0 };
	char *e = NULL;

	/* Files wholly inside [t000000, t040000), one that straddles its end,
	 * and a flushed memtable (L0, which RocksDB never drops by range). */
	write_sst(a, 0, 20000, "a", BF_COMPRESS_NONE);
	write_sst(b, 20000, 40000, "b", BF_COMPRESS_NONE);
	write_sst(c, 35000, 45000, "c", BF_COMPRESS_NONE);
	ingest_one(st, a);
	ingest_one(st, b);
	ingest_one(st, c);
	put_str(st, "t010000", "put");
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flush(bf_store_rocksdb(st), fo, &e);
	rocksdb_flushoptions_destroy(fo);
	cr_assert_null(e, "flush: %s", e);
	cr_assert_geq(live_entries(st), 50001);

	cr_assert_eq(bf_store_delete_range(st, "t000000", 7, "t040000", 7, &err), 0, "%s",
		     bf_err_text(&err));
	/* What is left in files: the 5000 keys past the end and the few
	 * catalog records that the flush took along. */
	cr_assert_leq(live_entries(st), 5000 + 10, "files still hold %llu entries",
		      (unsigned long long)live_entries(st));
	/* The straddling file's keys past the end are all there. */
	cr_assert_eq(count_data_keys(st), 5000);
	expect_sst_keys(st, 40000, 45000, "c");
	bf_store_close(st);

	st = open_or_die(dir, BF_STORE_READONLY);
	cr_assert_eq(count_data_keys(st), 5000, "the delete is durable");
	bf_store_close(st);
	free(a);
	free(b);
	free(c);
	free(dir);
}

Test(store, delete_range_drops_no_file_holding_its_end_key)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	char *a = t_path_in(tmp, "a.sst"), *b = t_path_in(tmp, "b.sst");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);
	bf_err err = { 0 };
	char *val = NULL;
	size_t vlen = 0;

	/* A file whose last key is the range's (excluded) end. */
	write_sst(a, 0, 100, "a", BF_COMPRESS_NONE);
	ingest_one(st, a);
	cr_assert_eq(bf_store_delete_range(st, "t000000", 7, "t000099", 7, &err), 0, "%s",
		     bf_err_text(&err));
	cr_assert_eq(count_data_keys(st), 1);
	expect_sst_keys(st, 99, 100, "a");

	/* An end whose last byte is 0: the greatest key below it ends the
	 * files that may go, and the end key itself stays. */
	write_sst(b, 200, 300, "b", BF_COMPRESS_NONE);
	ingest_one(st, b);
	const char end0[] = "t000299\0";
	cr_assert_eq(bf_store_put(st, end0, sizeof(end0) - 1, "end", 3, &err), 0);
	cr_assert_eq(bf_store_delete_range(st, "t000200", 7, end0, sizeof(end0) - 1, &err), 0,
		     "%s", bf_err_text(&err));
	cr_assert_eq(count_data_keys(st), 2);
	cr_assert_eq(bf_store_get(st, end0, sizeof(end0) - 1, &val, &vlen, &err), 0);
	cr_assert(vlen == 3 && !memcmp(val, "end", 3));
	free(val);
	bf_store_close(st);
	free(a);
	free(b);
	free(dir);
}

Test(store, check_free_names_what_is_free_and_what_is_needed)
{
	char *tmp = t_scratch_new("store");
	bf_store *st = open_or_die(tmp, BF_STORE_CREATE);
	bf_err err = { 0 };

	cr_assert_eq(bf_store_check_free(st, 0, "do nothing", &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_store_check_free(st, UINT64_MAX, "load 5 rows", &err), BF_ENOSPC);
	const char *msg = bf_err_text(&err);
	cr_assert(strstr(msg, "store ") == msg && strstr(msg, bf_store_path(st)), "%s", msg);
	cr_assert_not_null(strstr(msg, " free on its file system; bfill needs at least "), "%s", msg);
	cr_assert_not_null(strstr(msg, " to load 5 rows (free space, or use another store)"), "%s",
			   msg);
	cr_assert_null(strchr(msg, '\n'), "one line: %s", msg);
	bf_store_close(st);
}

Test(store, compression_names)
{
	static const struct { const char *name; bf_compression c; } known[] = {
		{ "none", BF_COMPRESS_NONE }, { "lz4", BF_COMPRESS_LZ4 }, { "zstd", BF_COMPRESS_ZSTD },
	};
	bf_compression c;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		c = (bf_compression)-1;
		cr_assert_eq(bf_compression_parse(known[i].name, &c), 0, "%s", known[i].name);
		cr_assert_eq(c, known[i].c);
		cr_assert_str_eq(bf_compression_name(c), known[i].name);
	}
	const char *bad[] = { "", "LZ4", "gzip", "lz4 ", "snappy", "zst" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = BF_COMPRESS_ZSTD;
		cr_assert_eq(bf_compression_parse(bad[i], &c), BF_EINVAL, "'%s' accepted", bad[i]);
		cr_assert_eq(c, BF_COMPRESS_ZSTD, "a rejected name leaves the output alone");
	}
}

/* Import mode's switch, and the level-0 count that tells a busy store:
 * overlapping ingests fill levels 6 to 1 upwards, then pile up in level 0
 * while compaction is off. */
Test(store, compaction_switch_and_level0_count)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	bf_store *st = open_or_die(dir, BF_STORE_CREATE);
	bf_err err = { 0 };
	uint64_t l0 = 99;

	cr_assert_eq(bf_store_level0_files(st, &l0, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(l0, 0);
	cr_assert_eq(bf_store_set_auto_compaction(st, false, &err), 0, "%s", bf_err_text(&err));
	for (int i = 0; i < 9; i++) {
		char name[16], *f;
		snprintf(name, sizeof(name), "%d.sst", i);
		f = t_path_in(tmp, name);
		write_sst(f, 0, 100, name, BF_COMPRESS_NONE); /* the same keys each time */
		const char *files[] = { f };
		cr_assert_eq(bf_store_ingest(st, files, 1, &err), 0, "%s", bf_err_text(&err));
		free(f);
	}
	cr_assert_eq(bf_store_level0_files(st, &l0, &err), 0);
	cr_assert_geq(l0, 2, "overlapping ingests land in level 0 (%llu)", (unsigned long long)l0);
	cr_assert_eq(bf_store_set_auto_compaction(st, true, &err), 0, "%s", bf_err_text(&err));
	bf_store_close(st);
	st = open_or_die(dir, BF_STORE_READONLY);
	cr_assert_eq(bf_store_set_auto_compaction(st, false, &err), BF_ESTATE);
	bf_store_close(st);
	free(dir);
}

/*
 * A writer that reopens the store recovers the previous writer's log into
 * a table file and deletes the log. A reader opening at that moment must
 * still see everything committed before it — the marker and the latest
 * value — and never a store that looks empty or older.
 */
#define REOPEN_CYCLES 150

static void reopening_writer(const char *dir, int ready_fd)
{
	bf_store *st = NULL;
	char v[16], c = 'e';

	for (int i = 1; i <= REOPEN_CYCLES; i++) {
		if (bf_store_open(dir, BF_STORE_CREATE, &st, NULL))
			_exit(3);
		snprintf(v, sizeof(v), "%06d", i);
		if (bf_store_put(st, "n", 1, v, strlen(v), NULL))
			_exit(4);
		bf_store_close(st);
		if (i == 1 && write(ready_fd, &c, 1) != 1)
			_exit(5);
	}
	_exit(0);
}

Test(store, readonly_open_during_writer_recovery_sees_committed_data, .timeout = 120)
{
	char *tmp = t_scratch_new("store");
	char *dir = t_path_in(tmp, "s");
	int ready[2], status, last = 0, opens = 0;
	char c = 0;

	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		reopening_writer(dir, ready[1]);
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "writer died before creating the store");

	while (waitpid(pid, &status, WNOHANG) == 0) {
		bf_store *st = NULL;
		bf_err err = { 0 };
		char *got = NULL;
		size_t glen = 0;
		int rc = bf_store_open(dir, BF_STORE_READONLY, &st, &err);

		cr_assert_eq(rc, 0, "read-only open %d: %s", opens, bf_err_text(&err));
		rc = bf_store_get(st, "n", 1, &got, &glen, &err);
		cr_assert_eq(rc, 0, "open %d: committed key missing: %s", opens, bf_err_text(&err));
		int n = 0;
		for (size_t i = 0; i < glen; i++) /* the value has no NUL */
			n = n * 10 + (got[i] - '0');
		cr_assert_geq(n, last, "open %d sees %d after %d", opens, n, last);
		last = n;
		free(got);
		bf_store_close(st);
		opens++;
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %d", status);
	cr_assert_gt(opens, 0, "no read-only open overlapped the writer");
	cr_log_info("%d read-only opens during %d writer reopens", opens, REOPEN_CYCLES);
	close(ready[0]);
	free(dir);
}
