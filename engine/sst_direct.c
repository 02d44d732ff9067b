/*
 * Direct reads of block-based table files (engine/sst_direct.h; the file
 * layout is in engine/sst_format.h). A block is a run
 * of entries (shared key bytes, unshared key bytes, value length as
 * varints, then those key bytes and the value) followed by restart offsets
 * and their count. Data keys are user keys followed by 8 bytes holding the
 * sequence number and the entry type; the index holds one entry per data
 * block, a key at or past the block's last and the block's position.
 * Depends on util (crc32c, key order), liblz4 and libxxhash.
 */
#include "engine/sst_direct.h"
#include "engine/sst_format.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (256u << 10)         /* data read at once: whole blocks, many */
#define HASH_INDEX_FLAG 0x80000000u /* a data block with a hash index after its restarts */
#define MAX_META_BLOCK (64u << 20)

typedef struct sfile {
	int fd;
	char *path;
	int checksum;
	bool delta;       /* index values after a restart point hold a size change only */
	uint64_t index_off, index_size;
} sfile;

/* A block's entries and restart points, once checked and decompressed. */
typedef struct blk {
	const uint8_t *p, *end;    /* entries */
	const uint8_t *restarts;   /* u32 offsets from the block start */
	const uint8_t *base;
	uint32_t nrestarts;
	uint32_t shared;           /* the last entry's key bytes taken from the one before */
} blk;

typedef sst_bytes buf;

struct sstd_cursor {
	sfile *files;
	size_t nfiles, cur;
	uint8_t *lo, *hi;
	size_t lolen, hilen;
	bool has_hi, started, done, file_open;
	bool below_hi;             /* every key of the current data block is below hi */
	buf index, index_raw, chunk, raw, key, last, sep;
	size_t chunk_len;
	uint64_t chunk_off;
	blk ix;                    /* the current file's index */
	uint32_t ix_restart;       /* the next restart point to pass */
	uint64_t boff, bsize;      /* the current data block */
	bool have_handle;
	blk data;                  /* the current data block's entries */
	size_t klen, seplen, last_len;
	bool have_last;
	const uint8_t *val;
	size_t vlen;
};

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static const uint8_t *varint64(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned s = 0; s < 64 && p < end; s += 7) {
		uint8_t b = *p++;
		r |= (uint64_t)(b & 0x7F) << s;
		if (!(b & 0x80)) {
			*v = r;
			return p;
		}
	}
	return NULL;
}

static const uint8_t *varint32(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
	uint64_t w;
	p = varint64(p, end, &w);
	if (!p || w > UINT32_MAX)
		return NULL;
	*v = (uint32_t)w;
	return p;
}

static int corrupt(bf_err *err, const sfile *f, uint64_t off, const char *what)
{
	return bf_errf(err, BF_ECORRUPT, "table file %s: block at offset %" PRIu64 ": %s", f->path,
		       off, what);
}

static int pread_full(const sfile *f, void *dst, size_t n, uint64_t off, size_t *got,
		      bf_err *err)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(f->fd, (uint8_t *)dst + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return bf_errf(err, BF_EIO, "table file %s: cannot read: %s", f->path,
				       strerror(errno));
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

static bool checksum_ok(const sfile *f, const uint8_t *p, size_t size)
{
	return sst_block_checksum(f->checksum, p, size) == get32(p + size + 1);
}

/*
 * Checks the block of size bytes at p (its trailer after it), decompresses
 * it into raw when it is compressed, and finds its entries. SSTD_STOP for
 * a compression or layout this reader does not know.
 */
static int open_block(const sfile *f, uint64_t off, const uint8_t *p, size_t size, buf *raw,
		      bool data, bool verify, blk *out, bf_err *err)
{
	if (verify && !checksum_ok(f, p, size))
		return corrupt(err, f, off, "checksum mismatch");
	switch (p[size]) {
	case SST_COMPRESS_NONE:
		break;
	case SST_COMPRESS_LZ4:
	case SST_COMPRESS_LZ4HC: {
		uint32_t n;
		const uint8_t *src = varint32(p, p + size, &n);
		if (!src || n > INT32_MAX || size - (size_t)(src - p) > INT32_MAX)
			return corrupt(err, f, off, "malformed compressed block");
		if (!sst_bytes_reserve(raw, n ? n : 1))
			return bf_errf(err, BF_ENOMEM, "table file %s: out of memory", f->path);
		int got = LZ4_decompress_safe((const char *)src, (char *)raw->p,
					      (int)(size - (size_t)(src - p)), (int)n);
		if (got != (int)n)
			return corrupt(err, f, off, "lz4 cannot decompress it");
		p = raw->p;
		size = n;
		break;
	}
	default:
		return SSTD_STOP;
	}
	if (size < 4)
		return corrupt(err, f, off, "shorter than its restart count");
	uint32_t packed = get32(p + size - 4);
	if (packed & HASH_INDEX_FLAG)
		return data ? SSTD_STOP : corrupt(err, f, off, "malformed restart count");
	if (packed == 0 || (uint64_t)packed * 4 + 4 > size)
		return corrupt(err, f, off, "malformed restart count");
	out->base = p;
	out->p = p;
	out->nrestarts = packed;
	out->restarts = p + size - 4 - 4 * (size_t)packed;
	out->end = out->restarts;
	return 0;
}

/* Reads the block at off into b and opens it (meta blocks and the index);
 * verify false leaves its checksum to the caller. */
static int read_block(const sfile *f, uint64_t off, uint64_t size, buf *b, buf *raw, bool verify,
		      blk *out, bf_err *err)
{
	size_t got;
	if (size > MAX_META_BLOCK)
		return corrupt(err, f, off, "larger than any index or meta block");
	if (!sst_bytes_reserve(b, (size_t)size + SST_BLOCK_TRAILER))
		return bf_errf(err, BF_ENOMEM, "table file %s: out of memory", f->path);
	int rc = pread_full(f, b->p, (size_t)size + SST_BLOCK_TRAILER, off, &got, err);
	if (rc == 0 && got != size + SST_BLOCK_TRAILER)
		rc = corrupt(err, f, off, "past the end of the file");
	return rc ? rc : open_block(f, off, b->p, (size_t)size, raw, false, verify, out, err);
}

/*
 * The next entry of a block: its key assembled in key (*klen bytes), its
 * value. with_vlen false: an index entry with delta-encoded values, whose
 * value runs to the next entry and is parsed by the caller (*v, *vlen to
 * the end of the entries). Returns false on malformed bytes.
 */
static bool next_entry(blk *b, buf *key, size_t *klen, bool with_vlen, const uint8_t **v,
		       size_t *vlen)
{
	uint32_t shared, unshared, vl = 0;
	const uint8_t *p = varint32(b->p, b->end, &shared);
	if (p)
		p = varint32(p, b->end, &unshared);
	if (p && with_vlen)
		p = varint32(p, b->end, &vl);
	if (!p || shared > *klen || (size_t)(b->end - p) < (size_t)unshared + vl ||
	    !sst_bytes_reserve(key, (size_t)shared + unshared))
		return false;
	memcpy(key->p + shared, p, unshared);
	b->shared = shared;
	*klen = (size_t)shared + unshared;
	p += unshared;
	*v = p;
	*vlen = with_vlen ? vl : (size_t)(b->end - p);
	b->p = p + vl;
	return true;
}

/* The value under name in a block of one entry per name (the metaindex,
 * the properties), or NULL. */
static const uint8_t *find_entry(const blk *props, buf *key, const char *name,
				    size_t *len)
{
	blk b = *props;
	size_t klen = 0, n = strlen(name);
	const uint8_t *v;
	while (b.p < b.end) {
		if (!next_entry(&b, key, &klen, true, &v, len))
			return NULL;
		if (klen == n && !memcmp(key->p, name, n))
			return v;
	}
	return NULL;
}

/* A numeric property (a varint), def when absent; false when malformed. */
static bool num_property(const blk *props, buf *key, const char *name, uint64_t def,
			 uint64_t *out)
{
	size_t len;
	const uint8_t *v = find_entry(props, key, name, &len);
	*out = def;
	return !v || varint64(v, v + len, out) != NULL;
}

/*
 * The properties block's checksum. An ingest may have written the file's
 * sequence number into the block after the checksum was made; RocksDB
 * checks such a block with that number zeroed, and so does this.
 */
static bool props_checksum_ok(const sfile *f, uint8_t *p, size_t size, const blk *props,
			      buf *key)
{
	size_t len;
	if (checksum_ok(f, p, size))
		return true;
	uint8_t *v = (uint8_t *)find_entry(props, key, SST_GLOBAL_SEQNO,
					      &len);
	if (!v || len != 8 || p[size] != SST_COMPRESS_NONE || v < p || v + 8 > p + size)
		return false;
	uint8_t keep[8];
	memcpy(keep, v, 8);
	memset(v, 0, 8);
	bool ok = checksum_ok(f, p, size);
	memcpy(v, keep, 8);
	return ok;
}

/*
 * Opens the file and checks it is one this reader reads entirely: a known
 * footer and checksum, bytewise keys, a binary-search index, no range
 * deletions (they would hide keys the data blocks still show).
 */
static int sfile_open(const char *path, sfile *f, bf_err *err)
{
	uint8_t foot[SST_FOOTER_LEN];
	buf b = { 0 }, raw = { 0 }, key = { 0 };
	blk meta, props;
	struct stat st;
	size_t got;
	int rc = 0;

	memset(f, 0, sizeof(*f));
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	f->path = strdup(path);
	if (!f->path)
		return bf_errf(err, BF_ENOMEM, "table file %s: out of memory", path);
	if (f->fd < 0) /* gone since it was listed: RocksDB reads on */
		return SSTD_STOP;
	if (fstat(f->fd, &st) || st.st_size < SST_FOOTER_LEN)
		return SSTD_STOP;
	rc = pread_full(f, foot, SST_FOOTER_LEN, (uint64_t)st.st_size - SST_FOOTER_LEN, &got, err);
	if (rc)
		return rc;
	uint32_t version = get32(foot + 1 + SST_FOOTER_HANDLES);
	uint64_t moff, msize, poff, psize;
	const uint8_t *p = foot + 1, *end = foot + 1 + SST_FOOTER_HANDLES;
	if (got != SST_FOOTER_LEN || get64(foot + SST_FOOTER_LEN - 8) != SST_TABLE_MAGIC ||
	    version < 2 || version > 5 || (foot[0] != SST_CK_CRC32C && foot[0] != SST_CK_XXH3))
		return SSTD_STOP;
	f->checksum = foot[0];
	p = varint64(p, end, &moff);
	p = p ? varint64(p, end, &msize) : NULL;
	p = p ? varint64(p, end, &f->index_off) : NULL;
	p = p ? varint64(p, end, &f->index_size) : NULL;
	if (!p)
		return corrupt(err, f, (uint64_t)st.st_size - SST_FOOTER_LEN, "malformed footer");
	rc = read_block(f, moff, msize, &b, &raw, true, &meta, err);
	if (rc)
		goto out;
	size_t len;
	const uint8_t *h = find_entry(&meta, &key, SST_PROPERTIES, &len);
	if (!h || !(h = varint64(h, h + len, &poff)) || !varint64(h, h + len, &psize)) {
		rc = SSTD_STOP;
		goto out;
	}
	rc = read_block(f, poff, psize, &b, &raw, false, &props, err);
	if (rc == 0 && !props_checksum_ok(f, b.p, (size_t)psize, &props, &key))
		rc = corrupt(err, f, poff, "checksum mismatch");
	if (rc)
		goto out;
	uint64_t ranges = 0, delta = 0, separated = 0;
	const uint8_t *cmp = find_entry(&props, &key, "rocksdb.comparator", &len), *itype;
	if (!cmp || len != strlen("leveldb.BytewiseComparator") ||
	    memcmp(cmp, "leveldb.BytewiseComparator", len))
		rc = SSTD_STOP;
	else if (!(itype = find_entry(&props, &key, "rocksdb.block.based.table.index.type",
					 &len)) || len != 4 || get32(itype) != SST_INDEX_BINARY_SEARCH)
		rc = SSTD_STOP;
	else if (!num_property(&props, &key, "rocksdb.num.range-deletions", 1, &ranges) || ranges ||
		 !num_property(&props, &key, "rocksdb.index.value.is.delta.encoded", 0, &delta) ||
		 !num_property(&props, &key, "rocksdb.separate.key.value.in.data.block", 0,
			       &separated) || separated)
		rc = SSTD_STOP;
	f->delta = delta != 0;
out:
	free(b.p);
	free(raw.p);
	free(key.p);
	return rc;
}

static void sfile_close(sfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
}

void sstd_cursor_close(sstd_cursor *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nfiles; i++)
		sfile_close(&c->files[i]);
	free(c->files);
	free(c->lo);
	free(c->hi);
	buf *bufs[] = { &c->index, &c->index_raw, &c->chunk, &c->raw, &c->key, &c->last, &c->sep };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]->p);
	free(c);
}

int sstd_cursor_open(const char *const *paths, size_t n, const void *lo, size_t lolen,
		     const void *hi, size_t hilen, sstd_cursor **out, bf_err *err)
{
	sstd_cursor *c = calloc(1, sizeof(*c));
	int rc = 0;

	*out = NULL;
	if (!c || !(c->files = calloc(n ? n : 1, sizeof(sfile))) ||
	    !(c->lo = malloc(lolen ? lolen : 1)) || (hi && !(c->hi = malloc(hilen ? hilen : 1)))) {
		sstd_cursor_close(c);
		return bf_errf(err, BF_ENOMEM, "table scan: out of memory");
	}
	for (size_t i = 0; i < n; i++)
		c->files[i].fd = -1;
	if (lolen)
		memcpy(c->lo, lo, lolen);
	c->lolen = lolen;
	if (hi) {
		if (hilen)
			memcpy(c->hi, hi, hilen);
		c->hilen = hilen;
		c->has_hi = true;
	}
	for (size_t i = 0; i < n && rc == 0; i++, c->nfiles++)
		rc = sfile_open(paths[i], &c->files[i], err);
	if (rc) {
		sstd_cursor_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* Loads the index of files[cur] and positions it before its first entry. */
static int load_index(sstd_cursor *c, bf_err *err)
{
	const sfile *f = &c->files[c->cur];
	int rc = read_block(f, f->index_off, f->index_size, &c->index, &c->index_raw, true, &c->ix,
			    err);
	if (rc)
		return rc;
	c->ix_restart = 0;
	c->seplen = 0;
	c->have_handle = false;
	c->file_open = true;
	c->chunk_len = 0; /* the last file's bytes */
	return 0;
}

/* The next data block's position from the index: false at its end. */
static int next_handle(sstd_cursor *c, bool *more, bf_err *err)
{
	const sfile *f = &c->files[c->cur];
	blk *b = &c->ix;
	const uint8_t *v;
	size_t vlen;

	*more = false;
	if (b->p >= b->end)
		return 0;
	/* Entries at restart points hold a whole handle; with delta encoding
	 * the others hold the size change only, the block following the last. */
	bool restart = false;
	uint32_t at = (uint32_t)(b->p - b->base);
	if (c->ix_restart < b->nrestarts && get32(b->restarts + 4 * (size_t)c->ix_restart) == at) {
		restart = true;
		c->ix_restart++;
	}
	if (!next_entry(b, &c->sep, &c->seplen, !f->delta, &v, &vlen))
		return corrupt(err, f, f->index_off, "malformed index entry");
	const uint8_t *end = v + vlen, *p;
	if (!f->delta || restart || !c->have_handle) {
		p = varint64(v, end, &c->boff);
		p = p ? varint64(p, end, &c->bsize) : NULL;
	} else {
		uint64_t z = 0;
		p = varint64(v, end, &z);
		int64_t change = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
		c->boff += c->bsize + SST_BLOCK_TRAILER;
		c->bsize = (uint64_t)((int64_t)c->bsize + change);
	}
	if (!p)
		return corrupt(err, f, f->index_off, "malformed index entry");
	if (f->delta)
		b->p = p;
	c->have_handle = true;
	*more = true;
	return 0;
}

/* Makes the block at the current handle the current data block, reading
 * a chunk of whole blocks when it is not in the last one. */
static int load_data(sstd_cursor *c, bf_err *err)
{
	const sfile *f = &c->files[c->cur];
	uint64_t need = c->bsize + SST_BLOCK_TRAILER;
	if (c->bsize > INT32_MAX)
		return corrupt(err, f, c->boff, "larger than any data block");
	if (c->boff < c->chunk_off || c->boff + need > c->chunk_off + c->chunk_len) {
		size_t want = need > CHUNK ? (size_t)need : CHUNK;
		if (!sst_bytes_reserve(&c->chunk, want))
			return bf_errf(err, BF_ENOMEM, "table file %s: out of memory", f->path);
		int rc = pread_full(f, c->chunk.p, want, c->boff, &c->chunk_len, err);
		if (rc)
			return rc;
		c->chunk_off = c->boff;
		if (c->chunk_len < need)
			return corrupt(err, f, c->boff, "past the end of the file");
	}
	return open_block(f, c->boff, c->chunk.p + (c->boff - c->chunk_off), (size_t)c->bsize,
			  &c->raw, true, true, &c->data, err);
}

/* Moves to the next data block, through the files: false after the last. */
static int next_block(sstd_cursor *c, bool *more, bf_err *err)
{
	for (;;) {
		if (c->cur >= c->nfiles) {
			*more = false;
			return 0;
		}
		int rc = c->file_open ? 0 : load_index(c, err);
		if (rc == 0)
			rc = next_handle(c, more, err);
		if (rc)
			return rc;
		if (!*more) {
			c->cur++;
			c->file_open = false;
			continue;
		}
		/* Before the start, a block whose index key is below lo holds
		 * only smaller keys (taken whole, an index key holding a
		 * sequence number only compares higher). */
		if (!c->started && bf_key_cmp(c->sep.p, c->seplen, c->lo, c->lolen) < 0)
			continue;
		/* Likewise a block whose index key is below hi holds only keys
		 * below it: its entries need no check against hi. */
		c->below_hi = c->has_hi && bf_key_cmp(c->sep.p, c->seplen, c->hi, c->hilen) < 0;
		return load_data(c, err);
	}
}

int sstd_cursor_next(sstd_cursor *c, bool *valid, bf_err *err)
{
	*valid = false;
	if (c->done)
		return 0;
	for (;;) {
		if (c->data.p >= c->data.end) {
			bool more;
			int rc = next_block(c, &more, err);
			if (rc)
				return rc;
			if (!more) {
				c->done = true;
				return 0;
			}
			c->klen = 0;
			continue;
		}
		const uint8_t *v;
		size_t vlen;
		if (!next_entry(&c->data, &c->key, &c->klen, true, &v, &vlen) ||
		    c->klen < SST_KEY_TRAILER)
			return corrupt(err, &c->files[c->cur], c->boff, "malformed entry");
		size_t ul = c->klen - SST_KEY_TRAILER;
		const uint8_t *uk = c->key.p;
		if (!c->started) {
			if (bf_key_cmp(uk, ul, c->lo, c->lolen) < 0)
				continue;
			c->started = true;
		}
		if (c->has_hi && !c->below_hi && bf_key_cmp(uk, ul, c->hi, c->hilen) >= 0) {
			c->done = true;
			return 0;
		}
		/* Older versions of the key just returned follow it. Every entry
		 * since was that key, so the user-key bytes this one took from the
		 * one before are that key's: only the rest are compared (and
		 * copied below). */
		size_t same = c->have_last ? c->last_len : 0;
		same = c->data.shared < same ? c->data.shared : same;
		same = ul < same ? ul : same;
		if (c->have_last && ul == c->last_len &&
		    !memcmp(uk + same, c->last.p + same, ul - same))
			continue;
		if ((get64(uk + ul) & 0xFF) != SST_TYPE_VALUE)
			return SSTD_STOP;
		if (!sst_bytes_reserve(&c->last, ul ? ul : 1))
			return bf_errf(err, BF_ENOMEM, "table scan: out of memory");
		memcpy(c->last.p + same, uk + same, ul - same);
		c->last_len = ul;
		c->have_last = true;
		c->val = v;
		c->vlen = vlen;
		*valid = true;
		return 0;
	}
}

const uint8_t *sstd_cursor_key(const sstd_cursor *c, size_t *len)
{
	*len = c->last_len;
	return c->last.p;
}

const uint8_t *sstd_cursor_value(const sstd_cursor *c, size_t *len)
{
	*len = c->vlen;
	return c->val;
}
