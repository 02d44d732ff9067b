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
LDLIBS   := -lrocksdb -llz4 -lxxhash -lzstd -lcjson -lurcu-cds -lurcu -lgrpc -lgpr -lprotobuf-c -lpthread -lm
TEST_LDLIBS := -lcriterion

PROTOS   := $(wildcard proto/*.proto)
PROTO_C  := $(patsubst proto/%.proto,$(BUILD)/gen/proto/%.pb-c.c,$(PROTOS))
PROTO_H  := $(PROTO_C:.c=.h)

LIB_SRCS := $(wildcard util/*.c codec/*.c engine/*.c ingest/*.c lock/*.c rpc/*.c cluster/*.c server/*.c pipeline/*.c)
CMD_SRCS := $(wildcard cmd/*.c)
STORE_SRCS := $(wildcard cmd/store/*.c)
TEST_SRCS := $(wildcard tests/unit/*.c tests/integration/*.c tests/fault/*.c)
TEST_SUPPORT := $(wildcard tests/support/*.c)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))
LIB_OBJS  := $(call obj,$(BUILD),$(LIB_SRCS)) $(PROTO_C:.c=.o)
CMD_OBJS  := $(call obj,$(BUILD),$(CMD_SRCS))
# bfill-store shares the command-line helpers (cmd/cli.c) with bfill.
STORE_OBJS := $(call obj,$(BUILD),$(STORE_SRCS) cmd/cli.c)
SUP_OBJS  := $(call obj,$(BUILD),$(TEST_SUPPORT))
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

ASAN      := $(BUILD)/asan
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_LIB_OBJS := $(call obj,$(ASAN),$(LIB_SRCS)) $(patsubst $(BUILD)/%,$(ASAN)/%,$(PROTO_C:.c=.o))
ASAN_SUP_OBJS := $(call obj,$(ASAN),$(TEST_SUPPORT))
# Under ASan+UBSan: every unit test, plus the in-process pipeline tests (the
# threaded code where a memory error would hide best).
ASAN_SRCS := $(wildcard tests/unit/*.c) tests/integration/test_pipeline.c
ASAN_TEST_BINS := $(patsubst tests/%.c,$(ASAN)/tests/%,$(ASAN_SRCS))

# libFuzzer targets (tests/fuzz/fuzz_<name>.c), built with clang under
# build/fuzz/; run_<name> runs one as a test of `make test`.
FUZZ       := $(BUILD)/fuzz
FUZZ_CC    ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 20
FUZZ_CFLAGS := -std=gnu11 -Wall -Wextra -g -O1 -pthread -fno-omit-frame-pointer \
	       -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_NAMES:%=$(FUZZ)/fuzz_%)
FUZZ_RUNS  := $(FUZZ_NAMES:%=$(FUZZ)/run_%)
FUZZ_LIB_OBJS := $(call obj,$(FUZZ),$(LIB_SRCS)) $(patsubst $(BUILD)/%,$(FUZZ)/%,$(PROTO_C:.c=.o))
# Debian's libcjson is not instrumented, so ASan cannot see it read past a
# buffer; FUZZ_CJSON_SRC=path/to/cJSON.c (the same version) builds it in.
FUZZ_CJSON_SRC ?=
FUZZ_CJSON_OBJ := $(if $(FUZZ_CJSON_SRC),$(FUZZ)/cjson/cJSON.o)
FUZZ_LDLIBS := $(if $(FUZZ_CJSON_SRC),$(filter-out -lcjson,$(LDLIBS)),$(LDLIBS))
FUZZ_CORPUS_GEN := $(BUILD)/tests/fuzz/make_corpus

# The shared library (libbfill.so.$(VERSION), soname libbfill.so.$(SOVERSION))
# is built from objects of its own compiled with -fPIC under build/pic/, so
# the static build stays as it is; it exports only bf_* (libbfill.map).
VERSION   := 0.1.0
SOVERSION := 0
PIC       := $(BUILD)/pic
PIC_LIB_OBJS := $(call obj,$(PIC),$(LIB_SRCS)) $(patsubst $(BUILD)/%,$(PIC)/%,$(PROTO_C:.c=.o))
SHLIB     := lib/libbfill.so.$(VERSION)

# Small programs that use the library as a researcher would (examples/,
# docs/library.md); tests/integration/test_examples runs them.
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,bin/examples/%,$(EXAMPLE_SRCS))

.PHONY: all deps test test-only test-asan demo clean bench-deps tsan tsan-pipeline tsan-cluster \
	fuzz fuzz-bins fuzz-corpus examples install uninstall
.SECONDARY: $(PROTO_C) $(PROTO_H)

all: lib/libbfill.a $(SHLIB) bin/bfill bin/bfill-store $(EXAMPLE_BINS) $(TEST_BINS) $(FUZZ_CORPUS_GEN)

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

$(BUILD)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c | $(PROTO_H)
	$(CC) $(CPPFLAGS) $(CFLAGS) -w -c $< -o $@

$(ASAN)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(ASAN_FLAGS) -MMD -MP -c $< -o $@

$(ASAN)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c | $(PROTO_H)
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

bin/bfill-store: $(STORE_OBJS) lib/libbfill.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $(STORE_OBJS) lib/libbfill.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUP_OBJS) lib/libbfill.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(SUP_OBJS) lib/libbfill.a $(LDLIBS) $(TEST_LDLIBS)

# bfill-store under ASan+UBSan, for the store tests: BFILL_STORE_BIN=build/asan/bfill-store.
$(ASAN)/bfill-store: $(call obj,$(ASAN),$(STORE_SRCS) cmd/cli.c) $(ASAN)/libbfill.a
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $(call obj,$(ASAN),$(STORE_SRCS) cmd/cli.c) $(ASAN)/libbfill.a $(LDLIBS)

$(ASAN)/tests/%: $(ASAN)/obj/tests/%.o $(ASAN_SUP_OBJS) $(ASAN)/libbfill.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(ASAN_SUP_OBJS) $(ASAN)/libbfill.a $(LDLIBS) $(TEST_LDLIBS)

# The etcd lock's tests run a second and a third time: with etcd over TLS
# (client certificates required) and with etcd's authentication on.
SECURE_LOCK_RUNS := $(foreach m,tls auth,$(addsuffix @$(m),$(BUILD)/tests/integration/test_lock_etcd \
	$(BUILD)/tests/integration/test_lock_leases))

# Every test binary, then the unit tests again under ASan+UBSan, then each
# fuzzer for FUZZ_TEST_SECONDS (skipped, and said so, without libFuzzer).
test: deps
	$(MAKE) all $(ASAN_TEST_BINS) $(FUZZ_RUNS)
	@if scripts/have-libfuzzer.sh $(FUZZ_CC); then $(MAKE) fuzz-bins; fi
	@tests/run.sh $(TEST_BINS) $(SECURE_LOCK_RUNS) -- $(ASAN_TEST_BINS) -- $(FUZZ_RUNS)

test-only: all $(ASAN_TEST_BINS) $(FUZZ_RUNS)
	@if scripts/have-libfuzzer.sh $(FUZZ_CC); then $(MAKE) fuzz-bins; fi
	@tests/run.sh $(TEST_BINS) $(SECURE_LOCK_RUNS) -- $(ASAN_TEST_BINS) -- $(FUZZ_RUNS)

DEMO_STORE ?= ./demo-store
DEMO_ROWS  ?= 1000000
demo: deps
	$(MAKE) bin/bfill
	@scripts/demo.sh $(DEMO_STORE) $(DEMO_ROWS)

clean:
	rm -rf $(BUILD) lib bin

# ---- fuzzing ------------------------------------------------------------------
# `make fuzz` runs every fuzzer for FUZZ_SECONDS (one at a time) and fails
# on a crash; docs/fuzzing.md has the long runs. The library is built again
# with clang's coverage instrumentation and ASan+UBSan.
$(FUZZ)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -w -c $< -o $@

$(FUZZ)/libbfill.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ)/cjson/cJSON.o: $(FUZZ_CJSON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -w -c $< -o $@

$(FUZZ)/fuzz_%: $(FUZZ)/obj/tests/fuzz/fuzz_%.o $(FUZZ)/libbfill.a $(FUZZ_CJSON_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ)/libbfill.a $(FUZZ_CJSON_OBJ) \
		$(FUZZ_LDLIBS)

# A test for tests/run.sh: runs the fuzzer, or says it is skipped.
$(FUZZ)/run_%: tests/fuzz/run.sh
	@mkdir -p $(dir $@)
	@printf '#!/bin/sh\nexec tests/fuzz/run.sh %s "$${FUZZ_TEST_SECONDS:-%s}"\n' $* \
		$(FUZZ_TEST_SECONDS) >$@
	@chmod +x $@

fuzz-bins: $(FUZZ_BINS)

fuzz:
	@scripts/have-libfuzzer.sh $(FUZZ_CC) || \
		{ echo "fuzz: $(FUZZ_CC) with libFuzzer is missing (make deps installs it)"; exit 1; }
	$(MAKE) fuzz-bins
	@st=0; for n in $(FUZZ_NAMES); do tests/fuzz/run.sh $$n $(FUZZ_SECONDS) || st=1; done; exit $$st

# Writes the seed corpora again from bfill's own encoders.
fuzz-corpus: $(FUZZ_CORPUS_GEN)
	$(FUZZ_CORPUS_GEN) tests/fuzz/corpus

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- etcd lock: ThreadSanitizer build and lock benchmark --------------------
# `make tsan` builds the library, the test support and the lock tests (plus
# anything listed in TSAN_TESTS) with -fsanitize=thread under build/tsan/.
# Criterion's test runner cannot start under TSan (its sandbox arena cannot
# be mapped: "Could not initialize inheritable arena"), so the TSan run is
# bfill-lockbench's stress mode instead: threads, each with its own lock,
# contending on a real 1-member and 3-member etcd, plus a cancel from
# another thread. Any TSan report fails the target.
TSAN          := $(BUILD)/tsan
TSAN_FLAGS    := -fsanitize=thread -fno-omit-frame-pointer
LOCK_TESTS    := tests/unit/test_etcd_wire.c tests/unit/test_etcd_client.c \
                 tests/unit/test_rpc.c tests/unit/test_backoff.c \
                 tests/integration/test_lock_etcd.c tests/integration/test_lock_leases.c
TSAN_TESTS    ?=
TSAN_LIB_OBJS := $(call obj,$(TSAN),$(LIB_SRCS)) $(patsubst $(BUILD)/%,$(TSAN)/%,$(PROTO_C:.c=.o))
TSAN_SUP_OBJS := $(call obj,$(TSAN),$(TEST_SUPPORT))
TSAN_TEST_BINS := $(patsubst tests/%.c,$(TSAN)/tests/%,$(sort $(LOCK_TESTS) $(TSAN_TESTS)))


$(TSAN)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(TSAN_FLAGS) -MMD -MP -c $< -o $@

$(TSAN)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(TSAN_FLAGS) -w -c $< -o $@

$(TSAN)/libbfill.a: $(TSAN_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(TSAN)/tests/%: $(TSAN)/obj/tests/%.o $(TSAN_SUP_OBJS) $(TSAN)/libbfill.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -o $@ $< $(TSAN_SUP_OBJS) $(TSAN)/libbfill.a $(LDLIBS) $(TEST_LDLIBS)

$(TSAN)/bfill-lockbench: $(TSAN)/obj/bench/lock_latency.o $(TSAN)/libbfill.a
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -o $@ $< $(TSAN)/libbfill.a $(LDLIBS)

TSAN_STRESS_ARGS ?= 40 --threads 3 --ttl 3
$(TSAN)/bfill: $(call obj,$(TSAN),$(CMD_SRCS)) $(TSAN)/libbfill.a
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -o $@ $(call obj,$(TSAN),$(CMD_SRCS)) $(TSAN)/libbfill.a $(LDLIBS)

# The pipeline under TSan: a real add-index (readers, writers, sink,
# importer, several imports) and check-index, with the in-process lock.
tsan-pipeline: $(TSAN)/bfill
	@mkdir -p $(BUILD)/test-logs
	@log=$(BUILD)/test-logs/tsan_pipeline.log; d=$$(mktemp -d /tmp/bfill-tsan.XXXXXX); \
	export TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan-pipeline.supp"; \
	{ $(TSAN)/bfill gen --store $$d/s --rows 200000 --quiet && \
	  $(TSAN)/bfill add-index --store $$d/s --table sbtest1 --name c1 --columns c \
		--name k1 --columns k --mem 128M --import-every 8M --workers 3 --json && \
	  $(TSAN)/bfill check-index --store $$d/s --table sbtest1 --name c1; } >$$log 2>&1; st=$$?; \
	rm -rf $$d $$d.sort; \
	if [ $$st -ne 0 ] || grep -q 'ThreadSanitizer' $$log; then \
		echo "FAIL tsan pipeline (exit $$st) -- log: $$log"; grep -A20 'WARNING: ThreadSanitizer' $$log | head -60; exit 1; \
	else echo "ok   tsan pipeline"; tail -n 2 $$log; fi

$(TSAN)/bfill-store: $(call obj,$(TSAN),$(STORE_SRCS) cmd/cli.c) $(TSAN)/libbfill.a
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -o $@ $(call obj,$(TSAN),$(STORE_SRCS) cmd/cli.c) $(TSAN)/libbfill.a $(LDLIBS)

# The cluster path under TSan: three TSan bfill-store nodes and a TSan bfill
# whose build sees a split and leader transfers (tests/tsan_cluster.sh).
tsan-cluster: $(TSAN)/bfill $(TSAN)/bfill-store
	@mkdir -p $(BUILD)/test-logs
	@tests/tsan_cluster.sh $(TSAN)/bfill $(TSAN)/bfill-store $(BUILD)/test-logs/tsan_cluster.log \
		tests/tsan-pipeline.supp bench/lock_latency.tsan.supp

tsan: tsan-pipeline tsan-cluster $(TSAN_TEST_BINS) $(TSAN)/bfill-lockbench
	@mkdir -p $(BUILD)/test-logs
	@log=$(BUILD)/test-logs/tsan_lockbench.log; \
	TSAN_OPTIONS="$${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/bench/lock_latency.tsan.supp}" \
	BFILL_LOCKBENCH=$(TSAN)/bfill-lockbench bench/lock_latency.sh $(TSAN_STRESS_ARGS) \
		>$$log 2>&1; st=$$?; \
	if [ $$st -ne 0 ] || grep -q 'ThreadSanitizer' $$log; then \
		echo "FAIL tsan lock stress (exit $$st) -- log: $$log"; \
		grep -E -A12 'WARNING: ThreadSanitizer|bfill-lockbench:' $$log | head -n 60; exit 1; \
	else echo "ok   tsan lock stress (built: $(notdir $(TSAN_TEST_BINS)))"; cat $$log; fi

bin/bfill-lockbench: bench/lock_latency.c lib/libbfill.a
	@mkdir -p bin
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< lib/libbfill.a $(LDLIBS)
# ---- end of etcd lock block --------------------------------------------------

# The in-memory limit of add-index for one index, which bench/add_index.sh
# compares bfill's build with (bench/ref_build.c).
bin/bfill-refbuild: bench/ref_build.c lib/libbfill.a
	@mkdir -p bin
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< lib/libbfill.a $(LDLIBS)

# ---- the library for other programs: shared library, examples, install -----
# `make install [PREFIX=/usr/local] [DESTDIR=...]` installs libbfill.so (and
# its soname links), libbfill.a, the headers under include/bfill/, bfill.pc
# and the two programs; `make uninstall` removes them again. How to build
# against it: docs/library.md. scripts/install-check.sh (run by
# tests/integration/test_examples) installs into a scratch prefix and builds
# the examples there with nothing but pkg-config.
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PUBLIC_HEADERS := $(notdir $(wildcard include/bfill/*.h))
# A directory under PREFIX as bfill.pc spells it: ${prefix}/..., so that
# pkg-config --define-prefix can move the whole tree.
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

$(PIC)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -MMD -MP -c $< -o $@

$(PIC)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -w -c $< -o $@

# Linked against its own dependencies, so a program needs only -lbfill;
# --no-undefined makes a missing one a link error here, not at load time.
$(SHLIB): $(PIC_LIB_OBJS) libbfill.map
	@mkdir -p lib
	$(CC) $(CFLAGS) -shared -Wl,-soname,libbfill.so.$(SOVERSION) \
		-Wl,--version-script=libbfill.map -Wl,--no-undefined \
		-o $@ $(PIC_LIB_OBJS) $(LDLIBS)
	ln -sf libbfill.so.$(VERSION) lib/libbfill.so.$(SOVERSION)
	ln -sf libbfill.so.$(SOVERSION) lib/libbfill.so

# Built like any program outside the tree would be: public headers only.
$(BUILD)/examples/%.o: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(CFLAGS) -MMD -MP -c $< -o $@

bin/examples/%: $(BUILD)/examples/%.o lib/libbfill.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< lib/libbfill.a $(LDLIBS)

examples: $(EXAMPLE_BINS)
.SECONDARY: $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%.o)

# The examples' test runs them, and installs what `make install` installs.
$(BUILD)/tests/integration/test_examples: $(EXAMPLE_BINS) lib/libbfill.a $(SHLIB) \
	bin/bfill bin/bfill-store

install: lib/libbfill.a $(SHLIB) bin/bfill bin/bfill-store
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/bfill \
		$(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 lib/libbfill.a $(DESTDIR)$(LIBDIR)/libbfill.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libbfill.so.$(VERSION)
	ln -sf libbfill.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libbfill.so.$(SOVERSION)
	ln -sf libbfill.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libbfill.so
	install -m 644 $(addprefix include/bfill/,$(PUBLIC_HEADERS)) $(DESTDIR)$(INCLUDEDIR)/bfill/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call pc_dir,$(LIBDIR))|g' \
		-e 's|@INCLUDEDIR@|$(call pc_dir,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(VERSION)|g' \
		bfill.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/bfill.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/bfill.pc
	install -m 755 bin/bfill bin/bfill-store $(DESTDIR)$(BINDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bfill $(DESTDIR)$(BINDIR)/bfill-store
	rm -f $(DESTDIR)$(LIBDIR)/libbfill.a $(DESTDIR)$(LIBDIR)/libbfill.so \
		$(DESTDIR)$(LIBDIR)/libbfill.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libbfill.so.$(VERSION)
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/bfill.pc
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/bfill/,$(PUBLIC_HEADERS))
	rmdir $(DESTDIR)$(INCLUDEDIR)/bfill 2>/dev/null || true
# ---- end of library block ----------------------------------------------------

# TPC-C's customer table as CSV, for bench/tpcc_customer.sh.
bin/bfill-tpccgen: bench/tpcc_gen.c
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $<
