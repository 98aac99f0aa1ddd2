#!/bin/bash
# Held-out PPL (and KL to no_compress) vs training tokens of perceiver runs: every chosen
# checkpoint snapshot of every run becomes a `--learned` method of one eval-ppl sweep next to
# tova and conv (resumable: rerun the same line). Snapshots are what `ctxmem train` left in
# OUT/checkpoint, copied per step to OUT/snapshots/step_<N>.{safetensors,state.json} while it ran.
# Usage: bench/run_train_curve.sh "RUN_DIR[:STEPS] ..."   (STEPS: comma-separated, default all)
# Env: BASELINES (default tova,conv; "" for the snapshots alone), CTXMEM (binary), MODEL (default scripts/env.sh's CTXMEM_MODEL), TEXT (held-out text), EVAL_LEN, CHUNK, MEMORY, OUT, NAME, THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
CTXMEM=${CTXMEM:-build/clients/cpp/ctxmem}
MODEL=${MODEL:-$CTXMEM_MODEL}
TEXT=${TEXT:-tests/data/text/pride_and_prejudice.txt}
EVAL_LEN=${EVAL_LEN:-2048}
CHUNK=${CHUNK:-512}
MEMORY=${MEMORY:-128,256}
OUT=${OUT:-bench/results}
NAME=${NAME:-train_curve}
THREADS=${THREADS:-1}
learned=()
pruners=${BASELINES-tova,conv}
points="{"
for spec in $1; do
  dir=${spec%%:*}
  steps=""
  [[ $spec == *:* ]] && steps=${spec#*:}
  run=$(basename "$dir")
  if [ -z "$steps" ]; then
    steps=$(ls "$dir"/snapshots/step_*.safetensors | sed 's/.*step_\([0-9]*\).safetensors/\1/' |
            sort -n | paste -sd, -)
  fi
  for s in ${steps//,/ }; do
    f=$dir/snapshots/step_$s.safetensors
    [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
    name=${run}_s$s
    learned+=(--learned "$name=$f")
    pruners+="${pruners:+,}$name"
    windows=$(python3 -c "import json;print(json.load(open('$dir/snapshots/step_$s.state.json'))['windows'])")
    wlen=$(python3 -c "import json;c=json.load(open('$dir/curves.json'));print(c['n_chunks']*c['chunk_size'])")
    [ "$points" = "{" ] || points+=","
    points+="\"$name\":{\"run\":\"$run\",\"step\":$s,\"windows\":$windows,\"text_tokens\":$((windows * wlen))}"
  done
done
points+="}"
mkdir -p "$OUT"
echo "$points" > "$OUT/${NAME}_points.json"
OMP_NUM_THREADS=$THREADS "$CTXMEM" eval-ppl --model "$MODEL" --text "$TEXT" --eval-len "$EVAL_LEN" \
  --chunk "$CHUNK" --memory "$MEMORY" --pruners "$pruners" --memory-types FM "${learned[@]}" \
  --threads "$THREADS" --out "$OUT" --name "$NAME" --no-plot
"$CTXMEM_PYTHON" tools/plot_train_curve.py "$OUT/$NAME.json" --points "$OUT/${NAME}_points.json" \
  --chunk "$CHUNK" --out "$OUT/$NAME.png"
