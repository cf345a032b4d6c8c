#include "libs/model/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "libs/model/torch_util.h"

namespace temper::model {

int32_t SampleToken(const float* logits, int64_t vocab, const SamplingOptions& o, std::mt19937_64& rng) {
  if (o.temperature == 0.0) {
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  }
  // Candidates sorted by logit (descending, ties by id), cut by top-k, softmax, cut by top-p.
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  const int64_t k = o.top_k > 0 ? std::min(o.top_k, vocab) : vocab;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), by_logit);
  ids.resize(k);
  std::vector<double> p(k);
  const double top = logits[ids[0]] / o.temperature;
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += p[i] = std::exp(logits[ids[i]] / o.temperature - top);
  int64_t keep = k;
  if (o.top_p < 1.0) {
    double cum = 0;
    for (int64_t i = 0; i < k; ++i) {
      cum += p[i] / sum;
      if (cum >= o.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  double u = std::uniform_real_distribution<double>(0.0, kept)(rng);
  for (int64_t i = 0; i < keep; ++i) {
    if (u < p[i]) return ids[i];
    u -= p[i];
  }
  return ids[keep - 1];
}

namespace {

bool EndsWith(const std::vector<int32_t>& tokens, const std::vector<int32_t>& suffix) {
  return !suffix.empty() && tokens.size() >= suffix.size() &&
         std::equal(suffix.begin(), suffix.end(), tokens.end() - static_cast<long>(suffix.size()));
}

absl::Status Check(const Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                   const SamplingOptions& o) {
  if (o.temperature < 0) return absl::InvalidArgumentError("temperature must be >= 0");
  if (!(o.top_p > 0 && o.top_p <= 1)) return absl::InvalidArgumentError("top_p must be in (0, 1]");
  if (o.top_k < 0) return absl::InvalidArgumentError("top_k must be >= 0");
  if (o.max_new_tokens < 0) return absl::InvalidArgumentError("max_new_tokens must be >= 0");
  if (!o.stop_strings.empty() && !o.decode) {
    return absl::InvalidArgumentError("stop_strings need a decode function");
  }
  const int64_t vocab = model->config().vocab_size;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", i, " is empty"));
    for (int32_t t : prompts[i]) {
      if (t < 0 || t >= vocab) {
        return absl::InvalidArgumentError(absl::StrCat("prompt ", i, " has token ", t, " outside the vocabulary"));
      }
    }
  }
  if (o.pad_token_id < 0 || o.pad_token_id >= vocab) return absl::InvalidArgumentError("bad pad_token_id");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Generation>> Generate(Transformer& model,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 const SamplingOptions& o, const TokenCallback& on_token) {
  RETURN_IF_ERROR(Check(model, prompts, o));
  const int64_t b = static_cast<int64_t>(prompts.size());
  std::vector<Generation> out(b);
  if (b == 0 || o.max_new_tokens == 0) return out;
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  std::vector<std::mt19937_64> rngs;
  for (int64_t i = 0; i < b; ++i) {
    std::seed_seq seq{static_cast<uint32_t>(o.seed), static_cast<uint32_t>(o.seed >> 32), static_cast<uint32_t>(i)};
    rngs.emplace_back(seq);
  }
  std::vector<bool> done(b, false);
  absl::Status status = CatchTorch("generate", [&] {
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    torch::Tensor any_param = model->OutputWeight();
    const torch::Device device = any_param.device();
    const int64_t capacity = longest + o.max_new_tokens;
    KvCache cache = KvCache::Allocate(model->config(), b, capacity,
                                      torch::TensorOptions().dtype(any_param.scalar_type()).device(device));
    // Left-pad prompts; positions count real tokens only.
    torch::Tensor ids = torch::full({b, longest}, o.pad_token_id, torch::kInt64);
    torch::Tensor key_mask = torch::zeros({b, capacity}, torch::kBool);
    torch::Tensor positions = torch::zeros({b, longest}, torch::kInt64);
    std::vector<int64_t> next_pos(b);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t n = static_cast<int64_t>(prompts[i].size()), pad = longest - n;
      for (int64_t j = 0; j < n; ++j) {
        ids[i][pad + j] = prompts[i][j];
        positions[i][pad + j] = j;
        key_mask[i][pad + j] = true;
      }
      next_pos[i] = n;
    }
    torch::Tensor logits = model->forward(ids.to(device), positions.to(device),
                                          key_mask.narrow(1, 0, longest).to(device), &cache);
    for (int64_t step = 0; step < o.max_new_tokens; ++step) {
      torch::Tensor last = logits.select(1, logits.size(1) - 1).to(torch::kCPU, torch::kFloat32).contiguous();
      const int64_t vocab = last.size(1);
      torch::Tensor next = torch::full({b, 1}, o.pad_token_id, torch::kInt64);
      torch::Tensor pos = torch::zeros({b, 1}, torch::kInt64);
      for (int64_t i = 0; i < b; ++i) {
        pos[i][0] = next_pos[i];
        if (done[i]) continue;
        const int32_t tok = SampleToken(last.data_ptr<float>() + i * vocab, vocab, o, rngs[i]);
        Generation& g = out[i];
        g.tokens.push_back(tok);
        next[i][0] = tok;
        key_mask[i][cache.length] = true;
        ++next_pos[i];
        if (on_token && !on_token(static_cast<size_t>(i), tok)) {
          g.finish = FinishReason::kCallback;
        } else if (std::find(o.eos_token_ids.begin(), o.eos_token_ids.end(), tok) != o.eos_token_ids.end()) {
          g.finish = FinishReason::kEos;
        } else if (std::any_of(o.stop_sequences.begin(), o.stop_sequences.end(),
                               [&](const auto& s) { return EndsWith(g.tokens, s); })) {
          g.finish = FinishReason::kStopSequence;
        } else if (!o.stop_strings.empty()) {
          const std::string text = o.decode(g.tokens);
          if (std::any_of(o.stop_strings.begin(), o.stop_strings.end(),
                          [&](const std::string& s) { return !s.empty() && text.find(s) != std::string::npos; })) {
            g.finish = FinishReason::kStopString;
          }
        }
        if (g.finish != FinishReason::kLength) done[i] = true;
      }
      if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
      if (step + 1 == o.max_new_tokens) break;
      logits = model->forward(next.to(device), pos.to(device),
                              key_mask.narrow(1, 0, cache.length + 1).to(device), &cache);
    }
    if (was_training) model->train();
  });
  RETURN_IF_ERROR(status);
  return out;
}

}  // namespace temper::model
