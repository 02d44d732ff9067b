/*
 * Block-based table files written by bfill (engine/sst_build.h; the file
 * layout is in engine/sst_format.h). A block is a run of entries (shared
 * key bytes with the previous entry, unshared key bytes, value length as
 * varints, then the unshared bytes and the value) followed by the offsets
 * of its restart points (entries that share nothing) and their count.
 * Depends on util (random bytes), liblz4 and libxxhash.
 */
#include "engine/sst_build.h"
#include "engine/sst_format.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESTART_INTERVAL 16
#define FORMAT_VERSION 5
#define OUT_FLUSH (1u << 20)   /* bytes handed to write() at once */
/*
 * Written bytes go to writeback every this many, so the sync at finish
 * waits for the last piece only, and what went to writeback a step before
 * is dropped from the page cache, as RocksDB's writer does: a build writes
 * gigabytes it does not read again, and pages it frees this way are the
 * ones it writes into next. Filling fresh page cache instead cost a 10M
 * row build of the c index twice the system time (on a virtual machine
 * whose memory untouched for a while is slow to touch again).
 */
#define SYNC_EVERY (8u << 20)
#define UNKNOWN_COLUMN_FAMILY 0x7fffffffu
#define SESSION_ID_LEN 20

/* The trailer of every key: sequence number 0, type "value". */
static const uint8_t key_trailer[SST_KEY_TRAILER] = { SST_TYPE_VALUE };

typedef sst_bytes bytes;

struct sstb {
	int fd;
	char *path;
	bool lz4;
	size_t block_size;
	bytes out;              /* file bytes not yet written */
	uint64_t written;       /* file bytes written before out */
	uint64_t synced;        /* written bytes handed to writeback */
	bytes blk;              /* the data block being filled: entries */
	bytes restarts;         /* its restart offsets (u32) */
	unsigned since_restart;
	bytes last;             /* the previous key, trailer included */
	size_t last_ulen;       /* its user key's length */
	bytes index;            /* index entries, one per data block */
	bytes index_restarts;
	bytes comp;             /* a compressed block */
	uint64_t keys, raw_key, raw_value, data_blocks;
};

static inline bool grow(bytes *b, size_t need) { return sst_bytes_reserve(b, b->len + need); }

/* The put_* helpers write into room grow made. */
static inline void put_raw(bytes *b, const void *p, size_t n)
{
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static inline void put_varint(bytes *b, uint64_t v)
{
	while (v >= 0x80) {
		b->p[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->p[b->len++] = (uint8_t)v;
}

static inline void put_u32(bytes *b, uint32_t v) { put_raw(b, &v, 4); }

static int no_memory(sstb *b, bf_err *err)
{
	return bf_errf(err, BF_ENOMEM, "table file %s: out of memory", b->path);
}

static int write_out(sstb *b, bf_err *err)
{
	const uint8_t *p = b->out.p;
	size_t n = b->out.len;
	while (n) {
		ssize_t w = write(b->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			return bf_errf(err, e == ENOSPC || e == EDQUOT ? BF_ENOSPC : BF_EIO,
				       "table file %s: cannot write: %s", b->path, strerror(e));
		}
		p += w;
		n -= (size_t)w;
	}
	b->written += b->out.len;
	b->out.len = 0;
	if (b->written - b->synced >= SYNC_EVERY) {
		/* Advice only: a failure costs page cache, never data. */
		if (b->synced)
			posix_fadvise(b->fd, 0, (off_t)b->synced, POSIX_FADV_DONTNEED);
		sync_file_range(b->fd, (off_t)b->synced, 0, SYNC_FILE_RANGE_WRITE);
		b->synced = b->written;
	}
	return 0;
}

/*
 * Appends the block in blk (restarts and count added here) to the file
 * bytes, LZ4-compressed when asked and worth it, with its trailer; its
 * position goes to *off, *size.
 */
static int emit_block(sstb *b, bytes *blk, bytes *restarts, bool may_compress, uint64_t *off,
		      uint64_t *size, bf_err *err)
{
	if (!grow(blk, restarts->len + 4))
		return no_memory(b, err);
	put_raw(blk, restarts->p, restarts->len);
	put_u32(blk, (uint32_t)(restarts->len / 4));
	const uint8_t *body = blk->p;
	size_t n = blk->len;
	uint8_t type = SST_COMPRESS_NONE;
	if (may_compress && b->lz4 && n <= (size_t)LZ4_MAX_INPUT_SIZE) {
		b->comp.len = 0;
		if (!grow(&b->comp, 5 + (size_t)LZ4_compressBound((int)n)))
			return no_memory(b, err);
		put_varint(&b->comp, n);
		int c = LZ4_compress_default((const char *)blk->p, (char *)b->comp.p + b->comp.len,
					     (int)n, LZ4_compressBound((int)n));
		/* As RocksDB does: kept only when it saves at least an eighth. */
		if (c > 0 && b->comp.len + (size_t)c < n - n / 8) {
			body = b->comp.p;
			n = b->comp.len + (size_t)c;
			type = SST_COMPRESS_LZ4;
		}
	}
	if (!grow(&b->out, n + SST_BLOCK_TRAILER))
		return no_memory(b, err);
	*off = b->written + b->out.len;
	*size = n;
	uint8_t *at = b->out.p + b->out.len;
	put_raw(&b->out, body, n);
	b->out.p[b->out.len++] = type;
	put_u32(&b->out, sst_block_checksum(SST_CK_XXH3, at, n));
	blk->len = 0;
	restarts->len = 0;
	return b->out.len >= OUT_FLUSH ? write_out(b, err) : 0;
}

/* Appends an entry that shares nothing with the one before (the index's,
 * the properties', the metaindex's), a restart point of its own. */
static bool put_whole(bytes *blk, bytes *restarts, const void *k, size_t klen, const void *v,
		      size_t vlen)
{
	if (!grow(blk, 15 + klen + vlen) || !grow(restarts, 4))
		return false;
	put_u32(restarts, (uint32_t)blk->len);
	put_varint(blk, 0);
	put_varint(blk, klen);
	put_varint(blk, vlen);
	put_raw(blk, k, klen);
	put_raw(blk, v, vlen);
	return true;
}

/* A block handle: offset and size as varints. */
static size_t handle(uint8_t *p, uint64_t off, uint64_t size)
{
	bytes h = { p, 0, 20 };
	put_varint(&h, off);
	put_varint(&h, size);
	return h.len;
}

static int flush_block(sstb *b, bf_err *err)
{
	uint64_t off, size;
	uint8_t h[20];
	int rc = emit_block(b, &b->blk, &b->restarts, true, &off, &size, err);
	if (rc)
		return rc;
	b->data_blocks++;
	b->since_restart = 0;
	/* The block's last user key: at or past every key in it, below the next. */
	if (!put_whole(&b->index, &b->index_restarts, b->last.p, b->last_ulen, h,
		       handle(h, off, size)))
		return no_memory(b, err);
	return 0;
}

int sstb_open(const char *path, bool lz4, size_t block_size, sstb **out, bf_err *err)
{
	sstb *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (!b || !(b->path = strdup(path))) {
		free(b);
		return bf_errf(err, BF_ENOMEM, "table file %s: out of memory", path);
	}
	b->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (b->fd < 0) {
		int e = errno;
		sstb_destroy(b);
		return bf_errf(err, e == ENOSPC || e == EDQUOT ? BF_ENOSPC : BF_EIO,
			       "table file %s: cannot create: %s", path, strerror(e));
	}
	b->lz4 = lz4;
	b->block_size = block_size;
	*out = b;
	return 0;
}

/* How far the key (its trailer included) agrees with the previous one, from
 * byte `from` on, when the previous user key is a prefix of this one. */
static size_t shared_past_prefix(const sstb *b, const uint8_t *key, size_t klen, size_t from)
{
	size_t i = from, n = b->last.len < klen + SST_KEY_TRAILER ? b->last.len
								    : klen + SST_KEY_TRAILER;
	while (i < n && b->last.p[i] == (i < klen ? key[i] : key_trailer[i - klen]))
		i++;
	return i;
}

int sstb_add(sstb *b, const void *key_, size_t klen, const void *val, size_t vlen, bf_err *err)
{
	const uint8_t *key = key_;
	size_t s = 0;

	if (b->keys) {
		const uint8_t *a = b->last.p;
		size_t n = klen < b->last_ulen ? klen : b->last_ulen;
		uint64_t x, y;
		while (s + 8 <= n && (memcpy(&x, a + s, 8), memcpy(&y, key + s, 8), x == y))
			s += 8;
		while (s < n && a[s] == key[s])
			s++;
		if (s < n ? key[s] < a[s] : klen <= b->last_ulen)
			return bf_errf(err, BF_EINVAL, "table file %s: keys out of order", b->path);
	}
	size_t ilen = klen + SST_KEY_TRAILER;
	size_t est = b->blk.len + b->restarts.len + 4;
	/* RocksDB's rule: close a block at its size, or early when this entry
	 * would take it past and it is within a tenth of it. */
	if (b->blk.len && (est >= b->block_size ||
			   (est + ilen + vlen > b->block_size && est >= b->block_size / 10 * 9))) {
		int rc = flush_block(b, err);
		if (rc)
			return rc;
	}
	size_t shared = 0;
	if (b->since_restart == 0 || b->since_restart == RESTART_INTERVAL) {
		if (!grow(&b->restarts, 4))
			return no_memory(b, err);
		put_u32(&b->restarts, (uint32_t)b->blk.len);
		b->since_restart = 0;
	} else {
		shared = s == b->last_ulen ? shared_past_prefix(b, key, klen, s) : s;
	}
	b->since_restart++;
	if (!grow(&b->blk, 15 + ilen + vlen) || !sst_bytes_reserve(&b->last, ilen))
		return no_memory(b, err);
	put_varint(&b->blk, shared);
	put_varint(&b->blk, ilen - shared);
	put_varint(&b->blk, vlen);
	if (shared < klen) {
		put_raw(&b->blk, key + shared, klen - shared);
		put_raw(&b->blk, key_trailer, SST_KEY_TRAILER);
	} else {
		put_raw(&b->blk, key_trailer + (shared - klen), ilen - shared);
	}
	if (vlen)
		put_raw(&b->blk, val, vlen);
	/* The previous key's first s bytes are this one's. */
	memcpy(b->last.p + s, key + s, klen - s);
	memcpy(b->last.p + klen, key_trailer, SST_KEY_TRAILER);
	b->last.len = ilen;
	b->last_ulen = klen;
	b->keys++;
	b->raw_key += ilen;
	b->raw_value += vlen;
	return 0;
}

/* Property values: a varint, a little-endian u32 or u64, or text. */
static bool prop_num(bytes *blk, bytes *rs, const char *name, uint64_t v)
{
	uint8_t p[10];
	bytes t = { p, 0, sizeof(p) };
	put_varint(&t, v);
	return put_whole(blk, rs, name, strlen(name), p, t.len);
}

static bool prop_fixed(bytes *blk, bytes *rs, const char *name, uint64_t v, size_t width)
{
	uint8_t p[8];
	for (size_t i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return put_whole(blk, rs, name, strlen(name), p, width);
}

static bool prop_text(bytes *blk, bytes *rs, const char *name, const char *v)
{
	return put_whole(blk, rs, name, strlen(name), v, strlen(v));
}

/*
 * A session identity of this file's own: 20 base-36 digits, 4 then 16 as
 * RocksDB writes them. Readers key their block caches by session and file
 * number, and every file here is number 1.
 */
static int session_id(char out[SESSION_ID_LEN + 1], bf_err *err)
{
	uint8_t r[16];
	uint64_t upper, lower;
	int rc = bf_uuid_bytes(r, err);
	if (rc)
		return rc;
	memcpy(&upper, r, 8);
	memcpy(&lower, r + 8, 8);
	upper %= 36u * 36 * 36 * 36;
	for (int i = SESSION_ID_LEN - 1; i >= 0; i--) {
		uint64_t *v = i >= 4 ? &lower : &upper;
		out[i] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[*v % 36];
		*v /= 36;
	}
	out[SESSION_ID_LEN] = '\0';
	return 0;
}

/* The properties block, its entries in name order. */
static int properties(sstb *b, bytes *blk, bytes *rs, uint64_t data_size, uint64_t index_size,
		      bf_err *err)
{
	char session[SESSION_ID_LEN + 1];
	int rc = session_id(session, err);
	if (rc)
		return rc;
	bool ok = prop_fixed(blk, rs, "rocksdb.block.based.table.index.type",
			     SST_INDEX_BINARY_SEARCH, 4) &&
		  prop_text(blk, rs, "rocksdb.block.based.table.prefix.filtering", "0") &&
		  prop_text(blk, rs, "rocksdb.block.based.table.whole.key.filtering", "1") &&
		  prop_num(blk, rs, "rocksdb.column.family.id", UNKNOWN_COLUMN_FAMILY) &&
		  prop_text(blk, rs, "rocksdb.comparator", "leveldb.BytewiseComparator") &&
		  prop_text(blk, rs, "rocksdb.compression", b->lz4 ? "LZ4" : "NoCompression") &&
		  prop_text(blk, rs, "rocksdb.creating.db.identity", "bfill") &&
		  prop_text(blk, rs, "rocksdb.creating.session.identity", session) &&
		  prop_num(blk, rs, "rocksdb.creation.time", 0) &&
		  prop_num(blk, rs, "rocksdb.data.size", data_size) &&
		  prop_num(blk, rs, "rocksdb.deleted.keys", 0) &&
		  /* Where an ingest may write the sequence number it gives the file. */
		  prop_fixed(blk, rs, SST_GLOBAL_SEQNO, 0, 8) &&
		  prop_fixed(blk, rs, "rocksdb.external_sst_file.version", 2, 4) &&
		  prop_num(blk, rs, "rocksdb.filter.size", 0) &&
		  prop_num(blk, rs, "rocksdb.fixed.key.length", 0) &&
		  prop_num(blk, rs, "rocksdb.format.version", 0) &&
		  prop_num(blk, rs, "rocksdb.index.key.is.user.key", 1) &&
		  prop_num(blk, rs, "rocksdb.index.size", index_size) &&
		  prop_num(blk, rs, "rocksdb.index.value.is.delta.encoded", 0) &&
		  prop_num(blk, rs, "rocksdb.merge.operands", 0) &&
		  prop_text(blk, rs, "rocksdb.merge.operator", "nullptr") &&
		  prop_num(blk, rs, "rocksdb.num.data.blocks", b->data_blocks) &&
		  prop_num(blk, rs, "rocksdb.num.entries", b->keys) &&
		  prop_num(blk, rs, "rocksdb.num.filter_entries", 0) &&
		  prop_num(blk, rs, "rocksdb.num.range-deletions", 0) &&
		  prop_num(blk, rs, "rocksdb.oldest.key.time", 0) &&
		  prop_num(blk, rs, "rocksdb.original.file.number", 1) &&
		  prop_text(blk, rs, "rocksdb.prefix.extractor.name", "nullptr") &&
		  prop_text(blk, rs, "rocksdb.property.collectors", "[]") &&
		  prop_num(blk, rs, "rocksdb.raw.key.size", b->raw_key) &&
		  prop_num(blk, rs, "rocksdb.raw.value.size", b->raw_value);
	return ok ? 0 : no_memory(b, err);
}

int sstb_finish(sstb *b, uint64_t *file_size, bf_err *err)
{
	uint64_t index_off, index_size, props_off, props_size, meta_off, meta_size;
	uint8_t h[20];
	int rc = 0;

	if (!b->keys)
		return bf_errf(err, BF_EINVAL, "table file %s: no keys to write", b->path);
	if (b->blk.len && (rc = flush_block(b, err)))
		return rc;
	uint64_t data_size = b->written + b->out.len;
	if ((rc = emit_block(b, &b->index, &b->index_restarts, false, &index_off, &index_size, err)))
		return rc;
	/* The finished data and index blocks' buffers hold the meta blocks. */
	if ((rc = properties(b, &b->blk, &b->restarts, data_size, index_size + SST_BLOCK_TRAILER,
			     err)) ||
	    (rc = emit_block(b, &b->blk, &b->restarts, false, &props_off, &props_size, err)))
		return rc;
	if (!put_whole(&b->blk, &b->restarts, SST_PROPERTIES, strlen(SST_PROPERTIES), h,
		       handle(h, props_off, props_size)))
		return no_memory(b, err);
	if ((rc = emit_block(b, &b->blk, &b->restarts, false, &meta_off, &meta_size, err)))
		return rc;
	uint8_t foot[SST_FOOTER_LEN] = { SST_CK_XXH3 };
	size_t n = 1 + handle(foot + 1, meta_off, meta_size);
	handle(foot + n, index_off, index_size);
	uint32_t version = FORMAT_VERSION;
	uint64_t magic = SST_TABLE_MAGIC;
	memcpy(foot + 1 + SST_FOOTER_HANDLES, &version, 4);
	memcpy(foot + SST_FOOTER_LEN - 8, &magic, 8);
	if (!grow(&b->out, SST_FOOTER_LEN))
		return no_memory(b, err);
	put_raw(&b->out, foot, SST_FOOTER_LEN);
	uint64_t size = b->written + b->out.len;
	if ((rc = write_out(b, err)))
		return rc;
	if (fdatasync(b->fd))
		return bf_errf(err, errno == ENOSPC || errno == EDQUOT ? BF_ENOSPC : BF_EIO,
			       "table file %s: cannot sync: %s", b->path, strerror(errno));
	posix_fadvise(b->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (file_size)
		*file_size = size;
	return 0;
}

void sstb_destroy(sstb *b)
{
	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	bytes *bufs[] = { &b->out, &b->blk, &b->restarts, &b->last, &b->index, &b->index_restarts,
			  &b->comp };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]->p);
	free(b->path);
	free(b);
}
