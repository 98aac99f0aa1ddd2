# Sourced by the GPU scripts (run_gpu_checks.sh, run_gpu_train_rcc.sh) after `set -euo pipefail`
# with `here` and `root` set: picks the mode from their first argument and sets
#   dry    1 for --dry-run (the same steps on this CPU-only machine), else 0;
#   py     the Python with torch (scripts/env.sh's venv when dry, else $PYTHON or python3,
#          checked to have CUDA);
#   build  the build folder ($BUILD, default build when dry, build-cuda on the GPU);
#   out    the results folder ($OUT, default /tmp/<name>_dryrun when dry, bench/results);
#   device cpu when dry, cuda:0 on the GPU.
# Usage: source "$here/gpu_mode.sh" "${1:-}" NAME
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
if [ "$dry" = 1 ]; then
  source "$root/scripts/env.sh"
  py="$CTXMEM_PYTHON"
  build="${BUILD:-$root/build}"
  out="${OUT:-/tmp/${2}_dryrun}"
  device=cpu
else
  command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: not a CUDA machine (try --dry-run)"; exit 1; }
  py="${PYTHON:-$(command -v python3)}"
  "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
    { echo "python3's torch has no CUDA"; exit 1; }
  build="${BUILD:-$root/build-cuda}"
  out="${OUT:-$root/bench/results}"
  device=cuda:0
fi
