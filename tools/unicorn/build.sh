#!/bin/sh
# Build keusim's libunicorn: Unicorn 2.1.4 from its PyPI source release with
# tools/unicorn/hooked-pages.patch, only the x86 and aarch64 targets (~1 min on 2 cores).
#
# The patch keeps translated loads and stores on QEMU's inline TLB path while memory hooks
# exist, and sends only the pages a hook covers down the slow path; it tests the exit request
# inline at TB starts, and after slow-path accesses only; and an arm64 YIELD or x86 PAUSE ends
# its TB with a chained jump instead of leaving the execution loop (docs/unicorn.md).
# Results do not change; host speed does (bench/ring_speed.py prints both).
#
#   usage: build.sh PYTHON DEST_DIR
# PYTHON fetches the source (pip download, from the configured package index); the library
# lands in DEST_DIR/libunicorn.so.2, which keusim loads when present (keusim/__init__.py;
# KEUSIM_STOCK_UNICORN=1 keeps the wheel's). On any failure it says why and leaves the
# wheel's library in use: everything works, only slower.
set -u
py=$1; dest=$2
here=$(cd "$(dirname "$0")" && pwd)
version=2.1.4
work=$(mktemp -d "${TMPDIR:-/tmp}/keusim-unicorn.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
    echo "keusim: could not build the patched Unicorn ($1); using the wheel's library," \
         "which gives the same results more slowly. Retry with 'make unicorn'."
    exit 0
}
command -v cmake >/dev/null 2>&1 || fail "cmake is missing: apt-get install cmake"
command -v patch >/dev/null 2>&1 || fail "patch is missing: apt-get install patch"
start=$(date +%s)
echo "keusim: building the patched Unicorn $version (x86, aarch64; about a minute)"
"$py" -m pip download -q --no-binary :all: --no-deps "unicorn==$version" -d "$work" \
    >"$work/log" 2>&1 || fail "pip download unicorn==$version failed: $(tail -1 "$work/log")"
tar xzf "$work/unicorn-$version.tar.gz" -C "$work" || fail "unpacking the source failed"
src=$work/unicorn-$version
(cd "$src" && patch -p1 -s <"$here/hooked-pages.patch") >"$work/log" 2>&1 \
    || fail "the patch does not apply: $(tail -1 "$work/log")"
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
(cd "$src/src" && cmake -B build -DCMAKE_BUILD_TYPE=Release -DUNICORN_BUILD_TESTS=off \
        -DUNICORN_ARCH="x86;aarch64" && cmake --build build -j"$jobs") >"$work/log" 2>&1 \
    || fail "the build failed: $(grep -m1 -i error "$work/log")"
mkdir -p "$dest" && cp "$src/src/build/libunicorn.so.2" "$dest/libunicorn.so.2.new" \
    && mv "$dest/libunicorn.so.2.new" "$dest/libunicorn.so.2" || fail "copying to $dest failed"
echo "keusim: patched Unicorn in $dest ($(($(date +%s) - start)) s)"
