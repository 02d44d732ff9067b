/*
 * In-process add-index tests' world: a scratch store and sort dir, option
 * defaults, and builds asserted to succeed or to fail (see world.h).
 */
#include "tests/support/world.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/fault.h"
#include "tests/support/support.h"
#include "tests/support/table.h"

void world_open(world *w)
{
	bf_fault_reset();
	char *dir = t_scratch_new("pipe");
	w->store_dir = t_path_in(dir, "store");
	w->sort_dir = t_path_in(dir, "sort");
	w->check_dir = t_path_in(dir, "check");
	w->st = t_table_open_store(w->store_dir);
}

void world_close(world *w)
{
	bf_store_close(w->st);
	free(w->store_dir);
	free(w->sort_dir);
	free(w->check_dir);
	memset(w, 0, sizeof(*w));
}

bf_add_index_opts opts_for(const world *w, const char *table)
{
	bf_add_index_opts o = {
		.table = table, .workers = 2, .mem = 96ULL << 20, .sort_dir = w->sort_dir,
		.run_compression = -1, .target_compression = -1,
	};
	return o;
}

void add_spec(bf_add_index_opts *o, const char *name, const char *columns, bool unique)
{
	cr_assert_lt(o->nspecs, BF_MAX_JOB_INDEXES);
	o->specs[o->nspecs].name = name;
	o->specs[o->nspecs].columns = columns;
	o->specs[o->nspecs].unique = unique;
	o->nspecs++;
}

/* Builds and asserts success: job done, every index public, nothing left
 * in the sort dir. */
void build_ok(const world *w, const bf_add_index_opts *o, bf_add_index_result *res)
{
	bf_err err = { 0 };
	int rc = bf_add_index(w->st, o, res, &err);
	cr_assert_eq(rc, 0, "bf_add_index: %s (%s)", bf_err_text(&err), bf_strerror(rc));
	cr_assert_eq(res->job.state, BF_JOB_DONE, "job state %s", bf_job_state_name(res->job.state));
	cr_assert_str_eq(res->job.last_error, "");
	cr_assert_eq(res->job.pid, 0, "a finished job names no process");
	cr_assert_gt(res->job.end_ms, 0);

	bf_table t;
	t_table_get(w->st, o->table ? o->table : res->job.table, &t);
	for (int i = 0; i < res->job.nindexes; i++) {
		int pos = bf_table_index_by_id(&t, res->job.index_ids[i]);
		cr_assert_geq(pos, 0, "index %s is in the table", res->job.index_names[i]);
		cr_assert_eq(t.indexes[pos].state, BF_INDEX_PUBLIC, "index %s is %s",
			     t.indexes[pos].name, bf_index_state_name(t.indexes[pos].state));
		cr_assert_eq(t.indexes[pos].job_id, 0, "a public index names no job");
	}
	bf_job rec;
	cr_assert_eq(bf_catalog_get_job(bf_store_catalog(w->st), res->job.id, &rec, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(rec.state, BF_JOB_DONE, "job record says %s", bf_job_state_name(rec.state));
	cr_assert_not(t_path_exists(w->sort_dir), "sort dir %s is removed when the job ends", w->sort_dir);
}

/* Builds and asserts failure with code want; returns the job. */
bf_job build_fails(const world *w, const bf_add_index_opts *o, int want, bf_err *err,
			  bf_add_index_result *res)
{
	bf_err_clear(err);
	int rc = bf_add_index(w->st, o, res, err);
	cr_assert_eq(rc, want, "bf_add_index returned %d (%s: %s), want %d (%s)", rc, bf_strerror(rc),
		     bf_err_text(err), want, bf_strerror(want));
	cr_assert_eq(err->code, want, "the error buffer carries the code");
	cr_assert_neq(err->msg[0], '\0', "the error buffer explains the failure");
	cr_assert_null(strchr(err->msg, '\n'), "one line: %s", err->msg);
	return res->job;
}

static int count_jobs_fn(const bf_job *job, void *arg)
{
	(void)job;
	(*(int *)arg)++;
	return 0;
}

int count_jobs(bf_store *st)
{
	int n = 0;
	bf_err err = { 0 };
	cr_assert_eq(bf_catalog_foreach_job(bf_store_catalog(st), count_jobs_fn, NULL, &n, &err), 0, "%s", bf_err_text(&err));
	return n;
}

