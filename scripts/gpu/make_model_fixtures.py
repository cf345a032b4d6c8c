#!/usr/bin/env python3
"""Writes the reference fixtures libs/model/fixture_test.cc compares against.

Runs where transformers + peft are installed (the GPU machine; CPU is enough). For each of a tiny
random Llama (with Llama 3 RoPE scaling) and a tiny random Qwen2 (qkv bias, tied embeddings):
  <out>/<name>/config.json, model.safetensors      the base model (float32), save_pretrained
  <out>/<name>/adapter/adapter_config.json, adapter_model.safetensors   a PEFT LoRA on all 7
                                                   projections with random A and B
  <out>/<name>/reference.safetensors               input_ids [2, 40] and logits in float32 of
                                                   base / base+LoRA, float32 and bfloat16 models;
                                                   gen_prompt_<i> / gen_tokens[_lora]_<i>: greedy
                                                   transformers.generate continuations (float32)
and <out>/nf4/nf4_reference.safetensors: bitsandbytes' create_dynamic_map(signed=True) computed
with torch (and, when bitsandbytes imports and CUDA is present, its NF4 quantization of a weight).
Every file is well under 1 MB. Usage: make_model_fixtures.py [--out tests/fixtures/model]
"""
import argparse
import copy
import json
import os

import torch
import transformers
from safetensors.torch import save_file

SEQ = 40  # longer than original_max_position_embeddings / high_freq_factor for llama3 scaling
GEN_PROMPTS = (7, 13)  # greedy generation: prompt lengths (prefixes of input_ids rows 0 and 1)
GEN_NEW = 24           # tokens transformers.generate adds to each


def greedy(model, prompt):
    """transformers' greedy continuation of one unpadded prompt (no EOS stop, no sampling)."""
    ids = torch.tensor([prompt], dtype=torch.int64)
    model.generation_config.eos_token_id = None
    gc = transformers.GenerationConfig(max_new_tokens=GEN_NEW, do_sample=False,
                                       num_beams=1, eos_token_id=None, pad_token_id=0)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc)
    return out[0, len(prompt):].to(torch.int64).contiguous()


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes.functional.create_dynamic_map, verbatim in substance."""
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def tiny_config(kind):
    common = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  rms_norm_eps=1e-6, hidden_act="silu", initializer_range=0.2)
    major = int(transformers.__version__.split(".")[0])
    if kind == "llama":
        rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
        if major >= 5:
            common["rope_parameters"] = dict(rope, rope_theta=500000.0)
        else:
            common.update(rope_scaling=rope, rope_theta=500000.0)
        return transformers.LlamaConfig(tie_word_embeddings=False, **common)
    if major >= 5:
        common["rope_parameters"] = {"rope_type": "default", "rope_theta": 1000000.0}
    else:
        common["rope_theta"] = 1000000.0
    return transformers.Qwen2Config(tie_word_embeddings=True, use_sliding_window=False, **common)


def make_model(kind, out_dir):
    import peft

    torch.manual_seed(1234 if kind == "llama" else 5678)
    config = tiny_config(kind)
    cls = transformers.LlamaForCausalLM if kind == "llama" else transformers.Qwen2ForCausalLM
    model = cls(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so that loading them is checked
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.uniform_(0.5, 1.5) if "norm" in name else p.normal_(0.0, 0.2)
    d = os.path.join(out_dir, kind)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    ids = torch.randint(0, 256, (2, SEQ), generator=torch.Generator().manual_seed(7))
    ref = {"input_ids": ids.to(torch.int64)}
    with torch.no_grad():
        ref["logits_fp32"] = model(ids).logits.float().contiguous()
        ref["logits_bf16"] = copy.deepcopy(model).to(torch.bfloat16)(ids).logits.float().contiguous()
    prompts = [ids[row, :n].tolist() for row, n in enumerate(GEN_PROMPTS)]
    with torch.no_grad():
        for i, p in enumerate(prompts):
            ref[f"gen_prompt_{i}"] = torch.tensor(p, dtype=torch.int64)
            ref[f"gen_tokens_{i}"] = greedy(model, p)
    lcfg = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                           "gate_proj", "up_proj", "down_proj"])
    pmodel = peft.get_peft_model(model, lcfg).eval()
    with torch.no_grad():
        for name, p in pmodel.named_parameters():
            if "lora_" in name:
                p.normal_(0.0, 0.1)
        pmodel.save_pretrained(os.path.join(d, "adapter"), safe_serialization=True)
        ref["logits_fp32_lora"] = pmodel(ids).logits.float().contiguous()
        ref["logits_bf16_lora"] = copy.deepcopy(pmodel).to(torch.bfloat16)(ids).logits.float().contiguous()
        for i, p in enumerate(prompts):
            ref[f"gen_tokens_lora_{i}"] = greedy(pmodel, p)
    print(kind, "greedy:", {k: v.tolist() for k, v in ref.items() if k.startswith("gen_tokens")})
    save_file(ref, os.path.join(d, "reference.safetensors"), metadata={
        "transformers": transformers.__version__, "peft": peft.__version__, "torch": torch.__version__,
        "attn_implementation": str(getattr(model.config, "_attn_implementation", "?"))})
    for f in sorted(os.listdir(d)) + ["adapter/" + x for x in sorted(os.listdir(os.path.join(d, "adapter")))]:
        p = os.path.join(d, f)
        if os.path.isfile(p):
            print(f"{kind}/{f}: {os.path.getsize(p)} bytes")
    with open(os.path.join(d, "config.json")) as f:
        print(kind, "config rope:", {k: v for k, v in json.load(f).items() if "rope" in k})


def make_nf4(out_dir):
    d = os.path.join(out_dir, "nf4")
    os.makedirs(d, exist_ok=True)
    tensors = {"dynamic_map": create_dynamic_map(signed=True)}
    meta = {"torch": torch.__version__}
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as bf
        tensors["bnb_dynamic_map"] = bf.create_dynamic_map(signed=True).float().cpu()
        if torch.cuda.is_available():
            w = torch.randn(64 * 1000 + 32, generator=torch.Generator().manual_seed(3)) * 0.02
            packed, state = bf.quantize_4bit(w.cuda(), blocksize=64, compress_statistics=True, quant_type="nf4")
            tensors["weight"] = w.contiguous()
            tensors["bnb_packed"] = packed.flatten().cpu().contiguous()
            tensors["bnb_dequantized"] = bf.dequantize_4bit(packed, state).flatten().float().cpu().contiguous()
            meta["bitsandbytes"] = bnb.__version__
    except ImportError as e:
        print("bitsandbytes not importable, dynamic map only:", e)
    save_file(tensors, os.path.join(d, "nf4_reference.safetensors"), metadata=meta)
    print("nf4:", sorted(tensors))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/fixtures/model"))
    args = ap.parse_args()
    print("torch", torch.__version__, "transformers", transformers.__version__)
    for kind in ("llama", "qwen2"):
        make_model(kind, args.out)
    make_nf4(args.out)


if __name__ == "__main__":
    main()
