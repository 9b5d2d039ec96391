// Model folders: a single model.safetensors, a sharded set with model.safetensors.index.json, a
// path to one file; and every way an index can be wrong.
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

std::map<std::string, Tensor> weights(uint64_t seed) {
  return {{"model.embed_tokens.weight", to_tensor(random_host({8, 4}, DType::bf16, seed), DType::bf16)},
          {"model.norm.weight", to_tensor(random_host({4}, DType::f32, seed + 1), DType::f32)},
          {"model.layers.0.mlp.up_proj.weight", to_tensor(random_host({6, 4}, DType::f16, seed + 2), DType::f16)},
          {"position_ids", to_tensor(random_host({5}, DType::i64, seed + 3, 0, 10), DType::i64)}};
}

void expect_same(const std::map<std::string, Tensor>& got, const std::map<std::string, Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(got.count(name));
    EXPECT_EQ(got.at(name).dtype(), t.dtype());
    EXPECT_EQ(got.at(name).shape(), t.shape());
    EXPECT_EQ(bytes_of(got.at(name)), bytes_of(t));
  }
}

/// Writes `w` as two shards plus an index assigning each name to its shard.
void write_sharded(const TempDir& dir, const std::map<std::string, Tensor>& w) {
  std::map<std::string, Tensor> s1, s2;
  std::string map;
  int i = 0;
  for (const auto& [name, t] : w) {
    const char* shard = i++ % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    (i % 2 ? s1 : s2)[name] = t;
    map += std::string(map.empty() ? "" : ",\n") + "\"" + name + "\": \"" + shard + "\"";
  }
  wick::save_safetensors(dir.file("model-00001-of-00002.safetensors"), s1);
  wick::save_safetensors(dir.file("model-00002-of-00002.safetensors"), s2);
  write_raw(dir.file("model.safetensors.index.json"),
            "{\"metadata\": {\"total_size\": 1234},\n\"weight_map\": {" + map + "}}");
}

TEST(ModelWeights, SingleFileFolderAndPlainFile) {
  TempDir dir;
  auto w = weights(1);
  wick::save_safetensors(dir.file("model.safetensors"), w);
  expect_same(wick::load_model_weights(dir.path), w);
  expect_same(wick::load_model_weights(dir.path + "/"), w);
  expect_same(wick::load_model_weights(dir.file("model.safetensors")), w);

  auto as_f32 = wick::load_model_weights(dir.path, DType::f32);
  EXPECT_EQ(as_f32.at("model.embed_tokens.weight").dtype(), DType::f32);
  EXPECT_EQ(as_f32.at("model.layers.0.mlp.up_proj.weight").dtype(), DType::f32);
  EXPECT_EQ(as_f32.at("position_ids").dtype(), DType::i64);
  EXPECT_TRUE(all_close(to_host(as_f32.at("model.embed_tokens.weight")),
                        to_host(w.at("model.embed_tokens.weight")), Tol{0, 0}));
}

TEST(ModelWeights, ShardedFolder) {
  TempDir dir;
  auto w = weights(2);
  write_sharded(dir, w);
  expect_same(wick::load_model_weights(dir.path), w);
  // The index wins over a stray model.safetensors.
  wick::save_safetensors(dir.file("model.safetensors"), {{"other", wick::ones({1})}});
  expect_same(wick::load_model_weights(dir.path), w);
  auto bf = wick::load_model_weights(dir.path, DType::bf16);
  EXPECT_EQ(bf.at("model.norm.weight").dtype(), DType::bf16);
}

/// Writes an index with the given weight_map JSON; the two shards hold {a, b} and {c}.
std::string index_error(const std::string& index_text, bool duplicate_in_shard2 = false) {
  TempDir dir;
  wick::save_safetensors(dir.file("s1.safetensors"), {{"a", wick::ones({1})}, {"b", wick::ones({2})}});
  std::map<std::string, Tensor> s2 = {{"c", wick::ones({3})}};
  if (duplicate_in_shard2) s2["a"] = wick::ones({1});
  wick::save_safetensors(dir.file("s2.safetensors"), s2);
  write_raw(dir.file("model.safetensors.index.json"), index_text);
  std::string e = error_of([&] { wick::load_model_weights(dir.path); });
  // Report paths relative to the folder so expectations need not know it.
  for (size_t p; (p = e.find(dir.path + "/")) != std::string::npos;) e.erase(p, dir.path.size() + 1);
  return e;
}

TEST(ModelWeights, IndexErrorsNameTheFileAndTheProblem) {
  const std::string ok = R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}})";
  EXPECT_EQ(index_error(ok), "<no error>");
  EXPECT_EQ(index_error(R"({"weight_map": {"a": "s1.safetensors", "z": "s2.safetensors"}})"),
            "s2.safetensors: has no tensor \"z\", which model.safetensors.index.json places in it");
  EXPECT_EQ(index_error(R"({"weight_map": {"a": "s3.safetensors"}})").rfind(
                "model.safetensors.index.json: shard \"s3.safetensors\" does not exist", 0),
            0u);
  EXPECT_EQ(index_error(ok, true),
            "s2.safetensors: tensor \"a\" is also in shard \"s1.safetensors\"");
  for (const char* bad : {"../s1.safetensors", "/etc/passwd", "sub/s1.safetensors", "..", ".", "",
                          "s1.safetensors\\u0000x", "..\\\\s1.safetensors"}) {
    SCOPED_TRACE(bad);
    std::string e = index_error(std::string(R"({"weight_map": {"a": ")") + bad + "\"}}");
    EXPECT_EQ(e.rfind("model.safetensors.index.json: weight_map: \"a\": shard ", 0), 0u) << e;
    EXPECT_NE(e.find("is not a plain file name in the model folder"), std::string::npos) << e;
  }
  EXPECT_EQ(index_error(R"({"weight_map": {"a": "s1.safetensors", "a": "s2.safetensors"}})"),
            "model.safetensors.index.json: duplicate key \"weight_map\".\"a\"");
  EXPECT_EQ(index_error(R"({"weight_map": {"a": 1}})"),
            "model.safetensors.index.json: weight_map: \"a\": expected a file name, got an integer");
  EXPECT_EQ(index_error(R"({"weight_map": ["a"]})"),
            "model.safetensors.index.json: weight_map: expected an object, got an array");
  EXPECT_EQ(index_error(R"({"weight_map": {}})"), "model.safetensors.index.json: weight_map is empty");
  EXPECT_EQ(index_error(R"({"metadata": {}})"),
            "model.safetensors.index.json: missing field \"weight_map\"");
  EXPECT_EQ(index_error(R"({"metadata": {"total_size": 1e999}, "weight_map": {}})"),
            "model.safetensors.index.json: invalid JSON: number overflow parsing '1e999'");
  EXPECT_EQ(index_error("[]"), "model.safetensors.index.json: expected a JSON object, got an array");
  EXPECT_EQ(index_error("{\"weight_map\": ").rfind("model.safetensors.index.json: invalid JSON", 0), 0u);
}

TEST(ModelWeights, BadShardsAndFolders) {
  TempDir dir;
  std::string e = error_of([&] { wick::load_model_weights(dir.path); });
  EXPECT_EQ(e, dir.path + ": holds neither model.safetensors nor model.safetensors.index.json");
  e = error_of([&] { wick::load_model_weights(dir.file("nothing")); });
  EXPECT_EQ(e, dir.file("nothing") + ": no such model folder or safetensors file");

  // A corrupt shard is reported by its own path.
  write_raw(dir.file("s1.safetensors"), le64(1000) + "{}");
  write_raw(dir.file("model.safetensors.index.json"), R"({"weight_map": {"a": "s1.safetensors"}})");
  e = error_of([&] { wick::load_model_weights(dir.path); });
  EXPECT_EQ(e.rfind(dir.file("s1.safetensors") + ": header length 1000", 0), 0u) << e;

  // A shard that is a folder.
  std::filesystem::remove(dir.file("s1.safetensors"));
  std::filesystem::create_directory(dir.file("s1.safetensors"));
  e = error_of([&] { wick::load_model_weights(dir.path); });
  EXPECT_NE(e.find("shard \"s1.safetensors\" does not exist"), std::string::npos) << e;
}

}  // namespace
