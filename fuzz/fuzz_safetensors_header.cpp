// The safetensors header (8-byte length + JSON) and the offsets it declares.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvcanary::fuzz::safetensors_header(data, size);
  return 0;
}
