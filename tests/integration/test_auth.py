"""Bearer-token auth on both services: missing or wrong token -> UNAUTHENTICATED; another
tenant gets NOT_FOUND for a memory (Stat, GetMemory, Delete, Generate, Score, even once the
decoder has it cached); the tenant is part of the memory id; health needs no token."""

import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase, grpc

TOKEN_A = "tenant-a-token-0123456789abcdef"
TOKEN_B = "tenant-b-token-fedcba9876543210"


class AuthTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("auth")
        tokens = c.write_tokens([(TOKEN_A, "alice"), (TOKEN_B, "bob")])
        cls.comp = c.start_compressor(tokens_file=tokens)
        cls.dec = c.start_decoder([cls.comp], tokens_file=tokens)
        mk = lambda token: harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, token=token,
                                          timeout=120)
        cls.a, cls.b, cls.anon, cls.wrong = mk(TOKEN_A), mk(TOKEN_B), mk(None), mk("x" * 24)
        for cl in (cls.a, cls.b, cls.anon, cls.wrong):
            cls.addClassCleanup(cl.close)
        cls.text = harness.book_text(1000, 900)
        cls.mem = cls.a.compress(cls.text, SMALL_CONFIG)

    def calls(self, client, mid):
        return {
            "Compress": lambda: client.compress("some text here", SMALL_CONFIG),
            "StatMemory": lambda: client.stat(mid),
            "ListMemories": lambda: client.compressor.list_page(),
            "GetMemory": lambda: list(client.compressor.iter_memory(mid)),
            "DeleteMemory": lambda: client.rm("cd" * 32),
            "Generate": lambda: client.generate(mid, "Hi", max_tokens=2).text(),
            "Score": lambda: client.score([mid], "a few words"),
        }

    def test_missing_token_is_unauthenticated(self):
        for name, fn in self.calls(self.anon, self.mem.memory_id).items():
            with self.subTest(rpc=name):
                self.assertStatus(grpc.StatusCode.UNAUTHENTICATED, fn)

    def test_wrong_token_is_unauthenticated(self):
        for name, fn in self.calls(self.wrong, self.mem.memory_id).items():
            with self.subTest(rpc=name):
                e = self.assertStatus(grpc.StatusCode.UNAUTHENTICATED, fn)
                self.assertNotIn(TOKEN_A, e.details)

    def test_malformed_authorization_header(self):
        for header in (f"Basic {TOKEN_A}", TOKEN_A, f"Bearer  {TOKEN_A}x", "Bearer "):
            with harness.CompressorClient(self.comp.grpc_addr, timeout=30) as c:
                c._ep.metadata = [("authorization", header)]
                with self.subTest(header=header):
                    self.assertStatus(grpc.StatusCode.UNAUTHENTICATED, c.stat, self.mem.memory_id)

    def test_owner_sees_its_memory(self):
        self.assertEqual(self.a.stat(self.mem.memory_id).memory_id, self.mem.memory_id)
        self.assertIn(self.mem.memory_id, [m.memory_id for m in self.a.ls()])
        self.assertTrue(self.a.generate(self.mem.memory_id, "Hi", max_tokens=2).text() is not None)

    def test_other_tenant_gets_not_found(self):
        mid = self.mem.memory_id
        # Let the decoder cache it for alice first: bob must still not be served from the cache.
        self.a.generate(mid, "Hello", max_tokens=2).text()
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.stat, mid)
        self.assertStatus(grpc.StatusCode.NOT_FOUND, lambda: list(self.b.compressor.iter_memory(mid)))
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.rm, mid)
        self.assertStatus(grpc.StatusCode.NOT_FOUND,
                          lambda: self.b.generate(mid, "Hello", max_tokens=2).text())
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.score, [mid], "a few words")
        self.assertNotIn(mid, [m.memory_id for m in self.b.ls()])
        # The NOT_FOUND for someone else's memory reads like the one for a memory nobody has.
        e_other = self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.stat, mid)
        e_none = self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.stat, "ef" * 32)
        self.assertEqual(e_other.details.replace(mid, "ID"), e_none.details.replace("ef" * 32, "ID"))
        # Still alice's after bob's attempts.
        self.assertEqual(self.a.stat(mid).memory_id, mid)

    def test_tenant_is_part_of_the_memory_id(self):
        mine = self.b.compress(self.text, SMALL_CONFIG)
        self.assertFalse(mine.existed)
        self.assertNotEqual(mine.memory_id, self.mem.memory_id)
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.a.stat, mine.memory_id)
        self.b.rm(mine.memory_id)
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.b.stat, mine.memory_id)
        self.assertEqual(self.a.stat(self.mem.memory_id).memory_id, self.mem.memory_id)

    def test_health_needs_no_token(self):
        self.assertEqual(self.anon.compressor.health(), "SERVING")
        self.assertEqual(self.anon.decoder.health(), "SERVING")

    def test_unauthenticated_requests_are_counted(self):
        self.assertStatus(grpc.StatusCode.UNAUTHENTICATED, self.anon.stat, self.mem.memory_id)
        m = self.comp.metrics()
        n = sum(v for k, v in m.items()
                if k.startswith("ctxmem_requests_total{") and 'code="UNAUTHENTICATED"' in k)
        self.assertGreater(n, 0, [k for k in m if k.startswith("ctxmem_requests_total")])


class InsecureRemoteTest(unittest.TestCase):
    """Without a tokens file, a non-loopback listen address is refused unless
    --allow-insecure-remote."""

    def test_refuses_remote_listen_without_auth(self):
        import subprocess
        binary = harness.need_env("CTXMEM_COMPRESSOR_SVC")
        model = harness.need_env("CTXMEM_MODEL")
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run([binary, "--listen", "0.0.0.0:0", "--metrics-listen", "",
                                "--model", model, "--store-dir", d + "/store"],
                               capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, "tokens-file|allow-insecure-remote")


if __name__ == "__main__":
    unittest.main()
