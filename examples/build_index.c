/*
 * build_index: a table of your own, from schema to checked indexes.
 *
 *   build_index [SCRATCH_DIR [ROWS]]
 *
 * 1. Opens (creates) a store: a RocksDB directory of TiDB-encoded keys.
 * 2. Creates table `accounts` from SQL column definitions
 *    (bf_table_create, include/bfill/table.h).
 * 3. Loads ROWS (default 20000) rows made by this program through a loader
 *    (bf_loader_open / bf_loader_add / bf_loader_finish): rows may come in
 *    any order; they are sorted and ingested in one atomic step.
 * 4. Builds three indexes in one job (bf_add_index, include/bfill/job.h):
 *    on user_id, a unique one on email, and one on (created, score).
 * 5. Checks each against the rows (bf_check_index, include/bfill/check.h)
 *    and prints the job's figures (bf_add_index_result).
 *
 * Everything lives in a fresh directory made under SCRATCH_DIR (default
 * $TMPDIR, else /tmp) and removed at the end. Exit status 0 on success, 1
 * with one line on stderr on any failure (2: bad usage).
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw: scratch.h */

#include <bfill/catalog.h>
#include <bfill/check.h>
#include <bfill/codec.h>
#include <bfill/error.h>
#include <bfill/gen.h>
#include <bfill/job.h>
#include <bfill/store.h>
#include <bfill/table.h>
#include <bfill/target.h>

#include <inttypes.h>
#include <stdio.h>

#include "scratch.h"

#define TABLE "accounts"

/* Column positions, in the schema's order: a row is an array of datums
 * indexed this way. */
enum { COL_ID, COL_USER_ID, COL_EMAIL, COL_SCORE, COL_CREATED, COL_BALANCE, NCOLS };

static const char *const schema =
	"id BIGINT PRIMARY KEY, "        /* the handle: rows are keyed by it */
	"user_id INT NOT NULL, "
	"email VARCHAR(64) NOT NULL, "
	"score DOUBLE, "                  /* nullable */
	"created DATETIME, "
	"balance DECIMAL(12,2)";

static const bf_index_spec indexes[] = {
	{ .name = "idx_user", .columns = "user_id" },
	{ .name = "uk_email", .columns = "email", .unique = true },
	{ .name = "idx_created_score", .columns = "created,score" },
};
#define NINDEXES (int)(sizeof(indexes) / sizeof(indexes[0]))

static int fail(const char *what, const bf_err *err)
{
	fprintf(stderr, "build_index: %s: %s\n", what, bf_err_text(err));
	return 1;
}

/*
 * Row `id` as datums. Strings and decimals point into the caller's
 * buffers (datums own nothing), which must live until bf_loader_add has
 * copied the row. DATETIME is TiDB's packed integer, DECIMAL MySQL's
 * binary form; both are made from their text here.
 */
static int make_row(int64_t id, bf_datum row[NCOLS], char email[64],
		    uint8_t balance[BF_DECIMAL_BIN_MAX], bf_err *err)
{
	char text[32];
	uint64_t created;
	int n, rc;

	row[COL_ID] = bf_datum_int(id);
	row[COL_USER_ID] = bf_datum_int(id * 37 % 1000 + 1); /* ~id/1000 rows each */
	n = snprintf(email, 64, "user%" PRId64 "@example.org", id);
	row[COL_EMAIL] = bf_datum_bytes(email, (size_t)n);
	row[COL_SCORE] = id % 10 == 0 ? bf_datum_null() : bf_datum_float((double)(id % 997) / 10);

	n = snprintf(text, sizeof(text), "2024-%02d-%02d %02d:%02d:00", (int)(id % 12) + 1,
		     (int)(id % 28) + 1, (int)(id % 24), (int)(id % 60));
	rc = bf_datetime_parse(text, (size_t)n, 0, &created);
	if (rc)
		return bf_errf(err, rc, "row %" PRId64 ": bad datetime %s", id, text);
	row[COL_CREATED] = bf_datum_uint(created);

	n = snprintf(text, sizeof(text), "%" PRId64 ".%02d", id * 13 % 100000, (int)(id % 100));
	rc = bf_decimal_parse(text, (size_t)n, 12, 2, balance);
	if (rc)
		return bf_errf(err, rc, "row %" PRId64 ": bad decimal %s", id, text);
	row[COL_BALANCE] = bf_datum_decimal(balance, bf_decimal_bin_len(12, 2), 12, 2);
	return 0;
}

/* Loads rows 1..rows, in descending order to show that the loader sorts. */
static int load_rows(bf_store *st, uint64_t rows, bf_gen_stats *stats, bf_err *err)
{
	bf_target *target = NULL;
	bf_loader *ld = NULL;
	bf_gen_place place;
	int rc;

	/*
	 * Where a load goes: the catalog, the target that takes the sorted
	 * files, a directory for scratch files, a free-space check. For a
	 * local store bf_gen_place_store fills it in (bf_loader_open_store
	 * does this and the target in one call); for a cluster, or a target
	 * of your own, fill in the struct yourself.
	 */
	rc = bf_target_local_create(st, &target, err);
	if (rc)
		goto out;
	bf_gen_place_store(st, target, &place);
	rc = bf_loader_open(&place, TABLE, &(bf_load_opts){ .mem_bytes = 32ULL << 20 }, &ld, err);
	if (rc)
		goto out;
	if (bf_loader_table(ld)->ncols != NCOLS) {
		rc = bf_errf(err, BF_EINVAL, "table %s has %d columns, not %d", TABLE,
			     bf_loader_table(ld)->ncols, NCOLS);
		goto out;
	}
	for (uint64_t id = rows; id >= 1; id--) {
		bf_datum row[NCOLS];
		char email[64];
		uint8_t balance[BF_DECIMAL_BIN_MAX];

		rc = make_row((int64_t)id, row, email, balance, err);
		if (rc == 0)
			rc = bf_loader_add(ld, row, NCOLS, err); /* copies the row */
		if (rc)
			goto out;
	}
	/* Nothing is visible until this returns 0: then every row is. */
	rc = bf_loader_finish(ld, stats, err);
out:
	bf_loader_destroy(ld);
	bf_target_destroy(target);
	return rc;
}

int main(int argc, char **argv)
{
	char scratch[PATH_MAX], store_dir[PATH_MAX], check_dir[PATH_MAX];
	uint64_t rows = 20000;
	bf_store *st = NULL;
	bf_table table;
	bf_gen_stats load;
	bf_add_index_opts o = {
		.table = TABLE,
		.workers = 2,
		.mem = 64ULL << 20,     /* the sort budget of the whole job */
		.run_compression = -1,  /* defaults */
		.target_compression = -1,
		/* Everything else zero: a new job, the in-process import lock,
		 * sort files in "<store>.sort", one import at the end. */
	};
	bf_add_index_result res;
	bf_err err = { 0 };
	int status = 1;

	if (argc > 3 || (argc == 3 && (sscanf(argv[2], "%" SCNu64, &rows) != 1 || rows == 0 ||
				       rows > INT32_MAX))) {
		fprintf(stderr, "usage: build_index [SCRATCH_DIR [ROWS]]\n");
		return 2;
	}
	if (!scratch_make("build_index", argc > 1 ? argv[1] : NULL, "bfill-build", scratch))
		return 1;
	if (!scratch_path(store_dir, scratch, "store") ||
	    !scratch_path(check_dir, scratch, "check")) {
		fprintf(stderr, "build_index: path too long under %s\n", scratch);
		goto out;
	}

	if (bf_store_open(store_dir, BF_STORE_CREATE, &st, &err)) {
		status = fail(store_dir, &err);
		goto out;
	}
	if (bf_table_create(st, TABLE, schema, &table, &err)) {
		status = fail("creating the table", &err);
		goto out;
	}
	if (load_rows(st, rows, &load, &err)) {
		status = fail("loading rows", &err);
		goto out;
	}
	printf("build_index: table %s (id %" PRId64 ", %d columns): %" PRIu64 " rows loaded in "
	       "%.2f s (%" PRIu64 " bytes, %" PRIu64 " files)\n", TABLE, table.id, table.ncols,
	       load.rows, load.seconds, load.bytes, load.files);

	/* One job builds every index from one scan of the table. */
	for (int i = 0; i < NINDEXES; i++)
		o.specs[o.nspecs++] = indexes[i];
	if (bf_add_index(st, &o, &res, &err)) {
		/* The job record keeps the reason too: res.job.last_error. */
		status = fail("add-index", &err);
		goto out;
	}
	printf("build_index: job %" PRId64 " %s: %" PRIu64 " rows scanned, %" PRIu64 " index keys "
	       "(%" PRIu64 " bytes) in %.2f s (scan %.2f s, import %.2f s); %" PRIu64 " runs, %"
	       PRIu64 " imports, %" PRIu64 " SST files, peak sort dir %" PRIu64 " bytes\n",
	       res.job.id, bf_job_state_name(res.job.state), res.rows, res.index_keys,
	       res.index_bytes, res.seconds, res.scan_seconds, res.import_seconds,
	       res.backend.runs, res.backend.imports, res.backend.sst_files, res.peak_sort_bytes);

	/* Each index recomputed from the rows and compared, entry by entry. */
	for (int i = 0; i < NINDEXES; i++) {
		bf_check_result check;

		if (bf_check_index(st, NULL, TABLE, indexes[i].name, check_dir, 64ULL << 20, &check,
				   &err)) {
			status = fail(indexes[i].name, &err);
			goto out;
		}
		printf("build_index: check %s (%s): %" PRIu64 " rows, %" PRIu64 " expected, %" PRIu64
		       " found: %s\n", indexes[i].name, check.index_state, check.rows,
		       check.expected, check.found,
		       check.missing || check.extra || check.wrong_value ? "MISMATCH" : "OK");
		if (check.missing || check.extra || check.wrong_value) {
			fprintf(stderr, "build_index: index %s: %" PRIu64 " missing, %" PRIu64
				" extra, %" PRIu64 " wrong value%s%s\n", indexes[i].name,
				check.missing, check.extra, check.wrong_value,
				check.nexamples ? "; first: " : "",
				check.nexamples ? check.examples[0] : "");
			goto out;
		}
	}
	status = 0;
out:
	bf_store_close(st);
	/* The store and its sort directory ("<store>.sort"). */
	if (!scratch_remove("build_index", scratch))
		status = 1;
	return status;
}
