"""Summarises bench/run_peer_bench.sh's raw runs into peer_bench.{json,md} (medians, ratios)."""
import json
import statistics
import sys

raw, rounds, out_json, out_md, cpu, cores, flags, load0, load1, model, omp = sys.argv[1:]
rounds = int(rounds)
tests = {"pp512": "prefill 512", "pp2048": "prefill 2048", "tg128": "decode 128"}
ours_name = {"pp512": "BM_Prefill/512", "pp2048": "BM_Prefill/2048", "tg128": "BM_Decode/1/128"}
res = {f: {"llama.cpp": {t: [] for t in tests}, "ctxmem": {t: [] for t in tests}}
       for f in ("q41", "q40")}
for f in ("q41", "q40"):
    for r in range(1, rounds + 1):
        try:
            for e in json.load(open(f"{raw}/llama_{f}_{r}.json")):
                t = (f"pp{e['n_prompt']}" if e["n_gen"] == 0 else f"tg{e['n_gen']}")
                if t in tests:
                    res[f]["llama.cpp"][t].append(e["avg_ts"])
        except (OSError, ValueError):
            pass
        try:
            for b in json.load(open(f"{raw}/ctxmem_{f}_{r}.json"))["benchmarks"]:
                name = b["name"].split("/manual_time")[0].split("/real_time")[0]
                for t, n in ours_name.items():
                    if name == n and "tokens_per_second" in b:
                        res[f]["ctxmem"][t].append(b["tokens_per_second"])
        except (OSError, ValueError, KeyError):
            pass


def med(v):
    return statistics.median(v) if v else None


summary = {f: {e: {t: med(v) for t, v in d.items()} for e, d in fr.items()} for f, fr in res.items()}
rows = []
for t, what in tests.items():
    l41, l40 = summary["q41"]["llama.cpp"][t], summary["q40"]["llama.cpp"][t]
    c41, c40 = summary["q41"]["ctxmem"][t], summary["q40"]["ctxmem"][t]
    best = max(x for x in (l41, l40) if x is not None) if (l41 or l40) else None
    rows.append({"test": t, "what": what, "llama_q4_1": l41, "llama_q4_0": l40,
                 "ctxmem_q4_1": c41, "ctxmem_q4_0": c40,
                 "ratio_vs_llama_same_q4_1": c41 / l41 if c41 and l41 else None,
                 "ratio_vs_llama_q4_0": c41 / l40 if c41 and l40 else None,
                 "ratio_vs_llama_best": c41 / best if c41 and best else None})
doc = {"machine": {"cpu": cpu, "cores": int(cores), "flags": flags.split(),
                   "load_before": load0, "load_after": load1, "omp_wait_policy": omp},
       "threads": 2, "rounds": rounds, "model": model, "raw": res, "rows": rows}
json.dump(doc, open(out_json, "w"), indent=1)


def f(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"


lines = ["# Peer benchmark: ctxmem vs llama.cpp", "",
         f"Machine: {cpu}, {cores} cores available, flags {flags.strip()}; 2 threads; "
         f"load average {load0} before, {load1} after (other engineers share the CPUs); "
         f"OMP_WAIT_POLICY {omp}. Medians of {rounds} alternating rounds. llama.cpp from the "
         "`llama-cpp-python==0.3.36` sdist (AVX-512/VNNI/BF16, no AMX). ctxmem runs "
         f"bench/model_bench (default options) on `{model}` and on its Q4_0 copy. Produced by "
         "`bench/run_peer_bench.sh`.", "",
         "| tokens/s | llama.cpp Q4_1 | llama.cpp Q4_0 | ctxmem Q4_1 | ctxmem Q4_0 | ctxmem Q4_1 / llama Q4_1 | ctxmem Q4_1 / llama Q4_0 | ctxmem Q4_1 / llama best |",
         "|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['what']} | {f(r['llama_q4_1'])} | {f(r['llama_q4_0'])} | {f(r['ctxmem_q4_1'])} | "
                 f"{f(r['ctxmem_q4_0'])} | {f(r['ratio_vs_llama_same_q4_1'], 2)} | "
                 f"{f(r['ratio_vs_llama_q4_0'], 2)} | {f(r['ratio_vs_llama_best'], 2)} |")
open(out_md, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
