#!/usr/bin/env python3
"""Encode throughput of Hugging Face `tokenizers` (Rust, through its Python binding) on ONE thread.

The baseline for bench/tokenizer/tokenizer_bench (temper's libs/tokenizer). Same corpus file
(JSONL, one {"text": ...} object a line; tests/tokenizer/reference_encode.mjs --corpus-out makes
it), same protocol: one cold pass (empty BPE cache), then --passes timed passes, median reported.
Two methods are measured and both printed:
  encode_loop   tokenizer.encode(text) for each document (one Python call per document)
  encode_batch  tokenizer.encode_batch(docs) in one call; with TOKENIZERS_PARALLELISM=false and
                RAYON_NUM_THREADS=1 it runs on the calling thread only
Times are wall-clock (time.perf_counter) and process CPU (time.process_time, all threads), so a
stray worker thread would show up as cpu > wall.

  python3 hf_tokenizers_bench.py --tokenizer tokenizer.json --corpus corpus.jsonl [--passes 5]

Prints one JSON object. Needs only `tokenizers` (pip install tokenizers).
"""
import os

# Must be set before tokenizers is imported: its Rayon pool reads them once.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def timed(fn):
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tokens = fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0, tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True, help="path to tokenizer.json")
    ap.add_argument("--corpus", required=True, help="JSONL file, one {\"text\": ...} per line")
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f if line.strip()]
    nbytes = sum(len(d.encode("utf-8")) for d in docs)

    t0 = time.perf_counter()
    tok = Tokenizer.from_file(args.tokenizer)
    load_s = time.perf_counter() - t0

    def loop():
        return sum(len(tok.encode(d).ids) for d in docs)  # add_special_tokens=True (default)

    def batch():
        return sum(len(e.ids) for e in tok.encode_batch(docs))

    results = {}
    # A fresh tokenizer per method, so each has its own cold pass.
    for name, fn in (("encode_loop", loop), ("encode_batch", batch)):
        tok = Tokenizer.from_file(args.tokenizer)
        cold_wall, cold_cpu, tokens = timed(fn)
        walls, cpus = [], []
        for _ in range(max(1, args.passes)):
            w, c, tokens = timed(fn)
            walls.append(w)
            cpus.append(c)
        wall = statistics.median(walls)
        cpu = statistics.median(cpus)
        results[name] = {
            "tokens": tokens,
            "cold_pass_s": cold_wall,
            "cold_pass_cpu_s": cold_cpu,
            "pass_s": walls,
            "pass_cpu_s": cpus,
            "median_pass_s": wall,
            "median_pass_cpu_s": cpu,
            "mb_per_s": nbytes / wall / 1e6,
            "cpu_mb_per_s": nbytes / cpu / 1e6,
            "tokens_per_s": tokens / wall,
            "cold_mb_per_s": nbytes / cold_wall / 1e6,
        }

    print(json.dumps({
        "implementation": f"huggingface tokenizers {tokenizers.__version__} (Python binding)",
        "tokenizer": args.tokenizer,
        "corpus": args.corpus,
        "threads": 1,
        "env": {k: os.environ[k] for k in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")},
        "python_threads_seen": threading.active_count(),
        "docs": len(docs),
        "bytes": nbytes,
        "load_s": load_s,
        "methods": results,
    }, indent=1))


if __name__ == "__main__":
    main()
