#!/usr/bin/env bash
# Configures (once) and builds ctxmem with Ninja + ccache. Usage: scripts/build.sh [BUILD_DIR] [cmake args...]
# Release by default (no -g: smaller objects, quicker links); CTXMEM_BUILD_TYPE=RelWithDebInfo to debug.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
root="$here/.."
build="${1:-$root/build}"; shift || true
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${CTXMEM_BUILD_TYPE:-Release}" \
    -DCTXMEM_PYTHON="$CTXMEM_PYTHON" "$@"
fi
cmake --build "$build" -j "${CTXMEM_JOBS:-$(nproc)}"
