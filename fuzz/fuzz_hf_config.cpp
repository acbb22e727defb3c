// config.json of a model directory.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvcanary::fuzz::hf_config(data, size);
  return 0;
}
