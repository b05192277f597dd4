# libhmt — see README.md. GNU make.
.DEFAULT_GOAL := all
.SUFFIXES:

# ---- `make deps GOALS...`: install first, then build in a fresh make --------
# This Makefile probes the system when it is parsed (FAISS, pkg-config flags),
# which is before `deps` could install anything. So when `deps` is among the
# goals, this make only installs, then starts a second make for the other
# goals: that one parses the Makefile anew and sees what was just installed.
ifneq ($(filter deps,$(MAKECMDGOALS)),)
AFTER_DEPS := $(filter-out deps,$(MAKECMDGOALS))
.PHONY: deps $(AFTER_DEPS)
deps:
	sh tools/install-deps.sh
	$(if $(AFTER_DEPS),$(MAKE) --no-print-directory $(AFTER_DEPS))
$(AFTER_DEPS): deps
	@:
else

# ---- version: one source of truth, the public header ------------------------
HDR := include/hmt/version.h
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
DOCDIR ?= $(prefix)/share/doc/hmt
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
# Optional FAISS backend (docs/KNN.md): found when libfaiss-dev's headers are
# installed; `make HAVE_FAISS=0` builds without it. Only the choice of bridge
# file (lib/hooks/knn_faiss.cc or lib/hooks/knn_faiss_stub.c), the link lines
# and the tests depend on it, so switching rebuilds just those (see the stamps below).
# Debian ships FAISS as a static C++ library: the bridge is then compiled with
# $(CXX) and libhmt links FAISS, OpenMP, BLAS/LAPACK and the C++ runtime
# privately. Real BLAS comes before libxsmm so that libxsmmnoblas' stub sgemm_
# never serves FAISS.
HAVE_FAISS ?= $(shell test -f /usr/include/faiss/IndexIVFPQ.h && echo 1 || echo 0)
ifeq ($(HAVE_FAISS),1)
FAISS_LIBS := -lfaiss -lgomp -llapack -lblas -lstdc++
TEST_CPPFLAGS := -DHMT_HAVE_FAISS
endif
ifneq ($(findstring clang,$(CC)),)
CXX := $(subst clang,clang++,$(CC))
endif
# -g1: line tables only; full DWARF of the bridge would pour libstdc++'s and
# libc's declarations into the ABI baseline (tests/abi/check_abi.sh).
# -fno-sanitize=vptr: the C driver that links sanitizer builds has no C++ UBSan runtime.
LIB_CXXFLAGS = -std=c++17 $(OPT) -g1 -fPIC -fvisibility=hidden -Wall -Wextra -Wshadow $(WERROR) \
  $(SANITIZE) $(if $(findstring undefined,$(SANITIZE)),-fno-sanitize=vptr) $(CXXFLAGS)
PRIV_LIBS = $(FAISS_LIBS) $(XSMM_LIBS) $(SLEEF_LIBS) $(SYS_LIBS)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -pthread -lcheck_pic -lrt -lm -lsubunit)

# ---- sources ---------------------------------------------------------------
# The library's layers, each a folder of lib/; a layer uses only those
# listed before it (includes name the folder: "core/error.h").
#   core      errors, allocation, handle guards, parameters, output buffers
#   kernels   GEMM (libxsmm), vector math (SLEEF), weight types, thread pool
#   io        GGUF reading, little-endian fields, files opened and written safely
#   text      tokenizer and its Unicode tables
#   backbone  the model, its forward pass, contexts
#   stream    HMT: adapters, streams (segments, memory, recall), snapshots
#   hooks     samplers and their processors, DITTO, kNN-LM datastore and search
LIB_LAYERS := core kernels io text backbone stream hooks
FAISS_BRIDGE := $(if $(filter 1,$(HAVE_FAISS)),lib/hooks/knn_faiss.cc,lib/hooks/knn_faiss_stub.c)
LIB_SRC := $(filter-out lib/hooks/knn_faiss_stub.c,$(sort $(wildcard $(LIB_LAYERS:%=lib/%/*.c)))) \
           $(filter %.c,$(FAISS_BRIDGE))
LIB_CXX_SRC := $(filter %.cc,$(FAISS_BRIDGE))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o) $(LIB_CXX_SRC:%.cc=$(B)/%.o)
# tools/progress.c is not a program: the progress line compiled into the
# tools of TOOL_PROGRESS (below)
TOOL_SRC := $(sort $(filter-out tools/progress.c,$(wildcard tools/*.c)))
TOOL_PROGRESS := hmt-datastore hmt-perplexity
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(B)/bin/%)
EX_SRC  := $(sort $(wildcard examples/*.c))
EX_BIN  := $(EX_SRC:examples/%.c=$(B)/examples/%)
# bench/ measures through the public API only (plus libxsmm for the machine's
# ceilings); bench/internal/ times the library's kernels and reads its structs.
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bin/%)
IBENCH_SRC := $(sort $(wildcard bench/internal/*.c))
IBENCH_BIN := $(IBENCH_SRC:bench/internal/%.c=$(B)/bin/%)
TEST_SUITES := $(sort $(wildcard tests/check_*.c))
TEST_SRC := $(TEST_SUITES) $(wildcard tests/util/*.c) tests/runner.c
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)

SO := $(B)/$(SOFULL)
AR_LIB := $(B)/libhmt.a

.PHONY: all lib tools examples bench test check install uninstall clean asan \
        testdata run memcheck memcheck-python fuzz tsan abi-baseline
all: lib tools examples bench
lib: $(SO) $(B)/$(SONAME) $(B)/libhmt.so $(AR_LIB) $(B)/hmt.pc
tools: $(TOOL_BIN)
examples: $(EX_BIN)
bench: $(BENCH_BIN) $(IBENCH_BIN)

# ---- build configuration stamps ----------------------------------------------
# Each kind of output depends on a stamp file holding the exact command line
# that builds it (Linux kbuild's .cmd files, one per kind because all outputs
# of a kind share their command but for $< and $@). A stamp is rewritten only
# when that line changes, so changing OPT, SANITIZE, CC, CFLAGS, WERROR,
# HAVE_FAISS, ... rebuilds exactly the outputs whose command it changes, in
# the same folder. Chosen over a folder per configuration because build/bin/
# stays the one place docs, scripts and users know, and folders would pile up.
STAMP := $(B)/.stamp
CMD_lib-c = $(CC) $(CPPFLAGS) $(SLEEF_CFLAGS) $(LIB_CFLAGS)
CMD_lib-cxx = $(CXX) $(CPPFLAGS) $(LIB_CXXFLAGS)
CMD_so = $(CC) -shared $(SANITIZE) $(SO_LDFLAGS) $(PRIV_LIBS) $(LDFLAGS) $(LIB_OBJ)
CMD_ar = ar rcs $(LIB_OBJ)
CMD_example = $(CC) -Iinclude $(APP_CFLAGS) $(EX_LDFLAGS) $(LDFLAGS)
CMD_bench = $(CC) -Iinclude $(APP_CFLAGS) $(EX_LDFLAGS) $(XSMM_LIBS) $(LDFLAGS)
CMD_ibench = $(CC) $(CPPFLAGS) $(SLEEF_CFLAGS) $(APP_CFLAGS) $(PRIV_LIBS) $(LDFLAGS)
CMD_test-c = $(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(SLEEF_CFLAGS) $(CHECK_CFLAGS) $(APP_CFLAGS)
CMD_test-link = $(CC) $(SANITIZE) $(CHECK_LIBS) $(PRIV_LIBS) $(LDFLAGS) $(TEST_OBJ)
STAMPS := $(addprefix $(STAMP)/,lib-c lib-cxx so ar example bench ibench test-c test-link)
$(STAMPS): $(STAMP)/%: FORCE
	$(shell mkdir -p $(STAMP))$(file >$@.new,$(CMD_$*))
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi

$(B)/lib/%.o: lib/%.c $(STAMP)/lib-c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SLEEF_CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(B)/lib/%.o: lib/%.cc $(STAMP)/lib-cxx
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(LIB_CXXFLAGS) -c $< -o $@

SO_LDFLAGS = -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libhmt.map -Wl,-z,defs \
  -Wl,-z,relro -Wl,-z,now -Wl,--exclude-libs,ALL
$(SO): $(LIB_OBJ) lib/libhmt.map $(STAMP)/so
	$(CC) -shared -o $@ $(LIB_OBJ) $(SANITIZE) $(SO_LDFLAGS) $(PRIV_LIBS) $(LDFLAGS)
$(B)/$(SONAME): $(SO)
	ln -sf $(SOFULL) $@
$(B)/libhmt.so: $(B)/$(SONAME)
	ln -sf $(SONAME) $@
$(AR_LIB): $(LIB_OBJ) $(STAMP)/ar
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

# Tools (programs users run, installed), examples (short programs users
# read, not installed) and the benchmarks of bench/ link the shared library
# the way a user would, with only include/ on the path; those of
# bench/internal/ link the static one (they time internal kernels).
EX_LDFLAGS = -L$(B) -lhmt -lm -Wl,-rpath,'$$ORIGIN/..'
$(B)/bin/%: tools/%.c $(B)/libhmt.so $(HDR) $(STAMP)/example
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(APP_CFLAGS) $(filter %.c,$^) -o $@ $(EX_LDFLAGS) $(LDFLAGS)
$(B)/examples/%: examples/%.c $(B)/libhmt.so $(HDR) $(STAMP)/example
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(APP_CFLAGS) $< -o $@ $(EX_LDFLAGS) $(LDFLAGS)
$(B)/bin/%: bench/%.c $(B)/libhmt.so $(HDR) $(STAMP)/bench
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(APP_CFLAGS) -std=gnu11 $< -o $@ $(EX_LDFLAGS) $(XSMM_LIBS) -lpthread $(LDFLAGS)
$(B)/bin/%: bench/internal/%.c $(B)/libhmt.so $(AR_LIB) $(HDR) $(STAMP)/ibench
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ibench $(SLEEF_CFLAGS) $(APP_CFLAGS) -std=gnu11 $< -o $@ $(AR_LIB) $(PRIV_LIBS) $(LDFLAGS)
$(BENCH_BIN) $(IBENCH_BIN): $(wildcard bench/*.h bench/internal/*.h) # their shared headers

# ---- pkg-config --------------------------------------------------------------
# Paths are written relative to ${prefix} / ${exec_prefix} where they can be,
# and regenerated on every install so PREFIX/LIBDIR given then are honoured.
PC_EXEC_PREFIX = $(patsubst $(prefix)%,$${prefix}%,$(exec_prefix))
PC_LIBDIR = $(patsubst $(exec_prefix)/%,$${exec_prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(prefix)/%,$${prefix}/%,$(INCLUDEDIR))
$(B)/hmt.pc: pkgconfig/hmt.pc.in $(HDR) FORCE
	@mkdir -p $(B)
	@sed -e 's|@PREFIX@|$(prefix)|' -e 's|@EXEC_PREFIX@|$(PC_EXEC_PREFIX)|' \
	    -e 's|@LIBDIR@|$(PC_LIBDIR)|' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@PRIV_LIBS@|$(FAISS_LIBS) $(XSMM_LIBS) $(SYS_LIBS)|' $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:

# ---- tests -----------------------------------------------------------------
$(B)/tests/%.o: tests/%.c $(STAMP)/test-c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) -I$(B)/tests $(SLEEF_CFLAGS) $(CHECK_CFLAGS) $(APP_CFLAGS) -std=gnu11 -c $< -o $@
$(B)/tests/suites.h: $(TEST_SUITES) Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' $(patsubst tests/check_%.c,'HMT_SUITE(%)',$(TEST_SUITES)) > $@.tmp && mv $@.tmp $@
$(B)/tests/runner.o: $(B)/tests/suites.h
$(B)/tests/check_hmt: $(TEST_OBJ) $(AR_LIB) $(STAMP)/test-link
	$(CC) $(SANITIZE) -o $@ $(TEST_OBJ) $(AR_LIB) $(CHECK_LIBS) $(PRIV_LIBS) $(LDFLAGS)

TESTDATA := $(B)/testdata/.stamp
$(TESTDATA): $(wildcard tests/reference/*.py tools/*.py)
	@mkdir -p $(dir $@)
	$(PYTHON) tests/reference/make_testdata.py $(dir $@)
	# the built-in sampling processors (tests/check_samplers.c)
	$(PYTHON) tests/reference/sampler_ref.py $(dir $@)
	touch $@
testdata: $(TESTDATA)

# The test suite (what CI runs) builds with warnings as errors; `make test
# WERROR=` turns that off for a compiler newer than the one we check with.
test check: WERROR ?= -Werror
test check: all $(B)/tests/check_hmt $(TESTDATA)
	HMT_TESTDATA=$(B)/testdata HMT_BUILD=$(B) $(B)/tests/check_hmt
	@for t in tests/*/check_*.sh; do \
	   B=$(B) CC="$(CC)" CXX="$(CXX)" PYTHON="$(PYTHON)" SANITIZE="$(SANITIZE)" WERROR="$(WERROR)" \
	     sh $$t || exit 1; \
	 done
	@if command -v valgrind >/dev/null && [ -z "$(SANITIZE)" ]; then $(MAKE) --no-print-directory WERROR="$(WERROR)" memcheck; \
	 else echo "memcheck: skipped (no valgrind, or a sanitizer build)"; fi

# valgrind memcheck over the examples and hmt-generate: no leak, no invalid access.
VALGRIND = valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
  --error-exitcode=9
memcheck: examples tools
	$(VALGRIND) $(B)/bin/hmt-generate -m $(DEMO_MODEL) -p "$(DEMO_PROMPT)" -n 8 -t 2 > /dev/null
	$(VALGRIND) $(B)/bin/hmt-generate -m $(DEMO_MODEL) --chat --chat-template chatml --system "Be brief." -p "$(DEMO_PROMPT)" -n 4 -t 2 > /dev/null
	$(VALGRIND) $(B)/bin/hmt-generate -m $(DEMO_MODEL) -p "$(DEMO_PROMPT)" -n 6 -t 2 --min-p 0.05 --typical 0.9 --repeat-penalty 1.1 --frequency-penalty 0.1 --presence-penalty 0.1 --repeat-last-n 16 --logit-bias 5=-inf --logit-bias 7=1.5 > /dev/null
	$(VALGRIND) $(B)/bin/hmt-generate -m /nonexistent.gguf > /dev/null 2>&1; test $$? -eq 1
	$(VALGRIND) $(B)/examples/simple $(DEMO_MODEL) "$(DEMO_PROMPT)" 8 > /dev/null
	$(VALGRIND) $(B)/examples/processors $(DEMO_MODEL) "$(DEMO_PROMPT)" > /dev/null
	$(VALGRIND) $(B)/examples/hmt-score $(DEMO_MODEL) $(DEMO_ADAPTER) LICENSE > /dev/null
	$(VALGRIND) $(B)/examples/snapshot $(DEMO_MODEL) $(DEMO_ADAPTER) $(B)/memcheck.hmts > /dev/null
	$(VALGRIND) $(B)/examples/prompt_cache $(DEMO_MODEL) $(B)/memcheck.hmtc "$(DEMO_PROMPT)" 8 > /dev/null
	$(VALGRIND) $(B)/examples/serve_streams $(DEMO_MODEL) $(DEMO_ADAPTER) 6 > /dev/null
	$(VALGRIND) $(B)/examples/simple /nonexistent.gguf > /dev/null 2>&1; test $$? -eq 1
	@rm -f $(B)/memcheck.hmts $(B)/memcheck.hmtc
	@echo "memcheck: OK (examples and hmt-generate clean under valgrind)"

# valgrind memcheck over the Python tests (and the C side of their
# bit-identity test); only reports that libhmt is responsible for fail it
# (tests/python/vg_libhmt.py; docs/ROBUSTNESS.md).
memcheck-python: lib $(TESTDATA)
	B=$(B) CC="$(CC)" PYTHON="$(PYTHON)" sh tests/python/memcheck_python.sh

# Same suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own
# build dir (ASAN_B; a second checkout or CI can pick another).
ASAN_B ?= build-asan
asan:
	$(MAKE) B=$(ASAN_B) OPT=-O1 \
	  SANITIZE='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' test

# ---- the main job on the model shipped in models/ ---------------------------
# Score the 50 held-out Brown documents (each a fresh stream, PPL token-weighted)
# with HMT and the comparison modes, then
# generate through HMT (models/README.md, docs/TRAINING.md).
RUN_MODEL ?= models/brown-f16.gguf
RUN_ADAPTER ?= models/brown-hmt.gguf
RUN_TEXT ?= $(sort $(wildcard models/heldout/c*.txt))
RUN_PROMPT ?= The jury said
run: all
	$(B)/bin/hmt-perplexity -m $(RUN_MODEL) -a $(RUN_ADAPTER) $(addprefix -f ,$(RUN_TEXT)) --mode all -t 2 -q
	$(B)/bin/hmt-generate -m $(RUN_MODEL) -a $(RUN_ADAPTER) -p "$(RUN_PROMPT)" -n 80 --seed 1 -t 2

# The random demo model: memcheck and the thread tests use it (fast, tiny).
DEMO_MODEL ?= models/demo-random-f16.gguf
DEMO_ADAPTER ?= models/demo-random-hmt.gguf
DEMO_PROMPT ?= The history of

# Update the committed ABI baseline on purpose (see docs/ABI.md).
abi-baseline: lib
	B=$(B) sh tests/abi/check_abi.sh --update

# Threads under ThreadSanitizer, in its own build dir (TSAN_B): the
# shared-model suite and the concurrent-misuse suite. Both read only the
# committed models/, so a clean tree needs no generated test data. Any
# report fails the run (halt_on_error).
TSAN_B ?= build-tsan
tsan:
	$(MAKE) --no-print-directory B=$(TSAN_B) OPT=-O1 SANITIZE=-fsanitize=thread $(TSAN_B)/tests/check_hmt
	for s in threads misuse threadpool seqs kvtype streams_feed; do \
	  CK_RUN_SUITE=$$s CK_FORK=no TSAN_OPTIONS=halt_on_error=1 $(TSAN_B)/tests/check_hmt || exit 1; \
	done

# ---- fuzzing (libFuzzer, clang from Debian: clang-14, libclang-rt-14-dev) ----
# tests/fuzz/fuzz.sh runs each target for FUZZ_SECONDS on seeds made from the
# models and test data of $(B) (tests/fuzz/make_seeds.py) and the committed
# regression inputs; a crash, sanitizer report or leak fails it. The library
# is built for generic x86-64 with run-time kernel choice, like the release
# build, so the pass runs on any x86-64 machine.
FUZZ_CC ?= clang-14
FUZZ_B ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: tools $(TESTDATA)
	$(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) OPT=-O1 \
	  SANITIZE='-fsanitize=fuzzer-no-link $(FUZZ_SAN)' $(FUZZ_B)/libhmt.a
	FUZZ_CC=$(FUZZ_CC) FUZZ_B=$(FUZZ_B) B=$(B) FUZZ_SECONDS=$(FUZZ_SECONDS) PYTHON=$(PYTHON) \
	  FUZZ_SAN='$(FUZZ_SAN)' PRIV_LIBS='$(PRIV_LIBS)' FUZZ_TARGETS='$(FUZZ_TARGETS)' \
	  sh tests/fuzz/fuzz.sh

# ==== install, uninstall and packaging: C, CMake and Python hosts ============
# (docs/GETTING_STARTED.md). Everything built here lives under $(PKG_B); the
# folders pip leaves next to python/ when run in place are PKG_CLEAN (for `clean`).
PKG_B := $(B)/pkg
PKG_CLEAN := python/build python/hmt.egg-info
CMAKEDIR ?= $(LIBDIR)/cmake/hmt
TOOLS := $(TOOL_SRC:tools/%.c=%)
relpath = $(shell realpath -m --relative-to='$(1)' '$(2)')
LDCONFIG ?= ldconfig

# The installed tools are relinked with a RUNPATH relative to their own place,
# $ORIGIN/<BINDIR to LIBDIR>, so they find LIBDIR's libhmt on the live system,
# in a DESTDIR staging tree, and after the prefix moves; $(B)/bin's copies keep
# $ORIGIN/.. for the build tree (libtool relinks at install time the same way).
# $(PKG_B)/rpath changes only when that path does, so the relink is rare.
$(PKG_B)/rpath: FORCE
	@mkdir -p $(dir $@)
	@echo '$$ORIGIN/$(call relpath,$(BINDIR),$(LIBDIR))' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(PKG_B)/bin/%: tools/%.c $(B)/libhmt.so $(HDR) $(PKG_B)/rpath $(STAMP)/example
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(APP_CFLAGS) $(filter %.c,$^) -o $@ -L$(B) -lhmt -lm -Wl,-rpath,"$$(cat $(PKG_B)/rpath)" $(LDFLAGS)
PKG_TOOLS := $(addprefix $(PKG_B)/bin/,$(TOOLS))
$(addprefix $(B)/bin/,$(TOOL_PROGRESS)) $(addprefix $(PKG_B)/bin/,$(TOOL_PROGRESS)): \
  tools/progress.c tools/progress.h

# CMake package: hmtConfig.cmake (targets hmt::hmt, hmt::hmt_static) and
# hmtConfigVersion.cmake, from cmake/*.in with sed, regenerated on each
# install so the directories given then are honoured. Paths are written
# relative to the config file's folder (relocatable, like CMake's
# configure_package_config_file); an absolute LIBDIR/INCLUDEDIR outside the
# prefix stays absolute. hmt::hmt_static links what libhmt.so links (PRIV_LIBS:
# FAISS when built in, libxsmm, sleef, system libraries), hmt.pc's Libs.private
# plus its Requires.private. ABI_SINCE: the release that started this ABI,
# the oldest version node of lib/libhmt.map (docs/ABI.md).
empty :=
space := $(empty) $(empty)
ABI_SINCE = $(shell sed -n 's/^HMT_\([0-9][0-9.]*\) *{.*/\1/p' lib/libhmt.map | head -n 1)
CMAKE_SUBST = -e 's|@VERSION@|$(VERSION)|g' -e 's|@ABI@|$(ABI)|g' -e 's|@ABI_SINCE@|$(ABI_SINCE)|g' \
  -e 's|@SONAME@|$(SONAME)|g' -e 's|@SOFULL@|$(SOFULL)|g' \
  -e 's|@PREFIX_REL@|$(call relpath,$(CMAKEDIR),$(prefix))|g' \
  -e 's|@LIBDIR@|$(patsubst $(prefix)/%,%,$(LIBDIR))|g' \
  -e 's|@INCLUDEDIR@|$(patsubst $(prefix)/%,%,$(INCLUDEDIR))|g' \
  -e 's|@STATIC_LIBS@|$(subst $(space),;,$(strip $(PRIV_LIBS)))|g' \
  -e 's|@SIZEOF_VOID_P@|$(SIZEOF_VOID_P)|g'
SIZEOF_VOID_P = $(shell $(CC) -dM -E -x c /dev/null | sed -n 's/^\#define __SIZEOF_POINTER__ //p')
$(PKG_B)/cmake/%.cmake: cmake/%.cmake.in $(HDR) lib/libhmt.map FORCE
	@mkdir -p $(dir $@)
	@sed $(CMAKE_SUBST) $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
CMAKE_FILES := $(PKG_B)/cmake/hmtConfig.cmake $(PKG_B)/cmake/hmtConfigVersion.cmake

# `make` prepares all of it for the default directories, so that `sudo make
# install` relinks and rewrites nothing (no root-owned files in $(B)) unless
# given other directories.
all: $(PKG_TOOLS) $(CMAKE_FILES)

# Like libtool's --finish step and many CMake projects, refresh the loader's
# cache after (un)installing on a live system, so programs find libhmt.so.N
# without the user knowing about ldconfig. Never under DESTDIR: that is a staging tree
# (a package's own scripts run ldconfig). Not fatal: a user installing into
# their own prefix is not root, and their tools still work via RUNPATH.
define pkg_ldconfig
	@if [ -z "$(DESTDIR)" ]; then \
	   if $(LDCONFIG) 2>/dev/null; then echo "$@: ran $(LDCONFIG)"; \
	   else echo "$@: could not run $(LDCONFIG) (not root?); if $(LIBDIR) is not in the loader's path, use LD_LIBRARY_PATH"; fi; \
	 fi
endef

install: lib $(PKG_TOOLS) $(CMAKE_FILES)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/hmt $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(BINDIR) $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/$(SOFULL)
	ln -sf $(SOFULL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libhmt.so
	install -m 644 $(AR_LIB) $(DESTDIR)$(LIBDIR)/libhmt.a
	install -m 644 include/hmt/*.h $(DESTDIR)$(INCLUDEDIR)/hmt/
	install -m 644 $(B)/hmt.pc $(DESTDIR)$(PKGCONFIGDIR)/hmt.pc
	install -m 644 $(CMAKE_FILES) $(DESTDIR)$(CMAKEDIR)/
	install -m 755 $(PKG_TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 644 docs/*.md CHANGES.md $(DESTDIR)$(DOCDIR)/
	$(pkg_ldconfig)
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SOFULL) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libhmt.so $(DESTDIR)$(LIBDIR)/libhmt.a \
	  $(DESTDIR)$(PKGCONFIGDIR)/hmt.pc $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS))
	rm -rf $(DESTDIR)$(INCLUDEDIR)/hmt $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(DOCDIR)
	$(pkg_ldconfig)

# Python: a wheel that bundles libhmt.so.N inside the package (hmt/, found
# there by python/hmt/_capi.py), built offline with Debian's pip and
# setuptools from a copy of python/ so the source tree stays clean.
wheel: lib
	rm -rf $(PKG_B)/wheel $(PKG_B)/dist/hmt-*.whl && mkdir -p $(PKG_B)/wheel/src
	cp -r python/pyproject.toml python/setup.py python/hmt $(PKG_B)/wheel/src/
	rm -rf $(PKG_B)/wheel/src/hmt/__pycache__
	cp $(SO) $(PKG_B)/wheel/src/hmt/$(SONAME)
	cd $(PKG_B)/wheel && $(PYTHON) -m pip wheel -q --no-build-isolation --no-deps --no-index \
	  --disable-pip-version-check -w ../dist ./src
	@ls $(PKG_B)/dist/hmt-$(VERSION)-*.whl

# python/hmt/_version.py repeats the header's version for setuptools (which
# reads it without importing the package); regenerate it after a version bump
# (tests/packaging/check_python_version.sh fails until then).
python-version:
	printf '%s\n' '# Generated from include/hmt/version.h by `make python-version`; do not edit.' \
	  '__version__ = "$(VERSION)"' 'ABI_VERSION = $(ABI)' > python/hmt/_version.py
.PHONY: wheel python-version
# ==== end of install and packaging ============================================

# Every build folder this Makefile makes: the default, the sanitizer and
# fuzzing ones, and a B= given on this command line (never the source tree
# itself or a root).
CLEAN_DIRS := $(filter-out . ./ .. ../ / ~,$(sort build $(B) $(ASAN_B) $(TSAN_B) $(FUZZ_B)))
clean:
	rm -rf $(CLEAN_DIRS) $(PKG_CLEAN)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

endif # the deps branch at the top
