#include "libs/train/checkpoint_store.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "libs/model/safetensors.h"
#include "nlohmann/json.hpp"

namespace temper::train {
namespace {

namespace fs = std::filesystem;

std::optional<int64_t> StepOf(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5) return std::nullopt;
  int64_t step = 0;
  for (char c : name.substr(5)) {
    if (c < '0' || c > '9') return std::nullopt;
    step = step * 10 + (c - '0');
  }
  return step;
}

}  // namespace

absl::StatusOr<CheckpointStore> CheckpointStore::Open(const std::string& root, int keep_last) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", root, ": ", ec.message()));
  CheckpointStore store(root, std::max(1, keep_last));
  std::map<int64_t, double> losses;
  std::ifstream in(root + "/checkpoints.json");
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_array()) {
      for (const auto& e : j) {
        if (e.is_object() && e.contains("step") && e.contains("loss")) losses[e["step"].get<int64_t>()] = e["loss"].get<double>();
      }
    }
  }
  for (const auto& d : fs::directory_iterator(root, ec)) {
    const std::string name = d.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0) {
      fs::remove_all(d.path(), ec);  // an interrupted save
      continue;
    }
    auto step = StepOf(name);
    if (!step || !fs::exists(d.path() / "trainer_state.json")) continue;
    auto it = losses.find(*step);
    store.entries_.push_back({*step, it != losses.end() ? it->second : 0.0, d.path().string()});
  }
  std::sort(store.entries_.begin(), store.entries_.end(), [](const Entry& a, const Entry& b) { return a.step < b.step; });
  return store;
}

std::string CheckpointStore::PathFor(int64_t step) const {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return root_ + "/" + name;
}

absl::StatusOr<std::vector<std::string>> CheckpointStore::Record(int64_t step, double loss) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.step == step; }), entries_.end());
  entries_.push_back({step, loss, PathFor(step)});
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.step < b.step; });
  std::set<int64_t> keep;
  for (size_t i = entries_.size() > static_cast<size_t>(keep_last_) ? entries_.size() - keep_last_ : 0; i < entries_.size(); ++i)
    keep.insert(entries_[i].step);
  if (auto best = Best()) keep.insert(best->step);
  std::vector<std::string> removed;
  std::vector<Entry> kept;
  std::error_code ec;
  for (const Entry& e : entries_) {
    if (keep.count(e.step)) {
      kept.push_back(e);
    } else {
      fs::remove_all(e.path, ec);
      removed.push_back(e.path);
    }
  }
  entries_ = std::move(kept);
  nlohmann::json j = nlohmann::json::array();
  for (const Entry& e : entries_) j.push_back({{"step", e.step}, {"loss", e.loss}, {"path", e.path}});
  RETURN_IF_ERROR(model::WriteFileAtomically(root_ + "/checkpoints.json", j.dump(2) + "\n"));
  return removed;
}

std::optional<CheckpointStore::Entry> CheckpointStore::Latest() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back();
}

std::optional<CheckpointStore::Entry> CheckpointStore::Best() const {
  if (entries_.empty()) return std::nullopt;
  return *std::min_element(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.loss < b.loss; });
}

}  // namespace temper::train
