// One TRAIN job of a run, apart from the RPC loop (STYLE.md 4): the payload the coordinator
// queued ({"run_id", "stage", "round", "config": RunConfig JSON, "input_job_id"?,
// "parent_checkpoint_id"?}) to a finished checkpoint directory. Resumes from the job's own latest
// checkpoint when one exists (a re-queued attempt), else starts from the parent's adapter when
// its URI is a local directory, else from a fresh LoRA.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libs/common/status.h"
#include "libs/model/lora.h"
#include "libs/train/trainer.h"
#include "temper/v1/common.pb.h"

namespace temper::trainerworker {

// When to train a random tiny model instead of config.model.path.
enum class TinyModel { kNever, kIfMissing, kAlways };

struct TrainJobSpec {
  int64_t job_id = 0;
  int64_t run_id = 0;
  std::string stage;
  int32_t round = 0;
  std::string run_name;
  std::string model_path;
  std::string tokenizer_path;  // empty: <model_path>/tokenizer.json
  std::string model_adapter;   // config.model.adapter: a PEFT adapter to start from
  std::string dtype = "bf16";
  bool nf4 = true;
  model::LoraConfig lora;
  train::TrainOptions options;
  int32_t save_every = 50;
  int32_t keep_last = 3;
  std::vector<std::string> train_files;
  std::optional<int64_t> parent_checkpoint_id;
  std::string parent_uri;  // filled by the caller (ListCheckpoints) when known
};

// InvalidArgument when the payload or its config is malformed.
absl::StatusOr<TrainJobSpec> ParseTrainPayload(int64_t job_id, const std::string& payload_json);

struct TrainJobEnv {
  std::string checkpoint_root;  // checkpoints go to <root>/run-<run>/job-<job>/step-N
  TinyModel tiny_model = TinyModel::kNever;
  std::string data_root;        // relative train_files resolve against it ("" = cwd)
  int progress_every = 5;       // steps between progress callbacks (and always the last)
};

struct TrainJobResult {
  bool stopped = false;         // the stop flag ended it early (no final checkpoint reported)
  std::string checkpoint_dir;   // the final checkpoint
  int64_t step = 0;
  std::map<std::string, double> metrics;  // loss, learning_rate, tokens_per_second, ...
  std::string notes;            // what the logs should say (tiny model, optimizer reset, ...)
};

// Called every env.progress_every steps with the step and metrics; returns false to stop.
using ProgressFn = std::function<bool(int64_t step, const std::map<std::string, double>& metrics, double fraction)>;

// Trains per `spec`. Errors: InvalidArgument / NotFound / Unimplemented for bad configs, missing
// models or data (the user's to fix); ResourceExhausted for out of memory; Internal otherwise.
absl::StatusOr<TrainJobResult> RunTrainJob(const TrainJobSpec& spec, const TrainJobEnv& env,
                                           const ProgressFn& progress, const std::atomic<bool>& stop);

// The failure class a job's error maps to.
v1::FailureClass ClassifyFailure(const absl::Status& status);

}  // namespace temper::trainerworker
