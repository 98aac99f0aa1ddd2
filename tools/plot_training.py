#!/usr/bin/env python3
"""Draws a training run's curves (curves.json of `ctxmem train`) as one PNG.

Left: training loss per step (and its LM / aux parts) with the validation loss. Right:
held-out compressed PPL vs LLM tokens seen in training, with the training-free references
(no_compress, tova, conv; mean_fuser for a fuser run) at the same chunk and memory size as horizontal lines. Several
curves.json files can be given (one line each, labelled by their objective / folder).

Usage: plot_training.py RUN/curves.json [MORE/curves.json ...] --out curves.png
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def label(path, c):
    return "%s %s (%s)" % (c.get("method", "perceiver"), c.get("objective", "?"),
                           os.path.basename(os.path.dirname(os.path.abspath(path))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("curves", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    refs = None
    for path in args.curves:
        c = json.load(open(path))
        lab = label(path, c)
        tr = c.get("train", [])
        if tr:
            line, = ax1.plot([r["step"] for r in tr], [r["loss"] for r in tr], label=lab + " train")
            val = c.get("validation", [])
            if val:
                ax1.plot([r["step"] for r in val], [r["loss"] for r in val], "o--",
                         color=line.get_color(), label=lab + " validation")
        val = [r for r in c.get("validation", []) if "ppl" in r]
        if val:
            ax2.plot([r["tokens"] / 1e3 for r in val], [r["ppl"] for r in val], "o-",
                     label=lab)
        refs = refs or c.get("reference")
        title = "C=%s M=%s FM, %s validation windows" % (c.get("chunk_size"), c.get("memory_size"),
                                                          c.get("val_windows"))
    if refs:
        for name, style in (("no_compress", ":"), ("tova", "--"), ("conv", "-."),
                            ("mean_fuser", (0, (5, 1)))):
            if name in refs:
                ax2.axhline(refs[name], linestyle=style, color="gray")
                ax2.annotate("%s %.2f" % (name, refs[name]), (0, refs[name]), fontsize=8,
                             xytext=(2, 2), textcoords="offset points")
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel("objective")
    ax1.set_title("training objective")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("LLM forward tokens in training (thousands)")
    ax2.set_ylabel("held-out PPL (compressed)")
    ax2.set_title(title)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
