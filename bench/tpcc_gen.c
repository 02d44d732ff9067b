/*
 * bfill-tpccgen W [SEED]: TPC-C's customer table for W warehouses (30,000
 * rows each) as CSV on standard output, for bench/tpcc_customer.sh. Values
 * follow the TPC-C specification's population rules (clause 4.3.3.1):
 * C_LAST from the ten syllables (C_ID 1..1000 in order, the rest through
 * NURand(255, 0, 999)), random a-strings and n-strings of the stated
 * lengths, 10% bad credit, a discount in [0, 0.5]. Deterministic for a seed.
 * Columns: c_id, c_d_id, c_w_id, c_first, c_middle, c_last, c_street_1,
 * c_street_2, c_city, c_state, c_zip, c_phone, c_since, c_credit,
 * c_credit_lim, c_discount, c_balance, c_ytd_payment, c_payment_cnt,
 * c_delivery_cnt, c_data. No field needs quoting.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static uint64_t next(void)
{
	/* splitmix64: fast, and the same sequence on every machine. */
	uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static long uniform(long lo, long hi) { return lo + (long)(next() % (uint64_t)(hi - lo + 1)); }

static long nurand(long a, long x, long y, long c)
{
	return (((uniform(0, a) | uniform(x, y)) + c) % (y - x + 1)) + x;
}

static char *astring(char *p, int lo, int hi)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	for (long n = uniform(lo, hi); n > 0; n--)
		*p++ = alnum[next() % (sizeof(alnum) - 1)];
	return p;
}

static char *nstring(char *p, int n)
{
	while (n-- > 0)
		*p++ = (char)('0' + next() % 10);
	return p;
}

static char *last_name(char *p, long num)
{
	static const char *const syl[] = { "BAR", "OUGHT", "ABLE", "PRI", "PRES",
					   "ESE", "ANTI", "CALLY", "ATION", "EING" };
	const char *parts[3] = { syl[num / 100], syl[num / 10 % 10], syl[num % 10] };
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(parts[i]);
		memcpy(p, parts[i], n);
		p += n;
	}
	return p;
}

int main(int argc, char **argv)
{
	long warehouses = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	char row[1024], *p;
	/* The run-time constant C of NURand for C_LAST, fixed for the load. */
	const long c_last = 157;

	if (warehouses < 1 || argc > 3) {
		fprintf(stderr, "usage: bfill-tpccgen WAREHOUSES [SEED]\n");
		return 2;
	}
	state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	for (long w = 1; w <= warehouses; w++) {
		for (long d = 1; d <= 10; d++) {
			for (long c = 1; c <= 3000; c++) {
				p = row + sprintf(row, "%ld,%ld,%ld,", c, d, w);
				p = astring(p, 8, 16);
				p = stpcpy(p, ",OE,");
				p = last_name(p, c <= 1000 ? c - 1 : nurand(255, 0, 999, c_last));
				*p++ = ',';
				p = astring(p, 10, 20);
				*p++ = ',';
				p = astring(p, 10, 20);
				*p++ = ',';
				p = astring(p, 10, 20);
				*p++ = ',';
				p = astring(p, 2, 2);
				*p++ = ',';
				p = nstring(p, 4);
				p = stpcpy(p, "11111,");
				p = nstring(p, 16);
				p += sprintf(p, ",2026-12-01 12:00:00,%s,50000.00,0.%04ld,-10.00,10.00,1,0,",
					     uniform(1, 10) == 1 ? "BC" : "GC", uniform(0, 5000));
				p = astring(p, 300, 500);
				*p++ = '\n';
				if (fwrite(row, 1, (size_t)(p - row), stdout) != (size_t)(p - row))
					return 1;
			}
		}
	}
	return fflush(stdout) ? 1 : 0;
}
