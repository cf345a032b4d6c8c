// The on-disk form of a trainer checkpoint, apart from the trainer (STYLE.md 10): beside the PEFT
// adapter that libs/model writes,
//   trainer_state.json         {"format": 1, "step", "data_cursor": {"epoch", "index"}, "losses",
//                               "options": {...}, "lora": {"r", "alpha", "target_modules"},
//                               "optimizer": {"<PEFT name>": {"step": n}, ...}}
//   trainer_state.safetensors  "<PEFT name>.exp_avg", "<PEFT name>.exp_avg_sq" (float32) and
//                              "rng.cpu" (+ "rng.<device>") generator states (uint8)
//   README.md                  a model card: base model, data, hyper-parameters, losses
// Each file is written atomically; the trainer makes the directory as a whole atomic.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "libs/common/status.h"
#include "libs/model/lora.h"
#include "libs/train/packing.h"
#include "libs/train/trainer.h"

namespace temper::train {

struct AdamMoments {
  int64_t step = 0;
  torch::Tensor exp_avg;     // float32, CPU
  torch::Tensor exp_avg_sq;  // float32, CPU
};

struct TrainerStateFile {
  int64_t step = 0;
  DataCursor cursor;
  std::vector<double> losses;
  TrainOptions options;
  model::LoraConfig lora;
  std::map<std::string, AdamMoments> optimizer;  // by PEFT tensor name
  std::map<std::string, torch::Tensor> rng;      // "cpu", "cuda", ...: Generator::get_state()
};

// Writes trainer_state.json and trainer_state.safetensors into `dir` (which exists).
absl::Status WriteTrainerState(const std::string& dir, const TrainerStateFile& state);
// Reads them back. NotFound when absent, InvalidArgument when malformed.
absl::StatusOr<TrainerStateFile> ReadTrainerState(const std::string& dir);

// adapter_model.safetensors of `dir` as CPU tensors by PEFT name.
absl::StatusOr<std::map<std::string, torch::Tensor>> ReadAdapterTensors(const std::string& dir);

// Writes `dir`/README.md: a Hugging Face model card with PEFT metadata.
absl::Status WriteModelCard(const std::string& dir, const ModelCardInfo& card, const model::LoraConfig& lora,
                            const TrainOptions& options, int64_t step, int64_t examples,
                            const std::vector<double>& losses);

}  // namespace temper::train
