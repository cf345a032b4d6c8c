#include "services/trainer-worker/train_job.h"

#include <sys/resource.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/log.h"
#include "libs/model/hf_checkpoint.h"
#include "libs/model/peft_adapter.h"
#include "libs/model/torch_util.h"
#include "libs/tokenizer/tokenizer.h"
#include "libs/train/checkpoint_store.h"
#include "libs/train/data.h"
#include "nlohmann/json.hpp"
#include "services/trainer-worker/tiny_model.h"

namespace temper::trainerworker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Proto JSON writes 64-bit integers as strings: accept both.
template <typename T>
T Num(const json& obj, const char* key, T fallback) {
  if (!obj.is_object() || !obj.contains(key)) return fallback;
  const json& v = obj[key];
  if (v.is_number()) return v.get<T>();
  if (v.is_string()) {
    try {
      return static_cast<T>(std::stod(v.get<std::string>()));
    } catch (...) {
      return fallback;
    }
  }
  return fallback;
}

std::string Str(const json& obj, const char* key, const std::string& fallback = "") {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return fallback;
  return obj[key].get<std::string>();
}

// A few Rust (prompt, completion) pairs: the stand-in data set of --tiny-model runs whose config
// names no training files (a round's selected winners do not reach the trainer yet).
std::vector<std::pair<std::string, std::string>> PlaceholderRust() {
  return {
      {"// Add two numbers.\nfn add(a: i32, b: i32) -> i32 {", "\n    a + b\n}\n"},
      {"// Is n even?\nfn is_even(n: u64) -> bool {", "\n    n % 2 == 0\n}\n"},
      {"// Sum of a slice.\nfn sum(xs: &[i64]) -> i64 {", "\n    xs.iter().sum()\n}\n"},
      {"// Largest element, if any.\nfn max(xs: &[i32]) -> Option<i32> {", "\n    xs.iter().copied().max()\n}\n"},
      {"// Reverse a string.\nfn reverse(s: &str) -> String {", "\n    s.chars().rev().collect()\n}\n"},
      {"// Factorial.\nfn factorial(n: u64) -> u64 {", "\n    (1..=n).product()\n}\n"},
      {"// Count vowels.\nfn vowels(s: &str) -> usize {", "\n    s.chars().filter(|c| \"aeiou\".contains(*c)).count()\n}\n"},
      {"// Square every element.\nfn squares(xs: &[i32]) -> Vec<i32> {", "\n    xs.iter().map(|x| x * x).collect()\n}\n"},
  };
}

double PeakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

}  // namespace

absl::StatusOr<TrainJobSpec> ParseTrainPayload(int64_t job_id, const std::string& payload_json) {
  json p = json::parse(payload_json, nullptr, false);
  if (p.is_discarded() || !p.is_object()) return absl::InvalidArgumentError("train payload is not a JSON object");
  if (!p.contains("config") || !p["config"].is_object()) return absl::InvalidArgumentError("train payload has no config");
  const json& c = p["config"];
  TrainJobSpec s;
  s.job_id = job_id;
  s.run_id = Num<int64_t>(p, "run_id", 0);
  s.stage = Str(p, "stage");
  s.round = Num<int32_t>(p, "round", 0);
  if (p.contains("parent_checkpoint_id")) s.parent_checkpoint_id = Num<int64_t>(p, "parent_checkpoint_id", 0);
  s.run_name = Str(c, "name");
  const json model = c.value("model", json::object());
  s.model_path = Str(model, "path");
  if (s.model_path.empty()) return absl::InvalidArgumentError("config.model.path is empty");
  s.tokenizer_path = Str(model, "tokenizer");
  s.model_adapter = Str(model, "adapter");
  s.dtype = Str(model, "dtype", "bf16");
  s.nf4 = Str(c.value("quantization", json::object()), "method", "nf4") == "nf4";
  const json lora = c.value("lora", json::object());
  s.lora.r = Num<int64_t>(lora, "r", 16);
  s.lora.alpha = Num<double>(lora, "alpha", 32);
  s.lora.dropout = Num<double>(lora, "dropout", 0.05);
  s.lora.use_rslora = lora.value("use_rslora", false);
  if (lora.contains("target_modules") && lora["target_modules"].is_array() && !lora["target_modules"].empty())
    s.lora.target_modules = lora["target_modules"].get<std::vector<std::string>>();
  RETURN_IF_ERROR(s.lora.Validate());
  const json t = c.value("train", json::object());
  train::TrainOptions& o = s.options;
  o.learning_rate = Num<double>(t, "learning_rate", 2e-4);
  o.weight_decay = Num<double>(t, "weight_decay", 0);
  o.warmup_steps = Num<int64_t>(t, "warmup_steps", 10);
  o.max_steps = Num<int64_t>(t, "max_steps", 100);
  o.micro_batch_size = Num<int64_t>(t, "micro_batch_size", 4);
  o.gradient_accumulation = Num<int64_t>(t, "gradient_accumulation", 1);
  o.seq_len = Num<int64_t>(t, "seq_len", 2048);
  o.max_grad_norm = Num<double>(t, "max_grad_norm", 1.0);
  o.gradient_checkpointing = t.value("gradient_checkpointing", true);
  // Each round trains with its own data order and dropout draws.
  o.seed = static_cast<uint64_t>(Num<int64_t>(t, "seed", 0)) + static_cast<uint64_t>(s.round) * 1000003ull;
  o.packing = t.value("packing", true);
  o.adam_beta1 = Num<double>(t, "adam_beta1", 0.9);
  o.adam_beta2 = Num<double>(t, "adam_beta2", 0.999);
  o.adam_eps = Num<double>(t, "adam_eps", 1e-8);
  s.save_every = Num<int32_t>(t, "save_every", 50);
  s.keep_last = Num<int32_t>(t, "keep_last", 3);
  RETURN_IF_ERROR(o.Validate());
  const json data = c.value("data", json::object());
  if (data.contains("train_files") && data["train_files"].is_array())
    s.train_files = data["train_files"].get<std::vector<std::string>>();
  return s;
}

v1::FailureClass ClassifyFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return v1::FAILURE_CLASS_USER_ERROR;
    case absl::StatusCode::kResourceExhausted:
      return v1::FAILURE_CLASS_OOM;
    default:
      return v1::FAILURE_CLASS_INFRASTRUCTURE;
  }
}

absl::StatusOr<TrainJobResult> RunTrainJob(const TrainJobSpec& spec, const TrainJobEnv& env,
                                           const ProgressFn& progress, const std::atomic<bool>& stop) {
  TrainJobResult result;
  std::vector<std::string> notes;
  // The model.
  std::string model_dir = spec.model_path;
  bool tiny = env.tiny_model == TinyModel::kAlways ||
              (env.tiny_model == TinyModel::kIfMissing && !fs::exists(fs::path(model_dir) / "config.json"));
  if (tiny) {
    model_dir = env.checkpoint_root + "/tiny-random-llama";
    RETURN_IF_ERROR(EnsureTinyRandomModel(model_dir, /*seed=*/1234));
    notes.push_back(absl::StrCat("RANDOM TINY MODEL (", model_dir, ") instead of ", spec.model_path,
                                 ": a plumbing check, not a model that knows anything"));
  } else if (!fs::exists(fs::path(model_dir) / "config.json")) {
    return absl::NotFoundError(absl::StrCat("config.model.path ", model_dir, " has no config.json"));
  }
  const bool cuda = torch::cuda::is_available();
  model::LoadOptions load;
  load.device = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (cuda) {
    ASSIGN_OR_RETURN(load.dtype, model::ParseFloatDtype(spec.dtype));
  } else {
    load.dtype = torch::kFloat32;  // CPU: float32 whatever the config asks
  }
  load.nf4 = spec.nf4;
  ASSIGN_OR_RETURN(model::Transformer net, model::LoadHfModel(model_dir, load));
  const int64_t vocab = net->config().vocab_size;

  // The tokenizer and the data.
  train::TokenizeFn tokenize;
  train::DataOptions data_options;
  data_options.vocab_size = vocab;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (tiny) {
    tokenize = train::ByteTokenizer();
    data_options.eos_id = kTinyEosId;
  } else {
    const std::string path = spec.tokenizer_path.empty() ? model_dir + "/tokenizer.json" : spec.tokenizer_path;
    auto loaded = tokenizer::Tokenizer::FromFile(path);
    if (!loaded.ok()) return absl::NotFoundError(absl::StrCat("tokenizer ", path, ": ", loaded.status().message()));
    tok = std::move(*loaded);
    tokenize = [t = tok.get()](std::string_view text) { return t->Encode(text, {.add_special_tokens = false}); };
    if (!net->config().eos_token_ids.empty()) data_options.eos_id = static_cast<int32_t>(net->config().eos_token_ids[0]);
    if (net->config().bos_token_id) data_options.bos_id = static_cast<int32_t>(*net->config().bos_token_id);
  }
  std::vector<train::Example> examples;
  std::vector<std::string> sources;
  for (const std::string& f : spec.train_files) {
    const std::string path = (!env.data_root.empty() && fs::path(f).is_relative()) ? env.data_root + "/" + f : f;
    ASSIGN_OR_RETURN(auto part, train::ReadExamplesJsonl(path, tokenize, data_options));
    examples.insert(examples.end(), part.begin(), part.end());
    sources.push_back(path);
  }
  if (examples.empty()) {
    if (!tiny)
      return absl::InvalidArgumentError(
          "no training data: data.train_files is empty and a round's selected samples do not reach the "
          "trainer yet (docs/train.md)");
    for (const auto& [prompt, completion] : PlaceholderRust()) {
      train::Example e;
      ASSIGN_OR_RETURN(e.prompt, tokenize(prompt));
      ASSIGN_OR_RETURN(e.completion, tokenize(completion));
      e.completion.push_back(kTinyEosId);
      examples.push_back(std::move(e));
    }
    sources.push_back("built-in placeholder Rust snippets (tiny-model runs without data.train_files)");
    notes.push_back("trained on built-in placeholder data");
  }

  // Where this job's checkpoints live; a re-queued attempt finds its predecessor's.
  const std::string job_root = absl::StrCat(env.checkpoint_root, "/run-", spec.run_id, "/job-", spec.job_id);
  ASSIGN_OR_RETURN(train::CheckpointStore store, train::CheckpointStore::Open(job_root, spec.keep_last));
  auto latest = store.Latest();
  // The LoRA: the parent checkpoint's adapter when it is a local directory (its config wins),
  // else config.model.adapter, else fresh.
  std::string start_adapter;
  if (!spec.parent_uri.empty() && fs::exists(fs::path(spec.parent_uri) / "adapter_config.json")) {
    start_adapter = spec.parent_uri;
  } else if (!spec.model_adapter.empty()) {
    start_adapter = spec.model_adapter;
  }
  model::LoraConfig lora = spec.lora;
  if (!start_adapter.empty()) {
    ASSIGN_OR_RETURN(lora, model::ReadAdapterConfig(start_adapter));
    RETURN_IF_ERROR(model::LoadAdapter(net, start_adapter));
    notes.push_back("started from adapter " + start_adapter);
  } else {
    RETURN_IF_ERROR(model::ApplyLora(net, lora, spec.options.seed));
    if (spec.parent_checkpoint_id)
      notes.push_back(absl::StrCat("parent checkpoint ", *spec.parent_checkpoint_id, " (", spec.parent_uri,
                                   ") is not a local adapter directory: starting a fresh LoRA"));
  }
  ASSIGN_OR_RETURN(auto trainer, train::Trainer::Create(net, lora, std::move(examples), spec.options));
  trainer->set_card_info({tiny ? "tiny-random-llama (random weights)" : spec.model_path, sources,
                          tiny ? "Trained on a random tiny model: a plumbing check only." : ""});
  if (latest) {
    ASSIGN_OR_RETURN(train::LoadReport report, trainer->LoadState(latest->path));
    notes.push_back(absl::StrCat("resumed from ", latest->path, " at step ", report.step));
    if (report.optimizer_reset) notes.push_back(report.reason);
  }
  for (const auto& n : notes) spdlog::info("job {}: {}", spec.job_id, n);

  double window_loss = 0;
  int64_t window_steps = 0;
  double tokens = 0, seconds = 0;
  auto save = [&]() -> absl::Status {
    const std::string dir = store.PathFor(trainer->step());
    if (fs::exists(dir)) return absl::OkStatus();  // already saved at this step
    RETURN_IF_ERROR(trainer->SaveState(dir));
    const double loss = window_steps > 0 ? window_loss / window_steps : (trainer->losses().empty() ? 0 : trainer->losses().back());
    ASSIGN_OR_RETURN(auto removed, store.Record(trainer->step(), loss));
    window_loss = 0;
    window_steps = 0;
    spdlog::info("job {}: checkpoint {} (removed {})", spec.job_id, dir, removed.size());
    return absl::OkStatus();
  };
  train::StepStats last;
  while (!trainer->done()) {
    if (stop.load()) {
      result.stopped = true;
      RETURN_IF_ERROR(save());  // a re-queued attempt continues from here
      return result;
    }
    ASSIGN_OR_RETURN(last, trainer->Step());
    window_loss += last.loss;
    ++window_steps;
    tokens += static_cast<double>(last.tokens);
    seconds += last.seconds;
    result.metrics = {{"loss", last.loss},
                      {"learning_rate", last.learning_rate},
                      {"grad_norm", last.grad_norm},
                      {"tokens_per_second", last.seconds > 0 ? last.tokens / last.seconds : 0},
                      {"peak_rss_mb", PeakRssMb()}};
    if (progress && (last.step % std::max(1, env.progress_every) == 0 || trainer->done())) {
      if (!progress(last.step, result.metrics, static_cast<double>(last.step) / spec.options.max_steps)) {
        result.stopped = true;
        RETURN_IF_ERROR(save());
        return result;
      }
    }
    if (last.step % std::max(1, spec.save_every) == 0 && !trainer->done()) RETURN_IF_ERROR(save());
  }
  RETURN_IF_ERROR(save());
  result.checkpoint_dir = fs::absolute(store.PathFor(trainer->step())).string();
  result.step = trainer->step();
  if (seconds > 0) result.metrics["tokens_per_second"] = tokens / seconds;
  if (!trainer->losses().empty()) result.metrics["loss"] = trainer->losses().back();
  result.notes = absl::StrJoin(notes, "; ");
  return result;
}

}  // namespace temper::trainerworker
