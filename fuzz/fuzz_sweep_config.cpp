// The TOML sweep config (run/config.hpp) and the --shard argument.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvcanary::fuzz::sweep_config(data, size);
  return 0;
}
