#include "libs/rusteval/task.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/rusteval/test_util.h"

namespace temper::rusteval {
namespace {

using ::testing::HasSubstr;
using testing::FixturePath;

TEST(TaskTest, LoadsHumanEvalXFromGzip) {
  auto tasks = LoadHumanEvalX(FixturePath("humaneval-x-rust.jsonl.gz"));
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 164u);
  const Task& t = *(*tasks)[0];
  EXPECT_EQ(t.id, "Rust/0");
  EXPECT_EQ(t.format, TaskFormat::kHumanEvalX);
  EXPECT_THAT(t.declaration, HasSubstr("fn has_close_elements"));
  EXPECT_THAT(t.tests, HasSubstr("#[cfg(test)]"));
}

TEST(TaskTest, LoadsMultiplE) {
  auto tasks = LoadMultiplE(FixturePath("multipl-e-humaneval-rs.json"));
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 156u);
  EXPECT_EQ((*tasks)[0]->format, TaskFormat::kMultiplE);
  EXPECT_THAT((*tasks)[0]->tests, HasSubstr("fn main()"));
  EXPECT_EQ((*tasks)[0]->stop_sequences, std::vector<std::string>{"\n}"});
}

TEST(TaskTest, AssemblesEachFormat) {
  auto hx = std::make_shared<Task>();
  hx->format = TaskFormat::kHumanEvalX;
  hx->prompt = "/* doc */\n";
  hx->declaration = "fn f() -> i32 {\n";
  hx->tests = "#[cfg(test)]\nmod tests {}";
  AssembledSources a = Assemble({hx, "    1\n}"});
  EXPECT_TRUE(a.check_is_lib);
  EXPECT_EQ(a.check_source, "/* doc */\nfn f() -> i32 {\n    1\n}\n");
  EXPECT_EQ(a.completion_first_line, 3);
  EXPECT_THAT(a.test_source, HasSubstr("mod tests {}"));
  EXPECT_TRUE(a.tests_use_harness);

  auto me = std::make_shared<Task>();
  me->format = TaskFormat::kMultiplE;
  me->prompt = "fn f() -> i32 {\n";
  me->tests = "\n}\n\nfn main() { assert_eq!(f(), 1); }";
  AssembledSources b = Assemble({me, "    1"});
  EXPECT_FALSE(b.check_is_lib);
  EXPECT_FALSE(b.tests_use_harness);
  EXPECT_EQ(b.test_source, b.check_source);

  auto program = std::make_shared<Task>();
  AssembledSources c = Assemble({program, "fn main() {}"});
  EXPECT_EQ(c.check_source, "fn main() {}");
  EXPECT_TRUE(c.test_source.empty());
}

}  // namespace
}  // namespace temper::rusteval
