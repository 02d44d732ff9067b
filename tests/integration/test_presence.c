/*
 * A job's presence in a real etcd (cluster/presence.c): announced while
 * it lasts and gone at once when it ends, announced again after etcd was
 * away for longer than the lease, and read as "cannot tell" while etcd is down.
 */
#include "bfill/etcd.h"
#include "bfill/presence.h"
#include "tests/support/etcd.h"
#include "util/util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const root = "/bfill/cluster/pr/";

static void down(void)
{
	t_etcd_stop_all();
}

TestSuite(presence, .fini = down, .timeout = 90);

/* A one-member etcd and a client of it (1 s calls). */
static bf_etcd *start(t_etcd **e)
{
	if (!t_etcd_available())
		cr_skip_test("etcd/etcdctl not installed (Debian: etcd-server etcd-client)");
	*e = t_etcd_start(1);
	return t_etcd_client(*e, 1000);
}

/* Waits up to ms for the check to answer want. */
static int wait_for(bf_etcd *c, int64_t job, int want, int ms)
{
	int64_t deadline = bf_now_ms() + ms;
	int got;
	while ((got = bf_presence_check(c, root, job, NULL, 0, NULL)) != want && bf_now_ms() < deadline)
		bf_sleep_ms(100);
	return got;
}

Test(presence, announced_while_it_lasts_and_gone_when_it_ends)
{
	t_etcd *e = NULL;
	bf_etcd *c = start(&e);
	bf_presence *p = NULL;
	char who[128], want[64];
	bf_err err;

	cr_assert_eq(bf_presence_check(c, root, 7, who, sizeof(who), &err), 0, "nobody yet");
	cr_assert_eq(bf_presence_begin(c, root, 7, 2, &p, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(wait_for(c, 7, 1, 5000), 1);
	cr_assert_eq(bf_presence_check(c, root, 7, who, sizeof(who), &err), 1);
	snprintf(want, sizeof(want), "pid %ld", (long)getpid());
	cr_assert(strstr(who, want), "'%s' names this process", who);
	cr_assert_eq(bf_presence_check(c, root, 8, NULL, 0, &err), 0, "only job 7");
	/* Kept alive well past its 2 s lease. */
	bf_sleep_ms(4500);
	cr_assert_eq(bf_presence_check(c, root, 7, NULL, 0, &err), 1);
	bf_presence_end(p);
	cr_assert_eq(bf_presence_check(c, root, 7, NULL, 0, &err), 0, "revoked at the end");
	bf_etcd_destroy(c);
}

Test(presence, put_back_after_etcd_was_away_longer_than_the_lease)
{
	t_etcd *e = NULL;
	bf_etcd *c = start(&e);
	bf_presence *p = NULL;
	bf_err err;

	cr_assert_eq(bf_presence_begin(c, root, 9, 2, &p, &err), 0, "%s", bf_err_text(&err));
	cr_assert_eq(wait_for(c, 9, 1, 5000), 1);
	t_etcd_kill(e, 0);
	cr_assert_lt(bf_presence_check(c, root, 9, NULL, 0, &err), 0, "etcd down: cannot tell");
	/* Down for longer than the lease: whether etcd, back, still has the
	 * old lease (it renews leases when it starts) or lets it end and the
	 * announcer puts the key back under a new one, the job is announced
	 * again and stays so. */
	bf_sleep_ms(5000);
	t_etcd_restart(e, 0);
	cr_assert_eq(wait_for(c, 9, 1, 15000), 1, "announced again");
	bf_sleep_ms(3000);
	cr_assert_eq(bf_presence_check(c, root, 9, NULL, 0, &err), 1, "and kept");
	bf_presence_end(p);
	cr_assert_eq(bf_presence_check(c, root, 9, NULL, 0, &err), 0);
	bf_etcd_destroy(c);
}
