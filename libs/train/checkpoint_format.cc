#include "libs/train/checkpoint_format.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/model/safetensors.h"
#include "libs/model/torch_util.h"
#include "nlohmann/json.hpp"

namespace temper::train {
namespace {

using nlohmann::json;

json OptionsToJson(const TrainOptions& o) {
  return {{"learning_rate", o.learning_rate}, {"weight_decay", o.weight_decay}, {"warmup_steps", o.warmup_steps},
          {"max_steps", o.max_steps}, {"micro_batch_size", o.micro_batch_size},
          {"gradient_accumulation", o.gradient_accumulation}, {"seq_len", o.seq_len},
          {"max_grad_norm", o.max_grad_norm}, {"gradient_checkpointing", o.gradient_checkpointing},
          {"seed", o.seed}, {"packing", o.packing}, {"adam_beta1", o.adam_beta1}, {"adam_beta2", o.adam_beta2},
          {"adam_eps", o.adam_eps}, {"pad_id", o.pad_id}};
}

TrainOptions OptionsFromJson(const json& j) {
  TrainOptions o;
  o.learning_rate = j.value("learning_rate", o.learning_rate);
  o.weight_decay = j.value("weight_decay", o.weight_decay);
  o.warmup_steps = j.value("warmup_steps", o.warmup_steps);
  o.max_steps = j.value("max_steps", o.max_steps);
  o.micro_batch_size = j.value("micro_batch_size", o.micro_batch_size);
  o.gradient_accumulation = j.value("gradient_accumulation", o.gradient_accumulation);
  o.seq_len = j.value("seq_len", o.seq_len);
  o.max_grad_norm = j.value("max_grad_norm", o.max_grad_norm);
  o.gradient_checkpointing = j.value("gradient_checkpointing", o.gradient_checkpointing);
  o.seed = j.value("seed", o.seed);
  o.packing = j.value("packing", o.packing);
  o.adam_beta1 = j.value("adam_beta1", o.adam_beta1);
  o.adam_beta2 = j.value("adam_beta2", o.adam_beta2);
  o.adam_eps = j.value("adam_eps", o.adam_eps);
  o.pad_id = j.value("pad_id", o.pad_id);
  return o;
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::Status WriteTrainerState(const std::string& dir, const TrainerStateFile& s) {
  json opt = json::object();
  model::SafetensorsWriter writer;
  for (const auto& [name, m] : s.optimizer) {
    opt[name] = {{"step", m.step}};
    RETURN_IF_ERROR(model::AddTensor(writer, name + ".exp_avg", m.exp_avg.to(torch::kFloat32)));
    RETURN_IF_ERROR(model::AddTensor(writer, name + ".exp_avg_sq", m.exp_avg_sq.to(torch::kFloat32)));
  }
  for (const auto& [device, state] : s.rng) RETURN_IF_ERROR(model::AddTensor(writer, "rng." + device, state));
  json j = {{"format", 1},
            {"step", s.step},
            {"data_cursor", {{"epoch", s.cursor.epoch}, {"index", s.cursor.index}}},
            {"losses", s.losses},
            {"options", OptionsToJson(s.options)},
            {"lora", {{"r", s.lora.r}, {"alpha", s.lora.alpha}, {"dropout", s.lora.dropout},
                      {"use_rslora", s.lora.use_rslora}, {"target_modules", s.lora.target_modules}}},
            {"optimizer", opt}};
  RETURN_IF_ERROR(writer.WriteFile(dir + "/trainer_state.safetensors"));
  return model::WriteFileAtomically(dir + "/trainer_state.json", j.dump(2) + "\n");
}

absl::StatusOr<TrainerStateFile> ReadTrainerState(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string text, ReadText(dir + "/trainer_state.json"));
  json j = json::parse(text, nullptr, false);
  const std::string where = dir + "/trainer_state.json";
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError(where + ": not a JSON object");
  if (j.value("format", 0) != 1) return absl::InvalidArgumentError(where + ": unknown format (want 1)");
  TrainerStateFile s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.cursor.epoch = j.at("data_cursor").at("epoch").get<int64_t>();
    s.cursor.index = j.at("data_cursor").at("index").get<int64_t>();
    s.losses = j.at("losses").get<std::vector<double>>();
    s.options = OptionsFromJson(j.at("options"));
    const json& l = j.at("lora");
    s.lora.r = l.at("r").get<int64_t>();
    s.lora.alpha = l.at("alpha").get<double>();
    s.lora.dropout = l.value("dropout", 0.0);
    s.lora.use_rslora = l.value("use_rslora", false);
    s.lora.target_modules = l.at("target_modules").get<std::vector<std::string>>();
    for (const auto& [name, v] : j.at("optimizer").items()) s.optimizer[name].step = v.at("step").get<int64_t>();
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
  }
  ASSIGN_OR_RETURN(auto file, model::SafetensorsFile::Open(dir + "/trainer_state.safetensors"));
  for (auto& [name, m] : s.optimizer) {
    const model::TensorView* a = file->Find(name + ".exp_avg");
    const model::TensorView* b = file->Find(name + ".exp_avg_sq");
    if (a == nullptr || b == nullptr) return absl::InvalidArgumentError(absl::StrCat(dir, ": no AdamW moments for ", name));
    ASSIGN_OR_RETURN(m.exp_avg, model::ToTorch(*a));
    ASSIGN_OR_RETURN(m.exp_avg_sq, model::ToTorch(*b));
  }
  for (const auto& t : file->tensors()) {
    if (t.name.rfind("rng.", 0) == 0) {
      ASSIGN_OR_RETURN(s.rng[t.name.substr(4)], model::ToTorch(t));
    }
  }
  return s;
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadAdapterTensors(const std::string& dir) {
  ASSIGN_OR_RETURN(auto file, model::SafetensorsFile::Open(dir + "/adapter_model.safetensors"));
  std::map<std::string, torch::Tensor> out;
  for (const auto& t : file->tensors()) {
    ASSIGN_OR_RETURN(out[t.name], model::ToTorch(t));
  }
  return out;
}

absl::Status WriteModelCard(const std::string& dir, const ModelCardInfo& card, const model::LoraConfig& lora,
                            const TrainOptions& o, int64_t step, int64_t examples, const std::vector<double>& losses) {
  std::ostringstream md;
  md << "---\nlibrary_name: peft\nbase_model: " << json(card.base_model).dump() << "\ntags:\n- lora\n- temper\n---\n\n";
  md << "# LoRA adapter trained by temper\n\n";
  if (!card.notes.empty()) md << "**" << card.notes << "**\n\n";
  md << "- Base model: `" << card.base_model << "`\n";
  md << "- Optimizer steps: " << step << " of " << o.max_steps << "\n";
  md << "- Training data: " << examples << " examples from "
     << (card.data_sources.empty() ? std::string("(unnamed)") : absl::StrJoin(card.data_sources, ", ")) << "\n\n";
  md << "## Hyper-parameters\n\n| name | value |\n| --- | --- |\n";
  md << "| lora.r | " << lora.r << " |\n| lora.alpha | " << lora.alpha << " |\n| lora.dropout | " << lora.dropout
     << " |\n| lora.use_rslora | " << (lora.use_rslora ? "true" : "false") << " |\n| lora.target_modules | "
     << absl::StrJoin(lora.target_modules, ", ") << " |\n";
  const json options = OptionsToJson(o);
  for (const auto& [k, v] : options.items()) md << "| train." << k << " | " << v.dump() << " |\n";
  md << "\n## Training loss\n\n";
  if (losses.empty()) {
    md << "(no steps)\n";
  } else {
    md << "| step | loss |\n| --- | --- |\n";
    // At most ~20 rows: every k-th step and the last.
    const size_t every = std::max<size_t>(1, losses.size() / 20);
    for (size_t i = 0; i < losses.size(); ++i) {
      if (i % every == 0 || i + 1 == losses.size()) md << "| " << i + 1 << " | " << losses[i] << " |\n";
    }
  }
  return model::WriteFileAtomically(dir + "/README.md", md.str());
}

}  // namespace temper::train
