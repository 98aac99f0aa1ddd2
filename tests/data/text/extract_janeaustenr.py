#!/usr/bin/env python3
"""Extract one novel from Debian's r-cran-janeaustenr package (no R needed).

Usage:
  apt-get download r-cran-janeaustenr          # 1.0.0-1 was used
  dpkg-deb -x r-cran-janeaustenr_*.deb jr
  python3 extract_janeaustenr.py jr/usr/lib/R/site-library/janeaustenr/data prideprejudice > out.txt

The package keeps its data as an R lazy-load database (data/Rdata.rdx index + data/Rdata.rdb
blobs). This is a minimal reader of R's XDR serialization format, enough for the index (a
named list) and the novels (character vectors, one element per line of the Gutenberg text).
The lines are joined with "\n" and a final "\n" is appended. Pure standard library.
"""
import gzip
import struct
import sys
import zlib


class RReader:
    def __init__(self, buf):
        self.b, self.p, self.refs = buf, 0, []
        assert self.b[:2] == b"X\n", "only XDR serialization is supported"
        self.p = 2
        version = self.i32()
        self.i32()  # writer R version
        self.i32()  # min reader version
        if version == 3:
            n = self.i32()
            self.p += n  # native encoding name

    def i32(self):
        v = struct.unpack_from(">i", self.b, self.p)[0]
        self.p += 4
        return v

    def item(self):
        flags = self.i32()
        t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if t == 254:  # NILVALUE
            return None
        if t in (253, 252, 251, 250, 242, 241):  # special envs / markers
            return None
        if t == 255:  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self.i32()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP
            name = self.item()
            self.refs.append(name)
            return name
        if t == 9:  # CHARSXP
            n = self.i32()
            if n == -1:
                return None
            s = self.b[self.p:self.p + n]
            self.p += n
            return s.decode("utf-8" if flags & (1 << 15) or True else "latin-1")
        if t in (2, 239):  # LISTSXP (pairlist) / ATTRLISTSXP
            out = {}
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            out[tag] = car
            if isinstance(cdr, dict):
                out.update(cdr)
            return out
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.i32()
            v = list(struct.unpack_from(">%di" % n, self.b, self.p))
            self.p += 4 * n
            return self.attrs(v, has_attr)
        if t == 14:  # REALSXP
            n = self.i32()
            v = list(struct.unpack_from(">%dd" % n, self.b, self.p))
            self.p += 8 * n
            return self.attrs(v, has_attr)
        if t in (16, 19):  # STRSXP, VECSXP
            n = self.i32()
            v = [self.item() for _ in range(n)]
            return self.attrs(v, has_attr)
        raise ValueError("unsupported SEXP type %d" % t)

    def attrs(self, v, has_attr):
        if has_attr:
            a = self.item()
            names = a.get("names") if isinstance(a, dict) else None
            if names is not None:
                return dict(zip(names, v))
        return v


def load_rdb_object(rdb, offset, length):
    blob = rdb[offset:offset + length]
    # 4-byte big-endian uncompressed length, then (for the default zlib) a zlib stream.
    return RReader(zlib.decompress(blob[4:])).item()


def main():
    data_dir, name = sys.argv[1], sys.argv[2]
    index = RReader(gzip.decompress(open(data_dir + "/Rdata.rdx", "rb").read())).item()
    offset, length = index["variables"][name]
    rdb = open(data_dir + "/Rdata.rdb", "rb").read()
    lines = load_rdb_object(rdb, int(offset), int(length))
    sys.stdout.buffer.write(("\n".join(l if l is not None else "" for l in lines) + "\n").encode("utf-8"))


if __name__ == "__main__":
    main()
