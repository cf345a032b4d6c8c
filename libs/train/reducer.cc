#include "libs/train/reducer.h"

namespace temper::train {

class InProcessGroup::RankReducer : public GradientReducer {
 public:
  RankReducer(InProcessGroup* group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_->world_size_; }
  absl::Status AllReduceSum(std::vector<torch::Tensor>& tensors) override { return group_->Reduce(rank_, tensors); }

 private:
  InProcessGroup* group_;
  int rank_;
};

InProcessGroup::InProcessGroup(int world_size) : world_size_(world_size), inputs_(world_size, nullptr) {
  for (int r = 0; r < world_size; ++r) ranks_.push_back(std::make_unique<RankReducer>(this, r));
}

InProcessGroup::~InProcessGroup() = default;

GradientReducer* InProcessGroup::Rank(int r) { return ranks_[r].get(); }

absl::Status InProcessGroup::Reduce(int rank, std::vector<torch::Tensor>& tensors) {
  std::unique_lock lock(mu_);
  // Wait until the previous reduction has been fully collected.
  cv_.wait(lock, [&] { return departed_ == 0 || departed_ == world_size_; });
  if (departed_ == world_size_) departed_ = 0;
  const int64_t gen = generation_;
  inputs_[rank] = &tensors;
  if (++arrived_ == world_size_) {
    // The last to arrive sums, in rank order, for every rank.
    result_.clear();
    for (size_t i = 0; i < tensors.size(); ++i) {
      torch::NoGradGuard no_grad;
      torch::Tensor sum = inputs_[0]->at(i).clone();
      for (int r = 1; r < world_size_; ++r) {
        if (inputs_[r]->size() != tensors.size() || !inputs_[r]->at(i).sizes().equals(sum.sizes())) {
          arrived_ = 0;
          ++generation_;
          cv_.notify_all();
          return absl::InvalidArgumentError("AllReduceSum: ranks passed different tensors");
        }
        sum.add_(inputs_[r]->at(i).to(sum.device()));
      }
      result_.push_back(sum);
    }
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
  } else {
    cv_.wait(lock, [&] { return generation_ != gen; });
  }
  if (result_.size() != tensors.size()) return absl::InvalidArgumentError("AllReduceSum: ranks passed different tensors");
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < tensors.size(); ++i) tensors[i].copy_(result_[i]);
  }
  ++departed_;
  cv_.notify_all();
  return absl::OkStatus();
}

}  // namespace temper::train
