"""Build hook: generates the gRPC stubs from ../../proto (grpcio-tools) before the package's
Python files are collected, so wheels and `pip install clients/python` carry them. Metadata is
in pyproject.toml."""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "_ctxmem_generate", HERE / "ctxmem_client" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildPyWithStubs(build_py):
    def run(self):
        gen = _load_generator()
        gen.generate(out_dir=HERE / "ctxmem_client" / "_proto")
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs})
