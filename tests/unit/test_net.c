/* Unit tests of src/net: connection limits, the worker pool and loop posting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "net/limits.h"
#include "net/loop.h"

static struct sockaddr_storage
addr4(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &s4->sin_addr);
	return ss;
}

static struct sockaddr_storage
addr6(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &s6->sin6_addr);
	return ss;
}

static void
test_limits_per_ip(void **state)
{
	struct net_limits *l = net_limits_new();
	struct net_limit_slot a, b, c, d;
	struct sockaddr_storage x = addr4("192.0.2.1"), y = addr4("192.0.2.2");

	net_limits_set(l, 100, 2);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&x, &a), NET_LIMIT_OK);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&x, &b), NET_LIMIT_OK);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&x, &c), NET_LIMIT_PER_IP);
	assert_false(c.held);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&y, &d), NET_LIMIT_OK);
	assert_int_equal(net_limits_total(l), 3);
	net_limits_release(l, &c);   /* not held: no effect */
	net_limits_release(l, &a);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&x, &c), NET_LIMIT_OK);
	net_limits_release(l, &b);
	net_limits_release(l, &c);
	net_limits_release(l, &d);
	assert_int_equal(net_limits_total(l), 0);
	net_limits_free(&l);
	assert_null(l);
}

static void
test_limits_ipv6_prefix_and_total(void **state)
{
	struct net_limits *l = net_limits_new();
	struct net_limit_slot s[4];
	struct sockaddr_storage p1 = addr6("2001:db8:1:2::1"), p2 = addr6("2001:db8:1:2::ffff"),
	    other = addr6("2001:db8:1:3::1"), mapped = addr6("::ffff:192.0.2.9"),
	    v4 = addr4("192.0.2.9");

	net_limits_set(l, 3, 1);
	/* Two addresses in one /64 count as one client. */
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&p1, &s[0]), NET_LIMIT_OK);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&p2, &s[1]), NET_LIMIT_PER_IP);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&other, &s[1]), NET_LIMIT_OK);
	/* A v4-mapped address is the IPv4 client. */
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&mapped, &s[2]), NET_LIMIT_OK);
	net_limits_set(l, 4, 1);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&v4, &s[3]), NET_LIMIT_PER_IP);
	net_limits_set(l, 3, 10);
	assert_int_equal(net_limits_acquire(l, (struct sockaddr *)&v4, &s[3]), NET_LIMIT_TOTAL);
	net_limits_release(l, &s[0]);
	net_limits_release(l, &s[1]);
	net_limits_release(l, &s[2]);
	assert_int_equal(net_limits_total(l), 0);
	net_limits_free(&l);
}

struct job_state {
	struct net_loop *loop;
	int worked, done, total;
};

static void
job_work(void *arg)
{
	struct job_state *js = arg;

	__atomic_add_fetch(&js->worked, 1, __ATOMIC_SEQ_CST);
}

static void
job_done(void *arg)
{
	struct job_state *js = arg;

	/* Runs on the loop's thread, so no atomics needed here. */
	if (++js->done == js->total)
		net_loop_stop(js->loop);
}

static void
timer_cb(void *arg)
{
	struct job_state *js = arg;
	int i;

	for (i = 0; i < js->total; i++)
		net_loop_submit(js->loop, job_work, job_done, js);
}

static void
test_workers_and_timer(void **state)
{
	struct net_workers *w = net_workers_new(3);
	struct job_state js = { NULL, 0, 0, 200 };
	struct net_timer *t;
	uint64_t start = net_now_ms();

	js.loop = net_loop_new(0, w);
	t = net_timer_new(js.loop, timer_cb, &js);
	net_timer_start(t, 20);
	net_loop_run(js.loop);
	assert_int_equal(js.done, 200);
	assert_int_equal(js.worked, 200);
	assert_true(net_now_ms() - start >= 20);
	net_timer_free(&t);
	assert_null(t);
	net_workers_free(&w);
	net_loop_free(&js.loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_per_ip),
		cmocka_unit_test(test_limits_ipv6_prefix_and_total),
		cmocka_unit_test(test_workers_and_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
