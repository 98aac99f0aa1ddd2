#!/usr/bin/env python3
"""Held-out PPL and KL vs training tokens of learned runs, against tova and conv.

Reads an eval-ppl JSON whose learned rows are checkpoint snapshots (bench/run_train_curve.sh)
and the points JSON naming each snapshot's run, step and text tokens seen. One column per
memory size M: top PPL, bottom KL(no_compress || row); one line per run over its snapshots,
tova / conv / no_compress as horizontal lines. Also prints a markdown table.
Several eval JSONs (and points files) are merged: later runs of the script add snapshots.
Usage: plot_train_curve.py curve.json [more.json] --points curve_points.json [more_points.json]
       --chunk 512 --out curve.png
Needs matplotlib only.
"""

import argparse
import json
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BASELINES = ["tova", "conv"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_json", nargs="+")
    parser.add_argument("--points", required=True, nargs="+")
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--out", required=True, help="output PNG path")
    args = parser.parse_args()
    rows = []
    for path in args.eval_json:
        with open(path, encoding="utf-8") as f:
            rows += json.load(f).get("rows") or []
    points = {}
    for path in args.points:
        with open(path, encoding="utf-8") as f:
            points.update(json.load(f))

    ref = None
    base = defaultdict(dict)  # base[M][pruner] = (ppl, kl)
    runs = defaultdict(lambda: defaultdict(list))  # runs[M][run] = [(tokens, step, ppl, kl)]
    for row in rows:
        if row.get("pending") or row.get("error") or "ppl" not in row:
            continue
        c = row["config"]
        if c["chunk_size"] != args.chunk or c["memory_type"] != "FM":
            continue
        if row.get("reference"):
            ref = row["ppl"]
            continue
        m, p = c["memory_size"], c["pruner"]
        if p in points:
            pt = points[p]
            runs[m][pt["run"]].append((pt["text_tokens"], pt["step"], row["ppl"], row.get("kl")))
        else:
            base[m][p] = (row["ppl"], row.get("kl"))
    memories = sorted(set(base) | set(runs))
    if not memories:
        raise SystemExit(f"{args.eval_json}: nothing finished at C={args.chunk}")

    fig, axes = plt.subplots(2, len(memories), figsize=(5 * len(memories), 7), squeeze=False)
    styles = {"tova": ("tab:red", "--"), "conv": ("tab:green", "-.")}
    print(f"| M | run | step | text tokens | PPL | KL | vs tova | vs conv |")
    print("|---|---|---|---|---|---|---|---|")
    for col, m in enumerate(memories):
        for r, (what, idx) in enumerate((("PPL", 0), ("KL(no_compress || row), nats", 1))):
            ax = axes[r][col]
            for name, pts in sorted(runs[m].items()):
                pts.sort()
                ys = [p[2 + idx] for p in pts]
                if any(y is None for y in ys):
                    continue
                ax.plot([p[0] for p in pts], ys, "o-", label=name)
            for b in BASELINES:
                if b in base[m] and base[m][b][idx] is not None:
                    color, ls = styles[b]
                    ax.axhline(base[m][b][idx], color=color, ls=ls, label=b)
            if idx == 0 and ref is not None:
                ax.axhline(ref, color="gray", ls=":", label="no_compress")
            ax.set_title(f"C={args.chunk} M={m} FM")
            ax.set_xlabel("training text tokens")
            ax.set_ylabel(what)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        for name, pts in sorted(runs[m].items()):
            for tokens, step, ppl, kl in sorted(pts):
                rel = [f"{ppl / base[m][b][0]:.4f}" if b in base[m] else "" for b in BASELINES]
                kl_s = f"{kl:.4f}" if kl is not None else "-"
                print(f"| {m} | {name} | {step} | {tokens} | {ppl:.3f} | {kl_s} | "
                      f"{rel[0]} | {rel[1]} |")
    fig.suptitle("Perceiver on held-out text vs training tokens (lower is better)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
