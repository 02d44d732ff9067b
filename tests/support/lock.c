/*
 * Helpers for the etcd lock's tests (see lock.h).
 */
#include "tests/support/lock.h"
#include "tests/support/etcd.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

void t_record_wait(const char *reason, void *arg)
{
	t_waits *w = arg;
	if (reason) {
		w->retries++;
		snprintf(w->last, sizeof(w->last), "%s", reason);
	} else {
		w->held++;
	}
}

bf_lock *t_lock_etcd(const char *endpoints, int ttl_s, int timeout_s, t_waits *w)
{
	bf_lock_opts o = {
		.endpoints = endpoints,
		.etcd_security = t_etcd_security_of(endpoints),
		.ttl_s = ttl_s,
		.timeout_s = timeout_s,
		.call_timeout_ms = 1000,
		.on_wait = w ? t_record_wait : NULL,
		.on_wait_arg = w,
	};
	bf_lock *lk = NULL;
	bf_err err;

	cr_assert_eq(bf_lock_create(&o, &lk, &err), 0, "%s", bf_err_text(&err));
	cr_assert(bf_lock_is_distributed(lk));
	return lk;
}

bf_etcd_range_result t_lock_contenders(const char *endpoints, const char *lock_key)
{
	bf_etcd *c = NULL;
	bf_etcd_range_result res;
	char pfx[256], *end = NULL;
	bf_err err;

	snprintf(pfx, sizeof(pfx), "%s/", lock_key);
	bf_etcd_opts eo = { .security = t_etcd_security_of(endpoints) };

	cr_assert_eq(bf_etcd_create(endpoints, &eo, &c, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_etcd_prefix_end(pfx, &end, &err), 0);
	bf_etcd_range_req r = { .key = pfx, .range_end = end, .sort_order = BF_ETCD_SORT_ASCEND,
				.sort_target = BF_ETCD_BY_CREATE };
	cr_assert_eq(bf_etcd_range(c, &r, &res, &err), 0, "%s", bf_err_text(&err));
	free(end);
	bf_etcd_destroy(c);
	return res;
}

void t_lock_take_turns(const char *endpoints, const char *name)
{
	bf_lock *lk = t_lock_etcd(endpoints, 3, 5, NULL);
	bf_lock *other = t_lock_etcd(endpoints, 3, 1, NULL);
	bf_fence_token token = { 0 }, second = { 0 };
	bf_err err;

	cr_assert_eq(bf_lock_acquire(lk, name, &token, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(token.revision, 0);
	cr_assert_eq(bf_lock_check(lk, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_lock_acquire(other, name, &second, &err), BF_ETIMEDOUT,
		     "held is held: %s", bf_err_text(&err));
	cr_assert_eq(bf_lock_release(lk, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(bf_lock_acquire(other, name, &second, &err), 0, "%s", bf_err_text(&err));
	cr_assert_gt(second.revision, token.revision);
	cr_assert_eq(bf_lock_release(other, &err), 0, "%s", bf_err_text(&err));
	bf_lock_destroy(other);
	bf_lock_destroy(lk);
}
