#include "libs/model/peft_adapter.h"

#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "libs/model/path_util.h"
#include "libs/model/safetensors.h"
#include "libs/model/torch_util.h"

namespace temper::model {

namespace {

using nlohmann::json;

absl::Status Unsupported(const std::string& what) {
  return absl::UnimplementedError(absl::StrCat("adapter_config.json: ", what, " is not supported"));
}

bool IsEmpty(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() || (it->is_object() && it->empty()) ||
         (it->is_array() && it->empty());
}

}  // namespace

absl::StatusOr<LoraConfig> ReadAdapterConfig(const std::string& dir) {
  const std::string path = JoinPath(dir, "adapter_config.json");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError(path + ": not a JSON object");
  try {
    if (j.value("peft_type", std::string("LORA")) != "LORA") return Unsupported("peft_type " + j["peft_type"].dump());
    if (j.value("use_dora", false)) return Unsupported("use_dora");
    if (j.value("fan_in_fan_out", false)) return Unsupported("fan_in_fan_out");
    if (j.value("bias", std::string("none")) != "none") return Unsupported("bias " + j["bias"].dump());
    for (const char* key : {"rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform"}) {
      if (!IsEmpty(j, key)) return Unsupported(key);
    }
    LoraConfig c;
    c.r = j.at("r").get<int64_t>();
    c.alpha = j.value("lora_alpha", static_cast<double>(c.r));
    c.dropout = j.value("lora_dropout", 0.0);
    c.use_rslora = j.value("use_rslora", false);
    const json& t = j.at("target_modules");
    if (t.is_string()) {
      if (t.get<std::string>() != "all-linear") return Unsupported("target_modules regex " + t.dump());
      // PEFT's all-linear: every linear but the output head; keep the default list.
    } else {
      c.target_modules.clear();
      for (const json& m : t) c.target_modules.push_back(m.get<std::string>());
    }
    RETURN_IF_ERROR(c.Validate());
    return c;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

absl::Status LoadAdapter(Transformer& model, const std::string& dir) {
  ASSIGN_OR_RETURN(LoraConfig config, ReadAdapterConfig(dir));
  RETURN_IF_ERROR(ApplyLora(model, config, /*seed=*/0));
  const std::string path = JoinPath(dir, "adapter_model.safetensors");
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  std::map<std::string, torch::Tensor> params;
  for (auto& [name, t] : LoraParameters(model)) params.emplace(name, t);
  size_t filled = 0;
  for (const TensorView& view : file->tensors()) {
    auto it = params.find(view.name);
    if (it == params.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": unexpected tensor ", view.name,
                                                     " (not a LoRA factor of a targeted module)"));
    }
    std::vector<int64_t> want(it->second.sizes().begin(), it->second.sizes().end());
    if (view.shape != want) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", view.name, " has the wrong shape"));
    }
    ASSIGN_OR_RETURN(torch::Tensor t, ToTorch(view));
    RETURN_IF_ERROR(CatchTorch("loading " + view.name, [&] {
      torch::NoGradGuard no_grad;
      it->second.copy_(t.to(it->second.device(), it->second.scalar_type()));
    }));
    ++filled;
  }
  if (filled != params.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds ", filled, " of the ", params.size(),
                                                   " LoRA tensors its config implies"));
  }
  return absl::OkStatus();
}

absl::Status SaveAdapter(Transformer& model, const LoraConfig& config, const std::string& dir,
                         const std::string& base_model) {
  RETURN_IF_ERROR(MakeDirs(dir));
  SafetensorsWriter writer;
  for (auto& [name, t] : LoraParameters(model)) RETURN_IF_ERROR(AddTensor(writer, name, t));
  writer.SetMetadata("format", "pt");
  RETURN_IF_ERROR(writer.WriteFile(JoinPath(dir, "adapter_model.safetensors")));
  json j = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model},
      {"r", config.r},
      {"lora_alpha", config.alpha},
      {"lora_dropout", config.dropout},
      {"use_rslora", config.use_rslora},
      {"target_modules", config.target_modules},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"use_dora", false},
  };
  return WriteFileAtomically(JoinPath(dir, "adapter_config.json"), j.dump(2) + "\n");
}

}  // namespace temper::model
