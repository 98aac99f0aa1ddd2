"""Issue 12 through the real servers: KIVI-quantized memories (int8/int4) seal into blobs that
Python's safetensors opens (tests/reference/check_blob_python.py) and the decoder dequantizes;
incremental append (CompressStart.base_memory_id) gives a new memory equal to one compression
of the concatenated tokens for FM with a chunk-aligned split, the base stays, another tenant's
base is NOT_FOUND; the `ctxmem compress --base` CLI."""

import os
import re
import subprocess
import sys
import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase, grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
import check_blob_python  # noqa: E402

TOKEN_A = "tenant-a-token-append-0123456789"
TOKEN_B = "tenant-b-token-append-9876543210"


def synthetic_tokens(n, salt=0):
    return [(i * 7919 + 31 * salt + 17) % 40000 + 100 for i in range(n)]


class AppendQuantizedTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("append")
        tokens = c.write_tokens([(TOKEN_A, "alice"), (TOKEN_B, "bob")])
        cls.comp = c.start_compressor(tokens_file=tokens)
        cls.dec = c.start_decoder([cls.comp], tokens_file=tokens)
        cls.a = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, token=TOKEN_A, timeout=300)
        cls.b = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, token=TOKEN_B, timeout=300)
        cls.addClassCleanup(cls.a.close)
        cls.addClassCleanup(cls.b.close)
        cls.text = harness.book_text(200, 1500)
        cls.continuation = harness.book_text(260, 400)

    def blob_path(self, memory_id):
        return os.path.join(self.cluster.path("store"), "blobs", memory_id + ".safetensors")

    def test_quantized_blobs_open_in_python_and_decode(self):
        by_dtype = {}
        for dtype in ("bf16", "int8", "int4"):
            r = self.a.compress(self.text, {**SMALL_CONFIG, "kv_dtype": dtype})
            by_dtype[dtype] = r.memory
            path = self.blob_path(r.memory.memory_id)
            problems = check_blob_python.check_blob(path)
            self.assertEqual(list(problems), [], f"{dtype}: {problems}")
        ids = {d: m.memory_id for d, m in by_dtype.items()}
        self.assertEqual(len(set(ids.values())), 3, "the kv dtype is part of the memory id")
        bf16 = by_dtype["bf16"].blob_bytes
        self.assertLess(by_dtype["int8"].blob_bytes, 0.6 * bf16)
        self.assertLess(by_dtype["int4"].blob_bytes, 0.33 * bf16)
        self.assertEqual(self.a.stat(ids["int4"]).format_version, 2)
        self.assertEqual(self.a.stat(ids["bf16"]).format_version, 1)
        ppl = {d: self.a.score([i], self.continuation).perplexity for d, i in ids.items()}
        self.assertLess(abs(ppl["int8"] / ppl["bf16"] - 1), 0.03, ppl)
        self.assertLess(abs(ppl["int4"] / ppl["bf16"] - 1), 0.15, ppl)
        done = self.a.generate(ids["int4"], "Who is speaking?", max_tokens=4).text()
        self.assertIsInstance(done, str)
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.a.compress, "some text",
                          {**SMALL_CONFIG, "kv_dtype": "int3"}, msg_re="int8, int4")
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.a.compress, "some text",
                          {**SMALL_CONFIG, "kv_group_size": 32}, msg_re="int8 or int4")

    def test_fm_append_equals_one_compression(self):
        a_ids = synthetic_tokens(256)  # two chunks of 128
        b_ids = synthetic_tokens(200, 1)
        for pruner in ("streaming_llm", "h2o", "tova"):
            with self.subTest(pruner=pruner):
                config = {**SMALL_CONFIG, "pruner": pruner, "kv_dtype": "f32"}
                base = self.a.compress_tokens(a_ids, config)
                appended = self.a.compress_tokens(b_ids, None, base_memory_id=base.memory_id)
                whole = self.a.compress_tokens(a_ids + b_ids, config)
                self.assertFalse(appended.existed)
                self.assertNotIn(appended.memory_id, (base.memory_id, whole.memory_id))
                self.assertEqual(appended.memory.n_original_tokens, 456)
                self.assertEqual(self.a.stat(base.memory_id).n_original_tokens, 256)  # stays
                from safetensors.torch import load_file
                got = load_file(self.blob_path(appended.memory_id))
                want = load_file(self.blob_path(whole.memory_id))
                for i in range(30):
                    self.assertTrue((got[f"layers.{i}.src"] == want[f"layers.{i}.src"]).all(), i)
                    for part in ("k", "v"):
                        diff = (got[f"layers.{i}.{part}"] - want[f"layers.{i}.{part}"]).abs().max()
                        self.assertLess(float(diff), 1e-3, (i, part))
                # The same append again is the same memory (idempotent).
                again = self.a.compress_tokens(b_ids, None, base_memory_id=base.memory_id)
                self.assertTrue(again.existed)
                self.assertEqual(again.memory_id, appended.memory_id)
                score = self.a.score([appended.memory_id], self.continuation)
                self.assertGreater(score.n_scored, 0)

    def test_append_errors(self):
        base = self.a.compress(self.text, SMALL_CONFIG)
        mid = base.memory_id
        # Another tenant's base is NOT_FOUND, with the message of a missing id.
        e = self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.compress, "more text", None,
                              base_memory_id=mid)
        e2 = self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.compress, "more text", None,
                               base_memory_id="ab" * 32)
        self.assertEqual(e.details.replace(mid, "ID"), e2.details.replace("ab" * 32, "ID"))
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.a.compress, "more", None,
                          base_memory_id="not-an-id")
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.a.compress, "more",
                          {**SMALL_CONFIG, "memory_size": 32}, base_memory_id=mid,
                          msg_re="differs from the base")
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.a.compress, "more", None,
                          base_memory_id=mid, add_bos=True)
        # The base's own config, sent again, is accepted.
        ok = self.a.compress(self.continuation, SMALL_CONFIG, base_memory_id=mid)
        self.assertGreater(ok.memory.n_original_tokens, base.memory.n_original_tokens)

    def test_cli_compress_base(self):
        cli = os.environ.get("CTXMEM_CLI")
        if not cli:
            self.skipTest("CTXMEM_CLI not set")
        base = self.a.compress(self.text, SMALL_CONFIG)
        path = self.cluster.path("more.txt")
        with open(path, "w") as f:
            f.write(self.continuation)
        env = {**os.environ, "CTXMEM_TOKEN": TOKEN_A}
        out = subprocess.run([cli, "compress", path, "--base", base.memory_id, "-q",
                              "--compressor", self.comp.grpc_addr, "--token", TOKEN_A],
                             capture_output=True, text=True, timeout=300, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        new_id = out.stdout.strip()
        self.assertRegex(new_id, r"^[0-9a-f]{64}$")
        self.assertNotEqual(new_id, base.memory_id)
        self.assertGreater(self.a.stat(new_id).n_original_tokens, base.memory.n_original_tokens)


if __name__ == "__main__":
    unittest.main()
