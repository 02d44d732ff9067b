/*
 * bfill-refbuild: the in-memory limit of add-index, to measure bfill's
 * build against. It builds one non-unique secondary index the way nothing
 * real can afford to: every entry stays in RAM (no spill, no sort engine,
 * no compression, no lock, no ingest), so its time is what scanning,
 * encoding, sorting and writing the target SSTs cost on this machine and
 * no more. bench/add_index.sh prints bfill's time over this one.
 *
 *   N threads scan N equal handle ranges of the table (forward-only scans
 *   on a snapshot, so the store reads its table files directly when it
 *   can, as the pipeline's readers do) and encode each
 *   row's entry exactly as pipeline/pipe.c does for a non-unique index,
 *   into an arena of their own, with a sort array of {8 key bytes after
 *   the prefix every key shares, as a big-endian integer; the entry};
 *   sampled splitters cut the keys into N ranges of about equal count;
 *   each thread sorts one range (MSD radix on those 8 bytes, then the rest
 *   of the key) and writes it as uncompressed target SSTs, cut like the
 *   import's (BF_IMPORT_MAX_BYTES of keys + values, BF_IMPORT_MAX_KEYS).
 *
 * The store is opened read-only and left as it was; the index id is one
 * the catalog does not hold. Files go to --out (kept), or to a temporary
 * directory that is removed at the end.
 *
 * usage: bfill-refbuild --store DIR --table T --columns COL[,COL2...]
 *                       [--threads N] [--out DIR] [--index-id ID]
 * Prints one JSON line: rows, keys, bytes (keys + values), files, seconds
 * (wall clock from the store's opening to the last file), scan_sort_seconds,
 * write_seconds, peak_rss_kib. Exit status: 0 ok, 1 failure, 2 usage.
 * Depends on libbfill's public store, catalog, codec and SST APIs only (and the
 * import's file limits from bfill/ingest.h).
 */
#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/ingest.h" /* BF_IMPORT_MAX_BYTES, BF_IMPORT_MAX_KEYS: the import's file cut */
#include "bfill/sst.h"
#include "bfill/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define DEFAULT_THREADS 2
#define INDEX_ID_GAP 1000           /* above every id the catalog holds */
#define CHUNK_BYTES (64ULL << 20)   /* arena chunks: mapped, so untouched pages cost nothing */
#define ENTRY_HEADER 4              /* u16 key length, u16 value length */
#define ENTRY_PART_MAX 65535
#define FIRST_ENTRIES (1u << 16)
#define SCAN_READAHEAD (2u << 20)   /* as the pipeline's scan */
#define TARGET_BLOCK_SIZE (16u << 10)
#define SAMPLES_PER_RANGE 4096
#define SMALL_SORT 24               /* below this, insertion sort */
#define PREFETCH_AHEAD 8
/* During the scan the sort prefix is taken after the index prefix and the
 * first column's flag byte: what every key of a NOT NULL column shares. */
#define GUESSED_LCP (BF_INDEX_PREFIX_LEN + 1)

typedef struct sort_entry {
	uint64_t prefix;    /* key bytes [lcp, lcp + 8), big-endian, zero-padded */
	const uint8_t *ent; /* header, key, value; in a worker's arena */
} sort_entry;

typedef struct chunk {
	struct chunk *next;
	size_t used;
	uint8_t data[];
} chunk;

struct refbuild;
struct worker;
typedef int (*phase_fn)(struct worker *w, bf_err *err);

typedef struct worker {
	struct refbuild *rb;
	int id;
	pthread_t thread;
	int rc;
	bf_err err;

	/* scan: records [lo, hi) */
	uint8_t lo[BF_RECORD_KEY_LEN], hi[BF_RECORD_KEY_LEN];
	size_t lolen, hilen;
	chunk *arena;          /* newest first; owned, lives until the end */
	sort_entry *entries;   /* owned; freed once scattered */
	size_t nentries, cap;
	size_t lcp;            /* bytes all its keys share with its first */
	uint64_t rows;

	/* partition: entries per key range, then where the next one goes */
	size_t range_count[MAX_THREADS];
	size_t range_next[MAX_THREADS];

	/* sort and write: key range `id` of rb->sorted */
	uint64_t keys, bytes;
	unsigned files;        /* opened, named ref-<id>-<n>.sst */
} worker;

typedef struct refbuild {
	bf_store *st;
	bf_store_snap *snap;
	bf_table table;
	int64_t index_id;
	int ncols;
	int cols[BF_MAX_INDEX_COLUMNS];
	int nthreads;
	size_t lcp;            /* bytes every key shares */
	bool refill;           /* the scan's prefixes were taken at another offset */
	uint64_t splitters[MAX_THREADS - 1];
	sort_entry *sorted;    /* every entry, range after range; owned */
	size_t range_start[MAX_THREADS + 1];
	char out_dir[PATH_MAX];
	phase_fn phase;        /* what the workers run now */
	worker workers[MAX_THREADS];
} refbuild;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline size_t entry_klen(const uint8_t *e) { return (size_t)e[0] | ((size_t)e[1] << 8); }
static inline size_t entry_vlen(const uint8_t *e) { return (size_t)e[2] | ((size_t)e[3] << 8); }

/* Key bytes [from, from + 8) as a big-endian integer, zero-padded past the
 * key's end, so that it orders like the bytes. */
static inline uint64_t window_at(const uint8_t *e, size_t from)
{
	const uint8_t *k = e + ENTRY_HEADER;
	size_t klen = entry_klen(e);
	uint64_t w = 0;

	if (klen >= from + 8) {
		memcpy(&w, k + from, 8);
		return __builtin_bswap64(w);
	}
	for (size_t i = from; i < klen; i++)
		w |= (uint64_t)k[i] << (56 - 8 * (i - from));
	return w;
}

/* Orders by prefix, then by the key bytes from `from` on, then by length. */
static int entry_cmp(const sort_entry *a, const sort_entry *b, size_t from)
{
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	size_t la = entry_klen(a->ent), lb = entry_klen(b->ent), n = la < lb ? la : lb;
	int c = n > from ? memcmp(a->ent + ENTRY_HEADER + from, b->ent + ENTRY_HEADER + from, n - from) : 0;
	return c ? c : (la > lb) - (la < lb);
}

static int entry_cmp_r(const void *a, const void *b, void *from)
{
	return entry_cmp(a, b, *(const size_t *)from);
}

/* ---- threads ---- */

static void *phase_main(void *arg)
{
	worker *w = arg;
	w->rc = w->rb->phase(w, &w->err);
	return NULL;
}

/* Runs fn on every worker at once and waits for all; the first failure,
 * by worker, goes to err. */
static int run_phase(refbuild *rb, phase_fn fn, bf_err *err)
{
	int started = 0, rc = 0;

	rb->phase = fn;
	for (; started < rb->nthreads; started++) {
		worker *w = &rb->workers[started];
		w->rc = 0;
		bf_err_clear(&w->err);
		if (pthread_create(&w->thread, NULL, phase_main, w)) {
			rc = bf_errf(err, BF_ENOMEM, "cannot start thread %d", started);
			break;
		}
	}
	for (int i = 0; i < started; i++) {
		worker *w = &rb->workers[i];
		pthread_join(w->thread, NULL);
		if (rc == 0 && w->rc) {
			rc = w->rc;
			if (err)
				*err = w->err;
		}
	}
	return rc;
}

/* ---- scan ---- */

/* N equal handle ranges of the table's records, as the pipeline's tasks
 * are cut (pipeline/pipe.c, make_tasks). */
static int plan_scan(refbuild *rb, bf_err *err)
{
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN];
	bf_iter_opts io = { .snap = rb->snap };
	bf_store_iter *it = NULL;
	int64_t first = 0, last = 0;
	size_t kl;
	int rc;

	bf_codec_record_prefix(lo, rb->table.id);
	memcpy(hi, lo, sizeof(hi));
	hi[BF_RECORD_PREFIX_LEN - 1]++; /* "_r" -> "_s": past every record key */
	rc = bf_store_iter_create(rb->st, lo, sizeof(lo), hi, sizeof(hi), &io, &it, err);
	if (rc == 0 && bf_store_iter_valid(it)) {
		const uint8_t *k = bf_store_iter_key(it, &kl);
		rc = bf_codec_decode_record_key(k, kl, NULL, &first);
		if (rc == 0) {
			bf_store_iter_seek_last(it);
			k = bf_store_iter_key(it, &kl);
			rc = bf_codec_decode_record_key(k, kl, NULL, &last);
		}
		if (rc)
			rc = bf_errf(err, BF_ECORRUPT, "malformed record key in table '%s'", rb->table.name);
	}
	if (rc == 0)
		rc = bf_store_iter_status(it, err);
	bf_store_iter_destroy(it);
	if (rc)
		return rc;
	for (int i = 0; i < rb->nthreads; i++) {
		worker *w = &rb->workers[i];
		if (i == 0) {
			memcpy(w->lo, lo, sizeof(lo));
			w->lolen = sizeof(lo);
			continue;
		}
		/* unsigned arithmetic: the handle span may exceed INT64_MAX */
		uint64_t span = (uint64_t)last - (uint64_t)first;
		unsigned __int128 off = (unsigned __int128)span * (unsigned)i / (unsigned)rb->nthreads;
		bf_codec_record_key(w->lo, rb->table.id, (int64_t)((uint64_t)first + (uint64_t)off));
		w->lolen = BF_RECORD_KEY_LEN;
		memcpy(rb->workers[i - 1].hi, w->lo, BF_RECORD_KEY_LEN);
		rb->workers[i - 1].hilen = BF_RECORD_KEY_LEN;
	}
	memcpy(rb->workers[rb->nthreads - 1].hi, hi, sizeof(hi));
	rb->workers[rb->nthreads - 1].hilen = sizeof(hi);
	return 0;
}

/* Room for need bytes at the end of the worker's arena (taken by adding
 * to the newest chunk's used). */
static int arena_room(worker *w, size_t need, uint8_t **out, bf_err *err)
{
	chunk *c = w->arena;

	if (!c || c->used + need > CHUNK_BYTES - sizeof(chunk)) {
		c = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED)
			return bf_errf(err, BF_ENOMEM, "the entries do not fit in memory (%" PRIu64
				       " rows so far in thread %d)", w->rows, w->id);
		/* No MADV_HUGEPAGE, as for the library's sort buffers: on the
		 * virtual machines measured, fresh huge pages were much slower
		 * to touch first than ordinary ones (engine/sortbuf.c). */
		c->used = 0;
		c->next = w->arena;
		w->arena = c;
	}
	*out = c->data + c->used;
	return 0;
}

/* Encodes one row's entry as pipeline/pipe.c's encode_batch does for a
 * non-unique index, straight into the arena. */
static int add_entry(worker *w, const bf_datum *cols, int64_t handle, bf_err *err)
{
	refbuild *rb = w->rb;
	bool with = bf_codec_index_needs_handle(false, cols, rb->ncols);
	size_t kl = bf_codec_index_key_len(cols, rb->ncols, with), vl;
	uint8_t *e = NULL;
	int rc;

	if (kl > ENTRY_PART_MAX)
		return bf_errf(err, BF_ERANGE, "row %" PRId64 " has an index key of %zu bytes", handle, kl);
	if (w->nentries == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : FIRST_ENTRIES;
		sort_entry *grown = realloc(w->entries, cap * sizeof(*grown));
		if (!grown)
			return bf_errf(err, BF_ENOMEM, "out of memory for %zu sort entries", cap);
		w->entries = grown;
		w->cap = cap;
	}
	rc = arena_room(w, ENTRY_HEADER + kl + BF_INDEX_VALUE_MAX, &e, err);
	if (rc)
		return rc;
	bf_codec_index_key(e + ENTRY_HEADER, rb->table.id, rb->index_id, cols, rb->ncols, with, handle);
	vl = bf_codec_index_value(e + ENTRY_HEADER + kl, with, handle);
	e[0] = (uint8_t)kl;
	e[1] = (uint8_t)(kl >> 8);
	e[2] = (uint8_t)vl;
	e[3] = (uint8_t)(vl >> 8);
	w->arena->used += ENTRY_HEADER + kl + vl;
	if (w->nentries == 0) {
		w->lcp = kl;
	} else {
		const uint8_t *first = w->entries[0].ent + ENTRY_HEADER;
		size_t i = 0, n = w->lcp < kl ? w->lcp : kl;
		while (i < n && first[i] == e[ENTRY_HEADER + i])
			i++;
		w->lcp = i;
	}
	w->entries[w->nentries].prefix = window_at(e, GUESSED_LCP);
	w->entries[w->nentries++].ent = e;
	return 0;
}

static int scan_phase(worker *w, bf_err *err)
{
	refbuild *rb = w->rb;
	const bf_table *t = &rb->table;
	bf_iter_opts io = { .snap = rb->snap, .readahead = SCAN_READAHEAD, .fill_cache = false,
			    .forward_only = true };
	bf_store_iter *it = NULL;
	int rc = bf_store_iter_create(rb->st, w->lo, w->lolen, w->hi, w->hilen, &io, &it, err);

	for (; rc == 0 && bf_store_iter_valid(it); bf_store_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = bf_store_iter_key(it, &kl), *v = bf_store_iter_value(it, &vl);
		bf_datum cols[BF_MAX_INDEX_COLUMNS];
		int64_t tid, handle = 0;
		bf_row_view rv;

		if (bf_codec_decode_record_key(k, kl, &tid, &handle) || tid != t->id)
			rc = bf_errf(err, BF_ECORRUPT, "table '%s': malformed record key of %zu bytes",
				     t->name, kl);
		else if (bf_codec_row_view(&rv, v, vl))
			rc = bf_errf(err, BF_ECORRUPT, "table '%s': row with handle %" PRId64
				     " has a malformed value", t->name, handle);
		for (int c = 0; rc == 0 && c < rb->ncols; c++)
			if (bf_table_decode_column(t, rb->cols[c], &rv, handle, &cols[c]))
				rc = bf_errf(err, BF_ECORRUPT, "table '%s': row with handle %" PRId64
					     " has a malformed value for column '%s'",
					     t->name, handle, t->cols[rb->cols[c]].name);
		if (rc == 0)
			rc = add_entry(w, cols, handle, err);
		w->rows++;
	}
	if (rc == 0)
		rc = bf_store_iter_status(it, err);
	bf_store_iter_destroy(it);
	return rc;
}

/* ---- partition into key ranges ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/*
 * The bytes every key shares (so the sort prefixes are taken where keys
 * differ) and the splitters that cut the keys into nthreads ranges of
 * about equal count, from an even sample of each worker's entries.
 * Equal prefixes always fall in one range, so the ranges never overlap.
 */
static int plan_ranges(refbuild *rb, bf_err *err)
{
	const uint8_t *first = NULL;
	size_t lcp = 0, total = 0, nsamples, m = 0;
	uint64_t *samples;

	for (int i = 0; i < rb->nthreads; i++) {
		const worker *w = &rb->workers[i];
		if (w->nentries == 0)
			continue;
		const uint8_t *k = w->entries[0].ent + ENTRY_HEADER;
		size_t klen = entry_klen(w->entries[0].ent), j = 0;
		if (!first) {
			first = k;
			lcp = w->lcp;
		}
		while (j < lcp && j < klen && first[j] == k[j])
			j++;
		lcp = j < w->lcp ? j : w->lcp;
		total += w->nentries;
	}
	rb->lcp = lcp;
	rb->refill = lcp != GUESSED_LCP;
	if (rb->nthreads == 1 || total == 0)
		return 0;
	nsamples = (size_t)SAMPLES_PER_RANGE * (size_t)rb->nthreads;
	samples = malloc(nsamples * sizeof(*samples));
	if (!samples)
		return bf_errf(err, BF_ENOMEM, "out of memory for %zu samples", nsamples);
	for (int i = 0; i < rb->nthreads; i++) {
		const worker *w = &rb->workers[i];
		size_t take = (size_t)((unsigned __int128)nsamples * w->nentries / total);
		for (size_t j = 0; j < take; j++)
			samples[m++] = window_at(w->entries[j * w->nentries / take].ent, lcp);
	}
	qsort(samples, m, sizeof(*samples), cmp_u64);
	for (int r = 1; r < rb->nthreads; r++)
		rb->splitters[r - 1] = m ? samples[(size_t)r * m / (size_t)rb->nthreads] : UINT64_MAX;
	free(samples);
	return 0;
}

/* The key range of a prefix: how many splitters are <= it. */
static inline int range_of(const refbuild *rb, uint64_t prefix)
{
	int lo = 0, hi = rb->nthreads - 1;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (rb->splitters[mid] <= prefix)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int count_phase(worker *w, bf_err *err)
{
	refbuild *rb = w->rb;
	(void)err;
	memset(w->range_count, 0, sizeof(w->range_count));
	for (size_t i = 0; i < w->nentries; i++) {
		sort_entry *e = &w->entries[i];
		if (rb->refill)
			e->prefix = window_at(e->ent, rb->lcp);
		w->range_count[range_of(rb, e->prefix)]++;
	}
	return 0;
}

/* Range r of rb->sorted holds each worker's entries of range r in turn. */
static int place_ranges(refbuild *rb, bf_err *err)
{
	size_t pos = 0;

	for (int r = 0; r < rb->nthreads; r++) {
		rb->range_start[r] = pos;
		for (int i = 0; i < rb->nthreads; i++) {
			rb->workers[i].range_next[r] = pos;
			pos += rb->workers[i].range_count[r];
		}
	}
	rb->range_start[rb->nthreads] = pos;
	rb->sorted = malloc((pos ? pos : 1) * sizeof(*rb->sorted));
	if (!rb->sorted)
		return bf_errf(err, BF_ENOMEM, "out of memory for %zu sort entries", pos);
	return 0;
}

static int scatter_phase(worker *w, bf_err *err)
{
	refbuild *rb = w->rb;
	(void)err;
	for (size_t i = 0; i < w->nentries; i++) {
		const sort_entry *e = &w->entries[i];
		rb->sorted[w->range_next[range_of(rb, e->prefix)]++] = *e;
	}
	free(w->entries);
	w->entries = NULL;
	w->nentries = w->cap = 0;
	return 0;
}

/* ---- sort ---- */

/* A group too small for another radix pass, or whose prefixes are all
 * equal: a comparison sort. */
static void compare_sort(sort_entry *a, size_t n, size_t from)
{
	if (n > SMALL_SORT) {
		qsort_r(a, n, sizeof(*a), entry_cmp_r, &from);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		sort_entry cur = a[i];
		size_t j = i;
		while (j > 0 && entry_cmp(&a[j - 1], &cur, from) > 0) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = cur;
	}
}

/*
 * Sorts a[0..n) by prefix byte `byte` (0 = the most significant) and the
 * ones after it, then by the rest of the key (from byte `from` of the key
 * on). The result ends in a when to_a, else in b; the other array is
 * scratch. Each pass moves the entries to the other array and the groups
 * are sorted from there, so nothing is copied back but the small groups.
 */
static void msd_sort(sort_entry *a, sort_entry *b, size_t n, int byte, bool to_a, size_t from)
{
	size_t count[256], next[256], sum = 0;

	for (; byte < 8 && n > SMALL_SORT; byte++) {
		int shift = 56 - 8 * byte;
		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(a[i].prefix >> shift) & 0xFF]++;
		/* A byte every entry shares orders nothing: no pass for it. */
		if (count[(a[0].prefix >> shift) & 0xFF] == n)
			continue;
		for (int v = 0; v < 256; v++) {
			next[v] = sum;
			sum += count[v];
		}
		for (size_t i = 0; i < n; i++)
			b[next[(a[i].prefix >> shift) & 0xFF]++] = a[i];
		sum = 0;
		for (int v = 0; v < 256; v++) {
			if (count[v])
				msd_sort(b + sum, a + sum, count[v], byte + 1, !to_a, from);
			sum += count[v];
		}
		return;
	}
	compare_sort(a, n, from);
	if (!to_a)
		memcpy(b, a, n * sizeof(*a));
}

static int sort_phase(worker *w, bf_err *err)
{
	refbuild *rb = w->rb;
	size_t n = rb->range_start[w->id + 1] - rb->range_start[w->id];
	sort_entry *scratch = NULL;

	if (n > SMALL_SORT && !(scratch = malloc(n * sizeof(*scratch))))
		return bf_errf(err, BF_ENOMEM, "out of memory to sort %zu entries", n);
	msd_sort(rb->sorted + rb->range_start[w->id], scratch, n, 0, true, rb->lcp);
	free(scratch);
	return 0;
}

/* ---- write ---- */

static void file_path(const refbuild *rb, int range, unsigned n, char *out, size_t cap)
{
	snprintf(out, cap, "%s/ref-%02d-%06u.sst", rb->out_dir, range, n);
}

static int finish_file(bf_sst_writer **sw, bf_err *err)
{
	int rc = bf_sst_writer_finish(*sw, NULL, err);
	bf_sst_writer_destroy(*sw);
	*sw = NULL;
	return rc;
}

/* The entries are read in key order, all over the arenas: their first
 * lines are fetched 2 * PREFETCH_AHEAD entries ahead, the rest (the
 * lengths being in by then) PREFETCH_AHEAD ahead. always_inline: GCC 12
 * finds a function that only prefetches "pure" and drops its calls. */
static inline __attribute__((always_inline)) void prefetch_entries(const sort_entry *sorted, size_t i, size_t end)
{
	if (i + 2 * PREFETCH_AHEAD < end)
		__builtin_prefetch(sorted[i + 2 * PREFETCH_AHEAD].ent);
	if (i + PREFETCH_AHEAD < end) {
		const uint8_t *e = sorted[i + PREFETCH_AHEAD].ent;
		const uint8_t *stop = e + ENTRY_HEADER + entry_klen(e) + entry_vlen(e);
		for (const uint8_t *p = e + 64 - ((uintptr_t)e & 63); p < stop; p += 64)
			__builtin_prefetch(p);
	}
}

/* Writes key range `id` as target SSTs, cut where the import cuts them
 * (engine/export.c): once a file holds max bytes or max keys. */
static int write_phase(worker *w, bf_err *err)
{
	refbuild *rb = w->rb;
	bf_sst_writer *sw = NULL;
	char path[PATH_MAX];
	int rc = 0;

	for (size_t i = rb->range_start[w->id]; rc == 0 && i < rb->range_start[w->id + 1]; i++) {
		const uint8_t *e = rb->sorted[i].ent;
		prefetch_entries(rb->sorted, i, rb->range_start[w->id + 1]);
		size_t kl = entry_klen(e), vl = entry_vlen(e);
		if (!sw) {
			file_path(rb, w->id, w->files, path, sizeof(path));
			rc = bf_sst_writer_open(path, BF_COMPRESS_NONE, TARGET_BLOCK_SIZE, &sw, err);
			if (rc)
				break;
			w->files++;
		}
		rc = bf_sst_writer_put(sw, e + ENTRY_HEADER, kl, e + ENTRY_HEADER + kl, vl, err);
		if (rc)
			break;
		w->keys++;
		w->bytes += kl + vl;
		if (bf_sst_writer_raw_bytes(sw) >= BF_IMPORT_MAX_BYTES ||
		    bf_sst_writer_keys(sw) >= BF_IMPORT_MAX_KEYS)
			rc = finish_file(&sw, err);
	}
	if (rc == 0 && sw)
		rc = finish_file(&sw, err);
	bf_sst_writer_destroy(sw);
	return rc;
}

/* ---- the run ---- */

typedef struct args {
	const char *store, *table, *out;
	char cols[BF_MAX_INDEX_COLUMNS][BF_NAME_MAX];
	int ncols;
	int threads;
	int64_t index_id; /* 0: above every id of the table */
} args;

typedef struct result {
	uint64_t rows, keys, bytes, files;
	double seconds, scan_sort_seconds, write_seconds;
} result;

static int resolve_index(refbuild *rb, const args *a, bf_err *err)
{
	const bf_table *t = &rb->table;
	int64_t top = t->next_index_id;

	for (int i = 0; i < a->ncols; i++) {
		int pos = bf_table_column(t, a->cols[i]);
		if (pos < 0)
			return bf_errf(err, BF_ENOTFOUND, "column '%s' does not exist in table '%s'",
				       a->cols[i], t->name);
		for (int k = 0; k < i; k++)
			if (rb->cols[k] == pos)
				return bf_errf(err, BF_EINVAL, "column '%s' appears twice in --columns",
					       a->cols[i]);
		rb->cols[i] = pos;
	}
	rb->ncols = a->ncols;
	for (int i = 0; i < t->nindexes; i++)
		if (t->indexes[i].id > top)
			top = t->indexes[i].id;
	if (a->index_id && bf_table_index_by_id(t, a->index_id) >= 0)
		return bf_errf(err, BF_EEXIST, "table '%s' already has an index with id %" PRId64,
			       t->name, a->index_id);
	rb->index_id = a->index_id ? a->index_id : top + INDEX_ID_GAP;
	return 0;
}

static int build(refbuild *rb, const args *a, result *res, bf_err *err)
{
	double t0, t1;
	int rc = bf_store_open(a->store, BF_STORE_READONLY, &rb->st, err);

	if (rc)
		return rc;
	t0 = now_s();
	rb->snap = bf_store_snapshot(rb->st);
	rc = bf_catalog_get_table(bf_store_catalog(rb->st), a->table, &rb->table, err);
	if (rc == 0)
		rc = resolve_index(rb, a, err);
	if (rc == 0)
		rc = plan_scan(rb, err);
	if (rc == 0)
		rc = run_phase(rb, scan_phase, err);
	if (rc == 0)
		rc = plan_ranges(rb, err);
	if (rc == 0)
		rc = run_phase(rb, count_phase, err);
	if (rc == 0)
		rc = place_ranges(rb, err);
	if (rc == 0)
		rc = run_phase(rb, scatter_phase, err);
	if (rc == 0)
		rc = run_phase(rb, sort_phase, err);
	t1 = now_s();
	if (rc == 0)
		rc = run_phase(rb, write_phase, err);
	res->seconds = now_s() - t0;
	res->scan_sort_seconds = t1 - t0;
	res->write_seconds = res->seconds - res->scan_sort_seconds;
	for (int i = 0; i < rb->nthreads; i++) {
		res->rows += rb->workers[i].rows;
		res->keys += rb->workers[i].keys;
		res->bytes += rb->workers[i].bytes;
		res->files += rb->workers[i].files;
	}
	return rc;
}

/* Frees what the workers hold and closes the store. With keep_files,
 * the SSTs stay in the output directory. */
static void release(refbuild *rb, bool keep_files)
{
	char path[PATH_MAX];

	for (int i = 0; i < rb->nthreads; i++) {
		worker *w = &rb->workers[i];
		for (unsigned n = 0; !keep_files && n < w->files; n++) {
			file_path(rb, i, n, path, sizeof(path));
			remove(path);
		}
		while (w->arena) {
			chunk *next = w->arena->next;
			munmap(w->arena, CHUNK_BYTES);
			w->arena = next;
		}
		free(w->entries);
	}
	free(rb->sorted);
	if (rb->st) {
		bf_store_snapshot_release(rb->st, rb->snap);
		bf_store_close(rb->st);
	}
}

/* ---- command line ---- */

static const char usage_text[] =
	"usage: bfill-refbuild --store DIR --table T --columns COL[,COL2...]\n"
	"                      [--threads N] [--out DIR] [--index-id ID]\n"
	"Builds one non-unique index entirely in memory (no spill, no compression)\n"
	"into SST files, without touching the store; prints one JSON line.\n"
	"  --threads N    scan, sort and write threads (default 2)\n"
	"  --out DIR      where the SSTs go, and stay (default: a temporary\n"
	"                 directory under /tmp, removed at the end)\n"
	"  --index-id ID  the index id in the keys (default: 1000 above the table's)\n"
	"Exit status: 0 done, 1 failure, 2 bad usage.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("bfill-refbuild: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	return 2;
}

/* The names in a --columns list; an empty one is a mistake, not skipped. */
static int parse_columns(const char *list, args *a)
{
	char buf[BF_MAX_INDEX_COLUMNS * BF_NAME_MAX];

	if (strlen(list) >= sizeof(buf))
		return usage_error("--columns list is too long");
	snprintf(buf, sizeof(buf), "%s", list);
	a->ncols = 0;
	for (char *rest = buf, *c; (c = strsep(&rest, ","));) {
		while (*c == ' ' || *c == '\t')
			c++;
		char *end = c + strlen(c);
		while (end > c && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*c)
			return usage_error("--columns '%s' has an empty column name", list);
		if (a->ncols == BF_MAX_INDEX_COLUMNS)
			return usage_error("an index has at most %d columns", BF_MAX_INDEX_COLUMNS);
		if (strlen(c) >= BF_NAME_MAX)
			return usage_error("column name '%s' is too long", c);
		snprintf(a->cols[a->ncols++], BF_NAME_MAX, "%s", c);
	}
	return 0;
}

static bool parse_int(const char *text, long long lo, long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* 0 with *a filled, 2 after a usage error, -1 after --help. */
static int parse_args(int argc, char **argv, args *a)
{
	static const struct option opts[] = {
		{ "store", required_argument, 0, 's' }, { "table", required_argument, 0, 't' },
		{ "columns", required_argument, 0, 'c' }, { "threads", required_argument, 0, 'n' },
		{ "out", required_argument, 0, 'o' }, { "index-id", required_argument, 0, 'i' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	long long v;
	int c, rc;

	memset(a, 0, sizeof(*a));
	a->threads = DEFAULT_THREADS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': a->store = optarg; break;
		case 't': a->table = optarg; break;
		case 'o': a->out = optarg; break;
		case 'c':
			rc = parse_columns(optarg, a);
			if (rc)
				return rc;
			break;
		case 'n':
			if (!parse_int(optarg, 1, MAX_THREADS, &v))
				return usage_error("--threads takes 1..%d, not '%s'", MAX_THREADS, optarg);
			a->threads = (int)v;
			break;
		case 'i':
			if (!parse_int(optarg, 1, INT64_MAX, &v))
				return usage_error("--index-id takes a positive id, not '%s'", optarg);
			a->index_id = v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		default:
			return usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!a->store || !a->table || !a->ncols)
		return usage_error("--store, --table and --columns are required");
	if (a->out && strlen(a->out) + 32 >= PATH_MAX)
		return usage_error("--out path is too long");
	return 0;
}

/* The output directory: --out (created when absent), else a new one. */
static int make_out_dir(refbuild *rb, const args *a, bf_err *err)
{
	if (!a->out) {
		const char *tmp = getenv("TMPDIR");
		if (!tmp || !*tmp)
			tmp = "/tmp";
		snprintf(rb->out_dir, sizeof(rb->out_dir), "%s/bfill-refbuild.XXXXXX", tmp);
		if (!mkdtemp(rb->out_dir))
			return bf_errf(err, -errno, "cannot create a directory under %s: %s", tmp,
				       strerror(errno));
		return 0;
	}
	snprintf(rb->out_dir, sizeof(rb->out_dir), "%s", a->out);
	if (mkdir(rb->out_dir, 0755) && errno != EEXIST)
		return bf_errf(err, -errno, "cannot create %s: %s", rb->out_dir, strerror(errno));
	return 0;
}

int main(int argc, char **argv)
{
	refbuild *rb = NULL;
	bf_err err = { 0 };
	result res = { 0 };
	struct rusage ru;
	args a;
	bool made_dir = false;
	int rc = parse_args(argc, argv, &a);

	if (rc)
		return rc < 0 ? 0 : rc;
	rb = calloc(1, sizeof(*rb));
	if (!rb) {
		rc = bf_errf(&err, BF_ENOMEM, "out of memory");
		goto out;
	}
	rb->nthreads = a.threads;
	for (int i = 0; i < MAX_THREADS; i++) {
		rb->workers[i].rb = rb;
		rb->workers[i].id = i;
	}
	rc = make_out_dir(rb, &a, &err);
	if (rc)
		goto out;
	made_dir = !a.out;
	rc = build(rb, &a, &res, &err);
	if (rc)
		goto out;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"rows\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"files\":%" PRIu64
	       ",\"seconds\":%.3f,\"scan_sort_seconds\":%.3f,\"write_seconds\":%.3f"
	       ",\"peak_rss_kib\":%ld}\n",
	       res.rows, res.keys, res.bytes, res.files, res.seconds, res.scan_sort_seconds,
	       res.write_seconds, ru.ru_maxrss);
	if (fflush(stdout) || ferror(stdout))
		rc = bf_errf(&err, BF_EIO, "cannot write the result: %s", strerror(errno));
out:
	if (rb) {
		release(rb, rc == 0 && !made_dir);
		if (made_dir)
			rmdir(rb->out_dir);
	}
	free(rb);
	if (rc)
		fprintf(stderr, "bfill-refbuild: %s\n", bf_err_text(&err));
	return rc ? 1 : 0;
}
