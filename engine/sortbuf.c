/*
 * The sort buffer behind every engine writer. One allocation per buffer,
 * reused for every run: key-values are packed upward from the start, and
 * 16-byte sort entries (key prefix + offset) grow downward from the end,
 * with room reserved for the radix sort's scratch array. Sorting is an
 * LSD radix sort on 8 key bytes taken right after the prefix shared by
 * every key in the buffer (table + index id + flag for index keys), then a
 * comparison sort within runs of equal prefixes. When every key has the
 * same length and at most 8 byte positions differ between them (an
 * integer index: the low bytes of the value and of the handle), the radix
 * key is those bytes, and the radix sort alone orders the buffer.
 * Depends on libc only.
 */
#include "bfill/engine.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MIN_BUDGET (1u << 20)
#define ENTRY_HEADER 4 /* u16 key length, u16 value length */
#define MAX_PART 65535
#define DIFF_MAX 64      /* key bytes followed for the varying-position window */
#define WINDOW 8
#define READY_STEP (4u << 20) /* bytes made ready ahead of the writes at once */

typedef struct sort_entry {
	uint64_t prefix;
	uint64_t off;
} sort_entry;

struct bf_sortbuf {
	uint8_t *mem;
	size_t cap;
	size_t limit;        /* what this fill may use: cap but for a first fill cut short */
	size_t data_used;
	size_t count;
	/* Pages below ready_lo and from ready_hi up have been touched: the
	 * rest is made ready READY_STEP at a time (see make_ready). */
	size_t ready_lo, ready_hi;
	bool no_populate;    /* the kernel has no MADV_POPULATE_WRITE */
	size_t lcp;          /* bytes every key shares with the first key (!fixed) */
	/* While fixed, every key is key_len bytes long, and diff has a bit set
	 * wherever some key's differs from the first key's. */
	bool fixed;
	size_t key_len;
	uint64_t diff[DIFF_MAX / 8];
	bool sorted;
	sort_entry *order;   /* sorted view, valid after sort */
};

int bf_sortbuf_create(size_t budget, bf_sortbuf **out, bf_err *err)
{
	bf_sortbuf *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (!b)
		return bf_errf(err, BF_ENOMEM, "sort buffer: out of memory");
	if (budget < MIN_BUDGET)
		budget = MIN_BUDGET;
	budget &= ~(size_t)15;
	b->mem = mmap(NULL, budget, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->mem == MAP_FAILED) {
		free(b);
		return bf_errf(err, BF_ENOMEM, "sort buffer: cannot map %zu bytes", budget);
	}
	/* No MADV_HUGEPAGE: on the virtual machines measured, the first touch
	 * of fresh huge pages ran at 0.1-1.8 GB/s against a steady 2.7 GB/s
	 * for ordinary pages (docs/bench/add-index.md), and the sorted reads'
	 * misses are hidden by bf_sortbuf_prefetch instead. */
	b->cap = budget;
	b->limit = budget;
	b->ready_hi = budget;
	*out = b;
	return 0;
}

void bf_sortbuf_destroy(bf_sortbuf *b)
{
	if (!b)
		return;
	munmap(b->mem, b->cap);
	free(b);
}

static inline sort_entry *entry_slot(const bf_sortbuf *b, size_t i)
{
	return (sort_entry *)(b->mem + b->cap) - (i + 1);
}

/*
 * Faults in [lo, hi) of the buffer with one call instead of a page fault
 * per 4 KiB page on the first fill: on paravirtualised guests each fault's
 * trap was the dearest part of touching fresh memory (see
 * docs/bench/add-index.md). Pages are still touched only as the fill
 * reaches them, so a small table does not take the whole budget. Without
 * kernel support (before Linux 5.14) the pages fault in as before.
 */
static void make_ready(bf_sortbuf *b, size_t lo, size_t hi)
{
	if (b->no_populate || lo >= hi)
		return;
	if (madvise(b->mem + lo, hi - lo, MADV_POPULATE_WRITE) != 0)
		b->no_populate = true;
}

/* Makes ready the data up to data_end and the sort entries (with the radix
 * scratch below them) down to slots_end. */
static void ready_for(bf_sortbuf *b, size_t data_end, size_t slots_end)
{
	if (data_end > b->ready_lo) {
		size_t to = data_end - data_end % READY_STEP + READY_STEP;
		if (to > b->ready_hi)
			to = b->ready_hi;
		make_ready(b, b->ready_lo, to);
		b->ready_lo = to;
	}
	if (slots_end < b->ready_hi) {
		size_t from = slots_end - slots_end % READY_STEP;
		if (from < b->ready_lo)
			from = b->ready_lo;
		make_ready(b, from, b->ready_hi);
		b->ready_hi = from;
	}
}

/* Marks where a key of key_len bytes differs from the first key. */
static inline void note_diff(bf_sortbuf *b, const uint8_t *key)
{
	const uint8_t *first = b->mem + ENTRY_HEADER;
	size_t w = 0;
	for (; w * 8 + 8 <= b->key_len; w++) {
		uint64_t x, y;
		memcpy(&x, first + w * 8, 8);
		memcpy(&y, key + w * 8, 8);
		b->diff[w] |= x ^ y;
	}
	if (w * 8 < b->key_len) {
		uint64_t x = 0, y = 0;
		memcpy(&x, first + w * 8, b->key_len - w * 8);
		memcpy(&y, key + w * 8, b->key_len - w * 8);
		b->diff[w] |= x ^ y;
	}
}

static inline bool diff_at(const bf_sortbuf *b, size_t i)
{
	return ((const uint8_t *)b->diff)[i] != 0;
}

/* The bytes every key shares with the first, from diff. */
static size_t diff_lcp(const bf_sortbuf *b)
{
	size_t i = 0;
	while (i < b->key_len && !diff_at(b, i))
		i++;
	return i;
}

bool bf_sortbuf_add(bf_sortbuf *b, const void *key, size_t klen, const void *val, size_t vlen)
{
	size_t need = ENTRY_HEADER + klen + vlen;

	if (klen > MAX_PART || vlen > MAX_PART)
		return false;
	/* Two entries per key: the array itself and the radix scratch. */
	if (b->data_used + need + (b->count + 1) * 2 * sizeof(sort_entry) > b->limit)
		return false;
	size_t slots_end = b->cap - (b->count + 1) * 2 * sizeof(sort_entry);
	if (b->ready_lo < b->ready_hi && (b->data_used + need > b->ready_lo || slots_end < b->ready_hi))
		ready_for(b, b->data_used + need, slots_end);
	uint8_t *p = b->mem + b->data_used;
	p[0] = (uint8_t)klen;
	p[1] = (uint8_t)(klen >> 8);
	p[2] = (uint8_t)vlen;
	p[3] = (uint8_t)(vlen >> 8);
	memcpy(p + ENTRY_HEADER, key, klen);
	if (vlen)
		memcpy(p + ENTRY_HEADER + klen, val, vlen);
	if (b->count == 0) {
		b->lcp = klen;
		b->fixed = klen <= DIFF_MAX;
		b->key_len = klen;
		memset(b->diff, 0, sizeof(b->diff));
	} else if (b->fixed && klen == b->key_len) {
		note_diff(b, key);
	} else {
		if (b->fixed)
			b->lcp = diff_lcp(b);
		b->fixed = false;
		const uint8_t *first = b->mem + ENTRY_HEADER;
		size_t n = b->lcp < klen ? b->lcp : klen, i = 0;
		while (i < n && first[i] == ((const uint8_t *)key)[i])
			i++;
		b->lcp = i;
	}
	entry_slot(b, b->count)->off = b->data_used;
	b->data_used += need;
	b->count++;
	b->sorted = false;
	return true;
}

size_t bf_sortbuf_count(const bf_sortbuf *b) { return b->count; }

static inline size_t entry_klen(const uint8_t *p) { return (size_t)p[0] | ((size_t)p[1] << 8); }
static inline size_t entry_vlen(const uint8_t *p) { return (size_t)p[2] | ((size_t)p[3] << 8); }

static int cmp_keys(const void *a, const void *b, void *arg)
{
	const uint8_t *mem = arg;
	const uint8_t *pa = mem + ((const sort_entry *)a)->off, *pb = mem + ((const sort_entry *)b)->off;
	size_t la = entry_klen(pa), lb = entry_klen(pb);
	int c = memcmp(pa + ENTRY_HEADER, pb + ENTRY_HEADER, la < lb ? la : lb);
	return c ? c : (la > lb) - (la < lb);
}

static uint64_t window_at(const bf_sortbuf *b, uint64_t off, size_t from)
{
	const uint8_t *p = b->mem + off;
	size_t klen = entry_klen(p), take = klen > from ? klen - from : 0;
	uint64_t w = 0;
	if (take > 8)
		take = 8;
	for (size_t k = 0; k < take; k++)
		w |= (uint64_t)p[ENTRY_HEADER + from + k] << (56 - 8 * k);
	return w;
}

static int cmp_window(const void *x, const void *y)
{
	uint64_t a = ((const sort_entry *)x)->prefix, b = ((const sort_entry *)y)->prefix;
	return (a > b) - (a < b);
}

/* Orders a group whose keys agree up to byte `from`. */
static void sort_ties(bf_sortbuf *b, sort_entry *a, size_t n, size_t from)
{
	for (size_t i = 0; i < n; i++)
		a[i].prefix = window_at(b, a[i].off, from);
	if (n <= 16) {
		for (size_t i = 1; i < n; i++) {
			sort_entry cur = a[i];
			size_t j = i;
			while (j > 0 && a[j - 1].prefix > cur.prefix) {
				a[j] = a[j - 1];
				j--;
			}
			a[j] = cur;
		}
	} else {
		qsort(a, n, sizeof(*a), cmp_window);
	}
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && a[j].prefix == a[i].prefix)
			j++;
		if (j - i > 1)
			qsort_r(a + i, j - i, sizeof(*a), cmp_keys, b->mem);
		i = j;
	}
}

static void radix_sort(sort_entry *a, sort_entry *tmp, size_t n)
{
	size_t counts[8][256];
	sort_entry *src = a, *dst = tmp;

	memset(counts, 0, sizeof(counts));
	for (size_t i = 0; i < n; i++) {
		uint64_t p = a[i].prefix;
		for (int byte = 0; byte < 8; byte++)
			counts[byte][(p >> (8 * byte)) & 0xFF]++;
	}
	for (int byte = 0; byte < 8; byte++) {
		size_t *c = counts[byte], sum = 0;
		/* A byte every key shares orders nothing: skip its pass. */
		bool trivial = false;
		for (int v = 0; v < 256; v++) {
			if (c[v] == n) {
				trivial = true;
				break;
			}
			if (c[v])
				break;
		}
		if (trivial)
			continue;
		for (int v = 0; v < 256; v++) {
			size_t t = c[v];
			c[v] = sum;
			sum += t;
		}
		for (size_t i = 0; i < n; i++)
			dst[c[(src[i].prefix >> (8 * byte)) & 0xFF]++] = src[i];
		sort_entry *swap = src;
		src = dst;
		dst = swap;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

/*
 * Sets every entry's radix key to its bytes at the positions where keys
 * differ, the first of them most significant, when there are at most 8 of
 * them; false (nothing set) otherwise.
 */
static bool varying_window(const bf_sortbuf *b, sort_entry *a, size_t n)
{
	size_t pos[WINDOW], np = 0;
	for (size_t i = 0; i < b->key_len; i++) {
		if (!diff_at(b, i))
			continue;
		if (np == WINDOW)
			return false;
		pos[np++] = ENTRY_HEADER + i;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = b->mem + a[i].off;
		uint64_t w = 0;
		for (size_t k = 0; k < np; k++)
			w |= (uint64_t)p[pos[k]] << (56 - 8 * k);
		a[i].prefix = w;
	}
	return true;
}

void bf_sortbuf_sort(bf_sortbuf *b)
{
	size_t n = b->count;
	sort_entry *a, *tmp;

	if (b->sorted)
		return;
	a = entry_slot(b, n - 1 + (n == 0));
	if (n == 0) {
		b->order = a;
		b->sorted = true;
		return;
	}
	tmp = a - n;
	if (b->fixed && varying_window(b, a, n)) {
		/* Keys equal in every byte that varies are equal. */
		radix_sort(a, tmp, n);
		b->order = a;
		b->sorted = true;
		return;
	}
	if (b->fixed)
		b->lcp = diff_lcp(b);
	for (size_t i = 0; i < n; i++)
		a[i].prefix = window_at(b, a[i].off, b->lcp);
	radix_sort(a, tmp, n);
	/* Keys equal in the window (an int index's duplicate values, say)
	 * are ordered by the next 8 bytes, still as integers; only what ties
	 * again falls back to comparing whole keys. */
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && a[j].prefix == a[i].prefix)
			j++;
		if (j - i > 1)
			sort_ties(b, a + i, j - i, b->lcp + 8);
		i = j;
	}
	b->order = a;
	b->sorted = true;
}

void bf_sortbuf_get(const bf_sortbuf *b, size_t i, const uint8_t **key, size_t *klen,
		    const uint8_t **val, size_t *vlen)
{
	const uint8_t *p = b->mem + b->order[i].off;
	*klen = entry_klen(p);
	*vlen = entry_vlen(p);
	*key = p + ENTRY_HEADER;
	*val = p + ENTRY_HEADER + *klen;
}

void bf_sortbuf_limit(bf_sortbuf *b, size_t bytes)
{
	b->limit = bytes < b->cap ? bytes & ~(size_t)15 : b->cap;
}

void bf_sortbuf_reset(bf_sortbuf *b)
{
	b->limit = b->cap;
	b->data_used = 0;
	b->count = 0;
	b->lcp = 0;
	b->fixed = false;
	b->sorted = false;
	b->order = NULL;
}

size_t bf_sortbuf_lower_bound(const bf_sortbuf *b, const void *key, size_t klen)
{
	size_t lo = 0, hi = b->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const uint8_t *p = b->mem + b->order[mid].off;
		size_t kl = entry_klen(p);
		int c = memcmp(p + ENTRY_HEADER, key, kl < klen ? kl : klen);
		if (c < 0 || (c == 0 && kl < klen))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first line of an entry far ahead (it holds the lengths), the rest
 * of one nearer, whose lengths have arrived by then: entries of index
 * keys on wide columns span several lines. */
#define PREFETCH_FAR 32
#define PREFETCH_NEAR 12

void bf_sortbuf_prefetch(const bf_sortbuf *b, size_t i)
{
	if (i + PREFETCH_FAR < b->count)
		__builtin_prefetch(b->mem + b->order[i + PREFETCH_FAR].off);
	if (i + PREFETCH_NEAR < b->count) {
		const uint8_t *p = b->mem + b->order[i + PREFETCH_NEAR].off;
		size_t end = ENTRY_HEADER + entry_klen(p) + entry_vlen(p);
		for (size_t at = 64 - ((uintptr_t)p & 63); at < end; at += 64)
			__builtin_prefetch(p + at);
	}
}
