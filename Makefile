# tcplb — see README.md. `make` builds build/tcplb; `make run` starts a demo;
# `make test` runs unit and integration tests, then again under ASan+UBSan.
# `make install` / `make uninstall` / `make deb`: mk/install.mk.

BUILD    ?= build
CC       ?= gcc
OPTFLAGS ?= -O2 -g
SANFLAGS ?=
# -MMD -MP: every object also writes the headers it read (build/**/*.d,
# included below), so changing a header rebuilds exactly what uses it.
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPTFLAGS) $(SANFLAGS) -Wall -Wextra -Iinclude \
            -fno-strict-aliasing -pthread -MMD -MP \
            $(shell pkg-config --cflags inih 2>/dev/null) \
            $(shell pkg-config --cflags libev 2>/dev/null) \
            $(shell pkg-config --cflags libcares 2>/dev/null) \
            $(shell pkg-config --cflags liburing 2>/dev/null)
LDFLAGS  += $(SANFLAGS) -pthread
LIBEV    := $(shell pkg-config --libs libev 2>/dev/null || echo -lev)
LIBINIH  := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
# Debian's libhttp-parser-dev ships a header and a library but no .pc file
LIBHTTPP := $(shell pkg-config --libs http-parser 2>/dev/null || echo -lhttp_parser)
# c-ares: the asynchronous resolver of `discover`
LIBCARES := $(shell pkg-config --libs libcares 2>/dev/null || echo -lcares)
# liburing: the io_uring data path (io = io_uring)
LIBURING := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
LDLIBS   += $(LIBEV) $(LIBINIH) $(LIBHTTPP) $(LIBCARES) $(LIBURING) -lm

SRCS     := $(wildcard src/*.c)
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(filter-out src/main.c,$(SRCS))) \
            $(BUILD)/obj/page.o
MAIN_OBJ := $(BUILD)/obj/main.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOLS    := $(BUILD)/tcplb-backend $(BUILD)/skewload $(BUILD)/pick_bench

.PHONY: all deps test-deps run test unit integration asan-test clean
all: $(BUILD)/tcplb $(TOOLS)

deps:
	@sh tools/deps.sh
test-deps:
	@sh tools/deps.sh test

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj $(BUILD)/tests:
	@mkdir -p $@

# The stats page is kept as plain HTML and compiled in as a byte array.
$(BUILD)/obj/page.c: src/web/page.html | $(BUILD)/obj
	{ echo '/* generated from src/web/page.html by the Makefile */'; \
	  echo 'const char page_html[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0x00 };'; \
	  echo 'const unsigned long page_html_len = sizeof(page_html) - 1;'; } > $@

$(BUILD)/obj/page.o: $(BUILD)/obj/page.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tcplb: $(LIB_OBJS) $(MAIN_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tcplb-backend: tools/backend/backend.c | $(BUILD)/obj
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBEV) -lm

# The scheduler micro-benchmark (tools/bench/README.md), built with everything
# else so that it cannot rot; run by hand, never by the tests.
$(BUILD)/pick_bench: tools/bench/pick_bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

# skewload (tools/skewload) builds from its own objects; its unit tests,
# tests/unit/test_skewload*.c, link those without main.o (a shorter stem, so
# this rule wins over the one below). -Itools/skewload goes first so its
# headers are found before include/.
SKEW_OBJS := $(patsubst tools/skewload/%.c,$(BUILD)/obj/skewload/%.o,\
             $(filter-out tools/skewload/main.c,$(wildcard tools/skewload/*.c)))

$(BUILD)/obj/skewload/%.o: tools/skewload/%.c
	@mkdir -p $(@D)
	$(CC) -Itools/skewload $(CFLAGS) -c -o $@ $<

$(BUILD)/skewload: $(SKEW_OBJS) $(BUILD)/obj/skewload/main.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBEV) -lm

$(BUILD)/tests/test_skewload%: tests/unit/test_skewload%.c $(SKEW_OBJS) | $(BUILD)/tests
	$(CC) -Itools/skewload $(CFLAGS) $(LDFLAGS) -o $@ $< $(SKEW_OBJS) $(LIBEV) -lm \
	    $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) \
	    $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

run: deps all
	@sh tools/demo.sh

unit: $(UNIT_BINS)
	@sh tests/run_unit.sh $(BUILD)

integration: all
	@python3 tests/integration/run.py --build $(BUILD)

# The whole suite against the -O2 build, then against an ASan+UBSan build.
test: test-deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@sh tests/run_all.sh build
	@$(MAKE) --no-print-directory BUILD=build-asan OPTFLAGS="-O1 -g" \
	    SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    asan-test

asan-test: all $(UNIT_BINS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    sh tests/run_all.sh $(BUILD)

# tcplb side by side with HAProxy and nginx stream on loopback (see
# docs/performance.md): about 7 minutes; bench-quick: about 1. Not a test:
# nothing is asserted. Extra options: make bench BENCH_ARGS="--reps 5".
.PHONY: bench bench-quick
bench: all
	@python3 tools/bench/bench.py --build $(BUILD) $(BENCH_ARGS)

bench-quick: all
	@python3 tools/bench/bench.py --quick --build $(BUILD) $(BENCH_ARGS)

# The skew lab (docs/lab.md): three nginx + php-fpm pools behind tcplb, both
# incidents replayed in a minute or two; writes docs/lab/ (report.md,
# results.json, SVG charts) and the measured part of docs/lab.md. nginx and
# php-fpm come with the test dependencies. make lab LAB_ARGS="--quick".
.PHONY: lab
lab: test-deps all
	@python3 tools/lab/lab.py --tcplb $(BUILD)/tcplb --skewload $(BUILD)/skewload \
	    --out docs/lab --doc docs/lab.md $(LAB_ARGS)

# Fuzzing (tests/fuzz/README.md): one target per parser of untrusted bytes
# (config, stats commands, PROXY header, HTTP check, request observer, agent
# lines, DNS answers, send/expect checks). `make fuzz` builds them with clang's
# libFuzzer in build/libfuzzer and runs each FUZZ_SECONDS (make fuzz
# FUZZ_SECONDS=300; FUZZ_TARGETS="proxy" for one), then keeps what added
# coverage in tests/fuzz/corpus/ (at most ~50 files a target). fuzz-replay,
# run by `make test`: every kept input once through gcc builds of the same
# targets (with the ASan flags when BUILD=build-asan).
FUZZ_TARGETS ?= config stats proxy http_check http_obs agent dns expect
FUZZ_SECONDS ?= 60
FUZZ_MAIN    ?= tests/fuzz/replay_main.c
FUZZ_BINS    := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_resolve.c $(FUZZ_MAIN) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--wrap=getaddrinfo -o $@ $(filter %.c,$^) \
	    $(LIB_OBJS) $(LDLIBS)

.PHONY: fuzz fuzz-replay
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/fuzz.sh $(FUZZ_TARGETS)

fuzz-replay: $(FUZZ_BINS)
	@status=0; for t in $(FUZZ_TARGETS); do \
	    $(BUILD)/fuzz/fuzz_$$t tests/fuzz/corpus/$$t || status=1; done; exit $$status

clean:
	rm -rf build build-asan

include mk/install.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
