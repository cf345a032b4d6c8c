// Data-parallel gradient reduction behind a small interface, applied from outside the model
// (STYLE.md 10): each rank runs the same Trainer on its own rows and calls AllReduceSum on the
// gradients and on the step's loss normaliser, so N ranks step exactly as one rank with N times
// the rows. Implementations: InProcessGroup (ranks as threads of one process; the CPU fallback
// and what tests use). An NCCL implementation is not written yet (docs/train.md).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include <torch/torch.h>

#include "libs/common/status.h"

namespace temper::train {

// One rank's view of a reduction group. Each call is collective: every rank of the group must
// make the same calls in the same order with tensors of the same shapes.
class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Replaces each tensor by the element-wise sum over ranks (in place).
  virtual absl::Status AllReduceSum(std::vector<torch::Tensor>& tensors) = 0;
};

// A group of `world_size` ranks living in one process (one thread each). Thread-safe: Rank(r)
// objects are used concurrently by their threads. Sums in rank order, so results are identical
// on every rank and deterministic.
class InProcessGroup {
 public:
  explicit InProcessGroup(int world_size);
  ~InProcessGroup();
  // The reducer of rank r; owned by the group. REQUIRES: 0 <= r < world_size.
  GradientReducer* Rank(int r);

 private:
  class RankReducer;
  absl::Status Reduce(int rank, std::vector<torch::Tensor>& tensors);

  int world_size_;
  std::vector<std::unique_ptr<RankReducer>> ranks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<torch::Tensor>*> inputs_;  // GUARDED_BY(mu_)
  std::vector<torch::Tensor> result_;                // GUARDED_BY(mu_)
  int arrived_ = 0;                                  // GUARDED_BY(mu_)
  int departed_ = 0;                                 // GUARDED_BY(mu_)
  int64_t generation_ = 0;                           // GUARDED_BY(mu_)
};

}  // namespace temper::train
