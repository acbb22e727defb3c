#pragma once
// Umbrella header: everything a research program needs, in the order of the architecture
// io -> model -> kv -> task -> run.

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/half.hpp"
#include "kvcanary/core/mapped_file.hpp"
