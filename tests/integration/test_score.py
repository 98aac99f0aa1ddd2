"""Score through the service against the library:
- Score with no memory equals `ctxmem ppl` (model::EvaluatePerplexity, one window) on the
  same text;
- Score after a no_compress memory of X equals the full-forward log-likelihood of the same
  continuation tokens after X (Score of X+Y with no memory, per-token logprobs);
- Score after a compressed memory is finite, self-consistent and deterministic."""

import math
import os
import re
import subprocess
import tempfile
import unittest

import harness
from harness import ClusterTestCase, grpc


class ScoreTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("score")
        # The fp32 reference path on both servers (the serving default is bf16 matrices and
        # packed decode): these tests check exactness against full forwards and `ctxmem ppl`.
        fp32 = ["--dtype", "fp32"]
        cls.comp = c.start_compressor(extra=fp32)
        cls.dec = c.start_decoder([cls.comp], extra=fp32 + ["--decode", "dense"])
        cls.client = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, timeout=300)
        cls.addClassCleanup(cls.client.close)
        cls.tok = harness.load_tokenizer()
        if cls.tok is None:
            raise unittest.SkipTest("python `tokenizers` is missing")
        cls.ids = cls.tok.encode(harness.book_text(300, 2400), add_special_tokens=False).ids
        assert len(cls.ids) >= 400, len(cls.ids)
        cls.X, cls.Y = cls.ids[:256], cls.ids[256:384]

    def test_score_without_memory_matches_cli_ppl(self):
        cli = os.environ.get("CTXMEM_CLI", "")
        if not cli or not os.path.exists(cli):
            self.skipTest("$CTXMEM_CLI (the ctxmem C++ CLI) is not built")
        text = harness.book_text(500, 1200)
        r = self.client.score([], text)
        n_tok = len(self.tok.encode(text, add_special_tokens=False).ids)
        self.assertEqual(r.n_scored, n_tok - 1)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write(text)
            f.flush()
            out = subprocess.run([cli, "ppl", "--model", os.environ["CTXMEM_MODEL"], "--text",
                                  f.name, "--ctx", "2048", "--dtype", "fp32"],
                                 capture_output=True, text=True, timeout=600,
                                 env=dict(os.environ, OMP_NUM_THREADS="1"))
        self.assertEqual(out.returncode, 0, out.stderr)
        m = re.search(r"perplexity ([0-9.]+).*?(\d+) tokens scored", out.stdout)
        self.assertTrue(m, out.stdout)
        cli_ppl, cli_n = float(m.group(1)), int(m.group(2))
        self.assertEqual(r.n_scored, cli_n)
        self.assertAlmostEqual(r.perplexity, cli_ppl, delta=max(1e-3 * cli_ppl, 1e-3),
                               msg=f"service {r.perplexity} vs ctxmem ppl {cli_ppl}")

    def test_no_compress_memory_matches_full_forward(self):
        mem = self.client.compress_tokens(self.X, {"pruner": "no_compress", "chunk_size": 128})
        self.assertEqual(set(mem.memory.n_kept), {len(self.X)})
        r = self.client.score(mem.memory_id, self.Y)
        self.assertEqual(r.n_scored, len(self.Y) - 1)
        self.assertEqual(len(r.token_logprobs), r.n_scored)
        full = self.client.score([], self.X + self.Y)
        self.assertEqual(full.n_scored, len(self.X) + len(self.Y) - 1)
        tail = full.token_logprobs[-(len(self.Y) - 1):]
        ref_nll = -sum(tail)
        self.assertAlmostEqual(r.total_nll, ref_nll, delta=2e-3 * abs(ref_nll) + 1e-3,
                               msg="no_compress memory + Score != full forward")
        for a, b in zip(r.token_logprobs, tail):
            self.assertAlmostEqual(a, b, delta=0.02)
        self.assertAlmostEqual(r.perplexity, math.exp(r.total_nll / r.n_scored), places=4)

    def test_compressed_memory_score_is_finite_and_deterministic(self):
        cfg = {"pruner": "streaming_llm", "chunk_size": 64, "memory_size": 32}
        mem = self.client.compress_tokens(self.X, cfg)
        a = self.client.score(mem.memory_id, self.Y)
        b = self.client.score(mem.memory_id, self.Y)
        self.assertEqual(a.n_scored, len(self.Y) - 1)
        self.assertTrue(math.isfinite(a.total_nll) and a.total_nll > 0)
        self.assertEqual(a.total_nll, b.total_nll)
        self.assertEqual(list(a.token_logprobs), list(b.token_logprobs))
        self.assertTrue(all(lp <= 0 for lp in a.token_logprobs))
        self.assertAlmostEqual(-sum(a.token_logprobs), a.total_nll, delta=1e-3 * a.total_nll)
        self.assertAlmostEqual(a.perplexity, math.exp(a.total_nll / a.n_scored), places=4)
        nc = self.client.compress_tokens(self.X, {"pruner": "no_compress", "chunk_size": 128})
        exact = self.client.score(nc.memory_id, self.Y)
        self.assertNotEqual(a.total_nll, exact.total_nll, "a 36-entry memory is not the context")
        # With a prompt, the first continuation token is scored too.
        p = self.client.score(mem.memory_id, self.Y, prompt="\n")
        self.assertEqual(p.n_scored, len(self.Y))

    def test_score_text_and_tokens_agree(self):
        text = harness.book_text(700, 600)
        ids = self.tok.encode(text, add_special_tokens=False).ids
        a = self.client.score([], text)
        b = self.client.score([], ids)
        self.assertEqual(a.n_scored, b.n_scored)
        self.assertAlmostEqual(a.total_nll, b.total_nll, delta=1e-4 * a.total_nll)

    def test_score_bad_inputs(self):
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.score, [], "")
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.score, [], [1, 10 ** 8])
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.client.score, ["0" * 64], "some text")


if __name__ == "__main__":
    unittest.main()
