# bfill build. `make` builds the library, the tools and the tests;
# `make test` and `make demo` are the two entry points a newcomer needs.

BUILD    := build
CC       ?= gcc
ifeq ($(origin CC),default)
CC       := gcc
endif
OPT      ?= -O2
WERROR   := $(if $(CI),-Werror,)
CPPFLAGS := -Iinclude -I. -I$(BUILD)/gen -D_GNU_SOURCE -D_LGPL_SOURCE
# snprintf truncation is how bfill bounds messages and paths, not a bug.
CFLAGS   := -std=gnu11 -Wall -Wextra -Wno-format-truncation $(WERROR) -g $(OPT) -pthread
LDLIBS   := -lrocksdb -lcjson -lurcu-cds -lurcu -lgrpc -lgpr -lprotobuf-c -lpthread -lm
TEST_LDLIBS := -lcriterion

PROTOS   := $(wildcard proto/*.proto)
PROTO_C  := $(patsubst proto/%.proto,$(BUILD)/gen/proto/%.pb-c.c,$(PROTOS))
PROTO_H  := $(PROTO_C:.c=.h)

LIB_SRCS := $(wildcard util/*.c codec/*.c engine/*.c ingest/*.c lock/*.c pipeline/*.c)
CMD_SRCS := $(wildcard cmd/*.c)
STORE_SRCS := $(wildcard cmd/store/*.c)
TEST_SRCS := $(wildcard tests/unit/*.c tests/integration/*.c tests/fault/*.c)
TEST_SUPPORT := $(wildcard tests/support/*.c)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))
LIB_OBJS  := $(call obj,$(BUILD),$(LIB_SRCS)) $(PROTO_C:.c=.o)
CMD_OBJS  := $(call obj,$(BUILD),$(CMD_SRCS))
SUP_OBJS  := $(call obj,$(BUILD),$(TEST_SUPPORT))
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

ASAN      := $(BUILD)/asan
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_LIB_OBJS := $(call obj,$(ASAN),$(LIB_SRCS)) $(patsubst $(BUILD)/%,$(ASAN)/%,$(PROTO_C:.c=.o))
ASAN_SUP_OBJS := $(call obj,$(ASAN),$(TEST_SUPPORT))
UNIT_SRCS := $(wildcard tests/unit/*.c)
ASAN_TEST_BINS := $(patsubst tests/%.c,$(ASAN)/tests/%,$(UNIT_SRCS))

.PHONY: all deps test test-only test-asan demo clean bench-deps tsan
.SECONDARY: $(PROTO_C) $(PROTO_H)

all: lib/libbfill.a bin/bfill $(TEST_BINS)

deps:
	@scripts/deps.sh

bench-deps:
	@scripts/deps.sh --bench

# Generated protobuf-c code lives under build/ and is never committed.
$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen --proto_path=. $<

$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -w -c $< -o $@

$(ASAN)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(ASAN_FLAGS) -MMD -MP -c $< -o $@

$(ASAN)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(ASAN_FLAGS) -w -c $< -o $@

lib/libbfill.a: $(LIB_OBJS)
	@mkdir -p lib
	rm -f $@
	ar rcs $@ $^

$(ASAN)/libbfill.a: $(ASAN_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

bin/bfill: $(CMD_OBJS) lib/libbfill.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $(CMD_OBJS) lib/libbfill.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUP_OBJS) lib/libbfill.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(SUP_OBJS) lib/libbfill.a $(LDLIBS) $(TEST_LDLIBS)

$(ASAN)/tests/%: $(ASAN)/obj/tests/%.o $(ASAN_SUP_OBJS) $(ASAN)/libbfill.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(ASAN_SUP_OBJS) $(ASAN)/libbfill.a $(LDLIBS) $(TEST_LDLIBS)

# Every test binary, then the unit tests again under ASan+UBSan.
test: deps
	$(MAKE) all $(ASAN_TEST_BINS)
	@tests/run.sh $(TEST_BINS) -- $(ASAN_TEST_BINS)

test-only: all $(ASAN_TEST_BINS)
	@tests/run.sh $(TEST_BINS) -- $(ASAN_TEST_BINS)

DEMO_STORE ?= ./demo-store
DEMO_ROWS  ?= 1000000
demo: deps
	$(MAKE) bin/bfill
	@scripts/demo.sh $(DEMO_STORE) $(DEMO_ROWS)

clean:
	rm -rf $(BUILD) lib bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
