# Top-level convenience targets. The real build is CMake + Ninja in build/.
#   make            build build/memgpt
#   make run        install missing packages, build, start `memgpt chat`
#   make test       install missing packages, build, run the whole suite (CTest)
#   make test-sanitize   the same suite built with ASan + UBSan in build-san/
#   make fuzz       run every fuzz target (fuzz/) for FUZZ_TIME seconds, in build-fuzz/
#   make bench      run the benchmarks in bench/
#   make soak       20,000 turns of one agent, then 50 agents on memgpt serve,
#                   under faults and kill -9 (bench/soak; figures in build/soak-*.json)
#   make screenshots     the web app's pictures in docs/img (for the README)
#   make format     clang-format every C file

DEB_PACKAGES := build-essential cmake ninja-build pkg-config libcurl4-openssl-dev \
                libjansson-dev libsqlite3-dev libedit-dev libcmocka-dev python3 libpcre2-dev \
                poppler-utils python3-regex libmicrohttpd-dev
BUILD ?= build

# The fuzz targets (fuzz/README.md): clang and its libFuzzer runtime
# (libclang-rt-dev is Debian's compiler-rt of the default clang).
FUZZ_PACKAGES := clang libclang-rt-dev
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 60
FUZZ_SMOKE_TIME ?= 5

.PHONY: all build deps test-deps fuzz-deps run test test-sanitize fuzz fuzz-build fuzz-smoke \
        bench soak screenshots format clean

all: build

build:
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD)
	@./scripts/fetch-tokenizer-data.sh $(BUILD) || echo "warning: no tokenizer data; memgpt will estimate token counts"

# $(call install_missing,PACKAGES): installs the Debian packages of the list
# that are missing, and only when it can (root + apt-get).
install_missing = missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing packages:$$missing (install them with apt-get as root)"; exit 1; \
	  fi; \
	fi

deps:
	@$(call install_missing,$(DEB_PACKAGES))

# Letta's TypeScript SDK for the server's tests (tests/sdk/package.json,
# pinned by its lockfile). Node.js and npm are for tests only.
# What the test suite alone needs: Node.js with Letta's SDK (tests/sdk) and
# puppeteer-core (tests/web), each pinned by its lockfile, and Debian's
# chromium for the browser tests. Never needed to build or run memgpt.
# clang with libFuzzer too, for the smoke run of the fuzz targets.
test-deps: fuzz-deps
	@missing=""; command -v npm >/dev/null || missing="nodejs npm"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "installing:$$missing"; apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing:$$missing (install them)"; exit 1; fi; fi
	@for d in tests/sdk tests/web tests/mcp; do (cd $$d && { [ node_modules/.package-lock.json -nt package-lock.json ] || \
	  npm ci --no-audit --no-fund --loglevel=error >/dev/null; }) || exit 1; done

fuzz-deps:
	@$(call install_missing,$(FUZZ_PACKAGES))

run: deps build
	./$(BUILD)/memgpt chat

# The suite, then each fuzz target for FUZZ_SMOKE_TIME seconds (its seed
# replay is in the suite itself: the fuzz.* tests).
test: deps test-deps build
	cd $(BUILD) && ctest --output-on-failure -j2
	@$(MAKE) --no-print-directory fuzz-smoke

test-sanitize: deps test-deps
	@cmake -S . -B build-san -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMEMGPT_SANITIZE=ON >/dev/null
	@cmake --build build-san
	cd build-san && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j2

# Everything instrumented for libFuzzer (MEMGPT_FUZZ, clang only), in its
# own tree; the tokenizer's rank files too, for fuzz_bpe.
fuzz-build: deps fuzz-deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMGPT_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) --target fuzz_targets
	@./scripts/fetch-tokenizer-data.sh $(FUZZ_BUILD) >/dev/null 2>&1 || \
	  echo "warning: no tokenizer data; fuzz_bpe uses a rank table of its own"

# Each target (or those in FUZZ_TARGETS) for FUZZ_TIME seconds on a copy of
# its corpus, then a table: executions, coverage, findings (the inputs are
# left in FUZZ_BUILD/fuzz/campaign/).
fuzz: fuzz-build
	./fuzz/run.sh campaign $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_TARGETS)

# Each target for FUZZ_SMOKE_TIME seconds, two at a time: part of `make test`.
fuzz-smoke: fuzz-build
	cd $(FUZZ_BUILD) && FUZZ_SMOKE_TIME=$(FUZZ_SMOKE_TIME) ctest -L fuzz-smoke -j2 --output-on-failure

bench: deps build
	./bench/run.sh

soak: deps build
	python3 bench/soak --bin $(BUILD)/memgpt --report $(BUILD)/soak-cli.json
	python3 bench/soak --server --bin $(BUILD)/memgpt --report $(BUILD)/soak-server.json

screenshots: deps test-deps build
	MEMGPT_SCREENSHOTS_DIR=$(CURDIR)/docs/img MEMGPT_BIN=$(CURDIR)/$(BUILD)/memgpt \
	  python3 tests/integration/test_web_app.py WebAppTest.test_screenshots

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-fuzz
