/*
 * RocksDB glue shared by the store and the sort engine. Depends on
 * rocksdb/c.h and util only.
 */
#include "engine/rdb.h"
#include "bfill/sst.h"
#include "engine/sst_direct.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

struct bf_store_iter {
	rocksdb_iterator_t *it;    /* NULL while the direct cursor reads */
	rocksdb_readoptions_t *ro;
	rocksdb_t *db;
	char *lo, *hi; /* bounds must outlive the read options */
	size_t lolen, hilen;
	sstd_cursor *direct;       /* the files read directly, or NULL */
	bool direct_valid;
	int direct_rc;             /* a failure of the direct read, for status */
	bf_err direct_err;
};

int bf_rdb_err(char *errptr, bf_err *err, const char *what)
{
	int code = BF_EIO;

	if (!errptr)
		return 0;
	if (strstr(errptr, "lock") && (strstr(errptr, "LOCK") || strstr(errptr, "lock hold") ||
				       strstr(errptr, "Resource temporarily unavailable")))
		code = BF_ELOCKED;
	else if (strstr(errptr, "No space left") || strstr(errptr, "NoSpace"))
		code = BF_ENOSPC;
	else if (strstr(errptr, "Corruption"))
		code = BF_ECORRUPT;
	else if (strstr(errptr, "does not exist") || strstr(errptr, "No such file"))
		code = BF_ENOTFOUND;
	bf_errf(err, code, "%s: %s", what, errptr);
	free(errptr);
	return code;
}

/*
 * Debian's librocksdb keeps its assertions on, and RocksDB's file writer
 * asserts when it is used again after a write failed: on a full disk the
 * info log's first line fails and its second aborts the process, from any
 * command. bfill never reads that log (errors reach the caller through
 * statuses), so it is kept empty:
 *  - at HEADER_LEVEL only header lines pass the level check, and the
 *    default file logger writes those as INFO lines, which the same check
 *    then drops; nothing else bypasses the check (RocksDB 7.8). A level
 *    above HEADER would say this more plainly, but RocksDB cannot name it
 *    in its OPTIONS file and leaves a half-written one at every open.
 *  - an empty LOG is still created, the previous one renamed, at each open
 *    for writing; keep_log_file_num 1 lets the open delete the old ones,
 *    among them any that a bfill before this fix filled.
 * A read-only open makes no info log at all. Checked on a full tmpfs:
 * LOG stays empty through gen, add-index, cancel and compactions.
 */
void bf_rdb_silence_info_log(rocksdb_options_t *opts)
{
	rocksdb_options_set_info_log_level(opts, 5 /* rocksdb::HEADER_LEVEL */);
	rocksdb_options_set_keep_log_file_num(opts, 1);
}

void bf_rdb_ingest_only_options(rocksdb_options_t *opts)
{
	rocksdb_options_set_create_if_missing(opts, 1);
	rocksdb_options_set_disable_auto_compactions(opts, 1);
	rocksdb_options_set_level0_file_num_compaction_trigger(opts, 1 << 30);
	rocksdb_options_set_level0_slowdown_writes_trigger(opts, 1 << 30);
	rocksdb_options_set_level0_stop_writes_trigger(opts, 1 << 30);
	rocksdb_options_set_max_open_files(opts, -1);
	rocksdb_options_set_max_background_jobs(opts, 1);
	bf_rdb_silence_info_log(opts);
}

int bf_rdb_open_err(char *errptr, const char *kind, const char *dir, bf_err *err)
{
	uint64_t avail = 0;
	char avail_s[32];
	int rc = bf_rdb_err(errptr, err, dir);

	if (rc == BF_ENOSPC && bf_fs_avail(dir, &avail, NULL) == 0)
		bf_errf(err, rc, "%s %s: no room on its file system to open it (%s free); free some space",
			kind, dir, bf_fmt_bytes(avail, avail_s, sizeof(avail_s)));
	return rc;
}

int bf_rdb_compression(int c)
{
	switch (c) {
	case BF_COMPRESS_LZ4: return rocksdb_lz4_compression;
	case BF_COMPRESS_ZSTD: return rocksdb_zstd_compression;
	default: return rocksdb_no_compression;
	}
}

/* Goes on with RocksDB at the last key the direct cursor returned, or
 * past it (past: what follows may be anything the files hold), or from
 * the start when it returned none. */
static void leave_direct(bf_store_iter *it, bool past)
{
	size_t kl = 0;
	const uint8_t *k = it->direct_valid ? sstd_cursor_key(it->direct, &kl) : NULL;
	bool started = it->direct_valid;
	it->it = rocksdb_create_iterator(it->db, it->ro);
	if (started) {
		rocksdb_iter_seek(it->it, (const char *)k, kl);
		size_t l;
		const char *at = rocksdb_iter_valid(it->it) ? rocksdb_iter_key(it->it, &l) : NULL;
		if (past && at && l == kl && !memcmp(at, k, kl))
			rocksdb_iter_next(it->it);
	} else if (it->lo) {
		rocksdb_iter_seek(it->it, it->lo, it->lolen);
	} else {
		rocksdb_iter_seek_to_first(it->it);
	}
	sstd_cursor_close(it->direct);
	it->direct = NULL;
	it->direct_valid = false;
}

static void direct_step(bf_store_iter *it)
{
	bool valid;
	int rc = sstd_cursor_next(it->direct, &valid, &it->direct_err);
	if (rc == SSTD_STOP) {
		leave_direct(it, true);
		return;
	}
	it->direct_rc = rc;
	it->direct_valid = rc == 0 && valid;
}

int bf_rdb_iter_create(rocksdb_t *db, const rocksdb_snapshot_t *snap,
		       const void *lo, size_t lolen, const void *hi, size_t hilen,
		       size_t readahead, bool fill_cache, const char *const *direct,
		       size_t ndirect, bf_store_iter **out, bf_err *err)
{
	bf_store_iter *it = calloc(1, sizeof(*it));
	int rc = 0;

	*out = NULL;
	if (!it)
		return bf_errf(err, BF_ENOMEM, "iterator: out of memory");
	it->db = db;
	it->ro = rocksdb_readoptions_create();
	if (lo) {
		it->lo = bf_memdup(lo, lolen);
		it->lolen = lolen;
	}
	if (hi) {
		it->hi = bf_memdup(hi, hilen);
		it->hilen = hilen;
	}
	if ((lo && !it->lo) || (hi && !it->hi)) {
		rc = bf_errf(err, BF_ENOMEM, "iterator: out of memory");
		goto out;
	}
	if (it->lo)
		rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lo, it->lolen);
	if (it->hi)
		rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->hi, it->hilen);
	if (snap)
		rocksdb_readoptions_set_snapshot(it->ro, snap);
	if (readahead)
		rocksdb_readoptions_set_readahead_size(it->ro, readahead);
	rocksdb_readoptions_set_fill_cache(it->ro, fill_cache);
	if (direct) {
		rc = sstd_cursor_open(direct, ndirect, it->lo, it->lolen, it->hi, it->hilen,
				      &it->direct, err);
		if (rc < 0)
			goto out;
		rc = 0;
	}
	if (it->direct) {
		direct_step(it);
	} else {
		it->it = rocksdb_create_iterator(db, it->ro);
		if (it->lo)
			rocksdb_iter_seek(it->it, it->lo, it->lolen);
		else
			rocksdb_iter_seek_to_first(it->it);
	}
	rc = bf_store_iter_status(it, err);
out:
	if (rc) {
		bf_store_iter_destroy(it);
		return rc;
	}
	*out = it;
	return 0;
}

bool bf_rdb_iter_direct(const bf_store_iter *it) { return it->direct != NULL; }

bool bf_store_iter_valid(const bf_store_iter *it)
{
	return it->it ? rocksdb_iter_valid(it->it) : it->direct_valid;
}

void bf_store_iter_next(bf_store_iter *it)
{
	if (it->it)
		rocksdb_iter_next(it->it);
	else if (it->direct_valid)
		direct_step(it);
}

/* The moves a direct read does not make hand over to RocksDB first. */
void bf_store_iter_seek(bf_store_iter *it, const void *key, size_t klen)
{
	if (!it->it)
		leave_direct(it, false);
	rocksdb_iter_seek(it->it, key, klen);
}

void bf_store_iter_seek_last(bf_store_iter *it)
{
	if (!it->it)
		leave_direct(it, false);
	rocksdb_iter_seek_to_last(it->it);
}

void bf_store_iter_prev(bf_store_iter *it)
{
	if (!it->it)
		leave_direct(it, false);
	rocksdb_iter_prev(it->it);
}

const uint8_t *bf_store_iter_key(const bf_store_iter *it, size_t *len)
{
	if (!it->it)
		return sstd_cursor_key(it->direct, len);
	return (const uint8_t *)rocksdb_iter_key(it->it, len);
}

const uint8_t *bf_store_iter_value(const bf_store_iter *it, size_t *len)
{
	if (!it->it)
		return sstd_cursor_value(it->direct, len);
	return (const uint8_t *)rocksdb_iter_value(it->it, len);
}

int bf_store_iter_status(const bf_store_iter *it, bf_err *err)
{
	char *e = NULL;
	if (!it->it) {
		if (it->direct_rc && err)
			*err = it->direct_err;
		return it->direct_rc;
	}
	rocksdb_iter_get_error(it->it, &e);
	return bf_rdb_err(e, err, "iterator");
}

void bf_store_iter_destroy(bf_store_iter *it)
{
	if (!it)
		return;
	if (it->it)
		rocksdb_iter_destroy(it->it);
	sstd_cursor_close(it->direct);
	if (it->ro)
		rocksdb_readoptions_destroy(it->ro);
	free(it->lo);
	free(it->hi);
	free(it);
}
