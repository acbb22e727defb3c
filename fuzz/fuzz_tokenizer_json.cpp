// tokenizer.json, then a short encode/decode round with whatever tokenizer it describes.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvcanary::fuzz::tokenizer_json(data, size);
  return 0;
}
