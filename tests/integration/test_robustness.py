"""Failure paths: cancellation and deadlines mid-compress leave no blob and stop the job;
kill -9 of the compressor during a compress, restart on the same store: earlier blobs intact
and served, no partial blob; a corrupted blob file is detected and never served."""

import hashlib
import os
import threading
import time
import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase, grpc

LONG_CONFIG = {"pruner": "no_compress", "chunk_size": 128}  # slowest per chunk: long jobs


def wait_until(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def leftovers(store):
    """Files in the store that are not sealed blobs with their owners file."""
    names = harness.blob_files(store)
    ids = set(harness.sealed_ids(store))
    extra = [n for n in names if not any(n in (f"{i}.safetensors", f"{i}.owners.json")
                                         for i in ids)]
    staging = os.path.join(store, "staging")
    if os.path.isdir(staging):
        extra += ["staging/" + n for n in os.listdir(staging)]
    return extra


class CancelTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("cancel")
        cls.comp = c.start_compressor()
        cls.client = harness.CompressorClient(cls.comp.grpc_addr, timeout=300)
        cls.addClassCleanup(cls.client.close)
        cls.store = c.path("store")
        cls.keep = cls.client.compress(harness.book_text(50, 600), SMALL_CONFIG)

    def assert_job_stopped_without_blob(self, ids_before, list_before):
        self.assertTrue(wait_until(lambda: self.comp.metric("ctxmem_compress_jobs_running") == 0,
                                   30), "the job kept running after its client went away")
        n1 = self.comp.metric("ctxmem_compress_tokens_total")
        time.sleep(1.5)
        self.assertEqual(self.comp.metric("ctxmem_compress_tokens_total"), n1,
                         "tokens still being compressed")
        self.assertEqual(harness.sealed_ids(self.store), ids_before)
        self.assertTrue(wait_until(lambda: not leftovers(self.store), 10), leftovers(self.store))
        self.assertEqual([m.memory_id for m in self.client.ls()], list_before)
        self.assertTrue(self.comp.alive())

    def test_cancel_mid_compress_leaves_no_blob(self):
        ids_before = harness.sealed_ids(self.store)
        list_before = [m.memory_id for m in self.client.ls()]
        seen = []

        def on_progress(p):
            seen.append(p.chunks_done)
            return p.chunks_done < 1  # cancel after the first chunk

        t0 = time.monotonic()
        e = self.assertStatus(grpc.StatusCode.CANCELLED, self.client.compress,
                              harness.book_text(200, 6000), LONG_CONFIG, on_progress=on_progress)
        self.assertTrue(seen and max(seen) >= 1, seen)
        self.assert_job_stopped_without_blob(ids_before, list_before)
        self.assertLess(time.monotonic() - t0, 120)
        del e

    def test_deadline_mid_compress_leaves_no_blob(self):
        ids_before = harness.sealed_ids(self.store)
        list_before = [m.memory_id for m in self.client.ls()]
        # ~8k tokens of no_compress (every chunk attends to the whole past): well over the 2 s
        # deadline on any CPU here; ~1.5k tokens once finished inside 4 s with 2 threads.
        self.assertStatus(grpc.StatusCode.DEADLINE_EXCEEDED, self.client.compress,
                          harness.book_text(400, 32000), LONG_CONFIG, timeout=2)
        self.assert_job_stopped_without_blob(ids_before, list_before)

    def test_kept_memory_still_served(self):
        self.assertEqual(self.client.stat(self.keep.memory_id).blob_bytes,
                         self.keep.memory.blob_bytes)


class CrashRestartTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.make_cluster("crash")

    def test_kill9_during_compress_then_restart(self):
        c = self.cluster
        comp = c.start_compressor(store="store")
        store = c.path("store")
        with harness.CompressorClient(comp.grpc_addr, timeout=300) as cl:
            m1 = cl.compress(harness.book_text(100, 800), SMALL_CONFIG)
            m2 = cl.compress(harness.book_text(900, 800), SMALL_CONFIG)
            shas = {}
            for m in (m1, m2):
                with open(os.path.join(store, "blobs", m.memory_id + ".safetensors"), "rb") as f:
                    shas[m.memory_id] = hashlib.sha256(f.read()).hexdigest()
            progressed = threading.Event()
            outcome = {}

            def long_job():
                try:
                    cl.compress(harness.book_text(2000, 24000), LONG_CONFIG,
                                on_progress=lambda p: p.chunks_done and progressed.set())
                    outcome["r"] = "done"
                except harness.CtxmemError as e:
                    outcome["r"] = e.code

            t = threading.Thread(target=long_job)
            t.start()
            self.assertTrue(progressed.wait(120), "the long job never progressed")
            comp.kill()
            t.join(60)
        self.assertEqual(outcome.get("r"), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(harness.sealed_ids(store), sorted([m1.memory_id, m2.memory_id]))

        comp2 = c.start_compressor(store="store")  # same store dir, new port
        self.assertEqual(harness.sealed_ids(store), sorted([m1.memory_id, m2.memory_id]))
        self.assertEqual(leftovers(store), [], "partial files left after restart")
        with harness.CompressorClient(comp2.grpc_addr, timeout=120) as cl:
            self.assertEqual([m.memory_id for m in cl.ls()], sorted(shas))
            for m in (m1, m2):
                st = cl.stat(m.memory_id)
                self.assertEqual(st.blob_bytes, m.memory.blob_bytes)
                self.assertEqual(list(st.n_kept), list(m.memory.n_kept))
                d = os.path.join(c.tmp, m.memory_id)
                r = cl.get_memory(m.memory_id, d)
                self.assertEqual(r.sha256, shas[m.memory_id])
            again = cl.compress(harness.book_text(100, 800), SMALL_CONFIG)
            self.assertTrue(again.existed)
            self.assertEqual(again.memory_id, m1.memory_id)
        self.assertGreaterEqual(comp2.metric("ctxmem_store_blobs"), 2)
        dec = c.start_decoder([comp2])
        with harness.DecoderClient(dec.grpc_addr, timeout=120) as d:
            s = d.generate(m2.memory_id, "And then", max_tokens=4)
            s.text()
            self.assertEqual(s.done.usage.memory_entries, 68)


class CorruptBlobTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("corrupt")
        cls.comp = c.start_compressor()
        cls.dec = c.start_decoder([cls.comp])
        cls.client = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, timeout=120)
        cls.addClassCleanup(cls.client.close)
        cls.store = c.path("store")
        cls.good = cls.client.compress(harness.book_text(100, 700), SMALL_CONFIG)
        cls.bad1 = cls.client.compress(harness.book_text(1100, 700), SMALL_CONFIG)
        cls.bad2 = cls.client.compress(harness.book_text(2100, 700), SMALL_CONFIG)

    def flip(self, mid, where=0.6):
        path = os.path.join(self.store, "blobs", mid + ".safetensors")
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.seek(int(size * where))
            b = f.read(1)
            f.seek(int(size * where))
            f.write(bytes([b[0] ^ 0x40]))

    def test_corrupt_blob_via_get_memory(self):
        mid = self.bad1.memory_id
        self.flip(mid)
        e = self.assertStatus(grpc.StatusCode.DATA_LOSS,
                              lambda: list(self.client.compressor.iter_memory(mid)))
        self.assertTrue(e.details)
        # Quarantined: from now on it does not exist.
        for fn in (lambda: list(self.client.compressor.iter_memory(mid)),
                   lambda: self.client.stat(mid)):
            try:
                fn()
                self.fail("a corrupt blob was served")
            except harness.CtxmemError as err:
                self.assertIn(err.code, (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.DATA_LOSS))
        self.assertNotIn(mid, [m.memory_id for m in self.client.ls()])
        self.assertTrue(os.listdir(os.path.join(self.store, "quarantine")))

    def test_corrupt_blob_via_decoder(self):
        mid = self.bad2.memory_id
        self.flip(mid, 0.3)
        for _ in range(2):
            try:
                self.client.generate(mid, "Tell me", max_tokens=3).text()
                self.fail("the decoder answered from a corrupt blob")
            except harness.CtxmemError as err:
                self.assertIn(err.code, (grpc.StatusCode.DATA_LOSS, grpc.StatusCode.NOT_FOUND),
                              str(err))
        self.assertTrue(self.comp.alive() and self.dec.alive())

    def test_good_blob_still_served(self):
        s = self.client.generate(self.good.memory_id, "Tell me", max_tokens=3)
        s.text()
        self.assertGreater(s.done.usage.generated_tokens, 0)


if __name__ == "__main__":
    unittest.main()
