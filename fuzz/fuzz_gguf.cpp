// A GGUF file: header, metadata (nested arrays), tensor infos and their data ranges.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvcanary::fuzz::gguf(data, size);
  return 0;
}
