/*
 * Internal: the lock interface's dispatch table. Each implementation embeds
 * bf_lock as its first member and fills in the operations.
 */
#ifndef BFILL_LOCK_IMPL_H
#define BFILL_LOCK_IMPL_H

#include "bfill/lock.h"

typedef struct bf_lock_ops {
	int (*acquire)(bf_lock *lk, const char *name, bf_fence_token *token, bf_err *err);
	int (*check)(bf_lock *lk, bf_err *err);
	int (*release)(bf_lock *lk, bf_err *err);
	void (*cancel)(bf_lock *lk);
	void (*revoke_stale)(bf_lock *lk, int64_t lease_id); /* may be NULL */
	void (*destroy)(bf_lock *lk);
} bf_lock_ops;

struct bf_lock {
	const bf_lock_ops *ops;
	bool distributed;
};

/* In-process implementation (lock/local.c). */
int bf_lock_local_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err);
/* etcd implementation (lock/etcd_lock.c). */
int bf_lock_etcd_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err);

#endif
