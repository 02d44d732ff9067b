/*
 * bfill dump --store DIR --table T [--limit N]: decoded rows as TSV, for
 * people debugging a store. NULL prints as \N.
 */
#include "bfill/catalog.h"
#include "bfill/codec.h"
#include "bfill/store.h"
#include "bfill/table.h"
#include "cmd/cli.h"
#include "cmd/place.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The text of a column's value, as bfill load reads it back. */
static void print_datum(const bf_column *c, const bf_datum *d)
{
	char buf[128];

	switch (d->kind) {
	case BF_DATUM_NULL: fputs("\\N", stdout); break;
	case BF_DATUM_INT:
	case BF_DATUM_UINT:
	case BF_DATUM_FLOAT:
	case BF_DATUM_DECIMAL:
		bf_column_format_value(c, d, buf, sizeof(buf));
		fputs(buf, stdout);
		break;
	case BF_DATUM_BYTES:
		/* Tabs, newlines and backslashes are escaped so a row stays a line. */
		for (size_t i = 0; i < d->v.b.len; i++) {
			uint8_t ch = d->v.b.ptr[i];
			if (ch == '\t') fputs("\\t", stdout);
			else if (ch == '\n') fputs("\\n", stdout);
			else if (ch == '\\') fputs("\\\\", stdout);
			else if (ch < 0x20 || ch == 0x7f) printf("\\x%02x", ch);
			else putchar(ch);
		}
		break;
	}
}

int cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_WHERE_OPTS, { "table", required_argument, 0, 't' },
		{ "limit", required_argument, 0, 'l' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	cli_where where = { 0 };
	cli_place place = { 0 };
	const char *table = NULL;
	uint64_t limit = UINT64_MAX, printed = 0;
	bf_target_iter *it = NULL;
	bf_table t;
	bf_err err = { 0 };
	uint8_t lo[BF_RECORD_PREFIX_LEN], hi[BF_RECORD_PREFIX_LEN];
	bf_scan_opts so = { .readahead = 2 << 20 };
	int c, rc, code = BF_EXIT_OK;

	while ((c = cli_getopt(argc, argv, longopts)) != -1) {
		if (cli_where_opt(c, optarg, &where))
			continue;
		switch (c) {
		case 't': table = optarg; break;
		case 'l':
			if (!cli_u64("--limit", optarg, &limit))
				return BF_EXIT_USAGE;
			break;
		case 'h':
			puts("usage: bfill dump (--store DIR | --etcd EPS --cluster NAME) --table T [--limit N]");
			fputs(CLI_ETCD_SECURITY_HELP CLI_STORE_TLS_HELP, stdout);
			return BF_EXIT_OK;
		default: return BF_EXIT_USAGE;
		}
	}
	if (!table)
		return cli_fail(BF_EXIT_USAGE, "--table T is required");
	if (!cli_where_check(&where, false))
		return BF_EXIT_USAGE;
	rc = cli_place_open(&place, &where, BF_STORE_READONLY, true, 0, &err);
	if (rc == 0)
		rc = bf_catalog_get_table(place.env.catalog, table, &t, &err);
	if (rc) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	bf_codec_record_prefix(lo, t.id);
	bf_codec_record_prefix(hi, t.id);
	hi[BF_RECORD_PREFIX_LEN - 1]++; /* "_r" -> "_s": just past the records */
	rc = bf_target_scan(place.target, lo, sizeof(lo), hi, sizeof(hi), &so, &it, &err);
	if (rc) {
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
		goto out;
	}
	for (int i = 0; i < t.ncols; i++)
		printf("%s%s", i ? "\t" : "", t.cols[i].name);
	putchar('\n');
	/* Output that can't be written ends the walk; cli_finish reports it. */
	for (; printed < limit && bf_target_iter_valid(it) && !ferror(stdout);
	     bf_target_iter_next(it), printed++) {
		size_t klen, vlen;
		const uint8_t *k = bf_target_iter_key(it, &klen), *v = bf_target_iter_value(it, &vlen);
		int64_t handle;
		bf_row_view rv;
		rc = bf_codec_decode_record_key(k, klen, NULL, &handle);
		if (rc == 0)
			rc = bf_codec_row_view(&rv, v, vlen);
		for (int i = 0; rc == 0 && i < t.ncols; i++) {
			bf_datum d;
			rc = bf_table_decode_column(&t, i, &rv, handle, &d);
			if (rc)
				break;
			if (i)
				putchar('\t');
			print_datum(&t.cols[i], &d);
		}
		if (rc) {
			fflush(stdout);
			code = cli_fail(BF_EXIT_FAIL, "row #%" PRIu64 " of table '%s' is malformed: %s",
					printed + 1, table, bf_strerror(rc));
			goto out;
		}
		putchar('\n');
	}
	rc = bf_target_iter_status(it, &err);
	if (rc)
		code = cli_fail(BF_EXIT_FAIL, "%s", bf_err_text(&err));
out:
	bf_target_iter_destroy(it);
	cli_place_close(&place);
	return code;
}
