"""Faults under load (loopback only, bounded): compressor_svc + decoder_svc serve concurrent
Compress and Generate streams while this script SIGKILLs and restarts each server in turn
(same ports, same store and cache directories), half of every client's streams are cancelled
midway, and some requests carry deadlines too short to meet. Records requests and errors by
status code per RPC, each kill's recovery time (SIGKILL to the restarted server answering
health, and to the first successful request of that RPC after it), and data lost: every
memory a client was told is sealed must still be in the store, download with its SHA-256 and
verify (both checksums recomputed here with hashlib, independently of the C++ code) after the
run. Writes <out>/fault_load.json and .md; exits 1 when any sealed blob was lost.

  bench/run_fault_load_bench.sh          # builds the servers, runs this with the defaults
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import struct
import sys
import threading
import time
from typing import Dict, List, Optional

# loopback_bench first: it puts tests/integration (harness) on sys.path.
from loopback_bench import (add_server_args, export_server_env, git_commit, machine,
                            percentile, write_results)

import harness  # noqa: E402
from harness import grpc  # noqa: E402

CONFIG = {"pruner": "streaming_llm", "memory_type": "FM", "chunk_size": 128, "memory_size": 64,
          "n_sink_tokens": 4}
HEADER_SHA_OFFSET = 85  # docs/blob_format.md "Fixed prefix"
DATA_SHA_OFFSET = 173


def verify_blob_bytes(data: bytes) -> Optional[str]:
    """None when both checksums of a memory blob hold, else what is wrong."""
    if len(data) < 8:
        return "shorter than 8 bytes"
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or 8 + n < DATA_SHA_OFFSET + 64:
        return f"header length {n} out of bounds"
    stored_header = data[HEADER_SHA_OFFSET:HEADER_SHA_OFFSET + 64].decode("ascii", "replace")
    stored_data = data[DATA_SHA_OFFSET:DATA_SHA_OFFSET + 64].decode("ascii", "replace")
    if hashlib.sha256(data[8 + n:]).hexdigest() != stored_data:
        return "data checksum mismatch"
    zeroed = data[:HEADER_SHA_OFFSET] + b"0" * 64 + data[HEADER_SHA_OFFSET + 64:8 + n]
    if hashlib.sha256(zeroed).hexdigest() != stored_header:
        return "header checksum mismatch"
    return None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: Dict[str, int] = {}
        self.codes: Dict[str, Dict[str, int]] = {}
        self.cancelled_by_client: Dict[str, int] = {}
        self.deadline_requests: Dict[str, int] = {}
        self.last_ok: Dict[str, float] = {}
        self.ok_times: Dict[str, List[float]] = {}
        self.sealed: Dict[str, float] = {}  # memory_id -> when the client was told
        self.examples: Dict[str, str] = {}  # "rpc code" -> the first error message seen

    def record(self, rpc: str, code: str, message: str = ""):
        now = time.monotonic()
        with self.lock:
            self.requests[rpc] = self.requests.get(rpc, 0) + 1
            c = self.codes.setdefault(rpc, {})
            c[code] = c.get(code, 0) + 1
            if code == "OK":
                self.ok_times.setdefault(rpc, []).append(now)
            elif message:
                self.examples.setdefault(f"{rpc} {code}", message[:200])

    def bump(self, table: Dict[str, int], rpc: str):
        with self.lock:
            table[rpc] = table.get(rpc, 0) + 1

    def first_ok_after(self, rpc: str, t: float) -> Optional[float]:
        with self.lock:
            later = [x for x in self.ok_times.get(rpc, []) if x >= t]
        return min(later) - t if later else None


def message_of(e: Exception) -> str:
    if isinstance(e, harness.CtxmemError):
        return e.details
    if isinstance(e, grpc.RpcError):
        return e.details() or ""
    return str(e)


def code_of(e: Exception) -> str:
    if isinstance(e, harness.CtxmemError):
        return e.code.name
    if isinstance(e, grpc.RpcError):
        return e.code().name
    return type(e).__name__


class Servers:
    """The two servers, restartable on their first ports with the same directories."""

    def __init__(self, cluster: harness.Cluster, threads: int):
        self.cluster = cluster
        self.comp = cluster.start_compressor(threads=threads, extra=["--workers", "1",
                                                                      "--queue-depth", "8"])
        self.dec = cluster.start_decoder([self.comp], threads=threads,
                                         extra=["--workers", "2", "--queue-depth", "32",
                                                "--max-streams-per-tenant", "32"])
        self.lock = threading.Lock()

    @staticmethod
    def pinned(server: harness.ServerProcess) -> harness.ServerProcess:
        args = list(server.args[1:])
        for flag, addr in (("--listen", server.grpc_addr), ("--metrics-listen",
                                                             server.metrics_addr)):
            args[args.index(flag) + 1] = addr
        return harness.ServerProcess(server.kind, server.args[0], args, server.workdir)

    def kill_and_restart(self, kind: str) -> Dict:
        with self.lock:
            old = self.comp if kind == "compressor" else self.dec
            t_kill = time.monotonic()
            old.kill()
            new = self.pinned(old)
            self.cluster.servers.append(new)
            for attempt in range(50):  # the port may take a moment to be free again
                try:
                    new.start()
                    break
                except RuntimeError:
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
                    new = self.pinned(old)
                    self.cluster.servers.append(new)
            t_ready = time.monotonic()
            if kind == "compressor":
                self.comp = new
            else:
                self.dec = new
        return {"server": kind, "t_kill": t_kill, "ready_seconds": round(t_ready - t_kill, 3)}


def compress_worker(w: int, addr: str, stats: Stats, t_end: float, rng: random.Random,
                    context_chars: int):
    i = 0
    while time.monotonic() < t_end:
        i += 1
        start_line = 100 + (w * 7919 + i * 104729) % 12000
        text = harness.book_text(start_line, context_chars)
        cancel = threading.Event()
        cancel_this = i % 2 == 0  # half the streams are cancelled by the client midway
        deadline = 1.5 if i % 5 == 0 else 300.0  # every fifth: a deadline it cannot meet
        if cancel_this:
            stats.bump(stats.cancelled_by_client, "Compress")
            threading.Timer(rng.uniform(0.2, 1.5), cancel.set).start()
        if deadline < 10:
            stats.bump(stats.deadline_requests, "Compress")
        try:
            with harness.CompressorClient(addr, timeout=deadline) as c:
                r = c.compress(text, CONFIG, label=f"fault-{w}-{i}", cancel=cancel,
                               timeout=deadline)
            stats.record("Compress", "OK")
            with stats.lock:
                stats.sealed.setdefault(r.memory_id, time.monotonic())
        except Exception as e:  # noqa: BLE001 - every outcome is recorded by its code
            code = code_of(e)
            stats.record("Compress", code, message_of(e))
            if code == "UNAVAILABLE":
                time.sleep(0.2)


def generate_worker(w: int, addr: str, memory_ids: List[str], stats: Stats, t_end: float,
                    rng: random.Random):
    i = 0
    while time.monotonic() < t_end:
        i += 1
        with stats.lock:
            sealed = list(stats.sealed)
        pool = memory_ids + sealed[-4:]
        mid = pool[(w + i) % len(pool)]
        cancel_this = i % 2 == 0
        deadline = 0.5 if i % 5 == 0 else 120.0
        if cancel_this:
            stats.bump(stats.cancelled_by_client, "Generate")
        if deadline < 10:
            stats.bump(stats.deadline_requests, "Generate")
        try:
            with harness.DecoderClient(addr, timeout=deadline) as d:
                s = d.generate(mid, messages=[{"role": "user", "content": "Who is speaking?"}],
                               max_tokens=12, timeout=deadline)
                n = 0
                for _ in s:
                    n += 1
                    if cancel_this and n >= 1:
                        s.cancel()
                if s.done is None:
                    raise harness.CtxmemError(grpc.StatusCode.CANCELLED, "no GenerateDone", "")
            stats.record("Generate", "OK")
        except Exception as e:  # noqa: BLE001
            code = code_of(e)
            stats.record("Generate", code, message_of(e))
            if code == "UNAVAILABLE":
                time.sleep(0.2)


def to_markdown(r: Dict) -> str:
    m = r["machine"]
    out = [
        "# Faults under load (compressor_svc + decoder_svc, loopback)",
        "",
        f"{r['date']}, commit {r['commit']}. Machine: {m['nproc']} CPUs ({m['cpu_model']}), "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])} (shared).",
        "",
        f"{r['duration_seconds']:g} s of load: {r['compress_workers']} Compress clients "
        f"({r['context_chars']}-char contexts, `{CONFIG['pruner']}` C={CONFIG['chunk_size']} "
        f"M={CONFIG['memory_size']}) and {r['generate_workers']} Generate clients (12 tokens). "
        "Every second stream of each client is cancelled by the client midway; every fifth "
        "request has a deadline it cannot meet (Compress 1.5 s, Generate 0.5 s). The servers are "
        f"SIGKILLed and restarted on the same ports every {r['kill_every_seconds']:g} s, "
        "alternating.",
        "",
        "| RPC | requests | cancelled by client | short deadlines | outcomes by status code |",
        "|---|---:|---:|---:|---|",
    ]
    for rpc in sorted(r["requests"]):
        codes = ", ".join(f"{k} {v}" for k, v in sorted(r["codes"][rpc].items(),
                                                          key=lambda kv: -kv[1]))
        out.append(f"| {rpc} | {r['requests'][rpc]} | {r['cancelled_by_client'].get(rpc, 0)} | "
                   f"{r['deadline_requests'].get(rpc, 0)} | {codes} |")
    out += ["", "| kill | server | restarted and healthy after (s) | first OK Compress after (s) "
            "| first OK Generate after (s) |", "|---:|---|---:|---:|---:|"]
    for k, kill in enumerate(r["kills"], 1):
        def fmt(x):
            return "-" if x is None else f"{x:.2f}"
        out.append(f"| {k} | {kill['server']} | {kill['ready_seconds']:.2f} | "
                   f"{fmt(kill['first_ok_compress_seconds'])} | "
                   f"{fmt(kill['first_ok_generate_seconds'])} |")
    out += ["", "First message seen per error:", ""]
    for key, msg in sorted(r.get("error_examples", {}).items()):
        out.append(f"- {key}: `{msg}`")
    d = r["data"]
    out += [
        "",
        f"Sealed memories acknowledged to clients: **{d['sealed_acknowledged']}**; after the run "
        f"(servers restarted once more) present in the store: {d['present']}, downloaded with a "
        f"matching SHA-256: {d['downloaded_ok']}, both checksums verified by hashlib: "
        f"{d['verified_ok']}. **Data lost: {d['lost']}**. Every blob file in the store verifies: "
        f"{d['store_files_ok']} of {d['store_files']}; quarantined: {d['quarantined']}; temp "
        f"files left after restart: {d['temp_files']}.",
        "",
        "Recovery = SIGKILL to the restarted server answering gRPC health (model load included), "
        "and to the first request of each RPC that succeeded after the kill. Reproduce: "
        "`bench/run_fault_load_bench.sh`.",
        "",
    ]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(p, "fault_load")
    p.add_argument("--duration", type=float, default=150.0, help="seconds of load (max 600)")
    p.add_argument("--kill-every", type=float, default=30.0, help="seconds between kills")
    p.add_argument("--compress-workers", type=int, default=2)
    p.add_argument("--generate-workers", type=int, default=3)
    p.add_argument("--context-chars", type=int, default=1500)
    args = p.parse_args()
    if not 0 < args.duration <= 600 or args.kill_every < 5:
        p.error("--duration must be in (0, 600] and --kill-every >= 5")
    export_server_env(args)
    mach = machine()
    rng = random.Random(13)
    cluster = harness.Cluster("fault")
    stats = Stats()
    kills: List[Dict] = []
    try:
        servers = Servers(cluster, args.threads)
        comp_addr, dec_addr = servers.comp.grpc_addr, servers.dec.grpc_addr
        with harness.Client(comp_addr, dec_addr, timeout=600) as c:
            base = c.compress(harness.book_text(200, args.context_chars), CONFIG)
            c.generate(base.memory_id, "Warm-up:", max_tokens=2).text()
        with stats.lock:
            stats.sealed[base.memory_id] = time.monotonic()
        t0 = time.monotonic()
        t_end = t0 + args.duration
        threads = [threading.Thread(target=compress_worker,
                                    args=(w, comp_addr, stats, t_end, random.Random(w),
                                          args.context_chars))
                   for w in range(args.compress_workers)]
        threads += [threading.Thread(target=generate_worker,
                                     args=(w, dec_addr, [base.memory_id], stats, t_end,
                                           random.Random(100 + w)))
                    for w in range(args.generate_workers)]
        for t in threads:
            t.start()
        kind = "compressor"
        next_kill = t0 + args.kill_every
        while next_kill < t_end - 5:
            time.sleep(max(0.0, next_kill - time.monotonic()))
            print(f"t={time.monotonic() - t0:.0f}s: SIGKILL {kind}", file=sys.stderr)
            kills.append(servers.kill_and_restart(kind))
            kind = "decoder" if kind == "compressor" else "compressor"
            next_kill += args.kill_every
        for t in threads:
            t.join()
        for kill in kills:
            kill["first_ok_compress_seconds"] = stats.first_ok_after("Compress", kill["t_kill"])
            kill["first_ok_generate_seconds"] = stats.first_ok_after("Generate", kill["t_kill"])
            kill["t_kill"] = round(kill["t_kill"] - t0, 2)
        # Data check: a clean restart of the compressor, then every acknowledged memory.
        store_dir = cluster.path("store")
        servers.kill_and_restart("compressor")
        present = downloaded = verified = 0
        lost: List[str] = []
        with harness.CompressorClient(servers.comp.grpc_addr, timeout=120) as c:
            for mid in sorted(stats.sealed):
                try:
                    c.stat(mid)
                    present += 1
                    dest = cluster.path(f"dl-{mid}.blob")
                    c.get_memory(mid, dest)
                    downloaded += 1
                    with open(dest, "rb") as f:
                        problem = verify_blob_bytes(f.read())
                    os.remove(dest)
                    if problem is None:
                        verified += 1
                    else:
                        lost.append(f"{mid}: {problem}")
                except harness.CtxmemError as e:
                    lost.append(f"{mid}: {e.code.name} {e.details}")
        blobs = [f for f in harness.blob_files(store_dir) if f.endswith(".safetensors")]
        store_ok = 0
        for f in blobs:
            with open(os.path.join(store_dir, "blobs", f), "rb") as fh:
                store_ok += verify_blob_bytes(fh.read()) is None
        qdir = os.path.join(store_dir, "quarantine")
        quarantined = len(os.listdir(qdir)) if os.path.isdir(qdir) else 0
        temps = [f for f in harness.blob_files(store_dir) if f.startswith(".tmp.")]
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git_commit(),
            "machine": mach, "loadavg_end": list(os.getloadavg()),
            "duration_seconds": args.duration, "kill_every_seconds": args.kill_every,
            "compress_workers": args.compress_workers, "generate_workers": args.generate_workers,
            "context_chars": args.context_chars, "config": CONFIG,
            "requests": stats.requests, "codes": stats.codes,
            "cancelled_by_client": stats.cancelled_by_client,
            "deadline_requests": stats.deadline_requests, "kills": kills,
            "error_examples": stats.examples,
            "recovery_ready_seconds_p50": round(percentile(
                [k["ready_seconds"] for k in kills], 0.5), 3) if kills else None,
            "data": {"sealed_acknowledged": len(stats.sealed), "present": present,
                     "downloaded_ok": downloaded, "verified_ok": verified, "lost": len(lost),
                     "lost_detail": lost, "store_files": len(blobs), "store_files_ok": store_ok,
                     "quarantined": quarantined, "temp_files": len(temps)},
        }
    finally:
        cluster.stop_all()
    write_results(args.out, args.name, result, to_markdown)
    return 0 if result["data"]["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
