"""Load test of decoder_svc (loopback only, bounded in time and request count).

Starts compressor_svc + decoder_svc on ephemeral loopback ports, compresses one context, warms
the decoder's cache with one request, then for each concurrency level runs N client threads
that issue Generate streams on that one memory until the level's time or request budget is
spent. Records requests/s, generated tokens/s, client- and server-side TTFT percentiles,
errors by status (must be 0), and the decoder's RSS before/after (ctxmem_process_resident_bytes
and /proc) against its cache size. Writes <out>/load_decoder.json and .md.

  bench/run_load_bench.sh            # builds the servers, runs this with the defaults
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from typing import Dict, List

# loopback_bench first: it puts tests/integration (harness) on sys.path.
from loopback_bench import (add_server_args, export_server_env, git_commit, machine,
                            percentile, write_results)

import harness  # noqa: E402

QUESTIONS = [
    "Who is speaking in this passage?",
    "What is the mood of this scene?",
    "Name one person mentioned.",
    "Where does this take place?",
    "What happens next?",
    "Summarize the passage in one sentence.",
]


def proc_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_level(client: harness.DecoderClient, memory_id: str, concurrency: int, duration: float,
              max_requests: int, max_tokens: int) -> Dict:
    lock = threading.Lock()
    issued = [0]
    results: List[Dict] = []
    errors: Dict[str, int] = {}
    t_start = time.monotonic()
    t_end = t_start + duration

    def worker(w: int):
        i = 0
        while time.monotonic() < t_end:
            with lock:
                if issued[0] >= max_requests:
                    return
                issued[0] += 1
                n = issued[0]
            q = QUESTIONS[(w + i) % len(QUESTIONS)]
            i += 1
            t0 = time.monotonic()
            try:
                s = client.generate(memory_id, messages=[{"role": "user", "content": q}],
                                    max_tokens=max_tokens, timeout=120)
                s.text()
                d = s.done
                rec = {"n": n, "client_ttft": s.first_token_seconds or float("nan"),
                       "server_ttft": d.timings.ttft_seconds, "latency": time.monotonic() - t0,
                       "tokens": d.usage.generated_tokens, "cache_hit": d.timings.cache_hit}
                with lock:
                    results.append(rec)
            except harness.CtxmemError as e:
                with lock:
                    errors[e.code.name] = errors.get(e.code.name, 0) + 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t_start
    ok = len(results)
    ct = [r["client_ttft"] for r in results if not math.isnan(r["client_ttft"])]
    st = [r["server_ttft"] for r in results]
    lat = [r["latency"] for r in results]
    toks = sum(r["tokens"] for r in results)
    return {
        "concurrency": concurrency, "wall_seconds": round(wall, 3), "requests_ok": ok,
        "errors": sum(errors.values()), "errors_by_code": errors,
        "requests_per_second": round(ok / wall, 3) if wall > 0 else 0,
        "generated_tokens": toks,
        "generated_tokens_per_second": round(toks / wall, 2) if wall > 0 else 0,
        "ttft_client_p50_ms": round(1000 * percentile(ct, 0.5), 1),
        "ttft_client_p99_ms": round(1000 * percentile(ct, 0.99), 1),
        "ttft_server_p50_ms": round(1000 * percentile(st, 0.5), 1),
        "ttft_server_p99_ms": round(1000 * percentile(st, 0.99), 1),
        "latency_p50_ms": round(1000 * percentile(lat, 0.5), 1),
        "latency_p99_ms": round(1000 * percentile(lat, 0.99), 1),
        "cache_hit_fraction": round(sum(r["cache_hit"] for r in results) / ok, 3) if ok else 0,
    }


def to_markdown(r: Dict) -> str:
    m = r["machine"]
    out = [
        "# decoder_svc load test",
        "",
        f"{r['date']}, commit {r['commit']}. Machine: {m['nproc']} CPUs ({m['cpu_model']}), "
        f"{m['mem_total_bytes'] / 2**30:.0f} GiB, load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in r['loadavg_end'])} (shared machine).",
        "",
        f"Memory: {r['memory']['n_original_tokens']} context tokens, `{r['config']['pruner']}` "
        f"C={r['config']['chunk_size']} M={r['config']['memory_size']} -> "
        f"{r['memory']['n_kept']} entries per layer, blob {r['memory']['blob_bytes']} bytes. "
        f"Each request: one chat question, greedy, max_tokens {r['max_tokens']}. Decoder: "
        f"{' '.join(r['decoder_args'])} --threads {r.get('threads', 1)} (torch threads per "
        f"server). Budget per level: {r['duration_seconds']:g} s or "
        f"{r['max_requests']} requests, whichever comes first; loopback only.",
        "",
        "| concurrency | requests | req/s | gen tok/s | TTFT p50 (ms) | TTFT p99 (ms) | "
        "server TTFT p50/p99 (ms) | latency p50/p99 (ms) | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in r["levels"]:
        out.append(
            f"| {lv['concurrency']} | {lv['requests_ok']} | {lv['requests_per_second']:.2f} | "
            f"{lv['generated_tokens_per_second']:.1f} | {lv['ttft_client_p50_ms']:.0f} | "
            f"{lv['ttft_client_p99_ms']:.0f} | {lv['ttft_server_p50_ms']:.0f} / "
            f"{lv['ttft_server_p99_ms']:.0f} | {lv['latency_p50_ms']:.0f} / "
            f"{lv['latency_p99_ms']:.0f} | {lv['errors']} |")
    rss = r["rss"]
    out += [
        "",
        f"Decoder RSS (ctxmem_process_resident_bytes): {rss['before_bytes'] / 2**20:.1f} MiB after "
        f"warm-up, {rss['after_bytes'] / 2**20:.1f} MiB after the load "
        f"({(rss['after_bytes'] - rss['before_bytes']) / 2**20:+.1f} MiB); peak "
        f"{rss['peak_bytes'] / 2**20:.1f} MiB; RAM cache holds {rss['cache_ram_bytes'] / 2**20:.1f}"
        f" MiB. Growth within cache + {rss['slack_bytes'] / 2**20:.0f} MiB slack: "
        f"**{'yes' if rss['growth_ok'] else 'NO'}**. Errors in all: **{r['errors_total']}**.",
        "",
        "TTFT = request start to the first streamed token as the client sees it; server TTFT is "
        "GenerateDone.timings.ttft_seconds. Reproduce: `bench/run_load_bench.sh`.",
        "",
    ]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(p, "load_decoder")
    p.add_argument("--concurrency", default="1,4", help="comma-separated levels")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per level (max 600)")
    p.add_argument("--max-requests", type=int, default=400, help="requests per level (max 10000)")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--context-chars", type=int, default=4000)
    p.add_argument("--decoder-workers", type=int, default=2)
    args = p.parse_args()
    if not (0 < args.duration <= 600) or not (0 < args.max_requests <= 10000):
        p.error("--duration must be in (0, 600] and --max-requests in (0, 10000]")
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if not levels or any(not 1 <= n <= 64 for n in levels):
        p.error("--concurrency levels must be in [1, 64]")
    export_server_env(args)
    mach = machine()
    cluster = harness.Cluster("load")
    config = {"pruner": "streaming_llm", "memory_type": "FM", "chunk_size": 256,
              "memory_size": 128}
    dec_args = ["--workers", str(args.decoder_workers), "--max-streams-per-tenant", "64",
                "--queue-depth", "128"]
    try:
        comp = cluster.start_compressor(threads=args.threads)
        dec = cluster.start_decoder([comp], extra=dec_args, threads=args.threads)
        with harness.Client(comp.grpc_addr, dec.grpc_addr, timeout=600) as c:
            print(f"compressing {args.context_chars} chars ...", file=sys.stderr)
            mem = c.compress(harness.book_text(200, args.context_chars), config)
            warm = c.generate(mem.memory_id, "Warm-up:", max_tokens=2)
            warm.text()
            rss_before = dec.metric("ctxmem_process_resident_bytes") or proc_rss(dec.proc.pid)
            proc_before = proc_rss(dec.proc.pid)
            levels_out = []
            for n in levels:
                print(f"concurrency {n}: up to {args.duration:g} s / {args.max_requests} requests",
                      file=sys.stderr)
                lv = run_level(c.decoder, mem.memory_id, n, args.duration, args.max_requests,
                               args.max_tokens)
                print(json.dumps(lv), file=sys.stderr)
                levels_out.append(lv)
            m = dec.metrics()
            rss_after = harness.metric_sum(m, "ctxmem_process_resident_bytes") or \
                proc_rss(dec.proc.pid)
            cache_ram = harness.metric_sum(m, "ctxmem_cache_bytes", tier="ram")
        slack = 64 << 20
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git_commit(),
            "machine": mach, "loadavg_end": list(os.getloadavg()),
            "config": config, "decoder_args": dec_args, "threads": args.threads,
            "max_tokens": args.max_tokens,
            "duration_seconds": args.duration, "max_requests": args.max_requests,
            "memory": {"memory_id": mem.memory_id, "n_original_tokens": mem.memory.n_original_tokens,
                       "n_kept": mem.memory.n_kept[0], "blob_bytes": mem.memory.blob_bytes},
            "levels": levels_out,
            "errors_total": sum(lv["errors"] for lv in levels_out),
            "rss": {"before_bytes": rss_before, "after_bytes": rss_after,
                    "proc_before_bytes": proc_before, "proc_after_bytes": proc_rss(dec.proc.pid),
                    "peak_bytes": harness.metric_sum(m, "ctxmem_process_peak_resident_bytes"),
                    "cache_ram_bytes": cache_ram, "slack_bytes": slack,
                    "growth_ok": rss_after - rss_before <= cache_ram + slack},
        }
    finally:
        cluster.stop_all()
    write_results(args.out, args.name, result, to_markdown)
    return 0 if result["errors_total"] == 0 and result["rss"]["growth_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
