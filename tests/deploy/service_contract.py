"""What the servers accept and export (docs/services.md, the service contract), as data for
check_deploy.py: deployment files may only use these flags and metric names."""

COMPRESSOR_FLAGS = {
    "--listen", "--metrics-listen", "--model", "--model-name", "--device", "--threads",
    "--store-dir", "--store-max-bytes", "--workers", "--queue-depth", "--max-context-tokens",
    "--max-request-bytes", "--max-streams-per-tenant", "--tokens-file",
    "--allow-insecure-remote", "--tls-cert", "--tls-key", "--tls-client-ca", "--log-level",
    "--log-content",
}

DECODER_FLAGS = {
    "--listen", "--metrics-listen", "--model", "--model-name", "--device", "--threads",
    "--compressor", "--compressor-tls", "--compressor-ca", "--compressor-cert",
    "--compressor-key", "--compressor-server-name", "--cache-dir", "--cache-ram-bytes",
    "--cache-disk-bytes", "--workers", "--queue-depth", "--max-new-tokens", "--max-prompt-tokens",
    "--max-request-bytes", "--max-streams-per-tenant", "--tokens-file",
    "--allow-insecure-remote", "--tls-cert", "--tls-key", "--tls-client-ca", "--log-level",
    "--log-content",
}

# The blob store flags both servers take (common/service/store_flags.cc).
STORE_FLAGS = {
    "--store-url", "--s3-endpoint", "--s3-region", "--s3-virtual-hosted",
    "--s3-credentials-file", "--s3-profile", "--s3-max-attempts", "--s3-connect-timeout-ms",
    "--s3-timeout-ms", "--s3-multipart-threshold-bytes", "--s3-part-bytes",
    "--s3-max-upload-bytes-per-second", "--s3-max-download-bytes-per-second",
}
COMPRESSOR_FLAGS |= STORE_FLAGS
DECODER_FLAGS |= STORE_FLAGS

# name -> Prometheus type. Histograms also export _bucket, _sum and _count series.
METRICS = {
    "ctxmem_requests_total": "counter",
    "ctxmem_process_resident_bytes": "gauge",
    "ctxmem_process_peak_resident_bytes": "gauge",
    "ctxmem_compress_tokens_total": "counter",
    "ctxmem_compress_chunk_seconds": "histogram",
    "ctxmem_compress_seconds": "histogram",
    "ctxmem_compression_ratio": "histogram",
    "ctxmem_blob_bytes_per_token": "histogram",
    "ctxmem_compress_queue_depth": "gauge",
    "ctxmem_compress_jobs_running": "gauge",
    "ctxmem_store_bytes": "gauge",
    "ctxmem_store_blobs": "gauge",
    "ctxmem_store_max_bytes": "gauge",
    "ctxmem_fetch_bytes_total": "counter",
    "ctxmem_fetch_seconds": "histogram",
    "ctxmem_cache_hits_total": "counter",
    "ctxmem_cache_misses_total": "counter",
    "ctxmem_cache_bytes": "gauge",
    "ctxmem_ttft_seconds": "histogram",
    "ctxmem_generated_tokens_total": "counter",
    "ctxmem_decode_tokens_per_second": "histogram",
    "ctxmem_decoder_queue_depth": "gauge",
    "ctxmem_generate_streams_active": "gauge",
}
