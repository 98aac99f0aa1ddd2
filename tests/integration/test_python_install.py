"""The Python client installs the way a new user installs it, from a fresh copy of the tree with
no generated stubs: `pip install clients/python` into a plain venv (build isolation: pip gets
setuptools and grpcio-tools from PyPI), `pip install --no-build-isolation` (the build tools of
the venv running this test), and `python -m build` (an sdist, then a wheel built from that
sdist alone), each installed and run as `ctxmem-py` against a real compressor from a folder
outside the tree. The sdist and the wheel must carry the .proto files and the stubs."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile

import harness
from harness import ClusterTestCase

PROTOS = ("memory.proto", "compressor.proto", "decoder.proto")
PIP_TIMEOUT_S = 600


def fresh_tree(dest: str) -> str:
    """Copies the tracked files of clients/python and proto/ (as a fresh clone has them) into
    dest; returns dest/clients/python."""
    src = harness.SOURCE_DIR
    try:
        files = subprocess.run(["git", "-C", src, "ls-files", "-z", "clients/python", "proto"],
                               capture_output=True, check=True, timeout=60).stdout
        names = [n for n in files.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
    if names:
        for name in names:
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(os.path.join(src, name), os.path.join(dest, name))
    else:  # not a git checkout (an unpacked archive): copy, leaving generated files out
        ignore = shutil.ignore_patterns("_proto", ".proto-tmp-*", "__pycache__", "build", "dist",
                                        "*.egg-info")
        for sub in ("clients/python", "proto"):
            shutil.copytree(os.path.join(src, sub), os.path.join(dest, sub), ignore=ignore)
    pkg = os.path.join(dest, "clients", "python")
    assert not os.path.exists(os.path.join(pkg, "ctxmem_client", "_proto")), "stubs were copied"
    return pkg


class PythonInstallTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("pyinstall")
        cls.comp = c.start_compressor()
        cls.text_file = c.path("page.txt")
        with open(cls.text_file, "w") as f:
            f.write(harness.book_text(2000, 600))
        cls.outside = c.path("elsewhere")  # cwd of every run: no ctxmem_client next to it
        os.makedirs(cls.outside)
        # A plain venv of the interpreter under this test's venv: nothing preinstalled.
        cls.venv = c.path("venv")
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", cls.venv], check=True, timeout=300)
        cls.pip = [os.path.join(cls.venv, "bin", "python"), "-m", "pip",
                   "--disable-pip-version-check"]

    def run_ok(self, args, **kw):
        env = dict(os.environ)
        for k in ("PYTHONPATH", "CTXMEM_PROTO_DIR", "PIP_NO_BUILD_ISOLATION"):
            env.pop(k, None)
        env.update(kw.pop("env", {}))
        p = subprocess.run(args, capture_output=True, text=True, cwd=self.outside, env=env,
                           timeout=PIP_TIMEOUT_S, **kw)
        self.assertEqual(p.returncode, 0, f"{args}\nstdout: {p.stdout[-3000:]}\n"
                         f"stderr: {p.stderr[-3000:]}")
        return p

    def check_installed(self, ctxmem_py, env=None):
        """--help, then a real compress + stat against the compressor."""
        p = self.run_ok([ctxmem_py, "--help"], env=env or {})
        for verb in ("compress", "ask", "stat"):
            self.assertIn(verb, p.stdout)
        p = self.run_ok([ctxmem_py, "--compressor", self.comp.grpc_addr, "compress",
                         self.text_file, "--pruner", "streaming_llm", "--chunk-size", "128",
                         "--memory-size", "32", "-q"], env=env or {})
        mid = p.stdout.strip()
        self.assertRegex(mid, r"^[0-9a-f]{64}$")
        info = json.loads(self.run_ok([ctxmem_py, "--compressor", self.comp.grpc_addr, "stat",
                                       mid, "--json"], env=env or {}).stdout)
        self.assertEqual(info["memory_id"], mid)
        return mid

    def test_pip_install_with_build_isolation(self):
        pkg = fresh_tree(tempfile.mkdtemp(dir=self.cluster.tmp))
        self.run_ok(self.pip + ["install", "-q", pkg])
        ctxmem_py = os.path.join(self.venv, "bin", "ctxmem-py")
        self.check_installed(ctxmem_py)
        # The installed package imports its own stubs, not a source tree's.
        p = self.run_ok([os.path.join(self.venv, "bin", "python"), "-c",
                         "import ctxmem_client._stubs as s; print(s.decoder_pb2.__file__)"])
        self.assertIn(os.path.join(self.venv, "lib"), p.stdout)

    def test_pip_install_without_build_isolation(self):
        # The build tools (setuptools, grpcio-tools) of this test's venv, as the README says;
        # --target keeps that venv unchanged.
        pkg = fresh_tree(tempfile.mkdtemp(dir=self.cluster.tmp))
        target = tempfile.mkdtemp(dir=self.cluster.tmp)
        self.run_ok([sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q",
                     "--no-build-isolation", "--no-deps", "--target", target, pkg])
        for proto in PROTOS:
            self.assertTrue(os.path.isfile(
                os.path.join(target, "ctxmem_client", "_proto", "ctxmem", "v1", proto)))
        self.check_installed(os.path.join(target, "bin", "ctxmem-py"),
                             env={"PYTHONPATH": target})

    def test_build_sdist_then_wheel_installs_without_the_tree(self):
        pkg = fresh_tree(tempfile.mkdtemp(dir=self.cluster.tmp))
        dist = tempfile.mkdtemp(dir=self.cluster.tmp)
        # No --sdist/--wheel: `build` makes the sdist, then the wheel from the unpacked sdist,
        # where ../../proto does not exist.
        self.run_ok([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, pkg])
        sdists = [f for f in os.listdir(dist) if f.endswith(".tar.gz")]
        wheels = [f for f in os.listdir(dist) if f.endswith(".whl")]
        self.assertEqual(len(sdists), 1, os.listdir(dist))
        self.assertEqual(len(wheels), 1, os.listdir(dist))
        with tarfile.open(os.path.join(dist, sdists[0])) as t:
            names = t.getnames()
        with zipfile.ZipFile(os.path.join(dist, wheels[0])) as z:
            wheel_names = z.namelist()
        for proto in PROTOS:
            self.assertTrue(any(n.endswith(f"ctxmem_client/_proto/ctxmem/v1/{proto}")
                                for n in names), f"{proto} not in the sdist: {names}")
            self.assertIn(f"ctxmem_client/_proto/ctxmem/v1/{proto}", wheel_names)
        self.assertIn("ctxmem_client/_proto/ctxmem/v1/decoder_pb2_grpc.py", wheel_names)
        # The sdist alone, moved away from any tree, installs (pip builds it in isolation).
        alone = tempfile.mkdtemp(dir=self.cluster.tmp)
        shutil.copy(os.path.join(dist, sdists[0]), alone)
        target = tempfile.mkdtemp(dir=self.cluster.tmp)
        self.run_ok(self.pip + ["install", "-q", "--no-deps", "--target", target,
                                os.path.join(alone, sdists[0])])
        self.assertTrue(os.path.isfile(
            os.path.join(target, "ctxmem_client", "_proto", "ctxmem", "v1", "decoder_pb2.py")))
        # The wheel, into the plain venv (its dependencies from PyPI).
        self.run_ok(self.pip + ["install", "-q", "--force-reinstall",
                                os.path.join(dist, wheels[0])])
        self.check_installed(os.path.join(self.venv, "bin", "ctxmem-py"))


if __name__ == "__main__":
    unittest.main()
