#!/usr/bin/env bash
# Load test of decoder_svc on loopback (bench/load_bench.py): builds the two servers in BUILD
# (default build), then runs N concurrent Generate streams on one memory per concurrency level,
# bounded by time and count. Results: bench/results/load_decoder.{json,md}. Not run by ctest.
#   bench/run_load_bench.sh [BUILD_DIR] [load_bench.py options, e.g. --concurrency 1,2,4]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run_loopback_bench.sh" load_bench.py "$@"
