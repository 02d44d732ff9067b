/*
 * The merge (include/bfill/engine.h): every run of some engines plus some
 * sorted buffers, in key order, each key once. A binary heap of sources
 * ordered first by 8 key bytes taken as an integer right after the prefix
 * all keys share (the index prefix), so most steps compare integers, not
 * bytes. Depends on engine/run, engine/sortbuf and util.
 */
#include "engine/engine_impl.h"
#include "engine/run.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

#define READ_TOTAL (4u << 20) /* read chunks of one merge (twice: two per run) */
#define READ_MAX (2u << 20)
#define READ_MIN (32u << 10)

typedef struct msrc {
	const uint8_t *k, *v;
	size_t kl, vl;
	uint64_t pfx;
	bool valid;
	run_cursor *c;        /* a run ... */
	const bf_sortbuf *buf; /* ... or a sorted buffer's [pos, end) */
	size_t pos, end;
} msrc;

struct bf_merge {
	msrc *src;
	run_cursor *cursors;
	int nsrc, ncursors;
	msrc **heap;
	int hn;
	size_t skip;          /* bytes every key shares */
	/* The key last returned, to drop the same key from other sources:
	 * borrowed from prev_src until that source moves its buffer, then
	 * copied to keep. */
	const uint8_t *prev;
	size_t prevlen;
	uint64_t prev_pfx;
	const msrc *prev_src;
	bool have_prev;
	uint8_t *keep;
	size_t keep_cap;
};

static uint64_t prefix_at(const uint8_t *k, size_t kl, size_t skip)
{
	uint64_t w = 0;
	size_t n = kl - skip;
	if (n >= 8) {
		memcpy(&w, k + skip, 8);
		return __builtin_bswap64(w);
	}
	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)k[skip + i] << (56 - 8 * i);
	return w;
}

static inline int cmp_src(const msrc *a, const msrc *b, size_t skip)
{
	if (a->pfx != b->pfx)
		return a->pfx < b->pfx ? -1 : 1;
	return bf_key_cmp(a->k + skip, a->kl - skip, b->k + skip, b->kl - skip);
}

static void load(bf_merge *m, msrc *s)
{
	if (s->c) {
		s->valid = s->c->valid;
		s->k = s->c->k;
		s->kl = s->c->kl;
		s->v = s->c->v;
		s->vl = s->c->vl;
	} else {
		s->valid = s->pos < s->end;
		if (s->valid) {
			bf_sortbuf_prefetch(s->buf, s->pos);
			bf_sortbuf_get(s->buf, s->pos, &s->k, &s->kl, &s->v, &s->vl);
		}
	}
	if (s->valid)
		s->pfx = prefix_at(s->k, s->kl, m->skip);
}

/* Moves s on; the key last returned is copied first if s is about to load
 * a new block. A run cursor keeps its last key through one more step
 * (see run_cursor_next), and that is all the merge needs: a run holds no
 * key twice, so the source of the key last returned is never stepped
 * again before another key is returned. */
static int advance(bf_merge *m, msrc *s, bf_err *err)
{
	if (s->c) {
		if (m->prev_src == s && run_cursor_at_edge(s->c)) {
			if (m->prevlen > m->keep_cap) {
				uint8_t *k = realloc(m->keep, m->prevlen);
				if (!k)
					return bf_errf(err, BF_ENOMEM, "merge: out of memory");
				m->keep = k;
				m->keep_cap = m->prevlen;
			}
			memcpy(m->keep, m->prev, m->prevlen);
			m->prev = m->keep;
			m->prev_src = NULL;
		}
		int rc = run_cursor_next(s->c, err);
		if (rc)
			return rc;
	} else {
		s->pos++;
	}
	load(m, s);
	return 0;
}

static void sift_down(bf_merge *m, int i)
{
	msrc **h = m->heap;
	msrc *x = h[i];
	for (;;) {
		int c = 2 * i + 1;
		if (c >= m->hn)
			break;
		if (c + 1 < m->hn && cmp_src(h[c + 1], h[c], m->skip) < 0)
			c++;
		if (cmp_src(h[c], x, m->skip) >= 0)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

/* After the top source moved: drop it if done, restore the order. */
static void reheap(bf_merge *m)
{
	if (!m->heap[0]->valid)
		m->heap[0] = m->heap[--m->hn];
	if (m->hn > 0)
		sift_down(m, 0);
}

/* Skips entries equal to the key last returned (the same entry in two
 * runs or a run and a buffer: a row re-scanned after a resume). */
static int drop_repeats(bf_merge *m, bf_err *err)
{
	while (m->have_prev && m->hn > 0) {
		msrc *t = m->heap[0];
		if (t->pfx != m->prev_pfx || t->kl != m->prevlen || memcmp(t->k, m->prev, t->kl))
			break;
		int rc = advance(m, t, err);
		if (rc)
			return rc;
		reheap(m);
	}
	return 0;
}

static void set_skip(bf_merge *m)
{
	const uint8_t *lo = NULL, *hi = NULL;
	size_t lolen = 0, hilen = 0;
	for (int i = 0; i < m->nsrc; i++) {
		msrc *s = &m->src[i];
		const uint8_t *last, *v;
		size_t ll, vl;
		if (!s->valid)
			continue;
		if (s->c) {
			last = s->c->ri->last_key;
			ll = s->c->ri->last_len;
		} else {
			bf_sortbuf_get(s->buf, s->end - 1, &last, &ll, &v, &vl);
		}
		if (!lo || bf_key_cmp(s->k, s->kl, lo, lolen) < 0) {
			lo = s->k;
			lolen = s->kl;
		}
		if (!hi || bf_key_cmp(last, ll, hi, hilen) > 0) {
			hi = last;
			hilen = ll;
		}
	}
	size_t n = lolen < hilen ? lolen : hilen, i = 0;
	while (i < n && lo[i] == hi[i])
		i++;
	/* Every key in range lies between lo and hi, so shares these bytes. */
	m->skip = i;
}

int merge_open_runs(run_info *const *runs, size_t nruns, bf_sortbuf *const *extra, int nextra,
		    const void *lo, size_t lolen, const void *hi, size_t hilen, bf_merge **out,
		    bf_err *err)
{
	bf_merge *m = calloc(1, sizeof(*m));
	int nsrc = (int)nruns + nextra, rc = 0;

	*out = NULL;
	if (!m)
		return bf_errf(err, BF_ENOMEM, "merge: out of memory");
	m->src = calloc((size_t)(nsrc ? nsrc : 1), sizeof(*m->src));
	m->heap = calloc((size_t)(nsrc ? nsrc : 1), sizeof(*m->heap));
	m->cursors = calloc(nruns ? nruns : 1, sizeof(*m->cursors));
	if (!m->src || !m->heap || !m->cursors) {
		rc = bf_errf(err, BF_ENOMEM, "merge: out of memory");
		goto out;
	}
	size_t ra = READ_TOTAL / (nruns ? nruns : 1);
	ra = ra > READ_MAX ? READ_MAX : ra < READ_MIN ? READ_MIN : ra;
	for (size_t r = 0; r < nruns; r++) {
		rc = run_cursor_open(&m->cursors[r], runs[r], lo, lolen, hi, hilen, ra, err);
		if (rc)
			goto out;
		m->ncursors++;
		m->src[m->nsrc++].c = &m->cursors[r];
	}
	for (int x = 0; x < nextra; x++) {
		msrc *s = &m->src[m->nsrc++];
		s->buf = extra[x];
		s->pos = lo ? bf_sortbuf_lower_bound(s->buf, lo, lolen) : 0;
		s->end = hi ? bf_sortbuf_lower_bound(s->buf, hi, hilen) : bf_sortbuf_count(s->buf);
	}
	for (int i = 0; i < m->nsrc; i++)
		load(m, &m->src[i]);
	set_skip(m);
	for (int i = 0; i < m->nsrc; i++) {
		msrc *s = &m->src[i];
		if (!s->valid)
			continue;
		s->pfx = prefix_at(s->k, s->kl, m->skip);
		m->heap[m->hn++] = s;
	}
	for (int i = m->hn / 2 - 1; i >= 0; i--)
		sift_down(m, i);
out:
	if (rc) {
		bf_merge_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

int bf_merge_open(bf_engine *const *engines, int nengines, bf_sortbuf *const *extra, int nextra,
		  const void *lo, size_t lolen, const void *hi, size_t hilen, bf_merge **out,
		  bf_err *err)
{
	run_info **runs = NULL;
	size_t nruns = 0;
	int rc = 0;

	*out = NULL;
	for (int e = 0; e < nengines && rc == 0; e++) {
		run_info **r = NULL;
		size_t n = 0;
		rc = engine_runs(engines[e], &r, &n, err);
		if (rc == 0 && n) {
			run_info **all = realloc(runs, (nruns + n) * sizeof(*all));
			if (!all)
				rc = bf_errf(err, BF_ENOMEM, "merge: out of memory");
			else {
				memcpy(all + nruns, r, n * sizeof(*r));
				runs = all;
				nruns += n;
			}
		}
		free(r);
	}
	if (rc == 0)
		rc = merge_open_runs(runs, nruns, extra, nextra, lo, lolen, hi, hilen, out, err);
	free(runs);
	return rc;
}

bool bf_merge_valid(const bf_merge *m) { return m->hn > 0; }

void bf_merge_get(const bf_merge *m, const uint8_t **key, size_t *klen, const uint8_t **val,
		  size_t *vlen)
{
	const msrc *t = m->heap[0];
	*key = t->k;
	*klen = t->kl;
	if (val)
		*val = t->v;
	if (vlen)
		*vlen = t->vl;
}

int bf_merge_next(bf_merge *m, bf_err *err)
{
	msrc *t = m->heap[0];
	int rc;

	m->prev = t->k;
	m->prevlen = t->kl;
	m->prev_pfx = t->pfx;
	m->prev_src = t;
	m->have_prev = true;
	rc = advance(m, t, err);
	if (rc == 0) {
		reheap(m);
		rc = drop_repeats(m, err);
	}
	if (rc)
		m->hn = 0;
	return rc;
}

void bf_merge_close(bf_merge *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->ncursors; i++)
		run_cursor_close(&m->cursors[i]);
	free(m->cursors);
	free(m->src);
	free(m->heap);
	free(m->keep);
	free(m);
}
