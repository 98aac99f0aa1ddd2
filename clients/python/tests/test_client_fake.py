"""Client tests against an in-process fake of both services (no model, no C++ binaries):
text streaming and UTF-8 handling, progress and cancellation, auth metadata, paging, resumable
verified downloads, generate/score plumbing and the CLI. Run:
  python -m unittest discover -s clients/python/tests
"""

import contextlib
import hashlib
import io
import os
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import grpc  # noqa: E402

from ctxmem_client import Client, CtxmemError, cli  # noqa: E402
from ctxmem_client._stubs import (compressor_pb2, compressor_pb2_grpc, decoder_pb2,  # noqa: E402
                                  decoder_pb2_grpc, memory_pb2)

TOKEN = "fake-token-0123456789"


def _check_auth(context):
    md = dict(context.invocation_metadata())
    if md.get("authorization") != f"Bearer {TOKEN}":
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


class FakeCompressor(compressor_pb2_grpc.CompressorServicer):
    def __init__(self):
        self.blobs = {}  # id -> bytes
        self.texts = {}
        self.fail_get_after_first_chunk = 0  # how many GetMemory calls to break mid-stream
        self.chunk_delay = 0.0
        self.cancelled = threading.Event()

    def Compress(self, request_iterator, context):
        _check_auth(context)
        first = next(request_iterator)
        if first.WhichOneof("msg") != "start":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be start")
        yield compressor_pb2.CompressEvent(accepted=compressor_pb2.CompressAccepted(request_id="r1"))
        text = []
        chunks = 0
        for req in request_iterator:
            text.append(req.text)
            chunks += 1
            if self.chunk_delay:
                time.sleep(self.chunk_delay)
            if not context.is_active():
                self.cancelled.set()
                return
            yield compressor_pb2.CompressEvent(progress=compressor_pb2.CompressProgress(
                tokens_read=sum(len(t) for t in text), chunks_done=chunks, memory_len=chunks))
        whole = b"".join(text).decode("utf-8")
        mid = hashlib.sha256((first.start.config.pruner + whole).encode()).hexdigest()
        existed = mid in self.blobs
        self.blobs[mid] = (whole.encode() * 50)[:300000] or b"x"
        self.texts[mid] = whole
        info = memory_pb2.MemoryInfo(memory_id=mid, n_original_tokens=len(whole), n_kept=[3, 3],
                                     blob_bytes=len(self.blobs[mid]),
                                     client_label=first.start.client_label)
        yield compressor_pb2.CompressEvent(done=compressor_pb2.CompressDone(memory=info,
                                                                            existed=existed))

    def GetMemory(self, request, context):
        _check_auth(context)
        blob = self.blobs.get(request.memory_id)
        if blob is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such memory")
        if request.offset > len(blob):
            context.abort(grpc.StatusCode.OUT_OF_RANGE, "offset past the end")
        step = max(4096, min(request.max_chunk_bytes or (1 << 20), 1 << 20))
        off = request.offset
        sent = 0
        while off < len(blob):
            data = blob[off:off + step]
            last = off + len(data) == len(blob)
            yield compressor_pb2.BlobChunk(offset=off, data=data, total_bytes=len(blob),
                                           sha256=hashlib.sha256(blob).hexdigest() if last else "")
            off += len(data)
            sent += 1
            if sent == 1 and not last and self.fail_get_after_first_chunk > 0:
                self.fail_get_after_first_chunk -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "injected failure")

    def StatMemory(self, request, context):
        _check_auth(context)
        if request.memory_id not in self.blobs:
            context.abort(grpc.StatusCode.NOT_FOUND, f"memory {request.memory_id} not found")
        return memory_pb2.MemoryInfo(memory_id=request.memory_id,
                                     blob_bytes=len(self.blobs[request.memory_id]))

    def ListMemories(self, request, context):
        _check_auth(context)
        ids = sorted(i for i in self.blobs if i > request.page_token)
        page = ids[:request.page_size or 100]
        more = len(ids) > len(page)
        return compressor_pb2.ListMemoriesResponse(
            memories=[memory_pb2.MemoryInfo(memory_id=i) for i in page],
            next_page_token=page[-1] if more else "")

    def DeleteMemory(self, request, context):
        _check_auth(context)
        if self.blobs.pop(request.memory_id, None) is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such memory")
        return compressor_pb2.DeleteMemoryResponse()


class FakeDecoder(decoder_pb2_grpc.DecoderServicer):
    def Generate(self, request, context):
        _check_auth(context)
        what = request.prompt if request.WhichOneof("input") == "prompt" else \
            request.chat.messages[-1].content
        words = what.split()
        for i, w in enumerate(words):
            yield decoder_pb2.GenerateEvent(delta=decoder_pb2.TextDelta(text=w + " ", token_ids=[i]))
        yield decoder_pb2.GenerateEvent(done=decoder_pb2.GenerateDone(
            text=" ".join(words) + " ", stop_reason="eos",
            usage=decoder_pb2.Usage(prompt_tokens=len(words), generated_tokens=len(words),
                                    memory_entries=len(request.memory_ids)),
            timings=decoder_pb2.GenerateTimings(ttft_seconds=0.01)))

    def Score(self, request, context):
        _check_auth(context)
        n = len(request.tokens.ids) if request.WhichOneof("continuation") == "tokens" else \
            len(request.text)
        return decoder_pb2.ScoreResponse(n_scored=n - 1, total_nll=float(n - 1),
                                         perplexity=2.718281828)


class FakeServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        cls.comp = FakeCompressor()
        compressor_pb2_grpc.add_CompressorServicer_to_server(cls.comp, cls.server)
        decoder_pb2_grpc.add_DecoderServicer_to_server(FakeDecoder(), cls.server)
        port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.addr = f"127.0.0.1:{port}"
        cls.client = Client(cls.addr, cls.addr, token=TOKEN, timeout=20)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop(None)

    def test_compress_streams_pieces_and_reports_progress(self):
        seen = []
        text = "héllo wörld " * 100
        r = self.client.compress(text, {"pruner": "tova", "memory_size": 64}, piece_chars=100,
                                 label="doc", on_progress=lambda p: seen.append(p.chunks_done))
        self.assertEqual(self.comp.texts[r.memory_id], text)
        self.assertEqual(r.memory.client_label, "doc")
        self.assertEqual(seen[-1], 12)  # 1200 chars / 100: one progress per piece
        self.assertFalse(r.existed)
        self.assertTrue(self.client.compress(text, {"pruner": "tova"}).memory_id)

    def test_utf8_split_across_byte_pieces_is_reassembled(self):
        data = "ünïcödé ✓ 漢字 ".encode() * 20
        pieces = [data[i:i + 7] for i in range(0, len(data), 7)]  # splits characters
        r = self.client.compress(iter(pieces))
        self.assertEqual(self.comp.texts[r.memory_id], data.decode())
        r2 = self.client.compress(io.BytesIO(data), piece_chars=5)
        self.assertEqual(self.comp.texts[r2.memory_id], data.decode())

    def test_invalid_utf8_is_refused_locally_with_offset(self):
        with self.assertRaisesRegex(ValueError, r"not valid UTF-8.*byte 4"):
            self.client.compress([b"abcd", b"\xff\xfe"])

    def test_unknown_config_field(self):
        with self.assertRaisesRegex(ValueError, "unknown compression config field 'prunr'"):
            self.client.compress("x", {"prunr": "tova"})

    def test_cancel_from_progress_callback(self):
        self.comp.chunk_delay = 0.05
        try:
            with self.assertRaises(CtxmemError) as cm:
                self.client.compress("a" * 5000, piece_chars=100,
                                     on_progress=lambda p: p.chunks_done < 2)
            self.assertEqual(cm.exception.code, grpc.StatusCode.CANCELLED)
        finally:
            self.comp.chunk_delay = 0.0

    def test_cancel_event(self):
        self.comp.chunk_delay = 0.05
        ev = threading.Event()
        threading.Timer(0.2, ev.set).start()
        try:
            t0 = time.monotonic()
            with self.assertRaises(CtxmemError) as cm:
                self.client.compress("b" * 50000, piece_chars=100, cancel=ev)
            self.assertEqual(cm.exception.code, grpc.StatusCode.CANCELLED)
            self.assertLess(time.monotonic() - t0, 3)
        finally:
            self.comp.chunk_delay = 0.0

    def test_missing_token_is_unauthenticated(self):
        with Client(self.addr, self.addr) as anon:
            with self.assertRaises(CtxmemError) as cm:
                anon.stat("x")
            self.assertEqual(cm.exception.code, grpc.StatusCode.UNAUTHENTICATED)

    def test_ls_pages_through_everything(self):
        for i in range(7):
            self.client.compress(f"doc {i}")
        ids = [m.memory_id for m in self.client.compressor.ls(page_size=2)]
        self.assertEqual(ids, sorted(self.comp.blobs))

    def test_get_memory_resumes_and_verifies(self):
        mid = self.client.compress("resumable " * 1000).memory_id
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "blob")
            self.comp.fail_get_after_first_chunk = 1
            r = self.client.get_memory(mid, out, max_chunk_bytes=4096)
            self.assertEqual(r.attempts, 2)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), self.comp.blobs[mid])
            # A leftover .part is continued from its size.
            with open(out + ".part", "wb") as f:
                f.write(self.comp.blobs[mid][:10000])
            r = self.client.get_memory(mid, out, max_chunk_bytes=65536)
            self.assertEqual(r.resumed_from, 10000)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), self.comp.blobs[mid])
            # A corrupt .part fails verification and is removed.
            with open(out + ".part", "wb") as f:
                f.write(b"\0" * 100)
            with self.assertRaises(CtxmemError) as cm:
                self.client.get_memory(mid, out)
            self.assertEqual(cm.exception.code, grpc.StatusCode.DATA_LOSS)
            self.assertFalse(os.path.exists(out + ".part"))

    def test_generate_ask_score(self):
        stream = self.client.generate(["m1"], "one two three")
        self.assertEqual([d.text for d in stream], ["one ", "two ", "three "])
        self.assertEqual(stream.done.stop_reason, "eos")
        got = []
        done = self.client.ask("m1", "four five", on_text=got.append)
        self.assertEqual("".join(got), done.text)
        self.assertEqual(self.client.score(["m1"], [1, 2, 3]).n_scored, 2)
        with self.assertRaises(ValueError):
            self.client.generate("m1")

    def test_cli_verbs(self):
        base = ["--compressor", self.addr, "--decoder", self.addr, "--token", TOKEN]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ctx.txt")
            with open(path, "w") as f:
                f.write("some context " * 50)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(cli.main(base + ["compress", path, "--pruner", "tova"]), 0)
            mid = out.getvalue().strip()
            self.assertIn(mid, self.comp.blobs)
            for argv in (["stat", mid], ["ls"], ["ask", mid, "hi there"],
                         ["score", mid, "--text", "abc"], ["get", mid, os.path.join(d, "b")],
                         ["rm", mid]):
                out = io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                    self.assertEqual(cli.main(base + argv), 0, argv)
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(cli.main(base + ["stat", mid]), 1)
            self.assertIn("NOT_FOUND", err.getvalue())


if __name__ == "__main__":
    unittest.main()
