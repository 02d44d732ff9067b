/*
 * endpoints: the --etcd list check, which must refuse every value the etcd
 * client would take only to fail later (or to dial another port).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "bfill/error.h"
#include "util/endpoints.h"

Test(endpoints, accepts_host_port_lists)
{
	static const char *const good[] = {
		"127.0.0.1:2379",
		"localhost:1",
		"etcd-0.etcd_svc.local:65535",
		"http://10.0.0.1:2379",
		"a:1,b:2,c:3",
		"http://a:2379,b:2380",
		"[::1]:2379",
		"http://[fe80::1:2]:2379",
		"[::ffff:10.0.0.1]:2379",
		"https://10.0.0.1:2379",
		"https://a:1,b:2",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		bf_err err = { 0 };
		cr_assert_eq(bf_endpoints_check(good[i], &err), 0, "%s: %s", good[i], bf_err_text(&err));
	}
}

Test(endpoints, refuses_with_the_element_named)
{
	static const struct { const char *list, *needle; } bad[] = {
		{ "garbage", "expected host:port" },
		{ "http://a:1,https://b:2", "mixes http:// and https://" },
		{ "https://a:1,b:2,http://c:3", "mixes http:// and https://" },
		{ "https://:2379", "host is empty" },
		{ "host:99999", "1..65535" },
		{ "host:65536", "1..65535" },
		{ "host:0", "1..65535" },
		{ "host:", "1..65535" },
		{ "host:+1", "1..65535" },
		{ "host:23 79", "1..65535" },
		{ "host:2379x", "1..65535" },
		{ ":2379", "host is empty" },
		{ "http://:2379", "host is empty" },
		{ "", "empty" },
		{ ",", "empty element" },
		{ "a:1,", "empty element" },
		{ ",a:1", "empty element" },
		{ "a:1,,b:2", "empty element" },
		{ "::1:2379", "brackets" },
		{ "[::1]", "[ipv6]:port" },
		{ "[]:2379", "not a host" },
		{ "[zz::1]:2379", "not a host" },
		{ "ho st:2379", "not a host" },
		{ "unix:///tmp/etcd.sock", "only http:// and https://" },
		{ "grpc://a:1", "only http:// and https://" },
		{ "http://a:1/", "1..65535" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bf_err err = { 0 };
		int rc = bf_endpoints_check(bad[i].list, &err);
		cr_assert_eq(rc, BF_EINVAL, "'%s' was accepted (rc %d)", bad[i].list, rc);
		cr_assert_not_null(strstr(err.msg, bad[i].needle), "'%s': '%s' not in: %s", bad[i].list,
				   bad[i].needle, err.msg);
	}
	bf_err err = { 0 };
	cr_assert_eq(bf_endpoints_check(NULL, &err), BF_EINVAL);
	cr_assert_eq(bf_endpoints_check("a:1,b:99999", &err), BF_EINVAL);
	cr_assert_not_null(strstr(err.msg, "'b:99999'"), "the bad element, not the list: %s", err.msg);
}

Test(endpoints, the_scheme_of_a_list)
{
	cr_assert_eq(bf_endpoints_scheme_of("a:1,b:2"), BF_SCHEME_NONE);
	cr_assert_eq(bf_endpoints_scheme_of("a:1,http://b:2"), BF_SCHEME_HTTP);
	cr_assert_eq(bf_endpoints_scheme_of("https://a:1,b:2"), BF_SCHEME_HTTPS);
}
