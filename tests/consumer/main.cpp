// Built against the *installed* kvcanary package: proves the umbrella header is
// self-contained and the exported target carries every dependency.
#include <kvcanary/kvcanary.hpp>

#include <cstdio>

int main() {
  const kvcanary::bf16_t one = kvcanary::to_bf16(1.0f);
  std::printf("kvcanary consumer ok %g\n", static_cast<double>(kvcanary::to_float(one)));
  return kvcanary::to_float(one) == 1.0f ? 0 : 1;
}
