"""Build hook: puts the gRPC stubs and a copy of the .proto files into ctxmem_client/_proto/
before setuptools looks for the package's files (egg_info, build_py and sdist all run it first),
so `pip install clients/python` (with or without build isolation), wheels and sdists carry
them. The protos come from $CTXMEM_PROTO_DIR or the repository's ../../proto; an sdist carries
its own copy in ctxmem_client/_proto and builds from that, without the repository.
Metadata is in pyproject.toml."""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.egg_info import egg_info
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent


def _ensure_stubs():
    spec = importlib.util.spec_from_file_location(
        "_ctxmem_generate", HERE / "ctxmem_client" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.generate(out_dir=HERE / "ctxmem_client" / "_proto")


def _with_stubs(command):
    class WithStubs(command):
        def run(self):
            _ensure_stubs()
            super().run()

    WithStubs.__name__ = command.__name__
    return WithStubs


setup(cmdclass={"egg_info": _with_stubs(egg_info), "build_py": _with_stubs(build_py),
                "sdist": _with_stubs(sdist)})
