#include "libs/common/strings.h"

#include <gtest/gtest.h>

namespace temper {
namespace {

TEST(Utf8Test, AcceptsWellFormedAndRejectsMalformed) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\xa6\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(DidYouMeanTest, SuggestsCloseKeysOnly) {
  std::vector<std::string> keys = {"r", "alpha", "dropout", "target_modules", "use_rslora"};
  EXPECT_EQ(DidYouMean("alpah", keys), "alpha");
  EXPECT_EQ(DidYouMean("dropuot", keys), "dropout");
  EXPECT_EQ(DidYouMean("target_module", keys), "target_modules");
  EXPECT_EQ(DidYouMean("completely_unrelated", keys), "");
}

TEST(JsonEscapeTest, EscapesQuotesAndControls) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
}

}  // namespace
}  // namespace temper
