#include "libs/rusteval/verdict.h"

#include "gtest/gtest.h"

namespace temper::rusteval {
namespace {

TEST(VerdictTest, JsonRoundTrips) {
  Verdict v;
  v.task_id = "Rust/7";
  v.stage_reached = Stage::kRunTests;
  v.compiled = true;
  v.error_class = ErrorClass::kTimeout;
  v.error_codes = {"E0308"};
  v.errors = {{"error", "E0308", "mismatched types", "error[E0308]", "src.rs", 3, 9}};
  v.lints = {{"clippy::needless_return", 2}};
  v.tests_passed = 3;
  v.tests_failed = 1;
  v.limit = sandbox::Limit::kWallTime;
  v.limit_stage = Stage::kRunTests;
  SyntaxMetrics m;
  m.functions = 4;
  m.public_items = 2;
  m.documented_public_items = 1;
  v.syntax = m;
  v.test_output = "thread 'main' panicked";
  v.check_ms = 10;
  v.build_ms = 20;
  v.run_ms = 30;
  v.total_ms = 60;
  v.run_peak_memory_bytes = 1 << 20;
  nlohmann::json j = ToJson(v);
  EXPECT_EQ(j["limit"], "wall_time");
  EXPECT_EQ(j["error_class"], "timeout");
  EXPECT_EQ(j["stage_reached"], "run_tests");
  EXPECT_DOUBLE_EQ(j["syntax"]["doc_coverage"].get<double>(), 0.5);
  auto back = VerdictFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ToJson(*back), j);
  EXPECT_EQ(back->syntax, v.syntax);
}

TEST(VerdictTest, RejectsMalformedJson) {
  EXPECT_FALSE(VerdictFromJson(nlohmann::json::object()).ok());
  EXPECT_FALSE(VerdictFromJson({{"task_id", 1}}).ok());
}

}  // namespace
}  // namespace temper::rusteval
