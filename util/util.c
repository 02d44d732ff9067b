/*
 * Internal helpers: clocks, file-system chores, size parsing, UUIDs.
 */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

int64_t bf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t bf_now_ms(void) { return bf_now_ns() / 1000000; }

int64_t bf_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bf_sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int bf_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int bf_mkdirs(const char *path, bf_err *err)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return bf_errf(err, BF_EINVAL, "bad directory path '%s'", path);
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return bf_errf(err, -errno, "mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return bf_errf(err, -errno, "mkdir %s: %s", tmp, strerror(errno));
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(p) && errno != ENOENT ? -errno : 0;
	return unlink(p) && errno != ENOENT ? -errno : 0;
}

int bf_rmtree(const char *path, bf_err *err)
{
	struct stat sb;
	int rc;

	if (lstat(path, &sb))
		return errno == ENOENT ? 0 : bf_errf(err, -errno, "%s: %s", path, strerror(errno));
	rc = nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rc)
		return bf_errf(err, rc < 0 ? rc : BF_EIO, "removing %s failed", path);
	return 0;
}

int bf_fs_avail(const char *path, uint64_t *bytes, bf_err *err)
{
	struct statvfs vfs;
	if (statvfs(path, &vfs))
		return bf_errf(err, -errno, "statvfs %s: %s", path, strerror(errno));
	*bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

static __thread uint64_t du_total;

static int du_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)p;
	(void)f;
	if (flag == FTW_F && S_ISREG(sb->st_mode))
		du_total += (uint64_t)sb->st_size;
	return 0;
}

uint64_t bf_du(const char *path)
{
	du_total = 0;
	nftw(path, du_entry, 16, FTW_PHYS);
	return du_total;
}

void bf_dirname(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(out, n, ".");
		return;
	}
	if (slash == path) {
		snprintf(out, n, "/");
		return;
	}
	snprintf(out, n, "%.*s", (int)(slash - path), path);
}

int bf_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return BF_EINVAL;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return BF_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > INT64_MAX)
		return BF_EINVAL;
	*out = v;
	return 0;
}

int bf_parse_i64(const char *s, int64_t *out)
{
	uint64_t v;
	bool neg = s && *s == '-';
	if (bf_parse_u64(neg ? s + 1 : s, &v))
		return BF_EINVAL;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int bf_parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = s ? strlen(s) : 0;
	uint64_t mult = 1, v;

	if (n == 0 || n >= sizeof(num))
		return BF_EINVAL;
	memcpy(num, s, n + 1);
	char last = num[n - 1];
	if (last == 'b' || last == 'B') {
		num[--n] = '\0';
		if (n == 0)
			return BF_EINVAL;
		last = num[n - 1];
		if (last == 'i' || last == 'I') { /* "MiB" */
			num[--n] = '\0';
			if (n == 0)
				return BF_EINVAL;
			last = num[n - 1];
		}
	}
	switch (last) {
	case 'k': case 'K': mult = 1ULL << 10; break;
	case 'm': case 'M': mult = 1ULL << 20; break;
	case 'g': case 'G': mult = 1ULL << 30; break;
	case 't': case 'T': mult = 1ULL << 40; break;
	default: break;
	}
	if (mult != 1)
		num[--n] = '\0';
	if (bf_parse_u64(num, &v))
		return BF_EINVAL;
	if (v && mult > UINT64_MAX / v)
		return BF_ERANGE;
	*out = v * mult;
	return 0;
}

char *bf_printable(const void *s, size_t n, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s;
	size_t out = 0, limit = cap - 4; /* keeps room for "..." and the NUL */

	for (size_t i = 0; i < n; i++) {
		bool plain = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\';
		size_t need = plain ? 1 : p[i] == '\\' ? 2 : 4;
		if (out + need > limit) {
			memcpy(buf + out, "...", 3);
			out += 3;
			break;
		}
		if (plain) {
			buf[out++] = (char)p[i];
		} else if (p[i] == '\\') {
			buf[out++] = '\\';
			buf[out++] = '\\';
		} else {
			buf[out++] = '\\';
			buf[out++] = 'x';
			buf[out++] = hex[p[i] >> 4];
			buf[out++] = hex[p[i] & 15];
		}
	}
	buf[out] = '\0';
	return buf;
}

void *bf_memdup(const void *p, size_t n)
{
	void *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

char *bf_fmt_bytes(uint64_t v, char *buf, size_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	int u = 0;
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%" PRIu64 " B", v);
	else
		snprintf(buf, n, "%.1f %s", d, unit[u]);
	return buf;
}

int bf_uuid_bytes(uint8_t b[16], bf_err *err)
{
	if (getrandom(b, 16, 0) != 16)
		return bf_errf(err, -errno, "no random bytes for a UUID: %s", strerror(errno));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}

int bf_uuid_new(char out[BF_UUID_LEN + 1], bf_err *err)
{
	uint8_t b[16];
	int rc = bf_uuid_bytes(b, err);
	if (rc)
		return rc;
	snprintf(out, BF_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

bool bf_uuid_well_formed(const char *v, size_t n)
{
	if (n != BF_UUID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? v[i] != '-' : !((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			return false;
	}
	return true;
}

void bf_hex_encode(const void *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = b;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				    : -1;
}

long bf_hex_decode(const char *s, uint8_t *out, size_t cap)
{
	size_t len = strlen(s);

	if (len % 2 || len / 2 > cap)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(len / 2);
}
