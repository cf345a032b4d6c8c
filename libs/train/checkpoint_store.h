// A training job's checkpoints in one directory: root/step-00000012/ (each written atomically by
// Trainer::SaveState), an index root/checkpoints.json of (step, loss), and retention: the last
// `keep_last` plus the one with the lowest loss are kept, the rest deleted. Leftover temporary
// directories of an interrupted save are removed on construction. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "libs/common/status.h"

namespace temper::train {

class CheckpointStore {
 public:
  struct Entry {
    int64_t step = 0;
    double loss = 0.0;
    std::string path;
  };

  // REQUIRES: keep_last >= 1. Creates `root` if needed.
  static absl::StatusOr<CheckpointStore> Open(const std::string& root, int keep_last);

  // Where the checkpoint of `step` goes (it does not exist yet).
  std::string PathFor(int64_t step) const;
  // Records a checkpoint that now exists at PathFor(step), rewrites the index and prunes.
  // Returns the paths deleted.
  absl::StatusOr<std::vector<std::string>> Record(int64_t step, double loss);

  // The newest complete checkpoint (by step), found on disk (a directory with trainer_state.json),
  // so a lost index does not lose the checkpoints.
  std::optional<Entry> Latest() const;
  std::optional<Entry> Best() const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  CheckpointStore(std::string root, int keep_last) : root_(std::move(root)), keep_last_(keep_last) {}

  std::string root_;
  int keep_last_;
  std::vector<Entry> entries_;  // by step
};

}  // namespace temper::train
