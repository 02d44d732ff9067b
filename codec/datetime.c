/*
 * DATETIME(fsp) as TiDB packs it into a uint64, the value its keys (after
 * the uint flag, 8 bytes big-endian) and row values (as an unsigned int)
 * hold for a DATETIME column:
 *
 *   bits 63..41  (year * 13 + month) << 5 | day
 *   bits 40..24  hour << 12 | minute << 6 | second
 *   bits 23..0   microseconds (0..999999)
 *
 * Fields are ordered most significant first, so packed values compare as
 * the datetimes do. The text side follows MySQL: years 1000..9999, real
 * calendar dates, extra fraction digits rounded half up with the carry
 * running through seconds, minutes, hours, days, months and years.
 *
 * Depends on libc only.
 */
#include "bfill/codec.h"
#include "bfill/error.h"

#include <stdbool.h>
#include <stdio.h>

#define YEAR_MIN 1000
#define YEAR_MAX 9999
#define FSP_MAX 6
#define MICROS 1000000u
#define TEXT_LEN 19 /* "YYYY-MM-DD HH:MM:SS" */

typedef struct dt_fields {
	int year, month, day, hour, minute, second;
	uint32_t micro;
} dt_fields;

static const uint32_t pow10_micro[FSP_MAX + 1] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };

static bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

static bool fields_valid(const dt_fields *f)
{
	return f->year >= YEAR_MIN && f->year <= YEAR_MAX && f->month >= 1 && f->month <= 12 &&
	       f->day >= 1 && f->day <= month_days(f->year, f->month) && f->hour >= 0 &&
	       f->hour <= 23 && f->minute >= 0 && f->minute <= 59 && f->second >= 0 &&
	       f->second <= 59 && f->micro < MICROS;
}

static uint64_t pack(const dt_fields *f)
{
	uint64_t ymd = ((uint64_t)f->year * 13 + (uint64_t)f->month) << 5 | (uint64_t)f->day;
	uint64_t hms = (uint64_t)f->hour << 12 | (uint64_t)f->minute << 6 | (uint64_t)f->second;
	return (ymd << 17 | hms) << 24 | f->micro;
}

static void unpack(uint64_t packed, dt_fields *f)
{
	uint64_t ymdhms = packed >> 24, ymd = ymdhms >> 17, hms = ymdhms & 0x1FFFF;
	f->micro = (uint32_t)(packed & 0xFFFFFF);
	f->day = (int)(ymd & 0x1F);
	f->month = (int)((ymd >> 5) % 13);
	f->year = (int)((ymd >> 5) / 13); /* at most 2^18 / 13: fits an int */
	f->second = (int)(hms & 0x3F);
	f->minute = (int)((hms >> 6) & 0x3F);
	f->hour = (int)(hms >> 12);
}

/* Adds one second, carrying as far as it goes; a valid date stays valid
 * except past 9999-12-31 23:59:59, which the caller's range check refuses. */
static void add_second(dt_fields *f)
{
	if (++f->second < 60)
		return;
	f->second = 0;
	if (++f->minute < 60)
		return;
	f->minute = 0;
	if (++f->hour < 24)
		return;
	f->hour = 0;
	if (++f->day <= month_days(f->year, f->month))
		return;
	f->day = 1;
	if (++f->month <= 12)
		return;
	f->month = 1;
	f->year++;
}

/* Exactly width digits at s[*pos], advancing *pos. */
static bool fixed_digits(const char *s, size_t n, size_t *pos, int width, int *out)
{
	int v = 0;
	if (n - *pos < (size_t)width)
		return false;
	for (int i = 0; i < width; i++) {
		char c = s[*pos + (size_t)i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*pos += (size_t)width;
	*out = v;
	return true;
}

static bool expect(const char *s, size_t n, size_t *pos, char c)
{
	if (*pos >= n || s[*pos] != c)
		return false;
	(*pos)++;
	return true;
}

int bf_datetime_parse(const char *s, size_t n, int fsp, uint64_t *packed)
{
	dt_fields f = { 0 };
	size_t pos = 0;

	if (!s || !packed || fsp < 0 || fsp > FSP_MAX)
		return BF_EINVAL;
	if (!fixed_digits(s, n, &pos, 4, &f.year) || !expect(s, n, &pos, '-') ||
	    !fixed_digits(s, n, &pos, 2, &f.month) || !expect(s, n, &pos, '-') ||
	    !fixed_digits(s, n, &pos, 2, &f.day))
		return BF_EINVAL;
	if (pos < n) {
		if (s[pos] != ' ' && s[pos] != 'T')
			return BF_EINVAL;
		pos++;
		if (!fixed_digits(s, n, &pos, 2, &f.hour) || !expect(s, n, &pos, ':') ||
		    !fixed_digits(s, n, &pos, 2, &f.minute) || !expect(s, n, &pos, ':') ||
		    !fixed_digits(s, n, &pos, 2, &f.second))
			return BF_EINVAL;
	}
	bool round_up = false;
	if (pos < n) {
		if (s[pos++] != '.' || pos == n)
			return BF_EINVAL;
		/* The first fsp digits are kept, the next one decides the
		 * rounding, any after it only need to be digits. */
		uint32_t kept = 0;
		for (size_t i = 0; pos + i < n; i++) {
			char c = s[pos + i];
			if (c < '0' || c > '9')
				return BF_EINVAL;
			if (i < (size_t)fsp)
				kept = kept * 10 + (uint32_t)(c - '0');
			else if (i == (size_t)fsp)
				round_up = c >= '5';
		}
		size_t ndigits = n - pos;
		for (size_t i = ndigits; i < (size_t)fsp; i++)
			kept *= 10;
		f.micro = kept * pow10_micro[FSP_MAX - fsp];
	}
	/* The date must exist as written: rounding may carry into the next
	 * day, but never turns February 30th into a date. */
	if (!fields_valid(&f))
		return BF_EINVAL;
	if (round_up) {
		f.micro += pow10_micro[FSP_MAX - fsp];
		if (f.micro >= MICROS) {
			f.micro -= MICROS;
			add_second(&f);
			if (!fields_valid(&f))
				return BF_EINVAL; /* past 9999-12-31 23:59:59 */
		}
	}
	*packed = pack(&f);
	return 0;
}

int bf_datetime_format(uint64_t packed, int fsp, char *out, size_t n)
{
	dt_fields f;

	if (fsp < 0 || fsp > FSP_MAX)
		return BF_EINVAL;
	unpack(packed, &f);
	/* Fraction digits past fsp mean this is no DATETIME(fsp) value. */
	if (!fields_valid(&f) || f.micro % pow10_micro[FSP_MAX - fsp])
		return BF_ECORRUPT;
	size_t need = TEXT_LEN + (fsp ? 1 + (size_t)fsp : 0) + 1;
	if (!out || n < need)
		return BF_ERANGE;
	snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d", f.year, f.month, f.day, f.hour, f.minute,
		 f.second);
	if (fsp)
		snprintf(out + TEXT_LEN, n - TEXT_LEN, ".%0*u", fsp,
			 (unsigned)(f.micro / pow10_micro[FSP_MAX - fsp]));
	return 0;
}
