"""decoder_svc's OpenAI-compatible HTTP front (--http-listen, docs/http_api.md) with the official
`openai` Python package as the client: chat and text completions with and without memory_ids,
streamed (SSE) and not, each answer equal to the gRPC Generate answer for the same greedy
request; usage with memory entries and TTFT; the gRPC path's auth (bad token 401, another
tenant's memory 404), limits (max_tokens over the server's limit 400, a body over
--max-request-bytes 413, the tenant's stream limit 429) and metrics, with OpenAI-shaped errors."""

import json
import time
import unittest
import urllib.error
import urllib.request

import harness
from harness import ClusterTestCase

try:
    import openai
except ImportError:  # scripts/setup.sh installs it (PY_PKGS)
    openai = None

TOKEN_A = "openai-alice-token-0123456789abcdef"
TOKEN_B = "openai-bob-token-fedcba9876543210"
MAX_NEW_TOKENS = 48  # the decoder's --max-new-tokens
MAX_REQUEST_BYTES = 65536
QUESTION = "Who is speaking in this passage?"
SMALL_CONFIG = dict(harness.SMALL_CONFIG)


@unittest.skipIf(openai is None, "the openai package is not installed (scripts/setup.sh)")
class OpenAiHttpTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("openai")
        tokens = c.write_tokens([(TOKEN_A, "alice"), (TOKEN_B, "bob")])
        cls.comp = c.start_compressor(tokens_file=tokens)
        cls.dec = c.start_decoder(
            [cls.comp], tokens_file=tokens,
            extra=["--http-listen", "127.0.0.1:0", "--max-new-tokens", str(MAX_NEW_TOKENS),
                   "--max-request-bytes", str(MAX_REQUEST_BYTES), "--max-streams-per-tenant",
                   "1"])
        assert cls.dec.http_addr, "decoder_svc printed no http= address"
        cls.base_url = f"http://{cls.dec.http_addr}/v1"
        cls.grpc_a = harness.Client(cls.comp.grpc_addr, cls.dec.grpc_addr, token=TOKEN_A,
                                    timeout=300)
        cls.addClassCleanup(cls.grpc_a.close)
        cls.a = cls.openai_client(TOKEN_A)
        cls.b = cls.openai_client(TOKEN_B)
        cls.model = cls.a.models.list().data[0].id
        cls.mem = cls.grpc_a.compress(harness.book_text(400, 900), SMALL_CONFIG).memory_id

    @classmethod
    def openai_client(cls, token):
        # No retries: a 429 or 5xx must reach the test as it is.
        return openai.OpenAI(base_url=cls.base_url, api_key=token, max_retries=0, timeout=300)

    def chat(self, client=None, memory_ids=None, **kw):
        kw.setdefault("max_tokens", 12)
        kw.setdefault("temperature", 0)
        extra = {"memory_ids": memory_ids} if memory_ids is not None else None
        return (client or self.a).chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": QUESTION}], extra_body=extra,
            **kw)

    def raw_post(self, path, body, token=TOKEN_A):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base_url}{path}", data=data, method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def assertOpenAiError(self, body, code_name):
        self.assertEqual(set(body), {"error"})
        err = body["error"]
        self.assertEqual(set(err), {"message", "type", "param", "code"})
        self.assertEqual(err["code"], code_name)
        self.assertTrue(err["message"])

    def test_models_lists_the_served_model(self):
        models = self.a.models.list().data
        self.assertEqual(len(models), 1)
        self.assertEqual(models[0].owned_by, "ctxmem")
        self.assertTrue(models[0].id)
        with self.assertRaises(openai.AuthenticationError):
            self.openai_client("not-a-token-0123456789").models.list()

    def test_chat_with_memory_equals_grpc(self):
        resp = self.chat(memory_ids=[self.mem])
        ref = self.grpc_a.ask(self.mem, QUESTION, max_tokens=12)  # greedy, the gRPC path
        self.assertTrue(ref.text)
        self.assertEqual(resp.choices[0].message.content, ref.text)
        self.assertEqual(resp.choices[0].message.role, "assistant")
        self.assertEqual(resp.object, "chat.completion")
        self.assertEqual(resp.model, self.model)
        self.assertEqual(resp.choices[0].finish_reason,
                         "length" if ref.stop_reason == "max_tokens" else "stop")
        u = resp.usage
        self.assertEqual(u.prompt_tokens, ref.usage.prompt_tokens)
        self.assertEqual(u.completion_tokens, ref.usage.generated_tokens)
        self.assertEqual(u.total_tokens, u.prompt_tokens + u.completion_tokens)
        self.assertEqual(u.model_extra["memory_entries"], ref.usage.memory_entries)
        self.assertGreater(u.model_extra["memory_entries"], 0)
        self.assertGreater(u.model_extra["ttft_seconds"], 0)
        self.assertTrue(resp.id.startswith("chatcmpl-"))
        self.assertEqual(resp.model_extra["ctxmem"]["request_id"], resp.id[len("chatcmpl-"):])

    def test_chat_without_memory_equals_grpc(self):
        resp = self.chat()
        ref = self.grpc_a.ask(None, QUESTION, max_tokens=12)
        self.assertEqual(resp.choices[0].message.content, ref.text)
        self.assertEqual(resp.usage.model_extra["memory_entries"], 0)
        self.assertNotEqual(ref.text, self.grpc_a.ask(self.mem, QUESTION, max_tokens=12).text,
                            "the memory should change the answer")

    def test_chat_streaming_equals_non_streaming(self):
        whole = self.chat(memory_ids=[self.mem]).choices[0].message.content
        before = self.dec.metric("ctxmem_ttft_seconds_count", source="memory")
        chunks = list(self.chat(memory_ids=[self.mem], stream=True,
                                stream_options={"include_usage": True}))
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, whole)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        self.assertIn(finishes[-1], ("stop", "length"))
        self.assertTrue(all(f is None for f in finishes[:-1]))
        self.assertEqual(chunks[-1].choices, [])  # include_usage: the last chunk has usage
        self.assertGreater(chunks[-1].usage.completion_tokens, 0)
        self.assertGreater(chunks[-1].usage.model_extra["memory_entries"], 0)
        self.assertEqual(len({c.id for c in chunks}), 1)
        # The same metrics as gRPC: one more memory-backed TTFT observation.
        self.assertEqual(self.dec.metric("ctxmem_ttft_seconds_count", source="memory"),
                         before + 1)
        # Without include_usage no chunk carries usage.
        plain = list(self.chat(stream=True))
        self.assertTrue(all(c.usage is None for c in plain))

    def test_completions_equal_grpc_raw_prompt(self):
        prompt = "The capital of France is"
        ref = self.grpc_a.generate(None, prompt, max_tokens=8).text()
        resp = self.a.completions.create(model=self.model, prompt=prompt, max_tokens=8,
                                         temperature=0)
        self.assertEqual(resp.object, "text_completion")
        self.assertEqual(resp.choices[0].text, ref)
        streamed = "".join(c.choices[0].text for c in self.a.completions.create(
            model=self.model, prompt=prompt, max_tokens=8, temperature=0, stream=True)
            if c.choices)
        self.assertEqual(streamed, ref)
        # With a memory, through extra_body like the chat endpoint.
        ref_mem = self.grpc_a.generate(self.mem, prompt, max_tokens=8).text()
        resp = self.a.completions.create(model=self.model, prompt=prompt, max_tokens=8,
                                         temperature=0, extra_body={"memory_ids": [self.mem]})
        self.assertEqual(resp.choices[0].text, ref_mem)

    def test_bad_token_is_401(self):
        before = self.dec.metric("ctxmem_requests_total", method="ChatCompletions",
                                 code="UNAUTHENTICATED")
        for client in (self.openai_client("wrong-token-0123456789abcdef"),):
            with self.assertRaises(openai.AuthenticationError) as cm:
                self.chat(client=client, memory_ids=[self.mem])
            self.assertEqual(cm.exception.status_code, 401)
            self.assertEqual(cm.exception.body["type"], "authentication_error")
            self.assertEqual(cm.exception.body["code"], "UNAUTHENTICATED")
        status, body = self.raw_post("/chat/completions", {"model": self.model, "messages": []},
                                     token="")
        self.assertEqual(status, 401)  # authentication comes before validation
        self.assertOpenAiError(body, "UNAUTHENTICATED")
        self.assertEqual(self.dec.metric("ctxmem_requests_total", method="ChatCompletions",
                                         code="UNAUTHENTICATED"), before + 2)

    def test_other_tenants_memory_is_404(self):
        for stream in (False, True):
            with self.subTest(stream=stream), self.assertRaises(openai.NotFoundError) as cm:
                resp = self.chat(client=self.b, memory_ids=[self.mem], stream=stream)
                list(resp) if stream else None
            self.assertEqual(cm.exception.status_code, 404)
            self.assertEqual(cm.exception.body["code"], "NOT_FOUND")
        # Reads like a memory nobody has.
        with self.assertRaises(openai.NotFoundError) as other:
            self.chat(client=self.b, memory_ids=[self.mem])
        with self.assertRaises(openai.NotFoundError) as nobody:
            self.chat(client=self.b, memory_ids=["ef" * 32])
        self.assertEqual(other.exception.body["message"].replace(self.mem, "ID"),
                         nobody.exception.body["message"].replace("ef" * 32, "ID"))

    def test_limits(self):
        with self.assertRaises(openai.BadRequestError) as cm:
            self.chat(max_tokens=MAX_NEW_TOKENS + 1)
        self.assertEqual(cm.exception.status_code, 400)
        self.assertEqual(cm.exception.body["code"], "RESOURCE_EXHAUSTED")
        self.assertIn(str(MAX_NEW_TOKENS), cm.exception.body["message"])
        status, body = self.raw_post("/completions", b'{"model": "' + b"x" * MAX_REQUEST_BYTES +
                                     b'"}')
        self.assertEqual(status, 413)
        self.assertOpenAiError(body, "RESOURCE_EXHAUSTED")

    def test_bad_requests_are_400_or_404(self):
        for body, status, code in [
            (b"{not json", 400, "INVALID_ARGUMENT"),
            ({"model": self.model}, 400, "INVALID_ARGUMENT"),  # no messages
            ({"model": self.model, "messages": [{"role": "wizard", "content": "hi"}]}, 400,
             "INVALID_ARGUMENT"),
            ({"model": self.model, "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400,
             "INVALID_ARGUMENT"),
            ({"model": self.model, "messages": [{"role": "user", "content": "hi"}],
              "memory_ids": ["not-an-id"]}, 400, "INVALID_ARGUMENT"),
            ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, 404,
             "NOT_FOUND"),
        ]:
            with self.subTest(body=body):
                got, err = self.raw_post("/chat/completions", body)
                self.assertEqual(got, status, err)
                self.assertOpenAiError(err, code)
        got, err = self.raw_post("/no/such/route", {})
        self.assertEqual(got, 404)
        self.assertOpenAiError(err, "NOT_FOUND")

    def test_stream_limit_is_429_and_a_closed_stream_frees_it(self):
        stream = self.chat(memory_ids=[self.mem], stream=True, max_tokens=MAX_NEW_TOKENS)
        next(iter(stream))  # the stream is open: the tenant's one slot is taken
        with self.assertRaises(openai.RateLimitError) as cm:
            self.chat()
        self.assertEqual(cm.exception.status_code, 429)
        self.assertEqual(cm.exception.body["type"], "rate_limit_error")
        stream.close()  # the client goes away: generation stops, the slot comes back
        deadline = time.monotonic() + 120
        while self.dec.metric("ctxmem_generate_streams_active") > 0:
            self.assertLess(time.monotonic(), deadline, "the closed stream was not cancelled")
            time.sleep(0.2)
        self.assertTrue(self.chat(max_tokens=2).choices[0].message.content is not None)


if __name__ == "__main__":
    unittest.main()
