/*
 * Streaming calls (rpc.h), bidi or client-streaming. A stream owns a
 * "next" completion queue that only its owning thread drives, so every
 * buffer handed to gRPC is touched by one thread only. Batches of four
 * kinds may be in flight at once, one of each: the initial metadata, a
 * send (message or half-close), a receive, and the final status.
 *
 * Depends on: gRPC core, util (clocks).
 */
#include "rpc/rpc_impl.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* Tags of the kinds of batch a stream has in flight (bit values). */
enum { OP_START = 1, OP_SEND = 2, OP_RECV = 4, OP_STATUS = 8, OP_INIT_MD = 16 };

struct bf_rpc_stream {
	bf_rpc_channel *ch; /* borrowed */
	const bf_rpc_method *m; /* borrowed */
	bool (*interrupted)(void *arg);
	void *interrupt_arg;
	grpc_completion_queue *cq; /* owned; driven only by the owning thread */
	grpc_call *call;           /* owned */
	grpc_metadata md[BF_RPC_MAX_MD];
	size_t n_md;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	bf_rpc_status final;       /* valid once status_known */
	grpc_byte_buffer *send_bb; /* owned until its send completes */
	grpc_byte_buffer *recv_bb; /* filled by a completed receive */
	unsigned pending;          /* OP_* batches in flight */
	bool got_init_md;
	bool have_msg;     /* a received message waits in recv_bb */
	bool ended;        /* the server closed its side or an op failed */
	bool status_known; /* OP_STATUS completed */
};

static int start_batch(bf_rpc_stream *s, grpc_op *ops, size_t n, unsigned tag)
{
	if (grpc_call_start_batch(s->call, ops, n, (void *)(uintptr_t)tag, NULL) != GRPC_CALL_OK)
		return BF_EPROTO;
	s->pending |= tag;
	return 0;
}

int bf_rpc_stream_open(bf_rpc_channel *ch, const bf_rpc_call *call, bf_rpc_stream **out,
		       bf_err *err)
{
	bf_rpc_stream *s = calloc(1, sizeof(*s));
	grpc_op ops[1];
	int rc = 0;

	*out = NULL;
	if (!s)
		return bf_errf(err, BF_ENOMEM, "%s %s: out of memory", ch->name, call->method->name);
	s->ch = ch;
	s->m = call->method;
	s->interrupted = call->interrupted;
	s->interrupt_arg = call->interrupt_arg;
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trail_md);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	if (bf_rpc_md_build(call, s->md, &s->n_md)) {
		rc = bf_errf(err, BF_EINVAL, "%s %s: more than %d metadata entries", ch->name,
			     s->m->name, BF_RPC_MAX_MD);
		goto out;
	}
	/* Without a deadline a stream lives as long as its owner wants; each
	 * exchange on it then has its own deadline instead. */
	s->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
					   grpc_slice_from_static_string(s->m->path), NULL,
					   call->deadline_ms > 0
						   ? bf_rpc_deadline(call->deadline_ms)
						   : gpr_inf_future(GPR_CLOCK_REALTIME),
					   NULL);
	if (!s->call) {
		rc = bf_errf(err, BF_ENOMEM, "%s %s: cannot start stream", ch->name, s->m->name);
		goto out;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = s->n_md;
	ops[0].data.send_initial_metadata.metadata = s->md;
	if (start_batch(s, ops, 1, OP_START))
		goto fail;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	if (start_batch(s, ops, 1, OP_STATUS))
		goto fail;
	goto out;
fail:
	rc = bf_errf(err, BF_EPROTO, "%s %s: cannot start stream", ch->name, s->m->name);
out:
	if (rc) {
		bf_rpc_stream_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void on_event(bf_rpc_stream *s, grpc_event ev)
{
	unsigned tag = (unsigned)(uintptr_t)ev.tag;

	s->pending &= ~tag;
	if (!ev.success)
		s->ended = true;
	switch (tag) {
	case OP_INIT_MD:
		s->got_init_md = true;
		break;
	case OP_SEND:
		if (s->send_bb)
			grpc_byte_buffer_destroy(s->send_bb);
		s->send_bb = NULL;
		break;
	case OP_RECV:
		s->got_init_md = true;
		if (s->recv_bb)
			s->have_msg = true;
		else
			s->ended = true; /* the server closed the stream */
		break;
	case OP_STATUS:
		s->final.code = (int)s->status;
		bf_rpc_slice_to_str(s->details, s->final.details, sizeof(s->final.details));
		bf_rpc_channel_judge(s->ch, &s->final);
		s->status_known = true;
		s->ended = true;
		break;
	default:
		break;
	}
}

/* Why an ended stream ended, as an error. */
static int end_error(bf_rpc_stream *s, bf_err *err)
{
	if (!s->status_known)
		return bf_errf(err, BF_EUNAVAIL, "%s %s: stream broke", s->ch->name, s->m->name);
	if (s->final.code == BF_RPC_OK)
		return bf_errf(err, BF_EUNAVAIL, "%s %s: stream closed by the server", s->ch->name,
			       s->m->name);
	return bf_rpc_status_err(s->ch, s->m, &s->final, err);
}

/* Nothing of `want` in flight, and once the stream ended, its status in. */
static bool settled(const bf_rpc_stream *s, unsigned want)
{
	return !(s->pending & want) && (!s->ended || s->status_known);
}

/*
 * gRPC core delivers the status only once the initial metadata has been
 * asked for: a caller that has not received yet asks for it here, when it
 * waits for the status or finds the stream ended under a send.
 */
static int ask_init_md(bf_rpc_stream *s)
{
	grpc_op op;

	if (s->got_init_md || (s->pending & (OP_RECV | OP_INIT_MD)))
		return 0;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_INITIAL_METADATA;
	op.data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
	return start_batch(s, &op, 1, OP_INIT_MD);
}

/*
 * Drives the completion queue until the `want` batches are done: 0 while
 * the stream runs, its end as an error once it ended, BF_ETIMEDOUT at the
 * deadline, BF_ECANCELLED when interrupted. Once the stream has ended
 * everything completes promptly, so the interrupt is no longer polled.
 */
static int drive(bf_rpc_stream *s, unsigned want, int64_t deadline_ms, bf_err *err)
{
	while (!settled(s, want)) {
		/* Ended under a send: its status tells why. */
		if (s->ended && !s->status_known && ask_init_md(s))
			break;
		if (!s->ended && s->interrupted && s->interrupted(s->interrupt_arg))
			return bf_errf(err, BF_ECANCELLED, "%s %s: cancelled", s->ch->name,
				       s->m->name);
		int64_t left = deadline_ms - bf_now_ms();
		if (left <= 0) {
			if (s->ended)
				break;
			return bf_errf(err, BF_ETIMEDOUT, "%s %s: no answer in time", s->ch->name,
				       s->m->name);
		}
		grpc_event ev = grpc_completion_queue_next(
			s->cq, bf_rpc_after(left < BF_RPC_POLL_SLICE_MS ? left : BF_RPC_POLL_SLICE_MS),
			NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			on_event(s, ev);
	}
	return s->ended ? end_error(s, err) : 0;
}

/*
 * Starts a send-side batch (a message in bb, or the half-close with bb
 * NULL) once the previous one is done: gRPC allows one in flight. bb is
 * the stream's from here on only when 0 is returned.
 */
static int start_send(bf_rpc_stream *s, grpc_op *op, grpc_byte_buffer *bb, int64_t deadline_ms,
		      bf_err *err)
{
	int rc = drive(s, OP_SEND | OP_START, deadline_ms, err);

	if (rc)
		return rc;
	/* Set only now: the previous send's completion frees send_bb. */
	s->send_bb = bb;
	if (start_batch(s, op, 1, OP_SEND)) {
		s->send_bb = NULL;
		return bf_errf(err, BF_EPROTO, "%s %s: cannot send", s->ch->name, s->m->name);
	}
	return 0;
}

/* Sends bb (NULL: memory was short), which it takes over. */
static int send_bb(bf_rpc_stream *s, grpc_byte_buffer *bb, int64_t deadline_ms, bf_err *err)
{
	grpc_op op;
	int rc;

	if (!bb)
		return bf_errf(err, BF_ENOMEM, "%s %s: out of memory", s->ch->name, s->m->name);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = bb;
	rc = start_send(s, &op, bb, deadline_ms, err);
	if (rc)
		grpc_byte_buffer_destroy(bb);
	return rc;
}

struct bf_rpc_msg {
	grpc_slice slice; /* one reference, ours */
};

bf_rpc_msg *bf_rpc_msg_make(const bf_rpc_buf *buf)
{
	bf_rpc_msg *m = malloc(sizeof(*m));

	if (m)
		m->slice = grpc_slice_from_copied_buffer((const char *)buf->data, buf->len);
	return m;
}

void bf_rpc_msg_free(bf_rpc_msg *m)
{
	if (!m)
		return;
	grpc_slice_unref(m->slice);
	free(m);
}

int bf_rpc_stream_send_msg(bf_rpc_stream *s, const bf_rpc_msg *m, int64_t deadline_ms,
			   bf_err *err)
{
	/* The byte buffer takes its own reference to the slice. */
	grpc_slice slice = m->slice;
	return send_bb(s, grpc_raw_byte_buffer_create(&slice, 1), deadline_ms, err);
}

int bf_rpc_stream_send(bf_rpc_stream *s, const bf_rpc_buf *msg, int64_t deadline_ms,
		       bf_err *err)
{
	return send_bb(s, bf_rpc_make_message(msg), deadline_ms, err);
}

int bf_rpc_stream_close_send(bf_rpc_stream *s, int64_t deadline_ms, bf_err *err)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	return start_send(s, &op, NULL, deadline_ms, err);
}

int bf_rpc_stream_recv(bf_rpc_stream *s, int64_t deadline_ms, bf_rpc_buf *msg, bf_err *err)
{
	grpc_op ops[2];
	size_t n = 0;
	int rc = 0;

	msg->data = NULL;
	msg->len = 0;
	if (!s->have_msg && !(s->pending & OP_RECV) && !s->ended) {
		memset(ops, 0, sizeof(ops));
		if (!s->got_init_md && !(s->pending & OP_INIT_MD)) {
			ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
			ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
			n++;
		}
		ops[n].op = GRPC_OP_RECV_MESSAGE;
		ops[n].data.recv_message.recv_message = &s->recv_bb;
		n++;
		if (start_batch(s, ops, n, OP_RECV))
			return bf_errf(err, BF_EPROTO, "%s %s: cannot receive", s->ch->name,
				       s->m->name);
	}
	if (!s->have_msg) {
		rc = drive(s, OP_RECV, deadline_ms, err);
		/* A message that came in before the stream ended is still
		 * delivered; the end shows on the next receive. */
		if (!s->have_msg)
			return rc ? rc
				  : bf_errf(err, BF_EUNAVAIL, "%s %s: stream ended", s->ch->name,
					    s->m->name);
		if (rc)
			bf_err_clear(err);
	}
	s->have_msg = false;
	if (bf_rpc_take_message(&s->recv_bb, msg))
		return bf_errf(err, BF_EPROTO, "%s %s: unreadable message", s->ch->name,
			       s->m->name);
	return 0;
}

int bf_rpc_stream_wait(bf_rpc_stream *s, int64_t deadline_ms, bf_rpc_status *st, bf_err *err)
{
	int rc;

	if (ask_init_md(s))
		return bf_errf(err, BF_EPROTO, "%s %s: cannot wait for the status", s->ch->name,
			       s->m->name);
	rc = drive(s, OP_STATUS, deadline_ms, err);

	if (!s->status_known)
		return rc;
	bf_err_clear(err);
	*st = s->final;
	return 0;
}

const bf_rpc_status *bf_rpc_stream_status(const bf_rpc_stream *s)
{
	return s->status_known ? &s->final : NULL;
}

bf_rpc_channel *bf_rpc_stream_channel(const bf_rpc_stream *s)
{
	return s->ch;
}

void bf_rpc_stream_destroy(bf_rpc_stream *s)
{
	if (!s)
		return;
	if (s->call) {
		if (!s->status_known)
			grpc_call_cancel(s->call, NULL);
		while (s->pending) {
			grpc_event ev = grpc_completion_queue_next(
				s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
			if (ev.type == GRPC_OP_COMPLETE)
				on_event(s, ev);
		}
		grpc_call_unref(s->call);
	}
	if (s->cq) {
		grpc_completion_queue_shutdown(s->cq);
		while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->cq);
	}
	if (s->recv_bb)
		grpc_byte_buffer_destroy(s->recv_bb);
	if (s->send_bb)
		grpc_byte_buffer_destroy(s->send_bb);
	bf_rpc_md_release(s->md, s->n_md);
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trail_md);
	free(s);
}
