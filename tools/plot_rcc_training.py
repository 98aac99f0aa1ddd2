#!/usr/bin/env python3
"""Draws an RCC training run (curves.json of `ctxmem train --method rcc`) as one PNG.

Left: train loss per step. Right: held-out reconstruction token accuracy vs LLM tokens, with
the untrained stride bridge's accuracy on the same windows as a dashed line.
Usage: plot_rcc_training.py RUN/curves.json --out curves.png
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.curves, encoding="utf-8") as f:
        c = json.load(f)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    tr = c.get("train", [])
    a.plot([r["step"] for r in tr], [r["loss"] for r in tr], lw=0.8)
    a.set_xlabel("step")
    a.set_ylabel("train loss (nats)")
    val = c.get("validation", [])
    b.plot([r["tokens"] for r in val], [r["recon_accuracy"] for r in val], marker="o",
           label=f"{c.get('variant', 'rcc')} bridge")
    ref = c.get("reference", {}).get("stride")
    if ref:
        b.axhline(ref["recon_accuracy"], ls="--", color="gray", label="stride (untrained)")
    b.set_xlabel("LLM forward tokens")
    b.set_ylabel("held-out reconstruction accuracy")
    b.set_title(f"W={c.get('window')} r={c.get('rate')}")
    b.legend()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
