"""The Go client (clients/go), generated from proto/ with Debian's protoc-gen-go and
protoc-gen-go-grpc and built against Debian's Go gRPC, against the real services with auth:
compress, stat and a streamed ask, checked against the Python client's view of the same calls
(the memory it stats, the greedy answer it gets). Skipped when the Go toolchain is missing."""

import json
import os
import shutil
import subprocess
import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase

TOKEN = "go-client-token-0123456789abcdef"
BUILD_SH = os.path.join(harness.SOURCE_DIR, "clients", "go", "build.sh")


def go_toolchain_missing() -> str:
    for tool in ("go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (scripts/setup.sh installs the Go toolchain)"
    if not os.path.isdir("/usr/share/gocode/src/google.golang.org/grpc"):
        return "golang-google-grpc-dev not installed"
    return ""


def build_go_client(out: str) -> str:
    """clients/go/build.sh OUT; its exit 3 (toolchain incomplete) skips, other failures fail."""
    p = subprocess.run(["bash", BUILD_SH, out], capture_output=True, text=True, timeout=900)
    if p.returncode == 3:
        raise unittest.SkipTest(p.stderr.strip())
    if p.returncode != 0:
        raise RuntimeError(f"clients/go/build.sh failed ({p.returncode}):\n{p.stderr}")
    return os.path.join(out, "bin", "ctxmem-go")


@unittest.skipIf(go_toolchain_missing(), go_toolchain_missing())
class GoClientTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("goclient")
        cls.go = build_go_client(c.path("go"))
        tokens = c.write_tokens([(TOKEN, "gopher")])
        cls.comp = c.start_compressor(tokens_file=tokens)
        cls.dec = c.start_decoder([cls.comp], tokens_file=tokens)
        cls.py = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, token=TOKEN, timeout=300)
        cls.addClassCleanup(cls.py.close)
        cls.text_file = c.path("page.txt")
        with open(cls.text_file, "w") as f:
            f.write(harness.book_text(3000, 900))

    def go_cli(self, *args, token=TOKEN, check=True):
        env = dict(os.environ)
        env.pop("CTXMEM_TOKEN", None)
        base = [self.go, "-compressor", self.comp.grpc_addr, "-decoder", self.dec.grpc_addr,
                "-timeout", "5m"]
        if token:
            base += ["-token", token]
        p = subprocess.run(base + list(args), capture_output=True, text=True, timeout=600,
                           env=env)
        if check:
            self.assertEqual(p.returncode, 0, f"{args}: {p.stderr}")
        return p

    def compress(self):
        p = self.go_cli("compress", "-pruner", SMALL_CONFIG["pruner"], "-memory-type",
                        SMALL_CONFIG["memory_type"], "-chunk-size",
                        str(SMALL_CONFIG["chunk_size"]), "-memory-size",
                        str(SMALL_CONFIG["memory_size"]), "-label", "from-go", self.text_file)
        mid = p.stdout.strip()
        self.assertRegex(mid, r"^[0-9a-f]{64}$", p.stderr)
        return mid

    def test_compress_and_stat(self):
        mid = self.compress()
        # Same text and config again: the same memory (content-addressed), quietly.
        again = self.go_cli("compress", "-q", "-pruner", SMALL_CONFIG["pruner"], "-memory-type",
                            SMALL_CONFIG["memory_type"], "-chunk-size",
                            str(SMALL_CONFIG["chunk_size"]), "-memory-size",
                            str(SMALL_CONFIG["memory_size"]), self.text_file)
        self.assertEqual(again.stdout.strip(), mid)
        self.assertEqual(again.stderr, "")
        info = json.loads(self.go_cli("stat", mid).stdout)
        self.assertEqual(info["memory_id"], mid)
        self.assertEqual(info["client_label"], "from-go")
        py_info = self.py.stat(mid)  # the same memory seen through the Python client
        self.assertEqual(int(info["n_original_tokens"]), py_info.n_original_tokens)
        self.assertEqual(int(info["blob_bytes"]), py_info.blob_bytes)

    def test_ask_streams_the_grpc_answer(self):
        mid = self.compress()
        question = "Who is speaking in this passage?"
        p = self.go_cli("ask", "-max-tokens", "12", mid, question)
        self.assertIn("generated=", p.stderr)
        ref = self.py.ask(mid, question, max_tokens=12)  # greedy on both sides
        self.assertEqual(p.stdout.rstrip("\n"), ref.text)
        self.assertTrue(ref.text)
        # Without memory too.
        p = self.go_cli("ask", "-raw", "-max-tokens", "6", "-", "The capital of France is")
        ref_text = self.py.generate(None, "The capital of France is", max_tokens=6).text()
        self.assertEqual(p.stdout.rstrip("\n"), ref_text)

    def test_errors_name_the_grpc_code(self):
        p = self.go_cli("stat", "ab" * 32, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("NOT_FOUND", p.stderr)
        p = self.go_cli("stat", "ab" * 32, token="wrong-token-0123456789", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("UNAUTHENTICATED", p.stderr)
        p = self.go_cli("frobnicate", check=False)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
