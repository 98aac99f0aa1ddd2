#!/usr/bin/env python3
"""Draws the perplexity table of `ctxmem eval-ppl` (spec §10.2's expected shape at a glance).

One panel per (chunk size C, memory type): x = memory size M, one line per pruner, y = PPL,
and no_compress as a dashed line. Panels of one chunk size share the y axis, so FM vs IM vs
IMDC reads across a row. Pending or failed settings are left out (a partial table plots what
is done). Usage: plot_eval_ppl.py eval_ppl.json --out eval_ppl.png
Needs matplotlib only.
"""

import argparse
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The seeds' memory types in their usual order; others follow alphabetically.
TYPE_ORDER = ["FM", "IM", "IMDC", "FIXED_INCREMENTAL", "DOUBLE_COMPRESS"]


def finished_rows(data):
    for row in data.get("rows") or []:
        if row.get("pending") or row.get("error") or "ppl" not in row:
            continue
        yield row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_json")
    parser.add_argument("--out", required=True, help="output PNG path")
    args = parser.parse_args()
    with open(args.eval_json, encoding="utf-8") as f:
        data = json.load(f)

    # series[(C, type)][pruner] = {M: ppl}; reference[C] = no_compress PPL.
    series = defaultdict(lambda: defaultdict(dict))
    reference = {}
    for row in finished_rows(data):
        c = row["config"]
        if row.get("reference"):
            reference[c["chunk_size"]] = row["ppl"]
            continue
        series[(c["chunk_size"], c["memory_type"])][c["pruner"]][c["memory_size"]] = row["ppl"]
    if not series:
        sys.exit(f"{args.eval_json}: no finished settings to plot")

    chunks = sorted({c for c, _ in series})
    types = sorted({t for _, t in series},
                   key=lambda t: (TYPE_ORDER.index(t) if t in TYPE_ORDER else 99, t))
    pruners = sorted({p for s in series.values() for p in s})
    colors = {p: plt.cm.tab10(i % 10) for i, p in enumerate(pruners)}
    fig, axes = plt.subplots(len(chunks), len(types), figsize=(4.2 * len(types), 3.6 * len(chunks)),
                             squeeze=False, sharey="row")
    for r, chunk in enumerate(chunks):
        for col, mtype in enumerate(types):
            ax = axes[r][col]
            for pruner in pruners:
                points = sorted(series[(chunk, mtype)].get(pruner, {}).items())
                if not points:
                    continue
                ax.plot([m for m, _ in points], [p for _, p in points], marker="o", ms=3,
                        color=colors[pruner], label=pruner)
            if chunk in reference:
                ax.axhline(reference[chunk], color="black", ls="--", lw=1, label="no_compress")
            ax.set_xscale("log", base=2)
            ms = sorted({m for s in series[(chunk, mtype)].values() for m in s})
            ax.set_xticks(ms, [str(m) for m in ms])
            ax.minorticks_off()
            ax.set_title(f"C={chunk}, {mtype}", fontsize=10)
            ax.set_xlabel("memory size M")
            if col == 0:
                ax.set_ylabel("perplexity")
            ax.grid(alpha=0.3)
    handles, labels = {}, {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center",
               ncol=min(len(handles), 5), fontsize=8, frameon=False)
    model = str(data.get("model", "")).rsplit("/", 1)[-1]
    fig.suptitle(f"eval-ppl: first {data.get('eval_len', '?')} tokens, {model}", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
