#include "libs/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace temper::train {

double CosineWithWarmup(int64_t step, int64_t warmup_steps, int64_t total_steps, double peak_lr) {
  if (step < warmup_steps) return peak_lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  const double progress = static_cast<double>(step - warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return peak_lr * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(1.0, progress))));
}

}  // namespace temper::train
