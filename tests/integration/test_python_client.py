"""The Python client package end to end against the real services (with auth): the CLI verbs
as a user runs them (`python -m ctxmem_client ...`), and the API's progress reporting."""

import hashlib
import json
import os
import subprocess
import sys
import unittest

import harness
from harness import ClusterTestCase, grpc

TOKEN = "python-client-token-0123456789"


class PythonClientTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("pyclient")
        tokens = c.write_tokens([(TOKEN, "py")])
        cls.comp = c.start_compressor(tokens_file=tokens)
        cls.dec = c.start_decoder([cls.comp], tokens_file=tokens)
        cls.token_file = c.path("my.token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")
        cls.text_file = c.path("chapter.txt")
        with open(cls.text_file, "w") as f:
            f.write(harness.book_text(1500, 1400))

    def cli(self, *args, token=True, check=True):
        base = [sys.executable, "-m", "ctxmem_client", "--compressor", self.comp.grpc_addr,
                "--decoder", self.dec.grpc_addr, "--timeout", "300"]
        if token:
            base += ["--token-file", self.token_file]
        env = dict(os.environ, PYTHONPATH=os.path.join(harness.SOURCE_DIR, "clients", "python"))
        env.pop("CTXMEM_TOKEN", None)
        p = subprocess.run(base + list(args), capture_output=True, text=True, timeout=600, env=env)
        if check:
            self.assertEqual(p.returncode, 0, f"{args}: {p.stderr}")
        return p

    def test_cli_end_to_end(self):
        p = self.cli("compress", self.text_file, "--pruner", "tova", "--chunk-size", "128",
                     "--memory-size", "48", "--label", "chapter")
        mid = p.stdout.strip()
        self.assertRegex(mid, r"^[0-9a-f]{64}$", p.stdout)
        self.assertIn("compression", p.stderr)
        p = self.cli("compress", self.text_file, "--pruner", "tova", "--chunk-size", "128",
                     "--memory-size", "48", "--json")
        again = json.loads(p.stdout)
        self.assertTrue(again["existed"])
        self.assertEqual(again["memory"]["memory_id"], mid)

        p = self.cli("ls")
        self.assertIn(mid, p.stdout)
        self.assertIn("chapter", p.stdout)
        info = json.loads(self.cli("stat", mid, "--json").stdout)
        self.assertEqual(info["memory_id"], mid)
        self.assertEqual(info["client_label"], "chapter")
        self.assertEqual(set(int(k) for k in info["n_kept"]), {52})

        p = self.cli("ask", mid, "Who is in this chapter?", "--max-tokens", "12")
        self.assertTrue(p.stdout.strip(), p.stderr)
        self.assertRegex(p.stderr, r"ttft \d+ ms")
        p = self.cli("ask", mid, "Who is in this chapter?", "--max-tokens", "12", "--json")
        done = json.loads(p.stdout)
        self.assertTrue(done["timings"]["cache_hit"])
        self.assertEqual(int(done["usage"]["memory_entries"]), 52)

        p = self.cli("score", mid, "--text", "Elizabeth said nothing, and they walked on.")
        self.assertRegex(p.stdout, r"^perplexity [0-9.]+ +nll [0-9.]+ nats over \d+ tokens")

        out = self.cluster.path("dl.safetensors")
        self.cli("get", mid, out)
        with open(out, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(self.cluster.path("store"), "blobs", mid + ".safetensors"),
                  "rb") as f:
            self.assertEqual(got, hashlib.sha256(f.read()).hexdigest())

        self.assertEqual(self.cli("health").returncode, 0)
        self.cli("rm", mid)
        p = self.cli("stat", mid, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("NOT_FOUND", p.stderr)

    def test_cli_errors(self):
        p = self.cli("ls", token=False, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("UNAUTHENTICATED", p.stderr)
        p = self.cli("compress", self.cluster.path("missing.txt"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such file", p.stderr)
        p = self.cli("compress", self.text_file, "--pruner", "bogus", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", p.stderr)
        self.assertIn("bogus", p.stderr)
        bad = self.cluster.path("bad.txt")
        with open(bad, "wb") as f:
            f.write(b"valid start \xff\xfe then garbage")
        p = self.cli("compress", bad, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("UTF-8", p.stderr)
        p = self.cli("frobnicate", check=False)
        self.assertEqual(p.returncode, 2)

    def test_api_progress_and_file_streaming(self):
        seen = []
        with harness.Client(self.comp.grpc_addr, self.dec.grpc_addr, token=TOKEN,
                            timeout=300) as c:
            r = c.compress_file(self.text_file, {"chunk_size": 128, "memory_size": 32},
                                piece_chars=300, on_progress=lambda p: seen.append(
                                    (p.chunks_done, p.tokens_read, p.tokens_total)))
            self.assertFalse(r.existed)
            self.assertEqual(r.memory.client_label, "chapter.txt")
            chunks = [s[0] for s in seen]
            self.assertEqual(chunks, sorted(chunks))
            n_chunks = -(-r.memory.n_original_tokens // 128)
            self.assertEqual(chunks[-1], n_chunks)
            self.assertEqual(seen[-1][1], r.memory.n_original_tokens)
            self.assertEqual(seen[-1][2], r.memory.n_original_tokens)
            got = []
            done = c.ask(r.memory_id, "Summarize.", max_tokens=8, on_text=got.append)
            self.assertEqual("".join(got), done.text)
            self.assertEqual(c.decoder.health(), "SERVING")
            c.rm(r.memory_id)
            self.assertStatus(grpc.StatusCode.NOT_FOUND, c.stat, r.memory_id)


if __name__ == "__main__":
    unittest.main()
