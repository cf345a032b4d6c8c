#include "libs/rusteval/pass_at_k.h"

#include <cmath>

#include "gtest/gtest.h"

namespace temper::rusteval {
namespace {

// Reference: the closed form 1 - C(n-c,k)/C(n,k) with exact binomials.
double Exact(int n, int c, int k) {
  auto binom = [](int a, int b) {
    if (b < 0 || b > a) return 0.0;
    double r = 1;
    for (int i = 1; i <= b; ++i) r = r * (a - b + i) / i;
    return r;
  };
  return 1.0 - binom(n - c, k) / binom(n, k);
}

TEST(PassAtKTest, MatchesTheClosedForm) {
  for (int n : {1, 5, 10, 20}) {
    for (int c = 0; c <= n; ++c) {
      for (int k = 1; k <= n; ++k) {
        auto p = PassAtK(n, c, k);
        ASSERT_TRUE(p.ok());
        EXPECT_NEAR(*p, Exact(n, c, k), 1e-9) << n << " " << c << " " << k;
      }
    }
  }
}

TEST(PassAtKTest, KnownValues) {
  EXPECT_DOUBLE_EQ(*PassAtK(10, 0, 1), 0.0);
  EXPECT_DOUBLE_EQ(*PassAtK(10, 10, 1), 1.0);
  EXPECT_NEAR(*PassAtK(10, 3, 1), 0.3, 1e-12);  // pass@1 is c/n
  EXPECT_DOUBLE_EQ(*PassAtK(10, 3, 8), 1.0);     // n-c < k
  EXPECT_NEAR(*PassAtK(200, 1, 100), 0.5, 1e-12);
  EXPECT_NEAR(*MeanPassAtK({{10, 3}, {10, 5}}, 1), 0.4, 1e-12);
}

TEST(PassAtKTest, RejectsImpossibleInputs) {
  EXPECT_FALSE(PassAtK(5, 6, 1).ok());
  EXPECT_FALSE(PassAtK(5, 1, 6).ok());
  EXPECT_FALSE(PassAtK(5, 1, 0).ok());
  EXPECT_FALSE(MeanPassAtK({}, 1).ok());
}

}  // namespace
}  // namespace temper::rusteval
