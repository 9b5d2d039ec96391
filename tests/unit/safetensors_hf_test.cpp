// Files written by Hugging Face's own code (tests/tools/make_safetensors_fixture.py, run where
// safetensors and transformers are installed): every dtype from safetensors.torch.save_file, and a
// sharded model folder from transformers' save_pretrained.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::SafetensorsFile;
using wick::Tensor;

const std::string kDir = std::string(WICK_FIXTURES_DIR) + "/safetensors";

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_raw(path)); }

/// Expected float from the fixture JSON (non-finite values are written as strings).
double expected_float(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  std::string s = v.get<std::string>();
  if (s == "inf") return INFINITY;
  if (s == "-inf") return -INFINITY;
  return NAN;
}

bool same_value(double got, double want) {
  if (std::isnan(want)) return std::isnan(got);
  return got == want && std::signbit(got) == std::signbit(want);
}

TEST(SafetensorsHF, EveryDtypeFromSaveFile) {
  const std::string path = kDir + "/hf_dtypes.safetensors";
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is missing: run python3 tests/tools/make_safetensors_fixture.py";
  nlohmann::json want = read_json(kDir + "/hf_dtypes.json");
  SafetensorsFile f(path);
  using StringMap = std::map<std::string, std::string>;
  EXPECT_EQ(f.metadata(), want["metadata"].get<StringMap>());
  ASSERT_EQ(f.names().size(), want["tensors"].size());
  size_t base = quiesce();
  for (const auto& [name, e] : want["tensors"].items()) {
    SCOPED_TRACE(name);
    const wick::SafetensorsTensorInfo& info = f.info(name);
    EXPECT_EQ(info.dtype, e["dtype"].get<std::string>());
    EXPECT_EQ(info.shape, e["shape"].get<wick::Shape>());
    if (!e.contains("values")) {
      EXPECT_EQ(info.wick_dtype, std::nullopt);
      EXPECT_NE(error_of([&, key = name] { f.load(key); }).find("cannot be loaded"), std::string::npos);
      continue;
    }
    Tensor t = f.load(name);
    ASSERT_EQ(t.shape(), info.shape);
    const auto& vals = e["values"];
    ASSERT_EQ(static_cast<size_t>(t.numel()), vals.size());
    if (t.dtype() == DType::i64) {
      EXPECT_EQ(t.to_vector<int64_t>(), vals.get<std::vector<int64_t>>());
    } else if (t.dtype() == DType::i32) {
      EXPECT_EQ(t.to_vector<int32_t>(), vals.get<std::vector<int32_t>>());
    } else if (t.dtype() == DType::boolean) {
      EXPECT_EQ(t.to_vector<bool>(), vals.get<std::vector<bool>>());
    } else {
      std::vector<double> got = t.to_vector<double>();
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(same_value(got[i], expected_float(vals[i])))
            << "element " << i << ": " << got[i] << " vs " << vals[i];
      // Widened to f32 on load: the same values (they are all exact in f32 except F64's).
      if (t.dtype() != DType::f64) {
        std::vector<float> as32 = f.load(name, DType::f32).to_vector<float>();
        for (size_t i = 0; i < as32.size(); ++i)
          EXPECT_TRUE(same_value(as32[i], expected_float(vals[i]))) << "element " << i;
      }
    }
    if (e.contains("bits")) {
      std::vector<uint16_t> bits;
      if (t.dtype() == DType::f16)
        for (auto h : t.to_vector<wick::float16>()) bits.push_back(h.bits);
      else
        for (auto h : t.to_vector<wick::bfloat16>()) bits.push_back(h.bits);
      EXPECT_EQ(bits, e["bits"].get<std::vector<uint16_t>>());
    }
  }
  // safetensors pads the header to 8 bytes and orders data by alignment, so every tensor of a
  // file it wrote loads as a view: no allocation.
  std::vector<Tensor> keep;
  for (const auto& info : f.tensors())
    if (info.wick_dtype) keep.push_back(f.load(info.name));
  EXPECT_EQ(active(), base);
}

TEST(SafetensorsHF, ShardedFolderFromSavePretrained) {
  const std::string dir = kDir + "/hf_sharded";
  if (!std::filesystem::exists(dir))
    GTEST_SKIP() << dir << " is missing: run python3 tests/tools/make_safetensors_fixture.py";
  nlohmann::json want = read_json(kDir + "/hf_sharded.json");
  auto w = wick::load_model_weights(dir);
  ASSERT_EQ(w.size(), want["tensors"].size());
  for (const auto& [name, e] : want["tensors"].items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(w.count(name));
    const Tensor& t = w.at(name);
    EXPECT_EQ(t.shape(), e["shape"].get<wick::Shape>());
    EXPECT_EQ(wick::dtype_name(t.dtype()), std::string(e["dtype"] == "BF16" ? "bf16" : "f32"));
    std::vector<double> v = t.to_vector<double>();
    double sum = 0;
    for (double x : v) sum += x;
    double want_sum = e["sum"].get<double>();
    EXPECT_NEAR(sum, want_sum, 1e-9 * (1 + std::abs(want_sum)));
    const auto& first = e["first"];
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(v[i], expected_float(first[i]));
  }
  auto f32 = wick::load_model_weights(dir, DType::f32);
  for (const auto& [name, t] : f32) EXPECT_EQ(t.dtype(), DType::f32) << name;
}

}  // namespace
