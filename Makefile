# Thin wrapper over scripts and CMake; see README.md.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
# Tests run side by side; those that cannot share the machine carry RUN_SERIAL or a
# RESOURCE_LOCK in tests/CMakeLists.txt.
TEST_JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# scripts/install-deps.sh's profile: `run` for make run, `test` (everything) otherwise.
DEPS ?= test
CTEST = ctest --output-on-failure -j $(TEST_JOBS) --test-dir

.PHONY: deps configure build binaries test test-unit test-integration test-e2e test-kafka test-llm test-container image run-llm test-asan test-tsan \
  asan-build chaos fuzz fuzz-smoke fuzz-build fuzz-merge format-check kafka-up kafka-down run bench clean distclean

deps:
	bash scripts/install-deps.sh $(DEPS)

configure: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The six services, the gateway and the agentline command; no tests.
binaries: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target agentline_binaries

test: build
	$(CTEST) $(BUILD_DIR)

test-unit: build
	$(CTEST) $(BUILD_DIR) -L unit

test-integration: build
	$(CTEST) $(BUILD_DIR) -L integration

test-e2e: build
	$(CTEST) $(BUILD_DIR) -L e2e

test-kafka: build
	$(CTEST) $(BUILD_DIR) -L kafka

# The real-model tier: goals through the pipeline against llama.cpp's server with SmolLM2-135M
# (scripts/install-llm.sh, built once per machine). Part of `make test` too.
test-llm: build
	$(CTEST) $(BUILD_DIR) -L llm

# The container image: docker/Dockerfile built with podman against a debootstrapped Debian 12
# base (scripts/build-image.sh; no Docker engine or registry needed), and its test: the demo's
# pipeline with every process a container of the image (tests/container). Part of `make test`.
image:
	bash scripts/build-image.sh

test-container: build
	$(CTEST) $(BUILD_DIR) -L container

# One clang build with ASan+UBSan serves both the sanitizer tier and the libFuzzer targets
# (tests/fuzz); TSan has a build of its own. No PCH here: ccache cannot map clang's
# -include-pch path to another clone, so with it every fresh clone rebuilt this tree.
asan-build: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DAGENTLINE_SANITIZE=address,undefined -DAGENTLINE_FUZZ=ON -DAGENTLINE_PCH=OFF \
	  $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)

test-asan: asan-build
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 AGENTLINE_TEST_TIME_SCALE=2 \
	  $(CTEST) build-asan -L 'unit|integration'

test-tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAGENTLINE_SANITIZE=thread $(CMAKE_FLAGS)
	cmake --build build-tsan -j $(JOBS)
	TSAN_OPTIONS=suppressions=$(CURDIR)/tests/support/tsan.supp:halt_on_error=1:second_deadlock_stack=1 AGENTLINE_TEST_TIME_SCALE=4 \
	  $(CTEST) build-tsan -L 'unit|integration'

# The long chaos run (tests/chaos/chaos.py): 5,000 tasks on Apache Kafka (KRaft, loopback) with
# SIGKILLs, a broker restart, a 30 s LLM outage and a flaky webhook. Counts in build/chaos-report.json.
CHAOS_TASKS ?= 5000
chaos: build
	bash tests/kafka/kafka-local.sh start --state $(BUILD_DIR)/chaos-kafka
	python3 tests/chaos/chaos.py $(BUILD_DIR)/bin . --tasks $(CHAOS_TASKS) --kafka-state $(BUILD_DIR)/chaos-kafka \
	  --report $(BUILD_DIR)/chaos-report.json; rc=$$?; \
	  bash tests/kafka/kafka-local.sh stop --state $(BUILD_DIR)/chaos-kafka; exit $$rc

# libFuzzer targets (tests/fuzz), from the ASan+UBSan build. `make fuzz` runs each for
# FUZZ_SECONDS (new inputs go to build-asan/corpus/<target>; `make fuzz-merge` folds them into
# the committed tests/fuzz/corpus). `make fuzz-smoke` is CI's short run.
FUZZ_TARGETS = fuzz_message fuzz_topic_catalog fuzz_config fuzz_qa_diagnostics
FUZZ_SECONDS ?= 600
fuzz-build: asan-build

fuzz: fuzz-build
	bash tests/fuzz/run.sh build-asan $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	bash tests/fuzz/run.sh build-asan 30 $(FUZZ_TARGETS)

fuzz-merge: fuzz-build
	bash tests/fuzz/run.sh build-asan merge $(FUZZ_TARGETS)

# clang-format --dry-run --Werror over every tracked C++ file (CI's first step).
format-check: deps
	bash scripts/check-format.sh

# A local Apache Kafka (KRaft, loopback) for trying things by hand; prints its address.
kafka-up:
	bash tests/kafka/kafka-local.sh start

kafka-down:
	bash tests/kafka/kafka-local.sh stop

# The same demo with a goal and a real model (scripts/run-llm.sh: the local SmolLM2 by default,
# any OpenAI-compatible endpoint with AGENTLINE_LLM_BASE_URL).
run-llm: DEPS = run
run-llm: binaries
	bash scripts/run-llm.sh $(BUILD_DIR)/bin

run: DEPS = run
run: binaries
	bash scripts/run-demo.sh $(BUILD_DIR)/bin

# Benchmarks beside resilience4j and Caffeine; writes bench/REPORT.md (not part of `make test`).
bench: deps
	bash bench/run.sh

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz .agentline

# Also the machine-wide cache of what is built once per machine (scripts/lib/cache.sh).
distclean: clean
	bash -c '. scripts/lib/cache.sh && rm -rf "$$agentline_cache"'
