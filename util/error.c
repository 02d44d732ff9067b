/*
 * bf_strerror and the bf_err buffer helpers. Depends on libc only.
 */
#include "bfill/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *bf_strerror(int code)
{
	switch (code) {
	case BF_OK: return "success";
	case BF_EINVAL: return "invalid argument";
	case BF_ECORRUPT: return "malformed data";
	case BF_ENOTFOUND: return "not found";
	case BF_EEXIST: return "already exists";
	case BF_ELOCKED: return "store is locked by another process";
	case BF_ENOTSTORE: return "not a bfill store";
	case BF_EIO: return "storage I/O error";
	case BF_ENOSPC: return "not enough disk space";
	case BF_EDUP: return "duplicate entry";
	case BF_ECANCELLED: return "cancelled";
	case BF_ETIMEDOUT: return "deadline exceeded (outcome unknown)";
	case BF_EUNAVAIL: return "service unavailable";
	case BF_ELOCKLOST: return "distributed lock lost";
	case BF_ESESSION: return "no live lock session";
	case BF_EPROTO: return "protocol error";
	case BF_EFAULT: return "injected fault";
	case BF_ESTATE: return "wrong state";
	case BF_ENOMEM: return "out of memory";
	case BF_ERANGE: return "value out of range";
	case BF_EUNKNOWN: return "outcome unknown";
	case BF_EFENCED: return "refused: stale fence token";
	default: break;
	}
	if (code < 0 && code > -1000)
		return strerror(-code);
	return "unknown error";
}

void bf_err_clear(bf_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

int bf_errf(bf_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int bf_err_prefix(bf_err *err, int code, const char *fmt, ...)
{
	char head[BF_ERR_MSG_MAX];
	char old[BF_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return code;
	if (err->code == 0)
		err->code = code;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	if (old[0] == '\0')
		snprintf(old, sizeof(old), "%s", bf_strerror(err->code));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", head, old);
	return err->code;
}

const char *bf_err_text(const bf_err *err)
{
	if (!err)
		return "";
	if (err->msg[0])
		return err->msg;
	return bf_strerror(err->code);
}
