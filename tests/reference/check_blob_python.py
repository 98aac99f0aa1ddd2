#!/usr/bin/env python3
"""Checks ctxmem memory blobs with the `safetensors` Python package (docs/blob_format.md).

A memory blob must open in Python with nothing but safetensors + torch. For every blob given,
this script:

  1. recomputes both checksums with hashlib from the raw bytes: data_sha256 over the data
     section, header_sha256 over the 8-byte length + header with its own 64 hex digits zeroed;
  2. opens the file with safetensors.safe_open (framework "pt") and reads the metadata;
  3. checks the metadata (magic, format version 1 or 2, fingerprints, config is a JSON object,
     counts, kv dtype / quantization) and the layer tensors (layers.{i}.k / .v
     [n_kv_heads, n_kept[i], head_dim] of kv_dtype, .src int64 (or int32 in version 2) ending
     in n_kept[i], F32 per-channel .k_scale / .v_scale for int8_per_channel; for the KIVI
     quantizations kivi_int8 / kivi_int4 (version 2): U8 codes, F16 .{k,v}_scale / _zero of
     the group shapes, dequantized here with torch, independently of the C++ code);
  5. if the blob was written by MemoryCodecTest.WritesQuantizedSamplesForThePythonCheck
     (x.test_pattern = "wave"), regenerates the original float values and checks that every
     dequantized value is within half a quantization step of its group (plus fp16 rounding).
  4. if the blob was written by tests/unit/blob (metadata x.test_pattern = "mod17"), checks
     every value against the pattern of tests/unit/blob/test_blob.h.

Usage (from the repository root):

  source scripts/env.sh
  ninja -C build-blob unit_blob_test
  CTXMEM_BLOB_SAMPLE=/tmp/ctxmem_blob_sample ./build-blob/tests/unit_blob_test \
      --gtest_filter=MemoryBlobTest.WritesSamplesForThePythonCheck
  ctxmem_py tests/reference/check_blob_python.py /tmp/ctxmem_blob_sample.*.safetensors

Exit status 0 when every blob passes; otherwise each problem is printed and the status is 1.
"""
import hashlib
import json
import struct
import sys

import torch
from safetensors import safe_open

HEADER_PREFIX = b'{"__metadata__":{"ctxmem.magic":"ctxmem-memory-blob","ctxmem.header_sha256":"'
HEADER_INFIX = b'","ctxmem.data_sha256":"'
HEADER_SHA_OFFSET = 8 + len(HEADER_PREFIX)
DATA_SHA_OFFSET = HEADER_SHA_OFFSET + 64 + len(HEADER_INFIX)

KV_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I8": torch.int8,
             "U8": torch.uint8}
KIVI = {"kivi_int8": 8, "kivi_int4": 4}


def kivi_dequantize(codes, scale, zero, bits, group, axis, head_dim):
    """KIVI codes -> float64 [n_kv, len, head_dim]; axis "tokens" (keys) or "channels"."""
    c = codes.to(torch.int64)
    if bits == 4:  # two codes per byte, even channel in the low nibble
        c = torch.stack([c & 15, c >> 4], dim=-1).reshape(c.shape[0], c.shape[1], -1)
        c = c[:, :, :head_dim]
    n_kv, length, _ = c.shape
    s = scale.to(torch.float64)
    z = zero.to(torch.float64)
    if axis == "tokens":  # group g covers tokens [g*G, (g+1)*G) of each channel
        s = s.repeat_interleave(group, dim=1)[:, :length]
        z = z.repeat_interleave(group, dim=1)[:, :length]
    else:  # group g covers channels [g*G', (g+1)*G') of each token, G' = min(G, head_dim)
        g = min(group, head_dim)
        s = s.repeat_interleave(g, dim=2)[:, :, :head_dim]
        z = z.repeat_interleave(g, dim=2)[:, :, :head_dim]
    return c.to(torch.float64) * s + z, s


def wave(shape, phase, scale):
    """tests/unit/compress/test_util.h Wave(): sin(arange * 0.731 + phase) * scale, fp32."""
    n = 1
    for d in shape:
        n *= d
    return torch.arange(n, dtype=torch.float32).mul(0.731).add(phase).sin().mul(scale).reshape(shape)
REQUIRED_KEYS = [
    "ctxmem.magic", "ctxmem.header_sha256", "ctxmem.data_sha256", "ctxmem.format_version",
    "ctxmem.memory_id", "ctxmem.model_fingerprint", "ctxmem.tokenizer_fingerprint",
    "ctxmem.compression_config", "ctxmem.n_original_tokens", "ctxmem.n_sinks", "ctxmem.n_kept",
    "ctxmem.kv_dtype", "ctxmem.quantization", "ctxmem.created_unix_ms",
]


class Problems(list):
    def check(self, ok, message):
        if not ok:
            self.append(message)
        return ok


def check_checksums(raw, problems):
    if not problems.check(len(raw) >= DATA_SHA_OFFSET + 65, f"{len(raw)} bytes is too short"):
        return
    (n,) = struct.unpack("<Q", raw[:8])
    problems.check(n % 8 == 0, f"header length {n} is not a multiple of 8")
    if not problems.check(8 + n <= len(raw), f"header length {n} exceeds the file"):
        return
    problems.check(raw[8:HEADER_SHA_OFFSET] == HEADER_PREFIX, "fixed header prefix missing")
    problems.check(raw[HEADER_SHA_OFFSET + 64:DATA_SHA_OFFSET] == HEADER_INFIX,
                   "fixed header infix missing")
    stored_header = raw[HEADER_SHA_OFFSET:HEADER_SHA_OFFSET + 64].decode("ascii", "replace")
    stored_data = raw[DATA_SHA_OFFSET:DATA_SHA_OFFSET + 64].decode("ascii", "replace")
    zeroed = raw[:HEADER_SHA_OFFSET] + b"0" * 64 + raw[HEADER_SHA_OFFSET + 64:8 + n]
    header_sha = hashlib.sha256(zeroed).hexdigest()
    data_sha = hashlib.sha256(raw[8 + n:]).hexdigest()
    problems.check(header_sha == stored_header,
                   f"header_sha256 stored {stored_header}, computed {header_sha}")
    problems.check(data_sha == stored_data, f"data_sha256 stored {stored_data}, computed {data_sha}")
    problems.check(raw[8:8 + n].rstrip(b" ").endswith(b"}"), "header padding is not spaces")


def pattern(n, salt):
    return ((torch.arange(n, dtype=torch.int64) + salt) % 17 - 8).to(torch.float64)


def check_blob(path):
    problems = Problems()
    with open(path, "rb") as f:
        raw = f.read()
    check_checksums(raw, problems)

    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        names = set(f.keys())
        tensors = {name: f.get_tensor(name) for name in names}

    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if not problems.check(not missing, f"metadata keys missing: {missing}"):
        return problems
    problems.check(meta["ctxmem.magic"] == "ctxmem-memory-blob", "wrong magic")
    version = meta["ctxmem.format_version"]
    problems.check(version in ("1", "2"), f"format version {version} is not 1 or 2")
    problems.check(meta["ctxmem.model_fingerprint"] != "", "empty model fingerprint")
    problems.check(isinstance(json.loads(meta["ctxmem.compression_config"]), dict),
                   "compression_config is not a JSON object")
    n_kept = json.loads(meta["ctxmem.n_kept"])
    n_sinks = int(meta["ctxmem.n_sinks"])
    problems.check(int(meta["ctxmem.n_original_tokens"]) >= 0, "negative n_original_tokens")
    quantized = meta["ctxmem.quantization"] == "int8_per_channel"
    kivi_bits = KIVI.get(meta["ctxmem.quantization"])
    problems.check(meta["ctxmem.quantization"] in ("none", "int8_per_channel", *KIVI),
                   "bad quantization")
    kv_dtype = KV_DTYPES.get(meta["ctxmem.kv_dtype"])
    if not problems.check(kv_dtype is not None, f"kv_dtype {meta['ctxmem.kv_dtype']}"):
        return problems
    problems.check(quantized == (kv_dtype == torch.int8), "kv_dtype does not fit quantization")
    problems.check((kivi_bits is not None) == (kv_dtype == torch.uint8),
                   "kv_dtype does not fit quantization")
    if kivi_bits is not None:
        problems.check(version == "2", "KIVI quantization needs format version 2")
        group = int(meta.get("ctxmem.kv_group_size", "0"))
        if not problems.check(group >= 1, "KIVI blob without ctxmem.kv_group_size"):
            return problems
    wave_pattern = meta.get("x.test_pattern") == "wave"

    test_pattern = meta.get("x.test_pattern") == "mod17"
    salt = int(meta.get("x.test_salt", "0"))
    for i, kept in enumerate(n_kept):
        problems.check(kept >= n_sinks, f"layer {i}: n_kept {kept} < n_sinks {n_sinks}")
        k, v, src = (tensors.get(f"layers.{i}.{part}") for part in ("k", "v", "src"))
        if not problems.check(k is not None and v is not None and src is not None,
                              f"layer {i}: k, v or src missing"):
            continue
        for name, t in (("k", k), ("v", v)):
            problems.check(t.dtype == kv_dtype, f"layer {i}.{name}: dtype {t.dtype}")
            problems.check(t.dim() == 3 and t.shape[1] == kept,
                           f"layer {i}.{name}: shape {list(t.shape)} vs n_kept {kept}")
        src_ok = src.dtype == torch.int64 or (version == "2" and src.dtype == torch.int32)
        problems.check(src_ok and src.shape[-1] == kept,
                       f"layer {i}.src: {src.dtype} {list(src.shape)}")
        if kivi_bits is not None and kept > 0:
            # int4 packs two channels per byte; RoPE models have an even head_dim.
            head_dim = k.shape[2] * (8 // kivi_bits)
            values = {}
            for part, t, axis in (("k", k, "tokens"), ("v", v, "channels")):
                scale = tensors.get(f"layers.{i}.{part}_scale")
                zero = tensors.get(f"layers.{i}.{part}_zero")
                if not problems.check(scale is not None and zero is not None and
                                      scale.dtype == torch.float16 and zero.shape == scale.shape,
                                      f"layer {i}.{part}: KIVI scale/zero missing or not F16"):
                    continue
                groups = -(-kept // group) if axis == "tokens" else -(-head_dim // min(group, head_dim))
                want = ([t.shape[0], groups, head_dim] if axis == "tokens"
                        else [t.shape[0], kept, groups])
                problems.check(list(scale.shape) == want,
                               f"layer {i}.{part}_scale: {list(scale.shape)}, expected {want}")
                values[part] = kivi_dequantize(t, scale, zero, kivi_bits, group, axis, head_dim)
            if wave_pattern and len(values) == 2:
                n_kv = k.shape[0]
                for part, phase, amp in (("k", 0.3 * i, 1.5), ("v", 1.1 + i, 0.7)):
                    x = wave([n_kv, kept, head_dim], phase, amp).to(torch.float64)
                    got, step = values[part]
                    err = (got - x).abs()
                    problems.check(bool((err <= step * 0.5 + 2e-3).all()),
                                   f"layer {i}.{part}: dequantized values off by up to "
                                   f"{float(err.max()):.4f} (half step {float(step.max()) / 2:.4f})")
        if quantized:
            for part, t in (("k", k), ("v", v)):
                scale = tensors.get(f"layers.{i}.{part}_scale")
                problems.check(scale is not None and scale.dtype == torch.float32 and
                               list(scale.shape) == [t.shape[0], 1, t.shape[2]],
                               f"layer {i}.{part}_scale missing or not per channel")
        if test_pattern:
            for name, t, s in (("k", k, salt + 2 * i), ("v", v, salt + 2 * i + 1)):
                got = t.reshape(-1).to(torch.float64)
                problems.check(torch.equal(got, pattern(got.numel(), s)),
                               f"layer {i}.{name}: values differ from the mod17 pattern")
            problems.check(torch.equal(src.reshape(-1), torch.arange(src.numel())),
                           f"layer {i}.src: values differ from arange")
            if quantized:
                want = 0.25 * (1 + torch.arange(k.shape[0] * k.shape[2]) % 4).to(torch.float32)
                for part in ("k", "v"):
                    got = tensors[f"layers.{i}.{part}_scale"].reshape(-1)
                    problems.check(torch.equal(got, want), f"layer {i}.{part}_scale values")
    summary = (f"{path}: {len(names)} tensors, {len(n_kept)} layers, n_kept {n_kept}, "
               f"kv_dtype {meta['ctxmem.kv_dtype']}, {meta['ctxmem.quantization']}, "
               f"{len(raw)} bytes, data_sha256 {meta['ctxmem.data_sha256'][:16]}...")
    print(summary + ("" if not test_pattern else ", mod17 values checked") +
          ("" if not wave_pattern else ", KIVI values checked against the source"))
    return problems


def main(paths):
    if not paths:
        print(__doc__)
        return 2
    failed = False
    for path in paths:
        problems = check_blob(path)
        for problem in problems:
            print(f"{path}: FAIL {problem}")
        failed = failed or bool(problems)
    print("FAIL" if failed else f"OK ({len(paths)} blobs)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
