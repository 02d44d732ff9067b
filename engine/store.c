/*
 * The store: a RocksDB directory of raw TiDB keys plus bfill's catalog.
 * Depends on engine/rdb and util.
 */
#include "bfill/store.h"
#include "engine/catalog_store.h"
#include "engine/rdb.h"
#include "engine/store_impl.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Marks a directory as a bfill store; its value is the format version. */
#define MARKER_KEY BF_CATALOG_PREFIX "store"
#define STORE_FORMAT "bfill-store-v1"
#define UUID_KEY BF_CATALOG_PREFIX "uuid"
/* The catalog is tiny and scans bypass the cache, so a small cache keeps
 * the store's share of the job's memory budget small. */
#define STORE_BLOCK_CACHE (16u << 20)


/* 1 when dir is missing or empty, 0 when it has entries, <0 on error. */
static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return errno == ENOENT ? 1 : -errno;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

static bool file_exists(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat sb;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &sb) == 0;
}

/*
 * A read-only open reads the MANIFEST and then replays the write-ahead
 * logs it finds. A writer that flushes between the two (as every writable
 * open does with the logs it recovers) deletes a log whose data is not in
 * the MANIFEST the reader read, and the reader sees a store without it —
 * without even its marker. Such a writer always deletes a log or a
 * MANIFEST that was there before the read began, so a reader that lists
 * both before and after its open knows when to open again. A compaction
 * that ends during the open appends to the MANIFEST and deletes table
 * files the reader may have been about to look at: that open fails, and
 * a MANIFEST that grew or was replaced says the failure was the race,
 * not the store.
 */
#define LOG_SET_MAX 64
#define READONLY_OPEN_TRIES 20

typedef struct log_set {
	uint64_t num[LOG_SET_MAX]; /* ascending; the oldest LOG_SET_MAX kept */
	int n;
	bool full;
	uint64_t manifest_num, manifest_size; /* the newest MANIFEST */
} log_set;

static bool log_file_number(const char *name, uint64_t *num)
{
	const char *digits = name, *end;
	size_t len = strlen(name);

	if (!strncmp(name, "MANIFEST-", 9))
		digits = name + 9, end = name + len;
	else if (len > 4 && !strcmp(name + len - 4, ".log"))
		end = name + len - 4;
	else
		return false;
	if (digits == end)
		return false;
	*num = 0;
	for (const char *c = digits; c < end; c++) {
		if (*c < '0' || *c > '9')
			return false;
		*num = *num * 10 + (uint64_t)(*c - '0');
	}
	return true;
}

/* Logs and MANIFESTs share RocksDB's file numbering, so one number names
 * either. A directory that cannot be read gives an empty set: nothing
 * vanishes from it, and the open says what is wrong. */
static void log_set_scan(const char *dir, log_set *s)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t num;

	s->n = 0;
	s->full = false;
	s->manifest_num = s->manifest_size = 0;
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!log_file_number(e->d_name, &num))
			continue;
		if (e->d_name[0] == 'M' && num >= s->manifest_num) {
			char p[PATH_MAX];
			struct stat sb;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			s->manifest_num = num;
			s->manifest_size = stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
		}
		int i = s->n < LOG_SET_MAX ? s->n : LOG_SET_MAX - 1;
		if (s->n == LOG_SET_MAX) {
			s->full = true;
			if (num >= s->num[i])
				continue;
		}
		for (; i > 0 && s->num[i - 1] > num; i--)
			s->num[i] = s->num[i - 1];
		s->num[i] = num;
		if (s->n < LOG_SET_MAX)
			s->n++;
	}
	closedir(d);
}

/* True when a file of before is gone from after (past a full after, a
 * number above its last is not known to be gone). */
static bool log_set_lost(const log_set *before, const log_set *after)
{
	int j = 0;
	for (int i = 0; i < before->n; i++) {
		uint64_t num = before->num[i];
		while (j < after->n && after->num[j] < num)
			j++;
		if (j < after->n && after->num[j] == num)
			continue;
		if (after->full && j == after->n)
			return false;
		return true;
	}
	return false;
}

/* True when the newest MANIFEST is another one, or grew. */
static bool log_set_manifest_moved(const log_set *before, const log_set *after)
{
	return before->manifest_num != after->manifest_num ||
	       before->manifest_size != after->manifest_size;
}

/* The store-space error, one line, so every caller says it the same way. */
static int no_room(const char *dir, uint64_t avail, uint64_t want, const char *to_do,
		   bf_err *err)
{
	char avail_s[32], want_s[32];
	return bf_errf(err, BF_ENOSPC,
		       "store %s: only %s free on its file system; bfill needs at least %s to %s "
		       "(free space, or use another store)",
		       dir, bf_fmt_bytes(avail, avail_s, sizeof(avail_s)),
		       bf_fmt_bytes(want, want_s, sizeof(want_s)), to_do);
}

/* Checks the file system that holds path (or, while path does not exist
 * yet, its parent) for need + BF_STORE_MIN_FREE free bytes. */
static int check_free(const char *path, uint64_t need, const char *to_do, bf_err *err)
{
	char probe[PATH_MAX];
	uint64_t avail = 0, want;
	struct stat sb;

	if (stat(path, &sb) == 0)
		snprintf(probe, sizeof(probe), "%s", path);
	else
		bf_dirname(path, probe, sizeof(probe));
	/* No answer (a missing parent, say): what comes next says what is
	 * wrong better than statvfs would. */
	if (bf_fs_avail(probe, &avail, NULL))
		return 0;
	want = need > UINT64_MAX - BF_STORE_MIN_FREE ? UINT64_MAX : need + BF_STORE_MIN_FREE;
	return avail < want ? no_room(path, avail, want, to_do, err) : 0;
}

int bf_store_check_free(const bf_store *st, uint64_t need, const char *to_do, bf_err *err)
{
	return check_free(st->path, need, to_do, err);
}

void bf_store_close(bf_store *st)
{
	if (!st)
		return;
	bf_catalog_destroy(st->catalog);
	if (st->db)
		rocksdb_close(st->db);
	if (st->opts)
		rocksdb_options_destroy(st->opts);
	if (st->table_opts)
		rocksdb_block_based_options_destroy(st->table_opts);
	if (st->cache)
		rocksdb_cache_destroy(st->cache);
	if (st->wsync)
		rocksdb_writeoptions_destroy(st->wsync);
	if (st->ro)
		rocksdb_readoptions_destroy(st->ro);
	free(st);
}

static void store_options(bf_store *st)
{
	st->opts = rocksdb_options_create();
	st->cache = rocksdb_cache_create_lru(STORE_BLOCK_CACHE);
	st->table_opts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(st->table_opts, st->cache);
	rocksdb_block_based_options_set_block_size(st->table_opts, 16 << 10);
	rocksdb_options_set_block_based_table_factory(st->opts, st->table_opts);
	rocksdb_options_set_compression(st->opts, rocksdb_lz4_compression);
	/* Bulk data arrives as ingested SSTs; keep L0 from stalling writes. */
	rocksdb_options_set_level0_slowdown_writes_trigger(st->opts, 64);
	rocksdb_options_set_level0_stop_writes_trigger(st->opts, 128);
	rocksdb_options_set_max_open_files(st->opts, 1024);
	rocksdb_options_set_max_background_jobs(st->opts, 2);
	bf_rdb_silence_info_log(st->opts);
	st->wsync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(st->wsync, 1);
	st->ro = rocksdb_readoptions_create();
}

/* Reads the store's UUID; a writable store without one (made before
 * UUIDs) gets one now. */
static int load_uuid(bf_store *st, bf_err *err)
{
	char *val = NULL;
	size_t n = 0;
	int rc = bf_store_get(st, UUID_KEY, strlen(UUID_KEY), &val, &n, err);

	if (rc == 0) {
		if (!bf_uuid_well_formed(val, n))
			rc = bf_errf(err, BF_ECORRUPT, "store %s: catalog record %s is damaged",
				     st->path, UUID_KEY);
		else
			memcpy(st->uuid, val, BF_UUID_LEN);
		free(val);
		return rc;
	}
	if (rc != BF_ENOTFOUND || st->readonly)
		return rc == BF_ENOTFOUND ? 0 : rc;
	rc = bf_uuid_new(st->uuid, err);
	if (rc == 0)
		rc = bf_store_put(st, UUID_KEY, strlen(UUID_KEY), st->uuid, BF_UUID_LEN, err);
	if (rc)
		st->uuid[0] = '\0';
	return rc;
}

static int open_db(bf_store *st, const char *dir, bool creating, bf_err *err)
{
	char *e = NULL;
	int rc;

	if (st->readonly) {
		st->db = rocksdb_open_for_read_only(st->opts, dir, 0, &e);
	} else {
		rocksdb_options_set_create_if_missing(st->opts, creating);
		st->db = rocksdb_open(st->opts, dir, &e);
	}
	rc = bf_rdb_open_err(e, "store", dir, err);
	if (rc == BF_ELOCKED)
		bf_errf(err, rc, "store %s is open for writing in another process", dir);
	return rc;
}

/* Opens the database and checks its marker, writing it first into a
 * store being created. */
static int open_marked(bf_store *st, const char *dir, bool creating, bf_err *err)
{
	char *marker = NULL;
	size_t mlen = 0;
	int rc = open_db(st, dir, creating, err);

	if (rc == 0 && creating)
		rc = bf_store_put(st, MARKER_KEY, strlen(MARKER_KEY), STORE_FORMAT,
				  strlen(STORE_FORMAT), err);
	if (rc == 0)
		rc = bf_store_get(st, MARKER_KEY, strlen(MARKER_KEY), &marker, &mlen, err);
	if (rc == BF_ENOTFOUND || (rc == 0 && (mlen != strlen(STORE_FORMAT) ||
					       memcmp(marker, STORE_FORMAT, mlen))))
		rc = bf_errf(err, BF_ENOTSTORE, "%s is a RocksDB database but not a bfill store", dir);
	free(marker);
	return rc;
}

/* A read-only open that a writer's flush raced (see log_set) is opened
 * again, with the failure it may have given, until one sees the files
 * stay put; a writer flushes seldom, so the first or second try holds. */
static int open_readonly(bf_store *st, const char *dir, bf_err *err)
{
	log_set before, after;
	int rc;

	for (int tries = 1;; tries++) {
		log_set_scan(dir, &before);
		rc = open_marked(st, dir, false, err);
		log_set_scan(dir, &after);
		bool raced = log_set_lost(&before, &after) ||
			     (rc && log_set_manifest_moved(&before, &after));
		if (!raced || tries == READONLY_OPEN_TRIES)
			return rc;
		if (st->db)
			rocksdb_close(st->db);
		st->db = NULL;
		bf_err_clear(err);
		bf_sleep_ms(tries < 5 ? 1 : 10);
	}
}

int bf_store_open(const char *dir, unsigned flags, bf_store **out, bf_err *err)
{
	bf_store *st = NULL;
	int rc = 0, empty;
	bool readonly = flags & BF_STORE_READONLY, creating = false;

	*out = NULL;
	if (!dir || !*dir || strlen(dir) >= PATH_MAX)
		return bf_errf(err, BF_EINVAL, "store path is empty or too long");
	empty = dir_is_empty(dir);
	if (empty < 0)
		return bf_errf(err, empty, "store %s: %s", dir, bf_strerror(empty));
	if (empty && (!(flags & BF_STORE_CREATE) || readonly))
		return bf_errf(err, BF_ENOTFOUND, "store %s does not exist", dir);
	if (!empty && !file_exists(dir, "CURRENT"))
		return bf_errf(err, BF_ENOTSTORE, "%s is not a bfill store (no RocksDB database in it)", dir);
	/* Before anything is written: RocksDB's writes at open are not worth
	 * starting on a disk that cannot take them. */
	if (!readonly && !(flags & BF_STORE_RECLAIM)) {
		rc = check_free(dir, 0, "open it for writing", err);
		if (rc)
			return rc;
	}
	if (empty) {
		if (mkdir(dir, 0755) && errno != EEXIST)
			return bf_errf(err, -errno, "store %s: mkdir: %s", dir, strerror(errno));
		creating = true;
	}

	st = calloc(1, sizeof(*st));
	if (!st)
		return bf_errf(err, BF_ENOMEM, "store: out of memory");
	/* Absolute, so that a job recorded here means the same store from
	 * any working directory. */
	if (!realpath(dir, st->path))
		snprintf(st->path, sizeof(st->path), "%s", dir);
	st->readonly = readonly;
	store_options(st);
	if (readonly)
		rc = open_readonly(st, dir, err);
	else
		rc = open_marked(st, dir, creating, err);
	if (rc == 0)
		rc = load_uuid(st, err);
	if (rc == 0)
		rc = bf_catalog_store_create(st, &st->catalog, err);
	if (rc) {
		bf_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

const char *bf_store_path(const bf_store *st) { return st->path; }
const char *bf_store_uuid(const bf_store *st) { return st->uuid; }
bf_catalog *bf_store_catalog(bf_store *st) { return st->catalog; }
bool bf_store_readonly(const bf_store *st) { return st->readonly; }
void *bf_store_rocksdb(bf_store *st) { return st->db; }

static int check_writable(const bf_store *st, bf_err *err)
{
	if (st->readonly)
		return bf_errf(err, BF_ESTATE, "store %s is open read-only", st->path);
	return 0;
}

int bf_store_get(bf_store *st, const void *key, size_t klen, char **val,
		 size_t *vlen, bf_err *err)
{
	char *e = NULL;

	*val = rocksdb_get(st->db, st->ro, key, klen, vlen, &e);
	if (e)
		return bf_rdb_err(e, err, "store get");
	if (!*val)
		return bf_errf(err, BF_ENOTFOUND, "store %s: no such key", st->path);
	return 0;
}

int bf_store_put(bf_store *st, const void *key, size_t klen, const void *val,
		 size_t vlen, bf_err *err)
{
	char *e = NULL;
	int rc = check_writable(st, err);
	if (rc)
		return rc;
	rocksdb_put(st->db, st->wsync, key, klen, val, vlen, &e);
	return bf_rdb_err(e, err, "store put");
}

int bf_store_delete(bf_store *st, const void *key, size_t klen, bf_err *err)
{
	char *e = NULL;
	int rc = check_writable(st, err);
	if (rc)
		return rc;
	rocksdb_delete(st->db, st->wsync, key, klen, &e);
	return bf_rdb_err(e, err, "store delete");
}

bf_store_batch *bf_store_batch_create(void)
{
	return (bf_store_batch *)rocksdb_writebatch_create();
}

void bf_store_batch_put(bf_store_batch *b, const void *key, size_t klen,
			const void *val, size_t vlen)
{
	rocksdb_writebatch_put((rocksdb_writebatch_t *)b, key, klen, val, vlen);
}

void bf_store_batch_delete(bf_store_batch *b, const void *key, size_t klen)
{
	rocksdb_writebatch_delete((rocksdb_writebatch_t *)b, key, klen);
}

void bf_store_batch_delete_range(bf_store_batch *b, const void *lo, size_t lolen,
				 const void *hi, size_t hilen)
{
	rocksdb_writebatch_delete_range((rocksdb_writebatch_t *)b, lo, lolen, hi, hilen);
}

int bf_store_batch_commit(bf_store *st, bf_store_batch *b, bf_err *err)
{
	char *e = NULL;
	int rc = check_writable(st, err);
	if (rc)
		return rc;
	rocksdb_write(st->db, st->wsync, (rocksdb_writebatch_t *)b, &e);
	return bf_rdb_err(e, err, "store write");
}

void bf_store_batch_destroy(bf_store_batch *b)
{
	if (b)
		rocksdb_writebatch_destroy((rocksdb_writebatch_t *)b);
}

static int cmp_keys(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : (alen > blen) - (alen < blen);
}

/* 0xff bytes put after hi's lowered last byte: the end then covers every
 * key of the range that does not go on with 16 0xff bytes there (TiDB's
 * datum encodings never start with 0xff). */
#define END_PAD 16

/*
 * RocksDB's file-dropping call takes an inclusive end; this makes one that
 * sorts below hi yet above nearly every key of [lo, hi): hi without its
 * last byte when that byte is 0 (then nothing lies between), else hi with
 * its last byte one lower and END_PAD 0xff bytes after it. Keys left
 * between the two are few and fall to the tombstone. Returns its length
 * (0: none, hi is empty); out has room for hilen + END_PAD bytes.
 */
static size_t inclusive_end(const uint8_t *hi, size_t hilen, uint8_t *out)
{
	if (hilen == 0)
		return 0;
	memcpy(out, hi, hilen);
	if (hi[hilen - 1] == 0)
		return hilen - 1;
	out[hilen - 1]--;
	memset(out + hilen, 0xff, END_PAD);
	return hilen + END_PAD;
}

/* Step 1 of bf_store_delete_range: drops the files inside [lo, hi). */
static void drop_files_inside(bf_store *st, const void *lo, size_t lolen, const void *hi,
			      size_t hilen)
{
	uint8_t *end = malloc(hilen + END_PAD);
	size_t endlen = end ? inclusive_end(hi, hilen, end) : 0;
	char *e = NULL;

	/* A failure here (no room even for a MANIFEST record) costs only
	 * space: the tombstone that follows deletes the keys all the same. */
	if (endlen && cmp_keys(lo, lolen, end, endlen) <= 0) {
		rocksdb_delete_file_in_range(st->db, lo, lolen, (const char *)end, endlen, &e);
		free(e);
	}
	free(end);
}

/* Bytes of the live files that hold keys in [lo, hi). */
static uint64_t bytes_touching(bf_store *st, const void *lo, size_t lolen, const void *hi,
			       size_t hilen)
{
	const rocksdb_livefiles_t *files = rocksdb_livefiles(st->db);
	uint64_t bytes = 0;
	int n = files ? rocksdb_livefiles_count(files) : 0;

	for (int i = 0; i < n; i++) {
		size_t slen, llen;
		const char *small = rocksdb_livefiles_smallestkey(files, i, &slen);
		const char *large = rocksdb_livefiles_largestkey(files, i, &llen);
		if (cmp_keys(small, slen, hi, hilen) < 0 && cmp_keys(large, llen, lo, lolen) >= 0)
			bytes += rocksdb_livefiles_size(files, i);
	}
	if (files)
		rocksdb_livefiles_destroy(files);
	return bytes;
}

/*
 * Step 3 of bf_store_delete_range: rewrites the files that still hold
 * deleted keys, when there is room to: RocksDB takes a compaction that
 * runs out of space for a background error that stops its flushes and
 * compactions until the store is opened again.
 */
static void compact_deleted(bf_store *st, const void *lo, size_t lolen, const void *hi,
			    size_t hilen)
{
	uint64_t held = 0, avail = 0;

	/* Step 1 often leaves no file data in the range; then a compaction
	 * would only rewrite files that merely span it. */
	if (bf_store_approx_size(st, lo, lolen, hi, hilen, &held, NULL) || held == 0)
		return;
	if (bf_fs_avail(st->path, &avail, NULL) || avail < bytes_touching(st, lo, lolen, hi, hilen))
		return;
	rocksdb_compact_range(st->db, lo, lolen, hi, hilen);
}

int bf_store_delete_range(bf_store *st, const void *lo, size_t lolen,
			  const void *hi, size_t hilen, bf_err *err)
{
	bf_store_batch *b = NULL;
	int rc = check_writable(st, err);

	if (rc || cmp_keys(lo, lolen, hi, hilen) >= 0)
		goto out;
	drop_files_inside(st, lo, lolen, hi, hilen);
	b = bf_store_batch_create();
	bf_store_batch_delete_range(b, lo, lolen, hi, hilen);
	rc = bf_store_batch_commit(st, b, err);
	if (rc)
		goto out;
	compact_deleted(st, lo, lolen, hi, hilen);
out:
	bf_store_batch_destroy(b);
	return rc;
}

int bf_store_ingest(bf_store *st, const char *const *paths, size_t n, bf_err *err)
{
	rocksdb_ingestexternalfileoptions_t *io;
	char *e = NULL;
	int rc = check_writable(st, err);

	if (rc || n == 0)
		return rc;
	io = rocksdb_ingestexternalfileoptions_create();
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	rocksdb_ingest_external_file(st->db, paths, n, io, &e);
	rocksdb_ingestexternalfileoptions_destroy(io);
	return bf_rdb_err(e, err, "store ingest");
}

int bf_store_set_auto_compaction(bf_store *st, bool on, bf_err *err)
{
	const char *keys[1] = { "disable_auto_compactions" };
	const char *vals[1] = { on ? "false" : "true" };
	char *e = NULL;
	int rc = check_writable(st, err);

	if (rc)
		return rc;
	rocksdb_set_options(st->db, 1, keys, vals, &e);
	return bf_rdb_err(e, err, "store compaction switch");
}

int bf_store_level0_files(bf_store *st, uint64_t *n, bf_err *err)
{
	char *v = rocksdb_property_value(st->db, "rocksdb.num-files-at-level0");
	int rc = 0;

	*n = 0;
	if (!v || bf_parse_u64(v, n))
		rc = bf_errf(err, BF_EIO, "store %s: cannot read its level-0 file count", st->path);
	rocksdb_free(v);
	return rc;
}

int bf_store_approx_size(bf_store *st, const void *lo, size_t lolen,
			 const void *hi, size_t hilen, uint64_t *bytes, bf_err *err)
{
	const char *s[1] = { lo }, *l[1] = { hi };
	size_t sl[1] = { lolen }, ll[1] = { hilen };
	char *e = NULL;

	*bytes = 0;
	rocksdb_approximate_sizes(st->db, 1, s, sl, l, ll, bytes, &e);
	return bf_rdb_err(e, err, "store size");
}

