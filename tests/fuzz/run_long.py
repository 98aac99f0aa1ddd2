"""Longer libFuzzer runs of every target (scripts/fuzz.sh): each target in turn, niced, from
its committed corpus plus a work corpus kept in the build tree (so a rerun resumes where the
last one stopped), until it has run --runs executions or --seconds, whichever comes first.
Reads libFuzzer's final stats and last status line per target and writes
bench/results/fuzz_long.{json,md}: executions, exec/s, coverage (edges: "cov"; features:
"ft"), corpus size and crashes. A crash stops that target; its input is left under
<build>/tests/fuzz/crash-<target>-* (keep it in tests/fuzz/regressions/<target>/ once fixed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from loopback_bench import git_commit, machine  # noqa: E402

TARGETS = ["gguf", "safetensors", "memory_blob", "blob_metadata", "tokenizer_json", "bpe",
           "chat_template", "compress_request", "decoder_request", "compression_config",
           "tokens_file", "page_token"]
STATUS_RE = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")
STAT_RE = re.compile(r"^stat::(\w+):\s+(\d+)")


def run_target(build: str, name: str, runs: int, seconds: int, log_dir: str) -> dict:
    fz = os.path.join(build, "tests", "fuzz")
    binary = os.path.join(fz, f"{name}_fuzzer")
    if not os.path.exists(binary):  # e.g. decoder_request without CTXMEM_FUZZ_MODEL_TARGETS
        return {"target": name, "exit_code": None, "crashed": False, "wall_seconds": 0,
                "executions": 0, "exec_per_second": 0, "cov_edges": 0, "features": 0,
                "corpus_inputs": 0, "peak_rss_mb": 0, "log": "not built"}
    work = os.path.join(fz, "work", name)
    os.makedirs(work, exist_ok=True)
    inputs = [os.path.join(HERE, "corpus", name)]
    reg = os.path.join(HERE, "regressions", name)
    if os.path.isdir(reg):
        inputs.append(reg)
    cmd = ["nice", "-n", "19", binary, f"-runs={runs}", f"-max_total_time={seconds}",
           "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
           f"-artifact_prefix={fz}/crash-{name}-"]
    d = os.path.join(HERE, "dict", f"{name}.dict")
    if os.path.exists(d):
        cmd.append(f"-dict={d}")
    cmd += [work] + inputs
    env = dict(os.environ, CTXMEM_TEST_DATA_DIR=os.path.join(ROOT, "tests", "data"),
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    log_path = os.path.join(log_dir, f"{name}.log")
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.monotonic() - t0
    last, stats = None, {}
    with open(log_path, errors="replace") as f:
        for line in f:
            m = STATUS_RE.match(line)
            if m:
                last = m
            s = STAT_RE.match(line)
            if s:
                stats[s.group(1)] = int(s.group(2))
    execs = stats.get("number_of_executed_units", int(last.group(1)) if last else 0)
    return {"target": name, "exit_code": rc, "crashed": rc != 0, "wall_seconds": round(wall, 1),
            "executions": execs, "exec_per_second": stats.get("average_exec_per_sec", 0),
            "cov_edges": int(last.group(2)) if last else 0,
            "features": int(last.group(3)) if last else 0,
            "corpus_inputs": int(last.group(4)) if last else 0,
            "peak_rss_mb": stats.get("peak_rss_mb", 0), "log": os.path.relpath(log_path, ROOT)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build-fuzz"))
    p.add_argument("--runs", type=int, default=10_000_000, help="executions per target")
    p.add_argument("--seconds", type=int, default=1800, help="time limit per target")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    p.add_argument("--name", default="fuzz_long")
    args = p.parse_args()
    log_dir = os.path.join(args.build, "fuzz-logs")
    os.makedirs(log_dir, exist_ok=True)
    mach = machine()
    results = []
    for name in [t for t in args.targets.split(",") if t]:
        print(f"{time.strftime('%H:%M:%S')} {name}: up to {args.runs} runs / {args.seconds} s",
              file=sys.stderr, flush=True)
        r = run_target(args.build, name, args.runs, args.seconds, log_dir)
        print(json.dumps(r), file=sys.stderr, flush=True)
        results.append(r)
        out = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git_commit(),
               "machine": mach, "runs_goal": args.runs, "seconds_limit": args.seconds,
               "targets": results}
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, args.name + ".json"), "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        with open(os.path.join(args.out, args.name + ".md"), "w") as f:
            f.write(to_markdown(out))
    return 1 if any(r["crashed"] for r in results) else 0


def to_markdown(r: dict) -> str:
    m = r["machine"]
    out = ["# Longer libFuzzer runs (ASan + UBSan, clang)", "",
           f"{r['date']}, commit {r['commit']}. Machine: {m['nproc']} CPUs ({m['cpu_model']}), "
           f"shared with other work (load average at start "
           f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}); one target at a time, "
           f"`nice -n 19`. Goal {r['runs_goal']:,} executions per target, limit "
           f"{r['seconds_limit']} s each.", "",
           "| target | executions | exec/s | coverage (edges) | features | corpus | crashes |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for t in r["targets"]:
        out.append(f"| {t['target']} | {t['executions']:,} | {t['exec_per_second']:,} | "
                   f"{t['cov_edges']} | {t['features']} | {t['corpus_inputs']} | "
                   f"{1 if t['crashed'] else 0} |")
    out += ["", "Coverage is libFuzzer's count of instrumented edges reached (all linked "
            "instrumented code, not only the parser). Rerun: `scripts/fuzz.sh`.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
