// The training loop over the LoRA parameters of a libs/model Transformer: packed micro-batches
// (packing.h, packed_forward.h), a prompt-masked, per-example-weighted token cross entropy,
// gradient accumulation, optional data-parallel reduction (reducer.h), gradient clipping, AdamW
// over the LoRA tensors only, and transformers' cosine schedule with warmup (schedule.h).
// The trainer owns SaveState / LoadState (STYLE.md 10); the file format is trainer_state.h.
//
// Loss of a step: sum over its completion tokens of weight * CE / sum of their weights, over all
// micro-batches and ranks (so accumulation and data parallelism give the same step as one big
// batch). Determinism: the data order, LoRA dropout and everything else drawn from libtorch's
// default generator follow `seed`; on one device and thread count, a run resumed from a state
// repeats the uninterrupted run's losses. Seeds libtorch's global generator: one Trainer per
// process (or per thread with no other torch RNG users). Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "libs/common/status.h"
#include "libs/model/lora.h"
#include "libs/model/model.h"
#include "libs/train/data.h"
#include "libs/train/packing.h"
#include "libs/train/reducer.h"

namespace temper::train {

struct TrainOptions {
  double learning_rate = 2e-4;  // peak
  double weight_decay = 0.0;
  int64_t warmup_steps = 10;
  int64_t max_steps = 100;
  int64_t micro_batch_size = 4;  // rows per forward pass (per rank)
  int64_t gradient_accumulation = 1;
  int64_t seq_len = 2048;
  double max_grad_norm = 1.0;  // <= 0 turns clipping off (the norm is still reported)
  bool gradient_checkpointing = true;
  uint64_t seed = 0;
  bool packing = true;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  int32_t pad_id = 0;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// What the model card (README.md beside the adapter) says besides the hyper-parameters.
struct ModelCardInfo {
  std::string base_model;                 // the base model's path or name
  std::vector<std::string> data_sources;  // files or descriptions of the training data
  std::string notes;                      // free text (e.g. "random tiny model")
};

struct StepStats {
  int64_t step = 0;          // optimizer steps done, this one included
  double loss = 0.0;         // the step's weighted mean token loss
  double learning_rate = 0;  // used by this step
  double grad_norm = 0.0;    // before clipping
  int64_t tokens = 0;        // non-padding tokens of this rank's micro-batches
  int64_t loss_tokens = 0;   // tokens that had a loss (completion tokens)
  double seconds = 0.0;
  DataCursor cursor;         // after the step
};

struct LoadReport {
  int64_t step = 0;
  bool optimizer_reset = false;  // the saved optimizer state did not fit the adapter
  std::string reason;            // why, when reset
};

class Trainer {
 public:
  // `model` must already carry LoRA factors (model::ApplyLora or model::LoadAdapter); `lora` is
  // what SaveState writes as adapter_config.json. `reducer` (optional, not owned, outlives the
  // Trainer) makes this one rank of a data-parallel group. InvalidArgument for bad options, no
  // examples or a model without LoRA parameters.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(model::Transformer model, model::LoraConfig lora,
                                                         std::vector<Example> examples, TrainOptions options,
                                                         GradientReducer* reducer = nullptr);

  // One optimizer step (gradient_accumulation micro-batches). ResourceExhausted when the device
  // runs out of memory, Internal for other libtorch errors, FailedPrecondition once max_steps
  // steps are done.
  absl::StatusOr<StepStats> Step();
  bool done() const { return step_ >= options_.max_steps; }
  int64_t step() const { return step_; }
  const DataCursor& cursor() const { return cursor_; }
  const std::vector<double>& losses() const { return losses_; }
  const TrainOptions& options() const { return options_; }
  model::Transformer& model() { return model_; }
  void set_card_info(ModelCardInfo info) { card_ = std::move(info); }

  // Writes a complete checkpoint to `dir` atomically: everything goes to a temporary sibling
  // directory which is then renamed to `dir`. Contents: the PEFT adapter (adapter_config.json,
  // adapter_model.safetensors), trainer_state.json (step, data cursor, losses, options, LoRA
  // signature), trainer_state.safetensors (AdamW moments by PEFT name, RNG state) and a model
  // card README.md. AlreadyExists when `dir` exists; Internal on I/O errors.
  absl::Status SaveState(const std::string& dir);

  // Restores a checkpoint SaveState wrote: adapter weights (which must fit this trainer's LoRA:
  // InvalidArgument otherwise), step, data cursor, losses, RNG and the AdamW moments. When the
  // saved optimizer state does not fit the adapter (other rank, other targets, missing or
  // misshapen tensors) it is not used: the optimizer starts fresh and the report says why.
  absl::StatusOr<LoadReport> LoadState(const std::string& dir);

 private:
  Trainer(model::Transformer model, model::LoraConfig lora, std::vector<Example> examples, TrainOptions options,
          GradientReducer* reducer);
  absl::StatusOr<StepStats> StepImpl();
  void ResetOptimizer();

  model::Transformer model_;
  model::LoraConfig lora_;
  std::vector<Example> examples_;
  TrainOptions options_;
  GradientReducer* reducer_;
  std::vector<std::pair<std::string, torch::Tensor>> params_;  // PEFT name -> live LoRA tensor
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<Packer> packer_;
  DataCursor cursor_;
  int64_t step_ = 0;
  std::vector<double> losses_;
  ModelCardInfo card_;
};

}  // namespace temper::train
