# libhmt — see README.md. GNU make.
.DEFAULT_GOAL := all
.SUFFIXES:

# ---- version: one source of truth, the public header ------------------------
HDR := include/hmt/hmt.h
hdrnum = $(shell sed -n 's/^\#define $(1) *\([0-9]*\).*/\1/p' $(HDR))
VMAJOR := $(call hdrnum,HMT_VERSION_MAJOR)
VMINOR := $(call hdrnum,HMT_VERSION_MINOR)
VPATCH := $(call hdrnum,HMT_VERSION_PATCH)
ABI    := $(call hdrnum,HMT_ABI_VERSION)
VERSION := $(VMAJOR).$(VMINOR).$(VPATCH)
SONAME  := libhmt.so.$(ABI)
SOFULL  := libhmt.so.$(ABI).$(VMINOR).$(VPATCH)

# ---- install directories (GNU conventions) -----------------------------------
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
exec_prefix ?= $(prefix)
LIBDIR ?= $(exec_prefix)/lib
INCLUDEDIR ?= $(prefix)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BINDIR ?= $(exec_prefix)/bin
DESTDIR ?=

# ---- tools and flags ---------------------------------------------------------
CC ?= cc
CXX ?= c++
PYTHON ?= /usr/bin/python3
B ?= build
OPT ?= -O2
SANITIZE ?=
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(WERROR)
CPPFLAGS += -Iinclude -Ilib -D_GNU_SOURCE -MMD -MP
LIB_CFLAGS = -std=c11 $(OPT) -g -fPIC -fvisibility=hidden $(WARN) $(SANITIZE) $(CFLAGS)
APP_CFLAGS = -std=c99 $(OPT) -g $(WARN) $(SANITIZE) $(CFLAGS)
SLEEF_CFLAGS = $(shell pkg-config --cflags sleef 2>/dev/null)
SLEEF_LIBS = $(shell pkg-config --libs sleef 2>/dev/null || echo -lsleef)
XSMM_LIBS := -lxsmm -lxsmmnoblas
SYS_LIBS := -lpthread -lrt -ldl -lm
PRIV_LIBS = $(XSMM_LIBS) $(SLEEF_LIBS) $(SYS_LIBS)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -pthread -lcheck_pic -lrt -lm -lsubunit)

# ---- sources ---------------------------------------------------------------
LIB_SRC := $(sort $(wildcard lib/*.c lib/kernels/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
EX_SRC  := $(sort $(wildcard examples/*.c))
EX_BIN  := $(EX_SRC:examples/%.c=$(B)/bin/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bin/%)
TEST_SUITES := $(sort $(wildcard tests/check_*.c))
TEST_SRC := $(TEST_SUITES) $(wildcard tests/util/*.c) tests/runner.c
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)

SO := $(B)/$(SOFULL)
AR_LIB := $(B)/libhmt.a

.PHONY: all lib examples bench test check install uninstall clean deps asan \
        testdata run memcheck fuzz tsan abi-baseline
all: lib examples bench
lib: $(SO) $(B)/$(SONAME) $(B)/libhmt.so $(AR_LIB) $(B)/hmt.pc
examples: $(EX_BIN)
bench: $(BENCH_BIN)

$(B)/lib/%.o: lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SLEEF_CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(SO): $(LIB_OBJ) lib/libhmt.map
	$(CC) -shared -o $@ $(LIB_OBJ) $(SANITIZE) -Wl,-soname,$(SONAME) \
	  -Wl,--version-script=lib/libhmt.map -Wl,-z,defs -Wl,-z,relro -Wl,-z,now \
	  -Wl,--exclude-libs,ALL $(PRIV_LIBS) $(LDFLAGS)
$(B)/$(SONAME): $(SO)
	ln -sf $(SOFULL) $@
$(B)/libhmt.so: $(B)/$(SONAME)
	ln -sf $(SONAME) $@
$(AR_LIB): $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# Examples and benchmarks link the shared library the way a user would.
$(B)/bin/%: examples/%.c $(B)/libhmt.so $(HDR)
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(APP_CFLAGS) $< -o $@ -L$(B) -lhmt -lm -Wl,-rpath,'$$ORIGIN/..' $(LDFLAGS)
$(B)/bin/%: bench/%.c $(B)/libhmt.so $(AR_LIB) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SLEEF_CFLAGS) $(APP_CFLAGS) -std=gnu11 $< -o $@ $(AR_LIB) $(PRIV_LIBS) $(LDFLAGS)

# ---- pkg-config --------------------------------------------------------------
# Paths are written relative to ${prefix} / ${exec_prefix} where they can be,
# and regenerated on every install so PREFIX/LIBDIR given then are honoured.
PC_EXEC_PREFIX = $(patsubst $(prefix)%,$${prefix}%,$(exec_prefix))
PC_LIBDIR = $(patsubst $(exec_prefix)/%,$${exec_prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(prefix)/%,$${prefix}/%,$(INCLUDEDIR))
$(B)/hmt.pc: pkgconfig/hmt.pc.in $(HDR) FORCE
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(prefix)|' -e 's|@EXEC_PREFIX@|$(PC_EXEC_PREFIX)|' \
	    -e 's|@LIBDIR@|$(PC_LIBDIR)|' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@PRIV_LIBS@|$(XSMM_LIBS) $(SYS_LIBS)|' $< > $@.tmp
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:

# ---- tests -----------------------------------------------------------------
$(B)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I$(B)/tests $(SLEEF_CFLAGS) $(CHECK_CFLAGS) $(APP_CFLAGS) -std=gnu11 -c $< -o $@
$(B)/tests/suites.h: $(TEST_SUITES) Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' $(patsubst tests/check_%.c,'HMT_SUITE(%)',$(TEST_SUITES)) > $@.tmp && mv $@.tmp $@
$(B)/tests/runner.o: $(B)/tests/suites.h
$(B)/tests/check_hmt: $(TEST_OBJ) $(AR_LIB)
	$(CC) $(SANITIZE) -o $@ $(TEST_OBJ) $(AR_LIB) $(CHECK_LIBS) $(PRIV_LIBS) $(LDFLAGS)

TESTDATA := $(B)/testdata/.stamp
$(TESTDATA): $(wildcard tests/reference/*.py tools/*.py)
	@mkdir -p $(dir $@)
	$(PYTHON) tests/reference/make_testdata.py $(dir $@)
	touch $@
testdata: $(TESTDATA)

# The test suite (what CI runs) builds with warnings as errors; `make test
# WERROR=` turns that off for a compiler newer than the one we check with.
test check: WERROR ?= -Werror
test check: all $(B)/tests/check_hmt $(TESTDATA)
	HMT_TESTDATA=$(B)/testdata HMT_BUILD=$(B) $(B)/tests/check_hmt
	@for t in tests/*/check_*.sh; do \
	   B=$(B) CC="$(CC)" CXX="$(CXX)" PYTHON="$(PYTHON)" SANITIZE="$(SANITIZE)" sh $$t || exit 1; \
	 done
	@if command -v valgrind >/dev/null && [ -z "$(SANITIZE)" ]; then $(MAKE) --no-print-directory memcheck; \
	 else echo "memcheck: skipped (no valgrind, or a sanitizer build)"; fi

# valgrind memcheck over the examples: no leak, no invalid access.
VALGRIND = valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
  --error-exitcode=9
memcheck: examples
	$(VALGRIND) $(B)/bin/hmt-generate -m $(DEMO_MODEL) -p "$(DEMO_PROMPT)" -n 8 -t 2 > /dev/null
	$(VALGRIND) $(B)/bin/hmt-generate -m /nonexistent.gguf > /dev/null 2>&1; test $$? -eq 1
	@echo "memcheck: OK (examples clean under valgrind)"

# Same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) B=build-asan OPT=-O1 \
	  SANITIZE='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' test

# ---- the main job on the model shipped in models/ ---------------------------
# Score held-out Brown documents with HMT and the comparison modes, then
# generate through HMT (models/README.md, docs/TRAINING.md).
RUN_MODEL ?= models/brown-f16.gguf
RUN_ADAPTER ?= models/brown-hmt.gguf
RUN_TEXT ?= models/heldout/brown-heldout-3.txt
RUN_PROMPT ?= The jury said
run: all
	$(B)/bin/hmt-perplexity -m $(RUN_MODEL) -a $(RUN_ADAPTER) -f $(RUN_TEXT) --mode all -t 2 -q
	$(B)/bin/hmt-generate -m $(RUN_MODEL) -a $(RUN_ADAPTER) -p "$(RUN_PROMPT)" -n 80 --seed 1 -t 2

# The random demo model: memcheck and the thread tests use it (fast, tiny).
DEMO_MODEL ?= models/demo-random-f16.gguf
DEMO_ADAPTER ?= models/demo-random-hmt.gguf
DEMO_PROMPT ?= The history of

# Update the committed ABI baseline on purpose (see docs/ABI.md).
abi-baseline: lib
	B=$(B) sh tests/abi/check_abi.sh --update

# Threads: the shared-model suite under ThreadSanitizer.
tsan:
	$(MAKE) --no-print-directory B=build-tsan OPT=-O1 SANITIZE=-fsanitize=thread build-tsan/tests/check_hmt
	CK_RUN_SUITE=threads CK_FORK=no HMT_TESTDATA=$(B)/testdata build-tsan/tests/check_hmt

# ---- fuzzing (libFuzzer, clang from Debian: clang-14, libclang-rt-14-dev) ----
# Each target in tests/fuzz runs FUZZ_SECONDS; crashes are written to
# build-fuzz/crash-*; corpora grow in build-fuzz/corpus/<target>.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
# clang does not expose SLEEF's AVX entry points without the ISA macros, so
# the fuzz build targets an AVX-512 machine (the parsers do not care).
FUZZ_ISA = -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma -mf16c
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz:
	$(MAKE) --no-print-directory B=build-fuzz CC=$(FUZZ_CC) OPT='-O1 $(FUZZ_ISA)' \
	  SANITIZE='-fsanitize=fuzzer-no-link $(FUZZ_SAN)' build-fuzz/libhmt.a
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_CC) -g -O1 -fsanitize=fuzzer $(FUZZ_SAN) -Iinclude -Ilib tests/fuzz/fuzz_$$t.c \
	    build-fuzz/libhmt.a $(PRIV_LIBS) -o build-fuzz/fuzz_$$t || exit 1; \
	  mkdir -p build-fuzz/corpus/$$t; \
	  seeds=""; [ $$t = gguf ] && seeds="tests/data/tokenizer"; \
	  [ $$t = adapter ] && mkdir -p build-fuzz/seeds && cp $(DEMO_ADAPTER) build-fuzz/seeds/ && seeds=build-fuzz/seeds; \
	  echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus/$$t $$seeds 2>&1 | \
	    grep -E "stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|crash" || true; \
	  if ls build-fuzz/crash-$$t-* >/dev/null 2>&1; then echo "fuzz $$t: FAILED"; exit 1; fi; \
	done

# ---- install ---------------------------------------------------------------
install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/hmt $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/$(SOFULL)
	ln -sf $(SOFULL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libhmt.so
	install -m 644 $(AR_LIB) $(DESTDIR)$(LIBDIR)/libhmt.a
	install -m 644 include/hmt/*.h $(DESTDIR)$(INCLUDEDIR)/hmt/
	install -m 644 $(B)/hmt.pc $(DESTDIR)$(PKGCONFIGDIR)/hmt.pc
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SOFULL) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libhmt.so $(DESTDIR)$(LIBDIR)/libhmt.a \
	  $(DESTDIR)$(PKGCONFIGDIR)/hmt.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/hmt

deps:
	sh tools/install-deps.sh

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
