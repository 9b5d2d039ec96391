// `wick merge`: fold a PEFT LoRA adapter into a model and write a complete model folder.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct MergeCliOptions {
  std::string model, adapter, output, dtype = "auto";
  bool force = false, json = false;
};

int run_merge(const MergeCliOptions& o) {
  MergeOptions m;
  m.force = o.force;
  if (o.dtype == "f32") m.dtype = DType::f32;
  if (o.dtype == "bf16") m.dtype = DType::bf16;
  if (o.dtype == "f16") m.dtype = DType::f16;
  auto t0 = std::chrono::steady_clock::now();
  MergeReport r = merge_adapter(o.model, o.adapter, o.output, m);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (o.json) {
    nlohmann::ordered_json j = {{"output", o.output},        {"merged_modules", r.merged_modules},
                                {"tensors", r.tensors},      {"bytes", r.bytes},
                                {"copied_files", r.copied_files}, {"seconds", s}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::string files;
  for (const auto& f : r.copied_files) files += (files.empty() ? "" : ", ") + f;
  std::printf("wrote %s: %lld tensors (%.1f MiB), %zu modules merged, copied %s (%.2f s)\n", o.output.c_str(),
              static_cast<long long>(r.tensors), r.bytes / 1048576.0, r.merged_modules.size(), files.c_str(), s);
  return 0;
}

[[maybe_unused]] const Command merge_command{
    "merge", "Merge a PEFT LoRA adapter into a model and write a complete model folder",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<MergeCliOptions>();
      app.footer(
          "Every adapted weight becomes W + scaling * B A (computed in f32, rounded once to the output dtype); every "
          "other tensor is copied unchanged. The output holds model.safetensors (the model's tensor names; no "
          "lm_head when the embeddings are tied), config.json (dtype fields updated when --dtype changes them) and "
          "the tokenizer and generation files present in the model folder. It is written as a temporary folder "
          "beside OUTPUT and renamed into place, so OUTPUT is never half written.");
      app.add_option("--model", o->model, "Hugging Face model folder (config.json + safetensors)")
          ->required()
          ->check(CLI::ExistingDirectory);
      app.add_option("--adapter", o->adapter, "PEFT LoRA adapter folder")->required()->check(CLI::ExistingDirectory);
      app.add_option("--output", o->output, "Folder to write (must not exist or be empty, unless --force)")->required();
      app.add_option("--dtype", o->dtype, "Dtype of the written weights: auto keeps each tensor's")
          ->check(CLI::IsMember({"auto", "f32", "bf16", "f16"}));
      app.add_flag("--force", o->force, "Replace a non-empty OUTPUT");
      app.add_flag("--json", o->json, "One JSON object instead of text");
      return [o] { return run_merge(*o); };
    }};

}  // namespace
}  // namespace wick::cli
