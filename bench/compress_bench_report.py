#!/usr/bin/env python3
"""Tables for bench/run_compress_bench.sh: reads compress_bench.jsonl (one setting per line),
writes STEM.json (rows + ratios + machine) and STEM.md.

Ratios, all from the same run:
  - IMDC / FM time and peak RSS at the same length, pruner and score mode;
  - peak RSS at the longest length / at 8192 tokens per (pruner, memory type) (flatness: chunked
    compression must stay within 10 %);
  - window / exact scoring time for conv at the same length and memory type;
  - compression time / full prefill time at the same length, where the full prefill ran.
Usage: compress_bench_report.py JSONL STEM CPU NPROC MODEL CHUNK MEMORY THREADS
"""
import json
import sys


def main():
    jsonl, stem, cpu, nproc, model, chunk, memory, threads = sys.argv[1:]
    rows = [json.loads(l) for l in open(jsonl) if l.strip()]

    def find(**kw):
        for r in rows:
            if all(r.get(k) == v for k, v in kw.items()):
                return r
        return None

    lengths = sorted({r["tokens"] for r in rows})
    ratios = []
    for r in rows:
        if r["mode"] != "compress":
            continue
        entry = {k: r[k] for k in ("tokens", "pruner", "memory_type", "score_mode")}
        if r["memory_type"] == "IMDC":
            fm = find(tokens=r["tokens"], mode="compress", pruner=r["pruner"], memory_type="FM",
                      score_mode=r["score_mode"])
            if fm:
                entry["imdc_over_fm_time"] = r["seconds"] / fm["seconds"]
                entry["imdc_over_fm_cpu_time"] = r["cpu_seconds"] / fm["cpu_seconds"]
                entry["imdc_over_fm_peak_rss"] = r["peak_rss_mib"] / fm["peak_rss_mib"]
                entry["imdc_over_fm_peak_minus_before"] = (
                    r["peak_minus_before_mib"] / max(fm["peak_minus_before_mib"], 1))
        if r["score_mode"] == "window":
            ex = find(tokens=r["tokens"], mode="compress", pruner=r["pruner"],
                      memory_type=r["memory_type"], score_mode="exact")
            if ex:
                entry["window_over_exact_time"] = r["seconds"] / ex["seconds"]
                entry["window_over_exact_cpu_time"] = r["cpu_seconds"] / ex["cpu_seconds"]
        full = find(tokens=r["tokens"], mode="full")
        if full:
            entry["over_full_prefill_time"] = r["seconds"] / full["seconds"]
            entry["over_full_prefill_cpu_time"] = r["cpu_seconds"] / full["cpu_seconds"]
            entry["over_full_prefill_peak_rss"] = r["peak_rss_mib"] / full["peak_rss_mib"]
        if r["tokens"] == max(lengths) and r["tokens"] > 8192:
            base = find(tokens=8192, mode="compress", pruner=r["pruner"],
                        memory_type=r["memory_type"], score_mode=r["score_mode"])
            if base:
                entry["peak_rss_vs_8192"] = r["peak_rss_mib"] / base["peak_rss_mib"]
                entry["peak_minus_before_vs_8192"] = (
                    r["peak_minus_before_mib"] / max(base["peak_minus_before_mib"], 1))
        ratios.append(entry)

    machine = {"cpu": cpu, "nproc": int(nproc), "model": model, "threads": int(threads),
               "chunk": int(chunk), "memory": int(memory)}
    json.dump({"machine": machine, "rows": rows, "ratios": ratios}, open(stem + ".json", "w"),
              indent=1)

    out = ["# compress_bench results", "",
           f"Model `{model}`, CPU fp32, {threads} thread(s), C={chunk}, M={memory}, 4 sinks. "
           f"Machine: {cpu}, nproc {nproc}, shared with other jobs (load average per row). "
           "Text: the first N tokens of `tests/data/text/pride_and_prejudice.txt`. Every row is "
           "a fresh process (`bench/compress_bench`), run by `bench/run_compress_bench.sh`. "
           "`peak RSS` is the process VmHWM (model ≈ its baseline); `peak − before` is the peak "
           "minus the RSS just before the run (the working set of the compression).", "",
           "`CPU s` is the process's user + system CPU time (1 thread): compare these, since wall "
           "time on this shared machine also counts other jobs' turns.", "",
           "| tokens | what | memory type | scoring | wall s | CPU s | tok per CPU s | "
           "peak RSS MiB | peak − before MiB | memory len | load before → after |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {"full": 0, "compress": 1}
    for r in sorted(rows, key=lambda r: (r["tokens"], order[r["mode"]], r["pruner"],
                                         r["memory_type"], r["score_mode"])):
        out.append(f"| {r['tokens']} | {r['pruner']} | {r['memory_type']} | {r['score_mode']} | "
                   f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                   f"{r['tokens_per_cpu_second']:.0f} | {r['peak_rss_mib']} | "
                   f"{r['peak_minus_before_mib']} | {r['memory_len']} | "
                   f"{r['load_before']} → {r['load_after']} |")
    out += ["", "## Ratios (same run)", "",
            "| tokens | pruner | memory type | scoring | ratio | value |", "|---|---|---|---|---|---|"]
    for e in ratios:
        for k, v in e.items():
            if isinstance(v, float):
                out.append(f"| {e['tokens']} | {e['pruner']} | {e['memory_type']} | "
                           f"{e['score_mode']} | {k} | {v:.3f} |")
    missing = [n for n in (2048, 8192, 32768) if n not in lengths]
    if missing:
        out += ["", f"Pending (not yet run): {', '.join(map(str, missing))} tokens."]
    open(stem + ".md", "w").write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
