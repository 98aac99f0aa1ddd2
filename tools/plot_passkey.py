#!/usr/bin/env python3
"""Draws the passkey accuracy heatmaps (length x depth) of `ctxmem eval-passkey`.

One panel per run (pruner) of the JSON; cells are the share of correct trials, with the
value written in each cell. Usage: plot_passkey.py passkey.json --out passkey.png
Needs matplotlib and numpy only.
"""

import argparse
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("passkey_json")
    parser.add_argument("--out", required=True, help="output PNG path")
    args = parser.parse_args()
    with open(args.passkey_json, encoding="utf-8") as f:
        data = json.load(f)
    runs = data.get("runs") or []
    if not runs:
        sys.exit(f"{args.passkey_json}: no runs to plot")
    fig, axes = plt.subplots(1, len(runs), figsize=(4.4 * len(runs) + 0.8, 3.8), squeeze=False,
                             layout="constrained")
    image = None
    for ax, run in zip(axes[0], runs):
        cells = np.array([[math.nan if v is None else float(v) for v in row]
                          for row in run["cells"]])  # [lengths, depths]
        image = ax.imshow(cells, aspect="auto", origin="lower", vmin=0.0, vmax=1.0,
                          cmap="RdYlGn", interpolation="nearest")
        for i in range(cells.shape[0]):
            for j in range(cells.shape[1]):
                if not math.isnan(cells[i, j]):
                    ax.text(j, i, f"{cells[i, j]:.2f}", ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(run["depths"])), [f"{d:g}" for d in run["depths"]])
        ax.set_yticks(range(len(run["lengths"])), [str(n) for n in run["lengths"]])
        ax.set_xlabel("key depth")
        ax.set_ylabel("prompt length (tokens)")
        c = run["config"]
        ax.set_title(f"{c['pruner']} {c['memory_type']} C={c['chunk_size']} M={c['memory_size']}"
                     f"\naccuracy {run['accuracy']:.2f} ({run['n_trials']} trial(s)/cell)",
                     fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
