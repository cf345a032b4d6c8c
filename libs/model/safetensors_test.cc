#include "libs/model/safetensors.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "libs/model/path_util.h"

namespace temper::model {
namespace {

using ::testing::HasSubstr;

// A file image from a header text and a data section.
std::string Image(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

std::span<const uint8_t> Bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

absl::Status Check(const std::string& header, const std::string& data) {
  return SafetensorsFile::FromBuffer(Image(header, data)).status();
}

TEST(SafetensorsTest, RoundTripThroughFile) {
  SafetensorsWriter w;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {0x3f80, 0x4000};
  ASSERT_TRUE(w.Add("model.a", Dtype::kF32, {2, 3}, Bytes(a)).ok());
  ASSERT_TRUE(w.Add("model.b", Dtype::kBF16, {2},
                    {reinterpret_cast<const uint8_t*>(b.data()), 4}).ok());
  ASSERT_TRUE(w.Add("empty", Dtype::kI64, {0, 5}, {}).ok());
  w.SetMetadata("format", "pt");
  const std::string dir = MakeTempDir("st_test_").value();
  const std::string path = JoinPath(dir, "t.safetensors");
  ASSERT_TRUE(w.WriteFile(path).ok());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->tensors().size(), 3u);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  const TensorView* ta = (*file)->Find("model.a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->dtype, Dtype::kF32);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(ta->data.size(), 24u);
  float got[6];
  std::memcpy(got, ta->data.data(), 24);
  EXPECT_EQ(got[5], 6.0f);
  EXPECT_EQ((*file)->Find("empty")->numel(), 0);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
  ASSERT_TRUE(RemoveTree(dir).ok());

  // The header is padded to 8 bytes, as the reference writes it.
  std::string image = w.Serialize();
  uint64_t n = 0;
  std::memcpy(&n, image.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(SafetensorsTest, WriterRejectsBadInput) {
  SafetensorsWriter w;
  std::vector<float> a = {1, 2};
  EXPECT_FALSE(w.Add("x", Dtype::kF32, {3}, Bytes(a)).ok());
  EXPECT_FALSE(w.Add("__metadata__", Dtype::kF32, {2}, Bytes(a)).ok());
  EXPECT_TRUE(w.Add("x", Dtype::kF32, {2}, Bytes(a)).ok());
  EXPECT_FALSE(w.Add("x", Dtype::kF32, {2}, Bytes(a)).ok());
}

TEST(SafetensorsTest, OpenMissingFileIsNotFound) {
  EXPECT_EQ(SafetensorsFile::Open("/nonexistent/x.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, AcceptsWhitespacePaddedHeaderAndEmptyFile) {
  EXPECT_TRUE(Check(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}     )", "xy").ok());
  EXPECT_TRUE(Check("{}", "").ok());
}

struct Malformed {
  const char* name;
  std::string image;
  absl::StatusCode code;
  const char* message;
};

TEST(SafetensorsTest, RejectsMalformedFiles) {
  const std::string big_len = std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}";
  const std::string past_end = std::string("\x10\x00\x00\x00\x00\x00\x00\x00", 8) + "{}";
  const std::vector<Malformed> cases = {
      {"short", "abc", absl::StatusCode::kInvalidArgument, "8-byte header length"},
      {"huge header length", big_len, absl::StatusCode::kInvalidArgument, "100 MB"},
      {"header past end", past_end, absl::StatusCode::kInvalidArgument, "past the end"},
      {"not an object", Image("[1,2]", ""), absl::StatusCode::kInvalidArgument, "JSON object"},
      {"bad json", Image("{\"a\":", ""), absl::StatusCode::kInvalidArgument, "not valid JSON"},
      {"bad utf8", Image("{\"\xff\":1}", ""), absl::StatusCode::kInvalidArgument,
       "not valid JSON"},
      {"tensor not object", Image(R"({"a":1})", ""), absl::StatusCode::kInvalidArgument,
       "not an object"},
      {"unknown dtype", Image(R"({"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})", "x"),
       absl::StatusCode::kUnimplemented, "unknown dtype"},
      {"missing dtype", Image(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", "x"),
       absl::StatusCode::kInvalidArgument, "dtype"},
      {"negative dim", Image(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x"),
       absl::StatusCode::kInvalidArgument, "non-negative integer"},
      {"float dim", Image(R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "x"),
       absl::StatusCode::kInvalidArgument, "non-negative integer"},
      {"offsets reversed", Image(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", "x"),
       absl::StatusCode::kInvalidArgument, "begin after end"},
      {"offsets past data", Image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "x"),
       absl::StatusCode::kInvalidArgument, "past the data section"},
      {"size mismatch", Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "xxxx"),
       absl::StatusCode::kInvalidArgument, "needs 8 bytes"},
      {"overflowing shape",
       Image(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,1]}})", "x"),
       absl::StatusCode::kInvalidArgument, "overflowing"},
      {"overlap",
       Image(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
             R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "xyz"),
       absl::StatusCode::kInvalidArgument, "overlaps"},
      {"gap",
       Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "xy"),
       absl::StatusCode::kInvalidArgument, "gap"},
      {"trailing data",
       Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "xy"),
       absl::StatusCode::kInvalidArgument, "data section has 2 bytes"},
      {"bad offsets arity", Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "x"),
       absl::StatusCode::kInvalidArgument, "data_offsets"},
      {"metadata not strings", Image(R"({"__metadata__":{"k":1}})", ""),
       absl::StatusCode::kInvalidArgument, "not a string"},
  };
  for (const auto& c : cases) {
    absl::Status s = SafetensorsFile::FromBuffer(c.image).status();
    EXPECT_EQ(s.code(), c.code) << c.name << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.name;
  }
}

TEST(SafetensorsTest, DtypeNamesRoundTrip) {
  for (const char* name : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
                           "I32", "U32", "F32", "F64", "I64", "U64"}) {
    auto d = DtypeFromName(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_EQ(DtypeName(*d), name);
    EXPECT_GT(DtypeSize(*d), 0u);
  }
  EXPECT_FALSE(DtypeFromName("f32").has_value());
}

TEST(PathUtilTest, JoinMakeRemove) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(JoinPath("a", "/abs"), "/abs");
  const std::string root = MakeTempDir("path_util_").value();
  EXPECT_TRUE(PathExists(root));
  const std::string deep = JoinPath(root, "x/y/z");
  ASSERT_TRUE(MakeDirs(deep).ok());
  ASSERT_TRUE(MakeDirs(deep).ok());  // already there
  ASSERT_TRUE(WriteFileAtomically(JoinPath(deep, "f"), "hi").ok());
  EXPECT_FALSE(MakeDirs(JoinPath(deep, "f")).ok());  // a file, not a directory
  EXPECT_TRUE(PathExists(JoinPath(deep, "f")));
  ASSERT_TRUE(RemoveTree(root).ok());
  EXPECT_FALSE(PathExists(root));
  EXPECT_TRUE(RemoveTree(root).ok());  // absent is fine
}

}  // namespace
}  // namespace temper::model
