# splitprof - one build folder, sources found by folder:
#   shared/*.c      -> linked into every program (the ring, the control channel)
#   probe/*.c       -> splitprof-probe (main.c) and the launcher splitprof (launcher.c)
#   aggregator/*.c  -> splitprof-aggregator (main.c)
#   bpf/*.bpf.c     -> BPF objects + libbpf skeletons
#   tests/test_*.c  -> one Criterion binary; tests/bench/*.c -> benchmarks;
#   tests/workloads/*.c -> programs the end-to-end tests profile
# A new file in one of these folders needs no Makefile change.

BUILD ?= build
ifeq ($(SAN),1)
BUILD := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
PROTOC_C ?= protoc-c
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wcast-qual -Werror
CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARN) -MMD -MP -D_GNU_SOURCE -fPIE \
	-fstack-protector-strong -fno-strict-aliasing \
	-ffile-prefix-map=$(CURDIR)=. -Ishared -I$(BUILD) $(SANFLAGS)
ifneq ($(SAN),1)
override CFLAGS += -D_FORTIFY_SOURCE=2
endif
override LDFLAGS += -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SANFLAGS)

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(BUILD) -Ishared -Ibpf

PROBE_LIBS := -lbpf -lseccomp
AGG_LIBS := -lelf -luring -lprotobuf-c -lcurl -lseccomp -lyaml -lpcre2-8 -lz -lstdc++
TEST_LIBS := -lcriterion $(PROBE_LIBS) $(AGG_LIBS)

SHARED_SRC := $(wildcard shared/*.c)
PROBE_MAINS := probe/main.c probe/launcher.c
PROBE_SRC := $(filter-out $(PROBE_MAINS),$(wildcard probe/*.c))
AGG_SRC := $(filter-out aggregator/main.c,$(wildcard aggregator/*.c))
PROTO := $(wildcard aggregator/proto/*.proto)
PROTO_C := $(patsubst aggregator/proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTO))
BPF_SRC := $(wildcard bpf/*.bpf.c)
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRC))
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard tests/bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
SHARED_OBJ := $(call obj,$(SHARED_SRC))
PROBE_OBJ := $(call obj,$(PROBE_SRC))
AGG_OBJ := $(call obj,$(AGG_SRC)) $(PROTO_C:.c=.o)
TEST_OBJ := $(call obj,$(TEST_SRC))

PROGS := $(BUILD)/splitprof-probe $(BUILD)/splitprof $(BUILD)/splitprof-aggregator
TEST_BIN := $(BUILD)/tests/splitprof-tests
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
WORKLOADS :=
# Workloads are profiled by the end-to-end tests. Their rules (shared
# libraries, PIE, stripped binaries with separate debug files) live beside
# them in tests/workloads/workloads.mk, which adds to WORKLOADS.
-include tests/workloads/workloads.mk


# Criterion options for `make test` (e.g. TEST_ARGS=--filter='ring/*').
# One job: the BPF tests measure sampling rates and CPU shares, which other
# tests' busy workloads on the same two CPUs would distort.
TEST_ARGS ?= --jobs=1
DURATION ?= 20s
OUTPUT_DIR ?= ./profiles

.PHONY: all deps test check-tests check-san bench run clean workloads
.DEFAULT_GOAL := all

all: $(PROGS)

deps:
	@packaging/deps.sh

# `make test` and `make run` work on a fresh machine: install what is missing
# first (a no-op when everything is there), then build in a second make so
# the compilers and headers the first step installed are in place.
test:
	@packaging/deps.sh
	@$(MAKE) --no-print-directory check-tests
	@$(MAKE) --no-print-directory SAN=1 check-san

# libcriterion itself leaks a few bytes when tests use different .timeout
# values; that is not ours to fix, so LeakSanitizer is told to skip it.
# Under SAN=1 the whole suite runs without LeakSanitizer's exit-time check:
# it stops the world with ptrace, which the production seccomp filters of
# both processes kill. check-san keeps leak detection for the parsers.
check-tests: $(TEST_BIN) $(PROGS) $(WORKLOADS)
	SPLITPROF_BUILD=$(abspath $(BUILD)) \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
	$(if $(filter 1,$(SAN)),ASAN_OPTIONS=detect_leaks=0) \
	$(TEST_BIN) $(TEST_ARGS)

# The suites that feed hostile input to our parsers and the ring run again
# under ASan + UBSan (part of `make test`; `make SAN=1 test` runs everything
# that way).
SAN_SUITES ?= @(demangle|records|procmaps|elfsym|kallsyms|symcache|ring*|ctl|broker|pprof|sink_local|config|relabel|containerid|targets|labels|duration|proctable|loop|lru|gz|symbolize)/*
check-san: $(TEST_BIN)
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
	$(TEST_BIN) --jobs=2 --filter '$(SAN_SUITES)'

bench:
	@packaging/deps.sh
	@$(MAKE) --no-print-directory $(BENCH_BINS) $(PROGS)
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; done

run:
	@packaging/deps.sh
	@$(MAKE) --no-print-directory all
	$(BUILD)/splitprof --duration $(DURATION) --output-dir $(OUTPUT_DIR)

workloads: $(WORKLOADS)

clean:
	rm -rf build build-san

# --- BPF ---------------------------------------------------------------------

# Generated from the running kernel's BTF; the checked-in copy is the
# fallback for machines without /sys/kernel/btf/vmlinux or bpftool.
$(BUILD)/vmlinux.h: bpf/vmlinux.h
	@mkdir -p $(@D)
	@if [ -r /sys/kernel/btf/vmlinux ] && \
	   $(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp 2>/dev/null; then \
		mv $@.tmp $@; \
	else \
		echo "vmlinux.h: no kernel BTF, using the checked-in bpf/vmlinux.h"; \
		rm -f $@.tmp; cp bpf/vmlinux.h $@; \
	fi

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -MMD -MP -MF $@.d -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

# Nothing built here is an intermediate to delete after use (generated
# sources, BPF objects, objects of single-file programs).
.SECONDARY:

# --- protobuf-c --------------------------------------------------------------

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: aggregator/proto/%.proto
	@mkdir -p $(@D)
	$(PROTOC_C) --proto_path=aggregator/proto --c_out=$(BUILD)/proto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(CC) $(filter-out -Wcast-qual -Wmissing-prototypes,$(CFLAGS)) -I$(BUILD)/proto -c $< -o $@

# --- C -----------------------------------------------------------------------

$(BUILD)/obj/probe/%.o: probe/%.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

# Tests (and benchmarks) may include any module's header.
$(BUILD)/obj/tests/%.o: tests/%.c | $(SKELS) $(PROTO_C)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -I$(BUILD)/proto -Iaggregator -Iprobe -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(PROTO_C)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -I$(BUILD)/proto -c $< -o $@

# Archives, so a program or the test binary pulls only the objects it uses.
$(BUILD)/libshared.a: $(SHARED_OBJ)
$(BUILD)/libprobe.a: $(PROBE_OBJ)
$(BUILD)/libagg.a: $(AGG_OBJ)
$(BUILD)/%.a:
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

LIBS_ALL := $(BUILD)/libprobe.a $(BUILD)/libagg.a $(BUILD)/libshared.a

$(BUILD)/splitprof-probe: $(BUILD)/obj/probe/main.o $(BUILD)/libprobe.a $(BUILD)/libshared.a
	$(CC) $(LDFLAGS) $^ $(PROBE_LIBS) -o $@

$(BUILD)/splitprof: $(BUILD)/obj/probe/launcher.o $(BUILD)/libshared.a
	$(CC) $(LDFLAGS) $^ -o $@

$(BUILD)/splitprof-aggregator: $(BUILD)/obj/aggregator/main.o $(BUILD)/libagg.a $(BUILD)/libshared.a
	$(CC) $(LDFLAGS) $^ $(AGG_LIBS) -o $@

$(TEST_BIN): $(TEST_OBJ) $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(TEST_LIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(PROBE_LIBS) $(AGG_LIBS) -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
