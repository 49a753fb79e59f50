# thresher — the two commands a new user runs are `make demo` and `make test`; both do their own
# set-up (Python venv with torch, datasets from registry packages) on a fresh machine.

SHELL := /bin/bash
CARGO ?= cargo
CC ?= gcc
CXX ?= g++
PY := .venv/bin/python
LIB_DIR := target/release
CFLAGS_STRICT := -std=c99 -Wall -Wextra -Werror -pedantic -g -O1
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
RUST_LINK := -lpthread -ldl -lm

.PHONY: all setup build header check test test-rust test-c test-python demo demo-text bench clean

# Crates by role (Cargo workspace): the C ABI crate `thresher` at the root (src/ffi, include/),
# thresher-core, thresher-cli (the `thresher` command) and thresher-train (links libtorch, so it
# is built only by the trainer targets below).
RUST_PKGS := --workspace --exclude thresher-train

all: build

setup:
	@bash scripts/setup.sh

build:
	$(CARGO) build --release -p thresher --lib

# Regenerate the checked-in header (tests/header.rs fails when it is stale).
header:
	THRESHER_BLESS=1 $(CARGO) test -q -p thresher --test header
	$(PY) bindings/python/gen_capi.py

# The edit loop (a few minutes on 2 cores once built): formatting, clippy, header and _capi
# drift, every Rust unit and integration test, and the C ABI test under ASan + UBSan.
check: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(RUST_PKGS) --all-targets -- -D warnings
	$(CARGO) test $(RUST_PKGS)
	$(PY) bindings/python/gen_capi.py --check
	$(MAKE) test-c test-julia

test: setup test-rust test-c test-julia test-valgrind test-cpp test-cpp-reader test-mpi test-cpp-trainer test-cpp-mnist test-install test-python test-wheel test-dali test-hf test-trainer test-fuzz
	@echo "make test: all suites passed"

test-rust:
	THRESHER_REQUIRE_PILLOW=1 $(CARGO) test $(RUST_PKGS) --all-targets
	$(CARGO) clippy $(RUST_PKGS) --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

# The C ABI from a strict C99 program under AddressSanitizer + UBSan, linked statically.
test-c: build
	@mkdir -p build
	$(CC) $(CFLAGS_STRICT) $(SAN) -Iinclude tests/c/abi_test.c tests/c/abi_errors.c tests/c/abi_epochs.c tests/c/abi_state.c tests/c/abi_dlpack.c tests/c/abi_index.c tests/c/abi_index_epochs.c tests/c/abi_special.c tests/c/abi_tensors.c tests/c/abi_hostile.c $(LIB_DIR)/libthresher.a $(RUST_LINK) -o build/abi_test
	@nm build/abi_test | grep -q __asan_init || { echo "AddressSanitizer is not linked"; exit 1; }
	@echo "AddressSanitizer linked: $$(nm build/abi_test | grep -c __asan_) asan symbols"
	# allocator_may_return_null: the library allocates fallibly where a size may not fit (a
	# refused budget is an error, not an abort), which needs malloc to say no as libc does.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 ./build/abi_test data/mnist
	# The header included twice and compiled as C++ too.
	$(CXX) -std=c++17 -Wall -Wextra -Werror -Iinclude -fsyntax-only -x c++ tests/c/header_cpp.cpp

# The C example under valgrind memcheck: 0 errors and 0 bytes definitely lost, or it fails.
# (Allocations stay per epoch, none per batch in steady state: docs/performance.md.)
test-valgrind: build
	@mkdir -p build
	$(CC) -std=c99 -O1 -g -Wall -Wextra -Iinclude examples/c_stream/stream.c $(LIB_DIR)/libthresher.a $(RUST_LINK) -o build/stream_vg
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 ./build/stream_vg data/fashion-mnist 1

# Soak (not in make test): 200 epochs of Fashion-MNIST with feedback; RSS within 5% after epoch
# 5, constant thread count, loader freed under load within 1 s (examples/soak.rs).
soak: setup
	$(CARGO) run --release --example soak -- data/fashion-mnist 200

# The Python package (ctypes over the C ABI, NumPy and torch/DLPack flavours) and its pytest
# suite: a real training loop, zero-copy, memory, every error path, header staleness.
# pycparser generates and checks _capi.py; a venv made before setup.sh listed it lacks it.
test-python: build
	@$(PY) -c "import pycparser" 2>/dev/null || $(PY) -m pip install --quiet pycparser
	$(PY) -m pip install --quiet ./bindings/python
	$(PY) -m pytest bindings/python/tests -q

# The wheel as a user without the toolchain gets it: `pip wheel` (which runs cargo and bundles
# libthresher.so), installed into a brand-new venv (NumPy from PyPI, binaries only), then run
# with an empty environment and a PATH without cargo: version against Cargo.toml's, the library
# loaded from the wheel, one batch of Fashion-MNIST (bindings/python/tests/wheel_check.py).
.PHONY: test-wheel
test-wheel: setup
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir "$$tmp/no-cargo" && \
	$(PY) -m pip wheel --quiet --no-deps -w "$$tmp/dist" ./bindings/python && \
	$(PY) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install --quiet --only-binary=:all: "$$tmp"/dist/thresher-*-py3-none-*.whl && \
	env -i PATH="$$tmp/no-cargo" HOME="$$HOME" "$$tmp/venv/bin/python" -I bindings/python/tests/wheel_check.py "$(CURDIR)"

# The main demo: the reference trainer compares full data, random pruning and InfoBatch on
# Fashion-MNIST (20,000 training and 5,000 test samples, 8 epochs, 3 seeds; its duration is in
# docs/performance.md), then prints the table and the plot's path.
# random prunes 30% of every epoch; InfoBatch runs at its paper default r = 0.5, which realises
# about 30% over the run (see the table's realised column).
demo: setup trainer
	./target/release/thresher-train compare --dataset fashion-mnist --policies full,random,infobatch:prune=0.5 --prune 0.3 --limit 20000 --test-limit 5000 --epochs 8 --seeds 3 --out results

# The text demo: the reference trainer compares full data, random pruning and InfoBatch on a
# small byte-level transformer trained on English text (the fortune files of Debian's `fortunes`,
# made into data/text/{train,val}.bin by `make setup`; configs in examples/text/), 3 seeds; writes
# results/text/compare.{md,png,json} (validation loss against training time) and prints the table.
demo-text: setup trainer
	./target/release/thresher-train compare --config examples/text/train.json --val-config examples/text/val.json --policies full,random,infobatch:prune=0.5 --prune 0.3 $(TEXT_DEMO_FLAGS) --seeds 3 --out results/text

# The model and schedule of the text demo (sized for 2 cores; its duration is in the README).
TEXT_DEMO_FLAGS := --epochs 4 --classes 256 --d-model 128 --layers 2 --heads 4 --lr 4e-3 --weight-decay 0.01 --threads 1

# The C example that streams a few epochs through the C ABI.
demo-c: setup build
	@mkdir -p build
	$(CC) -std=c99 -O2 -Wall -Wextra -Iinclude examples/c_stream/stream.c $(LIB_DIR)/libthresher.a $(RUST_LINK) -o build/stream
	./build/stream data/fashion-mnist 3

# ---- The reference libtorch trainer, thresher-train (issue 5) ----------------------------

.PHONY: trainer test-trainer demo-c

# torch-sys asks the venv's Python where libtorch is (LIBTORCH_USE_PYTORCH=1; it runs `python3`
# from PATH); build.rs asks the same Python and gives the binary an rpath to torch/lib, so it
# runs without LD_LIBRARY_PATH. The first build compiles torch-sys (minutes).
trainer: setup
	LIBTORCH_USE_PYTORCH=1 PATH="$(CURDIR)/.venv/bin:$$PATH" $(CARGO) build --release -p thresher-train

# CI smoke test: one epoch on 2,000 samples with infobatch and with influence through the built
# binary; the loss must fall and the test accuracy be well above chance (crates/thresher-train/tests/trainer_smoke.rs).
# Then --config on data the test makes: a token stream (transformer), npy features with labels
# and with float targets (MLP) (tests/trainer_config.rs); and the trainer's unit tests.
test-trainer: setup
	LIBTORCH_USE_PYTORCH=1 PATH="$(CURDIR)/.venv/bin:$$PATH" $(CARGO) test --release -p thresher-train --bins --test trainer_smoke --test trainer_config
	LIBTORCH_USE_PYTORCH=1 PATH="$(CURDIR)/.venv/bin:$$PATH" $(CARGO) clippy --release -p thresher-train --all-targets -- -D warnings

# Each fuzz target for about 60 s over its committed corpus (cargo-fuzz is installed on first
# use; RUSTC_BOOTSTRAP lets it pass its sanitizer flags to the stable toolchain).
FUZZ_SECONDS ?= 60
test-fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --quiet --locked cargo-fuzz --version 0.13.2
	# New inputs go to a scratch corpus (libFuzzer writes into the first directory), so a test
	# run leaves the checked-in corpus untouched.
	cd fuzz && scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	for t in config idx scorefile cifar tar npy tokens jpeg; do \
	  mkdir -p "$$scratch/$$t"; \
	  TMPDIR=/dev/shm RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t "$$scratch/$$t" corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 2>&1 | tail -n 2; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# Every side-by-side comparison in one go (its duration is in docs/performance.md), then docs/performance.md
# with its plots and raw JSON (docs/bench/): the micro bench (plan time per policy and N,
# feedback ingest, ScoreBook bytes, next+release, epoch-boundary wait; benches/micro/),
# the whole-epoch view in index mode; thresher.torch.Sampler against torch's BatchSampler on one
# DataLoader (benches/compare_sampler.py); pre-decoded IDX and the PNG/JPEG pipelines against
# PyTorch's DataLoader, the JPEG pipeline also against DALI's CPU pipeline (installed by
# setup), torchvision v2 on decode_jpeg tensors and a full-size libjpeg-turbo decode of every
# file (simplejpeg, installed here, and Pillow); 200,000 small PNGs read with the page cache
# dropped before each run (benches/cold_read.py: read-ahead on and off; the data set, about
# 1 GB, is made once under data/ by make_image_data.py), and a link to the
# trainer's accuracy-against-time comparison (results/long, not rerun: it takes hours).
# matplotlib (for the plots) and torchvision are installed into .venv when missing. Cargo honours
# an externally set CARGO_TARGET_DIR; so do the scripts. Criterion's per-epoch figure is
# `cargo bench --bench loader`.
bench: setup build
	@$(PY) -c "import matplotlib" 2>/dev/null || $(PY) -m pip install --quiet matplotlib
	@$(PY) -c "import torchvision" 2>/dev/null || $(PY) -m pip install --quiet "torch==$$($(PY) -c 'import torch; print(torch.__version__.split("+")[0])')" torchvision
	@$(PY) -c "import simplejpeg" 2>/dev/null || $(PY) -m pip install --quiet "simplejpeg==1.9.0"
	$(PY) benches/make_image_data.py
	$(CARGO) build --release --example throughput --example image_throughput --example cold_read
	$(PY) benches/report.py

# The image pipeline against torch's DataLoader + torchvision (ImageFolder, RandomResizedCrop,
# flip, ToTensor, Normalize) on the same files, 2 workers, batch 128: 5,000 JPEG photographs
# (cut from the sample images in scikit-image's wheel) and Fashion-MNIST as 60,000 PNGs, both made
# once under data/ by benches/make_image_data.py. torchvision is installed beside the venv's
# torch when missing. Per-stage figures: `cargo bench --bench images`.
.PHONY: bench-images
bench-images: setup
	@$(PY) -c "import torchvision" 2>/dev/null || $(PY) -m pip install --quiet "torch==$$($(PY) -c 'import torch; print(torch.__version__.split("+")[0])')" torchvision
	@$(PY) -c "import simplejpeg" 2>/dev/null || $(PY) -m pip install --quiet "simplejpeg==1.9.0"
	$(PY) benches/make_image_data.py
	$(CARGO) build --release --example image_throughput
	$(PY) benches/compare_images.py

clean:
	$(CARGO) clean
	rm -rf build

# ---- C++ wrapper, libtorch C++ trainer, install (bindings issue) ----------------------------

.PHONY: test-cpp test-mpi cpp-trainer test-cpp-trainer install test-install

CXXFLAGS_STRICT := -std=c++17 -Wall -Wextra -Werror -pedantic -g -O1
# The torch wheel in .venv carries libtorch's headers and libraries; found by path, so make
# does not start Python (seconds, with torch) unless a trainer target runs.
TORCH_DIR = $(firstword $(wildcard .venv/lib/python3*/site-packages/torch))
TORCH_INCLUDES = -isystem $(TORCH_DIR)/include -isystem $(TORCH_DIR)/include/torch/csrc/api/include
# CPU only: libtorch_cpu and c10 suffice, and leaving out libtorch.so keeps the CUDA libraries
# (which the wheel also ships) from being loaded at start-up.
TORCH_LIBS = -L$(TORCH_DIR)/lib -Wl,-rpath,$(abspath $(TORCH_DIR)/lib) -ltorch_cpu -lc10
PREFIX ?= /usr/local
# The package version for thresher.pc and the CMake version file: Cargo.toml's, the one the
# header's THRESHER_VERSION and thresher_version() are tested against.
CARGO_VERSION = $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
INSTALL_PREFIX = $(abspath $(PREFIX))
# The parts of the C++ wrapper that thresher.hpp includes (installed beside it).
CXX_PARTS = $(wildcard include/thresher/*.hpp)

# The C++17 wrapper against the static library under ASan + UBSan + LSan, on Fashion-MNIST (one
# program: wrapper_test.cpp, loaders with data and main; wrapper_index.cpp, index mode); then
# the header alone as C++17 and C++20 (it must not depend on what one standard lacks).
test-cpp: setup build
	@mkdir -p build
	$(CXX) $(CXXFLAGS_STRICT) $(SAN) -Iinclude tests/cpp/wrapper_test.cpp tests/cpp/wrapper_index.cpp $(LIB_DIR)/libthresher.a $(RUST_LINK) -o build/wrapper_test
	@nm build/wrapper_test | grep -q __asan_init || { echo "AddressSanitizer is not linked"; exit 1; }
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./build/wrapper_test data/fashion-mnist
	$(CXX) -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only -x c++ include/thresher.hpp
	$(CXX) -std=c++20 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only -x c++ include/thresher.hpp
	# Each part under include/thresher/ compiles alone (it includes what it uses).
	for h in $(CXX_PARTS); do \
	  $(CXX) -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ $$h || exit 1; \
	done

# The libtorch C++ trainer (examples/cpp_trainer). The object depends only on its sources, so
# the slow compile of torch's headers happens once; the link reruns after every build.
# _GLIBCXX_USE_CXX11_ABI must match the wheel's, which only torch itself can say.
cpp-trainer: setup build build/cpp_trainer

build/cpp_trainer.o: examples/cpp_trainer/train.cpp include/thresher.hpp $(CXX_PARTS) include/thresher.h | setup
	@mkdir -p build
	abi=$$($(PY) -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') && \
	$(CXX) -std=c++17 -O2 -Wall -Wextra -D_GLIBCXX_USE_CXX11_ABI=$$abi -Iinclude $(TORCH_INCLUDES) -c $< -o $@

build/cpp_trainer: build/cpp_trainer.o build
	$(CXX) $< $(LIB_DIR)/libthresher.a $(TORCH_LIBS) $(RUST_LINK) -o $@

# Ranks over MPI (examples/mpi_feedback): feedback gathered with MPI_Allgatherv, equal batch
# counts, equal digests on every rank after every epoch; with 2 and 3 ranks. MPICH comes from
# PyPI into .venv (scripts/setup.sh).
test-mpi: setup build
	@mkdir -p build
	.venv/bin/mpicxx $(CXXFLAGS_STRICT) -Iinclude examples/mpi_feedback/mpi_feedback.cpp $(LIB_DIR)/libthresher.a $(RUST_LINK) -Wl,-rpath,$(CURDIR)/.venv/lib -o build/mpi_feedback
	.venv/bin/mpiexec -n 2 ./build/mpi_feedback data/fashion-mnist 3
	.venv/bin/mpiexec -n 3 ./build/mpi_feedback data/fashion-mnist 2

# One short epoch (3,000 training samples, 2,000 test samples): builds, trains, feeds back.
test-cpp-trainer: cpp-trainer
	./build/cpp_trainer --data data/fashion-mnist --epochs 1 --limit 3000 --test-limit 2000 --threads 1

# make install PREFIX=/opt/thresher [DESTDIR=staging]: the shared and static library, the C
# header and the C++ wrapper (thresher.hpp with its parts under thresher/, thresher_torch.hpp),
# thresher.pc and the CMake package (templates in packaging/).
install: build
	install -d $(DESTDIR)$(INSTALL_PREFIX)/lib/pkgconfig $(DESTDIR)$(INSTALL_PREFIX)/lib/cmake/thresher $(DESTDIR)$(INSTALL_PREFIX)/include/thresher
	install -m 755 $(LIB_DIR)/libthresher.so $(DESTDIR)$(INSTALL_PREFIX)/lib/libthresher.so
	install -m 644 $(LIB_DIR)/libthresher.a $(DESTDIR)$(INSTALL_PREFIX)/lib/libthresher.a
	install -m 644 include/thresher.h include/thresher.hpp include/thresher_torch.hpp $(DESTDIR)$(INSTALL_PREFIX)/include/
	install -m 644 $(CXX_PARTS) $(DESTDIR)$(INSTALL_PREFIX)/include/thresher/
	sed -e 's|@PREFIX@|$(INSTALL_PREFIX)|g' -e 's|@VERSION@|$(CARGO_VERSION)|g' packaging/thresher.pc.in > $(DESTDIR)$(INSTALL_PREFIX)/lib/pkgconfig/thresher.pc
	install -m 644 packaging/thresherConfig.cmake.in $(DESTDIR)$(INSTALL_PREFIX)/lib/cmake/thresher/thresherConfig.cmake
	sed -e 's|@VERSION@|$(CARGO_VERSION)|g' packaging/thresherConfigVersion.cmake.in > $(DESTDIR)$(INSTALL_PREFIX)/lib/cmake/thresher/thresherConfigVersion.cmake

# Installs into a temporary prefix and builds C and C++ consumers through pkg-config and CMake.
test-install: setup build
	MAKE="$(MAKE)" CC="$(CC)" bash packaging/test/run.sh data/fashion-mnist

# ---- The Julia binding, checked without Julia (which cannot be installed here) ---------------

# bindings/julia/check_binding.py: every .jl file parses (tree-sitter's Julia grammar), every
# @ccall names a thresher.h function with its argument count and kinds (the header read by
# pycparser), every function has a wrapper in a file Thresher.jl includes, structs and constants
# match. Then its own tests, which feed it broken copies of the binding. The packages come from
# scripts/setup.sh.
.PHONY: test-julia
test-julia: setup
	$(PY) bindings/julia/check_binding.py
	$(PY) -m pytest bindings/julia -q

# ---- Index mode from C++: examples with their own readers (issue c14) ------------------------

.PHONY: test-cpp-reader

# examples/cpp_reader: a C++ pipeline that decodes Fashion-MNIST itself (its own gzip and IDX
# code) with its own reader threads and asks thresher (index mode) only for ids and weights;
# softmax regression in plain C++, losses fed back. Under ASan + UBSan + LSan, 4 epochs of
# InfoBatch on 6,000 samples: every kept id read once per epoch, epoch lengths and weights as
# InfoBatch's rule says, next() equal to the plan; then the same with the plan alone and
# end_epoch, 2 readers.
test-cpp-reader: setup build
	@mkdir -p build
	$(CXX) $(CXXFLAGS_STRICT) $(SAN) -pthread -Iinclude examples/cpp_reader/reader.cpp $(LIB_DIR)/libthresher.a $(RUST_LINK) -o build/cpp_reader
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./build/cpp_reader --data data/fashion-mnist --epochs 4 --limit 6000 --test-limit 2000
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./build/cpp_reader --data data/fashion-mnist --epochs 3 --limit 3000 --test-limit 1000 --readers 2 --depth 2 --plan-only

.PHONY: cpp-mnist test-cpp-mnist cpp-mnist-dataloader

# examples/cpp_mnist: the libtorch MNIST example (pytorch/examples' cpp/mnist structure) trained
# through include/thresher_torch.hpp. Built like the cpp_trainer (the object depends only on its
# sources, so torch's headers compile once). mnist_dataloader.cpp is the same program on
# libtorch's DataLoader; test-cpp-mnist checks that the two differ in at most 5 lines each way,
# runs the adapter's own test (tests/cpp/torch_adapter_test.cpp, ASan + UBSan + LSan: zero copy,
# tensors keeping the batch alive, weighted_loss, index mode), then 1 epoch of the example over
# 12,000 training samples (smoke.json) and 2,000 test samples.
cpp-mnist: setup build build/cpp_mnist

build/cpp_mnist.o: examples/cpp_mnist/mnist.cpp include/thresher_torch.hpp include/thresher.hpp $(CXX_PARTS) include/thresher.h | setup
	@mkdir -p build
	abi=$$($(PY) -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') && \
	$(CXX) -std=c++17 -O2 -Wall -Wextra -Werror -D_GLIBCXX_USE_CXX11_ABI=$$abi -Iinclude $(TORCH_INCLUDES) -c $< -o $@

build/cpp_mnist: build/cpp_mnist.o build
	$(CXX) $< $(LIB_DIR)/libthresher.a $(TORCH_LIBS) $(RUST_LINK) -o $@

build/torch_adapter_test: tests/cpp/torch_adapter_test.cpp include/thresher_torch.hpp include/thresher.hpp $(CXX_PARTS) include/thresher.h $(LIB_DIR)/libthresher.a | setup
	@mkdir -p build
	abi=$$($(PY) -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') && \
	$(CXX) -std=c++17 -g -O1 -Wall -Wextra -Werror $(SAN) -D_GLIBCXX_USE_CXX11_ABI=$$abi -Iinclude $(TORCH_INCLUDES) $< $(LIB_DIR)/libthresher.a $(TORCH_LIBS) $(RUST_LINK) -o $@

test-cpp-mnist: cpp-mnist build/torch_adapter_test
	@add=$$(diff examples/cpp_mnist/mnist_dataloader.cpp examples/cpp_mnist/mnist.cpp | grep -c '^>'); \
	del=$$(diff examples/cpp_mnist/mnist_dataloader.cpp examples/cpp_mnist/mnist.cpp | grep -c '^<'); \
	echo "cpp_mnist: $$add lines in, $$del lines out against the DataLoader version"; \
	test "$$add" -le 5 -a "$$del" -le 5
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 OMP_NUM_THREADS=1 ./build/torch_adapter_test data/mnist
	OMP_NUM_THREADS=1 ./build/cpp_mnist examples/cpp_mnist/smoke.json 1 2000

# The DataLoader version, for comparison (not in make test): ./build/cpp_mnist_dataloader
cpp-mnist-dataloader: setup
	@mkdir -p build
	abi=$$($(PY) -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') && \
	$(CXX) -std=c++17 -O2 -Wall -Wextra -Werror -D_GLIBCXX_USE_CXX11_ABI=$$abi $(TORCH_INCLUDES) examples/cpp_mnist/mnist_dataloader.cpp $(TORCH_LIBS) -o build/cpp_mnist_dataloader

# ---- Examples with other frameworks' data pipelines and trainers (examples/dali, examples/hf_trainer)

.PHONY: test-dali test-hf

# Packages these examples use, installed into .venv when missing (scripts/setup.sh installs them too).
DALI_PIP := nvidia-dali-cuda130==2.4.0
HF_PIP := transformers==5.23.0 datasets==5.2.0 accelerate==1.15.0
# Exits 0 when every module named after it is installed (found, not imported: importing
# transformers takes seconds).
HAS_MODULES := import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in sys.argv[1:]))
EXAMPLE_ENV := THRESHER_LIBRARY=$(CURDIR)/$(LIB_DIR)/libthresher.so PYTHONPATH=$(CURDIR)/bindings/python

# thresher's index mode drives a CPU-only DALI pipeline (external source reads the planned ids'
# PNGs, DALI decodes and augments), 3 epochs of InfoBatch on 2,000 Fashion-MNIST images.
test-dali: setup build
	@$(PY) -c "$(HAS_MODULES)" nvidia.dali || $(PY) -m pip install --quiet "$(DALI_PIP)"
	THRESHER_REQUIRE_DALI=1 $(EXAMPLE_ENV) $(PY) -m pytest examples/dali -q

# transformers.Trainer with thresher.torch.Sampler as its batch sampler and per-sample losses
# booked through sampler.weighted_loss: a tiny BERT from a config (random weights, nothing
# downloaded) on a synthetic text set, 2 epochs of InfoBatch.
test-hf: setup build
	@$(PY) -c "$(HAS_MODULES)" transformers datasets accelerate || $(PY) -m pip install --quiet $(HF_PIP)
	HF_HUB_OFFLINE=1 THRESHER_REQUIRE_HF=1 $(EXAMPLE_ENV) $(PY) -m pytest examples/hf_trainer -q
