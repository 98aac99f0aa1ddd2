#!/usr/bin/env bash
# Peer benchmark: llama.cpp (the copy vendored in the pinned llama-cpp-python sdist) against
# ctxmem's bench/model_bench on the same GGUF, on this machine, 2 threads.
#   1. downloads the sdist once (pip download --no-binary llama-cpp-python --no-deps), builds
#      llama-bench and llama-quantize from its vendor/llama.cpp, cached in
#      $CTXMEM_CACHE/peer/ (outside git). CPU flags: GGML_NATIVE=OFF with AVX2/FMA/F16C and
#      AVX-512 F/VNNI/BF16 on, AMX off (llama.cpp's AMX path executes AMX without asking the
#      kernel for permission and dies with SIGILL; a CPU without AVX-512 gets an AVX2 build).
#   2. makes a Q4_0 copy of the bundled Q4_1 model (llama-quantize ... Q4_0; token embedding
#      and output stay as llama-quantize chooses).
#   3. runs, in alternation (ROUNDS times): per file (Q4_1, then Q4_0) llama-bench and
#      model_bench back to back, llama.cpp first in odd rounds and second in even ones;
#      prefill 512 / 2048 and decode 128 (llama-bench's pp512, pp2048, tg128; model_bench's
#      BM_Prefill/512, BM_Prefill/2048, BM_Decode/1/128).
#   4. writes bench/results/peer_bench.{json,md,png}: medians over rounds, ratios, the machine
#      and its load average before every run.
# Not part of CI. Usage: [ROUNDS=3] [WAIT_LOAD=L [WAIT_MAX=300]] [TESTS=all|decode]
#   [OUT_NAME=peer_bench] bench/run_peer_bench.sh [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$root/scripts/env.sh"
build="${1:-$root/build}"
rounds="${ROUNDS:-3}"
threads=2
# Both engines use libgomp. Its default (spin at barriers) is ruinous on a shared 2-vCPU machine:
# a step waits for a descheduled peer thread for a whole time slice, and llama.cpp has several
# barriers per layer (measured at load ~18: llama.cpp tg16 0.31 tokens/s spinning, 24.7 passive).
# Passive waiting for both unless the caller says otherwise; recorded in the report.
# OMP_WAIT_POLICY=default runs both with libgomp's own default (spin ~300k iterations, then
# sleep), which is what a process gets when nothing sets the variable: the fair setting on a
# quiet machine.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
[ "$OMP_WAIT_POLICY" = default ] && unset OMP_WAIT_POLICY
pin="llama-cpp-python==0.3.36"
peer="$CTXMEM_CACHE/peer/llama-cpp-python-0.3.36"
bin="$peer/build/bin"
mkdir -p "$peer"

if [ ! -x "$bin/llama-bench" ] || [ ! -x "$bin/llama-quantize" ]; then
  if [ ! -d "$peer/src/vendor/llama.cpp" ]; then
    # --no-binary for the package itself (":all:" would also build its build backend from source)
    "$CTXMEM_PYTHON" -m pip download --no-binary llama-cpp-python --no-deps --dest "$peer/dl" "$pin"
    mkdir -p "$peer/src"
    tar -xzf "$peer"/dl/llama_cpp_python-0.3.36.tar.gz -C "$peer/src" --strip-components=1
  fi
  avx512=OFF
  if grep -q avx512_vnni /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo; then avx512=ON; fi
  bf16=OFF
  grep -q avx512_bf16 /proc/cpuinfo && bf16="$avx512"
  cmake -S "$peer/src/vendor/llama.cpp" -B "$peer/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_AVX512="$avx512" -DGGML_AVX512_VNNI="$avx512" -DGGML_AVX512_BF16="$bf16" \
    -DGGML_AVX512_VBMI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DGGML_OPENMP=ON >"$peer/cmake.log"
  nice cmake --build "$peer/build" -j "${CTXMEM_JOBS:-1}" --target llama-bench llama-quantize
fi

q41="$CTXMEM_MODEL"
q40="$peer/$(basename "${CTXMEM_MODEL%.Q4_1.gguf}").Q4_0.gguf"
if [ ! -f "$q40" ]; then
  "$bin/llama-quantize" --allow-requantize "$q41" "$q40.tmp" Q4_0 >"$peer/quantize.log" 2>&1
  mv "$q40.tmp" "$q40"
fi

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTXMEM_PYTHON="$CTXMEM_PYTHON"
fi
nice ninja -C "$build" -j "${CTXMEM_JOBS:-1}" model_bench

out="$root/bench/results"
name="${OUT_NAME:-peer_bench}"  # results: bench/results/$name.{json,md,png}, raw runs in ${name}_raw/
raw="$out/${name}_raw"
# TESTS=decode runs only the decode test (llama-bench -p 0 -n 128, BM_Decode/1/128): a quick
# re-check of decode after a change, with the same alternation.
if [ "${TESTS:-all}" = decode ]; then
  llama_p=0 ours_filter='^BM_Decode/1/128/'
else
  llama_p=512,2048 ours_filter='^BM_Prefill/(512|2048)/|^BM_Decode/1/128/'
fi
mkdir -p "$raw"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
: >"$raw/loads.txt"
# WAIT_LOAD=L: before each run, wait (at most WAIT_MAX seconds, default 300) until the 1-minute
# load average is below L — the machine is shared, the quietest moments give the cleanest runs.
wait_quiet() {
  [ -n "${WAIT_LOAD:-}" ] || return 0
  local waited=0
  while awk -v l="$WAIT_LOAD" '{exit !($1 >= l)}' /proc/loadavg && [ "$waited" -lt "${WAIT_MAX:-300}" ]; do
    sleep 10
    waited=$((waited + 10))
  done
}
run_llama() {  # round, file var
  wait_quiet
  echo "$1 llama.cpp $2 $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/loads.txt"
  "$bin/llama-bench" -m "${!2}" -t "$threads" -p "$llama_p" -n 128 -r 2 -o json \
    >"$raw/llama_${2}_$1.json" 2>"$raw/llama_${2}_$1.log"
}
run_ctxmem() {
  wait_quiet
  echo "$1 ctxmem $2 $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/loads.txt"
  CTXMEM_MODEL="${!2}" "$build/bench/model_bench" \
    --benchmark_filter="$ours_filter" --benchmark_min_time=2 \
    --benchmark_out="$raw/ctxmem_${2}_$1.json" --benchmark_out_format=json >"$raw/ctxmem_${2}_$1.log" 2>&1
}
# Each file's two engines run back to back, in alternating order (odd rounds llama.cpp first),
# so slow drifts of the machine's load hit both sides alike.
for r in $(seq 1 "$rounds"); do
  for f in q41 q40; do
    if [ $((r % 2)) -eq 1 ]; then run_llama "$r" "$f"; run_ctxmem "$r" "$f"
    else run_ctxmem "$r" "$f"; run_llama "$r" "$f"; fi
  done
  echo "[peer_bench] round $r/$rounds done (load $(cut -d' ' -f1-3 /proc/loadavg))"
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
flags="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile)$' | tr '\n' ' ')"
"$CTXMEM_PYTHON" "$here/peer_bench_report.py" "$raw" "$rounds" "$out/$name.json" "$out/$name.md" \
  "$cpu" "$(nproc)" "$flags" "$load_before" "$load_after" "$(basename "$q41")" "${OMP_WAIT_POLICY:-default}"
