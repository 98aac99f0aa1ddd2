#!/usr/bin/env bash
# Sets everything up, builds, and runs the test suite:
#   1. the main build (RelWithDebInfo) and all its ctest tests;
#   2. a clang build with ASan+UBSan (build-fuzz): the robustness tests and the libFuzzer targets
#      of every byte parser, each replaying its committed corpus and fuzzing for
#      CTXMEM_FUZZ_SECONDS (default 20) seconds (label "fuzz"; docs/reliability.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
"$here/setup.sh"
source "$here/env.sh"
ccache -M 5G >/dev/null 2>&1 || true

echo "== build (RelWithDebInfo)"
"$here/build.sh" "$root/build"
echo "== ctest"
# Tests run two at a time on few cores; OpenMP's default spin-waiting makes two torch processes
# fight for the cores (measured 3-5x slower model tests), so idle threads sleep instead.
export OMP_WAIT_POLICY=passive
ctest --test-dir "$root/build" --output-on-failure -j "$(nproc)" --timeout 900

echo "== ASan+UBSan (clang): robustness tests and libFuzzer targets"
fuzz="$root/build-fuzz"
if [ ! -f "$fuzz/build.ninja" ]; then
  cmake -S "$root" -B "$fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCTXMEM_FUZZ=ON \
    -DCTXMEM_FUZZ_SECONDS="${CTXMEM_FUZZ_SECONDS:-20}" \
    -DCTXMEM_BUILD_BENCH=OFF -DCTXMEM_PYTHON="$CTXMEM_PYTHON"
fi
cmake --build "$fuzz" -j "$(nproc)" --target fuzz_robustness_test fuzz_targets
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$fuzz" -L fuzz --output-on-failure -j "$(nproc)"
