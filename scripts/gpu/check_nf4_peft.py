#!/usr/bin/env python3
"""Our NF4 + LoRA forward against PEFT on the same (dequantized) weights.

Usage: check_nf4_peft.py EXPORT_DIR FIXTURE_DIR [--tol 1e-4]
EXPORT_DIR is what libs/model's nf4_peft_export wrote for FIXTURE_DIR: config.json and
model.safetensors holding our NF4 model's base weights dequantized (so transformers multiplies by
exactly the weights our forward multiplies by), and ours.safetensors with input_ids and our NF4 +
LoRA logits (CPU, and CUDA when present). This loads that model into transformers, applies the
fixture's PEFT adapter (FIXTURE_DIR/adapter) — and, separately, the same adapter as temper wrote it
(EXPORT_DIR/adapter, so an adapter from temper must load in PEFT) — runs input_ids in float32 on
CPU and compares each with our logits.
The two sides then differ only in float32 summation order: max |diff| <= --tol (1e-4, as the
float32 fixture check). Exit 0 when within it, 1 otherwise.
"""
import argparse
import os
import sys

import peft
import torch
import transformers
from safetensors.torch import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export_dir")
    ap.add_argument("fixture_dir")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    ours = load_file(os.path.join(args.export_dir, "ours.safetensors"))
    ok = True
    name = os.path.basename(os.path.normpath(args.fixture_dir))
    for label, adapter in (("PEFT-written adapter", os.path.join(args.fixture_dir, "adapter")),
                           ("temper-written adapter", os.path.join(args.export_dir, "adapter"))):
        model = transformers.AutoModelForCausalLM.from_pretrained(args.export_dir).float().eval()
        pmodel = peft.PeftModel.from_pretrained(model, adapter).eval()
        with torch.no_grad():
            ref = pmodel(ours["input_ids"]).logits.float()
        for key in ("logits_cpu", "logits_cuda"):
            if key not in ours:
                continue
            d = (ours[key] - ref).abs()
            within = d.max().item() <= args.tol
            ok &= within
            print(f"{name} NF4 + LoRA vs PEFT with the {label} on dequantized weights ({key[7:]}): "
                  f"max |diff| {d.max().item():.3g}, mean {d.mean().item():.3g}, reference max |logit| "
                  f"{ref.abs().max().item():.3g}, tol {args.tol:g}: {'ok' if within else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
