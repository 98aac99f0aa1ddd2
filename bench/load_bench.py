"""Load test of decoder_svc (loopback only, bounded in time and request count).

Starts compressor_svc on an ephemeral loopback port and compresses --n-memories contexts;
then, for each decoder setting of --max-batch (batched decoding, and `1` as the baseline: one
stream per model step), starts decoder_svc, warms its cache with one request per memory and,
for each memory mode (`one`: every stream reads the same memory; `many`: stream w reads memory
w mod n) and each concurrency level, runs N client threads that issue Generate streams until
the level's time or request budget is spent. Records requests/s, aggregate generated tokens/s,
client- and server-side TTFT percentiles, errors by status (must be 0), rows per batched step
(ctxmem_decode_batch_rows), and the decoder's RSS after each level and before/after the whole
load (ctxmem_process_resident_bytes and /proc) against its cache size. Writes
<out>/load_decoder.{json,md,png}.

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


def run_level(client: harness.DecoderClient, memory_ids: List[str], concurrency: int,
              duration: float, max_requests: int, max_tokens: int) -> Dict:
    """Worker w reads memory_ids[w % len(memory_ids)]."""
    lock = threading.Lock()
    issued = [0]
    in_window = [0]  # tokens that arrived before t_end
    cut_at_end = [0]  # requests still running at t_end, cancelled by the client
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
                s = client.generate(memory_ids[w % len(memory_ids)],
                                    messages=[{"role": "user", "content": q}],
                                    max_tokens=max_tokens, timeout=300)
                cut = False
                for delta in s:  # tokens streamed inside the level's window, for the rate
                    if time.monotonic() > t_end:  # the level is over: stop, not an error
                        s.cancel()
                        cut = True
                        break
                    with lock:
                        in_window[0] += len(delta.token_ids)
                if cut:
                    with lock:
                        cut_at_end[0] += 1
                    return
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
        "requests_cut_at_end": cut_at_end[0],
        "generated_tokens_per_second": round(toks / wall, 2) if wall > 0 else 0,
        # Steady-state aggregate rate: tokens streamed within the level's `duration` (the
        # drain of the last requests after it, when fewer streams are left, is not counted),
        # over the time they took: the whole window, or less when --max-requests ended the
        # level first (dividing by the window then understated the rate).
        "window_tokens": in_window[0],
        "window_tokens_per_second": round(in_window[0] / min(duration, wall), 2) if wall > 0 else 0,
        "ttft_client_p50_ms": round(1000 * percentile(ct, 0.5), 1),
        "ttft_client_p99_ms": round(1000 * percentile(ct, 0.99), 1),
        "ttft_server_p50_ms": round(1000 * percentile(st, 0.5), 1),
        "ttft_server_p99_ms": round(1000 * percentile(st, 0.99), 1),
        "latency_p50_ms": round(1000 * percentile(lat, 0.5), 1),
        "latency_p99_ms": round(1000 * percentile(lat, 0.99), 1),
        "cache_hit_fraction": round(sum(r["cache_hit"] for r in results) / ok, 3) if ok else 0,
    }


def level_key(lv: Dict):
    return (lv["memories"], lv["concurrency"])


def add_ratios(runs: List[Dict]) -> None:
    """x_vs_1_stream: tokens/s over the same setting's 1-stream level; x_vs_baseline: over the
    --max-batch 1 run's level with the same memories and concurrency."""
    baseline = next((r for r in runs if r["max_batch"] == 1), None)
    base = {level_key(lv): lv for lv in baseline["levels"]} if baseline else {}
    for r in runs:
        one = {lv["memories"]: lv for lv in r["levels"] if lv["concurrency"] == 1}
        for lv in r["levels"]:
            tps = lv["window_tokens_per_second"]
            ref1 = one.get(lv["memories"])
            lv["x_vs_1_stream"] = round(tps / ref1["window_tokens_per_second"], 2) \
                if ref1 and ref1["window_tokens_per_second"] > 0 else None
            b = base.get(level_key(lv))
            lv["x_vs_baseline"] = round(tps / b["window_tokens_per_second"], 2) \
                if b and b["window_tokens_per_second"] > 0 else None


def to_markdown(r: Dict) -> str:
    m = r["machine"]
    la = ", ".join(f"{x:.2f}" for x in m["loadavg_start"])
    le = ", ".join(f"{x:.2f}" for x in r["loadavg_end"])
    out = [
        "# decoder_svc load test: batched decoding",
        "",
        f"{r['date']}, commit {r['commit']}. Machine: {m['nproc']} CPUs ({m['cpu_model']}), "
        f"{m['mem_total_bytes'] / 2**30:.0f} GiB, load average at start {la}, at end {le} "
        f"(shared machine: other jobs ran beside this one).",
        "",
        f"Memories: {r['n_memories']} contexts of {r['context_chars']} chars, "
        f"`{r['config']['pruner']}` C={r['config']['chunk_size']} M={r['config']['memory_size']} "
        f"-> {r['memories'][0]['n_kept']} entries per layer, blob "
        f"{r['memories'][0]['blob_bytes']} bytes each. `one` = every stream reads memory 0, "
        f"`many` = stream w reads memory w mod {r['n_memories']}. Each request: one chat "
        f"question, greedy, max_tokens {r['max_tokens']}. Decoder: "
        f"{' '.join(r['decoder_args'])} --decode {r['decode']} --dtype {r.get('dtype', 'fp32')} "
        f"--threads {r['threads']}, OMP_WAIT_POLICY {r.get('omp_wait_policy', 'passive')}, "
        f"niced; each --max-batch setting is its own decoder process, one after the other. "
        f"Budget per level: {r['duration_seconds']:g} s or {r['max_requests']} requests; "
        f"loopback only.",
        "",
        "| --max-batch | memories | streams | requests | gen tok/s | "
        "x vs 1 stream | "
        "x vs --max-batch 1 | rows/step | TTFT p50 / p99 (ms) | latency p50 / p99 (ms) | "
        "errors | RSS (MiB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fx(v):
        return "—" if v is None else f"{v:.2f}x"

    for run in r["runs"]:
        for lv in run["levels"]:
            out.append(
                f"| {run['max_batch']} | {lv['memories']} | {lv['concurrency']} | "
                f"{lv['requests_ok']} + {lv['requests_cut_at_end']} | "
                f"{lv['window_tokens_per_second']:.1f} | "
                f"{fx(lv['x_vs_1_stream'])} | {fx(lv['x_vs_baseline'])} | "
                f"{lv['rows_per_step']:.2f} | {lv['ttft_client_p50_ms']:.0f} / "
                f"{lv['ttft_client_p99_ms']:.0f} | {lv['latency_p50_ms']:.0f} / "
                f"{lv['latency_p99_ms']:.0f} | {lv['errors']} | "
                f"{lv['decoder_rss_bytes'] / 2**20:.0f} |")
    out.append("")
    for run in r["runs"]:
        rss = run["rss"]
        out.append(
            f"--max-batch {run['max_batch']}: decoder RSS {rss['before_bytes'] / 2**20:.1f} MiB "
            f"after warm-up, {rss['after_bytes'] / 2**20:.1f} MiB after the load "
            f"({(rss['after_bytes'] - rss['before_bytes']) / 2**20:+.1f} MiB), "
            f"{rss.get('settled_bytes', rss['after_bytes']) / 2**20:.1f} MiB after one more "
            f"request on memory 0 alone, peak "
            f"{rss['peak_bytes'] / 2**20:.1f} MiB; RAM cache {rss['cache_ram_bytes'] / 2**20:.1f} "
            f"MiB; growth (settled) within cache + {rss['slack_bytes'] / 2**20:.0f} MiB slack: "
            f"**{'yes' if rss['growth_ok'] else 'NO'}**.")
    out += [
        "",
        f"Errors in all: **{r['errors_total']}**. Target (issue 9): 8 streams >= 4x the "
        f"throughput of 1 stream: {r['target']}.",
        "",
        "requests = finished + still running when the level's time budget ended (those are "
        "cancelled by the client then; not errors). gen tok/s = tokens streamed to all "
        "clients within the budget / the time they took: the budget, or less when the "
        "request cap ended the level first (the ratios use it). "
        "TTFT = request start to the first streamed token as the client sees it. rows/step = "
        "mean streams per batched model step in the level (ctxmem_decode_batch_rows). RSS = "
        "the decoder's resident set after the level. Plot: load_decoder.png. Reproduce: "
        "`bench/run_load_bench.sh` (see its header).",
        "",
    ]
    return "\n".join(out)


def plot(r: Dict, path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in r["runs"]:
        for mode, style in (("one", "-"), ("many", "--")):
            lvs = [lv for lv in run["levels"] if lv["memories"] == mode]
            if not lvs:
                continue
            label = f"--max-batch {run['max_batch']}, {mode} memor{'y' if mode == 'one' else 'ies'}"
            xs = [lv["concurrency"] for lv in lvs]
            ax1.plot(xs, [lv["window_tokens_per_second"] for lv in lvs], style, marker="o",
                     label=label)
            ax2.plot(xs, [lv["ttft_client_p50_ms"] for lv in lvs], style, marker="o", label=label)
    ax1.set(xlabel="concurrent streams", ylabel="generated tokens/s (all streams)",
            title="decoder_svc throughput")
    ax2.set(xlabel="concurrent streams", ylabel="TTFT p50 (ms)", title="time to first token")
    ticks = sorted({lv["concurrency"] for run in r["runs"] for lv in run["levels"]})
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    m = r["machine"]
    fig.suptitle(f"{m['cpu_model']}, {m['nproc']} CPUs, load avg "
                 f"{m['loadavg_start'][0]:.1f} -> {r['loadavg_end'][0]:.1f}; "
                 f"--threads {r['threads']}, --decode {r['decode']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def batch_rows(dec) -> tuple:
    m = dec.metrics()
    return (harness.metric_sum(m, "ctxmem_decode_batch_rows_sum"),
            harness.metric_sum(m, "ctxmem_decode_batch_rows_count"))


def run_decoder(cluster: harness.Cluster, comp, mems: List, dec_args: List[str], args,
                max_batch: int) -> Dict:
    """One decoder_svc with --max-batch `max_batch`: every memory mode x concurrency level."""
    extra = dec_args + ["--max-batch", str(max_batch), "--decode", args.decode, "--dtype",
                        args.dtype]
    dec = cluster.start_decoder([comp], cache=f"cache-b{max_batch}", extra=extra,
                                threads=args.threads)
    ids = [m.memory_id for m in mems]
    with harness.Client(comp.grpc_addr, dec.grpc_addr, timeout=600) as c:
        for mid in ids:  # every blob in the cache before anything is measured
            c.generate(mid, "Warm-up:", max_tokens=2).text()
        rss_before = dec.metric("ctxmem_process_resident_bytes") or proc_rss(dec.proc.pid)
        levels_out = []
        for mode in args.memories.split(","):
            levels = args.baseline_levels if max_batch == 1 and args.baseline_levels \
                else args.levels
            for n in levels:
                print(f"--max-batch {max_batch}, {mode} memories, {n} streams: up to "
                      f"{args.duration:g} s / {args.max_requests} requests", file=sys.stderr)
                rows0 = batch_rows(dec)
                lv = run_level(c.decoder, ids[:1] if mode == "one" else ids, n, args.duration,
                               args.max_requests, args.max_tokens)
                rows1 = batch_rows(dec)
                steps = rows1[1] - rows0[1]
                lv["memories"] = mode
                lv["rows_per_step"] = round((rows1[0] - rows0[0]) / steps, 3) if steps else 0
                lv["decoder_rss_bytes"] = proc_rss(dec.proc.pid)
                lv["loadavg"] = list(os.getloadavg())
                print(json.dumps(lv), file=sys.stderr)
                levels_out.append(lv)
        m = dec.metrics()
        rss_after = harness.metric_sum(m, "ctxmem_process_resident_bytes") or \
            proc_rss(dec.proc.pid)
        # One more request, on memory 0 alone: MemoryLoader then drops every decoded past no
        # request holds (it keeps those of the last loads until a later load finds them
        # unused), so growth that remains after it is not those caches.
        c.generate(ids[0], "Settle:", max_tokens=2).text()
        m = dec.metrics()
        rss_settled = harness.metric_sum(m, "ctxmem_process_resident_bytes") or \
            proc_rss(dec.proc.pid)
        cache_ram = harness.metric_sum(m, "ctxmem_cache_bytes", tier="ram")
    dec.stop()
    slack = 64 << 20
    return {"max_batch": max_batch, "decoder_args": extra, "levels": levels_out,
            "rss": {"before_bytes": rss_before, "after_bytes": rss_after,
                    "settled_bytes": rss_settled,
                    "peak_bytes": harness.metric_sum(m, "ctxmem_process_peak_resident_bytes"),
                    "cache_ram_bytes": cache_ram, "slack_bytes": slack,
                    "growth_ok": rss_settled - rss_before <= cache_ram + slack}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(p, "load_decoder")
    p.set_defaults(threads=2)  # torch threads per server
    p.add_argument("--concurrency", default="1,2,4,8", help="comma-separated levels")
    p.add_argument("--memories", default="one,many", help="memory modes: one, many")
    p.add_argument("--n-memories", type=int, default=8, help="contexts for the `many` mode")
    p.add_argument("--max-batch", default="8,1",
                   help="decoder --max-batch settings, one decoder each (1 = the baseline)")
    p.add_argument("--baseline-concurrency", default="",
                   help="levels for the --max-batch 1 run (default: --concurrency)")
    p.add_argument("--decode", default="dense", choices=["dense", "packed", "auto"])
    p.add_argument("--dtype", default="fp32", choices=["auto", "fp32", "bf16", "fp16"],
                   help="decoder --dtype (weight matrices; the recorded runs used fp32)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per level (max 600)")
    p.add_argument("--max-requests", type=int, default=400, help="requests per level (max 10000)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--context-chars", type=int, default=2000)
    p.add_argument("--decoder-workers", type=int, default=2)
    args = p.parse_args()
    if not (0 < args.duration <= 600) or not (0 < args.max_requests <= 10000):
        p.error("--duration must be in (0, 600] and --max-requests in (0, 10000]")
    args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if not args.levels or any(not 1 <= n <= 64 for n in args.levels):
        p.error("--concurrency levels must be in [1, 64]")
    args.baseline_levels = [int(x) for x in args.baseline_concurrency.split(",") if x.strip()]
    if any(m not in ("one", "many") for m in args.memories.split(",")):
        p.error("--memories takes one, many")
    batches = [int(x) for x in args.max_batch.split(",") if x.strip()]
    export_server_env(args)
    mach = machine()
    cluster = harness.Cluster("load")
    config = {"pruner": "streaming_llm", "memory_type": "FM", "chunk_size": 256,
              "memory_size": 128}
    dec_args = ["--workers", str(args.decoder_workers), "--max-streams-per-tenant", "64",
                "--queue-depth", "128", "--max-queued", "128"]
    try:
        comp = cluster.start_compressor(threads=args.threads)
        with harness.Client(comp.grpc_addr, comp.grpc_addr, timeout=600) as c:
            print(f"compressing {args.n_memories} x {args.context_chars} chars ...",
                  file=sys.stderr)
            mems = [c.compress(harness.book_text(200 + 150 * i, args.context_chars), config)
                    for i in range(args.n_memories)]
        runs = [run_decoder(cluster, comp, mems, dec_args, args, b) for b in batches]
    finally:
        cluster.stop_all()
    add_ratios(runs)
    top = max(args.levels)
    best = [run for run in runs if run["max_batch"] == max(batches)][0]
    x8 = {lv["memories"]: lv["x_vs_1_stream"] for lv in best["levels"] if lv["concurrency"] == top}
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git_commit(),
        "machine": mach, "loadavg_end": list(os.getloadavg()),
        "config": config, "decoder_args": dec_args, "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (unset)"),
        "decode": args.decode, "dtype": args.dtype, "max_tokens": args.max_tokens,
        "n_memories": args.n_memories,
        "context_chars": args.context_chars,
        "duration_seconds": args.duration, "max_requests": args.max_requests,
        "memories": [{"memory_id": m.memory_id, "n_original_tokens": m.memory.n_original_tokens,
                      "n_kept": m.memory.n_kept[0], "blob_bytes": m.memory.blob_bytes}
                     for m in mems],
        "runs": runs,
        "errors_total": sum(lv["errors"] for run in runs for lv in run["levels"]),
        "x_top_vs_1_stream": x8,
        "target": ", ".join(f"{mode} memor{'y' if mode == 'one' else 'ies'} "
                            f"{'—' if x is None else f'{x:.2f}x'} at {top} streams "
                            f"({'met' if x is not None and x >= 4 else 'NOT met'})"
                            for mode, x in x8.items()),
    }
    write_results(args.out, args.name, result, to_markdown)
    plot(result, os.path.join(args.out, args.name + ".png"))
    ok_rss = all(run["rss"]["growth_ok"] for run in runs)
    return 0 if result["errors_total"] == 0 and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
