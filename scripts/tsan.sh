#!/usr/bin/env bash
# ThreadSanitizer run of the tests TSan can run (clang -fsanitize=thread, build-tsan):
# unit_blob_test (store, cache, single-flight fetches, concurrent Put/Get/Delete, disk full) and
# tsan_service_test (admission gate, work queue, stream limiter, token auth, blob fetcher over
# gRPC, replica ring). Nothing that links LibTorch: its OpenMP runtime is not instrumented.
# The system Abseil is not instrumented either; tests/tsan/absl_mutex_annotations.cc makes its
# Mutex visible to TSan. ctest label "tsan"; docs/reliability.md has the last result.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
source "$here/env.sh"
tsan="$root/build-tsan"
if [ ! -f "$tsan/build.ninja" ]; then
  cmake -S "$root" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCTXMEM_TSAN=ON \
    -DCTXMEM_BUILD_BENCH=OFF -DCTXMEM_PYTHON="$CTXMEM_PYTHON"
fi
cmake --build "$tsan" -j "${CTXMEM_JOBS:-$(nproc)}" --target unit_blob_test tsan_service_test tsan_annotations_selftest
ctest --test-dir "$tsan" -L tsan --output-on-failure -j "${CTXMEM_JOBS:-$(nproc)}"
