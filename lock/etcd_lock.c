/*
 * etcd lock placeholder until the etcd client lands: refuses clearly.
 */
#include "lock/lock_impl.h"

int bf_lock_etcd_create(const bf_lock_opts *opts, bf_lock **out, bf_err *err)
{
	(void)opts;
	*out = NULL;
	return bf_errf(err, BF_EINVAL, "this build of bfill has no etcd lock support");
}
