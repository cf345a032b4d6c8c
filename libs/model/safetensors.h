// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON describing each tensor's dtype, shape and [begin, end) byte range in
// the data section that follows, then the data. Plain C++ (no libtorch), so the format is tested
// and fuzzed on its own; libs/model/hf_checkpoint.h turns these views into torch tensors.
//
// Validation follows the reference implementation (the Rust crate): the header length is at most
// 100 MB and fits the file; the header is a JSON object (leading/trailing whitespace allowed);
// every tensor has a known dtype, a shape of non-negative integers and data_offsets [begin, end]
// with end - begin == numel * element size (no overflow); sorted by begin, the ranges tile the
// data section exactly (no overlap, no gap, nothing after the last tensor). Any violation is an
// InvalidArgument (or Unimplemented for a dtype we do not know) naming the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "libs/common/status.h"

namespace temper::model {

// The element types safetensors names. Values are ours; the file holds the names.
enum class Dtype : uint8_t {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
};

// "F32", "BF16", ... as written in a safetensors header.
std::string_view DtypeName(Dtype dtype);
// The dtype a header name stands for, or nullopt for a name we do not know.
std::optional<Dtype> DtypeFromName(std::string_view name);
// Bytes per element.
size_t DtypeSize(Dtype dtype);

// One tensor of a safetensors file: a view into memory owned by the SafetensorsFile it came from.
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;  // numel * DtypeSize(dtype) bytes, little-endian

  int64_t numel() const;
};

// A parsed, validated safetensors file. Immutable after opening; safe to read from many threads.
// The file is memory-mapped (read-only, private), so opening a multi-GB shard reads nothing but
// its header until a tensor's bytes are touched.
class SafetensorsFile {
 public:
  // Maps and validates `path`. NotFound when it cannot be opened, InvalidArgument when malformed
  // (the message names the file and what is wrong), Unimplemented for an unknown dtype.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Validates a file image held in memory; the result copies `bytes`. Used by tests and the fuzzer.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBuffer(std::string_view bytes);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // Tensors in the order of their data offsets.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const TensorView* Find(std::string_view name) const;
  // The header's "__metadata__" (string to string), empty when absent.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  absl::Status Parse(std::string_view origin);

  const uint8_t* base_ = nullptr;  // the whole file image
  size_t size_ = 0;
  void* mapping_ = nullptr;        // mmap'ed region, or nullptr when buffer_ holds the image
  std::string buffer_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Builds a safetensors file. Not thread-safe. Tensors are written in name order (the data of each
// copied at Add), the header padded with spaces to a multiple of 8 bytes as the reference does.
class SafetensorsWriter {
 public:
  // Adds a tensor. InvalidArgument when the name is empty, starts with "__", is already present,
  // or `data` is not numel(shape) * DtypeSize(dtype) bytes.
  absl::Status Add(std::string name, Dtype dtype, std::vector<int64_t> shape,
                   std::span<const uint8_t> data);
  void SetMetadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  // The complete file image.
  std::string Serialize() const;
  // Writes the file atomically (a temporary beside it, fsync, rename). Internal on I/O errors.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Entry {
    Dtype dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes `contents` to `path` atomically: a temporary file in the same directory, fsync, rename.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

}  // namespace temper::model
