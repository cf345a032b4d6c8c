#include "libs/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace temper::model {

namespace {

using nlohmann::json;

// The reference refuses headers above 100 MB (safetensors/src/tensor.rs MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {Dtype::kBool, "BOOL", 1}, {Dtype::kU8, "U8", 1},         {Dtype::kI8, "I8", 1},
    {Dtype::kF8E5M2, "F8_E5M2", 1}, {Dtype::kF8E4M3, "F8_E4M3", 1}, {Dtype::kI16, "I16", 2},
    {Dtype::kU16, "U16", 2},   {Dtype::kF16, "F16", 2},       {Dtype::kBF16, "BF16", 2},
    {Dtype::kI32, "I32", 4},   {Dtype::kU32, "U32", 4},       {Dtype::kF32, "F32", 4},
    {Dtype::kF64, "F64", 8},   {Dtype::kI64, "I64", 8},       {Dtype::kU64, "U64", 8},
}};

std::string Quoted(std::string_view s) {
  // Names come from untrusted files: keep messages short and printable.
  std::string out = "\"";
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 200) out += "...";
  return out + "\"";
}

// numel * elem_size, or nullopt on overflow / negative dimensions.
std::optional<uint64_t> ByteSize(const std::vector<int64_t>& shape, size_t elem_size) {
  uint64_t n = elem_size;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
      return std::nullopt;
    }
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

}  // namespace

std::string_view DtypeName(Dtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

std::optional<Dtype> DtypeFromName(std::string_view name) {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

size_t DtypeSize(Dtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("safetensors: cannot open ", path, ": ",
                                            std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("safetensors: fstat ", path, ": ", std::strerror(err)));
  }
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("safetensors: mmap ", path, ": ", std::strerror(err)));
    }
    file->mapping_ = p;
    file->base_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  RETURN_IF_ERROR(file->Parse(path));
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(
    std::string_view bytes) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->buffer_.assign(bytes.data(), bytes.size());
  file->base_ = reinterpret_cast<const uint8_t*>(file->buffer_.data());
  file->size_ = file->buffer_.size();
  RETURN_IF_ERROR(file->Parse("<buffer>"));
  return file;
}

absl::Status SafetensorsFile::Parse(std::string_view origin_view) {
  const std::string origin(origin_view);
  auto invalid = [&](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors ", origin, ": ", std::string(what)));
  };
  if (size_ < 8) return invalid(absl::StrCat("file of ", size_, " bytes has no 8-byte header length"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base_[i];
  if (header_len > kMaxHeaderSize) {
    return invalid(absl::StrCat("header length ", header_len, " exceeds the 100 MB limit"));
  }
  if (header_len > size_ - 8) {
    return invalid(absl::StrCat("header length ", header_len, " runs past the end of the file (",
                                size_, " bytes)"));
  }
  const uint8_t* header = base_ + 8;
  if (header_len < 2 || header[0] != '{') {
    return invalid("header is not a JSON object (it must start with '{')");
  }
  json root = json::parse(header, header + header_len, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return invalid("header is not valid JSON");
  }
  const uint8_t* data = header + header_len;
  const uint64_t data_size = size_ - 8 - header_len;

  tensors_.clear();
  index_.clear();
  metadata_.clear();
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (begin, end) parallel to tensors_
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return invalid("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          return invalid(absl::StrCat("__metadata__ value for ", Quoted(key), " is not a string"));
        }
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string tname = Quoted(name);
    if (!entry.is_object()) return invalid(absl::StrCat("tensor ", tname, " is not an object"));
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return invalid(absl::StrCat("tensor ", tname, " has no string \"dtype\""));
    }
    const std::string dtype_name = dtype_it->get<std::string>();
    std::optional<Dtype> dtype = DtypeFromName(dtype_name);
    if (!dtype) {
      return absl::UnimplementedError(absl::StrCat("safetensors ", origin, ": tensor ", tname,
                                                   " has unknown dtype ", Quoted(dtype_name)));
    }
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return invalid(absl::StrCat("tensor ", tname, " has no \"shape\" array"));
    }
    std::vector<int64_t> shape;
    for (const json& d : *shape_it) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 62)) {
        return invalid(absl::StrCat("tensor ", tname, " has a shape entry that is not a ",
                                    "non-negative integer: ", d.dump().substr(0, 40)));
      }
      shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      return invalid(absl::StrCat("tensor ", tname,
                                  " needs \"data_offsets\": [begin, end] of non-negative integers"));
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end) {
      return invalid(absl::StrCat("tensor ", tname, " has data_offsets [", begin, ", ", end,
                                  "] with begin after end"));
    }
    if (end > data_size) {
      return invalid(absl::StrCat("tensor ", tname, " has data_offsets [", begin, ", ", end,
                                  "] past the data section (", data_size, " bytes)"));
    }
    std::optional<uint64_t> want = ByteSize(shape, DtypeSize(*dtype));
    if (!want || *want != end - begin) {
      return invalid(absl::StrCat("tensor ", tname, " of dtype ", dtype_name, " and shape [",
                                  shape_it->dump().substr(1, 60), " needs ",
                                  want ? absl::StrCat(*want) : std::string("an overflowing number of"),
                                  " bytes but data_offsets give ", end - begin));
    }
    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    view.shape = std::move(shape);
    view.data = std::span<const uint8_t>(data + begin, end - begin);
    tensors_.push_back(std::move(view));
    ranges.emplace_back(begin, end);
  }

  // Sort by begin (then end, so empty tensors come before a non-empty one at the same offset) and
  // require the ranges to tile [0, data_size) exactly.
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  uint64_t expected = 0;
  for (size_t i : order) {
    if (ranges[i].first != expected) {
      return invalid(absl::StrCat("tensor ", Quoted(tensors_[i].name), " starts at ",
                                  ranges[i].first, ", expected ", expected,
                                  ranges[i].first < expected ? " (overlaps the previous tensor)"
                                                             : " (gap after the previous tensor)"));
    }
    expected = ranges[i].second;
  }
  if (expected != data_size) {
    return invalid(absl::StrCat("tensors end at ", expected, " but the data section has ",
                                data_size, " bytes"));
  }
  std::vector<TensorView> sorted;
  sorted.reserve(order.size());
  for (size_t i : order) sorted.push_back(std::move(tensors_[i]));
  tensors_ = std::move(sorted);
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return absl::OkStatus();
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::Status SafetensorsWriter::Add(std::string name, Dtype dtype, std::vector<int64_t> shape,
                                    std::span<const uint8_t> data) {
  if (name.empty() || name.starts_with("__")) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors: bad tensor name ", Quoted(name)));
  }
  if (entries_.contains(name)) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors: duplicate tensor ", Quoted(name)));
  }
  std::optional<uint64_t> want = ByteSize(shape, DtypeSize(dtype));
  if (!want || *want != data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor ", Quoted(name), " has ",
                                                   data.size(), " bytes, its shape needs ",
                                                   want ? *want : 0));
  }
  entries_.emplace(std::move(name),
                   Entry{dtype, std::move(shape),
                         std::string(reinterpret_cast<const char*>(data.data()), data.size())});
  return absl::OkStatus();
}

std::string SafetensorsWriter::Serialize() const {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& [name, e] : entries_) {
    header[name] = {{"dtype", std::string(DtypeName(e.dtype))},
                    {"shape", e.shape},
                    {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  for (const auto& [name, e] : entries_) out += e.bytes;
  return out;
}

absl::Status SafetensorsWriter::WriteFile(const std::string& path) const {
  return WriteFileAtomically(path, Serialize());
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("write ", tmp, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("fsync/close ", tmp, ": ", std::strerror(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace temper::model
