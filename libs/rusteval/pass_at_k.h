// pass@k with the unbiased estimator of Chen et al. (2021): the probability that at least one of
// k samples drawn without replacement from n, of which c passed, passes. Pure; thread-safe.
#pragma once

#include <vector>

#include "libs/common/status.h"

namespace temper::rusteval {

// 1 - C(n-c, k) / C(n, k), computed as a stable product. InvalidArgument unless 0 <= c <= n and
// 1 <= k <= n.
absl::StatusOr<double> PassAtK(int n, int c, int k);

// The mean of PassAtK over problems, each given as (n, c).
absl::StatusOr<double> MeanPassAtK(const std::vector<std::pair<int, int>>& problems, int k);

}  // namespace temper::rusteval
