#!/usr/bin/env bash
# Faults under load on loopback (bench/fault_load_bench.py): builds the two servers in BUILD
# (default build), then runs concurrent Compress and Generate clients for ~2.5 minutes while the
# servers are SIGKILLed and restarted, streams are cancelled and deadlines expire; checks that
# every acknowledged memory survives. Results: bench/results/fault_load.{json,md}. Not in ctest.
#   bench/run_fault_load_bench.sh [BUILD_DIR] [fault_load_bench.py options, e.g. --duration 60]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
source "$root/scripts/env.sh"
build="${1:-$root/build}"
[ $# -gt 0 ] && shift
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTXMEM_PYTHON="$CTXMEM_PYTHON" >/dev/null
fi
ninja -C "$build" -j "${CTXMEM_JOBS:-2}" compressor_svc decoder_svc
"$CTXMEM_PYTHON" "$root/clients/python/ctxmem_client/generate.py"
export OMP_WAIT_POLICY=passive
exec "$CTXMEM_PYTHON" "$here/fault_load_bench.py" \
  --compressor-bin "$build/compressor_svc" --decoder-bin "$build/decoder_svc" \
  --model "$CTXMEM_MODEL" "$@"
