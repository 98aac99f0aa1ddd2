"""The C++ `ctxmem` CLI's service verbs end to end against the real services (with auth), as a
user runs them: compress (progress, -q, --json, idempotent), ls, stat, ask (streamed text,
--json with usage and cache hit), health, rm, and the error contract ("error: <CODE>: ...",
exit 1) for a missing token, another tenant's memory and an unknown pruner."""

import json
import os
import subprocess
import unittest

import harness
from harness import ClusterTestCase

TOKEN_A = "cpp-cli-token-a-0123456789"
TOKEN_B = "cpp-cli-token-b-0123456789"


class CppCliTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.binary = harness.need_env("CTXMEM_CLI")
        c = cls.make_cluster("cppcli")
        tokens = c.write_tokens([(TOKEN_A, "a"), (TOKEN_B, "b")])
        cls.comp = c.start_compressor(tokens_file=tokens)
        cls.dec = c.start_decoder([cls.comp], tokens_file=tokens)
        cls.text_file = c.path("chapter.txt")
        with open(cls.text_file, "w") as f:
            f.write(harness.book_text(1500, 1400))

    def cli(self, *args, token=TOKEN_A, check=True):
        env = dict(os.environ)
        for name in ("CTXMEM_TOKEN", "CTXMEM_TOKEN_FILE", "CTXMEM_COMPRESSOR", "CTXMEM_DECODER"):
            env.pop(name, None)
        if token is not None:
            env["CTXMEM_TOKEN"] = token
        verb, rest = args[0], list(args[1:])
        if verb in ("compress", "ls", "stat", "rm"):
            rest += ["--compressor", self.comp.grpc_addr]
        elif verb == "ask":
            rest += ["--decoder", self.dec.grpc_addr]
        p = subprocess.run([self.binary, verb] + rest, capture_output=True, text=True,
                           timeout=600, env=env)
        if check:
            self.assertEqual(p.returncode, 0, f"{args}: {p.stderr}")
        return p

    def compress(self, *extra, token=TOKEN_A, check=True):
        return self.cli("compress", self.text_file, "--pruner", "tova", "--chunk", "128",
                        "--memory", "48", *extra, token=token, check=check)

    def test_verbs_end_to_end(self):
        p = self.compress("-q")
        mid = p.stdout.strip()
        self.assertRegex(mid, r"^[0-9a-f]{64}$", p.stdout)

        again = json.loads(self.compress("--json").stdout)
        self.assertTrue(again["existed"])
        self.assertEqual(again["memory"]["memory_id"], mid)

        self.assertIn(mid, self.cli("ls").stdout)
        info = json.loads(self.cli("stat", mid, "--json").stdout)
        self.assertEqual(info["memory_id"], mid)
        self.assertEqual({int(n) for n in info["n_kept"]}, {52})  # 48 + 4 sinks, every layer

        p = self.cli("ask", mid, "Who is in this chapter?", "--chat", "--max-tokens", "8")
        self.assertTrue(p.stdout.strip(), p.stderr)
        done = json.loads(self.cli("ask", mid, "Who is in this chapter?", "--chat",
                                   "--max-tokens", "8", "--json").stdout)
        self.assertTrue(done["timings"]["cache_hit"])
        self.assertEqual(int(done["usage"]["memory_entries"]), 52)

        p = subprocess.run([self.binary, "health", "--server", self.dec.grpc_addr],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("SERVING", p.stdout + p.stderr)

        # Another tenant cannot see it; its owner can remove it, once.
        p = self.cli("stat", mid, token=TOKEN_B, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("error: NOT_FOUND", p.stderr)
        self.cli("rm", mid)
        p = self.cli("rm", mid, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("error: NOT_FOUND", p.stderr)

    def test_errors_are_typed(self):
        p = self.cli("ls", token=None, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("error: UNAUTHENTICATED", p.stderr)
        p = self.cli("compress", self.text_file, "--pruner", "nope", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("error: INVALID_ARGUMENT", p.stderr)
        self.assertIn("streaming_llm", p.stderr)  # the valid names are listed


if __name__ == "__main__":
    unittest.main()
