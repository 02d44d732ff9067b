/*
 * Sample catalog records with every field set away from its default, and
 * field-by-field comparisons, for the catalog's round-trip tests.
 */
#include "tests/support/records.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* sbtest plus a nullable unsigned and a varchar, with three indexes in
 * different states. */
void t_sample_table(bf_table *t)
{
	bf_table_sbtest(t, "orders");
	t->id = 4242;
	t->rows_hint = (1ULL << 60) + 3; /* beyond a double's 53 bits */
	static const struct { const char *name; int64_t id; bf_coltype type; int len; } more[] = {
		{ "qty", 9, BF_COL_UINT, 8 },
		{ "note", 300, BF_COL_VARCHAR, 2000 },
	};
	for (int i = 0; i < 2; i++) {
		bf_column *c = &t->cols[t->ncols++];
		snprintf(c->name, sizeof(c->name), "%s", more[i].name);
		c->id = more[i].id;
		c->type = more[i].type;
		c->len = more[i].len;
		c->not_null = false;
	}

	bf_index *x = &t->indexes[t->nindexes++];
	snprintf(x->name, sizeof(x->name), "k_1");
	x->id = 1;
	x->ncols = 1;
	x->cols[0] = 1;
	x->state = BF_INDEX_PUBLIC;
	x = &t->indexes[t->nindexes++];
	snprintf(x->name, sizeof(x->name), "uk_c_pad");
	x->id = 2;
	x->ncols = 2;
	x->cols[0] = 2;
	x->cols[1] = 3;
	x->unique = true;
	x->state = BF_INDEX_WRITE_REORG;
	x->job_id = 77;
	x = &t->indexes[t->nindexes++];
	snprintf(x->name, sizeof(x->name), "idx_note");
	x->id = 5;
	x->ncols = 3;
	x->cols[0] = 5;
	x->cols[1] = 4;
	x->cols[2] = 0;
	x->state = BF_INDEX_NONE;
	x->job_id = 78;
	t->next_index_id = 6;
}

void t_expect_same_table(const bf_table *a, const bf_table *b)
{
	cr_assert_str_eq(a->name, b->name);
	cr_assert_eq(a->id, b->id);
	cr_assert_eq(a->handle_col, b->handle_col);
	cr_assert_eq(a->rows_hint, b->rows_hint, "rows_hint %llu vs %llu",
		     (unsigned long long)a->rows_hint, (unsigned long long)b->rows_hint);
	cr_assert_eq(a->next_index_id, b->next_index_id);
	cr_assert_eq(a->ncols, b->ncols);
	for (int i = 0; i < a->ncols; i++) {
		cr_assert_str_eq(a->cols[i].name, b->cols[i].name);
		cr_assert_eq(a->cols[i].id, b->cols[i].id, "column %s", a->cols[i].name);
		cr_assert_eq(a->cols[i].type, b->cols[i].type, "column %s", a->cols[i].name);
		cr_assert_eq(a->cols[i].len, b->cols[i].len, "column %s", a->cols[i].name);
		cr_assert_eq(a->cols[i].not_null, b->cols[i].not_null, "column %s", a->cols[i].name);
	}
	cr_assert_eq(a->nindexes, b->nindexes);
	for (int i = 0; i < a->nindexes; i++) {
		const bf_index *x = &a->indexes[i], *y = &b->indexes[i];
		cr_assert_str_eq(x->name, y->name);
		cr_assert_eq(x->id, y->id, "index %s", x->name);
		cr_assert_eq(x->ncols, y->ncols, "index %s", x->name);
		for (int k = 0; k < x->ncols; k++)
			cr_assert_eq(x->cols[k], y->cols[k], "index %s column %d", x->name, k);
		cr_assert_eq(x->unique, y->unique, "index %s", x->name);
		cr_assert_eq(x->state, y->state, "index %s", x->name);
		cr_assert_eq(x->job_id, y->job_id, "index %s", x->name);
	}
}

void t_sample_job(bf_job *j, int64_t id)
{
	memset(j, 0, sizeof(*j));
	j->id = id;
	snprintf(j->table, sizeof(j->table), "sbtest1");
	j->table_id = 100;
	j->nindexes = 2;
	j->index_ids[0] = 3;
	j->index_ids[1] = 4;
	snprintf(j->index_names[0], BF_NAME_MAX, "k_c");
	snprintf(j->index_names[1], BF_NAME_MAX, "k_pad");
	j->state = BF_JOB_RUNNING;
	snprintf(j->phase, sizeof(j->phase), "import");
	snprintf(j->waiting, sizeof(j->waiting), "etcd lock /bfill/lock/%lld/3", (long long)id);
	j->rows_done = 123456789012ULL;
	j->rows_total = (1ULL << 62) + 1;
	j->rate = 1234567.25;
	j->start_ms = 1700000000123LL;
	j->update_ms = 1700000005123LL;
	j->end_ms = 0;
	j->pid = 4321;
	snprintf(j->last_error, sizeof(j->last_error), "store \"x\": line1\nline2\ttab \\ slash");

	j->cp.has_flushed = true;
	bf_codec_record_key(j->cp.flushed_key, 100, 5000001);
	j->cp.flushed_rows = 5000000;
	j->cp.has_imported = false;
	snprintf(j->cp.engine_id, sizeof(j->cp.engine_id), "g%lld", (long long)id + 3);
	j->cp.first_gen = 2;
	j->cp.imports = 3;
	j->importing = true;
	j->rolled_back = false;
	j->rows_scanned = (1ULL << 61) + 5;
	snprintf(j->lock_key, sizeof(j->lock_key), "/bfill/lock/0c5b2d9e-6f1a-4e4b-9d7c-3a2b1c0d9e8f/%lld",
		 (long long)id);
	j->lock_leases[0] = 0x694d8a5f2b3c1c0dLL;
	j->lock_leases[1] = 0;

	j->cfg.workers = 6;
	j->cfg.mem_bytes = 3ULL << 30;
	j->cfg.import_every = 1000000;
	snprintf(j->cfg.sort_dir, sizeof(j->cfg.sort_dir), "/var/tmp/bfill sort");
	snprintf(j->cfg.etcd, sizeof(j->cfg.etcd), "10.0.0.1:2379,10.0.0.2:2379");
	snprintf(j->cfg.lock_prefix, sizeof(j->cfg.lock_prefix), "/bfill/lock/");
	j->cfg.lock_ttl_s = 7;
	j->cfg.lock_timeout_s = 90;
	j->cfg.run_compression = 0;
	j->cfg.target_compression = 2;
}

void t_expect_same_job(const bf_job *a, const bf_job *b)
{
	cr_assert_eq(a->id, b->id);
	cr_assert_str_eq(a->table, b->table);
	cr_assert_eq(a->table_id, b->table_id);
	cr_assert_eq(a->nindexes, b->nindexes);
	for (int i = 0; i < a->nindexes; i++) {
		cr_assert_eq(a->index_ids[i], b->index_ids[i]);
		cr_assert_str_eq(a->index_names[i], b->index_names[i]);
	}
	cr_assert_eq(a->state, b->state);
	cr_assert_str_eq(a->phase, b->phase);
	cr_assert_str_eq(a->waiting, b->waiting);
	cr_assert_eq(a->rows_done, b->rows_done);
	cr_assert_eq(a->rows_total, b->rows_total, "rows_total %llu vs %llu",
		     (unsigned long long)a->rows_total, (unsigned long long)b->rows_total);
	cr_assert(a->rate == b->rate, "rate %.17g vs %.17g", a->rate, b->rate);
	cr_assert_eq(a->start_ms, b->start_ms);
	cr_assert_eq(a->update_ms, b->update_ms);
	cr_assert_eq(a->end_ms, b->end_ms);
	cr_assert_eq(a->pid, b->pid);
	cr_assert_eq(a->importing, b->importing);
	cr_assert_eq(a->rolled_back, b->rolled_back);
	cr_assert_eq(a->rows_scanned, b->rows_scanned);
	cr_assert_str_eq(a->lock_key, b->lock_key);
	for (int i = 0; i < a->nindexes; i++)
		cr_assert_eq(a->lock_leases[i], b->lock_leases[i], "lease of index %d", i);
	cr_assert_str_eq(a->last_error, b->last_error);

	cr_assert_eq(a->cp.has_flushed, b->cp.has_flushed);
	if (a->cp.has_flushed)
		cr_assert(memcmp(a->cp.flushed_key, b->cp.flushed_key, BF_RECORD_KEY_LEN) == 0);
	cr_assert_eq(a->cp.flushed_rows, b->cp.flushed_rows);
	cr_assert_eq(a->cp.has_imported, b->cp.has_imported);
	if (a->cp.has_imported)
		cr_assert(memcmp(a->cp.imported_key, b->cp.imported_key, BF_RECORD_KEY_LEN) == 0);
	cr_assert_eq(a->cp.imported_rows, b->cp.imported_rows);
	cr_assert_str_eq(a->cp.engine_id, b->cp.engine_id);
	cr_assert_eq(a->cp.first_gen, b->cp.first_gen);
	cr_assert_eq(a->cp.imports, b->cp.imports);

	cr_assert_eq(a->cfg.workers, b->cfg.workers);
	cr_assert_eq(a->cfg.mem_bytes, b->cfg.mem_bytes);
	cr_assert_eq(a->cfg.import_every, b->cfg.import_every);
	cr_assert_str_eq(a->cfg.sort_dir, b->cfg.sort_dir);
	cr_assert_str_eq(a->cfg.etcd, b->cfg.etcd);
	cr_assert_str_eq(a->cfg.lock_prefix, b->cfg.lock_prefix);
	cr_assert_eq(a->cfg.lock_ttl_s, b->cfg.lock_ttl_s);
	cr_assert_eq(a->cfg.lock_timeout_s, b->cfg.lock_timeout_s);
	cr_assert_eq(a->cfg.run_compression, b->cfg.run_compression);
	cr_assert_eq(a->cfg.target_compression, b->cfg.target_compression);
}
