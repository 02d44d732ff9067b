/*
 * Channel pools (rpc.h): the channels of one client, their settings, and
 * the thread that keeps them connecting between calls.
 *
 * Why a thread: gRPC core moves a connection attempt forward only while
 * some thread polls a completion queue interested in that channel. A
 * fail-fast call on a channel in TRANSIENT_FAILURE fails at once, so with
 * calls alone the reconnect that the backoff timer starts is never driven
 * (it ends in "tcp handshaker shutdown"), and a server that was down stays
 * unusable for this client however long it has been back. A connectivity
 * watch puts this thread's queue among the interested parties, and asking
 * for the state with try_to_connect takes an idle channel out of idleness.
 *
 * Depends on: gRPC core.
 */
#include "rpc/rpc_impl.h"

#include <grpc/grpc_security.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lifetime of one connectivity watch; also bounds how long destroying a
 * pool can wait for its connection thread. */
#define CONN_WATCH_MS 250
#define DEFAULT_MAX_RECV ((size_t)4 << 20)

struct bf_rpc_pool {
	char *label;    /* owned */
	size_t max_recv;
	grpc_channel_credentials *creds; /* owned */
	bool tls;
	grpc_completion_queue *conn_cq;  /* owned; drained by conn_thread only */
	pthread_t conn_thread;
	bool conn_thread_started;
	pthread_mutex_t mu;       /* the channel list, stopping, arming watches */
	bool stopping;            /* set before the channels are destroyed */
	bf_rpc_channel **chans;   /* owned array of owned channels */
	size_t n_chans, cap_chans;
};

/* Arms a watch on ch; the caller holds p->mu. The tag is the channel. */
static void conn_watch(bf_rpc_pool *p, bf_rpc_channel *ch)
{
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch->channel, 1);

	grpc_channel_watch_connectivity_state(ch->channel, st, bf_rpc_after(CONN_WATCH_MS),
					      p->conn_cq, ch);
}

static void *conn_thread_main(void *arg)
{
	bf_rpc_pool *p = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(p->conn_cq,
							   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		/* A state change or the end of the watch's time: watch again,
		 * unless the channels are about to go (then the tag may point
		 * at a channel being destroyed, so it is not touched). */
		pthread_mutex_lock(&p->mu);
		if (!p->stopping)
			conn_watch(p, ev.tag);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

int bf_rpc_pool_create(const bf_rpc_pool_opts *opts, bf_rpc_pool **out, bf_err *err)
{
	bf_rpc_pool *p = calloc(1, sizeof(*p));
	const char *label = opts && opts->label ? opts->label : "rpc";
	int rc = 0;

	*out = NULL;
	grpc_init();
	if (!p || !(p->label = strdup(label))) {
		rc = bf_errf(err, BF_ENOMEM, "%s: out of memory", label);
		goto out;
	}
	p->max_recv = opts && opts->max_recv_bytes ? opts->max_recv_bytes : DEFAULT_MAX_RECV;
	pthread_mutex_init(&p->mu, NULL);
	p->tls = bf_tls_enabled(opts ? opts->tls : NULL);
	rc = bf_rpc_tls_channel_creds(opts ? opts->tls : NULL, label, opts ? opts->tls_flags : NULL,
				      &p->creds, err);
	if (rc)
		goto out;
	p->conn_cq = grpc_completion_queue_create_for_next(NULL);
	if (pthread_create(&p->conn_thread, NULL, conn_thread_main, p) != 0) {
		rc = bf_errf(err, BF_ENOMEM, "%s: cannot start the connection thread", label);
		goto out;
	}
	p->conn_thread_started = true;
	*out = p;
	p = NULL;
out:
	if (p)
		bf_rpc_pool_destroy(p); /* also balances grpc_init */
	else if (rc)
		grpc_shutdown(); /* the pool was never allocated */
	return rc;
}

static void channel_free(bf_rpc_channel *ch)
{
	if (!ch)
		return;
	if (ch->channel)
		grpc_channel_destroy(ch->channel);
	free(ch->target);
	free(ch->name);
	free(ch);
}

int bf_rpc_pool_add(bf_rpc_pool *p, const char *target, bf_rpc_channel **out, bf_err *err)
{
	bf_rpc_channel *ch = calloc(1, sizeof(*ch));
	int rc = 0;

	/*
	 * Channel settings: gRPC itself refuses messages over our limit; no
	 * proxy from the environment for cluster-internal addresses; short
	 * reconnect backoff so a restarted server is used again within a
	 * second; yet a connection attempt gets a whole second (gRPC takes
	 * its minimum connect timeout from the minimum reconnect backoff):
	 * TCP's handshake and HTTP/2's SETTINGS take two round trips, which
	 * 100 ms does not cover beyond a LAN; a private subchannel pool so each client has its own
	 * connections, as separate processes would; no retries of gRPC's own,
	 * since only the caller knows whether a request may be sent twice.
	 */
	grpc_arg arg_list[] = {
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = p->max_recv > (size_t)INT32_MAX ? INT32_MAX : (int)p->max_recv },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_HTTP_PROXY, .value.integer = 0 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
		  .value.integer = 100 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
		  .value.integer = 1000 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
		  .value.integer = 1000 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
		  .value.integer = 1 },
		{ .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0 },
	};
	grpc_channel_args args = { .num_args = sizeof(arg_list) / sizeof(arg_list[0]),
				   .args = arg_list };

	*out = NULL;
	if (!ch || !(ch->target = strdup(target)) ||
	    asprintf(&ch->name, "%s %s", p->label, target) < 0) {
		if (ch)
			ch->name = NULL;
		rc = bf_errf(err, BF_ENOMEM, "%s: out of memory", p->label);
		goto out;
	}
	ch->tls = p->tls;
	ch->channel = grpc_channel_create(target, p->creds, &args);
	if (!ch->channel) {
		rc = bf_errf(err, BF_EINVAL, "%s: cannot create a channel", ch->name);
		goto out;
	}
	pthread_mutex_lock(&p->mu);
	if (p->n_chans == p->cap_chans) {
		size_t cap = p->cap_chans ? 2 * p->cap_chans : 4;
		bf_rpc_channel **grown = realloc(p->chans, cap * sizeof(*grown));
		if (!grown) {
			pthread_mutex_unlock(&p->mu);
			rc = bf_errf(err, BF_ENOMEM, "%s: out of memory", p->label);
			goto out;
		}
		p->chans = grown;
		p->cap_chans = cap;
	}
	p->chans[p->n_chans++] = ch;
	conn_watch(p, ch);
	pthread_mutex_unlock(&p->mu);
	*out = ch;
	ch = NULL;
out:
	channel_free(ch);
	return rc;
}

void bf_rpc_pool_destroy(bf_rpc_pool *p)
{
	if (!p)
		return;
	if (p->conn_cq) {
		/* No new watch from here on; destroying a channel ends its watch. */
		pthread_mutex_lock(&p->mu);
		p->stopping = true;
		pthread_mutex_unlock(&p->mu);
		for (size_t i = 0; i < p->n_chans; i++) {
			grpc_channel_destroy(p->chans[i]->channel);
			p->chans[i]->channel = NULL;
		}
		grpc_completion_queue_shutdown(p->conn_cq);
		if (p->conn_thread_started)
			pthread_join(p->conn_thread, NULL);
		else
			while (grpc_completion_queue_next(p->conn_cq,
							  gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
				       .type != GRPC_QUEUE_SHUTDOWN)
				;
		grpc_completion_queue_destroy(p->conn_cq);
		pthread_mutex_destroy(&p->mu);
	}
	for (size_t i = 0; i < p->n_chans; i++)
		channel_free(p->chans[i]);
	if (p->creds)
		grpc_channel_credentials_release(p->creds);
	free(p->chans);
	free(p->label);
	free(p);
	grpc_shutdown();
}

const char *bf_rpc_channel_target(const bf_rpc_channel *ch)
{
	return ch->target;
}

const char *bf_rpc_channel_name(const bf_rpc_channel *ch)
{
	return ch->name;
}
