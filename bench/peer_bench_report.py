"""Summarises bench/run_peer_bench.sh's raw runs into peer_bench.{json,md,png} (medians, ratios).

Usage: peer_bench_report.py RAW_DIR ROUNDS OUT_JSON OUT_MD CPU CORES FLAGS LOAD_BEFORE LOAD_AFTER
       MODEL OMP_WAIT_POLICY   (RAW_DIR/loads.txt: one "round engine file load1 load5 load15" line
       per run, written by the script before each run)
"""
import json
import os
import statistics
import sys

raw, rounds, out_json, out_md, cpu, cores, flags, load0, load1, model, omp = sys.argv[1:]
rounds = int(rounds)
tests = {"pp512": "prefill 512", "pp2048": "prefill 2048", "tg128": "decode 128"}
ours_name = {"pp512": "BM_Prefill/512", "pp2048": "BM_Prefill/2048", "tg128": "BM_Decode/1/128"}
files = ("q41", "q40")
res = {f: {"llama.cpp": {t: [] for t in tests}, "ctxmem": {t: [] for t in tests}} for f in files}
for f in files:
    for r in range(1, rounds + 1):
        try:
            for e in json.load(open(f"{raw}/llama_{f}_{r}.json")):
                t = (f"pp{e['n_prompt']}" if e["n_gen"] == 0 else f"tg{e['n_gen']}")
                if t in tests:
                    res[f]["llama.cpp"][t].append(e["avg_ts"])
        except (OSError, ValueError):
            pass
        try:
            for b in json.load(open(f"{raw}/ctxmem_{f}_{r}.json"))["benchmarks"]:
                name = b["name"].split("/min_time")[0].split("/manual_time")[0].split("/real_time")[0]
                for t, n in ours_name.items():
                    if name == n and "tokens_per_second" in b:
                        res[f]["ctxmem"][t].append(b["tokens_per_second"])
        except (OSError, ValueError, KeyError):
            pass
loads = []
if os.path.exists(f"{raw}/loads.txt"):
    for line in open(f"{raw}/loads.txt"):
        p = line.split()
        if len(p) >= 5:
            loads.append({"round": int(p[0]), "engine": p[1], "file": p[2], "load1": float(p[3])})


def med(v):
    return statistics.median(v) if v else None


def ratio(a, b):
    return a / b if a and b else None


summary = {f: {e: {t: med(v) for t, v in d.items()} for e, d in fr.items()} for f, fr in res.items()}
rows = []
for t, what in tests.items():
    l41, l40 = summary["q41"]["llama.cpp"][t], summary["q40"]["llama.cpp"][t]
    c41, c40 = summary["q41"]["ctxmem"][t], summary["q40"]["ctxmem"][t]
    present = [x for x in (l41, l40) if x is not None]
    best = max(present) if present else None
    rows.append({"test": t, "what": what, "llama_q4_1": l41, "llama_q4_0": l40,
                 "ctxmem_q4_1": c41, "ctxmem_q4_0": c40,
                 "ratio_q4_1_vs_llama_q4_1": ratio(c41, l41),
                 "ratio_q4_0_vs_llama_q4_0": ratio(c40, l40),
                 "ratio_q4_1_vs_llama_q4_0": ratio(c41, l40),
                 "ratio_best_vs_llama_best": ratio(max([x for x in (c41, c40) if x] or [0]), best)})
load1s = [x["load1"] for x in loads]
doc = {"machine": {"cpu": cpu, "cores": int(cores), "flags": flags.split(),
                   "load_before": load0, "load_after": load1, "omp_wait_policy": omp,
                   "load1_per_run": loads,
                   "load1_median": med(load1s), "load1_max": max(load1s) if load1s else None},
       "threads": 2, "rounds": rounds, "model": model, "raw": res, "rows": rows}
json.dump(doc, open(out_json, "w"), indent=1)


def f(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"


n_runs = {f_: {e: {t: len(v) for t, v in d.items()} for e, d in fr.items()} for f_, fr in res.items()}
lines = ["# Peer benchmark: ctxmem vs llama.cpp", "",
         f"Machine: {cpu}, {cores} cores available, flags {flags.strip()}; 2 threads; "
         f"load average {load0} before, {load1} after; 1-minute load before each run: median "
         f"{f(med(load1s), 2)}, max {f(max(load1s) if load1s else None, 2)} (other engineers share "
         f"the CPUs; per run in the JSON). OMP_WAIT_POLICY {omp}. Medians of {rounds} alternating "
         "rounds (per file, llama.cpp and ctxmem back to back, llama.cpp first in odd rounds). "
         "The machine's load makes single runs vary ~2x (ctxmem's prefill is the same dense bf16 "
         "work on both files, yet its medians differ); compare ratios, not absolute numbers. "
         "llama.cpp "
         "from the `llama-cpp-python==0.3.36` sdist (AVX-512/VNNI/BF16, no AMX), `llama-bench -r "
         "2`. ctxmem runs bench/model_bench (serving options: bf16 matrices for prefill, packed "
         f"decode) on `{model}` and on its Q4_0 copy. Produced by `bench/run_peer_bench.sh`.", "",
         "| tokens/s | llama.cpp Q4_1 | llama.cpp Q4_0 | ctxmem Q4_1 | ctxmem Q4_0 | "
         "ctxmem/llama, Q4_1 file | ctxmem/llama, Q4_0 file | ctxmem Q4_1 / llama Q4_0 | "
         "best / best |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['what']} | {f(r['llama_q4_1'])} | {f(r['llama_q4_0'])} | "
                 f"{f(r['ctxmem_q4_1'])} | {f(r['ctxmem_q4_0'])} | "
                 f"{f(r['ratio_q4_1_vs_llama_q4_1'], 2)} | {f(r['ratio_q4_0_vs_llama_q4_0'], 2)} | "
                 f"{f(r['ratio_q4_1_vs_llama_q4_0'], 2)} | {f(r['ratio_best_vs_llama_best'], 2)} |")
lines += ["", f"Runs per cell: {json.dumps(n_runs)}"]
open(out_md, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
labels = ["llama.cpp\nQ4_1", "llama.cpp\nQ4_0", "ctxmem\nQ4_1", "ctxmem\nQ4_0"]
colors = ["#9e9e9e", "#616161", "#1f77b4", "#0d47a1"]
for ax, r in zip(axes, rows):
    vals = [r["llama_q4_1"] or 0, r["llama_q4_0"] or 0, r["ctxmem_q4_1"] or 0, r["ctxmem_q4_0"] or 0]
    ax.bar(range(4), vals, color=colors)
    ax.set_xticks(range(4), labels, fontsize=8)
    ax.set_title(r["what"])
    ax.set_ylabel("tokens/s")
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
fig.suptitle(f"ctxmem vs llama.cpp, {cpu}, 2 threads (medians of {rounds} rounds)", fontsize=10)
fig.tight_layout()
fig.savefig(os.path.splitext(out_md)[0] + ".png", dpi=110)
