"""Every bad input gets its status and a message a person can act on: unknown pruner / memory
type (valid names listed), budgets that do not fit, empty context, invalid UTF-8, unknown
memory_id, wrong model, oversize messages and contexts, decoder limits; and a full compress
queue answers RESOURCE_EXHAUSTED at once."""

import threading
import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase, compressor_pb2, decoder_pb2, grpc, memory_pb2

MAX_REQUEST_BYTES = 64 * 1024
MAX_CONTEXT_TOKENS = 300
MAX_NEW_TOKENS = 32
MAX_PROMPT_TOKENS = 256
# Deadlines are safety nets only (a call that hangs fails instead of blocking ctest), never
# a claim about speed: generous, so a machine that stalls for a while under load still passes.
CALL_TIMEOUT_S = 300


class BadInputTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("bad")
        cls.comp = c.start_compressor(extra=[
            "--max-request-bytes", str(MAX_REQUEST_BYTES),
            "--max-context-tokens", str(MAX_CONTEXT_TOKENS)])
        cls.dec = c.start_decoder([cls.comp], extra=[
            "--max-new-tokens", str(MAX_NEW_TOKENS), "--max-prompt-tokens", str(MAX_PROMPT_TOKENS),
            "--max-request-bytes", str(MAX_REQUEST_BYTES)])
        cls.client = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr,
                                    timeout=CALL_TIMEOUT_S)
        cls.addClassCleanup(cls.client.close)
        cls.channel = grpc.insecure_channel(cls.comp.grpc_addr)
        cls.addClassCleanup(cls.channel.close)
        cls.mem = cls.client.compress(harness.book_text(100, 800), SMALL_CONFIG)

    def compress_status(self, config, text="Some context to compress.", **kw):
        return self.assertStatus(kw.pop("code", grpc.StatusCode.INVALID_ARGUMENT),
                                 self.client.compress, text, config, **kw)

    # Compressor: configs ----------------------------------------------------------------
    def test_unknown_pruner_lists_valid_names(self):
        e = self.compress_status({"pruner": "nonsense_pruner"})
        for name in ("nonsense_pruner", "streaming_llm", "tova", "h2o", "no_compress"):
            self.assertIn(name, e.details)

    def test_unknown_memory_type_lists_valid_ones(self):
        e = self.compress_status({"memory_type": "XM"})
        for name in ("XM", "FM", "IMDC"):
            self.assertIn(name, e.details)

    def test_budgets_that_do_not_fit(self):
        e = self.compress_status({"memory_size": 0, "n_sink_tokens": 0})
        self.assertRegex(e.details, "memory_size|sink")
        e = self.compress_status({"chunk_size": -4})
        self.assertIn("chunk_size", e.details)
        e = self.compress_status({"memory_type": "DOUBLE_COMPRESS", "memory_size": 64,
                                  "double_compress_size": 128})
        self.assertIn("double_compress_size", e.details)

    def test_bad_enum_like_fields(self):
        for field, value in (("kv_dtype", "int3"), ("position_mode", "sideways"),
                             ("schedule", "cubic"), ("score_mode", "fuzzy")):
            e = self.compress_status({field: value})
            self.assertIn(value, e.details, field)

    def test_wrong_model_is_failed_precondition(self):
        e = self.compress_status({"model": "Llama-70B"}, code=grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("Llama-70B", e.details)

    def test_config_rejected_before_upload(self):
        # Only the start message, the stream held open until the answer came: the answer must
        # not wait for the text. Checked by order, not by time: the request stream is only
        # half-closed after the answer (or after the 600-s safety net, which fails the test).
        answered = threading.Event()
        half_closed = threading.Event()

        def requests():
            yield harness.start_msg(pruner="nonsense_pruner")
            answered.wait(600)
            half_closed.set()

        call = self.channel.stream_stream(
            "/ctxmem.v1.Compressor/Compress",
            request_serializer=compressor_pb2.CompressRequest.SerializeToString,
            response_deserializer=compressor_pb2.CompressEvent.FromString)(requests())
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                list(call)
            closed_before_answer = half_closed.is_set()
        finally:
            answered.set()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertFalse(closed_before_answer, "the refusal waited for the end of the upload")

    # Compressor: context -----------------------------------------------------------------
    def test_empty_context(self):
        e = self.compress_status(dict(SMALL_CONFIG), text="")
        self.assertRegex(e.details.lower(), "empty")

    def test_invalid_utf8(self):
        raw_text_piece = b"\x12\x04\xff\xfe\xfd\xfc"  # field 2 (text), 4 bytes of invalid UTF-8
        call = harness.raw_compress_call(
            self.channel, [harness.start_msg(**SMALL_CONFIG), harness.text_msg("Hello "),
                           raw_text_piece], timeout=CALL_TIMEOUT_S)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         cm.exception.details())
        self.assertRegex(cm.exception.details(), "UTF-8|utf-8|utf8")

    def test_utf8_character_split_across_pieces(self):
        # compressor.proto: "pieces may split characters". "é" = c3 a9 sent as two pieces must
        # give the same tokens (so the same memory id) as the text sent whole.
        whole = self.client.compress("Hello é world, split characters.", SMALL_CONFIG)
        call = harness.raw_compress_call(
            self.channel, [harness.start_msg(**SMALL_CONFIG), harness.text_msg("Hello "),
                           b"\x12\x01\xc3", b"\x12\x01\xa9",
                           harness.text_msg(" world, split characters.")],
            timeout=CALL_TIMEOUT_S)
        done = list(call)[-1].done
        self.assertEqual(done.memory.n_original_tokens, whole.memory.n_original_tokens,
                         "the context was cut at the split character")
        self.assertEqual(done.memory.memory_id, whole.memory_id)

    def test_first_message_not_start(self):
        call = harness.raw_compress_call(self.channel, [harness.text_msg("no start")],
                                         timeout=CALL_TIMEOUT_S)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_repeated_start(self):
        call = harness.raw_compress_call(
            self.channel, [harness.start_msg(**SMALL_CONFIG), harness.text_msg("a"),
                           harness.start_msg(**SMALL_CONFIG)], timeout=CALL_TIMEOUT_S)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_text_and_tokens_mixed(self):
        call = harness.raw_compress_call(
            self.channel, [harness.start_msg(**SMALL_CONFIG), harness.text_msg("some text"),
                           compressor_pb2.CompressRequest(tokens=memory_pb2.TokenIds(ids=[1, 2]))],
            timeout=CALL_TIMEOUT_S)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_token_ids_out_of_vocabulary(self):
        e = self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.compress_tokens,
                              [1, 2, 10 ** 8, 3], SMALL_CONFIG)
        self.assertIn(str(10 ** 8), e.details)
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.compress_tokens,
                          [5, -1], SMALL_CONFIG)

    def test_oversize_message(self):
        e = self.compress_status(SMALL_CONFIG, text="x" * (MAX_REQUEST_BYTES + 1024),
                                 piece_chars=10 ** 6, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertTrue(e.details)

    def test_context_over_max_tokens(self):
        text = harness.book_text(3000, 8 * MAX_CONTEXT_TOKENS)  # ~2x the limit
        e = self.compress_status(SMALL_CONFIG, text=text, piece_chars=1000,
                                 code=grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn(str(MAX_CONTEXT_TOKENS), e.details)

    def test_label_too_long(self):
        self.compress_status(SMALL_CONFIG, label="L" * 300)

    # Compressor: memory ids ---------------------------------------------------------------
    def test_unknown_memory_id(self):
        unknown = "ab" * 32
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.client.stat, unknown)
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.client.rm, unknown)
        self.assertStatus(grpc.StatusCode.NOT_FOUND,
                          lambda: list(self.client.compressor.iter_memory(unknown)))
        self.assertStatus(grpc.StatusCode.NOT_FOUND,
                          lambda: self.client.generate(unknown, "Hi", max_tokens=2).text())
        e = self.assertStatus(grpc.StatusCode.NOT_FOUND, self.client.score, [unknown], "x y z")
        self.assertIn(unknown, e.details)

    def test_malformed_memory_id(self):
        for bad in ("../../etc/passwd", "", "a" * 500):
            try:
                self.client.stat(bad)
            except harness.CtxmemError as e:
                self.assertIn(e.code, (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND),
                              f"{bad!r}: {e}")
            else:
                self.fail(f"stat({bad!r}) succeeded")

    def test_bad_page_token(self):
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.client.compressor.list_page, 10,
                          "!!not a token!!")

    # Decoder ------------------------------------------------------------------------------
    def gen(self, **kw):
        return lambda: self.client.generate(self.mem.memory_id, **kw).text()

    def test_decoder_max_tokens_over_limit(self):
        e = self.assertStatus(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              self.gen(prompt="Hi", max_tokens=MAX_NEW_TOKENS + 1))
        self.assertIn(str(MAX_NEW_TOKENS), e.details)

    def test_decoder_prompt_too_long(self):
        e = self.assertStatus(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              self.gen(prompt=harness.book_text(4000, 6 * MAX_PROMPT_TOKENS),
                                       max_tokens=2))
        self.assertIn(str(MAX_PROMPT_TOKENS), e.details)

    def test_decoder_empty_prompt(self):
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.gen(prompt="", max_tokens=2))
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.gen(messages=[], max_tokens=2))

    def test_decoder_bad_sampling(self):
        for kw in ({"temperature": -1.0}, {"top_p": 1.5}, {"top_k": -3},
                   {"repetition_penalty": -2.0}):
            self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT,
                              self.gen(prompt="Hi", max_tokens=2, **kw))

    def test_decoder_bad_chat_role(self):
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT,
                          self.gen(messages=[("wizard", "hello")], max_tokens=2))

    def test_decoder_negative_max_tokens(self):
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.gen(prompt="Hi", max_tokens=-5))

    def test_decoder_still_serves_after_bad_inputs(self):
        s = self.client.generate(self.mem.memory_id, "Hello", max_tokens=3)
        s.text()
        self.assertGreater(s.done.usage.generated_tokens, 0)
        self.assertTrue(self.comp.alive() and self.dec.alive())


class QueueFullTest(ClusterTestCase):
    """--workers 1 --queue-depth 0: while one admitted job holds the only slot, another Compress
    is refused at its first message; once the first has ended, the next is admitted.

    Deterministic: the first job holds its slot by not finishing its upload (a job is admitted
    at its CompressStart, docs/services.md), and the test only moves on on events the server
    sends (`accepted`, `done`), never on elapsed time."""

    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("queue")
        cls.comp = c.start_compressor(extra=["--workers", "1", "--queue-depth", "0"])
        cls.client = harness.CompressorClient(cls.comp.grpc_addr, timeout=CALL_TIMEOUT_S)
        cls.addClassCleanup(cls.client.close)
        cls.channel = grpc.insecure_channel(cls.comp.grpc_addr)
        cls.addClassCleanup(cls.channel.close)

    def test_queue_full_is_resource_exhausted_at_once(self):
        finish_upload = threading.Event()

        def requests():
            yield harness.start_msg(**SMALL_CONFIG)
            yield harness.text_msg("The first context, its upload held open by the test. ")
            finish_upload.wait(600)  # safety net only: the test sets it
            yield harness.text_msg("Its last piece.")

        events = iter(harness.raw_compress_call(self.channel, requests()))
        try:
            self.assertTrue(next(events).HasField("accepted"))
            e = self.assertStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, self.client.compress,
                                  "A second context.", SMALL_CONFIG)
            self.assertRegex(e.details.lower(), "queue|busy|capacity")
            self.assertIn("0 running, 1 waiting", e.details)
            self.assertEqual(self.comp.metric("ctxmem_compress_queue_depth"), 1)
        finally:
            finish_upload.set()
        rest = list(events)
        self.assertTrue(rest and rest[-1].HasField("done"), rest[-1:])
        # The slot is given back before the client sees the end of its stream, so the next
        # job is admitted at once.
        r = self.client.compress("A second context, now admitted.", SMALL_CONFIG)
        self.assertFalse(r.existed)
        self.assertEqual(self.comp.metric("ctxmem_compress_jobs_running"), 0)


if __name__ == "__main__":
    unittest.main()
