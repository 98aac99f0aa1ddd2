#!/usr/bin/env bash
# Longer fuzzing of every libFuzzer target (tests/fuzz/run_long.py): builds build-fuzz (clang,
# ASan+UBSan), then runs each target in turn, niced, resuming its work corpus; resumable per
# target (a rerun continues the campaign; --fresh starts a new one). Results:
# bench/results/fuzz_long.{json,md}. Defaults: 10M executions per target, sessions of at most
# 30 min; --until HH:MM (UTC) shares the time left among the targets below the goal.
#   scripts/fuzz.sh [--runs N] [--seconds S] [--until HH:MM] [--targets gguf,bpe,...] [--fresh]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
source "$here/env.sh"
fuzz="$root/build-fuzz"
if [ ! -f "$fuzz/build.ninja" ]; then
  cmake -S "$root" -B "$fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCTXMEM_FUZZ=ON \
    -DCTXMEM_BUILD_BENCH=OFF -DCTXMEM_PYTHON="$CTXMEM_PYTHON"
fi
cmake --build "$fuzz" -j "${CTXMEM_JOBS:-$(nproc)}" --target fuzz_targets
exec "$CTXMEM_PYTHON" "$root/tests/fuzz/run_long.py" --build "$fuzz" "$@"
