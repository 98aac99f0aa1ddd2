#!/usr/bin/env bash
# Load test of decoder_svc on loopback (bench/load_bench.py): builds the two servers in BUILD
# (default build), then, for batched decoding (--max-batch 8) and the one-stream-per-step
# baseline (--max-batch 1), each in its own decoder process, runs 1/2/4/8 concurrent Generate
# streams on one shared memory and on 8 different memories, bounded by time and count.
# Results: bench/results/load_decoder.{json,md,png}. Not run by ctest. Takes ~10-20 minutes;
# run it in the background, niced, e.g.
#   nohup nice -n 19 bench/run_load_bench.sh > /tmp/load_bench.log 2>&1 &
#   bench/run_load_bench.sh [BUILD_DIR] [load_bench.py options, e.g. --concurrency 1,8
#     --decode packed --duration 20]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run_loopback_bench.sh" load_bench.py "$@"
