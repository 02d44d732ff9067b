/*
 * A server that never answers (see hang.h). One thread polls the listener
 * and every connection: a new connection gets an empty SETTINGS frame and
 * an ACK of the client's, which is all gRPC waits for before it sends;
 * whatever clients send after that is read and dropped.
 */
#include "tests/support/hang.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64

struct t_hang {
	int listen_fd;
	int stop_pipe[2]; /* written to stop the thread */
	pthread_t thread;
	char endpoint[32];
};

/* HTTP/2 frame headers (RFC 7540 §4.1, §6.5): an empty SETTINGS, then a
 * SETTINGS with the ACK flag. */
static const unsigned char server_preface[] = {
	0, 0, 0, 0x4, 0x0, 0, 0, 0, 0,
	0, 0, 0, 0x4, 0x1, 0, 0, 0, 0,
};

static void *serve(void *arg)
{
	t_hang *h = arg;
	struct pollfd fds[2 + MAX_CONNS];
	nfds_t n = 2;
	char sink[4096];

	fds[0] = (struct pollfd){ .fd = h->stop_pipe[0], .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = h->listen_fd, .events = POLLIN };
	while (poll(fds, n, -1) >= 0 || errno == EINTR) {
		if (fds[0].revents)
			break;
		if ((fds[1].revents & POLLIN) && n < 2 + MAX_CONNS) {
			int c = accept(h->listen_fd, NULL, NULL);
			if (c >= 0 && write(c, server_preface, sizeof(server_preface)) >= 0)
				fds[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
			else if (c >= 0)
				close(c);
		}
		for (nfds_t i = 2; i < n; i++) {
			if (!fds[i].revents)
				continue;
			if (read(fds[i].fd, sink, sizeof(sink)) <= 0) {
				close(fds[i].fd);
				fds[i--] = fds[--n];
			}
		}
	}
	for (nfds_t i = 2; i < n; i++)
		close(fds[i].fd);
	return NULL;
}

t_hang *t_hang_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	t_hang *h = calloc(1, sizeof(*h));

	cr_assert_not_null(h);
	h->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(h->listen_fd >= 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(h->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s",
		     strerror(errno));
	cr_assert_eq(getsockname(h->listen_fd, (struct sockaddr *)&sa, &len), 0);
	cr_assert_eq(listen(h->listen_fd, 64), 0, "listen: %s", strerror(errno));
	cr_assert_eq(pipe(h->stop_pipe), 0);
	snprintf(h->endpoint, sizeof(h->endpoint), "127.0.0.1:%d", ntohs(sa.sin_port));
	cr_assert_eq(pthread_create(&h->thread, NULL, serve, h), 0);
	return h;
}

const char *t_hang_endpoint(const t_hang *h)
{
	return h->endpoint;
}

void t_hang_stop(t_hang *h)
{
	if (!h)
		return;
	if (write(h->stop_pipe[1], "x", 1) != 1)
		cr_log_warn("hang: cannot stop the server thread");
	pthread_join(h->thread, NULL);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
	close(h->listen_fd);
	free(h);
}
