#pragma once
// Writes a .safetensors file (https://github.com/huggingface/safetensors, "Format"):
//   u64 LE header length N | N bytes of JSON header | tensor data
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the start of the data, contiguous, no holes, covering it all) and may
// hold "__metadata__": {string: string}. We pad the header with spaces so that the data
// starts 8-byte aligned, which lets readers map F32/F64 tensors in place.
//
// Tensor data is produced on demand by a fill callback while writing, so peak memory is
// one tensor, not the whole model. The file is written under a temporary name in the same
// directory and renamed into place only once complete: a reader never sees half a file.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kvcanary/core/atomic_file.hpp"
#include "kvcanary/core/error.hpp"

namespace kvcanary::io {

// Bytes per element of a safetensors dtype name, or 0 if unknown.
inline std::size_t safetensors_dtype_size(const std::string& dtype) noexcept {
  static const std::map<std::string, std::size_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

namespace st_write_detail {
// A plain file written with write(2) and fsynced on close; the temporary directory of a model
// conversion (io/gguf_to_hf.hpp) is filled with these, then renamed into place whole.
class FdWriter {
 public:
  FdWriter(const std::filesystem::path& p) : path_(p.string()) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path_, "", std::string("cannot create: ") + std::strerror(errno));
  }
  FdWriter(const FdWriter&) = delete;
  FdWriter& operator=(const FdWriter&) = delete;
  ~FdWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const void* data, std::size_t n) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    while (n > 0) {
      ssize_t k = ::write(fd_, p, n);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) fail(path_, "", std::string("write failed: ") + std::strerror(errno));
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at empty blocks.
  void close() {
    if (::fsync(fd_) != 0) fail(path_, "", std::string("fsync failed: ") + std::strerror(errno));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(path_, "", std::string("close failed: ") + std::strerror(errno));
  }

 private:
  std::string path_;
  int fd_ = -1;
};
}  // namespace st_write_detail

class SafetensorsWriter {
 public:
  using Fill = std::function<void(std::span<std::uint8_t>)>;

  // Adds a tensor whose bytes `fill` writes into the span it is given (exactly
  // product(shape) * dtype size bytes) when the file is written.
  void add(std::string name, std::string dtype, std::vector<std::uint64_t> shape, Fill fill) {
    const std::size_t esize = safetensors_dtype_size(dtype);
    if (esize == 0) fail("", name, "unknown safetensors dtype '" + dtype + "'");
    if (name.empty() || name == "__metadata__") fail("", name, "invalid tensor name");
    std::uint64_t n = 1;
    for (auto d : shape) {
      if (d != 0 && n > UINT64_MAX / d) fail("", name, "shape overflows");
      n *= d;
    }
    if (n > UINT64_MAX / esize) fail("", name, "byte size overflows");
    for (const auto& e : entries_)
      if (e.name == name) fail("", name, "duplicate tensor name");
    entries_.push_back({std::move(name), std::move(dtype), std::move(shape), n * esize, std::move(fill)});
  }
  // Convenience: copies the bytes now.
  void add(std::string name, std::string dtype, std::vector<std::uint64_t> shape, std::span<const std::uint8_t> bytes) {
    std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
    const std::string label = name;
    add(std::move(name), std::move(dtype), std::move(shape),
        [copy = std::move(copy), label](std::span<std::uint8_t> out) {
          if (out.size() != copy.size())
            fail("", label,
                 "data has " + std::to_string(copy.size()) + " bytes, shape needs " + std::to_string(out.size()));
          std::memcpy(out.data(), copy.data(), copy.size());
        });
  }
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  // The JSON header, padded; tensors are laid out in name order so output is deterministic.
  std::string header() const {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata_) m[k] = v;
      h["__metadata__"] = std::move(m);
    }
    std::uint64_t off = 0;
    for (const Entry* e : ordered()) {
      h[e->name] = {{"dtype", e->dtype}, {"shape", e->shape}, {"data_offsets", {off, off + e->n_bytes}}};
      off += e->n_bytes;
    }
    std::string s = h.dump();
    while ((8 + s.size()) % 8 != 0) s.push_back(' ');
    return s;
  }

  // Writes everything to `path` atomically (core/atomic_file.hpp: temp file, fsync, rename).
  // Errors (a full disk included) name `path` and leave no partial file behind.
  void write(const std::filesystem::path& path) const {
    const std::string header_json = header();
    AtomicFile w(path, /*make_dirs=*/false);
    const std::uint64_t n = header_json.size();
    std::uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(n >> (8 * i));
    w.write(len, 8);
    w.write(header_json.data(), header_json.size());
    std::vector<std::uint8_t> buf;
    for (const Entry* e : ordered()) {
      buf.assign(static_cast<std::size_t>(e->n_bytes), 0);
      e->fill(buf);
      w.write(buf.data(), buf.size());
    }
    w.commit();
  }

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<std::uint64_t> shape;
    std::uint64_t n_bytes;
    Fill fill;
  };
  std::vector<const Entry*> ordered() const {
    std::vector<const Entry*> v;
    for (const auto& e : entries_) v.push_back(&e);
    std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->name < b->name; });
    return v;
  }
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace kvcanary::io
