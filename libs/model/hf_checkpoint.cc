#include "libs/model/hf_checkpoint.h"

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/model/path_util.h"
#include "libs/model/safetensors.h"
#include "libs/model/torch_util.h"

namespace temper::model {

namespace {

// The weight files of a model directory: the shards of the index, or model.safetensors.
absl::StatusOr<std::vector<std::string>> WeightFiles(const std::string& dir) {
  const std::string index = JoinPath(dir, "model.safetensors.index.json");
  if (PathExists(index)) {
    std::ifstream in(index);
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index, ": no \"weight_map\" object"));
    }
    std::set<std::string> files;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(index, ": bad file for ", name));
      }
      files.insert(file.get<std::string>());
    }
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back(JoinPath(dir, f));
    return out;
  }
  const std::string single = JoinPath(dir, "model.safetensors");
  if (!PathExists(single)) {
    return absl::NotFoundError(absl::StrCat(dir, ": neither model.safetensors nor model.safetensors.index.json"));
  }
  return std::vector<std::string>{single};
}

}  // namespace

absl::StatusOr<Transformer> LoadHfModel(const std::string& dir, const LoadOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(JoinPath(dir, "config.json")));
  ASSIGN_OR_RETURN(std::vector<std::string> files, WeightFiles(dir));
  Transformer model{nullptr};
  RETURN_IF_ERROR(CatchTorch("building the model", [&] { model = Transformer(config); }));

  std::map<std::string, torch::Tensor> params;
  for (auto& item : model->named_parameters(/*recurse=*/true)) params.emplace(item.key(), item.value());
  std::set<std::string> filled;
  std::vector<std::string> unexpected;
  for (const std::string& path : files) {
    ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    for (const TensorView& view : file->tensors()) {
      auto it = params.find(view.name);
      if (it == params.end()) {
        // Tied checkpoints may still carry lm_head.weight; old ones carry rotary inv_freq.
        const bool ignorable = (view.name == "lm_head.weight" && config.tie_word_embeddings) ||
                               view.name.ends_with("rotary_emb.inv_freq");
        if (!ignorable) unexpected.push_back(view.name);
        continue;
      }
      torch::Tensor& p = it->second;
      std::vector<int64_t> want(p.sizes().begin(), p.sizes().end());
      if (view.shape != want) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", view.name, " has shape [",
                                                       absl::StrJoin(view.shape, ","), "], the model needs [",
                                                       absl::StrJoin(want, ","), "]"));
      }
      ASSIGN_OR_RETURN(torch::Tensor t, ToTorch(view));
      RETURN_IF_ERROR(CatchTorch("loading " + view.name, [&] {
        torch::NoGradGuard no_grad;
        p.set_data(t.to(options.device, options.dtype));
      }));
      filled.insert(view.name);
    }
  }
  if (!unexpected.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": ", unexpected.size(),
                                                   " tensors the model has no place for, e.g. ",
                                                   unexpected.front()));
  }
  for (const auto& [name, p] : params) {
    if (!filled.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(dir, ": no tensor for parameter ", name));
    }
  }
  RETURN_IF_ERROR(CatchTorch("placing buffers", [&] {
    for (auto& b : model->named_buffers()) b.value().set_data(b.value().to(options.device));
    if (options.nf4) {
      for (auto& [name, linear] : model->Projections()) linear->QuantizeBaseNf4();
    }
  }));
  return model;
}

absl::Status SaveHfWeights(Transformer& model, const std::string& path) {
  SafetensorsWriter writer;
  for (auto& [name, linear] : model->Projections()) {
    if (linear->is_nf4()) {
      return absl::FailedPreconditionError(absl::StrCat(name, " is stored in NF4; cannot save it densely"));
    }
  }
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    if (item.key().find("lora_") != std::string::npos) continue;
    RETURN_IF_ERROR(AddTensor(writer, item.key(), item.value()));
  }
  writer.SetMetadata("format", "pt");
  return writer.WriteFile(path);
}

}  // namespace temper::model
