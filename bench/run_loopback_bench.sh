#!/usr/bin/env bash
# Runs one loopback benchmark of bench/ against the two servers (what run_load_bench.sh and
# run_fault_load_bench.sh share): configures BUILD (default build) if needed, builds
# compressor_svc and decoder_svc there, generates the Python client's stubs, then runs SCRIPT
# with the binaries and $CTXMEM_MODEL and every further option.
#   bench/run_loopback_bench.sh SCRIPT.py [BUILD_DIR] [SCRIPT options]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
source "$root/scripts/env.sh"
script="$1"
shift
build="${1:-$root/build}"
[ $# -gt 0 ] && shift
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTXMEM_PYTHON="$CTXMEM_PYTHON" >/dev/null
fi
ninja -C "$build" -j "${CTXMEM_JOBS:-2}" compressor_svc decoder_svc
"$CTXMEM_PYTHON" "$root/clients/python/ctxmem_client/generate.py"
# Passive OpenMP waiting unless the caller says otherwise (OMP_WAIT_POLICY=default: libgomp's
# own default, spin then sleep, what a decoder with dedicated cores should run).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
[ "$OMP_WAIT_POLICY" = default ] && unset OMP_WAIT_POLICY
exec "$CTXMEM_PYTHON" "$here/$script" \
  --compressor-bin "$build/compressor_svc" --decoder-bin "$build/decoder_svc" \
  --model "$CTXMEM_MODEL" "$@"
