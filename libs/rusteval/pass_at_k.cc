#include "libs/rusteval/pass_at_k.h"

#include "absl/strings/str_cat.h"

namespace temper::rusteval {

absl::StatusOr<double> PassAtK(int n, int c, int k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n) {
    return absl::InvalidArgumentError(absl::StrCat("pass@k needs 0<=c<=n, 1<=k<=n; got n=", n,
                                                   " c=", c, " k=", k));
  }
  if (n - c < k) return 1.0;
  double all_fail = 1.0;  // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
  for (int i = n - c + 1; i <= n; ++i) all_fail *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - all_fail;
}

absl::StatusOr<double> MeanPassAtK(const std::vector<std::pair<int, int>>& problems, int k) {
  if (problems.empty()) return absl::InvalidArgumentError("pass@k of no problems");
  double sum = 0;
  for (const auto& [n, c] : problems) {
    ASSIGN_OR_RETURN(double p, PassAtK(n, c, k));
    sum += p;
  }
  return sum / static_cast<double>(problems.size());
}

}  // namespace temper::rusteval
