#include <kvcanary/kvcanary.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "kvcanary: no command yet\n");
  return 2;
}
