# Thin wrapper over scripts and CMake; see README.md.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build test test-unit test-integration test-e2e test-kafka kafka-up kafka-down run clean

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

# A local Apache Kafka (KRaft, loopback) for trying things by hand; prints its address.
kafka-up:
	bash tests/kafka/kafka-local.sh start

kafka-down:
	bash tests/kafka/kafka-local.sh stop

run: build
	bash scripts/run-demo.sh $(BUILD_DIR)/bin

clean:
	rm -rf $(BUILD_DIR) .agentline
