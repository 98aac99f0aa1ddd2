"""compress -> generate twice on one memory: the second Generate is served from the decoder's
cache (ctxmem_cache_hits_total rises, ctxmem_fetch_bytes_total does not); idempotent
re-compress; blob download; concurrent requests share one fetch; metrics exist."""

import concurrent.futures
import hashlib
import json
import math
import os
import tempfile
import time
import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase, grpc

N_LAYERS = 30  # SmolLM2-135M


class GenerateCacheTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("cache")
        cls.comp = c.start_compressor()
        cls.dec = c.start_decoder([cls.comp])
        cls.client = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, timeout=300)
        cls.addClassCleanup(cls.client.close)
        cls.text = harness.book_text(100, 1500)
        t0 = time.monotonic()
        cls.first = cls.client.compress(cls.text, SMALL_CONFIG, label="pride-100")
        cls.first_wall = time.monotonic() - t0

    def test_1_memory_info(self):
        info = self.first.memory
        self.assertFalse(self.first.existed)
        self.assertRegex(info.memory_id, r"^[0-9a-f]{64}$")
        self.assertGreater(info.n_original_tokens, 200)
        self.assertEqual(len(info.n_kept), N_LAYERS)
        # streaming_llm FM with M=64 and 4 sinks keeps exactly 68 entries per layer.
        self.assertEqual(set(info.n_kept), {68})
        path = os.path.join(self.cluster.path("store"), "blobs", info.memory_id + ".safetensors")
        self.assertTrue(os.path.isfile(path), os.listdir(os.path.dirname(path)))
        self.assertEqual(os.path.getsize(path), info.blob_bytes)
        self.assertAlmostEqual(info.bytes_per_original_token,
                               info.blob_bytes / info.n_original_tokens, places=3)
        self.assertAlmostEqual(info.compression_ratio, info.n_original_tokens / 68, places=3)
        self.assertTrue(info.model_fingerprint.startswith("sha256:"), info.model_fingerprint)
        self.assertTrue(info.tokenizer_fingerprint.startswith("sha256:"))
        self.assertGreater(info.format_version, 0)
        self.assertEqual(info.client_label, "pride-100")
        self.assertLess(abs(info.created_unix_ms / 1000 - time.time()), 600)
        cfg = json.loads(info.compression_config_json)
        self.assertIn("streaming_llm", json.dumps(cfg))
        t = self.first.timings
        self.assertGreater(t.compress_seconds, 0)
        self.assertGreaterEqual(t.total_seconds, t.compress_seconds)
        stat = self.client.stat(info.memory_id)
        self.assertEqual(stat.memory_id, info.memory_id)
        self.assertEqual(stat.blob_bytes, info.blob_bytes)
        self.assertEqual(list(stat.n_kept), list(info.n_kept))
        self.assertIn(info.memory_id, [m.memory_id for m in self.client.ls()])

    def test_2_generate_twice_second_from_cache(self):
        mid = self.first.memory_id
        m0 = self.dec.metrics()
        kw = dict(messages=[{"role": "user", "content": "Who is speaking here?"}], max_tokens=12)
        s1 = self.client.generate(mid, **kw)
        deltas = list(s1)
        d1 = s1.done
        self.assertEqual("".join(d.text for d in deltas), d1.text)
        self.assertEqual(sum(len(d.token_ids) for d in deltas), d1.usage.generated_tokens)
        self.assertGreater(d1.usage.generated_tokens, 0)
        self.assertLessEqual(d1.usage.generated_tokens, 12)
        self.assertEqual(d1.usage.memory_entries, 68)
        self.assertGreater(d1.usage.prompt_tokens, 0)
        self.assertIn(d1.stop_reason, ("eos", "max_tokens", "stop_string"))
        self.assertFalse(d1.timings.cache_hit)
        self.assertGreater(d1.timings.fetch_seconds, 0)
        self.assertGreater(d1.timings.ttft_seconds, 0)
        m1 = self.dec.metrics()
        fetched = (harness.metric_sum(m1, "ctxmem_fetch_bytes_total")
                   - harness.metric_sum(m0, "ctxmem_fetch_bytes_total"))
        self.assertGreaterEqual(fetched, self.first.memory.blob_bytes)
        self.assertLess(fetched, 2 * self.first.memory.blob_bytes)
        self.assertEqual(harness.metric_sum(m1, "ctxmem_cache_misses_total")
                         - harness.metric_sum(m0, "ctxmem_cache_misses_total"), 1)

        d2 = self.client.generate(mid, **kw)
        d2.text()
        d2 = d2.done
        m2 = self.dec.metrics()
        self.assertTrue(d2.timings.cache_hit)
        self.assertEqual(d2.timings.fetch_seconds, 0)
        self.assertEqual(d2.text, d1.text, "greedy decoding on one memory must repeat")
        self.assertGreater(harness.metric_sum(m2, "ctxmem_cache_hits_total"),
                           harness.metric_sum(m1, "ctxmem_cache_hits_total"))
        self.assertEqual(harness.metric_sum(m2, "ctxmem_fetch_bytes_total"),
                         harness.metric_sum(m1, "ctxmem_fetch_bytes_total"))
        self.assertEqual(harness.metric_sum(m2, "ctxmem_ttft_seconds_count", source="memory")
                         - harness.metric_sum(m0, "ctxmem_ttft_seconds_count", source="memory"), 2)
        self.assertEqual(harness.metric_sum(m2, "ctxmem_generated_tokens_total")
                         - harness.metric_sum(m0, "ctxmem_generated_tokens_total"),
                         d1.usage.generated_tokens + d2.usage.generated_tokens)
        self.assertGreater(harness.metric_sum(m2, "ctxmem_cache_bytes"), 0)

    def test_3_idempotent_recompress(self):
        before = self.comp.metric("ctxmem_compress_tokens_total")
        t0 = time.monotonic()
        again = self.client.compress(self.text, SMALL_CONFIG, label="another label")
        wall = time.monotonic() - t0
        self.assertTrue(again.existed)
        self.assertEqual(again.memory_id, self.first.memory_id)
        self.assertEqual(again.memory.blob_bytes, self.first.memory.blob_bytes)
        self.assertLess(wall, max(2.0, 0.5 * self.first_wall), "re-compress must not compute")
        self.assertEqual(self.comp.metric("ctxmem_compress_tokens_total"), before)
        ids = [m.memory_id for m in self.client.ls()]
        self.assertEqual(ids.count(self.first.memory_id), 1)
        # Same text, another config: another memory.
        other = dict(SMALL_CONFIG, memory_size=32)
        r = self.client.compress(self.text[:600], other)
        self.assertNotEqual(r.memory_id, self.first.memory_id)
        self.assertFalse(r.existed)
        self.assertEqual(set(r.memory.n_kept), {36})

    def test_4_get_memory_matches_store(self):
        mid = self.first.memory_id
        path = os.path.join(self.cluster.path("store"), "blobs", mid + ".safetensors")
        with open(path, "rb") as f:
            want = f.read()
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "blob.safetensors")
            r = self.client.get_memory(mid, out, max_chunk_bytes=4096)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), want)
            self.assertEqual(r.sha256, hashlib.sha256(want).hexdigest())
        chunks = list(self.client.compressor.iter_memory(mid, offset=len(want) // 2,
                                                         max_chunk_bytes=4096))
        self.assertEqual(chunks[0].offset, len(want) // 2)
        self.assertEqual(b"".join(c.data for c in chunks), want[len(want) // 2:])
        self.assertTrue(all(len(c.data) <= 4096 for c in chunks))
        self.assertTrue(all(c.total_bytes == len(want) for c in chunks))
        self.assertEqual(chunks[-1].sha256, hashlib.sha256(want).hexdigest())
        self.assertTrue(all(not c.sha256 for c in chunks[:-1]))
        self.assertStatus(grpc.StatusCode.OUT_OF_RANGE,
                          lambda: list(self.client.compressor.iter_memory(mid, len(want) + 1)))

    def test_5_concurrent_requests_share_one_fetch(self):
        r = self.client.compress(harness.book_text(2000, 900), SMALL_CONFIG)
        before = self.dec.metric("ctxmem_fetch_bytes_total")

        def ask(i):
            return self.client.generate(r.memory_id, f"Question {i}:", max_tokens=4).text()

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, range(4)))
        self.assertEqual(len(answers), 4)
        fetched = self.dec.metric("ctxmem_fetch_bytes_total") - before
        self.assertGreaterEqual(fetched, r.memory.blob_bytes)
        self.assertLess(fetched, 2 * r.memory.blob_bytes, "4 concurrent requests, 1 fetch")

    def test_6_compressor_metrics(self):
        m = self.comp.metrics()
        self.assertGreaterEqual(harness.metric_sum(m, "ctxmem_compress_tokens_total"),
                                self.first.memory.n_original_tokens)
        self.assertGreaterEqual(harness.metric_sum(m, "ctxmem_store_blobs"), 1)
        self.assertGreaterEqual(harness.metric_sum(m, "ctxmem_store_bytes"),
                                self.first.memory.blob_bytes)
        for h in ("ctxmem_compress_chunk_seconds", "ctxmem_compress_seconds",
                  "ctxmem_compression_ratio", "ctxmem_blob_bytes_per_token"):
            self.assertGreater(harness.metric_sum(m, h + "_count"), 0, h)
        for g in ("ctxmem_compress_queue_depth", "ctxmem_compress_jobs_running",
                  "ctxmem_process_resident_bytes", "ctxmem_process_peak_resident_bytes"):
            self.assertTrue(harness.has_metric(m, g), g)
        self.assertGreater(harness.metric_sum(m, "ctxmem_process_resident_bytes"), 50 << 20)
        ok = sum(v for k, v in m.items()
                 if k.startswith("ctxmem_requests_total{") and "Compress" in k and 'code="OK"' in k)
        self.assertGreater(ok, 0, [k for k in m if k.startswith("ctxmem_requests_total")])
        d = self.dec.metrics()
        for g in ("ctxmem_fetch_seconds_count", "ctxmem_cache_misses_total",
                  "ctxmem_decoder_queue_depth", "ctxmem_generate_streams_active",
                  "ctxmem_decode_tokens_per_second_count", "ctxmem_process_resident_bytes"):
            self.assertTrue(harness.has_metric(d, g), g)
        for v in m.values():
            self.assertFalse(math.isnan(v))

    def test_7_plain_generation_without_memory(self):
        before = self.dec.metric("ctxmem_ttft_seconds_count", source="prefill")
        s = self.client.generate([], "The capital of France is", max_tokens=5)
        s.text()
        self.assertEqual(s.done.usage.memory_entries, 0)
        self.assertEqual(self.dec.metric("ctxmem_ttft_seconds_count", source="prefill"),
                         before + 1)


if __name__ == "__main__":
    unittest.main()
