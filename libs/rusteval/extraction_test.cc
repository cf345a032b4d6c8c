#include "libs/rusteval/extraction.h"

#include "gtest/gtest.h"

namespace temper::rusteval {
namespace {

TEST(ExtractionTest, TakesTheRustFenceOverOthers) {
  Extraction e = ExtractCode("Here:\n```text\nnot code\n```\n```rust\nfn main() {}\n```\nDone.", {});
  EXPECT_TRUE(e.from_fence);
  EXPECT_EQ(e.code, "fn main() {}\n");
}

TEST(ExtractionTest, UnclosedFenceRunsToTheEndAndDropsTheUnfinishedItem) {
  Extraction e = ExtractCode("```rust\nfn a() -> i32 { 1 }\nfn b() -> i32 {\n    let x = ", {});
  EXPECT_TRUE(e.from_fence);
  EXPECT_TRUE(e.trimmed_tail);
  EXPECT_EQ(e.code, "fn a() -> i32 { 1 }");
}

TEST(ExtractionTest, StopSequencesCutRawContinuations) {
  ExtractionOptions opts;
  opts.stop_sequences = {"\n}", "\nfn main"};
  Extraction e = ExtractCode("    x + 1\n}\n\nfn main() {}\n", opts);
  EXPECT_TRUE(e.stopped);
  EXPECT_EQ(e.code, "    x + 1");
}

TEST(ExtractionTest, ContinuationEndsAtTheFunctionsClosingBrace) {
  ExtractionOptions opts;
  opts.initial_depth = 1;
  opts.keep_closing_brace = false;
  Extraction e = ExtractCode("    if x { 1 } else { 2 }\n}\nfn main() { extra }", opts);
  EXPECT_EQ(e.code, "    if x { 1 } else { 2 }\n");
}

TEST(ExtractionTest, ContinuationKeepsHelpersAndDropsATruncatedTail) {
  ExtractionOptions opts;
  opts.initial_depth = 1;
  Extraction e = ExtractCode("    helper(x)\n}\nfn helper(x: i32) -> i32 { x }\nfn other() {\n  let", opts);
  EXPECT_TRUE(e.trimmed_tail);
  EXPECT_EQ(e.code, "    helper(x)\n}\nfn helper(x: i32) -> i32 { x }");
}

TEST(ExtractionTest, RepeatedFunctionHeaderIsSkipped) {
  ExtractionOptions opts;
  opts.initial_depth = 1;
  opts.function_header = "fn add(";
  Extraction e = ExtractCode("```rust\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n```", opts);
  EXPECT_EQ(e.code, "\n    a + b\n}\n");
}

TEST(ExtractionTest, BracesInStringsCharsAndCommentsDoNotCount) {
  EXPECT_EQ(BraceDepth(R"(let s = "{{{"; let c = '{'; // {
/* { /* nested { */ } */ let r = r#"{"#; let l: &'static str = "}";)"), 0);
  EXPECT_EQ(BraceDepth("fn f<'a>(x: &'a str) {"), 1);
  EXPECT_EQ(BraceDepth("let e = '\\u{7b}'; {"), 1);
}

TEST(ExtractionTest, EmptyOutputIsEmpty) {
  EXPECT_TRUE(ExtractCode("  \n", {}).empty());
  EXPECT_TRUE(ExtractCode("```rust\n```", {}).empty());
}

}  // namespace
}  // namespace temper::rusteval
