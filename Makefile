# Thin wrapper over scripts and CMake; see README.md.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build test test-unit test-integration test-e2e test-kafka test-asan test-tsan chaos fuzz fuzz-smoke fuzz-build fuzz-merge kafka-up kafka-down run bench clean

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure

test-unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -L unit

test-integration: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -L integration

test-e2e: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -L e2e

test-kafka: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -L kafka

# Benchmarks beside resilience4j and Caffeine; writes bench/REPORT.md (not part of `make test`).
bench: deps
	bash bench/run.sh

# The unit and integration tiers under sanitizers, each in its own build folder (CI runs both).
test-asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAGENTLINE_SANITIZE=address,undefined
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 AGENTLINE_TEST_TIME_SCALE=2 \
	  ctest --test-dir build-asan --output-on-failure -L 'unit|integration'

test-tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAGENTLINE_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS)
	TSAN_OPTIONS=suppressions=$(CURDIR)/tests/support/tsan.supp:halt_on_error=1:second_deadlock_stack=1 AGENTLINE_TEST_TIME_SCALE=4 \
	  ctest --test-dir build-tsan --output-on-failure -L 'unit|integration'

# The long chaos run (tests/chaos/chaos.py): 5,000 tasks on Apache Kafka (KRaft, loopback) with
# SIGKILLs, a broker restart, a 30 s LLM outage and a flaky webhook. Counts in build/chaos-report.json.
CHAOS_TASKS ?= 5000
chaos: build
	bash tests/kafka/kafka-local.sh start --state $(BUILD_DIR)/chaos-kafka
	python3 tests/chaos/chaos.py $(BUILD_DIR)/bin . --tasks $(CHAOS_TASKS) --kafka-state $(BUILD_DIR)/chaos-kafka \
	  --report $(BUILD_DIR)/chaos-report.json; rc=$$?; \
	  bash tests/kafka/kafka-local.sh stop --state $(BUILD_DIR)/chaos-kafka; exit $$rc

# libFuzzer targets (tests/fuzz), built with clang, ASan and UBSan in build-fuzz. `make fuzz` runs
# each for FUZZ_SECONDS (new inputs go to build-fuzz/corpus/<target>; `make fuzz-merge` folds
# them into the committed tests/fuzz/corpus). `make fuzz-smoke` is CI's short run.
FUZZ_TARGETS = fuzz_message fuzz_topic_catalog fuzz_config fuzz_qa_diagnostics
FUZZ_SECONDS ?= 600
fuzz-build: deps
	bash tests/fuzz/install-clang.sh
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DAGENTLINE_SANITIZE=address,undefined -DAGENTLINE_FUZZ=ON -DBUILD_TESTING=OFF
	cmake --build build-fuzz -j $(JOBS) --target agentline_fuzzers

fuzz: fuzz-build
	bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	bash tests/fuzz/run.sh build-fuzz 30 $(FUZZ_TARGETS)

fuzz-merge: fuzz-build
	bash tests/fuzz/run.sh build-fuzz merge $(FUZZ_TARGETS)

# A local Apache Kafka (KRaft, loopback) for trying things by hand; prints its address.
kafka-up:
	bash tests/kafka/kafka-local.sh start

kafka-down:
	bash tests/kafka/kafka-local.sh stop

run: build
	bash scripts/run-demo.sh $(BUILD_DIR)/bin

clean:
	rm -rf $(BUILD_DIR) .agentline
