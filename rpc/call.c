/*
 * Unary calls (rpc.h) and the message, metadata and deadline helpers the
 * streams share (rpc_impl.h).
 *
 * A unary call is a single batch with every op on a per-call pluck
 * completion queue, waited on in short slices so the interrupt hook can
 * cancel it. The call's own deadline guarantees the batch completes.
 *
 * Depends on: gRPC core, util (clocks).
 */
#include "rpc/rpc_impl.h"
#include "util/util.h"

#include <grpc/byte_buffer_reader.h>

#include <stdlib.h>
#include <string.h>

void bf_rpc_buf_free(bf_rpc_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

gpr_timespec bf_rpc_after(int64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

gpr_timespec bf_rpc_deadline(int64_t mono_deadline_ms)
{
	int64_t left = mono_deadline_ms - bf_now_ms();
	return bf_rpc_after(left < 0 ? 0 : left);
}

void bf_rpc_slice_to_str(grpc_slice s, char *out, size_t n)
{
	size_t len = GRPC_SLICE_LENGTH(s);
	if (len >= n)
		len = n - 1;
	memcpy(out, GRPC_SLICE_START_PTR(s), len);
	out[len] = '\0';
}

int bf_rpc_take_message(grpc_byte_buffer **bb, bf_rpc_buf *out)
{
	grpc_byte_buffer_reader reader;
	grpc_slice all;
	int rc = 0;

	out->data = NULL;
	out->len = 0;
	if (!grpc_byte_buffer_reader_init(&reader, *bb)) {
		rc = BF_EPROTO;
		goto out;
	}
	all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	out->len = GRPC_SLICE_LENGTH(all);
	out->data = malloc(out->len ? out->len : 1);
	if (!out->data)
		rc = BF_ENOMEM;
	else if (out->len)
		memcpy(out->data, GRPC_SLICE_START_PTR(all), out->len);
	grpc_slice_unref(all);
out:
	grpc_byte_buffer_destroy(*bb);
	*bb = NULL;
	return rc;
}

grpc_byte_buffer *bf_rpc_make_message(const bf_rpc_buf *msg)
{
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)msg->data, msg->len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

int bf_rpc_md_build(const bf_rpc_call *call, grpc_metadata *md, size_t *n)
{
	*n = 0;
	if (call->n_md > BF_RPC_MAX_MD)
		return BF_EINVAL;
	memset(md, 0, sizeof(*md) * BF_RPC_MAX_MD);
	for (size_t i = 0; i < call->n_md; i++) {
		md[i].key = grpc_slice_from_copied_string(call->md[i].key);
		md[i].value = grpc_slice_from_copied_string(call->md[i].value);
	}
	*n = call->n_md;
	return 0;
}

void bf_rpc_md_release(grpc_metadata *md, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		grpc_slice_unref(md[i].key);
		grpc_slice_unref(md[i].value);
	}
}

/* One attempt of bf_rpc_unary. */
static int unary_once(bf_rpc_channel *ch, const bf_rpc_call *call, const bf_rpc_buf *req,
		      bf_rpc_status *st, bf_rpc_buf *reply, bf_err *err)
{
	const bf_rpc_method *m = call->method;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_call *gcall = NULL;
	grpc_metadata md[BF_RPC_MAX_MD];
	grpc_metadata_array init_md, trail_md;
	grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
	grpc_slice details = grpc_empty_slice();
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_op ops[6];
	size_t n_md = 0;
	bool cancelled = false;
	int rc = 0;

	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	st->code = BF_RPC_UNKNOWN;
	st->details[0] = '\0';
	st->tls_refused = false;
	reply->data = NULL;
	reply->len = 0;
	if (bf_rpc_md_build(call, md, &n_md)) {
		rc = bf_errf(err, BF_EINVAL, "%s %s: more than %d metadata entries", ch->name,
			     m->name, BF_RPC_MAX_MD);
		goto out;
	}
	gcall = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
					 grpc_slice_from_static_string(m->path), NULL,
					 bf_rpc_deadline(call->deadline_ms), NULL);
	send_bb = bf_rpc_make_message(req);
	if (!gcall || !send_bb) {
		rc = bf_errf(err, BF_ENOMEM, "%s %s: cannot start call", ch->name, m->name);
		goto out;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = n_md;
	ops[0].data.send_initial_metadata.metadata = md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(gcall, ops, 6, gcall, NULL) != GRPC_CALL_OK) {
		rc = bf_errf(err, BF_EPROTO, "%s %s: cannot start call", ch->name, m->name);
		goto out;
	}
	for (;;) {
		grpc_event ev = grpc_completion_queue_pluck(cq, gcall,
							    bf_rpc_after(BF_RPC_POLL_SLICE_MS), NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			break;
		if (!cancelled && call->interrupted && call->interrupted(call->interrupt_arg)) {
			grpc_call_cancel(gcall, NULL);
			cancelled = true;
		}
	}
	st->code = (int)status;
	bf_rpc_slice_to_str(details, st->details, sizeof(st->details));
	bf_rpc_channel_judge(ch, st);
	if (status == GRPC_STATUS_OK) {
		if (!recv_bb) {
			rc = bf_errf(err, BF_EPROTO, "%s %s: OK status without a reply", ch->name,
				     m->name);
			goto out;
		}
		if (bf_rpc_take_message(&recv_bb, reply)) {
			rc = bf_errf(err, BF_EPROTO, "%s %s: unreadable reply", ch->name, m->name);
			goto out;
		}
	} else if (cancelled) {
		rc = bf_errf(err, BF_ECANCELLED, "%s %s: cancelled", ch->name, m->name);
	}
out:
	if (recv_bb)
		grpc_byte_buffer_destroy(recv_bb);
	if (send_bb)
		grpc_byte_buffer_destroy(send_bb);
	bf_rpc_md_release(md, n_md);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	if (gcall)
		grpc_call_unref(gcall);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_completion_queue_destroy(cq);
	return rc;
}

/* How long a call waits before it tries again a server that closed the
 * connection at the handshake (see bf_rpc_channel_unsure). */
#define HANDSHAKE_RETRY_MS 200

/*
 * A call whose connection the server closed at the handshake may have
 * been refused (TLS) or may have met a server that was going down: it is
 * tried again, within its deadline, until it gets through or the refusal
 * is sure (st->tls_refused). It was never sent, so sending it again is
 * safe for any method, and a caller sees either an answer or a refusal
 * it can name, not a connection that "closed".
 */
int bf_rpc_unary(bf_rpc_channel *ch, const bf_rpc_call *call, const bf_rpc_buf *req,
		 bf_rpc_status *st, bf_rpc_buf *reply, bf_err *err)
{
	for (;;) {
		int rc = unary_once(ch, call, req, st, reply, err);
		int64_t until = bf_now_ms() + HANDSHAKE_RETRY_MS;

		if (rc || !bf_rpc_channel_unsure(ch, st) || until >= call->deadline_ms)
			return rc;
		while (bf_now_ms() < until) {
			if (call->interrupted && call->interrupted(call->interrupt_arg))
				return bf_errf(err, BF_ECANCELLED, "%s %s: cancelled", ch->name,
					       call->method->name);
			bf_sleep_ms(BF_RPC_POLL_SLICE_MS);
		}
	}
}
