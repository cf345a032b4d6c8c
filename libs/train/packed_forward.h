// The training forward pass over packed rows. libs/model's Transformer::forward takes a key
// padding mask only, which cannot keep packed documents apart, so this drives the model's own
// modules (embedding, rotary table, decoder layers, norm, head; no architecture of its own) with a
// block-diagonal causal mask built from the batch's doc_ids, and optionally recomputes each decoder
// layer in the backward pass (gradient checkpointing) instead of keeping its activations.
#pragma once

#include <optional>

#include <torch/torch.h>

#include "libs/model/model.h"
#include "libs/train/packing.h"

namespace temper::train {

// allowed [B, 1, T, T] bool: query i may attend key j iff both are in the same document and
// j <= i (and within Mistral's sliding window); the diagonal is always allowed so padding rows
// stay finite.
torch::Tensor DocumentCausalMask(const torch::Tensor& doc_ids, std::optional<int64_t> sliding_window);

// Logits [B, T, vocab] for `input_ids` / `position_ids` / `doc_ids` (each [B, T], any device; moved
// to the model's). With `checkpoint_layers`, each decoder layer runs without recording its graph
// and is recomputed (with the same dropout draws) when the backward pass reaches it. Throws
// c10::Error as libtorch does; the trainer catches at its edge.
torch::Tensor PackedForward(model::Transformer& model, const torch::Tensor& input_ids,
                            const torch::Tensor& position_ids, const torch::Tensor& doc_ids,
                            bool checkpoint_layers);

}  // namespace temper::train
