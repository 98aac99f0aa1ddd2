"""The shared S3 store with a real S3 server (SeaweedFS `weed mini` on loopback, one for this
file): 2 compressors + 2 decoders on one bucket. A memory compressed on one compressor is
stat-ed, listed and deleted on the other and answered by both decoders, which read the bucket
directly (no compressor on their read path). kill -9 of a compressor mid-upload leaves no
partial object and the other compressor serves; a restart of the S3 server in the middle of a
decoder's download is retried (the decoder answers) or ends in a clear UNAVAILABLE."""

import os
import threading
import time
import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase, grpc

PROMPT = dict(messages=[{"role": "user", "content": "Who is speaking here?"}], max_tokens=8)


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class S3ReplicasTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("s3")
        cls.weed = harness.SeaweedFS(c.path("weed")).start()
        cls.addClassCleanup(cls.weed.stop)
        # Decoders retry long enough to ride out an S3 restart (~2 s) and download slowly
        # enough (1 MB/s) that the restart lands in the middle of a download.
        dec_flags = ["--s3-max-attempts", "9", "--s3-max-download-bytes-per-second", "1000000"]
        # Started side by side (each loads the model).
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(4) as pool:
            comps = [pool.submit(c.start_compressor, f"stage-{n}", s3=cls.weed) for n in "ab"]
            decs = [pool.submit(c.start_decoder, [], f"cache-{n}", s3=cls.weed, extra=dec_flags)
                    for n in "ab"]
            cls.comp_a, cls.comp_b = (f.result() for f in comps)
            cls.dec_a, cls.dec_b = (f.result() for f in decs)
        # The reference: a decoder that fetches through a compressor over gRPC.
        cls.dec_grpc = c.start_decoder([cls.comp_b], "cache-grpc")
        cls.ca = harness.CompressorClient(cls.comp_a.grpc_addr, timeout=300)
        cls.cb = harness.CompressorClient(cls.comp_b.grpc_addr, timeout=300)
        cls.da = harness.DecoderClient(cls.dec_a.grpc_addr, timeout=300)
        cls.db = harness.DecoderClient(cls.dec_b.grpc_addr, timeout=300)
        cls.dg = harness.DecoderClient(cls.dec_grpc.grpc_addr, timeout=300)
        for client in (cls.ca, cls.cb, cls.da, cls.db, cls.dg):
            cls.addClassCleanup(client.close)

    def answer(self, client, memory_id):
        return client.generate(memory_id, **PROMPT).text()

    def test_1_compress_on_one_stat_list_answer_delete_on_the_others(self):
        info = self.ca.compress(harness.book_text(100, 1500), SMALL_CONFIG, label="s3-a")
        mid = info.memory_id
        stat = self.cb.stat(mid)
        self.assertEqual(stat.blob_bytes, info.memory.blob_bytes)
        self.assertEqual(list(stat.n_kept), list(info.memory.n_kept))
        self.assertEqual(stat.client_label, "s3-a")
        self.assertIn(mid, [m.memory_id for m in self.cb.ls()])
        # Compressing the same input on the other replica finds it in the bucket.
        again = self.cb.compress(harness.book_text(100, 1500), SMALL_CONFIG, label="s3-a")
        self.assertEqual(again.memory_id, mid)
        self.assertTrue(again.existed)
        # Both S3 decoders answer, and exactly as a decoder that fetches over gRPC.
        reference = self.answer(self.dg, mid)
        self.assertTrue(reference)
        self.assertEqual(self.answer(self.da, mid), reference)
        self.assertEqual(self.answer(self.db, mid), reference)
        self.assertGreater(self.dec_a.metric("ctxmem_fetch_bytes_total"), 0)
        # The decoder's cache stays in front of the bucket: the second answer is a hit.
        hits = self.dec_a.metric("ctxmem_cache_hits_total")
        fetched = self.dec_a.metric("ctxmem_fetch_bytes_total")
        self.assertEqual(self.answer(self.da, mid), reference)
        self.assertEqual(self.dec_a.metric("ctxmem_cache_hits_total"), hits + 1)
        self.assertEqual(self.dec_a.metric("ctxmem_fetch_bytes_total"), fetched)
        # Both servers count their S3 traffic (ctxmem_s3_*): A put the blob, the S3 decoder
        # downloaded it (the gRPC-fetching decoder has none).
        blob_bytes = info.memory.blob_bytes
        self.assertGreaterEqual(self.comp_a.metric("ctxmem_s3_requests_total", op="put",
                                                   status="200"), 1)
        self.assertGreaterEqual(self.comp_a.metric("ctxmem_s3_bytes_total", op="put",
                                                   direction="sent"), blob_bytes)
        self.assertGreaterEqual(self.comp_b.metric("ctxmem_s3_requests_total", op="head"), 1)
        self.assertGreaterEqual(self.dec_a.metric("ctxmem_s3_requests_total", op="get",
                                                  status="200"), 1)
        self.assertGreaterEqual(self.dec_a.metric("ctxmem_s3_bytes_total", op="get",
                                                  direction="received"), blob_bytes)
        self.assertGreater(self.dec_a.metric("ctxmem_s3_request_seconds_count", op="get"), 0)
        self.assertEqual(self.dec_grpc.metric("ctxmem_s3_requests_total"), 0)
        # Delete on B: gone for A's listing and stat.
        self.cb.rm(mid)
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.ca.stat, mid)
        self.assertNotIn(mid, [m.memory_id for m in self.ca.ls()])

    def test_2_kill_compressor_mid_upload_leaves_no_partial_object(self):
        c = self.cluster
        # Uploads capped at 100 kB/s: a ~1.5 MB blob takes ~15 s to go up.
        slow = c.start_compressor("stage-slow", s3=self.weed,
                                  extra=["--s3-max-upload-bytes-per-second", "100000"])
        text = harness.book_text(400, 1500)
        staging = c.path("stage-slow", "staging")
        errors = []

        def compress():
            try:
                harness.CompressorClient(slow.grpc_addr, timeout=120).compress(text, SMALL_CONFIG)
            except Exception as e:  # the kill ends it
                errors.append(e)

        t = threading.Thread(target=compress, daemon=True)
        t.start()
        # The sealed file sits in staging while it is uploaded (PutFile consumes it after).
        sealed = lambda: [n for n in os.listdir(staging) if n.endswith(".safetensors")
                          and not n.startswith(".")] if os.path.isdir(staging) else []
        self.assertTrue(wait_until(lambda: sealed(), 120), "the blob was never sealed")
        mid = sealed()[0].split(".")[0]
        time.sleep(2.0)  # well into the upload
        slow.kill()
        t.join(30)
        self.assertTrue(errors, "the compress call should have failed with its server")
        # Nothing of it in the bucket, on either surviving replica.
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.ca.stat, mid)
        self.assertNotIn(mid, [m.memory_id for m in self.cb.ls()])
        # The other compressor serves the same request; the decoders answer from it.
        info = self.ca.compress(text, SMALL_CONFIG)
        self.assertEqual(info.memory_id, mid)
        self.assertFalse(info.existed)
        self.assertEqual(self.cb.stat(mid).blob_bytes, info.memory.blob_bytes)
        self.assertTrue(self.answer(self.db, mid))

    def test_2b_kill_compressor_mid_multipart_upload(self):
        # Multipart from 5 MiB (the smallest part S3 takes) and a memory of 256 entries (a
        # ~6 MB blob: 2 parts) going up at 1 MB/s. The compressor is killed once its first
        # part is in (its own metrics say so): the upload is never completed, so nothing is
        # visible; a compressor with the same flags then completes the same upload.
        c = self.cluster
        multipart = ["--s3-multipart-threshold-bytes", str(5 << 20),
                     "--s3-part-bytes", str(5 << 20)]
        slow = c.start_compressor("stage-mp-slow", s3=self.weed,
                                  extra=multipart + ["--s3-max-upload-bytes-per-second",
                                                     "1000000"])
        config = dict(SMALL_CONFIG, memory_size=256)
        text = harness.book_text(1600, 1500)
        errors = []

        def compress():
            try:
                harness.CompressorClient(slow.grpc_addr, timeout=300).compress(text, config)
            except Exception as e:  # the kill ends it
                errors.append(e)

        t = threading.Thread(target=compress, daemon=True)
        t.start()
        parts = lambda: slow.metric("ctxmem_s3_requests_total", op="upload_part", status="200")
        self.assertTrue(wait_until(lambda: parts() >= 1, 240), "no part was ever uploaded")
        self.assertEqual(slow.metric("ctxmem_s3_requests_total", op="complete_multipart"), 0)
        staging = c.path("stage-mp-slow", "staging")
        sealed = [n for n in os.listdir(staging) if n.endswith(".safetensors")
                  and not n.startswith(".")]
        slow.kill()
        t.join(30)
        self.assertTrue(errors, "the compress call should have failed with its server")
        self.assertEqual(len(sealed), 1, sealed)
        mid = sealed[0].split(".")[0]
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.ca.stat, mid)
        self.assertNotIn(mid, [m.memory_id for m in self.cb.ls()])
        # The same memory through a compressor with the same multipart flags, unthrottled.
        fast = c.start_compressor("stage-mp-fast", s3=self.weed, extra=multipart)
        cf = harness.CompressorClient(fast.grpc_addr, timeout=300)
        self.addCleanup(cf.close)
        self.addCleanup(fast.stop)
        info = cf.compress(text, config)
        self.assertEqual(info.memory_id, mid)
        self.assertGreater(info.memory.blob_bytes, 5 << 20)
        self.assertFalse(info.existed)  # the killed upload left nothing behind
        self.assertEqual(fast.metric("ctxmem_s3_requests_total", op="upload_part",
                                     status="200"), 2)
        self.assertEqual(fast.metric("ctxmem_s3_requests_total", op="complete_multipart",
                                     status="200"), 1)
        self.assertEqual(self.cb.stat(mid).blob_bytes, info.memory.blob_bytes)
        self.assertTrue(self.answer(self.db, mid))

    def test_3_s3_restart_mid_download(self):
        info = self.ca.compress(harness.book_text(700, 1500), SMALL_CONFIG)
        mid = info.memory_id
        reference = self.answer(self.dg, mid)
        before = self.dec_a.metric("ctxmem_fetch_bytes_total")
        outcome = {}

        def ask():
            try:
                outcome["text"] = self.answer(self.da, mid)
            except harness.CtxmemError as e:
                outcome["error"] = e

        t = threading.Thread(target=ask, daemon=True)
        t.start()
        time.sleep(0.7)  # the ~1.5 MB download takes ~1.5 s at 1 MB/s
        self.weed.restart()
        t.join(120)
        self.assertFalse(t.is_alive())
        if "error" in outcome:  # allowed: a clear status, not a hang or a crash
            print(f"\ns3 restart mid-download: {outcome['error'].code.name}: "
                  f"{outcome['error'].details}", flush=True)
            self.assertEqual(outcome["error"].code, grpc.StatusCode.UNAVAILABLE,
                             outcome["error"].details)
        else:
            print("\ns3 restart mid-download: the decoder retried and answered", flush=True)
            self.assertEqual(outcome["text"], reference)
        self.assertTrue(self.dec_a.alive())
        # Either way the next request answers, from the bucket.
        self.assertEqual(self.answer(self.da, mid), reference)
        self.assertGreater(self.dec_a.metric("ctxmem_fetch_bytes_total"), before)

    def test_4_tenants_are_key_prefixes(self):
        # The bucket holds <prefix>/<tenant>/<id>.safetensors; with auth off the tenant is
        # "default". The decoders never ask a compressor: their compressor list is empty.
        info = self.cb.compress(harness.book_text(900, 800), SMALL_CONFIG)
        url = f"{self.weed.endpoint}/{self.weed.BUCKET}/{self.weed.prefix}/default/" \
              f"{info.memory_id}.safetensors"
        try:
            harness.urllib.request.urlopen(url, timeout=5)
            self.fail("anonymous GET of a blob succeeded")
        except harness.urllib.error.HTTPError as e:
            self.assertEqual(e.code, 403)  # exists, but needs credentials
        self.assertTrue(self.answer(self.db, info.memory_id))

    def test_5_tenants_hold_across_replicas_with_auth(self):
        # Auth on: a compressor and a decoder with the same tokens file on the same bucket.
        # Alice's memory is hers on every replica; Bob gets NOT_FOUND everywhere.
        c = self.cluster
        alice, bob = "alice-token-0123456789abcdef", "bob-token-0123456789abcdefgh"
        tokens = c.write_tokens([(alice, "alice"), (bob, "bob")], "s3-tokens.txt")
        comp = c.start_compressor("stage-auth", s3=self.weed, tokens_file=tokens)
        dec = c.start_decoder([], "cache-auth", s3=self.weed, tokens_file=tokens)
        ca = harness.CompressorClient(comp.grpc_addr, token=alice, timeout=300)
        cb = harness.CompressorClient(self.comp_b.grpc_addr, timeout=300)  # auth off: "default"
        bob_c = harness.CompressorClient(comp.grpc_addr, token=bob, timeout=60)
        da = harness.DecoderClient(dec.grpc_addr, token=alice, timeout=300)
        db = harness.DecoderClient(dec.grpc_addr, token=bob, timeout=300)
        for client in (ca, cb, bob_c, da, db):
            self.addCleanup(client.close)
        mid = ca.compress(harness.book_text(1200, 1200), SMALL_CONFIG).memory_id
        self.assertTrue(da.generate(mid, **PROMPT).text())
        self.assertStatus(grpc.StatusCode.NOT_FOUND, bob_c.stat, mid)
        self.assertNotIn(mid, [m.memory_id for m in bob_c.ls()])
        self.assertStatus(grpc.StatusCode.NOT_FOUND, lambda: db.generate(mid, **PROMPT).text())
        self.assertStatus(grpc.StatusCode.NOT_FOUND, bob_c.rm, mid)
        self.assertStatus(grpc.StatusCode.NOT_FOUND, cb.stat, mid)  # tenant "default"
        self.assertEqual(ca.stat(mid).memory_id, mid)


if __name__ == "__main__":
    unittest.main()
