/*
 * DECIMAL(prec, frac) in MySQL's binary form, the bytes TiDB keeps after a
 * decimal's precision and fraction bytes in keys and row values alike.
 *
 * The form: the integer digits, right-aligned to prec - frac, and the
 * fraction digits, left-aligned to frac, are cut into groups of 9 decimal
 * digits, each a 4-byte big-endian number. A side's leftover digits (the
 * most significant integer digits, the least significant fraction digits)
 * take only as many bytes as they need: 1-2 digits 1 byte, 3-4 two, 5-6
 * three, 7-8 four. A negative value has every byte inverted; then the top
 * bit of the first byte is flipped, so positive values start with it set
 * and memcmp orders two values of one (prec, frac) as numbers.
 *
 * TiDB writes a DECIMAL(M,D) column with prec M and frac D in row values
 * and index keys both: the value is cast to the column's type on write,
 * which sets the datum's length and fraction to M and D, and those are what
 * the key and value encoders pass on. Reading a row back keeps the prec and
 * frac bytes it finds, so an index built from a row sees them again.
 *
 * Depends on libc only.
 */
#include "bfill/codec.h"
#include "bfill/error.h"

#include <stdbool.h>
#include <string.h>

#define GROUP_DIGITS 9
#define GROUP_BYTES 4
#define GROUP_MAX 999999999u

/* Bytes for a leftover of 0..8 digits (9 is a whole group). */
static const uint8_t leftover_bytes[GROUP_DIGITS + 1] = { 0, 1, 1, 2, 2, 3, 3, 4, 4, 4 };

static const uint32_t pow10_u32[GROUP_DIGITS + 1] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

/* The digits of a value, most significant first, and its sign. */
typedef struct dec_digits {
	bool negative;
	int intg, frac;                     /* digits before and after the point */
	uint8_t d[BF_DECIMAL_MAX_PREC];    /* 0..9 each, intg + frac of them */
} dec_digits;

static bool is_zero(const dec_digits *v)
{
	for (int i = 0; i < v->intg + v->frac; i++)
		if (v->d[i])
			return false;
	return true;
}

static bool type_valid(int prec, int frac)
{
	return prec >= 1 && prec <= BF_DECIMAL_MAX_PREC && frac >= 0 &&
	       frac <= BF_DECIMAL_MAX_FRAC && frac <= prec;
}

static size_t side_len(int digits)
{
	return (size_t)(digits / GROUP_DIGITS) * GROUP_BYTES + leftover_bytes[digits % GROUP_DIGITS];
}

size_t bf_decimal_bin_len(int prec, int frac)
{
	if (!type_valid(prec, frac))
		return 0;
	return side_len(prec - frac) + side_len(frac);
}

static void put_group(uint8_t *dst, uint32_t v, int nbytes)
{
	for (int i = nbytes - 1; i >= 0; i--, v >>= 8)
		dst[i] = (uint8_t)v;
}

static uint32_t get_group(const uint8_t *src, int nbytes)
{
	uint32_t v = 0;
	for (int i = 0; i < nbytes; i++)
		v = v << 8 | src[i];
	return v;
}

static uint32_t digits_value(const uint8_t *d, int n)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + d[i];
	return v;
}

static void value_digits(uint32_t v, uint8_t *d, int n)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		d[i] = (uint8_t)(v % 10);
}

/*
 * The groups of one (prec, frac) in storage order: where each one's digits
 * sit in dec_digits.d and where its bytes sit in the binary form. Encoder
 * and decoder share it so they cannot disagree on the layout. 65 digits
 * make at most 7 whole groups, plus one leftover on each side.
 */
#define MAX_GROUPS 9

typedef struct group_pos {
	int first_digit, ndigits; /* in dec_digits.d */
	size_t first_byte;
	int nbytes;
} group_pos;

static int layout(int prec, int frac, group_pos out[MAX_GROUPS])
{
	int intg = prec - frac, n = 0, digit = 0;
	size_t byte = 0;
	int lead = intg % GROUP_DIGITS, trail = frac % GROUP_DIGITS;

	if (lead) {
		out[n++] = (group_pos){ digit, lead, byte, leftover_bytes[lead] };
		digit += lead;
		byte += leftover_bytes[lead];
	}
	for (int g = 0; g < intg / GROUP_DIGITS + frac / GROUP_DIGITS; g++) {
		out[n++] = (group_pos){ digit, GROUP_DIGITS, byte, GROUP_BYTES };
		digit += GROUP_DIGITS;
		byte += GROUP_BYTES;
	}
	if (trail)
		out[n++] = (group_pos){ digit, trail, byte, leftover_bytes[trail] };
	return n;
}

static void encode_digits(const dec_digits *v, uint8_t *bin)
{
	group_pos g[MAX_GROUPS];
	int n = layout(v->intg + v->frac, v->frac, g);
	size_t len = bf_decimal_bin_len(v->intg + v->frac, v->frac);

	for (int i = 0; i < n; i++)
		put_group(bin + g[i].first_byte, digits_value(v->d + g[i].first_digit, g[i].ndigits),
			  g[i].nbytes);
	if (v->negative)
		for (size_t i = 0; i < len; i++)
			bin[i] ^= 0xFF;
	bin[0] ^= 0x80;
}

/* Validates bin as DECIMAL(prec, frac) and spells out its digits. */
static int decode_digits(const uint8_t *bin, size_t len, int prec, int frac, dec_digits *v)
{
	uint8_t buf[BF_DECIMAL_BIN_MAX];
	group_pos g[MAX_GROUPS];
	size_t want = bf_decimal_bin_len(prec, frac);

	if (want == 0 || len != want || !bin)
		return BF_ECORRUPT;
	memcpy(buf, bin, len);
	buf[0] ^= 0x80;
	v->negative = !(bin[0] & 0x80);
	if (v->negative)
		for (size_t i = 0; i < len; i++)
			buf[i] ^= 0xFF;
	v->intg = prec - frac;
	v->frac = frac;
	int n = layout(prec, frac, g);
	for (int i = 0; i < n; i++) {
		uint32_t x = get_group(buf + g[i].first_byte, g[i].nbytes);
		/* A group holds ndigits digits and no more: anything larger is
		 * not a value this type can hold. */
		if (g[i].ndigits == GROUP_DIGITS ? x > GROUP_MAX : x >= pow10_u32[g[i].ndigits])
			return BF_ECORRUPT;
		value_digits(x, v->d + g[i].first_digit, g[i].ndigits);
	}
	/* TiDB never writes a negative zero (it clears the sign of a zero when
	 * parsing and rounding): accepting one would give zero two encodings,
	 * and a unique index two distinct keys for equal values. */
	if (v->negative && is_zero(v))
		return BF_ECORRUPT;
	return 0;
}

int bf_decimal_check(const uint8_t *bin, size_t len, int prec, int frac)
{
	dec_digits v;
	return decode_digits(bin, len, prec, frac, &v);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

int bf_decimal_parse(const char *s, size_t n, int prec, int frac, uint8_t *bin)
{
	dec_digits v = { 0 };
	size_t pos = 0, int_start, int_end, frac_start, frac_end;

	if (!type_valid(prec, frac) || !s || !bin)
		return BF_EINVAL;
	if (pos < n && (s[pos] == '-' || s[pos] == '+'))
		v.negative = s[pos++] == '-';
	int_start = pos;
	while (pos < n && is_digit(s[pos]))
		pos++;
	int_end = pos;
	frac_start = frac_end = pos;
	if (pos < n && s[pos] == '.') {
		frac_start = ++pos;
		while (pos < n && is_digit(s[pos]))
			pos++;
		frac_end = pos;
	}
	if (pos != n || (int_end == int_start && frac_end == frac_start))
		return BF_EINVAL;

	v.intg = prec - frac;
	v.frac = frac;
	while (int_start < int_end && s[int_start] == '0')
		int_start++;
	size_t int_digits = int_end - int_start;
	if (int_digits > (size_t)v.intg)
		return BF_ERANGE;
	/* Integer digits right-aligned, fraction digits left-aligned; the
	 * rest of d stays zero. */
	for (size_t i = 0; i < int_digits; i++)
		v.d[(size_t)v.intg - int_digits + i] = (uint8_t)(s[int_start + i] - '0');
	size_t frac_digits = frac_end - frac_start;
	for (size_t i = 0; i < frac_digits && i < (size_t)frac; i++)
		v.d[v.intg + (int)i] = (uint8_t)(s[frac_start + i] - '0');

	/* Half away from zero: the first dropped digit decides, and the digits
	 * are a magnitude, so a negative value rounds down alike. */
	if (frac_digits > (size_t)frac && s[frac_start + (size_t)frac] >= '5') {
		int i = prec - 1;
		while (i >= 0 && v.d[i] == 9)
			v.d[i--] = 0;
		if (i < 0)
			return BF_ERANGE; /* 99.995 into DECIMAL(4,2) */
		v.d[i]++;
	}

	if (is_zero(&v))
		v.negative = false; /* one zero: -0.00 is stored as 0.00 */
	encode_digits(&v, bin);
	return 0;
}

int bf_decimal_format(const uint8_t *bin, size_t len, int prec, int frac, char *out, size_t n)
{
	dec_digits v;
	int rc = decode_digits(bin, len, prec, frac, &v);
	if (rc)
		return rc;

	int first = 0;
	while (first < v.intg - 1 && v.d[first] == 0)
		first++;
	/* sign, integer digits (at least one "0"), point, fraction, NUL */
	size_t need = (v.negative ? 1 : 0) + (size_t)(v.intg > 0 ? v.intg - first : 1) +
		      (frac ? 1 + (size_t)frac : 0) + 1;
	if (!out || n < need)
		return BF_ERANGE;
	size_t o = 0;
	if (v.negative)
		out[o++] = '-';
	if (v.intg == 0)
		out[o++] = '0';
	for (int i = first; i < v.intg; i++)
		out[o++] = (char)('0' + v.d[i]);
	if (frac) {
		out[o++] = '.';
		for (int i = 0; i < frac; i++)
			out[o++] = (char)('0' + v.d[v.intg + i]);
	}
	out[o] = '\0';
	return 0;
}
