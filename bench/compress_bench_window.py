#!/usr/bin/env python3
"""Window scoring mode (spec §12.1, score_window w) vs exact mode: PPL and time per setting.

Reads two `ctxmem eval-ppl` tables over the same settings, one run with --score-mode exact and
one with --score-mode window, and writes OUT.json and OUT.md with, per (C, M, pruner, memory
type): PPL exact / window and the relative difference, wall time exact / window and the ratio.
Usage: compress_bench_window.py EXACT.json WINDOW.json OUT_STEM
"""
import json
import sys


def key(row):
    c = row["config"]
    return (c["chunk_size"], c["memory_size"], c["pruner"], c["memory_type"])


def main():
    exact_path, window_path, stem = sys.argv[1:]
    exact = json.load(open(exact_path))
    window = json.load(open(window_path))
    w_rows = {key(r): r for r in window["rows"] if not r.get("pending") and not r.get("error")}
    out_rows = []
    for r in exact["rows"]:
        if r.get("pending") or r.get("error") or r["reference"]:
            continue
        w = w_rows.get(key(r))
        if w is None:
            continue
        out_rows.append({
            "chunk": r["config"]["chunk_size"], "memory": r["config"]["memory_size"],
            "pruner": r["config"]["pruner"], "memory_type": r["config"]["memory_type"],
            "score_window": w["config"]["score_window"],
            "ppl_exact": r["ppl"], "ppl_window": w["ppl"],
            "ppl_window_vs_exact": w["ppl"] / r["ppl"] - 1,
            "seconds_exact": r["seconds"], "seconds_window": w["seconds"],
            "time_window_over_exact": w["seconds"] / r["seconds"],
            "load_exact": r.get("load_average", ""), "load_window": w.get("load_average", ""),
        })
    ref = [r["ppl"] for r in exact["rows"] if r["reference"] and not r.get("pending")]
    result = {"eval_len": exact["eval_len"], "text": exact.get("text"), "model": exact.get("model"),
              "machine": window.get("machine") or exact.get("machine"), "no_compress_ppl": ref[0] if ref else None,
              "rows": out_rows}
    json.dump(result, open(stem + ".json", "w"), indent=1)
    m = window.get("machine") or exact.get("machine") or {}
    lines = [
        "# Window vs exact scoring mode (spec §12.1)", "",
        f"Perplexity over the first {exact['eval_len']} tokens of `{exact.get('text')}`, model "
        f"`{exact.get('model')}`, CPU fp32, {m.get('threads')} thread(s); machine {m.get('cpu')}, "
        f"nproc {m.get('nproc')} (shared; load average per row). Window mode scores keys with "
        f"the chunk's last w queries only; exact mode with all of them. Time = the whole "
        "compression with logits and PPL scoring (eval-ppl), so the scoring share is diluted "
        "by the model's forward; bench/results/compress_bench.md has compression-only times. "
        "PPL is deterministic, so the exact column may come from an earlier run (here "
        f"`{exact_path}`); times from different runs and loads are not comparable: use "
        "compress_bench's CPU times for the cost.",
        f"no_compress PPL {result['no_compress_ppl']:.3f}." if ref else "", "",
        "| C | M | pruner | memory | w | PPL exact | PPL window | Δ PPL | time exact s | "
        "time window s | time ratio | load exact / window |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out_rows:
        lines.append(
            f"| {r['chunk']} | {r['memory']} | {r['pruner']} | {r['memory_type']} | "
            f"{r['score_window']} | {r['ppl_exact']:.3f} | {r['ppl_window']:.3f} | "
            f"{100 * r['ppl_window_vs_exact']:+.2f} % | {r['seconds_exact']:.1f} | "
            f"{r['seconds_window']:.1f} | {r['time_window_over_exact']:.2f} | "
            f"{r['load_exact']} / {r['load_window']} |")
    open(stem + ".md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
