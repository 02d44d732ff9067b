/*
 * An allocator for protobuf-c's unpacking that hands out pieces of one
 * block and frees nothing until reset: a Write batch or a scan page of
 * thousands of pairs unpacks with no malloc per pair, and a stream that
 * resets its arena between messages reuses the same block throughout.
 *
 * Use: bf_pb_arena_init(&a); msg = ..._unpack(bf_pb_arena_allocator(&a),
 * len, buf); ...; ..._free_unpacked(msg, bf_pb_arena_allocator(&a));
 * bf_pb_arena_reset(&a) (every message unpacked from it is then gone);
 * bf_pb_arena_destroy(&a) at the end. Not thread-safe: one per stream.
 */
#ifndef BF_RPC_PB_ARENA_H
#define BF_RPC_PB_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bf_pb_chunk bf_pb_chunk;

typedef struct bf_pb_arena {
	ProtobufCAllocator alloc;
	uint8_t *block;     /* owned; NULL until the first allocation */
	size_t cap, used;
	bf_pb_chunk *extra; /* owned: what did not fit in block */
	size_t wanted;      /* bytes asked for since the last reset */
} bf_pb_arena;

void bf_pb_arena_init(bf_pb_arena *a);
ProtobufCAllocator *bf_pb_arena_allocator(bf_pb_arena *a);
/* Makes the block hold at least n bytes (an estimate of what one
 * message will need); call it before unpacking. Nothing happens when
 * memory is short: later allocations then take chunks of their own. */
void bf_pb_arena_reserve(bf_pb_arena *a, size_t n);
/* Forgets every allocation; the block grows to what the last round
 * needed, so the next one fits in it. */
void bf_pb_arena_reset(bf_pb_arena *a);
void bf_pb_arena_destroy(bf_pb_arena *a);

#endif
