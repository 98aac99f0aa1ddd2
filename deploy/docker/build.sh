#!/usr/bin/env bash
# Builds both server images from the repository root. Usage:
#   deploy/docker/build.sh [TAG] [extra docker build args...]   (TAG default 0.1.0)
# CUDA: deploy/docker/build.sh 0.1.0-cuda --build-arg CTXMEM_CUDA=ON \
#         --build-arg BUILDER_IMAGE=... --build-arg RUNTIME_IMAGE=...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tag="${1:-0.1.0}"; shift || true
for target in compressor decoder; do
  DOCKER_BUILDKIT=1 docker build -f "$root/deploy/docker/Dockerfile" --target "$target" \
    -t "ctxmem/$target:$tag" "$@" "$root"
done
