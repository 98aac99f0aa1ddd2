#!/usr/bin/env python3
"""Tables and plot of bench/run_kv_quant_bench.sh: kv_quant.jsonl -> kv_quant.{json,md,png}.

Usage: kv_quant_report.py RESULTS.jsonl OUT_PREFIX
Ratios compare each quantized memory with the bf16 memory of the same pruner and M (same run).
"""
import json
import platform
import subprocess
import sys


def machine():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main():
    src, prefix = sys.argv[1], sys.argv[2]
    rows, seen = [], set()
    for l in open(src):  # a setting run twice (parallel runners) counts once: the first
        if not l.strip():
            continue
        r = json.loads(l)
        key = (r["pruner"], r["memory_type"], r["memory"], r["kv_dtype"], r["group_size"])
        if key not in seen:
            seen.add(key)
            rows.append(r)
    base = {(r["pruner"], r["memory"]): r for r in rows if r["kv_dtype"] == "bf16"}
    for r in rows:
        b = base.get((r["pruner"], r["memory"]))
        r["ppl_vs_bf16"] = r["ppl"] / b["ppl"] if b else None
        r["blob_vs_bf16"] = r["blob_bytes"] / b["blob_bytes"] if b else None
        r["zstd3_ratio"] = r["zstd3_bytes"] / r["blob_bytes"]
        r["meets_16x_at_1pct"] = bool(r["x_fewer_than_fp16"] >= 16 and r["ppl_vs_bf16"] is not None
                                      and r["ppl_vs_bf16"] <= 1.01)
    order = {"bf16": 0, "f16": 1, "f32": 2, "int8": 3, "int4": 4}
    rows.sort(key=lambda r: (r["memory"], r["pruner"], order.get(r["kv_dtype"], 9),
                             -r["group_size"]))
    summary = {"machine": machine(), "rows": rows}
    with open(prefix + ".json", "w") as f:
        json.dump(summary, f, indent=1)

    full = rows[0]["full_fp16_bytes_per_token"] if rows else 0
    lines = [
        "# Quantized memories: bytes per original token vs PPL",
        "",
        f"Machine: {summary['machine']}. SmolLM2-135M Q4_1 (cpu fp32), first {rows[0]['tokens'] if rows else '?'} "
        "tokens of tests/data/text/pride_and_prejudice.txt, C=512, FM. PPL as `ctxmem eval-ppl` "
        "(every position, from its chunk's logits) with every chunk reading the memory through "
        "a quantize-dequantize round trip of its format (what a decoder loads from the blob). "
        f"Full fp16 KV = {full:.0f} bytes per original token. Ratios are against the bf16 memory "
        "of the same pruner and M in this run. G = KIVI group size (keys: tokens per channel "
        "group, values: channels per token group). zstd = zstd -3 of the whole sealed blob. "
        "load = the 1-minute load average when the setting finished (2 cores shared with other "
        "engineers' builds: compare CPU s, not wall time).",
        "",
        "| M | pruner | kv | G | PPL | PPL vs bf16 | blob bytes | blob vs bf16 | bytes/token | x fewer than fp16 KV | zstd/blob | CPU s | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pv = f"{(r['ppl_vs_bf16'] - 1) * 100:+.2f}%" if r["ppl_vs_bf16"] else "-"
        bv = f"{r['blob_vs_bf16']:.4f}" if r["blob_vs_bf16"] else "-"
        lines.append(
            f"| {r['memory']} | {r['pruner']} | {r['kv_dtype']} | {r['group_size'] or '-'} | "
            f"{r['ppl']:.3f} | {pv} | {r['blob_bytes']} | {bv} | {r['bytes_per_token']:.1f} | "
            f"{r['x_fewer_than_fp16']:.1f} | {r['zstd3_ratio']:.3f} | {r['cpu_seconds']:.0f} | "
            f"{(r.get('load_average') or ['?'])[0]} |")
    lines.append("")
    ok = [r for r in rows if r["meets_16x_at_1pct"] and r["kv_dtype"] != "bf16"]
    q = [r for r in rows if r["kv_dtype"] != "bf16"]
    lines.append(f"Settings with >= 16x fewer bytes than fp16 KV at <= 1% PPL over bf16: "
                 f"{len(ok)} of {len(q)} quantized rows.")
    i4 = [r for r in rows if r["kv_dtype"] == "int4" and r["blob_vs_bf16"]]
    if i4:
        lines.append(f"int4 blob / bf16 blob: {min(r['blob_vs_bf16'] for r in i4):.4f} .. "
                     f"{max(r['blob_vs_bf16'] for r in i4):.4f} (largest by G: " + ", ".join(
                         f"G={g}: {max(r['blob_vs_bf16'] for r in i4 if r['group_size'] == g):.4f}"
                         for g in sorted({r['group_size'] for r in i4})) + ").")
    lines.append("")
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(lines))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = {"tova": "tab:blue", "conv": "tab:orange", "streaming_llm": "tab:green"}
    markers = {"bf16": "o", "int8": "s", "int4": "^"}
    for p in sorted({r["pruner"] for r in rows}):
        for d in ["bf16", "int8", "int4"]:
            pts = sorted([r for r in rows if r["pruner"] == p and r["kv_dtype"] == d
                          and r["group_size"] in (0, max(r2["group_size"] for r2 in rows))],
                         key=lambda r: r["memory"])
            if not pts:
                continue
            ax.plot([r["bytes_per_token"] for r in pts], [r["ppl"] for r in pts],
                    marker=markers[d], color=colors.get(p, "k"),
                    linestyle="-" if d == "bf16" else ("--" if d == "int8" else ":"),
                    label=f"{p} {d}")
            for r in pts:
                ax.annotate(f"M={r['memory']}", (r["bytes_per_token"], r["ppl"]), fontsize=6,
                            textcoords="offset points", xytext=(3, 3))
    if full:
        ax.axvline(full / 16, color="gray", linestyle="-.", linewidth=0.8)
        ax.text(full / 16, ax.get_ylim()[1], " fp16 KV / 16", fontsize=7, va="top")
    ax.set_xscale("log")
    ax.set_xlabel("blob bytes per original token (log)")
    ax.set_ylabel("PPL (8k window)")
    ax.set_title("Quantized memories: size vs perplexity (C=512, FM)")
    ax.legend(fontsize=7, ncol=3)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(prefix + ".png", dpi=120)


if __name__ == "__main__":
    main()
