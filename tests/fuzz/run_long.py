"""Longer libFuzzer runs of every target (scripts/fuzz.sh): one target at a time, niced, from
its committed corpus plus a work corpus kept in the build tree, until it has run --runs
executions in this campaign or its share of the time is spent.

Resumable per target: every finished run of a target (a "session") is added to the campaign
state <build>/fuzz-logs/<name>.state.json; a rerun skips the targets that reached --runs,
continues the others from their work corpus, and the totals add up across sessions. With
--until HH:MM (UTC) the time left is shared among the targets still below the goal, recomputed
before each session, and passes repeat while time is left; --seconds caps one session.
--targets limits a rerun to some targets (the results still list every target of the
campaign); --report only rewrites the results from the state.

Writes bench/results/<name>.{json,md} after every session: executions, exec/s, coverage
(edges: "cov"; features: "ft"), corpus size (libFuzzer's count, and the work corpus on disk),
crashes, and the load average around each session. A crash stops that target for this
invocation; its input is left under <build>/tests/fuzz/crash-<target>-* (keep it in
tests/fuzz/regressions/<target>/ once fixed; the next invocation fuzzes the target again).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from loopback_bench import git_commit, machine  # noqa: E402

TARGETS = ["gguf", "safetensors", "memory_blob", "blob_metadata", "tokenizer_json", "bpe",
           "chat_template", "compress_request", "compression_config", "tokens_file",
           "page_token", "decoder_request"]
STATUS_RE = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")
STAT_RE = re.compile(r"^stat::(\w+):\s+(\d+)")
MIN_SESSION_S = 30


def dir_size(path: str) -> Dict[str, int]:
    files = [os.path.join(path, f) for f in os.listdir(path)] if os.path.isdir(path) else []
    files = [f for f in files if os.path.isfile(f)]
    return {"files": len(files), "bytes": sum(os.path.getsize(f) for f in files)}


def run_session(build: str, name: str, runs: int, seconds: int, log_path: str) -> Dict:
    """One libFuzzer run of `name`; what its log says."""
    fz = os.path.join(build, "tests", "fuzz")
    binary = os.path.join(fz, f"{name}_fuzzer")
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
               OMP_NUM_THREADS="1",
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    load_before = list(os.getloadavg())
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
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "exit_code": rc, "crashed": rc != 0,
            "wall_seconds": round(wall, 1),
            "executions": stats.get("number_of_executed_units", int(last.group(1)) if last else 0),
            "cov_edges": int(last.group(2)) if last else 0,
            "features": int(last.group(3)) if last else 0,
            "corpus_inputs": int(last.group(4)) if last else 0,
            "corpus_size": last.group(5) if last else "",
            "new_units": stats.get("new_units_added", 0),
            "peak_rss_mb": stats.get("peak_rss_mb", 0),
            "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
            "log": os.path.relpath(log_path, ROOT)}


def summarize(build: str, name: str, sessions: List[Dict]) -> Dict:
    """A target's totals over its sessions (coverage and corpus: as the last session ended)."""
    work = dir_size(os.path.join(build, "tests", "fuzz", "work", name))
    if not sessions:
        return {"target": name, "sessions": 0, "executions": 0, "wall_seconds": 0,
                "exec_per_second": 0, "cov_edges": 0, "features": 0, "corpus_inputs": 0,
                "work_corpus": work, "crashes": 0, "history": []}
    execs = sum(s["executions"] for s in sessions)
    wall = sum(s["wall_seconds"] for s in sessions)
    last = sessions[-1]
    return {"target": name, "sessions": len(sessions), "executions": execs,
            "wall_seconds": round(wall, 1), "exec_per_second": round(execs / wall) if wall else 0,
            "cov_edges": last["cov_edges"], "features": last["features"],
            "corpus_inputs": last["corpus_inputs"], "work_corpus": work,
            "crashes": sum(1 for s in sessions if s["crashed"]),
            "open_crash": last["crashed"], "history": sessions}


def parse_until(text: str) -> Optional[float]:
    """HH:MM (UTC, today) -> epoch seconds; None for ''."""
    if not text:
        return None
    hh, mm = (int(x) for x in text.split(":"))
    now = time.gmtime()
    return float(calendar.timegm((now.tm_year, now.tm_mon, now.tm_mday, hh, mm, 0)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build-fuzz"))
    p.add_argument("--runs", type=int, default=10_000_000, help="executions per target")
    p.add_argument("--seconds", type=int, default=1800, help="time limit of one session")
    p.add_argument("--until", default="", help="HH:MM UTC: share the time left until then")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--fresh", action="store_true", help="start a new campaign (drop the state)")
    p.add_argument("--report", action="store_true", help="only rewrite the results from the state")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    p.add_argument("--name", default="fuzz_long")
    args = p.parse_args()
    until = parse_until(args.until)
    log_dir = os.path.join(args.build, "fuzz-logs")
    os.makedirs(log_dir, exist_ok=True)
    state_path = os.path.join(log_dir, f"{args.name}.state.json")
    state = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
             "sessions": {}}
    if os.path.exists(state_path) and not args.fresh:
        with open(state_path) as f:
            state = json.load(f)
    targets = [t for t in args.targets.split(",") if t]
    stopped = set()  # crashed in this invocation, or not built when its turn came

    def built(t: str) -> bool:  # checked at its turn: a target may still be building
        return os.path.exists(os.path.join(args.build, "tests", "fuzz", f"{t}_fuzzer"))

    def executions(t: str) -> int:
        return sum(s["executions"] for s in state["sessions"].get(t, []))

    def write_results():
        out = {"started": state["started"], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
               "commit": git_commit(), "machine": state["machine"],
               "loadavg_end": list(os.getloadavg()), "runs_goal": args.runs,
               "targets": [summarize(args.build, t, state["sessions"].get(t, []))
                           for t in TARGETS + [t for t in targets if t not in TARGETS]
                           if t in targets or t in state["sessions"]]}
        with open(state_path, "w") as f:
            json.dump(state, f, indent=1)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, args.name + ".json"), "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        with open(os.path.join(args.out, args.name + ".md"), "w") as f:
            f.write(to_markdown(out))

    while not args.report:
        todo = [t for t in targets if executions(t) < args.runs and t not in stopped]
        if not todo:
            break
        progressed = False
        for i, name in enumerate(todo):
            if not built(name):
                print(f"{name}: not built ({name}_fuzzer missing in {args.build})",
                      file=sys.stderr)
                stopped.add(name)
                continue
            seconds = args.seconds
            if until is not None:
                left = until - time.time()
                seconds = min(seconds, int(left / (len(todo) - i)))
                if seconds < MIN_SESSION_S:
                    break
            runs = args.runs - executions(name)
            n = len(state["sessions"].get(name, [])) + 1
            print(f"{time.strftime('%H:%M:%S')} {name} session {n}: up to {runs} runs / "
                  f"{seconds} s", file=sys.stderr, flush=True)
            s = run_session(args.build, name, runs, seconds,
                            os.path.join(log_dir, f"{name}.{n}.log"))
            print(json.dumps(s), file=sys.stderr, flush=True)
            state["sessions"].setdefault(name, []).append(s)
            if s["crashed"]:
                stopped.add(name)
            progressed = True
            write_results()
        if not progressed or until is None:
            break
    write_results()
    return 1 if any(state["sessions"].get(t, [{}])[-1].get("crashed") for t in targets) else 0


def crash_text(t: Dict) -> str:
    if not t["crashes"]:
        return "0"
    return f"{t['crashes']} ({'open' if t.get('open_crash') else 'fixed, rerun clean'})"


def to_markdown(r: Dict) -> str:
    m = r["machine"]
    ts = r["targets"]
    out = ["# Longer libFuzzer runs (ASan + UBSan, clang)", "",
           f"Campaign {r['started']} to {r['date']}, commit {r['commit']}. Machine: "
           f"{m['nproc']} CPUs ({m['cpu_model']}), shared with other work: load average "
           f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])} at the start, "
           f"{', '.join(f'{x:.2f}' for x in r['loadavg_end'])} at the end. One target at a "
           f"time, `nice -n 19`, one thread; goal {r['runs_goal']:,} executions per target.", "",
           "| target | executions | sessions | wall (s) | exec/s | cov (edges) | ft | corpus "
           "(libFuzzer) | work corpus (files, KiB) | crashes | load avg (1 min) during |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for t in ts:
        loads = [x for s in t["history"] for x in (s["loadavg_before"][0],
                                                   s["loadavg_after"][0])]
        load = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "-"
        out.append(f"| {t['target']} | {t['executions']:,} | {t['sessions']} | "
                   f"{t['wall_seconds']:.0f} | {t['exec_per_second']:,} | {t['cov_edges']} | "
                   f"{t['features']} | {t['corpus_inputs']} | {t['work_corpus']['files']}, "
                   f"{t['work_corpus']['bytes'] / 1024:.0f} | {crash_text(t)} | {load} |")
    total = sum(t["executions"] for t in ts)
    reached = sum(1 for t in ts if t["executions"] >= r["runs_goal"])
    out += ["", f"Total: {total:,} executions; {reached} of {len(ts)} targets reached the goal.",
            "", "Coverage is libFuzzer's count of instrumented edges (cov) and features (ft) "
            "reached as the last session ended (all linked instrumented code, not only the "
            "parser); the work corpus is kept in the build tree, not committed. Rerun (resumes): "
            "`scripts/fuzz.sh --until HH:MM`.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
