"""Generates the protobuf/gRPC stubs of the ctxmem API into ctxmem_client/_proto/.

The stubs are never committed: they are made from proto/ctxmem/v1/*.proto by grpcio-tools when
the package is built (setup.py), by `python -m ctxmem_client.generate`, or on first import from
a source checkout. The output also holds a copy of the .proto files and PROTO_SHA256 (a hash of
them), so an installed package works without the repository and a checkout notices stale stubs.

Writes are atomic: everything is generated into a temporary folder beside _proto/ and renamed
into place, so concurrent processes (parallel tests) never see half-written stubs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

PACKAGE_DIR = Path(__file__).resolve().parent
OUT_DIR = PACKAGE_DIR / "_proto"
PROTO_FILES = ("ctxmem/v1/memory.proto", "ctxmem/v1/compressor.proto", "ctxmem/v1/decoder.proto")
HASH_FILE = "PROTO_SHA256"


def find_proto_root() -> Optional[Path]:
    """The folder holding ctxmem/v1/*.proto: $CTXMEM_PROTO_DIR, else the repository's proto/
    (../../proto from clients/python), else the copy in _proto/ (an sdist or an installed
    package, which carry the protos they were built from), else None."""
    candidates = []
    if os.environ.get("CTXMEM_PROTO_DIR"):
        candidates.append(Path(os.environ["CTXMEM_PROTO_DIR"]))
    candidates.append(PACKAGE_DIR.parent.parent.parent / "proto")
    candidates.append(OUT_DIR)
    for root in candidates:
        if all((root / f).is_file() for f in PROTO_FILES):
            return root
    return None


def proto_hash(root: Path) -> str:
    h = hashlib.sha256()
    for f in PROTO_FILES:
        h.update(f.encode() + b"\0" + (root / f).read_bytes() + b"\0")
    return h.hexdigest()


def generated_hash(out_dir: Path = OUT_DIR) -> Optional[str]:
    try:
        return (out_dir / HASH_FILE).read_text().strip()
    except OSError:
        return None


def is_current(proto_root: Optional[Path] = None, out_dir: Path = OUT_DIR) -> bool:
    """True when out_dir holds stubs made from the protos at proto_root (or any stubs, when no
    proto sources can be found, e.g. in an installed package)."""
    have = generated_hash(out_dir)
    if have is None:
        return False
    root = proto_root or find_proto_root()
    return root is None or have == proto_hash(root)


# grpc_tools writes `from ctxmem.v1 import memory_pb2`; inside the package that must be absolute.
_IMPORT_RE = re.compile(r"^from ctxmem\.v1 import ", re.MULTILINE)


def _run_protoc(proto_root: Path, out: Path) -> None:
    try:
        from grpc_tools import protoc  # type: ignore
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "grpcio-tools is needed to generate the ctxmem stubs: pip install grpcio-tools"
        ) from e
    import importlib.resources

    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
    ] + [str(proto_root / f) for f in PROTO_FILES]
    rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"protoc failed (exit {rc}) on {proto_root}")


def generate(proto_root: Optional[Path] = None, out_dir: Path = OUT_DIR, force: bool = False) -> Path:
    """Generates the stubs into out_dir unless they are current; returns out_dir."""
    root = proto_root or find_proto_root()
    if root is None:
        raise RuntimeError(
            "cannot find proto/ctxmem/v1/*.proto: set CTXMEM_PROTO_DIR to the repository's "
            "proto/ folder"
        )
    if not force and is_current(root, out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".proto-tmp-", dir=out_dir.parent))
    try:
        _run_protoc(root, tmp)
        for sub in (tmp, tmp / "ctxmem", tmp / "ctxmem" / "v1"):
            (sub / "__init__.py").touch()
        pkg = out_dir.parent.name + "." + out_dir.name  # ctxmem_client._proto
        for py in (tmp / "ctxmem" / "v1").glob("*.py"):
            text = py.read_text()
            py.write_text(_IMPORT_RE.sub(f"from {pkg}.ctxmem.v1 import ", text))
        for f in PROTO_FILES:  # a copy of the sources, for reference and reflection-free use
            shutil.copyfile(root / f, tmp / f)
        (tmp / HASH_FILE).write_text(proto_hash(root) + "\n")
        # Swap into place: rename the old folder away first (rename onto a non-empty folder
        # fails), then the new one in. A racing generator that wins first is fine: same content.
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=".proto-tmp-old-", dir=out_dir.parent))
            try:
                os.rename(out_dir, old / "p")
            except FileNotFoundError:
                pass
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not is_current(root, out_dir):
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ctxmem_client.generate",
        description="Generate the ctxmem protobuf/gRPC stubs into ctxmem_client/_proto/.",
    )
    p.add_argument("--proto-dir", type=Path, help="folder holding ctxmem/v1/*.proto")
    p.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="regenerate even if current")
    args = p.parse_args(argv)
    try:
        out = generate(args.proto_dir, args.out, args.force)
    except RuntimeError as e:
        print(f"ctxmem_client.generate: {e}", file=sys.stderr)
        return 1
    print(f"stubs in {out} (protos sha256 {generated_hash(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
