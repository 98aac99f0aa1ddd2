#!/usr/bin/env bash
# Faults under load on loopback (bench/fault_load_bench.py): builds the two servers in BUILD
# (default build), then runs concurrent Compress and Generate clients for ~2.5 minutes while the
# servers are SIGKILLed and restarted, streams are cancelled and deadlines expire; checks that
# every acknowledged memory survives. Results: bench/results/fault_load.{json,md}. Not in ctest.
#   bench/run_fault_load_bench.sh [BUILD_DIR] [fault_load_bench.py options, e.g. --duration 60]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run_loopback_bench.sh" fault_load_bench.py "$@"
