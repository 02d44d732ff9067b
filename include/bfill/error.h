/*
 * bfill error convention, shared by every module.
 *
 * Every fallible function returns int: 0 on success, a negative BF_E* code or
 * a negative errno on failure. Details that a caller needs in order to act
 * (which key, which file, which endpoint) go into a caller-provided bf_err
 * buffer; the pointer may be NULL when the caller only wants the code.
 */
#ifndef BFILL_ERROR_H
#define BFILL_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* bfill's own codes live below -1000 so they never collide with -errno. */
enum {
	BF_OK = 0,
	BF_EINVAL = -1001,     /* bad argument or usage */
	BF_ECORRUPT = -1002,   /* malformed bytes: a key, a row, a reply */
	BF_ENOTFOUND = -1003,  /* no such table, index, job, key */
	BF_EEXIST = -1004,     /* already exists */
	BF_ELOCKED = -1005,    /* the store is open in another process */
	BF_ENOTSTORE = -1006,  /* the directory is not a bfill store */
	BF_EIO = -1007,        /* storage engine I/O failure */
	BF_ENOSPC = -1008,     /* not enough disk space */
	BF_EDUP = -1009,       /* duplicate entry for a unique index */
	BF_ECANCELLED = -1010, /* work stopped because another part failed */
	BF_ETIMEDOUT = -1011,  /* deadline passed; the outcome may be unknown */
	BF_EUNAVAIL = -1012,   /* remote service unavailable (retryable) */
	BF_ELOCKLOST = -1013,  /* the distributed lock or its session is gone */
	BF_ESESSION = -1014,   /* no live lock session could be created */
	BF_EPROTO = -1015,     /* the peer broke the protocol */
	BF_EFAULT = -1016,     /* a failure injected through a fault seam */
	BF_ESTATE = -1017,     /* the object is in the wrong state for this */
	BF_ENOMEM = -1018,     /* allocation failed or a memory budget is too small */
	BF_ERANGE = -1019,     /* a value does not fit */
	BF_EUNKNOWN = -1020,   /* a write reached the server but its outcome is unknown */
	BF_EFENCED = -1021,    /* a stale fence token: a newer lock holder has ingested */
};

#define BF_ERR_MSG_MAX 512

/* A per-call error buffer: the code plus one human-readable line. */
typedef struct bf_err {
	int code;
	char msg[BF_ERR_MSG_MAX];
} bf_err;

/* Static text for a code (bfill's or -errno). Never NULL; not to be freed. */
const char *bf_strerror(int code);

/* Clears err (NULL is allowed). */
void bf_err_clear(bf_err *err);

/*
 * Records code and a printf-style message in err (NULL allowed) and returns
 * code, so that `return bf_errf(err, BF_EINVAL, "...")` reads naturally.
 */
int bf_errf(bf_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Prepends context ("scan task 3: ") to the message already in err and
 * returns err->code (or code when err is NULL).
 */
int bf_err_prefix(bf_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The message if set, else bf_strerror(err->code). Never NULL. */
const char *bf_err_text(const bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
