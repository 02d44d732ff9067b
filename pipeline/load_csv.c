/*
 * bf_load_csv: a CSV file into a table, through a loader (pipeline/load.c).
 * Every error names where it is: the line the record started on, the
 * field's position and the column it was meant for.
 */
#include "bfill/table.h"
#include "pipeline/load_impl.h"
#include "util/csv.h"

#include <inttypes.h>
#include <string.h>

typedef struct csv_load {
	const bf_table *t;
	csv_reader *r;
	const char *path;
	int nmap;
	int map[BF_MAX_COLUMNS];      /* field position -> column position */
	bool given[BF_MAX_COLUMNS];   /* a field fills the column */
	bf_datum vals[BF_MAX_COLUMNS];
	uint8_t scratch[BF_MAX_COLUMNS][BF_DECIMAL_BIN_MAX];
} csv_load;

/* The header: each field names a column, once; columns it leaves out are
 * loaded as NULL, so they must allow it. */
static int read_header(csv_load *cl, int n, char *const *f, bf_err *err)
{
	const bf_table *t = cl->t;

	if (n > t->ncols)
		return bf_errf(err, BF_EINVAL, "%s: line 1: %d header fields for a table of %d"
			       " columns", cl->path, n, t->ncols);
	for (int i = 0; i < n; i++) {
		int pos = bf_table_column(t, f[i]);
		if (pos < 0)
			return bf_errf(err, BF_EINVAL, "%s: line 1, column %d: '%s' is not a column of"
				       " table '%s'", cl->path, i + 1, f[i], t->name);
		if (cl->given[pos])
			return bf_errf(err, BF_EINVAL, "%s: line 1, column %d: column '%s' appears"
				       " twice", cl->path, i + 1, t->cols[pos].name);
		cl->given[pos] = true;
		cl->map[i] = pos;
	}
	cl->nmap = n;
	for (int c = 0; c < t->ncols; c++)
		if (!cl->given[c] && (t->cols[c].not_null || c == t->handle_col))
			return bf_errf(err, BF_EINVAL, "%s: line 1: the header leaves out column '%s',"
				       " which cannot be NULL", cl->path, t->cols[c].name);
	return 0;
}

/* One record into cl->vals; \N or an empty unquoted field is NULL. */
static int read_record(csv_load *cl, int n, char *const *f, const size_t *lens,
		       const bool *quoted, bf_err *err)
{
	uint64_t line = csv_line(cl->r);
	int rc;

	if (n != cl->nmap)
		return bf_errf(err, BF_EINVAL, "%s: line %" PRIu64 ": %d fields, expected %d",
			       cl->path, line, n, cl->nmap);
	for (int c = 0; c < cl->t->ncols; c++)
		cl->vals[c] = bf_datum_null();
	for (int i = 0; i < n; i++) {
		const bf_column *col = &cl->t->cols[cl->map[i]];
		bool null = !quoted[i] && (lens[i] == 0 || (lens[i] == 2 && !memcmp(f[i], "\\N", 2)));
		if (null && col->not_null)
			return bf_errf(err, BF_EINVAL, "%s: line %" PRIu64 ", column %d (%s): NULL in a"
				       " NOT NULL column", cl->path, line, i + 1, col->name);
		if (null)
			continue;
		rc = bf_column_parse_value(col, f[i], lens[i], &cl->vals[cl->map[i]],
					   cl->scratch[cl->map[i]], err);
		if (rc)
			return bf_err_prefix(err, rc, "%s: line %" PRIu64 ", column %d (%s)", cl->path,
					     line, i + 1, col->name);
	}
	return 0;
}

int bf_load_csv(const bf_gen_place *pl, const char *table, const char *path,
		const bf_csv_opts *csv, const bf_load_opts *o, bf_gen_stats *stats, bf_err *err)
{
	csv_load cl = { .path = path && strcmp(path, "-") ? path : "standard input" };
	bf_loader *ld = NULL;
	char *const *f;
	const size_t *lens;
	const bool *quoted;
	int n, rc;

	memset(stats, 0, sizeof(*stats));
	if ((rc = bf_loader_open(pl, table, o, &ld, err)))
		return rc;
	cl.t = bf_loader_table(ld);
	if ((rc = csv_open(path, &cl.r, err)))
		goto out;
	cl.nmap = cl.t->ncols;
	for (int c = 0; c < cl.t->ncols; c++)
		cl.map[c] = c;
	if (csv && csv->header) {
		rc = csv_next(cl.r, &n, &f, &lens, &quoted, err);
		if (rc == 0)
			rc = bf_errf(err, BF_EINVAL, "%s: no header line", cl.path);
		if (rc < 0 || (rc = read_header(&cl, n, f, err)))
			goto out;
	}
	while ((rc = csv_next(cl.r, &n, &f, &lens, &quoted, err)) == 1) {
		if ((rc = read_record(&cl, n, f, lens, quoted, err)))
			goto out;
		rc = loader_add_checked(ld, cl.vals, err);
		if (rc) {
			bf_err_prefix(err, rc, "%s: line %" PRIu64, cl.path, csv_line(cl.r));
			goto out;
		}
	}
	if (rc < 0) {
		bf_err_prefix(err, rc, "%s", cl.path);
		goto out;
	}
	rc = bf_loader_finish(ld, stats, err);
out:
	csv_close(cl.r);
	bf_loader_destroy(ld);
	return rc;
}
