// A parameter declared once drives the listing, the reading and the identity: defaults are the
// members' initializers, options are range-checked with an error naming the field, and the
// identities of the committed v2 rows come out byte for byte.

#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>

#include "kvcanary/core/error.hpp"
#include "kvcanary/kv/registry.hpp"

using namespace kvcanary;

namespace {
ModelConfig tiny_config() {
  ModelConfig c;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.rope_theta = 10000.0;
  return c;
}

std::string identity_of(std::string_view name, double budget, std::optional<kv::Mode> mode,
                        std::map<std::string, std::string> params = {},
                        std::optional<kv::Capacity> capacity = std::nullopt) {
  const kv::PolicyOptions o(budget, mode, std::move(params), "t.toml: compressors[0]", capacity);
  return kv::with_policy(name, o, tiny_config(), [](const auto& p) { return p.identity(); });
}

std::string error_of(std::string_view name, std::map<std::string, std::string> params) {
  try {
    identity_of(name, 0.5, std::nullopt, std::move(params));
  } catch (const Error& e) { return e.what(); }
  return "";
}
}  // namespace

TEST_CASE("parameter table: the listed defaults are the members' initializers, in table order") {
  const auto docs = kv::parameters_of<kv::SnapKv>();
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].name == "window");
  CHECK(docs[0].default_value == std::to_string(kv::SnapKv{}.window));
  CHECK(docs[1].name == "kernel");
  CHECK(docs[1].default_value == "7");
  const auto ea = kv::parameters_of<kv::ExpectedAttention>();
  REQUIRE(ea.size() == 5);
  CHECK(ea[2].name == "use_covariance");
  CHECK(ea[2].default_value == "1");  // a flag is spelled 0/1
  CHECK(ea[4].default_value == "0");  // epsilon 0.0, shortest round-trip decimal
  CHECK(kv::parameters_of<kv::H2o>()[0].default_value == "0.5");
  // KIVI lists its budget-derived widths around its table's members.
  const auto kivi = kv::parameters_of<kv::KiviQuant>();
  REQUIRE(kivi.size() == 5);
  CHECK(kivi[0].name == "bits");
  CHECK(kivi[1].name == "group");
  CHECK(kivi[1].default_value == "32");
  CHECK(kivi[2].default_value == "128");
  // Ada-KV and ChunkKV list their table's parameter next to their base scorer's.
  const auto ada = kv::parameters_of<kv::AdaKv>();
  REQUIRE(ada.size() == 4);
  CHECK(ada[0].name == "scorer");
  CHECK(ada[1].name == "alpha");
  CHECK(ada[1].default_value == "0.2");
  const auto chunk = kv::parameters_of<kv::ChunkKv>();
  REQUIRE(chunk.size() == 4);
  CHECK(chunk[0].name == "chunk_length");
  CHECK(chunk[0].default_value == "20");
}

TEST_CASE("parameter table: identities equal those in the committed v2 rows, byte for byte") {
  using kv::Capacity;
  using kv::Mode;
  CHECK(identity_of("snapkv", 0.25, std::nullopt) ==
        "snapkv(budget=0.25,mode=prompt,capacity=fixed,window=32,kernel=7)");
  CHECK(identity_of("snapkv_rolling", 0.5, Mode::Decode, {}, Capacity::Seen) ==
        "snapkv_rolling(budget=0.5,mode=decode,capacity=seen,window=32,kernel=7)");
  CHECK(identity_of("streamingllm", 0.5, std::nullopt) ==
        "streamingllm(budget=0.5,mode=decode,capacity=fixed,sinks=4)");
  CHECK(identity_of("h2o", 0.5, std::nullopt) == "h2o(budget=0.5,mode=decode,capacity=fixed,recent_ratio=0.5)");
  CHECK(identity_of("knorm", 0.5, std::nullopt) ==
        "knorm(budget=0.5,mode=prompt,capacity=fixed,window=0,skip_layers=0)");
  CHECK(identity_of("random", 0.5, std::nullopt) == "random(budget=0.5,mode=prompt,capacity=fixed,seed=0)");
  CHECK(identity_of("pyramidkv", 0.5, std::nullopt) ==
        "pyramidkv(budget=0.5,mode=prompt,capacity=fixed,window=32,kernel=7,beta=20)");
  CHECK(identity_of("expected_attention", 0.5, std::nullopt) ==
        "expected_attention(budget=0.5,mode=prompt,capacity=fixed,n_future_positions=512,n_sink=4,use_covariance=1,"
        "use_vnorm=1,epsilon=0)");
  CHECK(identity_of("kivi", 0.125, Mode::Decode) == "kivi(bits=2,group=32,residual=128,mode=decode)");
  CHECK(identity_of("kivi", 0.25, Mode::Decode) == "kivi(bits=4,group=32,residual=128,mode=decode)");
  CHECK(identity_of("adakv", 0.5, std::nullopt, {{"scorer", "snapkv"}}) ==
        "adakv(budget=0.5,mode=prompt,capacity=fixed,scorer=snapkv,alpha=0.2,window=32,kernel=7)");
  CHECK(identity_of("chunkkv", 0.5, std::nullopt) ==
        "chunkkv(budget=0.5,mode=prompt,capacity=fixed,chunk_length=20,scorer=keydiff)");
  CHECK(identity_of("think", 0.75, std::nullopt) == "think(budget=0.75,mode=prompt,key_channel_ratio=0.5,window=32)");
  CHECK(identity_of("keydiff", 0.5, std::nullopt) == "keydiff(budget=0.5,mode=prompt,capacity=fixed)");
  CHECK(identity_of("observed_attention", 0.5, std::nullopt) ==
        "observed_attention(budget=0.5,mode=prompt,capacity=fixed)");
  CHECK(identity_of("streamingllm+q4_0", 0.5, Mode::Decode) ==
        "streamingllm(budget=0.5,mode=decode,capacity=fixed,sinks=4)+q4_0(k=q4_0,v=q4_0,mode=decode)");
  // Values set through options are what the identity spells.
  CHECK(identity_of("expected_attention", 0.5, std::nullopt, {{"use_vnorm", "0"}, {"epsilon", "0.01"}}) ==
        "expected_attention(budget=0.5,mode=prompt,capacity=fixed,n_future_positions=512,n_sink=4,use_covariance=1,"
        "use_vnorm=0,epsilon=0.01)");
  CHECK(identity_of("kivi", 0.25, std::nullopt, {{"group", "64"}, {"residual", "64"}}) ==
        "kivi(bits=4,group=64,residual=64,mode=prompt)");
}

TEST_CASE("parameter table: a value out of its range fails naming the file and the field") {
  CHECK(error_of("snapkv", {{"window", "0"}}).find("t.toml: compressors[0]: window: must be at least 1") !=
        std::string::npos);
  CHECK(error_of("h2o", {{"recent_ratio", "1.5"}}).find("recent_ratio: must be in [0, 1]") != std::string::npos);
  CHECK(error_of("h2o", {{"recent_ratio", "nan"}}).find("recent_ratio: must be in [0, 1]") != std::string::npos);
  CHECK(error_of("pyramidkv", {{"beta", "0.5"}}).find("beta: must be at least 1") != std::string::npos);
  CHECK(error_of("expected_attention", {{"use_covariance", "2"}}).find("use_covariance: must be 0 or 1") !=
        std::string::npos);
  CHECK(error_of("expected_attention", {{"epsilon", "-1"}}).find("epsilon: must be at least 0") != std::string::npos);
  CHECK(error_of("streamingllm", {{"sinks", "four"}}).find("sinks: 'four' is not an integer") != std::string::npos);
  CHECK(error_of("adakv", {{"alpha", "1.5"}}).find("alpha: must be in [0, 1]") != std::string::npos);
  CHECK(error_of("chunkkv", {{"chunk_length", "0"}}).find("chunk_length: must be at least 1") != std::string::npos);
  // A rule beyond the range, named in the row.
  CHECK(error_of("pyramidkv", {{"kernel", "8"}}).find("kernel: must be odd") != std::string::npos);
  CHECK(error_of("snapkv", {{"kernel", "4"}}).find("kernel: must be odd") != std::string::npos);
  // Rules beyond a value's own range stay in create, next to their reason.
  CHECK(error_of("kivi", {{"group", "48"}}).find("group: must be 32, 64 or 128") != std::string::npos);
  CHECK(error_of("knorm", {{"windw", "3"}}).find("windw: is not a parameter of compressor 'knorm'") !=
        std::string::npos);
}
