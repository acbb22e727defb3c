// Model output -> tool calls (JSON, Hermes tags, fences, Python call syntax). Never throws.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvcanary::fuzz::tool_call_parse(data, size);
  return 0;
}
