/*
 * Lock interface dispatch: picks the in-process or the etcd implementation.
 */
#include "lock/lock_impl.h"

#include <stddef.h>
#include <string.h>

int bf_lock_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err)
{
	*out = NULL;
	if (!opts)
		return bf_errf(err, BF_EINVAL, "lock: no options");
	if (opts->endpoints && *opts->endpoints)
		return bf_lock_etcd_create(opts, out, err);
	return bf_lock_local_create(opts, out, err);
}

void bf_lock_destroy(bf_lock *lk)
{
	if (lk)
		lk->ops->destroy(lk);
}

int bf_lock_acquire(bf_lock *lk, const char *name, bf_fence_token *token, bf_err *err)
{
	if (!name || !*name)
		return bf_errf(err, BF_EINVAL, "lock: empty lock name");
	memset(token, 0, sizeof(*token));
	return lk->ops->acquire(lk, name, token, err);
}

void bf_lock_revoke_stale(bf_lock *lk, int64_t lease_id)
{
	if (lk->ops->revoke_stale && lease_id)
		lk->ops->revoke_stale(lk, lease_id);
}

int bf_lock_check(bf_lock *lk, bf_err *err) { return lk->ops->check(lk, err); }
int bf_lock_release(bf_lock *lk, bf_err *err) { return lk->ops->release(lk, err); }
void bf_lock_cancel(bf_lock *lk) { lk->ops->cancel(lk); }
bool bf_lock_is_distributed(const bf_lock *lk) { return lk->distributed; }
