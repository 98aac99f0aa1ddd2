"""Client API of the ctxmem services.

    from ctxmem_client import Client
    with Client(compressor="127.0.0.1:50051", decoder="127.0.0.1:50052", token=None) as c:
        done = c.compress_file("book.txt", {"pruner": "tova", "memory_size": 256},
                               on_progress=lambda p: print(p.tokens_read))
        print(c.ask(done.memory_id, "Who is Mr. Darcy?").text)

Every RPC failure raises CtxmemError (code, details, method). Nothing here keeps state across
calls except the channels, so one client may be used from several threads.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import grpc

from ._stubs import compressor_pb2, compressor_pb2_grpc, decoder_pb2, decoder_pb2_grpc, memory_pb2

DEFAULT_COMPRESSOR = "127.0.0.1:50051"
DEFAULT_DECODER = "127.0.0.1:50052"
# Text is sent in pieces of this many characters (a few hundred KB at most per message, far
# below the servers' default 4 MiB message limit).
DEFAULT_PIECE_CHARS = 64 * 1024
DEFAULT_TOKEN_PIECE = 16 * 1024
# Status codes a blob download retries on (from the offset reached so far).
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
              grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL)

MemoryInfo = memory_pb2.MemoryInfo
CompressionConfig = memory_pb2.CompressionConfig


class CtxmemError(Exception):
    """A failed RPC (or a client-side check) with its gRPC status code and message."""

    def __init__(self, code: grpc.StatusCode, details: str, method: str = ""):
        self.code = code
        self.details = details
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{code.name}: {details}")

    @classmethod
    def from_rpc(cls, e: grpc.RpcError, method: str) -> "CtxmemError":
        code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
        details = e.details() if hasattr(e, "details") else str(e)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "", method)


@dataclass
class CompressProgress:
    tokens_read: int = 0
    tokens_total: int = 0  # 0 until the server knows the length (upload ended)
    chunks_done: int = 0
    memory_len: int = 0
    bytes_sent: int = 0  # UTF-8 bytes (or token ids x 4) uploaded so far
    queue_depth: int = 0  # from the `accepted` event
    request_id: str = ""


@dataclass
class CompressResult:
    memory: Any  # memory_pb2.MemoryInfo
    existed: bool
    timings: Any  # memory_pb2.CompressTimings
    request_id: str = ""

    @property
    def memory_id(self) -> str:
        return self.memory.memory_id


@dataclass
class DownloadResult:
    path: str
    total_bytes: int
    sha256: str
    resumed_from: int = 0
    attempts: int = 1


ProgressCallback = Callable[[CompressProgress], Optional[bool]]
TextSource = Union[str, bytes, io.IOBase, Iterable[Union[str, bytes]]]


def make_config(config: Union[None, Mapping[str, Any], Any] = None, **overrides: Any) -> Any:
    """A CompressionConfig from a dict (field names of memory.proto), an existing message, or
    keyword overrides. Unknown field names raise ValueError naming the valid ones."""
    msg = memory_pb2.CompressionConfig()
    if config is not None and not isinstance(config, Mapping):
        msg.CopyFrom(config)
        config = {}
    fields = {f.name for f in memory_pb2.CompressionConfig.DESCRIPTOR.fields}
    for key, value in {**dict(config or {}), **overrides}.items():
        if value is None:
            continue
        if key not in fields:
            raise ValueError(f"unknown compression config field {key!r}; valid: {sorted(fields)}")
        setattr(msg, key, value)
    return msg


def _credentials(tls: bool, root_certificates: Optional[bytes], private_key: Optional[bytes],
                 certificate_chain: Optional[bytes]):
    if not tls and not (root_certificates or private_key or certificate_chain):
        return None
    return grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                        private_key=private_key,
                                        certificate_chain=certificate_chain)


def _read_optional(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


class _Endpoint:
    """One channel plus the per-call metadata (bearer token) and default timeout."""

    def __init__(self, target: str, *, token: Optional[str] = None, tls: bool = False,
                 root_certificates: Optional[bytes] = None, private_key: Optional[bytes] = None,
                 certificate_chain: Optional[bytes] = None, server_name: Optional[str] = None,
                 max_message_bytes: int = 64 << 20, timeout: Optional[float] = None,
                 channel: Optional[grpc.Channel] = None):
        self.target = target
        self.timeout = timeout
        self.metadata: List = [("authorization", f"Bearer {token}")] if token else []
        if channel is not None:
            self.channel = channel
            return
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        creds = _credentials(tls, root_certificates, private_key, certificate_chain)
        if creds is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            self.channel = grpc.secure_channel(target, creds, options=options)

    def close(self) -> None:
        self.channel.close()

    def wait_ready(self, timeout: float) -> None:
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise CtxmemError(grpc.StatusCode.UNAVAILABLE,
                              f"{self.target} not reachable within {timeout:g} s", "connect")

    def health(self, service: str = "", timeout: float = 5.0) -> str:
        """grpc.health.v1.Health/Check without generated stubs (the request is a single string
        field, the response a single enum): "SERVING", "NOT_SERVING", "UNKNOWN", ..."""
        request = b""
        if service:
            data = service.encode()
            request = b"\x0a" + _varint(len(data)) + data
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                         request_serializer=lambda b: b,
                                         response_deserializer=lambda b: b)
        try:
            raw = check(request, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as e:
            raise CtxmemError.from_rpc(e, "Health/Check") from None
        status = 0
        if len(raw) >= 2 and raw[0] == 0x08:
            status = raw[1]
        return {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}.get(
            status, f"STATUS_{status}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text_pieces(source: TextSource, piece_chars: int) -> Iterator[str]:
    """Yields str pieces of at most piece_chars characters from a str, bytes, binary or text
    file, or an iterable of str/bytes. Bytes are decoded incrementally (a UTF-8 character may
    be split across pieces); invalid UTF-8 raises ValueError naming the byte offset."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0

    def decode(data: bytes, final: bool = False) -> str:
        nonlocal offset
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError as e:
            raise ValueError(f"context is not valid UTF-8: {e.reason} at byte "
                             f"{offset + e.start}") from None
        offset += len(data)
        return text

    def split(text: str) -> Iterator[str]:
        for i in range(0, len(text), piece_chars):
            yield text[i:i + piece_chars]

    if isinstance(source, str):
        yield from split(source)
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield from split(decode(bytes(source), final=True))
        return
    if hasattr(source, "read"):
        while True:
            data = source.read(piece_chars)
            if not data:
                break
            text = data if isinstance(data, str) else decode(data)
            if text:
                yield text
        tail = decode(b"", final=True)
        if tail:
            yield tail
        return
    for piece in source:
        text = piece if isinstance(piece, str) else decode(bytes(piece))
        if text:
            yield from split(text)
    tail = decode(b"", final=True)
    if tail:
        yield tail


class CompressorClient:
    """Client of ctxmem.v1.Compressor: compress, stat, ls, rm, get_memory, health."""

    def __init__(self, target: str = DEFAULT_COMPRESSOR, **endpoint_options: Any):
        self._ep = _Endpoint(target, **endpoint_options)
        self._stub = compressor_pb2_grpc.CompressorStub(self._ep.channel)

    @property
    def target(self) -> str:
        return self._ep.target

    def close(self) -> None:
        self._ep.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        self._ep.wait_ready(timeout)

    def health(self, service: str = "", timeout: float = 5.0) -> str:
        return self._ep.health(service, timeout)

    def _timeout(self, timeout: Optional[float]) -> Optional[float]:
        return timeout if timeout is not None else self._ep.timeout

    # Compress ---------------------------------------------------------------------------
    def compress(self, source: TextSource, config: Union[None, Mapping[str, Any], Any] = None, *,
                 label: str = "", expected_tokens: int = 0, add_bos: bool = False,
                 on_progress: Optional[ProgressCallback] = None,
                 piece_chars: int = DEFAULT_PIECE_CHARS, timeout: Optional[float] = None,
                 cancel: Optional[threading.Event] = None,
                 base_memory_id: str = "") -> CompressResult:
        """Compresses text streamed from `source` (str, bytes, file object opened in text or
        binary mode, or an iterable of str/bytes pieces; nothing is held whole beyond one piece).
        on_progress gets a CompressProgress after `accepted` and every chunk; returning False
        from it, or setting `cancel`, cancels the job (CtxmemError CANCELLED, no blob kept).
        base_memory_id: append the text to that sealed memory (config None = the base's)."""
        if piece_chars < 1:
            raise ValueError("piece_chars must be >= 1")

        def pieces():
            for text in _text_pieces(source, piece_chars):
                data = text.encode("utf-8")
                yield compressor_pb2.CompressRequest(text=data), len(data)

        return self._compress(pieces(), config, label, expected_tokens, add_bos, on_progress,
                              timeout, cancel, base_memory_id)

    def compress_file(self, path: Union[str, os.PathLike], config=None, **kwargs: Any) -> CompressResult:
        """compress() of a UTF-8 file read in pieces; label defaults to the file name."""
        kwargs.setdefault("label", os.path.basename(os.fspath(path))[:256])
        with open(path, "rb") as f:
            return self.compress(f, config, **kwargs)

    def compress_tokens(self, ids: Iterable[int], config=None, *, piece: int = DEFAULT_TOKEN_PIECE,
                        label: str = "", expected_tokens: int = 0,
                        on_progress: Optional[ProgressCallback] = None,
                        timeout: Optional[float] = None,
                        cancel: Optional[threading.Event] = None,
                        base_memory_id: str = "") -> CompressResult:
        """Compresses token ids of the server's tokenizer, sent `piece` ids per message
        (appended to the memory `base_memory_id` when given)."""

        def pieces():
            batch: List[int] = []
            for i in ids:
                batch.append(int(i))
                if len(batch) >= piece:
                    yield compressor_pb2.CompressRequest(
                        tokens=memory_pb2.TokenIds(ids=batch)), 4 * len(batch)
                    batch = []
            if batch:
                yield compressor_pb2.CompressRequest(
                    tokens=memory_pb2.TokenIds(ids=batch)), 4 * len(batch)

        return self._compress(pieces(), config, label, expected_tokens, False, on_progress,
                              timeout, cancel, base_memory_id)

    def _compress(self, pieces, config, label, expected_tokens, add_bos, on_progress, timeout,
                  cancel, base_memory_id="") -> CompressResult:
        start = compressor_pb2.CompressStart(config=make_config(config), client_label=label,
                                             expected_tokens=expected_tokens, add_bos=add_bos,
                                             base_memory_id=base_memory_id)
        progress = CompressProgress()
        call_box: List[Any] = []
        upload_error: List[BaseException] = []

        def requests():
            yield compressor_pb2.CompressRequest(start=start)
            try:
                for msg, n in pieces:
                    if cancel is not None and cancel.is_set():
                        return
                    progress.bytes_sent += n
                    yield msg
            except Exception as e:  # bad local input (e.g. invalid UTF-8): stop the call
                upload_error.append(e)
                if call_box:
                    call_box[0].cancel()

        call = self._stub.Compress(requests(), timeout=self._timeout(timeout),
                                   metadata=self._ep.metadata)
        call_box.append(call)
        watcher = None
        if cancel is not None:
            def watch():
                while not cancel.wait(0.05):
                    if call.done():
                        return
                call.cancel()
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
        done = None
        try:
            for event in call:
                kind = event.WhichOneof("event")
                if kind == "accepted":
                    progress.queue_depth = event.accepted.queue_depth
                    progress.request_id = event.accepted.request_id
                elif kind == "progress":
                    p = event.progress
                    progress.tokens_read = p.tokens_read
                    progress.tokens_total = p.tokens_total
                    progress.chunks_done = p.chunks_done
                    progress.memory_len = p.memory_len
                elif kind == "done":
                    done = event.done
                    continue
                if on_progress is not None and on_progress(progress) is False:
                    call.cancel()
        except grpc.RpcError as e:
            if upload_error:
                raise upload_error[0]
            raise CtxmemError.from_rpc(e, "Compress") from None
        if upload_error:
            raise upload_error[0]
        if done is None:
            raise CtxmemError(grpc.StatusCode.INTERNAL, "stream ended without a `done` event",
                              "Compress")
        return CompressResult(memory=done.memory, existed=done.existed, timings=done.timings,
                              request_id=progress.request_id)

    # Memories ---------------------------------------------------------------------------
    def stat(self, memory_id: str, timeout: Optional[float] = None):
        try:
            return self._stub.StatMemory(compressor_pb2.StatMemoryRequest(memory_id=memory_id),
                                         timeout=self._timeout(timeout), metadata=self._ep.metadata)
        except grpc.RpcError as e:
            raise CtxmemError.from_rpc(e, "StatMemory") from None

    def list_page(self, page_size: int = 100, page_token: str = "", timeout: Optional[float] = None):
        try:
            return self._stub.ListMemories(
                compressor_pb2.ListMemoriesRequest(page_size=page_size, page_token=page_token),
                timeout=self._timeout(timeout), metadata=self._ep.metadata)
        except grpc.RpcError as e:
            raise CtxmemError.from_rpc(e, "ListMemories") from None

    def ls(self, page_size: int = 100) -> Iterator[Any]:
        """Every memory of the caller's tenant, ascending memory_id, fetched page by page."""
        token = ""
        while True:
            page = self.list_page(page_size, token)
            yield from page.memories
            token = page.next_page_token
            if not token:
                return

    def rm(self, memory_id: str, timeout: Optional[float] = None) -> None:
        try:
            self._stub.DeleteMemory(compressor_pb2.DeleteMemoryRequest(memory_id=memory_id),
                                    timeout=self._timeout(timeout), metadata=self._ep.metadata)
        except grpc.RpcError as e:
            raise CtxmemError.from_rpc(e, "DeleteMemory") from None

    def iter_memory(self, memory_id: str, offset: int = 0, max_chunk_bytes: int = 0,
                    timeout: Optional[float] = None) -> Iterator[Any]:
        """The raw BlobChunk stream of GetMemory from `offset`."""
        call = self._stub.GetMemory(
            compressor_pb2.GetMemoryRequest(memory_id=memory_id, offset=offset,
                                            max_chunk_bytes=max_chunk_bytes),
            timeout=self._timeout(timeout), metadata=self._ep.metadata)
        try:
            yield from call
        except grpc.RpcError as e:
            raise CtxmemError.from_rpc(e, "GetMemory") from None
        finally:
            call.cancel()

    def get_memory(self, memory_id: str, dest: Union[str, os.PathLike], *, resume: bool = True,
                   max_chunk_bytes: int = 0, retries: int = 3,
                   on_progress: Optional[Callable[[int, int], None]] = None,
                   timeout: Optional[float] = None) -> DownloadResult:
        """Downloads the sealed blob to `dest`. Bytes go to `dest`.part first; with resume, an
        existing .part is continued from its size (and on a transient failure the download
        resumes from where it stopped, up to `retries` times). The assembled file is checked
        against the SHA-256 of the last chunk before it is renamed to `dest`; a mismatch
        removes the .part and raises DATA_LOSS. on_progress(bytes_so_far, total_bytes)."""
        dest = os.fspath(dest)
        part = dest + ".part"
        if not resume and os.path.exists(part):
            os.remove(part)
        resumed_from = os.path.getsize(part) if os.path.exists(part) else 0
        attempts = 0
        total = None
        sha = None
        while True:
            attempts += 1
            offset = os.path.getsize(part) if os.path.exists(part) else 0
            try:
                with open(part, "ab") as out:
                    for chunk in self.iter_memory(memory_id, offset, max_chunk_bytes, timeout):
                        if chunk.offset != offset:
                            raise CtxmemError(grpc.StatusCode.DATA_LOSS,
                                              f"chunk at offset {chunk.offset}, expected {offset}",
                                              "GetMemory")
                        out.write(chunk.data)
                        offset += len(chunk.data)
                        total = chunk.total_bytes
                        if on_progress is not None:
                            on_progress(offset, total)
                        if chunk.sha256:
                            sha = chunk.sha256
                break
            except CtxmemError as e:
                if e.code == grpc.StatusCode.OUT_OF_RANGE and offset > 0 and resumed_from:
                    # The .part is longer than the blob: a different blob; start over.
                    os.remove(part)
                    resumed_from = 0
                    continue
                if e.code in _RETRYABLE and attempts <= retries:
                    time.sleep(min(2.0, 0.2 * attempts))
                    continue
                raise
        if sha is None:
            raise CtxmemError(grpc.StatusCode.DATA_LOSS, "stream ended without the final sha256",
                              "GetMemory")
        h = hashlib.sha256()
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        size = os.path.getsize(part)
        if h.hexdigest() != sha.lower() or (total is not None and size != total):
            os.remove(part)
            raise CtxmemError(grpc.StatusCode.DATA_LOSS,
                              f"downloaded blob does not match: sha256 {h.hexdigest()} size {size}, "
                              f"server says sha256 {sha} size {total}", "GetMemory")
        os.replace(part, dest)
        return DownloadResult(path=dest, total_bytes=size, sha256=sha, resumed_from=resumed_from,
                              attempts=attempts)


class GenerateStream:
    """An in-progress Generate call: iterate for TextDelta messages; `done` (GenerateDone) is
    set when the stream ends; cancel() stops it server-side."""

    def __init__(self, call):
        self._call = call
        self.done = None
        self.first_token_seconds: Optional[float] = None  # client-side TTFT
        self._t0 = time.perf_counter()

    def __iter__(self):
        try:
            for event in self._call:
                kind = event.WhichOneof("event")
                if kind == "delta":
                    if self.first_token_seconds is None and (event.delta.token_ids or event.delta.text):
                        self.first_token_seconds = time.perf_counter() - self._t0
                    yield event.delta
                elif kind == "done":
                    self.done = event.done
        except grpc.RpcError as e:
            raise CtxmemError.from_rpc(e, "Generate") from None
        if self.done is None:
            raise CtxmemError(grpc.StatusCode.INTERNAL, "stream ended without a `done` event",
                              "Generate")

    def text(self) -> str:
        """Consumes the stream; the whole answer."""
        for _ in self:
            pass
        return self.done.text

    def cancel(self) -> None:
        self._call.cancel()


class DecoderClient:
    """Client of ctxmem.v1.Decoder: generate (streaming), ask (chat), score, health."""

    def __init__(self, target: str = DEFAULT_DECODER, **endpoint_options: Any):
        self._ep = _Endpoint(target, **endpoint_options)
        self._stub = decoder_pb2_grpc.DecoderStub(self._ep.channel)

    @property
    def target(self) -> str:
        return self._ep.target

    def close(self) -> None:
        self._ep.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        self._ep.wait_ready(timeout)

    def health(self, service: str = "", timeout: float = 5.0) -> str:
        return self._ep.health(service, timeout)

    @staticmethod
    def _ids(memory_ids: Union[None, str, Sequence[str]]) -> List[str]:
        if memory_ids is None:
            return []
        if isinstance(memory_ids, str):
            return [memory_ids]
        return list(memory_ids)

    def generate(self, memory_ids: Union[None, str, Sequence[str]], prompt: Optional[str] = None, *,
                 messages: Optional[Sequence[Union[Mapping[str, str], Sequence[str]]]] = None,
                 max_tokens: int = 0, temperature: float = 0.0, top_p: float = 0.0,
                 top_k: int = 0, seed: int = 0, repetition_penalty: float = 0.0,
                 stop: Sequence[str] = (), timeout: Optional[float] = None) -> GenerateStream:
        """Starts a Generate stream on the memories (in order) with a raw `prompt` or chat
        `messages` ([{"role": ..., "content": ...}] or [(role, content)])."""
        if (prompt is None) == (messages is None):
            raise ValueError("give exactly one of prompt= or messages=")
        req = decoder_pb2.GenerateRequest(
            memory_ids=self._ids(memory_ids), max_tokens=max_tokens, stop=list(stop),
            sampling=decoder_pb2.SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k,
                                                seed=seed, repetition_penalty=repetition_penalty))
        if prompt is not None:
            req.prompt = prompt
        else:
            for m in messages:
                role, content = (m["role"], m["content"]) if isinstance(m, Mapping) else m
                req.chat.messages.add(role=role, content=content)
        call = self._stub.Generate(req, timeout=timeout if timeout is not None else self._ep.timeout,
                                   metadata=self._ep.metadata)
        return GenerateStream(call)

    def ask(self, memory_ids: Union[None, str, Sequence[str]], question: str, *,
            system: Optional[str] = None, on_text: Optional[Callable[[str], None]] = None,
            **kwargs: Any):
        """One chat question on the memories; on_text gets each text delta as it streams.
        Returns the GenerateDone (text, stop_reason, usage, timings)."""
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": question}]
        stream = self.generate(memory_ids, messages=messages, **kwargs)
        for delta in stream:
            if on_text is not None and delta.text:
                on_text(delta.text)
        return stream.done

    def score(self, memory_ids: Union[None, str, Sequence[str]],
              continuation: Union[str, Sequence[int]], *, prompt: str = "",
              timeout: Optional[float] = None):
        """Log-likelihood of `continuation` (text or token ids) after the memories and prompt:
        ScoreResponse(n_scored, total_nll, perplexity, token_logprobs, timings)."""
        req = decoder_pb2.ScoreRequest(memory_ids=self._ids(memory_ids), prompt=prompt)
        if isinstance(continuation, str):
            req.text = continuation
        else:
            req.tokens.ids.extend(int(i) for i in continuation)
        try:
            return self._stub.Score(req, timeout=timeout if timeout is not None else self._ep.timeout,
                                    metadata=self._ep.metadata)
        except grpc.RpcError as e:
            raise CtxmemError.from_rpc(e, "Score") from None


class Client:
    """Both services behind one object (same token and TLS settings for both unless
    compressor_options/decoder_options override them)."""

    def __init__(self, compressor: str = DEFAULT_COMPRESSOR, decoder: str = DEFAULT_DECODER, *,
                 token: Optional[str] = None, tls: bool = False,
                 root_certificates: Optional[bytes] = None, private_key: Optional[bytes] = None,
                 certificate_chain: Optional[bytes] = None, server_name: Optional[str] = None,
                 timeout: Optional[float] = None,
                 compressor_options: Optional[Dict[str, Any]] = None,
                 decoder_options: Optional[Dict[str, Any]] = None):
        common = dict(token=token, tls=tls, root_certificates=root_certificates,
                      private_key=private_key, certificate_chain=certificate_chain,
                      server_name=server_name, timeout=timeout)
        self.compressor = CompressorClient(compressor, **{**common, **(compressor_options or {})})
        self.decoder = DecoderClient(decoder, **{**common, **(decoder_options or {})})

    @classmethod
    def from_files(cls, compressor: str = DEFAULT_COMPRESSOR, decoder: str = DEFAULT_DECODER, *,
                   ca_file: Optional[str] = None, cert_file: Optional[str] = None,
                   key_file: Optional[str] = None, **kwargs: Any) -> "Client":
        """As the constructor, reading PEM files for the CA and the client cert/key (mTLS)."""
        return cls(compressor, decoder, root_certificates=_read_optional(ca_file),
                   certificate_chain=_read_optional(cert_file),
                   private_key=_read_optional(key_file), **kwargs)

    def close(self) -> None:
        self.compressor.close()
        self.decoder.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Delegation: the verbs of both services.
    def compress(self, *a, **k) -> CompressResult:
        return self.compressor.compress(*a, **k)

    def compress_file(self, *a, **k) -> CompressResult:
        return self.compressor.compress_file(*a, **k)

    def compress_tokens(self, *a, **k) -> CompressResult:
        return self.compressor.compress_tokens(*a, **k)

    def stat(self, *a, **k):
        return self.compressor.stat(*a, **k)

    def ls(self, *a, **k):
        return self.compressor.ls(*a, **k)

    def rm(self, *a, **k) -> None:
        return self.compressor.rm(*a, **k)

    def get_memory(self, *a, **k) -> DownloadResult:
        return self.compressor.get_memory(*a, **k)

    def generate(self, *a, **k) -> GenerateStream:
        return self.decoder.generate(*a, **k)

    def ask(self, *a, **k):
        return self.decoder.ask(*a, **k)

    def score(self, *a, **k):
        return self.decoder.score(*a, **k)
