// nf4_peft_export FIXTURE_DIR OUT_DIR: the C++ half of the NF4 + LoRA check against PEFT
// (scripts/gpu/check_model.sh runs it, then scripts/gpu/check_nf4_peft.py).
//
// Loads the fixture model (config.json + model.safetensors) with every projection quantized to
// NF4 (float32 compute), applies the fixture's PEFT adapter, and runs the fixture's input_ids
// through it. Writes to OUT_DIR:
//   config.json            copied from the fixture;
//   model.safetensors      every base parameter, each NF4 projection's weight replaced by its
//                          dequantization (BaseWeight(): what our forward multiplies by), so that
//                          transformers + PEFT can load "our NF4 model" as dense weights;
//   ours.safetensors       input_ids and our logits (logits_cpu; logits_cuda when CUDA is there);
//   adapter/               the fixture's adapter as temper writes it (SaveAdapter), which the
//                          Python side loads with PEFT: an adapter from temper must load in PEFT.
// Exit status 0 on success; errors go to stderr.
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "libs/model/hf_checkpoint.h"
#include "libs/model/path_util.h"
#include "libs/model/peft_adapter.h"
#include "libs/model/safetensors.h"
#include "libs/model/torch_util.h"

namespace temper::model {
namespace {

absl::StatusOr<torch::Tensor> LoadTensor(const std::string& path, const std::string& name) {
  ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(path));
  const TensorView* v = f->Find(name);
  if (v == nullptr) return absl::NotFoundError(path + " lacks " + name);
  return ToTorch(*v);
}

absl::StatusOr<torch::Tensor> NfLoraLogits(const std::string& fixture, const torch::Tensor& ids,
                                           torch::Device device, Transformer* keep) {
  LoadOptions opts;
  opts.nf4 = true;
  opts.device = device;
  ASSIGN_OR_RETURN(Transformer m, LoadHfModel(fixture, opts));
  RETURN_IF_ERROR(LoadAdapter(m, JoinPath(fixture, "adapter")));
  torch::Tensor logits;
  RETURN_IF_ERROR(CatchTorch("forward", [&] {
    torch::NoGradGuard no_grad;
    logits = m->forward(ids.to(device)).to(torch::kCPU).contiguous();
  }));
  if (keep != nullptr) *keep = m;
  return logits;
}

absl::Status Run(const std::string& fixture, const std::string& out) {
  RETURN_IF_ERROR(MakeDirs(out));
  ASSIGN_OR_RETURN(torch::Tensor ids, LoadTensor(JoinPath(fixture, "reference.safetensors"), "input_ids"));
  ids = ids.to(torch::kInt64);
  Transformer m{nullptr};
  ASSIGN_OR_RETURN(torch::Tensor cpu, NfLoraLogits(fixture, ids, torch::kCPU, &m));

  // Dense copy of the NF4 base: BaseWeight() for the quantized projections, the rest as loaded.
  std::map<std::string, torch::Tensor> dequantized;
  for (auto& [name, linear] : m->Projections()) dequantized[name + ".weight"] = linear->BaseWeight();
  SafetensorsWriter weights;
  for (auto& item : m->named_parameters(/*recurse=*/true)) {
    if (item.key().find("lora_") != std::string::npos) continue;
    auto it = dequantized.find(item.key());
    RETURN_IF_ERROR(AddTensor(weights, item.key(), it != dequantized.end() ? it->second : item.value()));
  }
  weights.SetMetadata("format", "pt");
  RETURN_IF_ERROR(weights.WriteFile(JoinPath(out, "model.safetensors")));
  std::ifstream in(JoinPath(fixture, "config.json"));
  std::stringstream config;
  config << in.rdbuf();
  RETURN_IF_ERROR(WriteFileAtomically(JoinPath(out, "config.json"), config.str()));

  ASSIGN_OR_RETURN(LoraConfig lora, ReadAdapterConfig(JoinPath(fixture, "adapter")));
  RETURN_IF_ERROR(SaveAdapter(m, lora, JoinPath(out, "adapter"), out));

  SafetensorsWriter ours;
  RETURN_IF_ERROR(AddTensor(ours, "input_ids", ids));
  RETURN_IF_ERROR(AddTensor(ours, "logits_cpu", cpu));
  if (torch::cuda::is_available()) {
    ASSIGN_OR_RETURN(torch::Tensor cuda, NfLoraLogits(fixture, ids, torch::Device(torch::kCUDA, 0), nullptr));
    RETURN_IF_ERROR(AddTensor(ours, "logits_cuda", cuda));
    std::printf("%s: NF4 + LoRA logits, CUDA vs CPU: max |diff| %.3g\n", fixture.c_str(),
                (cuda - cpu).abs().max().item<float>());
  }
  return ours.WriteFile(JoinPath(out, "ours.safetensors"));
}

}  // namespace
}  // namespace temper::model

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s FIXTURE_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  const absl::Status s = temper::model::Run(argv[1], argv[2]);
  if (!s.ok()) {
    std::fprintf(stderr, "nf4_peft_export: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("nf4_peft_export: wrote %s\n", argv[2]);
  return 0;
}
