#include "libs/model/lora.h"

#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"

namespace temper::model {

namespace {

const std::vector<std::string>& KnownTargets() {
  static const std::vector<std::string> kTargets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"};
  return kTargets;
}

// "model.layers.3.mlp.up_proj" -> "up_proj".
std::string LeafName(const std::string& path) { return path.substr(path.rfind('.') + 1); }

}  // namespace

double LoraConfig::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

absl::Status LoraConfig::Validate() const {
  if (r <= 0) return absl::InvalidArgumentError(absl::StrCat("lora r must be positive, got ", r));
  if (dropout < 0.0 || dropout >= 1.0) {
    return absl::InvalidArgumentError(absl::StrCat("lora dropout must be in [0, 1), got ", dropout));
  }
  if (target_modules.empty()) return absl::InvalidArgumentError("lora target_modules is empty");
  for (const auto& t : target_modules) {
    if (std::find(KnownTargets().begin(), KnownTargets().end(), t) == KnownTargets().end()) {
      return absl::InvalidArgumentError(absl::StrCat("lora target module \"", t,
                                                     "\" is not one of q_proj, k_proj, v_proj, "
                                                     "o_proj, gate_proj, up_proj, down_proj"));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyLora(Transformer& model, const LoraConfig& config, uint64_t seed) {
  RETURN_IF_ERROR(config.Validate());
  auto projections = model->Projections();
  for (auto& [name, linear] : projections) {
    if (linear->has_lora()) return absl::FailedPreconditionError(absl::StrCat(name, " already has LoRA"));
  }
  try {
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    torch::Generator gen = at::detail::createCPUGenerator(seed);
    for (auto& [name, linear] : projections) {
      const std::string leaf = LeafName(name);
      if (std::find(config.target_modules.begin(), config.target_modules.end(), leaf) ==
          config.target_modules.end()) {
        continue;
      }
      linear->AttachLora(config.r, config.scaling(), config.dropout, gen);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("ApplyLora: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, torch::Tensor>> LoraParameters(Transformer& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, linear] : model->Projections()) {
    if (!linear->has_lora()) continue;
    out.emplace_back(absl::StrCat("base_model.model.", name, ".lora_A.weight"), linear->lora_A());
    out.emplace_back(absl::StrCat("base_model.model.", name, ".lora_B.weight"), linear->lora_B());
  }
  return out;
}

}  // namespace temper::model
