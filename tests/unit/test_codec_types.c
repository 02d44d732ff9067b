/*
 * codec: DOUBLE, DECIMAL and DATETIME. Golden vectors (MySQL's documented
 * decimal example and others worked out by hand from the format), round
 * trips, memcmp order against numeric order over random values, rounding,
 * every documented error, and damaged bytes that must be refused without a
 * read past the input (each damaged input sits in an exactly sized heap
 * buffer, so ASan sees any over-read).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfill/codec.h"
#include "bfill/error.h"
#include "tests/support/support.h"

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void expect_bytes(const uint8_t *got, size_t gotlen, const char *hex)
{
	uint8_t want[512];
	size_t n = unhex(hex, want);
	cr_assert_eq(gotlen, n, "length %zu, want %zu (%s)", gotlen, n, hex);
	cr_assert(memcmp(got, want, n) == 0, "bytes differ from %s", hex);
}

/* A heap copy of exactly n bytes (1 when n is 0), for over-read checks. */
static uint8_t *exact_copy(const uint8_t *src, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	if (n)
		memcpy(p, src, n);
	return p;
}

static uint64_t rng = 0x5eed1234abcdULL;
static uint64_t next_rand(void) { return t_xorshift64(&rng); }

static int sign_of(int c) { return (c > 0) - (c < 0); }

/* ---- DOUBLE ---- */

Test(codec_types, float_golden)
{
	static const struct {
		double v;
		const char *hex;
	} cases[] = {
		{ 0.0, "8000000000000000" },	{ 1.0, "bff0000000000000" },
		{ -1.0, "400fffffffffffff" },	{ 1.5, "bff8000000000000" },
		{ -2.5, "3ffbffffffffffff" },	{ 5e-324, "8000000000000001" },
		{ INFINITY, "fff0000000000000" }, { -INFINITY, "000fffffffffffff" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t b[8];
		double back;
		bf_codec_put_float(b, cases[i].v);
		expect_bytes(b, 8, cases[i].hex);
		cr_assert_eq(bf_codec_get_float(b), cases[i].v);
		cr_assert_eq(bf_codec_decode_float(b, &back), 0);
		cr_assert_eq(back, cases[i].v);
	}
	/* -0.0 is stored as 0.0 and reads back as 0.0. */
	uint8_t b[8];
	double back;
	bf_codec_put_float(b, -0.0);
	expect_bytes(b, 8, "8000000000000000");
	cr_assert_eq(bf_codec_decode_float(b, &back), 0);
	cr_assert(back == 0.0 && !signbit(back));
}

Test(codec_types, float_decode_refuses_nan_and_other_forms)
{
	uint8_t b[8];
	double v = 1.0;
	const char *bad[] = {
		"fff8000000000000", /* a NaN with the positive marker */
		"0007ffffffffffff", /* a NaN through the negative path */
		"7fffffffffffffff", /* -0.0's pattern: put_float never writes it */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unhex(bad[i], b);
		cr_assert_eq(bf_codec_decode_float(b, &v), BF_ECORRUPT, "%s", bad[i]);
	}
	cr_assert_eq(v, 1.0, "output untouched on error");
	/* NaN encodes to something that does not decode to a NaN: TiDB
	 * stores none, and bfill's decoder refuses what could be one. */
	bf_codec_put_float(b, NAN);
	cr_assert(bf_codec_decode_float(b, &v) != 0 || !isnan(v));
}

static double random_double(void)
{
	for (;;) {
		uint64_t u = next_rand();
		double v;
		switch (next_rand() % 4) {
		case 0: u &= 0x800FFFFFFFFFFFFFULL; break;                 /* subnormals */
		case 1: u = (u & 0x8000000000000000ULL) | 0x3FF0000000000000ULL |
			    (u & 0xFULL); break;                           /* near +-1 */
		default: break;
		}
		memcpy(&v, &u, 8);
		if (!isnan(v))
			return v;
	}
}

Test(codec_types, float_order_and_round_trip_random)
{
	for (int iter = 0; iter < 50000; iter++) {
		double a = random_double(), b = iter % 5 == 0 ? -a : random_double();
		if (iter % 7 == 0)
			b = nextafter(a, iter % 2 ? INFINITY : -INFINITY);
		uint8_t ea[8], eb[8];
		bf_codec_put_float(ea, a);
		bf_codec_put_float(eb, b);
		int want = a < b ? -1 : a > b ? 1 : 0;
		cr_assert_eq(sign_of(memcmp(ea, eb, 8)), want, "%a vs %a", a, b);
		double back;
		cr_assert_eq(bf_codec_decode_float(ea, &back), 0);
		cr_assert(back == a, "%a came back as %a", a, back);
	}
}

/* ---- DECIMAL ---- */

Test(codec_types, decimal_bin_len)
{
	static const int ok[][3] = {
		{ 1, 0, 1 },  { 1, 1, 1 },   { 2, 2, 1 },	  { 4, 2, 2 },	 { 9, 0, 4 },
		{ 10, 0, 5 }, { 14, 4, 7 },  { 18, 9, 8 },	  { 20, 10, 10 }, { 30, 30, 14 },
		{ 65, 0, 29 }, { 65, 30, 30 }, { 64, 30, 30 }, { 65, 4, 30 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert_eq(bf_decimal_bin_len(ok[i][0], ok[i][1]), (size_t)ok[i][2],
			     "DECIMAL(%d,%d)", ok[i][0], ok[i][1]);
	static const int bad[][2] = { { 0, 0 }, { 66, 0 }, { -1, 0 }, { 5, 6 }, { 5, -1 }, { 40, 31 } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(bf_decimal_bin_len(bad[i][0], bad[i][1]), 0);
	size_t max = 0;
	for (int p = 1; p <= BF_DECIMAL_MAX_PREC; p++)
		for (int f = 0; f <= p && f <= BF_DECIMAL_MAX_FRAC; f++)
			if (bf_decimal_bin_len(p, f) > max)
				max = bf_decimal_bin_len(p, f);
	cr_assert_leq(max, BF_DECIMAL_BIN_MAX);
}

typedef struct dec_case {
	const char *in;
	int prec, frac;
	const char *hex;  /* the binary form */
	const char *text; /* bf_decimal_format of it */
} dec_case;

static void check_decimal(const dec_case *c)
{
	uint8_t bin[BF_DECIMAL_BIN_MAX];
	char text[BF_DECIMAL_TEXT_MAX];
	size_t len = bf_decimal_bin_len(c->prec, c->frac);
	int rc = bf_decimal_parse(c->in, strlen(c->in), c->prec, c->frac, bin);
	cr_assert_eq(rc, 0, "parse \"%s\" as DECIMAL(%d,%d): %d", c->in, c->prec, c->frac, rc);
	expect_bytes(bin, len, c->hex);
	cr_assert_eq(bf_decimal_check(bin, len, c->prec, c->frac), 0);
	cr_assert_eq(bf_decimal_format(bin, len, c->prec, c->frac, text, sizeof(text)), 0);
	cr_assert_str_eq(text, c->text, "\"%s\" as DECIMAL(%d,%d)", c->in, c->prec, c->frac);
}

Test(codec_types, decimal_golden)
{
	static const dec_case cases[] = {
		/* MySQL's documented example and its negative. */
		{ "1234567890.1234", 14, 4, "810dfb38d204d2", "1234567890.1234" },
		{ "-1234567890.1234", 14, 4, "7ef204c72dfb2d", "-1234567890.1234" },
		/* One leftover byte per side: 10 | 55, inverted and flipped. */
		{ "-10.55", 4, 2, "75c8", "-10.55" },
		{ "0", 1, 0, "80", "0" },
		{ "0", 10, 2, "8000000000", "0.00" },
		{ "1", 1, 0, "81", "1" },
		{ "-1", 1, 0, "7e", "-1" },
		{ "9", 1, 0, "89", "9" },
		{ "12345", 5, 0, "803039", "12345" },
		{ "12345", 10, 3, "800030390000", "12345.000" },
		{ "123.45", 10, 3, "8000007b01c2", "123.450" },
		{ "-123.45", 20, 10, "7fffffff84e52d8b7fff", "-123.4500000000" },
		{ "0.0123456789012345678912345", 30, 25, "80000000bc614e35b7bf870087fdd9",
		  "0.0123456789012345678912345" },
		{ "1234500009876.5", 30, 5, "80000000000004d21dcd8b9400c350", "1234500009876.50000" },
		{ "000000000.01", 7, 3, "8000000a", "0.010" },
		{ "0.1", 1, 1, "81", "0.1" },
		{ ".5", 2, 1, "8005", "0.5" },
		{ "-0.5", 2, 1, "7ffa", "-0.5" },
		{ "+1.5", 2, 1, "8105", "1.5" },
		{ "-1.5", 2, 1, "7efa", "-1.5" },
		{ "999999999", 9, 0, "bb9ac9ff", "999999999" },
		{ "1", 10, 0, "8000000001", "1" },
		{ "7.", 3, 0, "8007", "7" },
		{ "99999999999999999999999999999999999.999999999999999999999999999999", 65, 30,
		  "85f5e0ff3b9ac9ff3b9ac9ff3b9ac9ff3b9ac9ff3b9ac9ff3b9ac9ff03e7",
		  "99999999999999999999999999999999999.999999999999999999999999999999" },
		{ "-99999999999999999999999999999999999.999999999999999999999999999999", 65, 30,
		  "7a0a1f00c4653600c4653600c4653600c4653600c4653600c4653600fc18",
		  "-99999999999999999999999999999999999.999999999999999999999999999999" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_decimal(&cases[i]);
}

Test(codec_types, decimal_rounding)
{
	static const dec_case cases[] = {
		/* Half away from zero on the first dropped digit. */
		{ "1.25", 3, 1, "8103", "1.3" },
		{ "-1.25", 3, 1, "7efc", "-1.3" },
		{ "1.2499999", 3, 1, "8102", "1.2" },
		{ "12.5", 10, 0, "800000000d", "13" },
		{ "-12.5", 10, 0, "7ffffffff2", "-13" },
		{ "0.995", 3, 2, "8100", "1.00" },
		{ "99.995", 5, 2, "806400", "100.00" },
		/* Carry through a whole group: 999999999.5 becomes 10^9. */
		{ "999999999.5", 10, 0, "8100000000", "1000000000" },
		/* A negative that rounds to zero is stored as zero. */
		{ "-0.001", 5, 2, "800000", "0.00" },
		{ "-0.004999", 3, 2, "8000", "0.00" },
		{ "-0", 1, 0, "80", "0" },
		{ "-0.000", 4, 2, "8000", "0.00" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_decimal(&cases[i]);

	uint8_t bin[BF_DECIMAL_BIN_MAX];
	/* Rounding that needs a digit the type does not have. */
	cr_assert_eq(bf_decimal_parse("9.995", 5, 3, 2, bin), BF_ERANGE);
	cr_assert_eq(bf_decimal_parse("-99.995", 7, 4, 2, bin), BF_ERANGE);
	cr_assert_eq(bf_decimal_parse("0.95", 4, 1, 1, bin), BF_ERANGE);
}

Test(codec_types, decimal_parse_errors)
{
	uint8_t bin[BF_DECIMAL_BIN_MAX];
	const char *not_numbers[] = { "",   "-",   "+",	  ".",	 "-.",	"1e3",	" 1", "1 ",
				      "1.2.3", "abc", "--1", "0x10", "1,5", "+-1", "1-", "\xd9\xa1" };
	for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++)
		cr_assert_eq(bf_decimal_parse(not_numbers[i], strlen(not_numbers[i]), 10, 2, bin),
			     BF_EINVAL, "\"%s\"", not_numbers[i]);
	/* Only n bytes are read: a valid number followed by junk past n. */
	cr_assert_eq(bf_decimal_parse("12x", 2, 10, 2, bin), 0);
	/* Bad types. */
	cr_assert_eq(bf_decimal_parse("1", 1, 0, 0, bin), BF_EINVAL);
	cr_assert_eq(bf_decimal_parse("1", 1, 66, 0, bin), BF_EINVAL);
	cr_assert_eq(bf_decimal_parse("1", 1, 5, 6, bin), BF_EINVAL);
	cr_assert_eq(bf_decimal_parse("1", 1, 40, 31, bin), BF_EINVAL);
	cr_assert_eq(bf_decimal_parse("1", 1, 5, -1, bin), BF_EINVAL);
	/* Too many integer digits; leading zeros do not count. */
	cr_assert_eq(bf_decimal_parse("123", 3, 2, 0, bin), BF_ERANGE);
	cr_assert_eq(bf_decimal_parse("-123", 4, 4, 2, bin), BF_ERANGE);
	cr_assert_eq(bf_decimal_parse("1.5", 3, 2, 2, bin), BF_ERANGE);
	cr_assert_eq(bf_decimal_parse("000123", 6, 3, 0, bin), 0);
	expect_bytes(bin, 2, "807b");
	/* A long input is fine when its value fits. */
	char longnum[400];
	memset(longnum, '0', sizeof(longnum));
	longnum[200] = '.';
	longnum[399] = '7';
	cr_assert_eq(bf_decimal_parse(longnum, sizeof(longnum), 3, 2, bin), 0);
	expect_bytes(bin, 2, "8000");
}

Test(codec_types, decimal_format_errors)
{
	uint8_t bin[BF_DECIMAL_BIN_MAX];
	char out[BF_DECIMAL_TEXT_MAX];
	size_t len;

	/* The longest text fits BF_DECIMAL_TEXT_MAX exactly. */
	const char *big = "-99999999999999999999999999999999999.999999999999999999999999999999";
	cr_assert_eq(bf_decimal_parse(big, strlen(big), 65, 30, bin), 0);
	len = bf_decimal_bin_len(65, 30);
	cr_assert_eq(strlen(big) + 1, (size_t)BF_DECIMAL_TEXT_MAX);
	cr_assert_eq(bf_decimal_format(bin, len, 65, 30, out, sizeof(out)), 0);
	cr_assert_str_eq(out, big);
	cr_assert_eq(bf_decimal_format(bin, len, 65, 30, out, sizeof(out) - 1), BF_ERANGE);

	/* Every too-small buffer is refused; the exact size works. */
	cr_assert_eq(bf_decimal_parse("-0.5", 4, 2, 2, bin), 0);
	for (size_t n = 0; n < 6; n++)
		cr_assert_eq(bf_decimal_format(bin, 1, 2, 2, out, n), BF_ERANGE, "n %zu", n);
	cr_assert_eq(bf_decimal_format(bin, 1, 2, 2, out, 6), 0);
	cr_assert_str_eq(out, "-0.50");

	/* Wrong length or type for the bytes. */
	cr_assert_eq(bf_decimal_format(bin, 2, 2, 2, out, sizeof(out)), BF_ECORRUPT);
	cr_assert_eq(bf_decimal_format(bin, 0, 2, 2, out, sizeof(out)), BF_ECORRUPT);
	cr_assert_eq(bf_decimal_format(bin, 1, 0, 0, out, sizeof(out)), BF_ECORRUPT);
	cr_assert_eq(bf_decimal_format(bin, 1, 2, 3, out, sizeof(out)), BF_ECORRUPT);
}

/* Bytes no encoder writes: each must fail bf_decimal_check and format. */
Test(codec_types, decimal_check_refuses_invalid_bins)
{
	static const struct {
		const char *hex;
		int prec, frac;
	} bad[] = {
		{ "bb9aca00", 9, 0 },	    /* a whole group of 10^9 */
		{ "ffffffff", 9, 0 },	    /* the largest group bytes */
		{ "8a", 1, 0 },		    /* 10 in a one-digit leftover */
		{ "e4", 2, 0 },		    /* 100 in a two-digit leftover */
		{ "75", 1, 0 },		    /* -10 in a one-digit leftover */
		{ "810dfb38d22710", 14, 4 }, /* 10000 in a four-digit fraction leftover */
		{ "800000000a", 10, 1 },    /* fraction leftover 10 > 9 */
		{ "7f", 1, 0 },		    /* negative zero */
		{ "7fff", 4, 2 },	    /* negative zero.00 */
		{ "446535ff", 9, 0 },	    /* a negative whole group of 10^9 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t b[BF_DECIMAL_BIN_MAX];
		char out[BF_DECIMAL_TEXT_MAX];
		size_t n = unhex(bad[i].hex, b);
		cr_assert_eq(n, bf_decimal_bin_len(bad[i].prec, bad[i].frac), "case %zu", i);
		cr_assert_eq(bf_decimal_check(b, n, bad[i].prec, bad[i].frac), BF_ECORRUPT,
			     "%s as DECIMAL(%d,%d)", bad[i].hex, bad[i].prec, bad[i].frac);
		cr_assert_eq(bf_decimal_format(b, n, bad[i].prec, bad[i].frac, out, sizeof(out)),
			     BF_ECORRUPT);
	}
	uint8_t ok[] = { 0x89 };
	cr_assert_eq(bf_decimal_check(ok, 1, 1, 0), 0);
	cr_assert_eq(bf_decimal_check(ok, 1, 0, 0), BF_ECORRUPT);
	cr_assert_eq(bf_decimal_check(ok, 0, 1, 0), BF_ECORRUPT);
	cr_assert_eq(bf_decimal_check(NULL, 1, 1, 0), BF_ECORRUPT);
}

/* A random value of DECIMAL(prec, frac) as sign and prec digits. */
typedef struct rand_dec {
	int prec, frac;
	bool negative;
	uint8_t d[BF_DECIMAL_MAX_PREC];
} rand_dec;

static void random_decimal(rand_dec *r, int prec, int frac)
{
	r->prec = prec;
	r->frac = frac;
	/* Few significant digits now and then, so zeros, small values and
	 * runs of leading and trailing zeros all turn up. */
	int lo = (int)(next_rand() % (uint64_t)(prec + 1)), hi = (int)(next_rand() % (uint64_t)(prec + 1));
	if (lo > hi) {
		int t = lo;
		lo = hi;
		hi = t;
	}
	for (int i = 0; i < prec; i++) {
		uint64_t x = next_rand();
		r->d[i] = (i >= lo && i < hi) ? (uint8_t)(x % 10) : 0;
		if (x % 17 == 0)
			r->d[i] = 9;
	}
	bool zero = true;
	for (int i = 0; i < prec; i++)
		zero &= r->d[i] == 0;
	r->negative = !zero && next_rand() % 2;
}

/* Canonical text: sign, integer digits without leading zeros (at least
 * one), and exactly frac fraction digits. */
static void rand_dec_text(const rand_dec *r, char *out)
{
	int intg = r->prec - r->frac, first = 0, o = 0;
	while (first < intg - 1 && r->d[first] == 0)
		first++;
	if (r->negative)
		out[o++] = '-';
	if (intg == 0)
		out[o++] = '0';
	for (int i = first; i < intg; i++)
		out[o++] = (char)('0' + r->d[i]);
	if (r->frac) {
		out[o++] = '.';
		for (int i = intg; i < r->prec; i++)
			out[o++] = (char)('0' + r->d[i]);
	}
	out[o] = '\0';
}

static int rand_dec_cmp(const rand_dec *a, const rand_dec *b)
{
	if (a->negative != b->negative)
		return a->negative ? -1 : 1;
	int c = sign_of(memcmp(a->d, b->d, (size_t)a->prec)); /* digits are 0..9 */
	return a->negative ? -c : c;
}

static void random_type(int *prec, int *frac)
{
	static const int common[][2] = { { 10, 0 }, { 14, 4 }, { 9, 9 }, { 18, 9 }, { 65, 30 },
					 { 1, 0 }, { 1, 1 }, { 12, 2 }, { 40, 13 }, { 65, 0 } };
	if (next_rand() % 2) {
		size_t k = next_rand() % (sizeof(common) / sizeof(common[0]));
		*prec = common[k][0];
		*frac = common[k][1];
		return;
	}
	*prec = 1 + (int)(next_rand() % BF_DECIMAL_MAX_PREC);
	int fmax = *prec < BF_DECIMAL_MAX_FRAC ? *prec : BF_DECIMAL_MAX_FRAC;
	*frac = (int)(next_rand() % (uint64_t)(fmax + 1));
}

Test(codec_types, decimal_round_trip_and_order_random)
{
	for (int iter = 0; iter < 20000; iter++) {
		int prec, frac;
		random_type(&prec, &frac);
		rand_dec a, b;
		random_decimal(&a, prec, frac);
		if (iter % 4 == 0) {
			b = a; /* equal, or a neighbour in the last digit */
			if (iter % 8 == 0 && b.d[prec - 1] < 9)
				b.d[prec - 1]++;
		} else {
			random_decimal(&b, prec, frac);
		}
		char ta[BF_DECIMAL_TEXT_MAX], tb[BF_DECIMAL_TEXT_MAX], back[BF_DECIMAL_TEXT_MAX];
		uint8_t ea[BF_DECIMAL_BIN_MAX], eb[BF_DECIMAL_BIN_MAX];
		size_t len = bf_decimal_bin_len(prec, frac);
		rand_dec_text(&a, ta);
		rand_dec_text(&b, tb);
		cr_assert_eq(bf_decimal_parse(ta, strlen(ta), prec, frac, ea), 0, "%s", ta);
		cr_assert_eq(bf_decimal_parse(tb, strlen(tb), prec, frac, eb), 0, "%s", tb);
		cr_assert_eq(bf_decimal_format(ea, len, prec, frac, back, sizeof(back)), 0);
		cr_assert_str_eq(back, ta, "DECIMAL(%d,%d)", prec, frac);
		cr_assert_eq(sign_of(memcmp(ea, eb, len)), rand_dec_cmp(&a, &b),
			     "%s vs %s as DECIMAL(%d,%d)", ta, tb, prec, frac);
	}
}

/* ---- DATETIME ---- */

typedef struct dt_case {
	const char *in;
	int fsp;
	uint64_t packed;
	const char *text;
} dt_case;

static void check_datetime(const dt_case *c)
{
	uint64_t packed = 0;
	char text[BF_DATETIME_TEXT_MAX];
	int rc = bf_datetime_parse(c->in, strlen(c->in), c->fsp, &packed);
	cr_assert_eq(rc, 0, "parse \"%s\" fsp %d: %d", c->in, c->fsp, rc);
	cr_assert_eq(packed, c->packed, "\"%s\": %#llx, want %#llx", c->in,
		     (unsigned long long)packed, (unsigned long long)c->packed);
	cr_assert_eq(bf_datetime_format(packed, c->fsp, text, sizeof(text)), 0);
	cr_assert_str_eq(text, c->text);
}

Test(codec_types, datetime_golden)
{
	/* ((year*13+month) << 5 | day) << 17 | hour << 12 | minute << 6 | second,
	 * << 24 | microseconds, worked out by hand. */
	static const dt_case cases[] = {
		{ "2020-12-31 23:59:59.999999", 6, 0x19a83f7efb0f423fULL, "2020-12-31 23:59:59.999999" },
		{ "2021-01-01", 0, 0x19a8820000000000ULL, "2021-01-01 00:00:00" },
		{ "2021-01-01 00:00:00", 6, 0x19a8820000000000ULL, "2021-01-01 00:00:00.000000" },
		{ "1000-01-01 00:00:00", 0, 0x0cb2420000000000ULL, "1000-01-01 00:00:00" },
		{ "9999-12-31 23:59:59.999999", 6, 0x7ef3ff7efb0f423fULL, "9999-12-31 23:59:59.999999" },
		{ "2024-02-29 12:34:56", 0, 0x19b2bac8b8000000ULL, "2024-02-29 12:34:56" },
		{ "2024-02-29T12:34:56.5", 1, 0x19b2bac8b807a120ULL, "2024-02-29 12:34:56.5" },
		{ "2000-01-01 00:00:00", 3, 0x1964420000000000ULL, "2000-01-01 00:00:00.000" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_datetime(&cases[i]);
}

Test(codec_types, datetime_rounding)
{
	uint64_t p;
	static const dt_case cases[] = {
		/* The carry runs all the way into the year. */
		{ "2020-12-31 23:59:59.9999995", 6, 0x19a8820000000000ULL, "2021-01-01 00:00:00.000000" },
		{ "2020-12-31 23:59:59.5", 0, 0x19a8820000000000ULL, "2021-01-01 00:00:00" },
		{ "2020-12-31 23:59:59.4999999", 0, 0, "2020-12-31 23:59:59" },
		/* Into a leap day, and past February in a common year. */
		{ "2024-02-28 23:59:59.5", 0, 0, "2024-02-29 00:00:00" },
		{ "2023-02-28 23:59:59.5", 0, 0, "2023-03-01 00:00:00" },
		{ "2020-04-30 23:59:59.95", 1, 0, "2020-05-01 00:00:00.0" },
		{ "2020-01-01 10:59:59.999", 2, 0, "2020-01-01 11:00:00.00" },
		{ "2020-01-01 10:00:00.123456789", 3, 0, "2020-01-01 10:00:00.123" },
		{ "2020-01-01 10:00:00.1235", 3, 0, "2020-01-01 10:00:00.124" },
		{ "2020-01-01 10:00:00.5", 3, 0, "2020-01-01 10:00:00.500" },
		{ "2020-01-01 10:00:00.000001", 6, 0, "2020-01-01 10:00:00.000001" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dt_case c = cases[i];
		if (!c.packed) { /* golden value only where given: compare text */
			cr_assert_eq(bf_datetime_parse(c.in, strlen(c.in), c.fsp, &p), 0, "%s", c.in);
			c.packed = p;
		}
		check_datetime(&c);
	}
	/* Rounding past the last representable second. */
	const char *last = "9999-12-31 23:59:59.5";
	cr_assert_eq(bf_datetime_parse(last, strlen(last), 0, &p), BF_EINVAL);
	last = "9999-12-31 23:59:59.9999995";
	cr_assert_eq(bf_datetime_parse(last, strlen(last), 6, &p), BF_EINVAL);
	last = "9999-12-31 23:59:59.4";
	cr_assert_eq(bf_datetime_parse(last, strlen(last), 0, &p), 0);
}

Test(codec_types, datetime_parse_errors)
{
	const char *bad[] = {
		"0000-00-00",	       "0000-00-00 00:00:00", "0999-12-31",	     "10000-01-01",
		"2023-02-29",	       "1900-02-29",	      "2024-13-01",	     "2024-00-10",
		"2024-04-31",	       "2024-01-00",	      "2024-01-01 24:00:00", "2024-01-01 00:60:00",
		"2024-01-01 00:00:60", "2024-1-1",	      "2024-01-01 1:02:03",  "2024-01-01 01:02:03.",
		"2024-01-01 01:02:03.12a", "2024-01-01x01:02:03", "2024-01-01 01:02", "",
		"2024-01-01 ",	       "2024-01-01.5",	      " 2024-01-01",	     "2024/01/01",
		"2024-01-01 01:02:03 ", "+024-01-01",
	};
	uint64_t p = 42;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(bf_datetime_parse(bad[i], strlen(bad[i]), 6, &p), BF_EINVAL, "\"%s\"", bad[i]);
	cr_assert_eq(p, 42, "output untouched on error");
	const char *ok = "2000-02-29 00:00:00";
	cr_assert_eq(bf_datetime_parse(ok, strlen(ok), 0, &p), 0, "2000 is a leap year");
	cr_assert_eq(bf_datetime_parse(ok, strlen(ok), -1, &p), BF_EINVAL);
	cr_assert_eq(bf_datetime_parse(ok, strlen(ok), 7, &p), BF_EINVAL);
	/* Only n bytes are read. */
	cr_assert_eq(bf_datetime_parse("2000-02-29 junk", 10, 0, &p), 0);
}

static uint64_t pack_fields(int y, int mo, int d, int h, int mi, int s, uint32_t us)
{
	uint64_t ymd = ((uint64_t)y * 13 + (uint64_t)mo) << 5 | (uint64_t)d;
	uint64_t hms = (uint64_t)h << 12 | (uint64_t)mi << 6 | (uint64_t)s;
	return (ymd << 17 | hms) << 24 | us;
}

Test(codec_types, datetime_format_errors)
{
	char out[BF_DATETIME_TEXT_MAX];
	const uint64_t bad[] = {
		0,					  /* TiDB's zero datetime */
		pack_fields(2020, 0, 1, 0, 0, 0, 0),	  /* month 0 */
		pack_fields(2020, 1, 0, 0, 0, 0, 0),	  /* day 0 */
		pack_fields(2021, 2, 29, 0, 0, 0, 0),	  /* not a leap year */
		pack_fields(2020, 4, 31, 0, 0, 0, 0),
		pack_fields(2020, 1, 1, 24, 0, 0, 0),
		pack_fields(2020, 1, 1, 0, 60, 0, 0),
		pack_fields(2020, 1, 1, 0, 0, 60, 0),
		pack_fields(2020, 1, 1, 0, 0, 0, 1000000),
		pack_fields(999, 12, 31, 0, 0, 0, 0),
		pack_fields(10000, 1, 1, 0, 0, 0, 0),
		UINT64_MAX,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(bf_datetime_format(bad[i], 6, out, sizeof(out)), BF_ECORRUPT, "case %zu", i);
	/* Digits past fsp are not a DATETIME(fsp) value. */
	uint64_t p = pack_fields(2020, 1, 1, 0, 0, 0, 123456);
	cr_assert_eq(bf_datetime_format(p, 3, out, sizeof(out)), BF_ECORRUPT);
	cr_assert_eq(bf_datetime_format(p, 6, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "2020-01-01 00:00:00.123456");
	/* fsp out of range, buffers too small (each size below the need). */
	cr_assert_eq(bf_datetime_format(p, 7, out, sizeof(out)), BF_EINVAL);
	cr_assert_eq(bf_datetime_format(p, -1, out, sizeof(out)), BF_EINVAL);
	for (size_t n = 0; n < BF_DATETIME_TEXT_MAX; n++)
		cr_assert_eq(bf_datetime_format(p, 6, out, n), BF_ERANGE, "n %zu", n);
	p = pack_fields(2020, 1, 1, 0, 0, 0, 0);
	for (size_t n = 0; n < 20; n++)
		cr_assert_eq(bf_datetime_format(p, 0, out, n), BF_ERANGE, "n %zu", n);
	cr_assert_eq(bf_datetime_format(p, 0, out, 20), 0);
	cr_assert_str_eq(out, "2020-01-01 00:00:00");
}

static int days_in(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : d[m - 1];
}

typedef struct rand_dt {
	int f[6]; /* year, month, day, hour, minute, second */
	uint32_t us;
} rand_dt;

static uint32_t pow10_fsp(int fsp)
{
	uint32_t p = 1;
	while (fsp-- > 0)
		p *= 10;
	return p;
}

static void random_datetime(rand_dt *t, int fsp)
{
	uint32_t unit = 1000000 / pow10_fsp(fsp);
	t->f[0] = 1000 + (int)(next_rand() % 9000);
	if (next_rand() % 8 == 0)
		t->f[0] = next_rand() % 2 ? 1000 : 9999;
	t->f[1] = 1 + (int)(next_rand() % 12);
	t->f[2] = 1 + (int)(next_rand() % (uint64_t)days_in(t->f[0], t->f[1]));
	t->f[3] = (int)(next_rand() % 24);
	t->f[4] = (int)(next_rand() % 60);
	t->f[5] = (int)(next_rand() % 60);
	t->us = (uint32_t)(next_rand() % 1000000) / unit * unit;
}

static int rand_dt_cmp(const rand_dt *a, const rand_dt *b)
{
	for (int i = 0; i < 6; i++)
		if (a->f[i] != b->f[i])
			return a->f[i] < b->f[i] ? -1 : 1;
	return (a->us > b->us) - (a->us < b->us);
}

static void rand_dt_text(const rand_dt *t, int fsp, char *out, size_t n)
{
	int o = snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d", t->f[0], t->f[1], t->f[2], t->f[3],
			 t->f[4], t->f[5]);
	if (fsp) {
		char frac[8];
		snprintf(frac, sizeof(frac), "%06u", (unsigned)t->us);
		snprintf(out + o, n - (size_t)o, ".%.*s", fsp, frac);
	}
}

Test(codec_types, datetime_round_trip_and_order_random)
{
	for (int iter = 0; iter < 20000; iter++) {
		int fsp = (int)(next_rand() % 7);
		rand_dt a, b;
		random_datetime(&a, fsp);
		random_datetime(&b, fsp);
		if (iter % 3 == 0) {
			/* Equal, or apart in one field: the month, the hour, the
			 * minute, the second or the microseconds. */
			b = a;
			switch (next_rand() % 6) {
			case 0: b.f[1] = 1 + a.f[1] % 12; break;
			case 1: b.f[3] = (a.f[3] + 1) % 24; break;
			case 2: b.f[4] = (a.f[4] + 1) % 60; break;
			case 3: b.f[5] = (a.f[5] + 1) % 60; break;
			case 4: b.us = fsp ? (a.us + 1000000 / pow10_fsp(fsp)) % 1000000 : a.us; break;
			default: break;
			}
			if (b.f[2] > days_in(b.f[0], b.f[1]))
				b.f[2] = days_in(b.f[0], b.f[1]);
		}
		char ta[BF_DATETIME_TEXT_MAX], tb[BF_DATETIME_TEXT_MAX], back[BF_DATETIME_TEXT_MAX];
		uint64_t pa, pb;
		rand_dt_text(&a, fsp, ta, sizeof(ta));
		rand_dt_text(&b, fsp, tb, sizeof(tb));
		cr_assert_eq(bf_datetime_parse(ta, strlen(ta), fsp, &pa), 0, "%s", ta);
		cr_assert_eq(bf_datetime_parse(tb, strlen(tb), fsp, &pb), 0, "%s", tb);
		cr_assert_eq(pa, pack_fields(a.f[0], a.f[1], a.f[2], a.f[3], a.f[4], a.f[5], a.us));
		cr_assert_eq(bf_datetime_format(pa, fsp, back, sizeof(back)), 0);
		cr_assert_str_eq(back, ta);
		int want = rand_dt_cmp(&a, &b);
		cr_assert_eq((pa > pb) - (pa < pb), want, "%s vs %s", ta, tb);
		/* As key datums (uint flag, 8 bytes big-endian) they sort alike. */
		uint8_t ka[9], kb[9];
		bf_datum da = bf_datum_uint(pa), db = bf_datum_uint(pb);
		bf_codec_put_datum_key(ka, &da);
		bf_codec_put_datum_key(kb, &db);
		cr_assert_eq(sign_of(memcmp(ka, kb, 9)), want);
	}
}

/* ---- key datums ---- */

Test(codec_types, key_datums_golden)
{
	uint8_t k[64], bin[BF_DECIMAL_BIN_MAX], scratch[64];
	size_t used;
	bf_datum back;

	bf_datum f = bf_datum_float(-1.0);
	cr_assert_eq(bf_codec_datum_key_len(&f), 9);
	expect_bytes(k, bf_codec_put_datum_key(k, &f), "05400fffffffffffff");
	cr_assert_eq(bf_codec_get_datum_key(k, 9, &back, scratch, &used), 0);
	cr_assert(back.kind == BF_DATUM_FLOAT && back.v.f == -1.0 && used == 9);

	cr_assert_eq(bf_decimal_parse("1234567890.1234", 15, 14, 4, bin), 0);
	bf_datum d = bf_datum_decimal(bin, 7, 14, 4);
	cr_assert_eq(bf_codec_datum_key_len(&d), 10);
	expect_bytes(k, bf_codec_put_datum_key(k, &d), "060e04810dfb38d204d2");
	cr_assert_eq(bf_codec_get_datum_key(k, 10, &back, scratch, &used), 0);
	cr_assert_eq(back.kind, BF_DATUM_DECIMAL);
	cr_assert(back.v.dec.prec == 14 && back.v.dec.frac == 4 && back.v.dec.len == 7);
	cr_assert(back.v.dec.ptr == k + 3, "a decimal datum points into the key");
	cr_assert_eq(used, 10);

	/* DATETIME is the uint datum of its packed value. */
	uint64_t p;
	cr_assert_eq(bf_datetime_parse("2021-01-01", 10, 0, &p), 0);
	bf_datum t = bf_datum_uint(p);
	expect_bytes(k, bf_codec_put_datum_key(k, &t), "0419a8820000000000");
}

Test(codec_types, key_datums_refuse_damage)
{
	uint8_t scratch[64];
	size_t used;
	bf_datum d;
	static const char *bad[] = {
		"05fff8000000000000",	 /* NaN */
		"057fffffffffffffff",	 /* -0.0's pattern */
		"05bff00000000000",	 /* 7 bytes of float */
		"06",			 /* no precision */
		"060e",			 /* no fraction */
		"060e04",		 /* no bin */
		"060e04810dfb38d204",	 /* short bin */
		"064200810dfb38d204d2", /* precision 66 */
		"060004810dfb38d204d2", /* precision 0 */
		"060e0f810dfb38d204d2", /* fraction above precision */
		"06411f810dfb38d204d2", /* fraction 31 */
		"060e04810dfb38d22710", /* a leftover group too large */
		"0601007f",		 /* negative zero */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t raw[32];
		size_t n = unhex(bad[i], raw);
		uint8_t *in = exact_copy(raw, n);
		cr_assert_eq(bf_codec_get_datum_key(in, n, &d, scratch, &used), BF_ECORRUPT, "%s", bad[i]);
		free(in);
	}
}

/* Whatever the key decoder accepts re-encodes to the same bytes; what it
 * refuses it refuses without reading past the input. */
Test(codec_types, key_datums_damaged_random)
{
	uint8_t bin[BF_DECIMAL_BIN_MAX], enc[64], scratch[64], back[64];
	for (int iter = 0; iter < 30000; iter++) {
		bf_datum d;
		if (iter % 2) {
			d = bf_datum_float(random_double());
		} else {
			int prec, frac;
			random_type(&prec, &frac);
			rand_dec r;
			char text[BF_DECIMAL_TEXT_MAX];
			random_decimal(&r, prec, frac);
			rand_dec_text(&r, text);
			cr_assert_eq(bf_decimal_parse(text, strlen(text), prec, frac, bin), 0);
			d = bf_datum_decimal(bin, bf_decimal_bin_len(prec, frac), prec, frac);
		}
		size_t n = bf_codec_put_datum_key(enc, &d), used;
		cr_assert_eq(n, bf_codec_datum_key_len(&d));
		int flips = 1 + (int)(next_rand() % 3);
		for (int i = 0; i < flips; i++)
			enc[next_rand() % n] ^= (uint8_t)(1u << (next_rand() % 8));
		size_t cut = next_rand() % 4 == 0 ? next_rand() % (n + 1) : n;
		uint8_t *in = exact_copy(enc, cut);
		bf_datum got;
		if (bf_codec_get_datum_key(in, cut, &got, scratch, &used) == 0) {
			cr_assert_leq(used, cut);
			cr_assert_eq(bf_codec_datum_key_len(&got), used);
			cr_assert_eq(bf_codec_put_datum_key(back, &got), used);
			cr_assert(memcmp(back, in, used) == 0, "accepted bytes must be canonical");
		}
		free(in);
	}
}

Test(codec_types, index_keys_with_new_kinds)
{
	uint8_t key[128], scratch[128], bin[BF_DECIMAL_BIN_MAX];
	uint64_t when;
	cr_assert_eq(bf_decimal_parse("-10.55", 6, 4, 2, bin), 0);
	cr_assert_eq(bf_datetime_parse("2024-02-29 12:34:56", 19, 0, &when), 0);
	bf_datum cols[4] = { bf_datum_float(1.5), bf_datum_decimal(bin, 2, 4, 2), bf_datum_uint(when),
			     bf_datum_bytes("ab", 2) };
	size_t n = bf_codec_index_key(key, 7, 1, cols, 4, true, -3);
	cr_assert_eq(n, bf_codec_index_key_len(cols, 4, true));
	expect_bytes(key, n, "748000000000000007" "5f69" "8000000000000001"
			     "05bff8000000000000" "06040275c8" "0419b2bac8b8000000"
			     "016162000000000000f9" "037ffffffffffffffd");
	bf_datum back[4];
	bool has;
	int64_t tid, iid, h;
	cr_assert_eq(bf_codec_decode_index_key(key, n, &tid, &iid, back, 4, scratch, &has, &h), 0);
	cr_assert(tid == 7 && iid == 1 && has && h == -3);
	cr_assert(back[0].kind == BF_DATUM_FLOAT && back[0].v.f == 1.5);
	cr_assert(back[1].kind == BF_DATUM_DECIMAL && back[1].v.dec.len == 2 &&
		  !memcmp(back[1].v.dec.ptr, bin, 2));
	cr_assert(back[2].kind == BF_DATUM_UINT && back[2].v.u == when);
	cr_assert(back[3].kind == BF_DATUM_BYTES && back[3].v.b.len == 2 &&
		  !memcmp(back[3].v.b.ptr, "ab", 2));
	/* Every truncation is refused, except the one that drops the handle. */
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *in = exact_copy(key, cut);
		int rc = bf_codec_decode_index_key(in, cut, NULL, NULL, back, 4, scratch, &has, &h);
		if (cut == n - 9)
			cr_assert(rc == 0 && !has);
		else
			cr_assert_eq(rc, BF_ECORRUPT, "cut at %zu", cut);
		free(in);
	}
}

Test(codec_types, index_keys_order_decimals)
{
	/* Whole index keys over one DECIMAL column sort as the values. */
	for (int iter = 0; iter < 5000; iter++) {
		rand_dec a, b;
		random_decimal(&a, 12, 2);
		random_decimal(&b, 12, 2);
		char ta[BF_DECIMAL_TEXT_MAX], tb[BF_DECIMAL_TEXT_MAX];
		uint8_t ba[BF_DECIMAL_BIN_MAX], bb[BF_DECIMAL_BIN_MAX], ka[64], kb[64];
		rand_dec_text(&a, ta);
		rand_dec_text(&b, tb);
		cr_assert_eq(bf_decimal_parse(ta, strlen(ta), 12, 2, ba), 0);
		cr_assert_eq(bf_decimal_parse(tb, strlen(tb), 12, 2, bb), 0);
		bf_datum da = bf_datum_decimal(ba, 6, 12, 2), db = bf_datum_decimal(bb, 6, 12, 2);
		size_t na = bf_codec_index_key(ka, 1, 1, &da, 1, true, 5);
		size_t nb = bf_codec_index_key(kb, 1, 1, &db, 1, true, 5);
		cr_assert_eq(na, nb);
		cr_assert_eq(sign_of(memcmp(ka, kb, na)), rand_dec_cmp(&a, &b), "%s vs %s", ta, tb);
	}
}

/* ---- row format v2 ---- */

Test(codec_types, rowv2_golden)
{
	uint8_t buf[128], bin[BF_DECIMAL_BIN_MAX];
	int order[4];
	uint64_t when;
	cr_assert_eq(bf_decimal_parse("1234567890.1234", 15, 14, 4, bin), 0);
	cr_assert_eq(bf_datetime_parse("2021-01-01", 10, 0, &when), 0);
	bf_row_col cols[4] = {
		{ 3, bf_datum_uint(when) },
		{ 1, bf_datum_float(1.5) },
		{ 4, bf_datum_null() },
		{ 2, bf_datum_decimal(bin, 7, 14, 4) },
	};
	long n = bf_codec_row_encode(buf, cols, 4, order);
	cr_assert_eq((size_t)n, bf_codec_row_len(cols, 4));
	/* header, ids 1 2 3 | 4, end offsets 8 17 25, then the values */
	expect_bytes(buf, (size_t)n, "800003000100" "01020304" "080011001900"
				     "bff8000000000000" "0e04810dfb38d204d2" "000000000082a819");

	bf_row_view rv;
	const uint8_t *p;
	size_t len;
	double f;
	bf_datum d;
	uint64_t u;
	char text[BF_DECIMAL_TEXT_MAX];
	cr_assert_eq(bf_codec_row_view(&rv, buf, (size_t)n), 0);
	cr_assert_eq(bf_codec_row_find(&rv, 1, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(bf_codec_row_decode_float(p, len, &f), 0);
	cr_assert_eq(f, 1.5);
	cr_assert_eq(bf_codec_row_find(&rv, 2, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(bf_codec_row_decode_decimal(p, len, 14, 4, &d), 0);
	cr_assert(d.kind == BF_DATUM_DECIMAL && d.v.dec.ptr == p + 2 && d.v.dec.len == 7);
	cr_assert_eq(bf_decimal_format(d.v.dec.ptr, d.v.dec.len, 14, 4, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "1234567890.1234");
	cr_assert_eq(bf_codec_row_find(&rv, 3, &p, &len), BF_ROW_PRESENT);
	cr_assert_eq(len, 8, "a packed DATETIME needs all 8 bytes");
	cr_assert_eq(bf_codec_row_decode_uint(p, len, &u), 0);
	cr_assert_eq(u, when);
}

Test(codec_types, rowv2_decode_errors)
{
	uint8_t bin[BF_DECIMAL_BIN_MAX], val[16];
	double f;
	bf_datum d;
	cr_assert_eq(bf_decimal_parse("-10.55", 6, 4, 2, bin), 0);
	val[0] = 4;
	val[1] = 2;
	memcpy(val + 2, bin, 2);
	cr_assert_eq(bf_codec_row_decode_decimal(val, 4, 4, 2, &d), 0);
	cr_assert_eq(bf_codec_row_decode_decimal(val, 4, 5, 2, &d), BF_ECORRUPT, "another precision");
	cr_assert_eq(bf_codec_row_decode_decimal(val, 4, 4, 1, &d), BF_ECORRUPT, "another fraction");
	cr_assert_eq(bf_codec_row_decode_decimal(val, 3, 4, 2, &d), BF_ECORRUPT, "short");
	cr_assert_eq(bf_codec_row_decode_decimal(val, 5, 4, 2, &d), BF_ECORRUPT, "long");
	cr_assert_eq(bf_codec_row_decode_decimal(val, 0, 4, 2, &d), BF_ECORRUPT);
	cr_assert_eq(bf_codec_row_decode_decimal(val, 4, 0, 0, &d), BF_ECORRUPT, "no such type");
	val[2] = 0x7f;
	val[3] = 0xff;
	cr_assert_eq(bf_codec_row_decode_decimal(val, 4, 4, 2, &d), BF_ECORRUPT, "negative zero");
	val[2] = 0x80;
	val[3] = 0x64; /* fraction leftover 100 > 99 */
	cr_assert_eq(bf_codec_row_decode_decimal(val, 4, 4, 2, &d), BF_ECORRUPT);

	bf_codec_put_float(val, 2.0);
	cr_assert_eq(bf_codec_row_decode_float(val, 8, &f), 0);
	cr_assert_eq(f, 2.0);
	for (size_t n = 0; n < 16; n++)
		if (n != 8)
			cr_assert_eq(bf_codec_row_decode_float(val, n, &f), BF_ECORRUPT, "n %zu", n);
	unhex("fff8000000000000", val);
	cr_assert_eq(bf_codec_row_decode_float(val, 8, &f), BF_ECORRUPT, "NaN");

	/* A decimal datum whose length is not its type's is refused. */
	uint8_t buf[64];
	int order[1];
	bf_row_col c = { 1, bf_datum_decimal(bin, 3, 4, 2) };
	cr_assert_eq(bf_codec_row_len(&c, 1), 0);
	cr_assert_eq(bf_codec_row_encode(buf, &c, 1, order), BF_EINVAL);
	c.val = bf_datum_decimal(bin, 2, 0, 0);
	cr_assert_eq(bf_codec_row_encode(buf, &c, 1, order), BF_EINVAL);
}

/* Damaged decimal and float values decode or are refused, never read past
 * their n bytes, and what decodes is valid. */
Test(codec_types, rowv2_damaged_values_random)
{
	uint8_t bin[BF_DECIMAL_BIN_MAX], val[BF_DECIMAL_BIN_MAX + 2];
	for (int iter = 0; iter < 30000; iter++) {
		int prec, frac;
		random_type(&prec, &frac);
		rand_dec r;
		char text[BF_DECIMAL_TEXT_MAX];
		random_decimal(&r, prec, frac);
		rand_dec_text(&r, text);
		cr_assert_eq(bf_decimal_parse(text, strlen(text), prec, frac, bin), 0);
		size_t len = bf_decimal_bin_len(prec, frac), n = len + 2;
		val[0] = (uint8_t)prec;
		val[1] = (uint8_t)frac;
		memcpy(val + 2, bin, len);
		val[next_rand() % n] ^= (uint8_t)(1u << (next_rand() % 8));
		if (next_rand() % 4 == 0)
			n = next_rand() % (n + 1);
		uint8_t *in = exact_copy(val, n);
		bf_datum d;
		if (bf_codec_row_decode_decimal(in, n, prec, frac, &d) == 0) {
			char out[BF_DECIMAL_TEXT_MAX];
			cr_assert(d.v.dec.ptr == in + 2 && d.v.dec.len == len);
			cr_assert_eq(bf_decimal_format(d.v.dec.ptr, d.v.dec.len, prec, frac, out,
						       sizeof(out)), 0);
		}
		double f;
		(void)bf_codec_row_decode_float(in, n, &f);
		free(in);
	}
}
