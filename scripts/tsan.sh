#!/usr/bin/env bash
# ThreadSanitizer run of the tests TSan can run (no LibTorch: its OpenMP runtime is not
# instrumented): unit_blob_test (store, cache, single-flight fetches, concurrent Put/Get/
# Delete) and tsan_service_test (admission gate, work queue, stream limiter, token auth, blob
# fetcher over gRPC, replica ring). gcc, build-tsan. docs/reliability.md has the last result.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
source "$here/env.sh"
tsan="$root/build-tsan"
if [ ! -f "$tsan/build.ninja" ]; then
  cmake -S "$root" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTXMEM_TSAN=ON \
    -DCTXMEM_BUILD_BENCH=OFF -DCTXMEM_PYTHON="$CTXMEM_PYTHON"
fi
cmake --build "$tsan" -j "${CTXMEM_JOBS:-$(nproc)}" --target unit_blob_test tsan_service_test
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
"$tsan/tests/unit_blob_test"
"$tsan/tests/tsan_service_test"
echo "tsan: no data races reported"
