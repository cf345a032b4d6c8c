#include "libs/sandbox/fake_sandbox.h"

#include "gtest/gtest.h"

namespace temper::sandbox {
namespace {

TEST(FakeSandboxTest, AnswersFromTheFirstMatchingRuleAndRecordsRequests) {
  FakeSandbox sandbox;
  Result timeout;
  timeout.limit = Limit::kWallTime;
  timeout.signal = 9;
  sandbox.OnProgram("/t", timeout);
  Request run_test;
  run_test.argv = {"/work/t"};
  Request other;
  other.argv = {"/bin/true"};
  auto r1 = sandbox.Run(run_test);
  auto r2 = sandbox.Run(other);
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r1->limit, Limit::kWallTime);
  EXPECT_TRUE(r2->Succeeded());
  ASSERT_EQ(sandbox.requests().size(), 2u);
  EXPECT_EQ(sandbox.requests()[1].argv[0], "/bin/true");
}

}  // namespace
}  // namespace temper::sandbox
