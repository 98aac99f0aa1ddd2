#!/usr/bin/env python3
"""Draws the memory-probing plots of `ctxmem probe` (spec §9) from its probe.json.

Writes into --out:
  probe_forgetting.png         per step, every run on one figure: share of the memory from
                               chunk 0 (§9 forgetting curve), keep rate (§9 retention) and the
                               share of memory keys the next chunk attends to above average
                               (§9 usage), each averaged over layers
  probe_keep_rate_heatmap.png  per run: keep rate by layer (rows) and step (columns)
  probe_retention_heatmap.png  per run: share of every source chunk (columns) each layer (rows)
                               still holds after the last step

Usage: plot_probe.py probe.json --out DIR
Needs matplotlib and numpy only.
"""

import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def series(values):
    """JSON list with nulls -> float array with NaN."""
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def plot_curves(data, path):
    runs = data["runs"]
    has_usage = any(
        not np.all(np.isnan(series(r["probe"]["mean"]["usage_valid"]))) for r in runs)
    n_panels = 3 if has_usage else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 4.2))
    for run in runs:
        mean = run["probe"]["mean"]
        steps = np.arange(len(mean["forgetting"]))
        axes[0].plot(steps, series(mean["forgetting"]), marker="o", ms=3, label=run["label"])
        # Step 0 has no earlier memory: its keep rate is 0 by definition, so start at step 1.
        axes[1].plot(steps[1:], series(mean["keep_rate"])[1:], marker="o", ms=3,
                     label=run["label"])
        if has_usage:
            axes[2].plot(steps, series(mean["usage_valid"]), marker="o", ms=3,
                         label=run["label"])
    axes[0].set_title("Forgetting curve: share of memory from chunk 0")
    axes[1].set_title("Keep rate: share of memory already held before")
    for ax in axes[:2]:
        ax.set_ylim(-0.02, 1.02)
    if has_usage:
        axes[2].set_title("Usage: memory keys above mean attention")
        axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.set_xlabel("step (chunk index)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    first = runs[0]
    fig.suptitle(
        f"{first['config']['memory_type']}, C={first['config']['chunk_size']}, "
        f"M={first['config']['memory_size']}, {data['n_tokens']} tokens "
        f"(mean over {first['probe']['n_layers']} layers)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_heatmaps(data, path, title, matrix_of, xlabel):
    runs = data["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs) + 1.2, 4.6), squeeze=False,
                             layout="constrained")
    image = None
    for ax, run in zip(axes[0], runs):
        matrix = matrix_of(run["probe"])  # [n_layers, n_columns]
        image = ax.imshow(matrix, aspect="auto", origin="lower", vmin=0.0, vmax=1.0,
                          cmap="viridis", interpolation="nearest")
        ax.set_title(run["label"], fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def keep_rate_matrix(probe):
    m = np.array([series(layer["keep_rate"]) for layer in probe["layers"]])
    m[:, 0] = np.nan  # step 0: nothing was in memory before
    return m


def final_retention_matrix(probe):
    return np.array([series(layer["retention"][-1]) for layer in probe["layers"]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe_json")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    with open(args.probe_json, encoding="utf-8") as f:
        data = json.load(f)
    if not data.get("runs"):
        sys.exit(f"{args.probe_json}: no runs to plot")
    os.makedirs(args.out, exist_ok=True)
    written = []
    path = os.path.join(args.out, "probe_forgetting.png")
    plot_curves(data, path)
    written.append(path)
    path = os.path.join(args.out, "probe_keep_rate_heatmap.png")
    plot_heatmaps(data, path, "Keep rate per layer and step (share of the memory kept from the "
                  "step before)", keep_rate_matrix, "step (chunk index)")
    written.append(path)
    path = os.path.join(args.out, "probe_retention_heatmap.png")
    plot_heatmaps(data, path, "Retention after the last step: share of each source chunk "
                  "still in memory, per layer", final_retention_matrix, "source chunk")
    written.append(path)
    for p in written:
        print(f"wrote {p}")


if __name__ == "__main__":
    main()
