"""RCC through the services (docs/rcc.md): compressor_svc compresses with pruner=rcc (encoder ->
slots -> decoder prefill per window, the slots' KV sealed as an ordinary memory), decoder_svc
answers and scores from it with no RCC code, and its Score equals the library's (`ctxmem
score`: the same compression and ScoreContinuation in one process) to 1e-4 relative. The
memory id names the bridge by content; bad RCC settings are INVALID_ARGUMENT."""

import json
import os
import subprocess
import unittest

import grpc

import harness
from harness import ClusterTestCase

CONFIG = {"pruner": "rcc", "rcc_window": 128, "rcc_rate": 8, "kv_dtype": "f32"}


class RccTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("rcc")
        cls.comp = c.start_compressor()
        cls.dec = c.start_decoder([cls.comp])
        cls.client = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, timeout=600)
        cls.addClassCleanup(cls.client.close)
        cls.context = harness.book_text(100, 1600)
        cls.continuation = harness.book_text(400, 300)

    def test_compress_generate_and_score_match_the_library(self):
        r = self.client.compress(self.context, CONFIG)
        info = r.memory
        n = info.n_original_tokens
        want_entries = (n // 128) * 16 + -(-(n % 128) // 8)  # ceil per window
        self.assertEqual(set(info.n_kept), {want_entries})
        cfg = json.loads(info.compression_config_json)
        self.assertEqual(cfg["pruner"], "rcc")
        self.assertEqual((cfg["rcc_bridge"], cfg["rcc_bridge_id"]), ("stride", "stride"))
        self.assertEqual((cfg["rcc_window"], cfg["rcc_rate"]), (128, 8))

        done = self.client.ask(info.memory_id, "Who is mentioned?", max_tokens=8)
        self.assertGreater(done.usage.generated_tokens, 0)
        self.assertEqual(done.usage.memory_entries, want_entries)

        s = self.client.score(info.memory_id, self.continuation)
        cli = os.environ.get("CTXMEM_CLI", "")
        if not cli or not os.path.exists(cli):
            self.skipTest("$CTXMEM_CLI (the ctxmem C++ CLI) is not built")
        ctx_file, cont_file = self.cluster.path("ctx.txt"), self.cluster.path("cont.txt")
        with open(ctx_file, "w", encoding="utf-8") as f:
            f.write(self.context)
        with open(cont_file, "w", encoding="utf-8") as f:
            f.write(self.continuation)
        out = subprocess.run(
            [cli, "score", "--model", self.cluster.model, "--threads", "1", "--context", ctx_file,
             "--continuation", cont_file, "--pruner", "rcc", "--rcc-window", "128",
             "--rcc-rate", "8"], capture_output=True, text=True, timeout=600, check=True)
        lib = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(lib["memory_len"], want_entries)
        self.assertEqual(s.n_scored, lib["n_scored"])
        self.assertLessEqual(abs(s.perplexity - lib["perplexity"]), 1e-4 * lib["perplexity"],
                             f"decoder_svc {s.perplexity} vs library {lib['perplexity']}")

    def test_bad_rcc_settings_are_invalid_argument(self):
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.compress, self.context,
                          dict(CONFIG, rcc_window=100))
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.compress, self.context,
                          dict(CONFIG, rcc_bridge="not_registered"), msg_re="not_registered")
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.compress, self.context,
                          {"pruner": "tova", "rcc_rate": 8}, msg_re="rcc")


if __name__ == "__main__":
    unittest.main()
