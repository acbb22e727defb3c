// A results file read back for resuming: every line through row_from_json_line (via
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvcanary::fuzz::result_row(data, size);
  return 0;
}
