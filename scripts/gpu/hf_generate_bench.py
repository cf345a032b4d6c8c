#!/usr/bin/env python3
"""transformers.generate baseline for bench/model/generate_bench.cc (scripts/gpu/generate_bench.sh).

LlamaForCausalLM with Llama-3-8B's shape (hidden 4096, 32 layers, 32 heads, 8 KV heads,
intermediate 14336, vocab 128256, RoPE theta 500000), random init in bf16 directly on the GPU;
greedy generate(max_new_tokens=N, min_new_tokens=N) on random prompts of the same length for each
batch size; tokens/s = batch * N / wall time of generate (prefill included), after a warm-up call
at the same shapes. bf16 only: bitsandbytes is not installed on the GPU machine, so there is no
NF4 baseline. Prints one JSON line per batch, as model_generate_bench does.
"""
import argparse
import json
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--budget-s", type=float, default=150)
    a = ap.parse_args()
    start = time.time()
    kw = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
              num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=8192,
              rms_norm_eps=1e-5, bos_token_id=128000, eos_token_id=128001, tie_word_embeddings=False)
    if int(transformers.__version__.split(".")[0]) >= 5:
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": 500000.0}
    else:
        kw["rope_theta"] = 500000.0
    cfg = LlamaConfig(**kw)
    t0 = time.time()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model.eval()
    torch.cuda.synchronize()
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"event": "setup", "impl": "transformers", "params": params,
                      "init_s": round(time.time() - t0, 1), "dtype": str(next(model.parameters()).dtype),
                      "attn_implementation": getattr(model.config, "_attn_implementation", None),
                      "torch": torch.__version__, "transformers": transformers.__version__}), flush=True)
    batches = [int(b) for b in a.batches.split(",") if b]
    ids_all = torch.randint(0, cfg.vocab_size, (max(batches), a.prompt_len), device="cuda")

    def gen(ids, n):
        with torch.inference_mode():
            return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                                  do_sample=False, pad_token_id=0)

    for b in batches:
        if time.time() - start > a.budget_s:
            print(json.dumps({"impl": "transformers", "variant": "bf16", "batch": b, "skipped": "time budget"}),
                  flush=True)
            continue
        ids = ids_all[:b].contiguous()
        gen(ids, 4)  # warm-up at the same shapes
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        out = gen(ids, a.new_tokens)
        torch.cuda.synchronize()
        s = time.time() - t0
        generated = (out.shape[1] - a.prompt_len) * b
        print(json.dumps({"impl": "transformers", "variant": "bf16", "batch": b, "prompt_len": a.prompt_len,
                          "new_tokens": a.new_tokens, "generated": generated, "seconds": round(s, 3),
                          "tokens_per_s": round(generated / s, 1),
                          "peak_alloc_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
