#include "libs/train/trainer.h"

#include <ATen/Context.h>

#include <filesystem>
#include <sstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/model/peft_adapter.h"
#include "libs/model/torch_util.h"
#include "libs/train/checkpoint_format.h"
#include "libs/train/packed_forward.h"
#include "libs/train/schedule.h"

namespace temper::train {
namespace {

namespace fs = std::filesystem;

// torch::optim keys per-parameter state by the TensorImpl's address: a std::string of it on
// libtorch 1.x, the pointer itself on newer releases. Both spellings from one place.
template <typename Map>
typename Map::key_type StateKey(const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

using StateMap = std::remove_reference_t<decltype(std::declval<torch::optim::AdamW&>().state())>;

bool IsOom(const std::string& what) {
  return what.find("out of memory") != std::string::npos || what.find("CUDA error: out of memory") != std::string::npos;
}

// The generator states that drive dropout: the CPU one, plus the model device's when not the CPU.
std::map<std::string, torch::Tensor> RngStates(torch::Device device) {
  std::map<std::string, torch::Tensor> out;
  auto grab = [&](torch::Device d, const std::string& name) {
    at::Generator gen = at::globalContext().defaultGenerator(d);
    std::lock_guard<std::mutex> lock(gen.mutex());
    out[name] = gen.get_state();
  };
  grab(torch::kCPU, "cpu");
  if (!device.is_cpu()) grab(torch::Device(device.type()), torch::DeviceTypeName(device.type(), /*lower_case=*/true));
  return out;
}

void SetRngStates(const std::map<std::string, torch::Tensor>& states, torch::Device device) {
  for (const auto& [name, state] : states) {
    std::optional<torch::Device> d;
    if (name == "cpu") d = torch::kCPU;
    else if (!device.is_cpu() && name == torch::DeviceTypeName(device.type(), true)) d = torch::Device(device.type());
    if (!d) continue;
    at::Generator gen = at::globalContext().defaultGenerator(*d);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }
}

}  // namespace

absl::Status TrainOptions::Validate() const {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError("train options: " + what); };
  if (!(learning_rate > 0)) return bad("learning_rate must be > 0");
  if (weight_decay < 0) return bad("weight_decay must be >= 0");
  if (max_steps < 1) return bad("max_steps must be >= 1");
  if (warmup_steps < 0 || warmup_steps > max_steps) return bad("warmup_steps must be in [0, max_steps]");
  if (micro_batch_size < 1) return bad("micro_batch_size must be >= 1");
  if (gradient_accumulation < 1) return bad("gradient_accumulation must be >= 1");
  if (seq_len < 2) return bad("seq_len must be >= 2");
  if (adam_beta1 < 0 || adam_beta1 >= 1 || adam_beta2 < 0 || adam_beta2 >= 1) return bad("adam betas must be in [0, 1)");
  if (!(adam_eps > 0)) return bad("adam_eps must be > 0");
  return absl::OkStatus();
}

Trainer::Trainer(model::Transformer model, model::LoraConfig lora, std::vector<Example> examples, TrainOptions options,
                 GradientReducer* reducer)
    : model_(std::move(model)), lora_(std::move(lora)), examples_(std::move(examples)), options_(options), reducer_(reducer) {}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(model::Transformer model, model::LoraConfig lora,
                                                         std::vector<Example> examples, TrainOptions options,
                                                         GradientReducer* reducer) {
  RETURN_IF_ERROR(options.Validate());
  if (examples.empty()) return absl::InvalidArgumentError("no training examples");
  auto params = model::LoraParameters(model);
  if (params.empty()) return absl::InvalidArgumentError("the model has no LoRA parameters (ApplyLora first)");
  std::unique_ptr<Trainer> t(new Trainer(std::move(model), std::move(lora), std::move(examples), options, reducer));
  t->params_ = std::move(params);
  const int world = reducer ? reducer->world_size() : 1;
  PackingOptions p;
  p.seq_len = options.seq_len;
  p.rows = options.micro_batch_size * world;  // every rank packs the global batch and keeps its rows
  p.packing = options.packing;
  p.seed = options.seed;
  p.pad_id = options.pad_id;
  t->packer_ = std::make_unique<Packer>(&t->examples_, p);
  t->ResetOptimizer();
  RETURN_IF_ERROR(model::CatchTorch("seeding", [&] { torch::manual_seed(options.seed); }));
  t->model_->train();
  return t;
}

void Trainer::ResetOptimizer() {
  std::vector<torch::Tensor> tensors;
  for (auto& [name, p] : params_) tensors.push_back(p);
  torch::optim::AdamWOptions o(options_.learning_rate);
  o.betas({options_.adam_beta1, options_.adam_beta2}).eps(options_.adam_eps).weight_decay(options_.weight_decay);
  optimizer_ = std::make_unique<torch::optim::AdamW>(tensors, o);
}

absl::StatusOr<StepStats> Trainer::Step() {
  if (done()) return absl::FailedPreconditionError(absl::StrCat("training is done (", step_, " steps)"));
  try {
    return StepImpl();
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    if (IsOom(what)) return absl::ResourceExhaustedError("out of memory in a training step: " + what);
    return absl::InternalError("training step: " + what);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of host memory in a training step");
  } catch (const std::exception& e) {
    return absl::InternalError(std::string("training step: ") + e.what());
  }
}

absl::StatusOr<StepStats> Trainer::StepImpl() {
  const auto started = std::chrono::steady_clock::now();
  const int world = reducer_ ? reducer_->world_size() : 1;
  const int rank = reducer_ ? reducer_->rank() : 0;
  const int64_t rows = options_.micro_batch_size;
  std::vector<PackedBatch> micro;
  for (int64_t i = 0; i < options_.gradient_accumulation; ++i) {
    PackedBatch b = packer_->Next(&cursor_);
    if (world > 1) {
      auto mine = [&](const torch::Tensor& t) { return t.slice(0, rank * rows, (rank + 1) * rows).contiguous(); };
      b.input_ids = mine(b.input_ids);
      b.position_ids = mine(b.position_ids);
      b.doc_ids = mine(b.doc_ids);
      b.targets = mine(b.targets);
      b.weights = mine(b.weights);
      b.tokens = (b.doc_ids >= 0).sum().item<int64_t>();
    }
    micro.push_back(std::move(b));
  }
  // The normaliser of the whole step: total weight of its loss tokens over micro-batches and ranks.
  torch::Tensor totals = torch::zeros({2}, torch::kFloat64);  // [weight sum, loss tokens]
  for (const auto& b : micro) {
    totals[0] += b.weights.sum().to(torch::kFloat64);
    totals[1] += (b.targets >= 0).sum().to(torch::kFloat64);
  }
  if (reducer_) {
    std::vector<torch::Tensor> v = {totals};
    RETURN_IF_ERROR(reducer_->AllReduceSum(v));
  }
  const double weight_sum = totals[0].item<double>();
  const double denom = weight_sum > 0 ? weight_sum : 1.0;
  const torch::Device device = params_.front().second.device();
  torch::Tensor loss_sum = torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  StepStats stats;
  for (const auto& b : micro) {
    torch::Tensor logits = PackedForward(model_, b.input_ids, b.position_ids, b.doc_ids, options_.gradient_checkpointing);
    const int64_t vocab = logits.size(-1);
    torch::Tensor targets = b.targets.to(device).view({-1});
    torch::Tensor weights = b.weights.to(device).view({-1});
    torch::Tensor ce = torch::nn::functional::cross_entropy(
        logits.view({-1, vocab}).to(torch::kFloat32), targets,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(-100));
    torch::Tensor weighted = (ce * weights).sum();
    if (weight_sum > 0) (weighted / denom).backward();
    loss_sum += weighted.detach().to(torch::kFloat64);
    stats.tokens += b.tokens;
  }
  stats.loss_tokens = static_cast<int64_t>(totals[1].item<double>());
  std::vector<torch::Tensor> grads;
  for (auto& [name, p] : params_) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  if (reducer_) {
    grads.push_back(loss_sum);
    RETURN_IF_ERROR(reducer_->AllReduceSum(grads));
    grads.pop_back();
  }
  std::vector<torch::Tensor> tensors;
  for (auto& [name, p] : params_) tensors.push_back(p);
  const double max_norm = options_.max_grad_norm > 0 ? options_.max_grad_norm : std::numeric_limits<double>::infinity();
  stats.grad_norm = torch::nn::utils::clip_grad_norm_(tensors, max_norm);
  stats.learning_rate = CosineWithWarmup(step_, options_.warmup_steps, options_.max_steps, options_.learning_rate);
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(stats.learning_rate);
  optimizer_->step();
  optimizer_->zero_grad();
  ++step_;
  stats.step = step_;
  stats.loss = loss_sum.item<double>() / denom;
  stats.cursor = cursor_;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  losses_.push_back(stats.loss);
  return stats;
}

absl::Status Trainer::SaveState(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return absl::AlreadyExistsError(absl::StrCat("checkpoint ", dir, " exists"));
  const fs::path target(dir);
  const fs::path tmp = target.parent_path() / (".tmp-" + target.filename().string() + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  TrainerStateFile s;
  s.step = step_;
  s.cursor = cursor_;
  s.losses = losses_;
  s.options = options_;
  s.lora = lora_;
  RETURN_IF_ERROR(model::CatchTorch("reading optimizer state", [&] {
    auto& state = optimizer_->state();
    for (auto& [name, p] : params_) {
      auto it = state.find(StateKey<StateMap>(p));
      if (it == state.end()) continue;  // no step yet
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      s.optimizer[name] = {st.step(), st.exp_avg().detach().cpu(), st.exp_avg_sq().detach().cpu()};
    }
    s.rng = RngStates(params_.front().second.device());
  }));
  absl::Status written = model::SaveAdapter(model_, lora_, tmp.string(), card_.base_model);
  if (written.ok()) written = WriteTrainerState(tmp.string(), s);
  if (written.ok())
    written = WriteModelCard(tmp.string(), card_, lora_, options_, step_, static_cast<int64_t>(examples_.size()), losses_);
  if (written.ok()) {
    fs::rename(tmp, target, ec);
    if (ec) written = absl::InternalError(absl::StrCat("rename ", tmp.string(), " -> ", dir, ": ", ec.message()));
  }
  if (!written.ok()) fs::remove_all(tmp, ec);
  return written;
}

absl::StatusOr<LoadReport> Trainer::LoadState(const std::string& dir) {
  // The adapter must fit this trainer's LoRA exactly.
  ASSIGN_OR_RETURN(auto adapter, ReadAdapterTensors(dir));
  if (adapter.size() != params_.size())
    return absl::InvalidArgumentError(absl::StrCat(dir, ": the adapter has ", adapter.size(), " tensors, the model's LoRA ", params_.size()));
  for (auto& [name, p] : params_) {
    auto it = adapter.find(name);
    if (it == adapter.end()) return absl::InvalidArgumentError(absl::StrCat(dir, ": the adapter has no ", name));
    if (!it->second.sizes().equals(p.sizes()))
      return absl::InvalidArgumentError(absl::StrCat(dir, ": ", name, " has shape ", c10::str(it->second.sizes()),
                                                     ", the model's LoRA ", c10::str(p.sizes())));
  }
  ASSIGN_OR_RETURN(TrainerStateFile s, ReadTrainerState(dir));
  LoadReport report;
  report.step = s.step;
  // Does the optimizer state belong to this adapter? Same LoRA shape, same tensors, same shapes.
  std::vector<std::string> problems;
  if (s.lora.r != lora_.r) problems.push_back(absl::StrCat("it was saved for r=", s.lora.r, ", the adapter has r=", lora_.r));
  if (s.lora.target_modules != lora_.target_modules)
    problems.push_back(absl::StrCat("it was saved for target modules [", absl::StrJoin(s.lora.target_modules, ","),
                                    "], the adapter has [", absl::StrJoin(lora_.target_modules, ","), "]"));
  if (!s.optimizer.empty()) {
    size_t matched = 0;
    for (auto& [name, p] : params_) {
      auto it = s.optimizer.find(name);
      if (it == s.optimizer.end()) {
        problems.push_back("no moments for " + name);
        break;
      }
      if (!it->second.exp_avg.sizes().equals(p.sizes()) || !it->second.exp_avg_sq.sizes().equals(p.sizes())) {
        problems.push_back(absl::StrCat("moments of ", name, " have shape ", c10::str(it->second.exp_avg.sizes()),
                                        ", the parameter ", c10::str(p.sizes())));
        break;
      }
      ++matched;
    }
    if (matched == params_.size() && s.optimizer.size() != params_.size())
      problems.push_back(absl::StrCat(s.optimizer.size() - params_.size(), " moments for tensors the adapter lacks"));
  }
  RETURN_IF_ERROR(model::CatchTorch("loading the checkpoint", [&] {
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : params_) p.copy_(adapter.at(name).to(p.device(), p.scalar_type()));
    ResetOptimizer();
    if (problems.empty()) {
      auto& state = optimizer_->state();
      for (auto& [name, p] : params_) {
        auto it = s.optimizer.find(name);
        if (it == s.optimizer.end()) continue;
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(it->second.step);
        st->exp_avg(it->second.exp_avg.to(p.device(), p.scalar_type()));
        st->exp_avg_sq(it->second.exp_avg_sq.to(p.device(), p.scalar_type()));
        state[StateKey<StateMap>(p)] = std::move(st);
      }
    }
    SetRngStates(s.rng, params_.front().second.device());
  }));
  if (!problems.empty()) {
    report.optimizer_reset = true;
    report.reason = "the saved optimizer state does not fit the adapter (" + absl::StrJoin(problems, "; ") +
                    "): starting the optimizer fresh";
  }
  step_ = s.step;
  cursor_ = s.cursor;
  losses_ = s.losses;
  return report;
}

}  // namespace temper::train
