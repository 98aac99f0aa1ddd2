"""Malformed messages on every RPC, as a raw gRPC client sends them (grpcio generic calls with
identity serializers): every one of the seven methods must answer INVALID_ARGUMENT with a
message naming the request type (gRPC's typed handlers answer UNIMPLEMENTED with no message),
and the servers keep serving afterwards."""

import random
import unittest

import harness
from harness import ClusterTestCase, compressor_pb2, decoder_pb2, grpc

# method path -> (kind, request type); kinds: unary, stream (server streaming), bidi
RPCS = {
    "/ctxmem.v1.Compressor/Compress": ("bidi", compressor_pb2.CompressRequest),
    "/ctxmem.v1.Compressor/GetMemory": ("stream", compressor_pb2.GetMemoryRequest),
    "/ctxmem.v1.Compressor/StatMemory": ("unary", compressor_pb2.StatMemoryRequest),
    "/ctxmem.v1.Compressor/ListMemories": ("unary", compressor_pb2.ListMemoriesRequest),
    "/ctxmem.v1.Compressor/DeleteMemory": ("unary", compressor_pb2.DeleteMemoryRequest),
    "/ctxmem.v1.Decoder/Generate": ("stream", decoder_pb2.GenerateRequest),
    "/ctxmem.v1.Decoder/Score": ("unary", decoder_pb2.ScoreRequest),
}

# Hand-made invalid encodings: a truncated varint, a length past the end, wire type 7, field 0,
# an unterminated group, invalid UTF-8 in field 1 (a string in every request but Compress,
# whose field 1 is the CompressStart submessage: invalid there too).
HAND_MADE = [b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x0a\x05ab", b"\x0f", b"\x00",
             b"\x0b", b"\x0a\x02\xc3\x28"]


def parses(message_type, data: bytes) -> bool:
    try:
        message_type.FromString(data)
        return True
    except Exception:  # google.protobuf.message.DecodeError
        return False


def random_invalid(message_type, rng: random.Random, n: int):
    """n random byte strings that Python's protobuf also refuses to parse as `message_type`."""
    out = []
    while len(out) < n:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        if not parses(message_type, data):
            out.append(data)
    return out


class MalformedRpcTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("malformed")
        cls.comp = c.start_compressor()
        cls.dec = c.start_decoder([cls.comp])
        cls.comp_channel = grpc.insecure_channel(cls.comp.grpc_addr)
        cls.dec_channel = grpc.insecure_channel(cls.dec.grpc_addr)
        cls.addClassCleanup(cls.comp_channel.close)
        cls.addClassCleanup(cls.dec_channel.close)

    def call_raw(self, path: str, payload: bytes) -> grpc.RpcError:
        kind, _ = RPCS[path]
        channel = self.dec_channel if "Decoder" in path else self.comp_channel
        ident = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            if kind == "unary":
                channel.unary_unary(path, **ident)(payload, timeout=30)
            elif kind == "stream":
                list(channel.unary_stream(path, **ident)(payload, timeout=30))
            else:
                list(channel.stream_stream(path, **ident)(iter([payload]), timeout=30))
        except grpc.RpcError as e:
            return e
        self.fail(f"{path}: {payload!r} was accepted")

    def check(self, path: str, payload: bytes):
        _, message_type = RPCS[path]
        self.assertFalse(parses(message_type, payload), payload)  # the test's own premise
        e = self.call_raw(path, payload)
        what = f"{path} <- {payload!r}: {e.code().name}: {e.details()!r}"
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT, what)
        self.assertIn(message_type.DESCRIPTOR.full_name, e.details() or "", what)

    def test_hand_made_invalid_encodings(self):
        for path, (_, message_type) in RPCS.items():
            for payload in HAND_MADE:
                if parses(message_type, payload):
                    continue  # e.g. field 1 of Compress is a message: checked below instead
                with self.subTest(path=path, payload=payload):
                    self.check(path, payload)

    def test_random_bytes(self):
        rng = random.Random(13)
        for path, (_, message_type) in RPCS.items():
            for payload in random_invalid(message_type, rng, 12):
                with self.subTest(path=path, payload=payload):
                    self.check(path, payload)

    def test_still_serving(self):
        for path in RPCS:
            self.call_raw(path, b"\x0f")
        listed = compressor_pb2.ListMemoriesResponse.FromString(
            self.comp_channel.unary_unary(
                "/ctxmem.v1.Compressor/ListMemories", request_serializer=lambda b: b,
                response_deserializer=lambda b: b)(b"", timeout=30))
        self.assertEqual(listed.next_page_token, "")
        self.assertTrue(self.comp.alive() and self.dec.alive())
        # A well-formed request after the malformed ones is handled normally (unknown memory).
        e = self.call_raw("/ctxmem.v1.Compressor/StatMemory",
                          compressor_pb2.StatMemoryRequest(memory_id="0" * 64).SerializeToString())
        self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND, e.details())
        # The decoder counts malformed requests like any other error.
        self.assertGreater(self.dec.metric("ctxmem_requests_total", method="Score",
                                           code="INVALID_ARGUMENT"), 0)


if __name__ == "__main__":
    unittest.main()
