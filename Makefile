# xregion: the two commands of README.md, and the steps they are made of.
#
#   make demo     the running gateway: simulators and nginx with the module
#   make check    everything CI runs: deps build unit asan fuzz-smoke
#                 valgrind-cli module e2e
#   make bench    figures: the translation core, then the gateway against
#                 nginx alone and the Lua and njs peers (docs/performance.md)
#   make soak     1,000,000 requests, worker memory sampled (not in check)
#
# The C build itself is CMake's (CMakeLists.txt); this file only sequences.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

BUILD        ?= build
BUILD_ASAN   ?= build-asan
BUILD_FUZZ   ?= build-fuzz
JOBS         ?= 2
FUZZ_SECONDS ?= 30
SMOKE_SECONDS ?= 10
BENCH_ARGS   ?=
SOAK_ARGS    ?=

XREGION_BIN  := $(abspath $(BUILD))/xregion
# python3-pytest installs into Debian's python, whatever else is on PATH
PYTHON       ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 \
                  || echo python3)

section = printf '\n==== %s ====\n' '$(1)'

# the steps of check run in the order written, even under make -j
.NOTPARALLEL:

.PHONY: all deps build unit asan fuzz-build fuzz fuzz-smoke valgrind-cli module e2e demo-translate \
	check demo bench soak clean

all: build

deps:
	@$(call section,deps: Debian packages)
	@tools/install-deps.sh

build: deps
	@$(call section,build: $(BUILD))
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

unit: build
	@$(call section,unit: cmocka tests)
	ctest --test-dir $(BUILD) --output-on-failure

asan: deps
	@$(call section,asan: unit tests under ASan + UBSan)
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_C_COMPILER=clang -DXR_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --test-dir $(BUILD_ASAN) --output-on-failure

# The fuzz build instruments the core library too (fuzzer-no-link), so that
# libFuzzer sees the coverage of the code under test, not only of the
# harness; ASan and UBSan catch what the inputs break.
fuzz-build: deps
	@$(call section,fuzz-build: $(BUILD_FUZZ))
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_C_COMPILER=clang -DXR_FUZZ=ON -DXR_SANITIZE=ON \
	    -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
	cmake --build $(BUILD_FUZZ) -j$(JOBS)

fuzz: fuzz-build
	@$(call section,fuzz: $(FUZZ_SECONDS)s per target)
	tools/run-fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@$(call section,fuzz-smoke: $(SMOKE_SECONDS)s per target)
	tools/run-fuzz.sh $(BUILD_FUZZ) $(SMOKE_SECONDS)

valgrind-cli: build
	@$(call section,valgrind-cli: xregion under valgrind)
	tools/valgrind-cli.sh $(XREGION_BIN)

# The nginx module is built against Debian's nginx sources by its own
# script once module/ has a config file.
module: deps
	@$(call section,module: nginx dynamic module)
	@if [ ! -f module/config ]; then \
	    echo "module: no module/config yet: skipped"; \
	elif [ ! -f tools/build-module.sh ]; then \
	    echo "module: module/config exists but tools/build-module.sh" \
	         "is missing" >&2; \
	    exit 1; \
	else \
	    bash tools/build-module.sh; \
	fi

# pytest exits 5 when it collects nothing: fine while there is nothing.
e2e: build
	@$(call section,e2e: end-to-end tests)
	@if compgen -G 'tests/e2e/test_*.py' > /dev/null; then \
	    XREGION_BIN=$(XREGION_BIN) \
	        $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e; \
	else \
	    rc=0; \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e || rc=$$?; \
	    [ $$rc -eq 0 ] || [ $$rc -eq 5 ]; \
	fi

check: deps build unit asan fuzz-smoke valgrind-cli module e2e

# The running gateway: simulators and nginx with the module on 127.0.0.1,
# the endpoints and one call per domain; Ctrl-C stops everything.
demo: build module
	@$(call section,demo: the gateway (Ctrl-C stops it))
	@tools/demo.sh

# Offline: example messages translated between regions, side by side.
demo-translate: build
	@$(call section,demo: translations between regions)
	@tools/demo-translate.sh $(XREGION_BIN)

# Figures for docs/performance.md: the translation core per codec pair and
# the 2 KB target, then, in one run with the same payloads, return 200,
# plain proxy_pass, xregion per domain (cold, cache hit, replay), the Lua
# and njs peers and the audit log (BENCH_ARGS="--seconds 3" for a short
# one).  bench/gateway_bench.py and cache_bench.py stay for profiling
# (XR_BENCH_CALLGRIND, XR_BENCH_STRACE).
bench: build module
	@$(call section,bench: translation core)
	@taskset -c 1 $(BUILD)/bench_translate
	@$(call section,bench: xregion vs return 200 / proxy_pass / Lua / njs)
	@$(PYTHON) bench/compare_bench.py $(BENCH_ARGS)

# Worker memory over 1,000,000 requests (SOAK_ARGS="--requests 200000").
soak: build module
	@$(call section,soak: worker memory under load)
	@$(PYTHON) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) fuzz-corpus .demo
