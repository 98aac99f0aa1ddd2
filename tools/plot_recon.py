#!/usr/bin/env python3
"""Draws `ctxmem eval-recon` results: token_accuracy, bleu4 and continuation PPL per method.

One panel per metric; x = compression rate R (log scale), one line per method.
Usage: plot_recon.py eval_recon.json --out eval_recon.png
Needs matplotlib only.
"""

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recon_json")
    parser.add_argument("--out", required=True, help="output PNG path")
    args = parser.parse_args()
    with open(args.recon_json, encoding="utf-8") as f:
        rows = json.load(f).get("rows") or []
    if not rows:
        sys.exit(f"{args.recon_json}: no rows to plot")
    metrics = [("token_accuracy", "token accuracy (teacher-forced)"),
               ("bleu4", "BLEU-4 (greedy, 128 tokens)"),
               ("continuation_ppl", "continuation PPL")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    methods = []
    for r in rows:
        label = r["method"] + (f" ({r['bridge']})" if r.get("bridge") else "")
        if label not in methods:
            methods.append(label)
    for ax, (key, title) in zip(axes, metrics):
        for label in methods:
            pts = sorted((r["rate"], r[key]) for r in rows
                         if r["method"] + (f" ({r['bridge']})" if r.get("bridge") else "") == label)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("rate R (W/R entries)")
        ax.set_title(title)
        if key == "continuation_ppl":
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
