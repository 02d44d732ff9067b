/*
 * The protobuf-c arena (rpc/pb_arena.h). Depends on: protobuf-c.
 */
#include "rpc/pb_arena.h"

#include <stdbool.h>
#include <stdlib.h>

/* An allocation that did not fit in the block, until the next reset. */
struct bf_pb_chunk {
	bf_pb_chunk *next;
	max_align_t data[]; /* keeps what follows the header aligned */
};

#define ALIGN(n) (((n) + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1))
/* The smallest block: a few small messages never reallocate it. */
#define MIN_BLOCK (64 * 1024)

static void *arena_alloc(void *data, size_t size)
{
	bf_pb_arena *a = data;
	size_t n = ALIGN(size ? size : 1);
	bf_pb_chunk *c;

	a->wanted += n;
	if (a->block && a->cap - a->used >= n) {
		void *p = a->block + a->used;
		a->used += n;
		return p;
	}
	c = malloc(sizeof(*c) + n);
	if (!c)
		return NULL; /* protobuf-c then fails the unpack */
	c->next = a->extra;
	a->extra = c;
	return c->data;
}

/* Pieces go back all at once, at the reset. */
static void arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

void bf_pb_arena_init(bf_pb_arena *a)
{
	*a = (bf_pb_arena){ .alloc = { .alloc = arena_alloc, .free = arena_free } };
	a->alloc.allocator_data = a;
}

ProtobufCAllocator *bf_pb_arena_allocator(bf_pb_arena *a)
{
	return &a->alloc;
}

static void free_extra(bf_pb_arena *a)
{
	while (a->extra) {
		bf_pb_chunk *c = a->extra;
		a->extra = c->next;
		free(c);
	}
}

void bf_pb_arena_reserve(bf_pb_arena *a, size_t n)
{
	uint8_t *b;

	n = n < MIN_BLOCK ? MIN_BLOCK : n;
	if (a->cap >= n || a->used)
		return; /* big enough, or in use: pieces of it are out */
	/* Without the larger block the arena goes on with the old one and
	 * chunks: slower, not wrong. */
	if ((b = malloc(n))) {
		free(a->block);
		a->block = b;
		a->cap = n;
	}
}

void bf_pb_arena_reset(bf_pb_arena *a)
{
	bool grow = a->extra != NULL;
	size_t wanted = a->wanted;

	free_extra(a);
	a->used = 0;
	a->wanted = 0;
	if (grow)
		bf_pb_arena_reserve(a, wanted + wanted / 4);
}

void bf_pb_arena_destroy(bf_pb_arena *a)
{
	free_extra(a);
	free(a->block);
	bf_pb_arena_init(a);
}
