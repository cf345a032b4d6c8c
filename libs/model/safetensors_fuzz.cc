// libFuzzer target for the safetensors parser: any byte string must give a Status or a file whose
// views lie inside the image. Built by libs/model/CMakeLists.txt only under clang; by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     libs/model/safetensors_fuzz.cc libs/model/safetensors.cc -labsl_status -labsl_statusor -labsl_strings \
//     -o /tmp/safetensors_fuzz && /tmp/safetensors_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "libs/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = temper::model::SafetensorsFile::FromBuffer(bytes);
  if (!file.ok()) return 0;
  uint64_t checksum = 0;
  for (const auto& t : (*file)->tensors()) {
    // Touch every byte so ASan sees any view that escapes the image.
    for (uint8_t b : t.data) checksum += b;
    if (static_cast<size_t>(t.numel()) * temper::model::DtypeSize(t.dtype) != t.data.size()) {
      std::abort();
    }
  }
  return checksum == 0xdeadbeef ? 0 : 0;
}
