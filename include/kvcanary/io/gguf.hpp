#pragma once
// GGUF (v2/v3) container reader over a read-only memory map.
//
// Layout (ggml/docs/gguf.md), all little-endian:
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x  { gguf_string key | u32 value_type | value }
//   tensor_count x { gguf_string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data
// gguf_string = u64 length + bytes (no terminator). ne[0] is the innermost (contiguous)
// dimension, so a GGUF tensor with ne = [in, out] is a row-major [out, in] matrix.
//
// Every length, count and offset in the file is untrusted: each read is bounds-checked
// against the mapped size before it happens, and counts are checked against the bytes
// left before anything is allocated for them, so a corrupt or hostile file yields a
// kvcanary::Error naming the file and the field, never a crash or an out-of-bounds read.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "kvcanary/core/error.hpp"
#include "kvcanary/core/mapped_file.hpp"

namespace kvcanary::io {

// Metadata value types, numbered as in the GGUF spec.
enum class GgufType : std::uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

inline const char* gguf_type_name(GgufType t) noexcept {
  switch (t) {
    case GgufType::UINT8: return "UINT8";
    case GgufType::INT8: return "INT8";
    case GgufType::UINT16: return "UINT16";
    case GgufType::INT16: return "INT16";
    case GgufType::UINT32: return "UINT32";
    case GgufType::INT32: return "INT32";
    case GgufType::FLOAT32: return "FLOAT32";
    case GgufType::BOOL: return "BOOL";
    case GgufType::STRING: return "STRING";
    case GgufType::ARRAY: return "ARRAY";
    case GgufType::UINT64: return "UINT64";
    case GgufType::INT64: return "INT64";
    case GgufType::FLOAT64: return "FLOAT64";
  }
  return "?";
}

// Tensor element types, numbered as ggml's enum ggml_type (values never reused).
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct GgmlTypeTraits {
  const char* name;
  std::uint32_t block_size;  // elements per block
  std::uint32_t type_size;   // bytes per block
};

// Block geometry of every type a file may contain (ggml.c type_traits). Returns nullptr for
// ids that ggml never assigned or has removed (4, 5: Q4_2/Q4_3; 31-33: repacked types).
inline const GgmlTypeTraits* ggml_type_traits(std::uint32_t id) noexcept {
  static constexpr struct {
    std::uint32_t id;
    GgmlTypeTraits t;
  } kTable[] = {
      {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},      {3, {"Q4_1", 32, 20}},
      {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},      {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 36}},
      {10, {"Q2_K", 256, 84}},    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
      {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}}, {17, {"IQ2_XS", 256, 74}},
      {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},   {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},
      {22, {"IQ2_S", 256, 82}},   {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
      {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},        {29, {"IQ1_M", 256, 56}},
      {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},   {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},
  };
  for (const auto& e : kTable)
    if (e.id == id) return &e.t;
  return nullptr;
}

inline const char* ggml_type_name(GgmlType t) noexcept {
  const GgmlTypeTraits* tr = ggml_type_traits(static_cast<std::uint32_t>(t));
  return tr ? tr->name : "?";
}

// A metadata value. Integers keep their signedness class (u64 / i64), floats are widened to
// double (exact for FLOAT32), and `type` remembers the on-disk type.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType elem_type = GgufType::UINT8;  // meaningful when type == ARRAY
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, std::vector<GgufValue>> v;

  bool is_unsigned() const noexcept { return std::holds_alternative<std::uint64_t>(v); }
  bool is_signed() const noexcept { return std::holds_alternative<std::int64_t>(v); }
  bool is_float() const noexcept { return std::holds_alternative<double>(v); }
  bool is_bool() const noexcept { return std::holds_alternative<bool>(v); }
  bool is_string() const noexcept { return std::holds_alternative<std::string>(v); }
  bool is_array() const noexcept { return std::holds_alternative<std::vector<GgufValue>>(v); }
  const std::vector<GgufValue>& array() const { return std::get<std::vector<GgufValue>>(v); }
  const std::string& string() const { return std::get<std::string>(v); }
};

struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // ne[0] first (innermost)
  GgmlType type = GgmlType::F32;
  std::uint64_t offset = 0;       // relative to the data section, as stored
  std::uint64_t file_offset = 0;  // absolute, validated: file_offset + n_bytes <= file size
  std::uint64_t n_elements = 0;
  std::uint64_t n_bytes = 0;

  // dims in row-major (numpy / PyTorch) order: outermost first.
  std::vector<std::uint64_t> shape() const { return {dims.rbegin(), dims.rend()}; }
};

class GgufFile {
 public:
  static constexpr std::uint32_t kDefaultAlignment = 32;
  // Bounds recursion on nested arrays so a crafted file cannot exhaust the stack.
  static constexpr int kMaxArrayDepth = 8;
  static constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

  explicit GgufFile(const std::filesystem::path& path) : file_(path) { parse(); }

  const std::string& path() const noexcept { return file_.path(); }
  std::uint32_t version() const noexcept { return version_; }
  std::uint32_t alignment() const noexcept { return alignment_; }
  std::uint64_t data_offset() const noexcept { return data_offset_; }
  std::uint64_t file_size() const noexcept { return file_.size(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const noexcept { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const noexcept { return tensors_; }

  const GgufValue* find(std::string_view key) const {
    auto it = kv_index_.find(std::string(key));
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  const GgufValue& get(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail(path(), std::string(key), "required metadata key is missing");
    return *v;
  }
  // Any integer type whose value is >= 0.
  std::uint64_t get_uint(std::string_view key) const { return as_uint(get(key), key); }
  std::int64_t get_int(std::string_view key) const { return as_int(get(key), key); }
  // FLOAT32 / FLOAT64 (integers are accepted too: some writers store e.g. rope bases as ints).
  double get_float(std::string_view key) const { return as_float(get(key), key); }
  bool get_bool(std::string_view key) const {
    const GgufValue& v = get(key);
    if (!v.is_bool()) type_error(key, v, "BOOL");
    return std::get<bool>(v.v);
  }
  const std::string& get_string(std::string_view key) const {
    const GgufValue& v = get(key);
    if (!v.is_string()) type_error(key, v, "STRING");
    return v.string();
  }
  std::vector<std::string> get_string_array(std::string_view key) const {
    const GgufValue& v = get(key);
    if (!v.is_array() || v.elem_type != GgufType::STRING) type_error(key, v, "ARRAY of STRING");
    std::vector<std::string> out;
    out.reserve(v.array().size());
    for (const auto& e : v.array()) out.push_back(e.string());
    return out;
  }
  std::vector<std::int64_t> get_int_array(std::string_view key) const {
    const GgufValue& v = get(key);
    if (!v.is_array()) type_error(key, v, "ARRAY of integers");
    std::vector<std::int64_t> out;
    out.reserve(v.array().size());
    for (std::size_t i = 0; i < v.array().size(); ++i)
      out.push_back(as_int(v.array()[i], std::string(key) + "[" + std::to_string(i) + "]"));
    return out;
  }

  std::uint64_t get_uint_or(std::string_view key, std::uint64_t dflt) const { return has(key) ? get_uint(key) : dflt; }
  double get_float_or(std::string_view key, double dflt) const { return has(key) ? get_float(key) : dflt; }
  bool get_bool_or(std::string_view key, bool dflt) const { return has(key) ? get_bool(key) : dflt; }

  const GgufTensorInfo* find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  const GgufTensorInfo& tensor(std::string_view name) const {
    const GgufTensorInfo* t = find_tensor(name);
    if (!t) fail(path(), std::string(name), "tensor not found");
    return *t;
  }
  // The tensor's bytes inside the map; the range was validated when the file was opened.
  std::span<const std::uint8_t> tensor_bytes(const GgufTensorInfo& t) const noexcept {
    return {file_.data() + t.file_offset, static_cast<std::size_t>(t.n_bytes)};
  }

 private:
  // Bounds-checked sequential reader; `where` names the field for error messages.
  struct Cursor {
    const std::uint8_t* base;
    std::uint64_t size;
    std::uint64_t pos;
    const std::string& path;

    std::uint64_t left() const noexcept { return size - pos; }
    void need(std::uint64_t n, const std::string& where) const {
      if (n > left())
        fail(path, where,
             "truncated: needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos) + ", file has " +
                 std::to_string(size));
    }
    template <class T>
    T read(const std::string& where) {
      need(sizeof(T), where);
      T v;
      std::memcpy(&v, base + pos, sizeof(T));  // GGUF is little-endian, as are our hosts
      pos += sizeof(T);
      return v;
    }
    std::string read_string(const std::string& where) {
      const std::uint64_t start = pos;
      const auto len = read<std::uint64_t>(where + " (string length)");
      if (len > left())
        fail(path, where,
             "string length " + std::to_string(len) + " at offset " + std::to_string(start) +
                 " runs past the end of the file (" + std::to_string(left()) + " bytes left)");
      std::string s(reinterpret_cast<const char*>(base + pos), static_cast<std::size_t>(len));
      pos += len;
      return s;
    }
  };

  static std::uint64_t scalar_size(GgufType t) noexcept {
    switch (t) {
      case GgufType::UINT8:
      case GgufType::INT8:
      case GgufType::BOOL: return 1;
      case GgufType::UINT16:
      case GgufType::INT16: return 2;
      case GgufType::UINT32:
      case GgufType::INT32:
      case GgufType::FLOAT32: return 4;
      case GgufType::UINT64:
      case GgufType::INT64:
      case GgufType::FLOAT64: return 8;
      case GgufType::STRING: return 8;  // minimum: the length prefix
      case GgufType::ARRAY: return 12;  // minimum: element type + count
    }
    return 0;
  }

  GgufValue read_value(Cursor& c, GgufType type, const std::string& where, int depth) {
    GgufValue out;
    out.type = type;
    switch (type) {
      case GgufType::UINT8: out.v = std::uint64_t{c.read<std::uint8_t>(where)}; break;
      case GgufType::UINT16: out.v = std::uint64_t{c.read<std::uint16_t>(where)}; break;
      case GgufType::UINT32: out.v = std::uint64_t{c.read<std::uint32_t>(where)}; break;
      case GgufType::UINT64: out.v = std::uint64_t{c.read<std::uint64_t>(where)}; break;
      case GgufType::INT8: out.v = std::int64_t{c.read<std::int8_t>(where)}; break;
      case GgufType::INT16: out.v = std::int64_t{c.read<std::int16_t>(where)}; break;
      case GgufType::INT32: out.v = std::int64_t{c.read<std::int32_t>(where)}; break;
      case GgufType::INT64: out.v = std::int64_t{c.read<std::int64_t>(where)}; break;
      case GgufType::FLOAT32: out.v = double{c.read<float>(where)}; break;
      case GgufType::FLOAT64: out.v = double{c.read<double>(where)}; break;
      case GgufType::BOOL: {
        const std::uint64_t at = c.pos;
        const auto b = c.read<std::uint8_t>(where);
        if (b > 1)
          fail(path(), where,
               "BOOL value " + std::to_string(b) + " at offset " + std::to_string(at) + " is neither 0 nor 1");
        out.v = b == 1;
        break;
      }
      case GgufType::STRING: out.v = c.read_string(where); break;
      case GgufType::ARRAY: {
        if (depth >= kMaxArrayDepth) fail(path(), where, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
        const auto et_raw = c.read<std::uint32_t>(where + " (array element type)");
        if (et_raw > static_cast<std::uint32_t>(GgufType::FLOAT64))
          fail(path(), where, "unknown array element type " + std::to_string(et_raw));
        out.elem_type = static_cast<GgufType>(et_raw);
        const std::uint64_t count_at = c.pos;
        const auto n = c.read<std::uint64_t>(where + " (array length)");
        // Each element occupies at least scalar_size bytes, so this bounds the allocation.
        if (n > c.left() / scalar_size(out.elem_type))
          fail(path(), where,
               "array length " + std::to_string(n) + " at offset " + std::to_string(count_at) + " cannot fit in the " +
                   std::to_string(c.left()) + " bytes left");
        std::vector<GgufValue> items;
        items.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t i = 0; i < n; ++i)
          items.push_back(read_value(c, out.elem_type, where + "[" + std::to_string(i) + "]", depth + 1));
        out.v = std::move(items);
        break;
      }
      default: fail(path(), where, "unknown value type " + std::to_string(static_cast<std::uint32_t>(type)));
    }
    return out;
  }

  void parse() {
    const std::string& p = path();
    Cursor c{file_.data(), file_.size(), 0, p};
    c.need(4, "header.magic");
    if (std::memcmp(file_.data(), "GGUF", 4) != 0) fail(p, "header.magic", "not a GGUF file (magic is not \"GGUF\")");
    c.pos = 4;
    version_ = c.read<std::uint32_t>("header.version");
    if (version_ == 1) fail(p, "header.version", "GGUF v1 (32-bit counts) is not supported; only v2 and v3");
    if (version_ != 2 && version_ != 3) {
      // A byte-swapped 2 or 3 means a big-endian file.
      if (version_ == 0x02000000u || version_ == 0x03000000u)
        fail(p, "header.version", "big-endian GGUF files are not supported");
      fail(p, "header.version", "unsupported GGUF version " + std::to_string(version_));
    }
    const auto n_tensors = c.read<std::uint64_t>("header.tensor_count");
    const auto n_kv = c.read<std::uint64_t>("header.kv_count");
    // Minimum encoded sizes: a kv is key length (8) + type (4) + 1 value byte; a tensor info
    // is name length (8) + n_dims (4) + type (4) + offset (8).
    if (n_kv > c.left() / 13) fail(p, "header.kv_count", "count " + std::to_string(n_kv) + " cannot fit in the file");
    if (n_tensors > c.left() / 24)
      fail(p, "header.tensor_count", "count " + std::to_string(n_tensors) + " cannot fit in the file");

    kv_.reserve(static_cast<std::size_t>(n_kv));
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      const std::string slot = "kv[" + std::to_string(i) + "]";
      std::string key = c.read_string(slot + ".key");
      if (key.empty()) fail(p, slot + ".key", "empty metadata key");
      const auto t_raw = c.read<std::uint32_t>(key + " (value type)");
      if (t_raw > static_cast<std::uint32_t>(GgufType::FLOAT64))
        fail(p, key, "unknown value type " + std::to_string(t_raw));
      GgufValue v = read_value(c, static_cast<GgufType>(t_raw), key, 0);
      if (!kv_index_.emplace(key, kv_.size()).second) fail(p, key, "duplicate metadata key");
      kv_.emplace_back(std::move(key), std::move(v));
    }

    alignment_ = kDefaultAlignment;
    if (const GgufValue* a = find("general.alignment")) {
      if (a->type != GgufType::UINT32) type_error("general.alignment", *a, "UINT32");
      const auto al = std::get<std::uint64_t>(a->v);
      if (al == 0 || (al & (al - 1)) != 0)
        fail(p, "general.alignment", "alignment " + std::to_string(al) + " is not a power of two");
      alignment_ = static_cast<std::uint32_t>(al);
    }

    tensors_.reserve(static_cast<std::size_t>(n_tensors));
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t;
      t.name = c.read_string("tensor[" + std::to_string(i) + "].name");
      const std::string w = "tensor '" + t.name + "'";
      if (t.name.empty()) fail(p, "tensor[" + std::to_string(i) + "].name", "empty tensor name");
      const auto n_dims = c.read<std::uint32_t>(w + ".n_dims");
      if (n_dims == 0 || n_dims > kMaxDims)
        fail(p, w + ".n_dims", "n_dims " + std::to_string(n_dims) + " is not in 1.." + std::to_string(kMaxDims));
      t.dims.resize(n_dims);
      t.n_elements = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const std::string wd = w + ".ne[" + std::to_string(d) + "]";
        t.dims[d] = c.read<std::uint64_t>(wd);
        // ggml stores ne as int64_t; anything above INT64_MAX (or a product above it) is corrupt.
        if (t.dims[d] > static_cast<std::uint64_t>(INT64_MAX) ||
            (t.dims[d] != 0 && t.n_elements > static_cast<std::uint64_t>(INT64_MAX) / t.dims[d]))
          fail(p, wd, "dimension " + std::to_string(t.dims[d]) + " overflows the element count");
        t.n_elements *= t.dims[d];
      }
      const auto type_raw = c.read<std::uint32_t>(w + ".type");
      const GgmlTypeTraits* tr = ggml_type_traits(type_raw);
      if (!tr) fail(p, w + ".type", "unknown ggml type " + std::to_string(type_raw));
      t.type = static_cast<GgmlType>(type_raw);
      if (t.dims[0] % tr->block_size != 0)
        fail(p, w + ".ne[0]",
             "row length " + std::to_string(t.dims[0]) + " is not a multiple of the " + tr->name + " block size " +
                 std::to_string(tr->block_size));
      const std::uint64_t n_blocks = t.n_elements / tr->block_size;
      if (n_blocks > UINT64_MAX / tr->type_size) fail(p, w, "byte size overflows 64 bits");
      t.n_bytes = n_blocks * tr->type_size;
      t.offset = c.read<std::uint64_t>(w + ".offset");
      if (t.offset % alignment_ != 0)
        fail(
            p, w + ".offset",
            "offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment_));
      if (!tensor_index_.emplace(t.name, tensors_.size()).second) fail(p, w, "duplicate tensor name");
      tensors_.push_back(std::move(t));
    }

    // The data section starts at the next alignment boundary after the tensor infos.
    data_offset_ = (c.pos + alignment_ - 1) / alignment_ * alignment_;
    if (!tensors_.empty() && data_offset_ > file_.size())
      fail(p, "data section",
           "starts at offset " + std::to_string(data_offset_) + ", past the end of the file (" +
               std::to_string(file_.size()) + " bytes)");
    const std::uint64_t data_size = tensors_.empty() ? 0 : file_.size() - data_offset_;
    for (auto& t : tensors_) {
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        fail(p, "tensor '" + t.name + "'.offset",
             "data [" + std::to_string(t.offset) + ", +" + std::to_string(t.n_bytes) +
                 ") lies outside the data section (" + std::to_string(data_size) + " bytes)");
      t.file_offset = data_offset_ + t.offset;
    }
    // Tensors must not share bytes: a writer bug that would otherwise silently alias weights.
    std::vector<const GgufTensorInfo*> by_offset;
    for (const auto& t : tensors_) by_offset.push_back(&t);
    std::stable_sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
      const auto* prev = by_offset[i - 1];
      if (prev->n_bytes > 0 && by_offset[i]->offset < prev->offset + prev->n_bytes)
        fail(p, "tensor '" + by_offset[i]->name + "'.offset", "data overlaps tensor '" + prev->name + "'");
    }
  }

  [[noreturn]] void type_error(std::string_view key, const GgufValue& v, const char* want) const {
    std::string got = gguf_type_name(v.type);
    if (v.type == GgufType::ARRAY) got += std::string(" of ") + gguf_type_name(v.elem_type);
    fail(path(), std::string(key), std::string("expected ") + want + ", found " + got);
  }
  std::uint64_t as_uint(const GgufValue& v, std::string_view key) const {
    if (v.is_unsigned()) return std::get<std::uint64_t>(v.v);
    if (v.is_signed() && std::get<std::int64_t>(v.v) >= 0)
      return static_cast<std::uint64_t>(std::get<std::int64_t>(v.v));
    if (v.is_signed())
      fail(path(), std::string(key),
           "expected a non-negative integer, found " + std::to_string(std::get<std::int64_t>(v.v)));
    type_error(key, v, "an integer");
  }
  std::int64_t as_int(const GgufValue& v, std::string_view key) const {
    if (v.is_signed()) return std::get<std::int64_t>(v.v);
    if (v.is_unsigned() && std::get<std::uint64_t>(v.v) <= static_cast<std::uint64_t>(INT64_MAX))
      return static_cast<std::int64_t>(std::get<std::uint64_t>(v.v));
    if (v.is_unsigned()) fail(path(), std::string(key), "integer does not fit in int64");
    type_error(key, v, "an integer");
  }
  double as_float(const GgufValue& v, std::string_view key) const {
    if (v.is_float()) return std::get<double>(v.v);
    if (v.is_unsigned()) return static_cast<double>(std::get<std::uint64_t>(v.v));
    if (v.is_signed()) return static_cast<double>(std::get<std::int64_t>(v.v));
    type_error(key, v, "a number");
  }

  MappedFile file_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = kDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, std::size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t> tensor_index_;
};

}  // namespace kvcanary::io
