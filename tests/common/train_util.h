#pragma once
// Shared by the trainer tests (CPU and CUDA): the tiny Qwen2 fixture with a byte tokenizer,
// synthetic datasets, default options and the metrics a run writes.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/byte_tokenizer.h"
#include "common/file_util.h"
#include "common/tensor_util.h"
#include "wick/trainer.h"

namespace wt {

inline const std::string kFixtures = WICK_FIXTURES_DIR;
inline const std::string kTrainFixture = kFixtures + "/lora/peft-train";

/// A copy of the tiny Qwen2 fixture with a byte-level tokenizer.json (its vocabulary is 256).
inline std::string model_folder(const wt::TempDir& tmp) {
  std::string dir = tmp.file("model");
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(kFixtures + "/models/qwen2-tied/" + f, dir + "/" + f);
  std::ofstream(dir + "/tokenizer.json") << byte_tokenizer_json();
  return dir;
}

/// `n` input_ids records of lengths 4..15 over ids 3..255.
inline std::string data_file(const wt::TempDir& tmp, int n, uint64_t seed = 3) {
  std::string path = tmp.file("data-" + std::to_string(seed) + ".jsonl");
  std::ofstream out(path);
  uint64_t s = seed;
  for (int i = 0; i < n; ++i) {
    int len = 4 + static_cast<int>(splitmix64(s) % 12);
    nlohmann::json ids = nlohmann::json::array();
    for (int j = 0; j < len; ++j) ids.push_back(3 + static_cast<int>(splitmix64(s) % 253));
    out << nlohmann::json{{"input_ids", ids}}.dump() << "\n";
  }
  return path;
}

inline wick::TrainOptions base_options(const std::string& model, const std::string& data, const std::string& out) {
  wick::TrainOptions o;
  o.model_dir = model;
  o.data_path = data;
  o.output_dir = out;
  o.rank = 4;
  o.alpha = 8;
  o.lr = 1e-3;
  o.steps = 8;
  o.batch_size = 2;
  return o;
}

inline std::vector<nlohmann::json> metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline std::vector<double> losses(const std::string& out_dir) {
  std::vector<double> l;
  for (const auto& j : metrics(out_dir + "/metrics.jsonl")) l.push_back(j.at("loss").get<double>());
  return l;
}

}  // namespace wt
