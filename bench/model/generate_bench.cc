// Generation throughput of libs/model (Generate: KV cache, left-padded batch, greedy) on a
// Llama-3-8B-shaped model with random weights, built in memory (nothing is written to disk):
// hidden 4096, 32 layers, 32 heads, 8 KV heads, intermediate 14336, vocab 128256, RoPE theta
// 500000. Variants: bf16, and NF4 (every projection quantized with double quantization, bf16
// compute, the CUDA dequantization kernel on each forward); no LoRA. Prints one JSON line per
// (variant, batch): tokens/s = batch * new_tokens / wall time of Generate (prefill included, as
// scripts/gpu/hf_generate_bench.py measures transformers.generate), after a short warm-up at the
// same shapes. scripts/gpu/generate_bench.sh runs it next to the transformers baseline.
//
//   model_generate_bench [--batches 1,16,64] [--variants bf16,nf4] [--prompt-len 128]
//                        [--new-tokens 128] [--budget-s 240] [--threads 16] [--small]
//
// --small: a tiny model on CPU (a smoke test for machines without CUDA; numbers meaningless).
// Without --small it needs CUDA and refuses to run otherwise.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "libs/model/generate.h"
#include "libs/model/model.h"

#if defined(TEMPER_WITH_CUDA) && !defined(TEMPER_BENCH_NO_MEMSTATS)
#include <c10/cuda/CUDACachingAllocator.h>
#define TEMPER_BENCH_MEMSTATS 1
#endif

namespace temper::model {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

ModelConfig Llama3_8B() {
  ModelConfig c;
  c.model_type = "llama";
  c.vocab_size = 128256;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.max_position_embeddings = 8192;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.eos_token_ids = {128001};
  c.bos_token_id = 128000;
  return c;
}

ModelConfig Tiny() {
  ModelConfig c = Llama3_8B();
  c.vocab_size = 512;
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 32;
  c.eos_token_ids = {};
  c.bos_token_id.reset();
  return c;
}

struct Flags {
  std::vector<int64_t> batches = {1, 16, 64};
  std::vector<std::string> variants = {"bf16", "nf4"};
  int64_t prompt_len = 128;
  int64_t new_tokens = 128;
  double budget_s = 240;
  int threads = 16;
  bool small = false;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--small") {
      f->small = true;
    } else if (a == "--batches" && has_value) {
      f->batches.clear();
      for (absl::string_view s : absl::StrSplit(argv[++i], ',', absl::SkipEmpty())) {
        int64_t b = 0;
        if (!absl::SimpleAtoi(s, &b) || b <= 0) return false;
        f->batches.push_back(b);
      }
    } else if (a == "--variants" && has_value) {
      f->variants = absl::StrSplit(argv[++i], ',', absl::SkipEmpty());
    } else if (a == "--prompt-len" && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &f->prompt_len)) return false;
    } else if (a == "--new-tokens" && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &f->new_tokens)) return false;
    } else if (a == "--budget-s" && has_value) {
      if (!absl::SimpleAtod(argv[++i], &f->budget_s)) return false;
    } else if (a == "--threads" && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &f->threads) || f->threads <= 0) return false;
    } else {
      return false;
    }
  }
  return true;
}

void Sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double PeakGib(const torch::Device& device) {
#if defined(TEMPER_BENCH_MEMSTATS)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);
  }
#endif
  return -1;
}

void ResetPeak(const torch::Device& device) {
#if defined(TEMPER_BENCH_MEMSTATS)
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
}

// Quantizes every projection to NF4 (the CPU reference per matrix; linear.cc moves each weight to
// the CPU and the result back), `threads` matrices at a time.
void QuantizeAll(Transformer& model, int threads) {
  auto projections = model->Projections();
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < projections.size(); i = next++) projections[i].second->QuantizeBaseNf4();
    });
  }
  for (auto& th : pool) th.join();
}

int Main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) {
    std::fprintf(stderr,
                 "usage: model_generate_bench [--batches 1,16,64] [--variants bf16,nf4] [--prompt-len N] "
                 "[--new-tokens N] [--budget-s S] [--threads N] [--small]\n");
    return 2;
  }
  const bool cuda = torch::cuda::is_available();
  if (!f.small && !cuda) {
    std::fprintf(stderr, "model_generate_bench: no CUDA device (the 8B-shaped model needs one; --small runs a tiny one on CPU)\n");
    return 1;
  }
  const torch::Device device = f.small ? torch::Device(torch::kCPU) : torch::Device(torch::kCUDA, 0);
  const ModelConfig config = f.small ? Tiny() : Llama3_8B();
  const auto start = Clock::now();
  torch::NoGradGuard no_grad;

  // Random init: the constructor initialises like torch.nn (CPU, float32), then one move to the
  // device in bf16. (libtorch's C++ API has no default-device switch to build on the GPU.)
  auto t0 = Clock::now();
  Transformer model(config);
  model->eval();
  const double init_s = Seconds(t0);
  t0 = Clock::now();
  // As LoadHfModel: parameters to (device, bf16), buffers (RoPE's float32 inv_freq) to the device only.
  for (auto& p : model->parameters()) p.set_data(p.to(device, torch::kBFloat16));
  for (auto& b : model->buffers()) b.set_data(b.to(device));
  Sync(device);
  const double move_s = Seconds(t0);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  std::printf("{\"event\":\"setup\",\"params\":%lld,\"init_s\":%.1f,\"to_device_s\":%.1f,\"device\":\"%s\"}\n",
              static_cast<long long>(params), init_s, move_s, device.str().c_str());
  std::fflush(stdout);

  torch::manual_seed(0);
  const torch::Tensor all_ids =
      torch::randint(0, config.vocab_size, {*std::max_element(f.batches.begin(), f.batches.end()), f.prompt_len},
                     torch::kInt64);
  auto prompts_for = [&](int64_t b) {
    std::vector<std::vector<int32_t>> prompts(b);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t* row = all_ids[i].data_ptr<int64_t>();
      prompts[i].assign(row, row + f.prompt_len);
    }
    return prompts;
  };

  bool quantized = false;
  for (const std::string& variant : f.variants) {
    if (variant == "nf4" && !quantized) {
      t0 = Clock::now();
      QuantizeAll(model, f.threads);
      Sync(device);
      quantized = true;
      std::printf("{\"event\":\"quantize\",\"seconds\":%.1f}\n", Seconds(t0));
      std::fflush(stdout);
    } else if (variant != "bf16" && variant != "nf4") {
      std::fprintf(stderr, "unknown variant %s\n", variant.c_str());
      return 2;
    } else if (variant == "bf16" && quantized) {
      std::fprintf(stderr, "bf16 must come before nf4 (quantization is in place)\n");
      return 2;
    }
    for (const int64_t b : f.batches) {
      if (Seconds(start) > f.budget_s) {
        std::printf("{\"impl\":\"temper\",\"variant\":\"%s\",\"batch\":%lld,\"skipped\":\"time budget\"}\n",
                    variant.c_str(), static_cast<long long>(b));
        std::fflush(stdout);
        continue;
      }
      const auto prompts = prompts_for(b);
      SamplingOptions o;
      o.temperature = 0;  // greedy; no EOS ids: every sequence generates new_tokens
      o.max_new_tokens = 4;
      auto warm = Generate(model, prompts, o);  // warm-up at the same shapes (cuBLAS plans, allocator)
      if (!warm.ok()) {
        std::fprintf(stderr, "generate: %s\n", warm.status().ToString().c_str());
        return 1;
      }
      Sync(device);
      ResetPeak(device);
      o.max_new_tokens = f.new_tokens;
      t0 = Clock::now();
      auto out = Generate(model, prompts, o);
      Sync(device);
      const double s = Seconds(t0);
      if (!out.ok()) {
        std::fprintf(stderr, "generate: %s\n", out.status().ToString().c_str());
        return 1;
      }
      int64_t generated = 0;
      for (const auto& g : *out) generated += static_cast<int64_t>(g.tokens.size());
      std::printf("{\"impl\":\"temper\",\"variant\":\"%s\",\"batch\":%lld,\"prompt_len\":%lld,\"new_tokens\":%lld,"
                  "\"generated\":%lld,\"seconds\":%.3f,\"tokens_per_s\":%.1f,\"peak_alloc_gib\":%.2f}\n",
                  variant.c_str(), static_cast<long long>(b), static_cast<long long>(f.prompt_len),
                  static_cast<long long>(f.new_tokens), static_cast<long long>(generated), s,
                  static_cast<double>(generated) / s, PeakGib(device));
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace temper::model

int main(int argc, char** argv) {
  try {
    return temper::model::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_generate_bench: %s\n", e.what());
    return 1;
  }
}
