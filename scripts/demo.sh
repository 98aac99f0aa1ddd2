#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job end to end on the bundled model:
# a chat completion streamed token by token, then perplexity on a slice of the shipped book.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
"$here/setup.sh"
source "$here/env.sh"
"$here/build.sh" "$root/build" >/dev/null
cli="$root/build/clients/cpp/ctxmem"

echo "== ctxmem generate (bundled SmolLM2-135M-Instruct, CPU, greedy)"
"$cli" generate --model "$CTXMEM_MODEL" --chat --max-tokens 64 --threads "$(nproc)" \
  --prompt "In two sentences, why do large language models need a KV cache?"
echo
book="$(ls "$root"/tests/data/text/*.txt 2>/dev/null | head -n 1 || true)"
if [ -n "$book" ]; then
  echo "== ctxmem ppl ($(basename "$book"), first 2048 tokens, windows of 512)"
  "$cli" ppl --model "$CTXMEM_MODEL" --text "$book" --ctx 512 --max-tokens 2048 \
    --threads "$(nproc)"
fi
