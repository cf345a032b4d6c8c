#include "libs/rusteval/diagnostics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/rusteval/test_util.h"

namespace temper::rusteval {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadFixture;

ErrorClass ClassOfFixture(const std::string& name) {
  return ClassifyCompile(ParseDiagnostics(ReadFixture("diagnostics/" + name + ".json")));
}

// The fixtures are clippy-driver's real JSON for the matching diagnostics/*.rs files.
TEST(DiagnosticsTest, TaxonomyFromRecordedRustcOutput) {
  EXPECT_EQ(ClassOfFixture("syntax"), ErrorClass::kSyntax);
  EXPECT_EQ(ClassOfFixture("unresolved"), ErrorClass::kUnresolved);
  EXPECT_EQ(ClassOfFixture("mismatch"), ErrorClass::kTypeMismatch);
  EXPECT_EQ(ClassOfFixture("borrow"), ErrorClass::kBorrow);
  EXPECT_EQ(ClassOfFixture("trait"), ErrorClass::kTraitBound);
  EXPECT_EQ(ClassOfFixture("lints"), ErrorClass::kNone);
}

TEST(DiagnosticsTest, ParsesCodesSpansAndDropsSummaries) {
  auto diags = ParseDiagnostics(ReadFixture("diagnostics/mismatch.json"));
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].level, "error");
  EXPECT_EQ(diags[0].code, "E0308");
  EXPECT_EQ(diags[0].message, "mismatched types");
  EXPECT_EQ(diags[0].file, "mismatch.rs");
  EXPECT_EQ(diags[0].line, 1);
  EXPECT_EQ(diags[0].column, 17);
}

TEST(DiagnosticsTest, CountsLintsByName) {
  auto lints = CountLints(ParseDiagnostics(ReadFixture("diagnostics/lints.json")));
  EXPECT_EQ(lints["clippy::needless_return"], 1);
  EXPECT_EQ(lints["clippy::ptr_arg"], 1);
  EXPECT_EQ(lints["clippy::needless_range_loop"], 1);
  EXPECT_EQ(lints["clippy::assign_op_pattern"], 1);
  EXPECT_EQ(lints.size(), 4u);
}

TEST(DiagnosticsTest, ToleratesNoiseAndTruncation) {
  std::string text = "warning: not json\n{\"message\": 3}\n[1,2]\n" +
                     ReadFixture("diagnostics/borrow.json") + "{\"$message_type\":\"diagnostic\",\"mess";
  auto diags = ParseDiagnostics(text);
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].code, "E0382");
}

TEST(DiagnosticsTest, CodelessErrorsClassifiedByMessage) {
  EXPECT_EQ(ClassifyError({"error", "", "expected one of `;` or `}`, found `x`", "", "", 0, 0}),
            ErrorClass::kSyntax);
  EXPECT_EQ(ClassifyError({"error", "", "this file contains an unclosed delimiter", "", "", 0, 0}),
            ErrorClass::kSyntax);
  EXPECT_EQ(ClassifyError({"error", "", "cannot find macro `foo` in this scope", "", "", 0, 0}),
            ErrorClass::kUnresolved);
  EXPECT_EQ(ClassifyError({"error", "E0599", "no method named `x` found", "", "", 0, 0}),
            ErrorClass::kUnresolved);
  EXPECT_EQ(ClassifyError({"error", "E9999", "new", "", "", 0, 0}), ErrorClass::kOtherCompile);
}

TEST(DiagnosticsTest, RedactsHostAndSandboxPaths) {
  std::map<std::string, std::string> prefixes = {{"/work/", ""},
                                                 {"/opt/rust", "<toolchain>"},
                                                 {"/root/.rustup/toolchains/stable", "<toolchain>"},
                                                 {"/home/ci/.cache/temper/crates/abc", "<crates>"}};
  std::string json =
      R"({"$message_type":"diagnostic","message":"couldn't read `/work/../etc/x`: /home/ci/.cache/temper/crates/abc/deps/libregex.rlib","code":null,"level":"error","spans":[{"file_name":"/work/src.rs","byte_start":0,"byte_end":1,"line_start":3,"line_end":3,"column_start":5,"column_end":6,"is_primary":true}],"children":[],"rendered":"error: at /opt/rust/lib/rustlib/src/rust/library/core/src/num.rs and /rustc/4a4ef493e3a1488c6e321570238084b38948f6db/library/std/src/io.rs in /root/.rustup/toolchains/stable/bin"})";
  auto diags = ParseDiagnostics(json);
  ASSERT_EQ(diags.size(), 1u);
  RedactPaths(diags[0], prefixes);
  EXPECT_EQ(diags[0].file, "src.rs");
  EXPECT_THAT(diags[0].message, HasSubstr("<crates>/deps/libregex.rlib"));
  EXPECT_THAT(diags[0].rendered, HasSubstr("<toolchain>/lib/rustlib"));
  EXPECT_THAT(diags[0].rendered, HasSubstr("<rustc>/library/std/src/io.rs"));
  for (const std::string& s : {diags[0].message, diags[0].rendered, diags[0].file}) {
    EXPECT_THAT(s, Not(HasSubstr("/home/ci")));
    EXPECT_THAT(s, Not(HasSubstr("/root/")));
    EXPECT_THAT(s, Not(HasSubstr("/opt/rust")));
    EXPECT_THAT(s, Not(HasSubstr("4a4ef493e3a1")));
  }
}

TEST(DiagnosticsTest, ClassNamesRoundTrip) {
  for (ErrorClass c : {ErrorClass::kNone, ErrorClass::kSyntax, ErrorClass::kUnresolved,
                       ErrorClass::kTypeMismatch, ErrorClass::kBorrow, ErrorClass::kTraitBound,
                       ErrorClass::kOtherCompile, ErrorClass::kTestFailure, ErrorClass::kTimeout,
                       ErrorClass::kResourceLimit, ErrorClass::kNoCode}) {
    EXPECT_EQ(ErrorClassFromName(ErrorClassName(c)), c);
  }
}

}  // namespace
}  // namespace temper::rusteval
