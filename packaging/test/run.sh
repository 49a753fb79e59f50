#!/usr/bin/env bash
# run.sh — `make test-install`: installs thresher into a temporary prefix the way a user would
# (make install PREFIX=...), then builds and runs a C program against that tree through
# pkg-config, and a CMake project (C, C++17 wrapper, static) through find_package(thresher).
# Only the installed tree is used: nothing from the repository's include/ or target/.
# Usage: packaging/test/run.sh [FASHION_MNIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
CC=${CC:-cc}
data=$(realpath "${1:-data/fashion-mnist}")

for tool in pkg-config cmake; do
  if ! command -v $tool >/dev/null; then
    echo "test-install: $tool is missing (Debian: apt-get install -y $tool)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d /tmp/thresher-install-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

"$MAKE" --no-print-directory install PREFIX="$prefix" >/dev/null
# thresher.hpp includes its parts from include/thresher/: each must be installed beside it.
parts=$(cd include && ls thresher/*.hpp)
for f in lib/libthresher.so lib/libthresher.a include/thresher.h include/thresher.hpp \
         include/thresher_torch.hpp $(sed 's|^|include/|' <<<"$parts") \
         lib/pkgconfig/thresher.pc lib/cmake/thresher/thresherConfig.cmake \
         lib/cmake/thresher/thresherConfigVersion.cmake; do
  [ -f "$prefix/$f" ] || { echo "test-install: $prefix/$f was not installed" >&2; exit 1; }
done
echo "test-install: installed $version into $prefix"

# --- pkg-config ---------------------------------------------------------------------------
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion thresher)" = "$version" ] || {
  echo "test-install: thresher.pc says $(pkg-config --modversion thresher), Cargo.toml $version" >&2
  exit 1
}
[ "$(pkg-config --variable=prefix thresher)" = "$prefix" ]
# shellcheck disable=SC2046  # pkg-config's output is meant to be word-split
"$CC" -std=c99 -Wall -Wextra -Werror -pedantic packaging/test/hello.c \
  $(pkg-config --cflags --libs thresher) -Wl,-rpath,"$prefix/lib" -o "$tmp/hello_pkgconfig"
# The program must load the installed library, not one found elsewhere.
grep -q "=> $prefix/lib/libthresher.so" <<<"$(ldd "$tmp/hello_pkgconfig")" || {  # not a pipe: with pipefail, grep -q closing early fails ldd
  echo "test-install: hello_pkgconfig does not load $prefix/lib/libthresher.so:" >&2
  ldd "$tmp/hello_pkgconfig" >&2
  exit 1
}
"$tmp/hello_pkgconfig" "$data"
echo "test-install: pkg-config build ok"

# --- CMake --------------------------------------------------------------------------------
cmake -DVERSION_FILE="$prefix/lib/cmake/thresher/thresherConfigVersion.cmake" \
  -DVERSION="$version" -P packaging/test/version_check.cmake
cmake -S packaging/test -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$CC" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON \
  >"$tmp/cmake.log" || { cat "$tmp/cmake.log" >&2; exit 1; }
grep "found thresher" "$tmp/cmake.log"
cmake --build "$tmp/cmake" -j 2 >"$tmp/build.log" || { cat "$tmp/build.log" >&2; exit 1; }
grep -q "=> $prefix/lib/libthresher.so" <<<"$(ldd "$tmp/cmake/hello_c")" || {  # not a pipe: with pipefail, grep -q closing early fails ldd
  echo "test-install: hello_c does not load $prefix/lib/libthresher.so:" >&2
  ldd "$tmp/cmake/hello_c" >&2
  exit 1
}
if grep -q libthresher <<<"$(ldd "$tmp/cmake/hello_static")"; then
  echo "test-install: hello_static loads libthresher.so; it should be linked statically" >&2
  exit 1
fi
"$tmp/cmake/hello_c" "$data"
"$tmp/cmake/hello_cpp" "$data"
"$tmp/cmake/hello_static" "$data"
echo "test-install: CMake build ok (thresher::thresher, thresher::thresher_static)"
echo "test-install: passed"
