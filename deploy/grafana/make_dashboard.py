#!/usr/bin/env python3
"""Writes ctxmem.json, the Grafana dashboard for ctxmem (run after editing the panels below).

Every metric named here must be one of the servers' metrics (docs/services.md);
tests/deploy/check_deploy.py checks that.
"""
import json
import pathlib

DS = {"type": "prometheus", "uid": "${datasource}"}
W = 12  # half of Grafana's 24-column grid
H = 8


def q(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


def panel(pid, title, unit, targets, x, y, description, kind="timeseries", w=W):
    p = {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": H, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [q(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(targets)],
    }
    return p


def quantile(qv, metric, by="", rng="5m"):
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({qv}, sum by ({group}) (rate({metric}_bucket[{rng}])))"


def main():
    panels = []
    row = 0

    def add(title, unit, targets, description, kind="timeseries"):
        nonlocal row
        pid = len(panels) + 1
        x = 0 if pid % 2 == 1 else W
        panels.append(panel(pid, title, unit, targets, x, row, description, kind))
        if x == W:
            row += H

    add("Compression ratio (original tokens / kept entries)", "x", [
        (quantile(0.5, "ctxmem_compression_ratio"), "p50"),
        (quantile(0.9, "ctxmem_compression_ratio"), "p90"),
        ("sum(rate(ctxmem_compression_ratio_sum[5m])) / sum(rate(ctxmem_compression_ratio_count[5m]))", "mean"),
    ], "Per finished compression; higher = smaller memories per context token.")
    add("Time to first token", "s", [
        (quantile(0.5, "ctxmem_ttft_seconds", "source"), "p50 {{source}}"),
        (quantile(0.99, "ctxmem_ttft_seconds", "source"), "p99 {{source}}"),
    ], "Decoder, request start to first token; source=memory (from a blob) vs prefill (no memory).")
    add("Tokens per second", "short", [
        ("sum(rate(ctxmem_generated_tokens_total[5m]))", "generated (all decoders)"),
        ("sum(rate(ctxmem_compress_tokens_total[5m]))", "compressed (all compressors)"),
        (quantile(0.5, "ctxmem_decode_tokens_per_second"), "per-stream decode p50"),
    ], "Throughput of generation and compression, and the decode speed one stream sees.")
    add("Blob cache hit rate", "percentunit", [
        ("sum by (tier) (rate(ctxmem_cache_hits_total[5m])) / ignoring(tier) group_left "
         "(sum(rate(ctxmem_cache_hits_total[5m])) + sum(rate(ctxmem_cache_misses_total[5m])))",
         "hits {{tier}}"),
        ("sum(rate(ctxmem_cache_hits_total[5m])) / (sum(rate(ctxmem_cache_hits_total[5m])) + "
         "sum(rate(ctxmem_cache_misses_total[5m])))", "total"),
    ], "Share of blob lookups served from the decoder's RAM / disk cache (misses fetch from a compressor).")
    add("Queue depth and running work", "short", [
        ("sum by (instance) (ctxmem_compress_queue_depth)", "compress waiting {{instance}}"),
        ("sum by (instance) (ctxmem_compress_jobs_running)", "compress running {{instance}}"),
        ("sum by (instance) (ctxmem_decoder_queue_depth)", "decode waiting {{instance}}"),
        ("sum by (instance) (ctxmem_generate_streams_active)", "generate streams {{instance}}"),
    ], "Admitted jobs waiting for a worker; a full queue answers RESOURCE_EXHAUSTED.")
    add("Errors by code", "reqps", [
        ('sum by (code, method) (rate(ctxmem_requests_total{code!="OK"}[5m]))', "{{method}} {{code}}"),
    ], "Non-OK RPCs per second by status code and method.")
    add("Requests by method", "reqps", [
        ("sum by (method) (rate(ctxmem_requests_total[5m]))", "{{method}}"),
    ], "Finished RPCs per second.")
    add("Blob store", "bytes", [
        ("sum by (instance) (ctxmem_store_bytes)", "store bytes {{instance}}"),
        ("sum by (instance, tier) (ctxmem_cache_bytes)", "decoder cache {{tier}} {{instance}}"),
    ], "Bytes in each compressor's blob store (budget: --store-max-bytes) and in decoder caches.")
    add("Blobs stored", "short", [
        ("sum by (instance) (ctxmem_store_blobs)", "{{instance}}"),
    ], "Sealed blobs per compressor.")
    add("Blob bytes per original token", "bytes", [
        (quantile(0.5, "ctxmem_blob_bytes_per_token"), "p50"),
        (quantile(0.9, "ctxmem_blob_bytes_per_token"), "p90"),
    ], "Size of a memory per token of the context it replaces.")
    add("Compression latency", "s", [
        (quantile(0.99, "ctxmem_compress_chunk_seconds"), "chunk p99"),
        (quantile(0.5, "ctxmem_compress_seconds"), "whole job p50"),
        (quantile(0.99, "ctxmem_compress_seconds"), "whole job p99"),
    ], "One chunk's forward + pruning, and whole jobs.")
    add("Blob fetches (decoder <- compressor)", "s", [
        (quantile(0.5, "ctxmem_fetch_seconds"), "fetch p50"),
        (quantile(0.99, "ctxmem_fetch_seconds"), "fetch p99"),
        ("sum(rate(ctxmem_fetch_bytes_total[5m]))", "bytes/s"),
    ], "Cache misses: time to download and verify a blob, and fetch bandwidth (bytes/s, right axis values).")
    add("Resident memory (RSS)", "bytes", [
        ("ctxmem_process_resident_bytes", "{{job}} {{instance}}"),
        ("ctxmem_process_peak_resident_bytes", "peak {{job}} {{instance}}"),
    ], "Process resident set size now and its peak.")

    dashboard = {
        "title": "ctxmem",
        "uid": "ctxmem-overview",
        "description": "ctxmem compressor and decoder services (deploy/grafana/make_dashboard.py).",
        "tags": ["ctxmem"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0,
        }]},
        "annotations": {"list": []},
        "panels": panels,
    }
    out = pathlib.Path(__file__).with_name("ctxmem.json")
    out.write_text(json.dumps(dashboard, indent=2) + "\n")
    print(f"wrote {out} ({len(panels)} panels)")


if __name__ == "__main__":
    main()
