"""`python -m ctxmem_client` (also installed as `ctxmem-py`): the ctxmem verbs from Python.

  python -m ctxmem_client [--compressor ADDR] [--decoder ADDR] [--token T | --token-file F]
                          [--tls [--ca PEM] [--cert PEM --key PEM] [--server-name N]] CMD ...
  compress FILE|-     compress a UTF-8 file (stdin with -); progress on stderr; prints the
                      memory id on stdout (--json: the whole MemoryInfo)
  ask ID[,ID..] Q     stream the answer to stdout; usage and timings on stderr
  score ID[,ID..]|- (--text T | --file F | --tokens 1,2,3) [--prompt P]
  ls | stat ID | rm ID | get ID OUT | health
Defaults come from $CTXMEM_COMPRESSOR, $CTXMEM_DECODER and $CTXMEM_TOKEN. Exit codes: 0 ok,
1 the service or the input said no (the message names the gRPC status), 2 usage, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any, List, Optional

from google.protobuf import json_format

from .client import DEFAULT_COMPRESSOR, DEFAULT_DECODER, Client, CompressProgress, CtxmemError

_CONFIG_FLAGS = [
    # (flag, config field, type, help)
    ("--pruner", "pruner", str, "streaming_llm (default), h2o, tova, conv, roco, random, ..."),
    ("--memory-type", "memory_type", str, "FM (default), IM, IMDC, FIXED_INCREMENTAL, ..."),
    ("--chunk-size", "chunk_size", int, "tokens per chunk C (default 512)"),
    ("--memory-size", "memory_size", int, "memory budget M per kv head (default 256)"),
    ("--schedule", "schedule", str, "IM/IMDC growth schedule (default linear)"),
    ("--sinks", "n_sink_tokens", int, "sink tokens always kept (default 4)"),
    ("--position-mode", "position_mode", str, "slots (default) or original"),
    ("--score-mode", "score_mode", str, "exact (default) or window"),
    ("--score-window", "score_window", int, "queries in window score mode"),
    ("--conv-kernel-size", "conv_kernel_size", int, "conv/snapkv pooling width"),
    ("--double-compress-size", "double_compress_size", int, "DOUBLE_COMPRESS read size"),
    ("--seed", "seed", int, "seed of the random pruner"),
    ("--kv-dtype", "kv_dtype", str, "bf16 (default), f16, f32, int8, int4"),
    ("--model", "model", str, "model name the memory is for (default: the server's)"),
]


def _msg_json(msg) -> dict:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


def _print_info(info, out) -> None:
    print(f"memory_id        {info.memory_id}", file=out)
    print(f"original tokens  {info.n_original_tokens}", file=out)
    kept = list(info.n_kept)
    kept_s = f"{kept[0]} per layer" if kept and len(set(kept)) == 1 else str(kept)
    print(f"kept entries     {kept_s}", file=out)
    print(f"blob             {_human_bytes(info.blob_bytes)} ({info.blob_bytes} bytes, "
          f"{info.bytes_per_original_token:.1f} bytes/token)", file=out)
    print(f"compression      {info.compression_ratio:.2f}x", file=out)
    if info.client_label:
        print(f"label            {info.client_label}", file=out)
    if info.created_unix_ms:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created_unix_ms / 1000))
        print(f"created          {created}", file=out)
    print(f"config           {info.compression_config_json}", file=out)


class _ProgressPrinter:
    """A one-line progress bar on a terminal, a line per 10% otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.last_decile = -1

    def __call__(self, p: CompressProgress) -> None:
        if self.quiet or (p.chunks_done == 0 and p.tokens_read == 0):
            return
        elapsed = time.monotonic() - self.t0
        if p.tokens_total > 0:
            frac = min(1.0, p.tokens_read / p.tokens_total)
            total = str(p.tokens_total)
        else:
            frac = 0.0
            total = "?"
        line = (f"chunk {p.chunks_done}  {p.tokens_read}/{total} tokens  memory {p.memory_len}  "
                f"{elapsed:.1f} s")
        if self.tty:
            width = 30
            bar = "#" * int(frac * width) + "." * (width - int(frac * width))
            sys.stderr.write(f"\r[{bar}] {line}   ")
            sys.stderr.flush()
        else:
            decile = int(frac * 10) if p.tokens_total > 0 else p.chunks_done
            if decile != self.last_decile:
                self.last_decile = decile
                print(line, file=sys.stderr)

    def finish(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")


def _parse_ids(text: str) -> List[str]:
    if text in ("", "-"):
        return []
    return [t for t in text.split(",") if t]


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ctxmem_client", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compressor", default=os.environ.get("CTXMEM_COMPRESSOR", DEFAULT_COMPRESSOR),
                   help="compressor address host:port (default $CTXMEM_COMPRESSOR or %(default)s)")
    p.add_argument("--decoder", default=os.environ.get("CTXMEM_DECODER", DEFAULT_DECODER),
                   help="decoder address host:port (default $CTXMEM_DECODER or %(default)s)")
    p.add_argument("--token", default=os.environ.get("CTXMEM_TOKEN"),
                   help="bearer token (default $CTXMEM_TOKEN); prefer --token-file")
    p.add_argument("--token-file", help="file whose first line is the bearer token")
    p.add_argument("--tls", action="store_true", help="use TLS (system roots unless --ca)")
    p.add_argument("--ca", help="PEM file of the CA to trust (implies --tls)")
    p.add_argument("--cert", help="client certificate PEM for mTLS (implies --tls)")
    p.add_argument("--key", help="client private key PEM for mTLS")
    p.add_argument("--server-name", help="TLS name to expect instead of the address's host")
    p.add_argument("--timeout", type=float, default=None, help="deadline per call, seconds")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    c = sub.add_parser("compress", help="compress a UTF-8 text file into a memory")
    c.add_argument("file", help="text file, or - for stdin")
    for flag, field, typ, hlp in _CONFIG_FLAGS:
        c.add_argument(flag, dest="cfg_" + field, type=typ, help=hlp)
    c.add_argument("--config-json", help="CompressionConfig as JSON (flags override its fields)")
    c.add_argument("--label", help="label kept with the memory (default: the file name)")
    c.add_argument("--add-bos", action="store_true", help="prepend the tokenizer's BOS token")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    a = sub.add_parser("ask", help="ask a question on memories (streams the answer)")
    a.add_argument("memory_ids", help="memory id, or several comma-separated, or - for none")
    a.add_argument("question")
    a.add_argument("--system", help="system message")
    a.add_argument("--raw", action="store_true", help="send the question as a raw prompt "
                   "instead of a chat message")
    a.add_argument("--max-tokens", type=int, default=0, help="0 = server default (256)")
    a.add_argument("--temperature", type=float, default=0.0)
    a.add_argument("--top-p", type=float, default=0.0)
    a.add_argument("--top-k", type=int, default=0)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    a.add_argument("--json", action="store_true", help="print the final event as JSON")

    s = sub.add_parser("score", help="log-likelihood / perplexity of a continuation")
    s.add_argument("memory_ids", help="memory id(s), comma-separated, or - for none")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", help="continuation text")
    g.add_argument("--file", help="continuation from a UTF-8 file")
    g.add_argument("--tokens", help="continuation token ids, comma-separated")
    s.add_argument("--prompt", default="", help="text read after the memory, not scored")
    s.add_argument("--json", action="store_true", help="print the response as JSON")

    ls = sub.add_parser("ls", help="list your memories")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    st = sub.add_parser("stat", help="describe a memory")
    st.add_argument("memory_id")
    st.add_argument("--json", action="store_true")
    rm = sub.add_parser("rm", help="delete a memory")
    rm.add_argument("memory_id")
    gt = sub.add_parser("get", help="download a memory blob (resumable)")
    gt.add_argument("memory_id")
    gt.add_argument("out", help="output file (bytes go to OUT.part until verified)")
    gt.add_argument("--no-resume", action="store_true", help="ignore an existing OUT.part")
    sub.add_parser("health", help="gRPC health of both services")
    return p


def _client(args) -> Client:
    token = args.token
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.readline().strip()
    tls = args.tls or bool(args.ca or args.cert)
    return Client.from_files(args.compressor, args.decoder, token=token or None, tls=tls,
                             ca_file=args.ca, cert_file=args.cert, key_file=args.key,
                             server_name=args.server_name, timeout=args.timeout)


def _cmd_compress(c: Client, args) -> int:
    config: dict = {}
    if args.config_json:
        try:
            config = json.loads(args.config_json)
        except json.JSONDecodeError as e:
            raise ValueError(f"--config-json is not JSON: {e}") from None
    for _, field, _, _ in _CONFIG_FLAGS:
        v = getattr(args, "cfg_" + field)
        if v is not None:
            config[field] = v
    printer = _ProgressPrinter(args.quiet or args.json)
    cancel = threading.Event()
    label = args.label
    try:
        if args.file == "-":
            result = c.compress(sys.stdin.buffer, config, label=label or "stdin",
                                add_bos=args.add_bos, on_progress=printer, cancel=cancel)
        else:
            if not os.path.isfile(args.file):
                raise ValueError(f"no such file: {args.file}")
            kw = {"label": label} if label else {}
            result = c.compress_file(args.file, config, add_bos=args.add_bos,
                                     on_progress=printer, cancel=cancel, **kw)
    finally:
        printer.finish()
    if args.json:
        print(json.dumps({"memory": _msg_json(result.memory), "existed": result.existed,
                          "timings": _msg_json(result.timings),
                          "request_id": result.request_id}, indent=1))
        return 0
    print(result.memory_id)
    if not args.quiet:
        t = result.timings
        what = "already existed" if result.existed else "compressed"
        print(f"{what} in {t.total_seconds:.2f} s (queue {t.queue_seconds:.2f} s, tokenize "
              f"{t.tokenize_seconds:.2f} s, compress {t.compress_seconds:.2f} s, seal "
              f"{t.seal_seconds:.2f} s)", file=sys.stderr)
        _print_info(result.memory, sys.stderr)
    return 0


def _cmd_ask(c: Client, args) -> int:
    kw = dict(max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
              top_k=args.top_k, seed=args.seed, stop=args.stop)
    ids = _parse_ids(args.memory_ids)
    if args.raw:
        stream = c.generate(ids, args.question, **kw)
    else:
        msgs = ([{"role": "system", "content": args.system}] if args.system else []) + [
            {"role": "user", "content": args.question}]
        stream = c.generate(ids, messages=msgs, **kw)
    for delta in stream:
        if not args.json and delta.text:
            sys.stdout.write(delta.text)
            sys.stdout.flush()
    done = stream.done
    if args.json:
        print(json.dumps(_msg_json(done), indent=1))
        return 0
    sys.stdout.write("\n")
    u, t = done.usage, done.timings
    print(f"[{done.stop_reason}] prompt {u.prompt_tokens} tok, memory {u.memory_entries} entries, "
          f"generated {u.generated_tokens} tok; ttft {t.ttft_seconds * 1000:.0f} ms, fetch "
          f"{t.fetch_seconds * 1000:.0f} ms, load {t.load_seconds * 1000:.0f} ms, total "
          f"{t.total_seconds:.2f} s, cache {'hit' if t.cache_hit else 'miss'}", file=sys.stderr)
    return 0


def _cmd_score(c: Client, args) -> int:
    if args.tokens is not None:
        try:
            cont: Any = [int(x) for x in args.tokens.split(",") if x.strip()]
        except ValueError:
            raise ValueError("--tokens wants comma-separated integers") from None
    elif args.file is not None:
        with open(args.file, encoding="utf-8") as f:
            cont = f.read()
    else:
        cont = args.text
    r = c.score(_parse_ids(args.memory_ids), cont, prompt=args.prompt)
    if args.json:
        print(json.dumps(_msg_json(r)))
    else:
        print(f"perplexity {r.perplexity:.4f}  nll {r.total_nll:.4f} nats over {r.n_scored} tokens")
    return 0


def _cmd_ls(c: Client, args) -> int:
    n = 0
    for info in c.ls():
        n += 1
        if args.json:
            print(json.dumps(_msg_json(info)))
        else:
            kept = info.n_kept[0] if info.n_kept else 0
            print(f"{info.memory_id}  {info.n_original_tokens:>8} tok  {kept:>6} kept  "
                  f"{_human_bytes(info.blob_bytes):>10}  {info.compression_ratio:6.2f}x  "
                  f"{info.client_label}")
    if not args.json:
        print(f"{n} memories", file=sys.stderr)
    return 0


def _cmd_stat(c: Client, args) -> int:
    info = c.stat(args.memory_id)
    if args.json:
        print(json.dumps(_msg_json(info), indent=1))
    else:
        _print_info(info, sys.stdout)
    return 0


def _cmd_rm(c: Client, args) -> int:
    c.rm(args.memory_id)
    print(f"deleted {args.memory_id}", file=sys.stderr)
    return 0


def _cmd_get(c: Client, args) -> int:
    r = c.get_memory(args.memory_id, args.out, resume=not args.no_resume)
    extra = f", resumed from byte {r.resumed_from}" if r.resumed_from else ""
    print(f"{r.path}: {r.total_bytes} bytes, sha256 {r.sha256} verified{extra}", file=sys.stderr)
    return 0


def _cmd_health(c: Client, args) -> int:
    bad = 0
    for name, svc in (("compressor", c.compressor), ("decoder", c.decoder)):
        try:
            status = svc.health()
        except CtxmemError as e:
            status = f"{e.code.name}: {e.details}"
        print(f"{name} {svc.target}: {status}")
        bad += status != "SERVING"
    return 1 if bad else 0


_COMMANDS = {"compress": _cmd_compress, "ask": _cmd_ask, "score": _cmd_score, "ls": _cmd_ls,
             "stat": _cmd_stat, "rm": _cmd_rm, "get": _cmd_get, "health": _cmd_health}


def main(argv: Optional[List[str]] = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        with _client(args) as c:
            return _COMMANDS[args.cmd](c, args)
    except CtxmemError as e:
        print(f"ctxmem: {args.cmd}: {e.code.name}: {e.details}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:
        print(f"ctxmem: {args.cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ctxmem: {args.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
