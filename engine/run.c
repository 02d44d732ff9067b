/*
 * Run files (engine/run.h). A run is written once, front to back, from a
 * sorted buffer and read back in order by the import's merge, so the
 * format is the plainest that can be checked: blocks of about BLOCK_TARGET
 * bytes of entries with a CRC-32C each, optionally LZ4 or zstd compressed
 * per block. An entry stores only the part of its key that differs from
 * the key before it in its block: neighbours in sorted order share their
 * index prefix and more (a 10M-row `c` index, ~25 of 165 bytes), and runs
 * are the bytes a build writes, reads back and frees again, at the disk's
 * pace. Values are used in place; keys are rebuilt in the cursor.
 * Depends on util (crc32c, key order), liblz4 and libzstd.
 */
#include "engine/run.h"
#include "bfill/fault.h"
#include "util/crc32c.h"
#include "util/util.h"

#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#define BLOCK_TARGET (16u << 10)
#define BLOCK_HEADER 16        /* u32 stored len, u32 raw len, u32 entries, u32 crc */
#define ENTRY_HEADER 5         /* u16 key len, u16 value len, u8 bytes shared */
#define MAX_SHARED 255
#define MAX_KEY 65535u
#define MAX_ENTRY (ENTRY_HEADER + 2 * 65535u)
#define WRITE_CHUNK (1u << 20) /* bytes handed to write() at once */
#define WRITE_DEPTH 4          /* direct writes of a run in flight at most */
#define TRAILER 64
#define RUN_MAGIC 0x3230304e55524642ull /* "BFRUN002" */
#define RUN_MAGIC_1 0x3130304e55524642ull /* "BFRUN001": whole keys, 4-byte headers */
#define ZSTD_LEVEL 1
#define SYNC_EVERY (8u << 20)
/* Runs bypass the page cache (O_DIRECT) where the file system allows: a
 * run is written once and read once, in order, and page-cache pages cost
 * more to get (and to write back under the dirty limits) than the disk
 * takes to answer. Direct I/O wants buffers, offsets and lengths in
 * multiples of this. */
#define ALIGN 4096u

static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/*
 * I/O buffers come straight from mmap, page-aligned as direct I/O wants,
 * and go straight back on release: from malloc, megabyte buffers freed
 * run after run raise glibc's mmap threshold and then pile up in its
 * arenas (a 32M budget peaked at 460 MiB that way).
 */
static void *io_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void io_free(void *p, size_t n)
{
	if (p)
		munmap(p, n);
}

/* Grows an I/O buffer to at least need bytes, keeping len bytes. */
static int reserve_aligned(uint8_t **p, size_t *cap, size_t len, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64 * ALIGN;
	while (c < need)
		c *= 2;
	uint8_t *n = io_alloc(c);
	if (!n)
		return BF_ENOMEM;
	if (len)
		memcpy(n, *p, len);
	io_free(*p, *cap);
	*p = n;
	*cap = c;
	return 0;
}

/* Opens with O_DIRECT, or without it where the file system refuses it
 * (seam "run.nodirect" makes it refuse, for the tests). */
static int open_maybe_direct(const char *path, int flags, bool *direct)
{
	int fd = bf_fault_hit("run.nodirect") ? (errno = EINVAL, -1) : open(path, flags | O_DIRECT, 0644);
	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(path, flags, 0644);
	return fd;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static size_t get16(const uint8_t *p) { return (size_t)p[0] | ((size_t)p[1] << 8); }

static int io_err(bf_err *err, int e, const char *what, const char *path)
{
	char dir[PATH_MAX], avail_s[32];
	uint64_t avail = 0;

	if (e != ENOSPC && e != EDQUOT)
		return bf_errf(err, BF_EIO, "sort engine: %s %s: %s", what, path, strerror(e));
	bf_dirname(path, dir, sizeof(dir));
	if (bf_fs_avail(dir, &avail, NULL))
		avail = 0;
	return bf_errf(err, BF_ENOSPC, "sort dir %s: no room on its file system for a run (%s free); "
		       "free some space or give --sort-dir on a larger one", dir,
		       bf_fmt_bytes(avail, avail_s, sizeof(avail_s)));
}

static int write_all(int fd, const uint8_t *p, size_t n, const char *path, bf_err *err)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return io_err(err, errno, "cannot write", path);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Waits for the asynchronous request cb if *inflight; *done is what it
 * transferred. Returns 0 or the errno it ended with. */
static int aio_wait(struct aiocb *cb, bool *inflight, size_t *done)
{
	const struct aiocb *list[1] = { cb };
	int e;
	*done = 0;
	if (!*inflight)
		return 0;
	while ((e = aio_error(cb)) == EINPROGRESS)
		aio_suspend(list, 1, NULL);
	*inflight = false;
	ssize_t r = aio_return(cb);
	if (e || r < 0)
		return e ? e : EIO;
	*done = (size_t)r;
	return 0;
}

/* ---- writer ---- */

typedef struct write_slot {
	uint8_t *buf;
	size_t cap, len;         /* len: bytes of the write in flight */
	struct aiocb cb;
	bool inflight;
} write_slot;

typedef struct writer {
	const char *path;
	int fd;
	bf_compression codec;
	uint8_t *out;            /* bytes waiting for write(); blocks are built in place */
	size_t out_len, out_cap;
	uint8_t *blk;            /* a compressed run's block before compression */
	size_t blk_len, blk_cap;
	size_t blk_at;           /* uncompressed: the block's header offset in out */
	uint32_t blk_entries;
	uint64_t file_off;       /* file offset of out[0] */
	uint64_t synced;         /* bytes handed to writeback */
	bool direct;
	/* Direct writes go out asynchronously from these buffers, oldest
	 * first, while blocks are built in out: the writer waits only when
	 * all of them are still on their way to the disk. */
	write_slot slot[WRITE_DEPTH];
	int next_slot;           /* the oldest write, the next slot to reuse */
	uint8_t *index;
	size_t index_len, index_cap;
	uint64_t nblocks;
	uint32_t max_block;
} writer;

static int reserve(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	uint8_t *n = realloc(*p, c);
	if (!n)
		return BF_ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

/* Waits for the direct write from slot s, if one is in flight. */
static int wait_slot(writer *w, write_slot *s, bf_err *err)
{
	size_t done;
	int e = aio_wait(&s->cb, &s->inflight, &done);
	if (e)
		return io_err(err, e, "cannot write", w->path);
	/* A short write of a whole aligned chunk: the disk is full. */
	return done != s->len ? io_err(err, ENOSPC, "cannot write", w->path) : 0;
}

/* Waits for every direct write in flight; the first failure is kept. */
static int wait_writes(writer *w, bf_err *err)
{
	int rc = 0;
	for (int i = 0; i < WRITE_DEPTH; i++) {
		int r = wait_slot(w, &w->slot[(w->next_slot + i) % WRITE_DEPTH], rc ? NULL : err);
		if (rc == 0)
			rc = r;
	}
	return rc;
}

/* Hands the whole ALIGN units of out to an asynchronous write from the
 * oldest slot (once its own write is over) and goes on in that slot's
 * buffer with the rest. */
static int flush_direct(writer *w, bf_err *err)
{
	size_t n = w->out_len & ~(size_t)(ALIGN - 1);
	write_slot *s = &w->slot[w->next_slot];
	int rc = wait_slot(w, s, err);
	if (rc || n == 0)
		return rc;
	if (reserve_aligned(&s->buf, &s->cap, 0, w->out_cap))
		return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run");
	memcpy(s->buf, w->out + n, w->out_len - n);
	uint8_t *p = w->out;
	size_t cap = w->out_cap;
	w->out = s->buf;
	w->out_cap = s->cap;
	s->buf = p;
	s->cap = cap;
	memset(&s->cb, 0, sizeof(s->cb));
	s->cb.aio_fildes = w->fd;
	s->cb.aio_buf = s->buf;
	s->cb.aio_nbytes = n;
	s->cb.aio_offset = (off_t)w->file_off;
	if (aio_write(&s->cb))
		return io_err(err, errno, "cannot write", w->path);
	s->inflight = true;
	s->len = n;
	w->next_slot = (w->next_slot + 1) % WRITE_DEPTH;
	w->file_off += n;
	w->out_len -= n;
	return 0;
}

static int flush_out(writer *w, bf_err *err)
{
	if (w->direct)
		return flush_direct(w, err);
	size_t n = w->out_len;
	int rc = write_all(w->fd, w->out, n, w->path, err);
	w->file_off += n;
	w->out_len = 0;
	/* Start writing back what is written so far: the fsync that makes
	 * the run durable then waits for the last piece only, not the whole
	 * run. */
	if (rc == 0 && w->file_off - w->synced >= SYNC_EVERY) {
		sync_file_range(w->fd, (off_t)w->synced, (off_t)(w->file_off - w->synced),
				SYNC_FILE_RANGE_WRITE);
		w->synced = w->file_off;
	}
	return rc;
}

static int grow_out(writer *w, size_t need)
{
	return reserve_aligned(&w->out, &w->out_cap, w->out_len, need);
}

static size_t block_raw_len(const writer *w)
{
	return w->codec == BF_COMPRESS_NONE ? w->out_len - w->blk_at - BLOCK_HEADER : w->blk_len;
}

static int begin_block(writer *w, const uint8_t *first, size_t fl, bf_err *err)
{
	if (w->out_len >= WRITE_CHUNK) {
		int rc = flush_out(w, err);
		if (rc)
			return rc;
	}
	if (reserve(&w->index, &w->index_cap, w->index_len + 10 + fl))
		return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run index");
	put64(w->index + w->index_len, w->file_off + w->out_len);
	w->index[w->index_len + 8] = (uint8_t)fl;
	w->index[w->index_len + 9] = (uint8_t)(fl >> 8);
	memcpy(w->index + w->index_len + 10, first, fl);
	w->index_len += 10 + fl;
	w->blk_at = w->out_len;
	w->blk_len = 0;
	w->blk_entries = 0;
	if (w->codec == BF_COMPRESS_NONE)
		w->out_len += BLOCK_HEADER;
	return 0;
}

static int end_block(writer *w, bf_err *err)
{
	size_t raw = block_raw_len(w), stored = raw;
	uint8_t *hdr = w->out + w->blk_at;

	if (w->codec != BF_COMPRESS_NONE) {
		size_t bound = w->codec == BF_COMPRESS_LZ4 ? (size_t)LZ4_compressBound((int)raw)
							   : ZSTD_compressBound(raw);
		if (grow_out(w, w->out_len + BLOCK_HEADER + bound))
			return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run block");
		hdr = w->out + w->blk_at;
		uint8_t *dst = hdr + BLOCK_HEADER;
		if (w->codec == BF_COMPRESS_LZ4) {
			int n = LZ4_compress_default((const char *)w->blk, (char *)dst, (int)raw, (int)bound);
			if (n <= 0)
				return bf_errf(err, BF_EIO, "sort engine: lz4 cannot compress a block");
			stored = (size_t)n;
		} else {
			size_t n = ZSTD_compress(dst, bound, w->blk, raw, ZSTD_LEVEL);
			if (ZSTD_isError(n))
				return bf_errf(err, BF_EIO, "sort engine: zstd: %s", ZSTD_getErrorName(n));
			stored = n;
		}
		w->out_len = w->blk_at + BLOCK_HEADER + stored;
	}
	put32(hdr, (uint32_t)stored);
	put32(hdr + 4, (uint32_t)raw);
	put32(hdr + 8, w->blk_entries);
	put32(hdr + 12, bf_crc32c(0, hdr + BLOCK_HEADER, stored));
	if (BLOCK_HEADER + stored > w->max_block)
		w->max_block = (uint32_t)(BLOCK_HEADER + stored);
	w->nblocks++;
	w->blk_entries = 0;
	return 0;
}

/* Bytes a and b share at their start, at most MAX_SHARED. */
static size_t shared_prefix(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl, i = 0;
	if (n > MAX_SHARED)
		n = MAX_SHARED;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return i + (size_t)__builtin_ctzll(x ^ y) / 8; /* little-endian */
	}
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

/* Adds an entry after prev (the key before it, NULL for the first). */
static int add_entry(writer *w, const uint8_t *prev, size_t prevlen, const uint8_t *k, size_t kl,
		     const uint8_t *v, size_t vl, bf_err *err)
{
	size_t shared = w->blk_entries ? shared_prefix(prev, prevlen, k, kl) : 0;
	size_t need = ENTRY_HEADER + kl - shared + vl;
	int rc;

	/* A block starts with a whole key: it is read on its own. */
	if (w->blk_entries && block_raw_len(w) + need > BLOCK_TARGET) {
		rc = end_block(w, err);
		if (rc)
			return rc;
		shared = 0;
		need = ENTRY_HEADER + kl + vl;
	}
	if (w->blk_entries == 0) {
		rc = begin_block(w, k, kl, err);
		if (rc)
			return rc;
	}
	uint8_t *p;
	if (w->codec == BF_COMPRESS_NONE) {
		if (grow_out(w, w->out_len + need))
			return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run block");
		p = w->out + w->out_len;
		w->out_len += need;
	} else {
		if (reserve(&w->blk, &w->blk_cap, w->blk_len + need))
			return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run block");
		p = w->blk + w->blk_len;
		w->blk_len += need;
	}
	p[0] = (uint8_t)kl;
	p[1] = (uint8_t)(kl >> 8);
	p[2] = (uint8_t)vl;
	p[3] = (uint8_t)(vl >> 8);
	p[4] = (uint8_t)shared;
	memcpy(p + ENTRY_HEADER, k + shared, kl - shared);
	memcpy(p + ENTRY_HEADER + kl - shared, v, vl);
	w->blk_entries++;
	return 0;
}

static int sync_dir(const char *path, bf_err *err)
{
	char dir[PATH_MAX];
	bf_dirname(path, dir, sizeof(dir));
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return io_err(err, errno, "cannot open directory", dir);
	int rc = fsync(fd) ? io_err(err, errno, "cannot sync directory", dir) : 0;
	close(fd);
	return rc;
}

/* The index, the last key and the trailer, after the last block, with
 * zeros before the trailer to make the file a whole number of ALIGN. */
static int write_tail(writer *w, const uint8_t *last, size_t ll, uint64_t keys, uint64_t raw_bytes,
		      bf_err *err)
{
	uint64_t index_off = w->file_off + w->out_len;
	uint8_t t[TRAILER] = { 0 };

	if (reserve(&w->index, &w->index_cap, w->index_len + 2 + ll))
		return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run index");
	w->index[w->index_len] = (uint8_t)ll;
	w->index[w->index_len + 1] = (uint8_t)(ll >> 8);
	if (ll)
		memcpy(w->index + w->index_len + 2, last, ll);
	w->index_len += 2 + ll;
	put64(t, RUN_MAGIC);
	put64(t + 8, index_off);
	put64(t + 16, w->index_len);
	put64(t + 24, w->nblocks);
	put64(t + 32, keys);
	put64(t + 40, raw_bytes);
	put32(t + 48, (uint32_t)w->codec);
	put32(t + 52, w->max_block);
	put32(t + 56, bf_crc32c(0, w->index, w->index_len));
	put32(t + 60, bf_crc32c(0, t, 60));
	size_t end = w->out_len + w->index_len + TRAILER, pad = align_up(end) - end;
	if (grow_out(w, end + pad))
		return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run index");
	memcpy(w->out + w->out_len, w->index, w->index_len);
	memset(w->out + w->out_len + w->index_len, 0, pad);
	memcpy(w->out + w->out_len + w->index_len + pad, t, TRAILER);
	w->out_len = end + pad;
	return flush_out(w, err);
}

struct run_writer {
	writer w;
	char *tmp;
	size_t every, n;
	run_sample_fn sample;
	void *arg;
	const uint8_t *prev;      /* the last key written, for repeats: the */
	size_t prevlen;           /* caller's while its keys stay put, else */
	uint8_t *copy;            /* a copy */
	size_t copy_cap;
	bool stable;
	uint64_t keys, raw_bytes;
};

int run_writer_open(const char *tmp, bf_compression codec, size_t every, run_sample_fn sample,
		    void *arg, run_writer **out, bf_err *err)
{
	run_writer *rw = calloc(1, sizeof(*rw));
	int rc = 0;

	*out = NULL;
	if (!rw || !(rw->tmp = strdup(tmp))) {
		free(rw);
		return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run");
	}
	rw->w.path = rw->tmp;
	rw->w.codec = codec;
	rw->every = every;
	rw->sample = sample;
	rw->arg = arg;
	rw->w.fd = open_maybe_direct(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, &rw->w.direct);
	if (rw->w.fd < 0)
		rc = io_err(err, errno, "cannot create", tmp);
	else if (grow_out(&rw->w, WRITE_CHUNK + ALIGN + BLOCK_HEADER + MAX_ENTRY))
		rc = bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run");
	if (rc) {
		run_writer_abort(rw);
		return rc;
	}
	*out = rw;
	return 0;
}

int run_writer_add(run_writer *rw, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
		   bf_err *err)
{
	/* A re-scanned row yields the very same key; keep one. */
	if (rw->keys && kl == rw->prevlen && memcmp(k, rw->prev, kl) == 0)
		return 0;
	int rc = add_entry(&rw->w, rw->keys ? rw->prev : NULL, rw->prevlen, k, kl, v, vl, err);
	if (rc == 0 && rw->sample && rw->n++ % rw->every == 0 && rw->sample(rw->arg, k, kl))
		rc = bf_errf(err, BF_ENOMEM, "sort engine: out of memory for samples");
	if (rc == 0 && !rw->stable && reserve(&rw->copy, &rw->copy_cap, kl ? kl : 1))
		rc = bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run");
	if (rc)
		return rc;
	if (rw->stable) {
		rw->prev = k;
	} else {
		memcpy(rw->copy, k, kl);
		rw->prev = rw->copy;
	}
	rw->prevlen = kl;
	rw->keys++;
	rw->raw_bytes += kl + vl;
	return 0;
}

int run_writer_finish(run_writer *rw, const char *final, run_info *out, bf_err *err)
{
	writer *w = &rw->w;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (w->blk_entries)
		rc = end_block(w, err);
	if (rc == 0)
		rc = write_tail(w, rw->prev, rw->prevlen, rw->keys, rw->raw_bytes, err);
	if (rc == 0)
		rc = wait_writes(w, err);
	if (rc == 0 && fsync(w->fd))
		rc = io_err(err, errno, "cannot sync", rw->tmp);
	if (rc == 0 && close(w->fd))
		rc = io_err(err, errno, "cannot close", rw->tmp);
	w->fd = -1;
	if (rc == 0 && rename(rw->tmp, final))
		rc = io_err(err, errno, "cannot rename", rw->tmp);
	if (rc == 0)
		rc = sync_dir(final, err);
	if (rc == 0)
		rc = run_info_load(final, out, err);
	run_writer_abort(rw);
	return rc;
}

void run_writer_abort(run_writer *rw)
{
	if (!rw)
		return;
	wait_writes(&rw->w, NULL); /* a slot's buffer is its write's until it is over */
	if (rw->w.fd >= 0) {
		close(rw->w.fd);
		unlink(rw->tmp);
	}
	io_free(rw->w.out, rw->w.out_cap);
	for (int i = 0; i < WRITE_DEPTH; i++)
		io_free(rw->w.slot[i].buf, rw->w.slot[i].cap);
	free(rw->w.blk);
	free(rw->w.index);
	free(rw->copy);
	free(rw->tmp);
	free(rw);
}

int run_write(const char *tmp, const char *final, const bf_sortbuf *b, bf_compression codec,
	      size_t every, run_sample_fn sample, void *arg, run_info *out, bf_err *err)
{
	size_t n = bf_sortbuf_count(b);
	run_writer *rw;
	int rc = run_writer_open(tmp, codec, every, sample, arg, &rw, err);

	if (rc)
		return rc;
	rw->stable = true; /* the buffer's entries stay put */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const uint8_t *k, *v;
		size_t kl, vl;
		/* Entries are scattered over the buffer in sorted order. */
		bf_sortbuf_prefetch(b, i);
		bf_sortbuf_get(b, i, &k, &kl, &v, &vl);
		rc = run_writer_add(rw, k, kl, v, vl, err);
	}
	if (rc) {
		run_writer_abort(rw);
		return rc;
	}
	return run_writer_finish(rw, final, out, err);
}

/* ---- trailer ---- */

static int pread_all(int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

static int damaged(bf_err *err, const char *path, const char *what)
{
	return bf_errf(err, BF_ECORRUPT, "sort engine: run %s is damaged (%s); remove the sort dir and "
		       "run the job again", path, what);
}

/* Reads the index region (block offsets and first keys, then the last key)
 * into a malloc'd buffer, checked against its CRC. */
static int load_index(int fd, const run_info *ri, uint8_t **out, bf_err *err)
{
	uint8_t *idx = malloc(ri->index_len ? ri->index_len : 1);
	size_t got;
	int rc;

	*out = NULL;
	if (!idx)
		return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run index");
	rc = pread_all(fd, idx, ri->index_len, ri->index_off, &got);
	if (rc) {
		free(idx);
		return io_err(err, -rc, "cannot read", ri->path);
	}
	if (got != ri->index_len || bf_crc32c(0, idx, got) != ri->index_crc) {
		free(idx);
		return damaged(err, ri->path, "its block index fails its checksum");
	}
	*out = idx;
	return 0;
}

static int open_run(const run_info *ri, int *fd, bf_err *err)
{
	*fd = open(ri->path, O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? io_err(err, errno, "cannot open", ri->path) : 0;
}

int run_info_load(const char *path, run_info *ri, bf_err *err)
{
	uint8_t t[TRAILER], *idx = NULL;
	size_t got;
	int fd = -1, rc;

	memset(ri, 0, sizeof(*ri));
	ri->path = strdup(path);
	if (!ri->path)
		return bf_errf(err, BF_ENOMEM, "sort engine: out of memory");
	rc = open_run(ri, &fd, err);
	if (rc)
		goto out;
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < TRAILER) {
		rc = damaged(err, path, "too short");
		goto out;
	}
	ri->size = (uint64_t)size;
	rc = pread_all(fd, t, TRAILER, ri->size - TRAILER, &got);
	if (rc) {
		rc = io_err(err, -rc, "cannot read", path);
		goto out;
	}
	if (got != TRAILER || get32(t + 60) != bf_crc32c(0, t, 60) ||
	    (get64(t) != RUN_MAGIC && get64(t) != RUN_MAGIC_1)) {
		rc = damaged(err, path, "no valid trailer");
		goto out;
	}
	if (get64(t) == RUN_MAGIC_1) {
		rc = bf_errf(err, BF_ECORRUPT, "sort engine: run %s was written by an older bfill; "
			     "remove the sort dir and run the job again", path);
		goto out;
	}
	ri->index_off = get64(t + 8);
	ri->index_len = get64(t + 16);
	ri->nblocks = get64(t + 24);
	ri->keys = get64(t + 32);
	ri->raw_bytes = get64(t + 40);
	ri->codec = get32(t + 48);
	ri->max_block = get32(t + 52);
	ri->index_crc = get32(t + 56);
	uint64_t tail = ri->index_off + ri->index_len + TRAILER;
	if (tail > ri->size || ri->size - tail >= ALIGN || ri->index_len < 2 ||
	    ri->codec > BF_COMPRESS_ZSTD || ri->max_block > BLOCK_HEADER + 2 * MAX_ENTRY + BLOCK_TARGET) {
		rc = damaged(err, path, "its trailer is inconsistent");
		goto out;
	}
	rc = load_index(fd, ri, &idx, err);
	if (rc)
		goto out;
	/* The last key closes the index region. */
	size_t at = 0;
	for (uint64_t b = 0; b < ri->nblocks && at + 10 <= ri->index_len; b++)
		at += 10 + get16(idx + at + 8);
	if (at + 2 > ri->index_len || at + 2 + get16(idx + at) != ri->index_len) {
		rc = damaged(err, path, "its block index is inconsistent");
		goto out;
	}
	ri->last_len = get16(idx + at);
	ri->last_key = malloc(ri->last_len ? ri->last_len : 1);
	if (!ri->last_key) {
		rc = bf_errf(err, BF_ENOMEM, "sort engine: out of memory");
		goto out;
	}
	memcpy(ri->last_key, idx + at + 2, ri->last_len);
out:
	if (fd >= 0)
		close(fd);
	free(idx);
	if (rc)
		run_info_free(ri);
	return rc;
}

void run_info_free(run_info *ri)
{
	free(ri->path);
	free(ri->last_key);
	memset(ri, 0, sizeof(*ri));
}

/* ---- cursor ---- */

/* Block numbers to read for [lo, hi): from the last block starting at or
 * before lo, up to the first block starting at or after hi. */
static int plan_blocks(run_cursor *c, const uint8_t *lo, size_t lolen, uint64_t *first,
		       uint64_t *first_off, bf_err *err)
{
	const run_info *ri = c->ri;
	uint8_t *idx = NULL;
	size_t at = 0;
	int fd, rc;

	*first = 0;
	*first_off = 0;
	c->block_end = ri->nblocks;
	if (!lo && !c->hi)
		return 0;
	/* The index is read through the page cache: unaligned, and small. */
	rc = open_run(ri, &fd, err);
	if (rc)
		return rc;
	rc = load_index(fd, ri, &idx, err);
	close(fd);
	if (rc)
		return rc;
	for (uint64_t b = 0; b < ri->nblocks; b++) {
		uint64_t off = get64(idx + at);
		size_t fl = get16(idx + at + 8);
		const uint8_t *fk = idx + at + 10;
		if (lo && bf_key_cmp(fk, fl, lo, lolen) <= 0) {
			*first = b;
			*first_off = off;
		}
		if (c->hi && bf_key_cmp(fk, fl, c->hi, c->hilen) >= 0) {
			c->block_end = b;
			break;
		}
		at += 10 + fl;
	}
	free(idx);
	return 0;
}

/* Starts reading the next chunk into buffer i, unless the blocks are all
 * asked for already. */
static int start_read(run_cursor *c, int i, bf_err *err)
{
	c->inflight = false;
	if (c->next_off >= c->ri->index_off)
		return 0;
	memset(&c->cb, 0, sizeof(c->cb));
	c->cb.aio_fildes = c->fd;
	c->cb.aio_buf = c->mem[i] + c->head;
	c->cb.aio_nbytes = c->chunk;
	c->cb.aio_offset = (off_t)c->next_off;
	if (aio_read(&c->cb))
		return io_err(err, errno, "cannot read", c->ri->path);
	c->inflight = true;
	c->next_off += c->chunk;
	return 0;
}

/* Waits for the read in flight; *got is how many bytes it brought. */
static int wait_read(run_cursor *c, size_t *got, bf_err *err)
{
	int e = aio_wait(&c->cb, &c->inflight, got);
	return e ? io_err(err, e, "cannot read", c->ri->path) : 0;
}

/*
 * Makes n bytes from buf[pos] available. Two buffers take turns: one is
 * parsed while the next chunk of the file is read into the other, and the
 * start of a block cut by a chunk's end is carried into the other's head
 * room. Only called between blocks: the current block's entries go.
 */
static int fill(run_cursor *c, size_t n, bf_err *err)
{
	while (c->len - c->pos < n) {
		size_t rem = c->len - c->pos, got;
		int other = 1 - c->cur, rc = wait_read(c, &got, err);
		if (rc)
			return rc;
		if (got == 0)
			return damaged(err, c->ri->path, "it is shorter than its trailer says");
		memcpy(c->mem[other] + c->head - rem, c->buf + c->pos, rem);
		c->cur = other;
		c->buf = c->mem[other];
		c->pos = c->head - rem;
		c->len = c->head + got;
		rc = start_read(c, 1 - other, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int load_block(run_cursor *c, bf_err *err)
{
	int rc = fill(c, BLOCK_HEADER, err);
	if (rc)
		return rc;
	const uint8_t *h = c->buf + c->pos;
	size_t stored = get32(h), raw = get32(h + 4);
	if (BLOCK_HEADER + stored > c->ri->max_block || raw > MAX_ENTRY + BLOCK_TARGET)
		return damaged(err, c->ri->path, "a block header is out of range");
	rc = fill(c, BLOCK_HEADER + stored, err);
	if (rc)
		return rc;
	h = c->buf + c->pos;
	const uint8_t *payload = h + BLOCK_HEADER;
	if (bf_crc32c(0, payload, stored) != get32(h + 12))
		return damaged(err, c->ri->path, "a block fails its checksum");
	if (c->ri->codec == BF_COMPRESS_NONE) {
		if (raw != stored)
			return damaged(err, c->ri->path, "a block's lengths disagree");
		c->p = payload;
	} else {
		if (raw > c->raw_cap) {
			uint8_t *r = realloc(c->raw, raw);
			if (!r)
				return bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run block");
			c->raw = r;
			c->raw_cap = raw;
		}
		size_t got;
		if (c->ri->codec == BF_COMPRESS_LZ4) {
			int n = LZ4_decompress_safe((const char *)payload, (char *)c->raw, (int)stored, (int)raw);
			got = n < 0 ? SIZE_MAX : (size_t)n;
		} else {
			got = ZSTD_decompress(c->raw, raw, payload, stored);
			if (ZSTD_isError(got))
				got = SIZE_MAX;
		}
		if (got != raw)
			return damaged(err, c->ri->path, "a block does not decompress");
		c->p = c->raw;
	}
	c->pend = c->p + raw;
	c->block_first = true;
	c->pos += BLOCK_HEADER + stored;
	c->block++;
	c->check_hi = c->hi && c->block == c->block_end;
	return 0;
}

/* Parses the entry at c->p, loading the next block when this one is done. */
static int step(run_cursor *c, bf_err *err)
{
	while (c->p >= c->pend) {
		if (c->block >= c->block_end) {
			c->valid = false;
			return 0;
		}
		int rc = load_block(c, err);
		if (rc)
			return rc;
	}
	if (c->pend - c->p < ENTRY_HEADER)
		return damaged(err, c->ri->path, "an entry runs past its block");
	size_t kl = get16(c->p), vl = get16(c->p + 2), shared = c->p[4];
	if (shared > kl || (size_t)(c->pend - c->p) < ENTRY_HEADER + kl - shared + vl)
		return damaged(err, c->ri->path, "an entry runs past its block");
	const uint8_t *rest = c->p + ENTRY_HEADER;
	if (shared == 0) {
		c->k = rest; /* in place */
	} else {
		if (c->block_first || shared > c->kl)
			return damaged(err, c->ri->path, "an entry shares more than the key before it");
		/* The key before stays where it is (see run_cursor_next). */
		uint8_t *dst = c->k == c->keys ? c->keys + MAX_KEY : c->keys;
		memcpy(dst, c->k, shared);
		memcpy(dst + shared, rest, kl - shared);
		c->k = dst;
	}
	c->block_first = false;
	c->kl = kl;
	c->v = rest + kl - shared;
	c->vl = vl;
	c->p = c->v + vl;
	c->valid = !c->check_hi || bf_key_cmp(c->k, kl, c->hi, c->hilen) < 0;
	if (!c->valid)
		c->block_end = c->block; /* nothing after this is in range */
	return 0;
}

int run_cursor_open(run_cursor *c, const run_info *ri, const void *lo, size_t lolen,
		    const void *hi, size_t hilen, size_t readahead, bf_err *err)
{
	uint64_t first = 0, first_off = 0;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->ri = ri;
	c->hi = hi;
	c->hilen = hilen;
	/* Head room for a block cut by a chunk's end; chunks of at least a
	 * block, so one chunk always completes a block. */
	c->head = align_up(ri->max_block);
	c->chunk = align_up(readahead > ri->max_block ? readahead : ri->max_block);
	for (int i = 0; i < 2 && rc == 0; i++)
		if (!(c->mem[i] = io_alloc(c->head + c->chunk)))
			rc = bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run reader");
	/* Only the pages that keys reach are ever touched. */
	if (rc == 0 && !(c->keys = malloc(2 * MAX_KEY)))
		rc = bf_errf(err, BF_ENOMEM, "sort engine: out of memory for a run reader");
	if (rc)
		goto out;
	bool direct; /* reads are aligned either way */
	c->fd = open_maybe_direct(ri->path, O_RDONLY | O_CLOEXEC, &direct);
	if (c->fd < 0) {
		rc = io_err(err, errno, "cannot open", ri->path);
		goto out;
	}
	rc = plan_blocks(c, lo, lolen, &first, &first_off, err);
	if (rc)
		goto out;
	c->block = first;
	/* Reads start at the ALIGN unit holding the first block; the parse
	 * window starts empty in buffer 1 so that the first fill takes 0. */
	c->next_off = first_off & ~(uint64_t)(ALIGN - 1);
	c->cur = 1;
	c->buf = c->mem[1];
	c->pos = c->len = c->head;
	if (first < c->block_end) {
		size_t skip = (size_t)(first_off - c->next_off);
		rc = start_read(c, 0, err);
		if (rc == 0)
			rc = fill(c, skip + BLOCK_HEADER, err);
		if (rc)
			goto out;
		c->pos += skip;
	}
	c->valid = true;
	do
		rc = step(c, err);
	while (rc == 0 && c->valid && lo && bf_key_cmp(c->k, c->kl, lo, lolen) < 0);
out:
	if (rc) {
		c->valid = false;
		run_cursor_close(c);
	}
	return rc;
}

int run_cursor_next(run_cursor *c, bf_err *err)
{
	int rc = step(c, err);
	if (rc)
		c->valid = false;
	return rc;
}

void run_cursor_close(run_cursor *c)
{
	if (c->inflight) {
		/* The buffer is the read's until it is over. */
		size_t got;
		aio_cancel(c->fd, &c->cb);
		wait_read(c, &got, NULL);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	io_free(c->mem[0], c->head + c->chunk);
	io_free(c->mem[1], c->head + c->chunk);
	free(c->raw);
	free(c->keys);
	c->mem[0] = c->mem[1] = c->buf = c->raw = c->keys = NULL;
}
