#!/usr/bin/env python3
"""Tokenizer goldens for tests/unit/tokenizer, from HF `tokenizers` / `transformers`.

Builds a HF `tokenizers` Tokenizer from the default model's GGUF vocabulary and merges (read
with the `gguf` package) and the original SmolLM2 tokenizer.json configuration:

    pre_tokenizer  Sequence[Digits(individual_digits=True),
                            ByteLevel(add_prefix_space=False, use_regex=True)]
    decoder        ByteLevel
    post_processor ByteLevel(trim_offsets=False)  (adds no BOS/EOS)
    model          BPE, unk_token null (bytes without a token are dropped)
    added tokens   GGUF CONTROL tokens (type 3) as special, USER_DEFINED (type 4) as not

and writes, under tests/data/tokenizer/:

    smollm2_tokenizer.json   that tokenizer (compact JSON)
    tokenizer_config.json    bos/eos/unk/pad tokens, add_bos/eos_token, chat_template
    tiny_llama3/, tiny_qwen2/  small BPE tokenizers trained here in Llama 3's and Qwen2's
                             tokenizer.json layout (for the JSON reader and their regexes)
    goldens.json             texts, ids with and without special-token parsing, decodes,
                             chat renders from transformers' apply_chat_template, and what
                             transformers' own GGUF loader (AutoTokenizer gguf_file=...) does

Run: source scripts/env.sh; ctxmem_py tests/reference/make_tokenizer_goldens.py [--model PATH]
"""

import argparse
import json
import os
import pathlib
import sys

import gguf
import unicodedata

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers,
                        processors, trainers)

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "data" / "tokenizer"
PRIDE = ROOT / "tests" / "data" / "text" / "pride_and_prejudice.txt"
PRIDE_BYTES = 100_000  # the slice the C++ test encodes (performance + golden)

CONTROL, USER_DEFINED = 3, 4

TEXTS = {
    "empty": "",
    "english": "Hello world! The quick brown fox jumps over the lazy dog.",
    "leading_space": " Hello",
    "contractions": "I'm sure you'll see it's what they've said; we'd go. DON'T SHOUT, it'S odd",
    "digits": "In 2024, 3.14159 and 1,000,000 people; call 555-0123 at 10:30pm. x²³ ٣٤٥ Ⅻ",
    "whitespace_runs": "a  b   c\t\td\n\ne   \n  f \r\n g    ",
    "only_spaces": "     ",
    "newlines": "\n\n\nline one\nline two\n\n\n\nend\n",
    "code": (
        "def fib(n: int) -> int:\n"
        "    if n < 2:\n"
        "        return n\n"
        "    return fib(n - 1) + fib(n - 2)  # naive\n\n"
        "int main() { std::vector<int> v{1, 2, 3}; return v[0] != 1; }\n"
    ),
    "chinese": "我们今天去公园散步，天气非常好。机器学习是人工智能的一个分支。",
    "japanese_korean": "東京は日本の首都です。안녕하세요, 만나서 반갑습니다!",
    "emoji": "I love 🤗 and 🚀🚀! Family: 👨‍👩‍👧‍👦, flags 🇫🇷🇯🇵, skin 👍🏽 ✨",
    "mixed_scripts": "Ελληνικά, русский текст, עברית, العربية, हिन्दी, ไทย and English mixed.",
    "accents": "Café naïve résumé — “quoted” ‘text’ … fiancée façade Straße",
    "unicode_spaces": "a\u00a0b\u3000c\u2009d\u180ee\u0085f\u200bg\u2028h\ufeffi",
    "special_inline": "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "special_adjacent": "x<|im_end|><|im_end|>y<|endoftext|> <filename>a.py<file_sep>",
    "special_partial": "<|im_start|> <|im_sta <|im_end| <|endoftext|x |>",
    # SmolLM2's vocabulary has no token for bytes 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D (and some
    # bytes that never occur in UTF-8): BPE drops them, since model.unk_token is null.
    "bytes_without_tokens": "group\x1dseparator \x04end\x13 \x16x",
    "punctuation": "!!! ??? ... --- ((())) [[x]] {{y}} @#$%^&*_+=|\\/<>~`",
    "urls": "Visit https://example.com/path?q=1&r=two#frag or mail me@example.org.",
    "markdown": "# Title\n\n- item **bold** _it_ `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
    "long_paragraph": (
        "It is a truth universally acknowledged, that a single man in possession of a good "
        "fortune, must be in want of a wife. However little known the feelings or views of such "
        "a man may be on his first entering a neighbourhood, this truth is so well fixed in the "
        "minds of the surrounding families, that he is considered the rightful property of some "
        "one or other of their daughters. In 1813, the novel sold 1,500 copies; today there are "
        "over 20 million. Les Misérables (1862) — 共 5 部 — was longer: 1,462 pages! 🤯\n"
    ),
}

CONVERSATIONS = {
    "user_only": {
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "add_generation_prompt": True,
    },
    "with_system": {
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Summarise: the cat sat on the mat."},
            {"role": "assistant", "content": "Cat on mat."},
            {"role": "user", "content": "Now in French?"},
        ],
        "add_generation_prompt": True,
    },
    "multi_turn_unicode": {
        "messages": [
            {"role": "user", "content": "Say hi in Chinese 🙂"},
            {"role": "assistant", "content": "你好！\nNeed more?"},
            {"role": "user", "content": ""},
        ],
        "add_generation_prompt": False,
    },
}


def read_gguf(path):
    reader = gguf.GGUFReader(path)

    def get(key, default=None):
        field = reader.fields.get(key)
        return field.contents() if field is not None else default

    meta = {
        "model": get("tokenizer.ggml.model"),
        "pre": get("tokenizer.ggml.pre"),
        "tokens": get("tokenizer.ggml.tokens"),
        "token_type": get("tokenizer.ggml.token_type"),
        "merges": get("tokenizer.ggml.merges"),
        "bos_id": get("tokenizer.ggml.bos_token_id"),
        "eos_id": get("tokenizer.ggml.eos_token_id"),
        "unk_id": get("tokenizer.ggml.unknown_token_id"),
        "pad_id": get("tokenizer.ggml.padding_token_id"),
        "add_bos": bool(get("tokenizer.ggml.add_bos_token", False)),
        "add_eos": bool(get("tokenizer.ggml.add_eos_token", False)),
        "chat_template": get("tokenizer.chat_template"),
    }
    assert meta["model"] == "gpt2", meta["model"]
    assert meta["pre"] == "smollm", meta["pre"]
    return meta


def build_tokenizer(meta):
    tokens = meta["tokens"]
    vocab = {token: i for i, token in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in meta["merges"]]
    # The original tokenizer.json has model.unk_token null (unk_token "<|endoftext|>" lives in
    # tokenizer_config.json only), so a byte without a token is dropped, as llama.cpp does too.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False,
                               byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False,
                                              use_regex=True)
    added = []
    for token, token_type in zip(tokens, meta["token_type"]):
        if token_type in (CONTROL, USER_DEFINED):
            added.append(AddedToken(token, special=token_type == CONTROL, normalized=False,
                                    single_word=False, lstrip=False, rstrip=False))
    tok.add_special_tokens([t for t in added if t.special])
    tok.add_tokens([t for t in added if not t.special])
    assert tok.get_vocab_size(with_added_tokens=True) == len(tokens)
    return tok


def encode_case(tok, text):
    ids = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = True
    try:
        ids_plain = tok.encode(text, add_special_tokens=False).ids
    finally:
        tok.encode_special_tokens = False
    return {
        "text": text,
        "ids": ids,
        "ids_no_special_parsing": ids_plain,
        "decode": tok.decode(ids, skip_special_tokens=False),
        "decode_skip_special": tok.decode(ids, skip_special_tokens=True),
        "decode_no_special_parsing": tok.decode(ids_plain, skip_special_tokens=False),
    }


def pride_slice():
    data = PRIDE.read_bytes()[:PRIDE_BYTES]
    return data.decode("utf-8")  # the file is ASCII; fails loudly otherwise


def hf_gguf_loader_report(model_path, tok, texts):
    """What transformers' GGUF loader builds, and where it encodes differently."""
    from transformers import AutoTokenizer

    directory, name = os.path.split(model_path)
    hf = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    backend = hf.backend_tokenizer
    report = {
        "transformers_class": type(hf).__name__,
        "pre_tokenizer": json.loads(backend.to_str())["pre_tokenizer"],
        "bos_token": hf.bos_token,
        "eos_token": hf.eos_token,
        "mismatches": [],
    }
    probes = dict(texts)
    probes.update({
        "probe_superscripts": "x²³ y¹²",
        "probe_arabic_digits": "٣٤٥ and ١٢",
        "probe_fullwidth_digits": "１２３ ４５",
        "probe_roman": "Ⅻ ⅷ",
        "probe_space_digits": " 2024 12345",
    })
    for key, text in probes.items():
        ours = tok.encode(text, add_special_tokens=False).ids
        theirs = hf.encode(text, add_special_tokens=False)
        if ours != theirs:
            report["mismatches"].append({"name": key, "text": text, "ids": ours,
                                         "hf_gguf_ids": theirs})
    report["n_probed"] = len(probes)
    return hf, report


# Regexes of HF's own tokenizer.json files (Llama 3, Qwen2), as the C++ PreTokenizer spells them.
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def hf_pre_tokenizer(name):
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True,
                                          use_regex=True)
    no_regex = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                        use_regex=False)
    if name == "gpt2":
        return byte_level
    if name == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        byte_level])
    split = {"llama3": LLAMA3_SPLIT, "qwen2": QWEN2_SPLIT}[name]
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False), no_regex])


def pre_tokenizer_goldens(texts):
    """Pieces (in the byte-level alphabet) of every text, per pre-tokenizer."""
    out = {}
    for name in ("gpt2", "smollm", "llama3", "qwen2"):
        pre = hf_pre_tokenizer(name)
        out[name] = [{"name": key, "text": text,
                      "pieces": [piece for piece, _ in pre.pre_tokenize_str(text)]}
                     for key, text in texts.items()]
    return out


def make_tiny_tokenizers(texts):
    """Small BPE tokenizers trained here with Llama 3's and Qwen2's tokenizer.json layout
    (Split + ByteLevel without regex, Llama 3's ignore_merges and TemplateProcessing BOS,
    Qwen2's NFC normalizer), saved as tests/data/tokenizer/tiny_<name>/tokenizer.json, with
    the ids HF gives for every golden text."""
    corpus = [pride_slice()[:60_000]] + list(texts.values())
    out = {}
    for name in ("llama3", "qwen2"):
        specials = (["<|begin_of_text|>", "<|end_of_text|>"] if name == "llama3"
                    else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = hf_pre_tokenizer(name)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(corpus, trainer=trainer)
        layout = json.loads(tok.to_str())
        if name == "llama3":
            layout["model"]["ignore_merges"] = True
            layout["post_processor"] = json.loads(processors.Sequence([
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B:1",
                    special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))]),
            ]).__getstate__())
        else:
            layout["normalizer"] = {"type": "NFC"}
        tok = Tokenizer.from_str(json.dumps(layout))
        directory = OUT_DIR / f"tiny_{name}"
        directory.mkdir(parents=True, exist_ok=True)
        tok.save(str(directory / "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        cases = []
        for key, text in texts.items():
            if unicodedata.normalize("NFC", text) != text:
                continue  # NFC is accepted but not applied by the C++ side
            cases.append({"name": key, "text": text,
                          "ids": tok.encode(text, add_special_tokens=False).ids,
                          "ids_add_special": tok.encode(text, add_special_tokens=True).ids})
        out[name] = {"path": f"tiny_{name}/tokenizer.json", "n_vocab": tok.get_vocab_size(),
                     "cases": cases}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.environ.get("CTXMEM_MODEL"))
    args = parser.parse_args()
    if not args.model or not os.path.exists(args.model):
        sys.exit(f"model not found: {args.model!r} (source scripts/env.sh or pass --model)")

    meta = read_gguf(args.model)
    tok = build_tokenizer(meta)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tok.save(str(OUT_DIR / "smollm2_tokenizer.json"), pretty=False)

    tokens = meta["tokens"]
    config = {
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": tokens[meta["bos_id"]],
        "eos_token": tokens[meta["eos_id"]],
        "unk_token": tokens[meta["unk_id"]],
        "pad_token": tokens[meta["pad_id"]],
        "add_bos_token": meta["add_bos"],
        "add_eos_token": meta["add_eos"],
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 8192,
        "chat_template": meta["chat_template"],
    }
    (OUT_DIR / "tokenizer_config.json").write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    # Reload from disk, so the goldens come from exactly the files the C++ tests read.
    tok = Tokenizer.from_file(str(OUT_DIR / "smollm2_tokenizer.json"))
    cases = [dict(name=name, **encode_case(tok, text)) for name, text in TEXTS.items()]
    # The slice decodes to itself and has no special tokens: its ids are all the test needs.
    pride_text = pride_slice()
    pride = {"ids": tok.encode(pride_text, add_special_tokens=False).ids}
    assert tok.decode(pride["ids"]) == pride_text

    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **{
        k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token",
                               "chat_template", "clean_up_tokenization_spaces")})
    hf_gguf, loader = hf_gguf_loader_report(args.model, tok, TEXTS)
    chats = []
    for name, conv in CONVERSATIONS.items():
        rendered = fast.apply_chat_template(conv["messages"], tokenize=False,
                                            add_generation_prompt=conv["add_generation_prompt"])
        via_gguf = hf_gguf.apply_chat_template(conv["messages"], tokenize=False,
                                               add_generation_prompt=conv["add_generation_prompt"])
        assert rendered == via_gguf, (name, rendered, via_gguf)
        chats.append({"name": name, **conv, "rendered": rendered,
                      "ids": tok.encode(rendered, add_special_tokens=False).ids})

    goldens = {
        "source": "tests/reference/make_tokenizer_goldens.py",
        "model": os.path.basename(args.model),
        "spec": {
            "n_vocab": len(tokens), "n_merges": len(meta["merges"]),
            "bos_id": meta["bos_id"], "eos_id": meta["eos_id"], "unk_id": meta["unk_id"],
            "pad_id": meta["pad_id"], "add_bos": meta["add_bos"], "add_eos": meta["add_eos"],
            "n_control": sum(1 for t in meta["token_type"] if t == CONTROL),
        },
        "cases": cases,
        "pride_and_prejudice": {"path": "text/pride_and_prejudice.txt",
                                "n_bytes": PRIDE_BYTES, **pride},
        "chats": chats,
        "hf_gguf_loader": loader,
        "pre_tokenizers": pre_tokenizer_goldens(TEXTS),
        "tiny": make_tiny_tokenizers(TEXTS),
        "versions": {"tokenizers": __import__("tokenizers").__version__,
                     "transformers": __import__("transformers").__version__,
                     "gguf": "0.19.0" if not hasattr(gguf, "__version__") else gguf.__version__},
    }
    (OUT_DIR / "goldens.json").write_text(json.dumps(goldens, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    print(f"wrote {OUT_DIR}: {len(cases)} cases, {len(pride['ids'])} ids for the 100 KB slice, "
          f"{len(chats)} chats, {len(loader['mismatches'])}/{loader['n_probed']} texts encode "
          f"differently with transformers' GGUF loader")


if __name__ == "__main__":
    main()
