"""What the loopback benchmarks share (bench/load_bench.py, bench/fault_load_bench.py;
tests/fuzz/run_long.py uses the machine record): the integration harness on sys.path, the
server command-line flags, the machine and commit a result was measured on, percentiles, and
writing <out>/<name>.json + .md. bench/run_loopback_bench.sh builds the servers and runs one."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from typing import Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("CTXMEM_SOURCE_DIR", ROOT)


def add_server_args(p: argparse.ArgumentParser, name: str) -> None:
    """The flags every loopback benchmark takes: the two server binaries, the model, torch
    threads per server, and where (and under which name) the results go."""
    p.add_argument("--compressor-bin", required=True)
    p.add_argument("--decoder-bin", required=True)
    p.add_argument("--model", default=os.environ.get("CTXMEM_MODEL", ""))
    p.add_argument("--threads", type=int, default=1, help="torch threads per server")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--name", default=name)


def export_server_env(args: argparse.Namespace) -> None:
    """Points tests/integration/harness.py's Cluster at the binaries and model of `args`."""
    os.environ["CTXMEM_COMPRESSOR_SVC"] = os.path.abspath(args.compressor_bin)
    os.environ["CTXMEM_DECODER_SVC"] = os.path.abspath(args.decoder_bin)
    os.environ["CTXMEM_MODEL"] = args.model


def percentile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def machine() -> Dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "cpu_model": cpu or platform.processor(),
            "mem_total_bytes": mem, "kernel": platform.release(),
            "loadavg_start": list(os.getloadavg())}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def write_results(out_dir: str, name: str, result: Dict,
                  to_markdown: Callable[[Dict], str]) -> None:
    """<out_dir>/<name>.json and .md; the markdown is printed too."""
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, name)
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    md = to_markdown(result)
    with open(stem + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"wrote {stem}.json and {stem}.md", file=sys.stderr)
