#!/usr/bin/env python3
"""Tiny random HF checkpoints + fp32 logits goldens, one folder per architecture.

Writes tests/data/tiny/<name>/{config.json, model.safetensors, golden.safetensors} for
name in llama, qwen2, mistral, gpt_neox, gpt_neox_seq. See docs/goldens.md for what the files
hold and tests/reference/README.md for how to run it.

Every parameter is re-drawn from a seeded normal distribution (norm weights around 1, biases
and norm biases non-zero) so that a loader that drops a bias, a norm weight or a tied head shows
up in the logits. The weights are rounded to the checkpoint's storage dtype (F32, BF16 or F16)
*before* the goldens are computed, and the goldens are computed in fp32 from those values, so a
loader that upcasts to fp32 must reproduce them to fp32 rounding noise.

Usage:  source scripts/env.sh; ctxmem_py tests/reference/make_tiny_checkpoints.py
"""
import hashlib
import json
import os
import shutil
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

torch.set_num_threads(2)

import transformers
from safetensors.numpy import save_file
from transformers import (AutoModelForCausalLM, GPTNeoXConfig, LlamaConfig, MistralConfig,
                          Qwen2Config)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "tiny")

N_TOKENS = 24
N_PAST = 16
COMMON = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
              vocab_size=320, max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
              pad_token_id=None)

# name -> (config, storage dtype, seed)
SPECS = {
    "llama": (lambda: LlamaConfig(**COMMON, num_key_value_heads=2, rms_norm_eps=1e-5,
                                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                  tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
                                  hidden_act="silu"),
              torch.float32, 101),
    "qwen2": (lambda: Qwen2Config(**COMMON, num_key_value_heads=2, rms_norm_eps=1e-6,
                                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                                  tie_word_embeddings=False, use_sliding_window=False,
                                  hidden_act="silu"),
              torch.bfloat16, 102),
    "mistral": (lambda: MistralConfig(**COMMON, num_key_value_heads=2, rms_norm_eps=1e-5,
                                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                      sliding_window=256, tie_word_embeddings=False,
                                      hidden_act="silu", head_dim=16),
                torch.float16, 103),
    "gpt_neox": (lambda: GPTNeoXConfig(**COMMON, layer_norm_eps=1e-5, use_parallel_residual=True,
                                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                        "partial_rotary_factor": 0.25},
                                       tie_word_embeddings=False, hidden_act="gelu",
                                       attention_bias=True),
                 torch.float32, 104),
    "gpt_neox_seq": (lambda: GPTNeoXConfig(**COMMON, layer_norm_eps=1e-5, use_parallel_residual=False,
                                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                            "partial_rotary_factor": 0.25},
                                           tie_word_embeddings=False, hidden_act="gelu",
                                           attention_bias=True),
                     torch.bfloat16, 105),
}


def randomize(model, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    seen = set()
    for name, p in model.named_parameters():  # tied parameters appear once
        if id(p) in seen:
            continue
        seen.add(id(p))
        with torch.no_grad():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            is_norm = "norm" in name or "layernorm" in name
            if is_norm and name.endswith("weight"):
                v = 1.0 + 0.2 * r
            elif name.endswith("bias"):
                v = 0.1 * r
            else:  # embeddings, projections, lm head
                v = 0.15 * r
            p.copy_(v.to(dtype).to(torch.float32))  # exactly representable in the storage dtype


@torch.inference_mode()
def goldens(model, tokens):
    x = torch.tensor([tokens], dtype=torch.long)
    full = model(input_ids=x, use_cache=False).logits[0].float()
    out = model(input_ids=x[:, :N_PAST], use_cache=True)
    past = out.past_key_values
    last = model(input_ids=x[:, N_PAST:], past_key_values=past, use_cache=True).logits[0].float()
    return full, last


def folder_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def main():
    os.makedirs(OUT, exist_ok=True)
    report = {}
    for name, (mk, dtype, seed) in SPECS.items():
        t0 = time.time()
        cfg = mk()
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
        model.eval()
        randomize(model, seed, dtype)
        tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, N_TOKENS).astype(np.int64)
        full, last = goldens(model, tokens.tolist())

        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        model.to(dtype).save_pretrained(d, safe_serialization=True)
        for extra in ("generation_config.json",):
            p = os.path.join(d, extra)
            if os.path.exists(p):
                os.remove(p)
        meta = {"arch": name, "model_type": cfg.model_type, "seed": str(seed),
                "storage_dtype": str(dtype).replace("torch.", ""), "n_past": str(N_PAST),
                "transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                "attn_implementation": "eager"}
        save_file({"tokens": tokens, "logits": full.numpy().astype(np.float32),
                   "logits_last8_with_past": last.numpy().astype(np.float32)},
                  os.path.join(d, "golden.safetensors"), metadata=meta)

        # Validate: reload the checkpoint from disk in fp32, recompute, compare.
        re = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
        re.eval()
        full2, last2 = goldens(re, tokens.tolist())
        err_reload = float((full2 - full).abs().max())
        err_past = float((last - full[N_PAST:]).abs().max())
        assert err_reload < 1e-5, (name, err_reload)
        assert err_past < 1e-4, (name, err_past)
        size = folder_size(d)
        assert size < 500 * 1024, (name, size)
        with open(os.path.join(d, "model.safetensors"), "rb") as f:
            n_hdr = int.from_bytes(f.read(8), "little")
            hdr = json.loads(f.read(n_hdr))
        report[name] = {
            "bytes": size, "storage_dtype": meta["storage_dtype"], "seconds": round(time.time() - t0, 2),
            "max|reload-golden|": err_reload, "max|with_past-full[16:]|": err_past,
            "logit_std": float(full.std()), "tensors": len([k for k in hdr if k != "__metadata__"]),
            "tied": bool(cfg.tie_word_embeddings),
        }
        print(name, json.dumps(report[name]), flush=True)
        print("   tensors:", ", ".join(f"{k}{v['shape']}" for k, v in sorted(hdr.items())
                                       if k != "__metadata__" and ".layers.1." not in k), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
