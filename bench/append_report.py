#!/usr/bin/env python3
"""Tables of bench/run_append_bench.sh: append_bench.jsonl -> append_bench.{json,md}.

Usage: append_report.py RESULTS.jsonl OUT_PREFIX
"""
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True,
            text=True).stdout.splitlines() if l.startswith("Model name")), "?")
out = {"machine": cpu, "rows": rows}
lines = ["# Incremental append: cost vs base length", "",
         f"Machine: {cpu}. SmolLM2-135M Q4_1 (cpu fp32, 1 thread), C=512, M=256, FM, bf16 blobs; "
         "append = verify + decode the base blob, CompressAppend of the next tokens, encode + seal "
         "the new blob; median of the repeats. Ratio = append cost / the 2k base's append cost "
         "(same pruner, same run). CPU s is the figure to compare on this shared machine.", "",
         "| pruner | base tokens | append tokens | base blob bytes | decode s | append compress s | seal s | total s | total CPU s | CPU ratio vs 2k | base compress CPU s |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for p in sorted({r["pruner"] for r in rows}):
    rs = sorted([r for r in rows if r["pruner"] == p], key=lambda r: r["base_tokens"])
    ref = rs[0]["append_total_cpu_seconds"]
    for r in rs:
        r["cpu_ratio_vs_smallest"] = r["append_total_cpu_seconds"] / ref
        lines.append(f"| {p} | {r['base_tokens']} | {r['append_tokens']} | {r['base_blob_bytes']} | "
                     f"{r['decode_seconds']:.3f} | {r['append_compress_seconds']:.2f} | "
                     f"{r['seal_seconds']:.3f} | {r['append_total_seconds']:.2f} | "
                     f"{r['append_total_cpu_seconds']:.2f} | {r['cpu_ratio_vs_smallest']:.3f} | "
                     f"{r['base_compress_cpu_seconds']:.1f} |")
    spread = max(r["cpu_ratio_vs_smallest"] for r in rs) / min(r["cpu_ratio_vs_smallest"] for r in rs)
    lines.append("")
    lines.append(f"{p}: largest / smallest append CPU time across base lengths = {spread:.3f} "
                 f"({'within' if spread <= 1.10 else 'NOT within'} 10%).")
    lines.append("")
json.dump(out, open(sys.argv[2] + ".json", "w"), indent=1)
open(sys.argv[2] + ".md", "w").write("\n".join(lines) + "\n")
