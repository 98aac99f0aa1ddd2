"""A learned method through the services, as a deployment runs it: compressor_svc registers the
committed trained perceiver with `--learned NAME=FILE`, a client selects it by NAME in the
compression config, and decoder_svc scores and answers from the memory it made. The memory id
names the weights by content: a second compressor given the same weights under another path
makes the same id; a bad --learned file stops the server with a clear error. The fusers (spec
§7) the same way: the training-free mean_fuser by its built-in name, the committed trained
perceiver_fuser and llm_fuser registered by name; their memories say they are synthetic."""

import json
import math
import os
import shutil
import unittest

import harness
from harness import ClusterTestCase

WEIGHTS = os.path.join("models", "trained", "perceiver_next_kl.safetensors")
FUSERS = {"pfuse": os.path.join("models", "trained", "perceiver_fuser_lm.safetensors"),
          "lfuse": os.path.join("models", "trained", "llm_fuser_lm.safetensors")}
CONFIG = {"pruner": "pnext", "memory_type": "FM", "chunk_size": 128, "memory_size": 32}


class LearnedMethodTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        src = harness.need_env("CTXMEM_SOURCE_DIR")
        cls.weights = os.path.join(src, WEIGHTS)
        if not os.path.isfile(cls.weights):
            raise AssertionError("committed trained weights missing: " + cls.weights)
        c = cls.make_cluster("learned")
        cls.copy = c.path("elsewhere.safetensors")
        shutil.copyfile(cls.weights, cls.copy)
        fusers = []
        for name, rel in FUSERS.items():
            path = os.path.join(src, rel)
            if not os.path.isfile(path):
                raise AssertionError("committed trained fuser missing: " + path)
            fusers += ["--learned", name + "=" + path]
        cls.comp = c.start_compressor(extra=["--learned", "pnext=" + cls.weights] + fusers)
        cls.comp2 = c.start_compressor(store="store2", extra=["--learned", "pnext=" + cls.copy])
        cls.dec = c.start_decoder([cls.comp, cls.comp2])
        cls.client = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, timeout=600)
        cls.client2 = harness.Client(cls.comp2.grpc_addr, cls.dec.grpc_addr, timeout=600)
        cls.addClassCleanup(cls.client.close)
        cls.addClassCleanup(cls.client2.close)
        cls.text = harness.book_text(100, 1800)

    def test_compress_score_and_ask_with_the_learned_method(self):
        r = self.client.compress(self.text, CONFIG)
        info = r.memory
        self.assertEqual(set(info.n_kept), {36})  # FM: 4 sinks + M = 32
        cfg = json.loads(info.compression_config_json)
        self.assertEqual(cfg["pruner"], "pnext")
        self.assertTrue(cfg["weights"].startswith("sha256:"), cfg)
        self.assertNotIn(self.weights, info.compression_config_json)  # content, not path

        # The same weights under another path on another server: the same memory id.
        r2 = self.client2.compress(self.text, CONFIG)
        self.assertEqual(r2.memory.memory_id, info.memory_id)

        s = self.client.score(info.memory_id, " It is a truth universally acknowledged.")
        self.assertGreater(s.n_scored, 3)
        self.assertTrue(math.isfinite(s.perplexity) and s.perplexity > 1, s.perplexity)
        done = self.client.ask(info.memory_id, "Who is mentioned?", max_tokens=8)
        self.assertGreater(done.usage.generated_tokens, 0)
        self.assertEqual(done.usage.memory_entries, 36)

    def test_fusers_compress_score_and_ask(self):
        for pruner in ("mean_fuser", "pfuse", "lfuse"):
            with self.subTest(pruner=pruner):
                r = self.client.compress(self.text, dict(CONFIG, pruner=pruner))
                info = r.memory
                self.assertEqual(set(info.n_kept), {36})  # 4 sinks + M = 32 fused entries
                self.assertTrue(info.fused_entries)
                cfg = json.loads(info.compression_config_json)
                self.assertEqual(cfg["pruner"], pruner)
                if pruner != "mean_fuser":
                    self.assertTrue(cfg["weights"].startswith("sha256:"), cfg)
                s = self.client.score(info.memory_id, " It is a truth universally acknowledged.")
                self.assertGreater(s.n_scored, 3)
                self.assertTrue(math.isfinite(s.perplexity) and s.perplexity > 1, s.perplexity)
                done = self.client.ask(info.memory_id, "Who is mentioned?", max_tokens=8)
                self.assertGreater(done.usage.generated_tokens, 0)
                self.assertEqual(done.usage.memory_entries, 36)
        # A pruner's memory is a subset of the tokens, and says so.
        r = self.client.compress(self.text, CONFIG)
        self.assertFalse(r.memory.fused_entries)
        # The learned fusers without weights refuse clearly.
        with self.assertRaises(harness.CtxmemError) as e:
            self.client.compress(self.text, dict(CONFIG, pruner="llm_fuser"))
        self.assertIn("--learned", str(e.exception))

    def test_unknown_learned_name_is_invalid_argument(self):
        with self.assertRaises(harness.CtxmemError) as e:
            self.client.compress(self.text, dict(CONFIG, pruner="not_registered"))
        self.assertIn("not_registered", str(e.exception))

    def test_bad_learned_file_stops_the_server(self):
        bad = self.cluster.path("bad.safetensors")
        with open(bad, "wb") as f:
            f.write(b"not a safetensors file")
        s = harness.ServerProcess(
            "compressor_svc", self.cluster.compressor_bin,
            ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--model",
             self.cluster.model, "--store-dir", self.cluster.path("store3"),
             "--learned", "x=" + bad], self.cluster.tmp)
        self.cluster.servers.append(s)
        with self.assertRaises(Exception):
            s.start(timeout=120)
        self.assertIn("--learned", s.log_tail())


if __name__ == "__main__":
    unittest.main()
