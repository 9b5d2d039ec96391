// `wick adapter convert` (mlx-lm -> PEFT) and `wick adapter info` (what an adapter folder holds).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

namespace fs = std::filesystem;

/// "peft" or "mlx" from the files in `dir`; an error naming what is missing otherwise.
std::string detect_format(const std::string& dir) {
  bool peft = fs::is_regular_file(fs::path(dir) / "adapter_model.safetensors");
  bool mlx = fs::is_regular_file(fs::path(dir) / "adapters.safetensors");
  if (peft) return "peft";
  if (mlx) return "mlx";
  throw Error(dir + ": neither adapter_model.safetensors (PEFT) nor adapters.safetensors (mlx-lm) is there");
}

LoraAdapter read_any(const std::string& dir, const std::string& format) {
  return format == "mlx" ? import_mlx_adapter(dir) : read_peft_adapter(dir);
}

struct ConvertOptions {
  std::string from = "mlx", input, output;
};

int run_convert(const ConvertOptions& o) {
  LoraAdapter a = import_mlx_adapter(o.input);
  save_peft_adapter(a, o.output);
  std::fprintf(stderr, "wick: wrote a PEFT adapter to %s: %zu modules, r %lld, lora_alpha %g (scaling %g)\n",
               o.output.c_str(), a.modules.size(), static_cast<long long>(a.config.r), a.config.lora_alpha,
               a.config.scaling());
  return 0;
}

struct InfoOptions {
  std::string dir, format = "auto";
  bool json = false;
};

int run_info(const InfoOptions& o) {
  std::string format = o.format == "auto" ? detect_format(o.dir) : o.format;
  LoraAdapter a = read_any(o.dir, format);
  const PeftAdapterConfig& c = a.config;
  std::set<int64_t> layers;
  std::map<std::string, int64_t> per_suffix;  // module name after "layers.{i}." -> count
  for (const auto& [name, p] : a.modules) {
    std::string suffix = name;
    size_t pos = name.find("layers.");
    if (pos != std::string::npos) {
      size_t dot = name.find('.', pos + 7);
      bool digits = dot != std::string::npos && dot > pos + 7 && dot - pos - 7 < 10 &&
                    name.find_first_not_of("0123456789", pos + 7) == dot;
      if (digits) {
        layers.insert(std::stoll(name.substr(pos + 7, dot - pos - 7)));
        suffix = name.substr(dot + 1);
      }
    }
    ++per_suffix[suffix];
  }
  if (o.json) {
    nlohmann::ordered_json j = {{"format", format},
                                {"r", c.r},
                                {"lora_alpha", c.lora_alpha},
                                {"scaling", c.scaling()},
                                {"lora_dropout", c.lora_dropout},
                                {"use_rslora", c.use_rslora},
                                {"target_modules", c.target_modules},
                                {"layers_to_transform", c.layers_to_transform.empty() ? nlohmann::json(nullptr)
                                                                              : nlohmann::json(c.layers_to_transform)},
                                {"base_model_name_or_path", c.base_model_name_or_path},
                                {"modules", a.modules.size()},
                                {"parameters", a.parameter_count()},
                                {"module_names", nlohmann::json::array()}};
    for (const auto& [name, p] : a.modules) j["module_names"].push_back(name);
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::string targets, lays;
  for (const auto& t : c.target_modules) targets += (targets.empty() ? "" : ", ") + t;
  for (int64_t l : layers) lays += (lays.empty() ? "" : ",") + std::to_string(l);
  std::printf("format       %s (%s)\n", format == "mlx" ? "mlx-lm" : "PEFT", o.dir.c_str());
  std::printf("base model   %s\n", c.base_model_name_or_path.empty() ? "(not recorded)" : c.base_model_name_or_path.c_str());
  std::printf("rank         %lld\n", static_cast<long long>(c.r));
  std::printf("lora_alpha   %g (scaling %g%s)\n", c.lora_alpha, c.scaling(), c.use_rslora ? ", rsLoRA" : "");
  std::printf("dropout      %g\n", c.lora_dropout);
  std::printf("targets      %s\n", targets.c_str());
  std::printf("layers       %s\n", lays.empty() ? "-" : lays.c_str());
  std::printf("modules      %zu\n", a.modules.size());
  for (const auto& [suffix, n] : per_suffix) std::printf("  %-24s x%lld\n", suffix.c_str(), static_cast<long long>(n));
  std::printf("parameters   %lld (%.2f MiB in f32)\n", static_cast<long long>(a.parameter_count()),
              a.parameter_count() * 4.0 / 1048576.0);
  return 0;
}

[[maybe_unused]] const Command adapter_group =
    Command::group("adapter", "Inspect and convert LoRA adapters (PEFT, mlx-lm)");

[[maybe_unused]] const Command adapter_convert{
    "adapter convert", "Convert an mlx-lm LoRA adapter into a PEFT adapter folder",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<ConvertOptions>();
      app.footer(
          "Reads adapters.safetensors + adapter_config.json (mlx-lm: fine_tune_type lora, lora_parameters {rank, "
          "scale, dropout, keys}) and writes adapter_model.safetensors + adapter_config.json in PEFT's format: "
          "lora_a [in, r] becomes lora_A [r, in], lora_b [r, out] becomes lora_B [out, r], and lora_alpha = scale * r "
          "so that PEFT's alpha / r equals mlx's scale. The output folder is created if needed; other files in it "
          "are kept.");
      app.add_option("--from", o->from, "Source format")->check(CLI::IsMember({"mlx"}));
      app.add_option("--input", o->input, "mlx-lm adapter folder")->required()->check(CLI::ExistingDirectory);
      app.add_option("--output", o->output, "PEFT adapter folder to write")->required();
      return [o] { return run_convert(*o); };
    }};

[[maybe_unused]] const Command adapter_info{
    "adapter info", "Show a LoRA adapter folder's config, targets and parameter count",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<InfoOptions>();
      app.add_option("dir", o->dir, "Adapter folder (PEFT or mlx-lm)")->required()->check(CLI::ExistingDirectory);
      app.add_option("--format", o->format, "auto (from the files present), peft or mlx")
          ->check(CLI::IsMember({"auto", "peft", "mlx"}));
      app.add_flag("--json", o->json, "One JSON object instead of text");
      return [o] { return run_info(*o); };
    }};

}  // namespace
}  // namespace wick::cli
