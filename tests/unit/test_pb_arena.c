/*
 * Unit tests of the protobuf-c arena (rpc/pb_arena.c): pieces are aligned
 * and apart, what does not fit takes chunks and the reset grows the block
 * to hold it next time, a real message unpacks into it the same as with
 * malloc, and reserve leaves a block in use alone. ASan checks that
 * destroy gives everything back.
 */
#include "rpc/pb_arena.h"
#include "proto/kvrpcpb.pb-c.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *take(bf_pb_arena *a, size_t n)
{
	ProtobufCAllocator *al = bf_pb_arena_allocator(a);
	void *p = al->alloc(al->allocator_data, n);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % _Alignof(max_align_t), 0, "piece of %zu bytes not aligned", n);
	memset(p, 0xab, n); /* ASan: the whole piece is ours */
	return p;
}

Test(pb_arena, pieces_are_aligned_and_apart)
{
	bf_pb_arena a;
	uint8_t *p[100];

	bf_pb_arena_init(&a);
	bf_pb_arena_reserve(&a, 4096);
	for (int i = 0; i < 100; i++) {
		p[i] = take(&a, (size_t)i % 7 + 1);
		p[i][0] = (uint8_t)i;
	}
	for (int i = 0; i < 100; i++)
		cr_assert_eq(p[i][0], (uint8_t)i);
	cr_assert_null(a.extra, "100 small pieces fit in the reserved block");
	bf_pb_arena_destroy(&a);
}

Test(pb_arena, overflow_takes_chunks_and_the_reset_makes_room)
{
	bf_pb_arena a;

	bf_pb_arena_init(&a);
	for (int i = 0; i < 50; i++)
		take(&a, 10000); /* no block yet: every piece is a chunk */
	cr_assert_not_null(a.extra);
	bf_pb_arena_reset(&a);
	cr_assert_null(a.extra);
	cr_assert_geq(a.cap, 50 * 10000, "the block holds what the last round needed");
	for (int i = 0; i < 50; i++)
		take(&a, 10000);
	cr_assert_null(a.extra, "the same round fits in the block now");
	cr_assert_eq(a.used, 50 * 10000); /* 10000 is a multiple of the alignment */
	bf_pb_arena_destroy(&a);
	cr_assert_null(a.block);
}

Test(pb_arena, reserve_leaves_a_block_in_use_alone)
{
	bf_pb_arena a;

	bf_pb_arena_init(&a);
	bf_pb_arena_reserve(&a, 100000);
	uint8_t *p = take(&a, 64);
	uint8_t *block = a.block;
	bf_pb_arena_reserve(&a, 1 << 20);
	cr_assert_eq(a.block, block, "a block with pieces out is not replaced");
	cr_assert_eq(p[0], 0xab);
	bf_pb_arena_reset(&a);
	bf_pb_arena_reserve(&a, 1 << 20);
	cr_assert_geq(a.cap, 1 << 20);
	bf_pb_arena_destroy(&a);
}

Test(pb_arena, a_message_unpacks_into_it_as_with_malloc)
{
	enum { N = 3000 };
	Kvrpcpb__ScanResponse r = KVRPCPB__SCAN_RESPONSE__INIT;
	Kvrpcpb__KvPair pairs[N], *pp[N];
	static char keys[N][24], vals[N][200]; /* about a sysbench row's sizes */
	bf_pb_arena a;

	for (int i = 0; i < N; i++) {
		kvrpcpb__kv_pair__init(&pairs[i]);
		snprintf(keys[i], sizeof(keys[i]), "key%06d", i);
		snprintf(vals[i], sizeof(vals[i]), "%0*d", (int)sizeof(vals[i]) - 1, i);
		pairs[i].key = (ProtobufCBinaryData){ strlen(keys[i]), (uint8_t *)keys[i] };
		pairs[i].value = (ProtobufCBinaryData){ strlen(vals[i]), (uint8_t *)vals[i] };
		pp[i] = &pairs[i];
	}
	r.pairs = pp;
	r.n_pairs = N;
	size_t len = kvrpcpb__scan_response__get_packed_size(&r);
	uint8_t *buf = malloc(len);
	kvrpcpb__scan_response__pack(&r, buf);

	bf_pb_arena_init(&a);
	for (int round = 0; round < 3; round++) {
		bf_pb_arena_reserve(&a, 2 * len);
		Kvrpcpb__ScanResponse *m =
			kvrpcpb__scan_response__unpack(bf_pb_arena_allocator(&a), len, buf);
		cr_assert_not_null(m);
		cr_assert_eq(m->n_pairs, N);
		for (int i = 0; i < N; i++) {
			cr_assert_eq(m->pairs[i]->key.len, strlen(keys[i]));
			cr_assert_eq(memcmp(m->pairs[i]->key.data, keys[i], strlen(keys[i])), 0);
			cr_assert_eq(memcmp(m->pairs[i]->value.data, vals[i], strlen(vals[i])), 0);
		}
		cr_assert_null(a.extra, "round %d: a reply of sysbench-sized rows fits in twice its size", round);
		kvrpcpb__scan_response__free_unpacked(m, bf_pb_arena_allocator(&a));
		bf_pb_arena_reset(&a);
	}
	/* Bytes that are not a message fail the unpack; the arena stays usable. */
	uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff };
	cr_assert_null(kvrpcpb__scan_response__unpack(bf_pb_arena_allocator(&a), sizeof(junk), junk));
	bf_pb_arena_reset(&a);
	bf_pb_arena_destroy(&a);
	free(buf);
}
