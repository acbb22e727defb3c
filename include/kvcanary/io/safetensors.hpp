#pragma once
// safetensors reader: mmap, zero-copy views. Format (huggingface/safetensors): 8-byte
// little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the data buffer; offsets are relative to the buffer. The header comes from a
// stranger's file, so every field is checked before any byte of tensor data is touched:
// JSON well-formed, offsets inside the buffer, no two tensors overlapping, and
// shape x dtype size == byte length.

#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/mapped_file.hpp"

namespace kvcanary::io {

enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::BOOL:
    case DType::U8:
    case DType::I8: return 1;
    case DType::I16:
    case DType::U16:
    case DType::F16:
    case DType::BF16: return 2;
    case DType::I32:
    case DType::U32:
    case DType::F32: return 4;
    case DType::F64:
    case DType::I64:
    case DType::U64: return 8;
  }
  return 0;
}

inline std::string_view dtype_name(DType t) {
  static constexpr std::string_view names[] = {"BOOL", "U8",  "I8",  "I16", "U16", "F16", "BF16",
                                               "I32",  "U32", "F32", "F64", "I64", "U64"};
  return names[static_cast<int>(t)];
}

inline bool parse_dtype(std::string_view s, DType& out) {
  for (int i = 0; i <= static_cast<int>(DType::U64); ++i) {
    if (dtype_name(static_cast<DType>(i)) == s) {
      out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

// A tensor inside a mapped file. `data` stays valid while the owning file is open.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;
  std::size_t nbytes = 0;
  std::string file;

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path) {
    auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
    f->map_ = MappedFile(path);
    f->parse();
    return f;
  }

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return map_.path(); }

  const TensorView* find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }

 private:
  SafetensorsFile() = default;

  void parse() {
    const std::string& p = map_.path();
    // Matches the reference implementation's cap: a header is metadata, never gigabytes.
    constexpr std::uint64_t kMaxHeader = 100u << 20;
    if (map_.size() < 8)
      fail(p, "header length",
           "file is " + std::to_string(map_.size()) + " bytes; a safetensors file starts with an 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | map_.data()[i];
    if (n > kMaxHeader)
      fail(p, "header length", "declares " + std::to_string(n) + " bytes (limit 100 MiB): not a safetensors file");
    if (n > map_.size() - 8)
      fail(p, "header length",
           "declares " + std::to_string(n) + " bytes but only " + std::to_string(map_.size() - 8) +
               " follow: file truncated");
    const std::size_t buffer_begin = 8 + static_cast<std::size_t>(n);
    const std::size_t buffer_size = map_.size() - buffer_begin;

    simdjson::padded_string json(reinterpret_cast<const char*>(map_.data() + 8), static_cast<std::size_t>(n));
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto err = parser.parse(json).get(root))
      fail(p, "header", std::string("malformed JSON: ") + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (root.get(obj)) fail(p, "header", "JSON header is not an object");

    for (auto [key_sv, value] : obj) {
      std::string key(key_sv);
      if (key == "__metadata__") {
        simdjson::dom::object meta;
        if (value.get(meta)) fail(p, "__metadata__", "must be an object of strings");
        for (auto [mk, mv] : meta) {
          std::string_view s;
          if (mv.get(s)) fail(p, "__metadata__." + std::string(mk), "must be a string");
          metadata_[std::string(mk)] = std::string(s);
        }
        continue;
      }
      tensors_.push_back(parse_entry(p, key, value, buffer_size));
      tensors_.back().data = map_.data() + buffer_begin + offsets_.back().first;
      tensors_.back().file = p;
      if (!index_.emplace(key, tensors_.size() - 1).second) fail(p, key, "tensor name appears twice");
    }

    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return offsets_[a] < offsets_[b]; });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const auto& prev = offsets_[order[i - 1]];
      const auto& cur = offsets_[order[i]];
      if (cur.first < prev.second && cur.second > cur.first) {
        fail(p, tensors_[order[i]].name, "data_offsets overlap tensor '" + tensors_[order[i - 1]].name + "'");
      }
    }
  }

  TensorView parse_entry(const std::string& p, const std::string& key, simdjson::dom::element value,
                         std::size_t buffer_size) {
    TensorView t;
    t.name = key;
    std::string_view dtype;
    if (value["dtype"].get(dtype)) fail(p, key + ".dtype", "missing or not a string");
    if (!parse_dtype(dtype, t.dtype)) fail(p, key + ".dtype", "unknown dtype '" + std::string(dtype) + "'");
    simdjson::dom::array shape;
    if (value["shape"].get(shape)) fail(p, key + ".shape", "missing or not an array");
    __int128 numel = 1;
    for (auto d : shape) {
      std::int64_t dim;
      if (d.get(dim) || dim < 0) fail(p, key + ".shape", "dimensions must be non-negative integers");
      t.shape.push_back(dim);
      numel *= dim;
      if (numel > (static_cast<__int128>(1) << 62)) fail(p, key + ".shape", "tensor too large");
    }
    simdjson::dom::array offs;
    if (value["data_offsets"].get(offs) || offs.size() != 2) fail(p, key + ".data_offsets", "must be [begin, end]");
    std::uint64_t begin = 0, end = 0;
    if (offs.at(0).get(begin) || offs.at(1).get(end)) fail(p, key + ".data_offsets", "must be non-negative integers");
    if (begin > end) fail(p, key + ".data_offsets", "begin > end");
    if (end > buffer_size) {
      fail(p, key + ".data_offsets",
           "end " + std::to_string(end) + " lies past the data buffer (" + std::to_string(buffer_size) +
               " bytes): file truncated or corrupt");
    }
    const __int128 expected = numel * static_cast<__int128>(dtype_size(t.dtype));
    if (expected != static_cast<__int128>(end - begin)) {
      fail(p, key + ".data_offsets",
           "byte length " + std::to_string(end - begin) + " != shape x " + std::string(dtype_name(t.dtype)) +
               " size (" + std::to_string(static_cast<long long>(expected)) + ")");
    }
    t.nbytes = static_cast<std::size_t>(end - begin);
    offsets_.emplace_back(static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
    return t;
  }

  MappedFile map_;
  std::vector<TensorView> tensors_;
  std::vector<std::pair<std::size_t, std::size_t>> offsets_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model directory: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json` (its weight_map names the shard of every tensor).
class SafetensorsModel {
 public:
  static SafetensorsModel open(const std::filesystem::path& dir) {
    SafetensorsModel m;
    const auto single = dir / "model.safetensors";
    const auto index = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(index)) {
      m.open_sharded(dir, index);
    } else if (std::filesystem::exists(single)) {
      m.files_.push_back(SafetensorsFile::open(single));
      for (const auto& t : m.files_.back()->tensors()) m.by_name_[t.name] = &t;
    } else {
      fail(single.string(), "", "no model.safetensors (nor model.safetensors.index.json) in the model directory");
    }
    return m;
  }

  const TensorView* find(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : it->second;
  }

  // The tensor, checked against the shape the model config implies.
  const TensorView& require(std::string_view name, std::initializer_list<std::int64_t> shape) const {
    const TensorView* t = find(name);
    if (!t)
      fail(files_.empty() ? std::string() : files_.front()->path(), std::string(name),
           "tensor missing from the model's safetensors");
    if (!std::equal(t->shape.begin(), t->shape.end(), shape.begin(), shape.end())) {
      fail(t->file, t->name,
           "shape " + shape_string(t->shape) + " but config.json implies " +
               shape_string(std::vector<std::int64_t>(shape)));
    }
    return *t;
  }

  std::size_t tensor_count() const { return by_name_.size(); }

 private:
  static std::string shape_string(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  }

  void open_sharded(const std::filesystem::path& dir, const std::filesystem::path& index) {
    const std::string ip = index.string();
    simdjson::padded_string json;
    if (simdjson::padded_string::load(ip).get(json)) fail(ip, "", "cannot read");
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto err = parser.parse(json).get(root))
      fail(ip, "", std::string("malformed JSON: ") + simdjson::error_message(err));
    simdjson::dom::object weight_map;
    if (root["weight_map"].get(weight_map)) fail(ip, "weight_map", "missing or not an object");
    std::map<std::string, SafetensorsFile*> shards;
    std::vector<std::pair<std::string, std::string>> wanted;
    for (auto [name, shard_el] : weight_map) {
      std::string_view shard;
      if (shard_el.get(shard)) fail(ip, "weight_map." + std::string(name), "must be a file name");
      if (shard.find('/') != std::string_view::npos || shard.find("..") != std::string_view::npos) {
        fail(ip, "weight_map." + std::string(name), "shard must be a plain file name in the model directory");
      }
      if (!shards.count(std::string(shard))) {
        files_.push_back(SafetensorsFile::open(dir / std::string(shard)));
        shards[std::string(shard)] = files_.back().get();
      }
      wanted.emplace_back(std::string(name), std::string(shard));
    }
    for (const auto& [name, shard] : wanted) {
      const TensorView* t = shards[shard]->find(name);
      if (!t) fail(ip, "weight_map." + name, "tensor not present in shard " + shard);
      by_name_[name] = t;
    }
  }

  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

}  // namespace kvcanary::io
