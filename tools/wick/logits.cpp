// `wick logits`: runs a model (optionally with a PEFT LoRA adapter) over a token sequence and
// writes the logits [T, vocab] (f32) to a safetensors file, for comparison with other
// implementations.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "token_args.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct LogitsOptions {
  std::string model, adapter, tokens, output;
  bool json = false;
};

int run_logits(const LogitsOptions& o) {
  std::shared_ptr<CausalLM> model = CausalLM::load(o.model);
  std::vector<std::string> adapted;
  if (!o.adapter.empty()) adapted = load_peft_adapter(*model, o.adapter);
  std::vector<int64_t> ids = parse_token_list(o.tokens, model->config().vocab_size);
  const int64_t T = static_cast<int64_t>(ids.size());
  Tensor logits = model->forward(Tensor::from_vector(ids, {1, T}));
  logits = reshape(logits, {T, model->config().vocab_size});
  save_safetensors(o.output, {{"logits", logits}}, {{"format", "pt"}, {"tokens", o.tokens}});
  std::vector<int64_t> top = argmax(logits, -1).to_vector<int64_t>();
  if (o.json) {
    nlohmann::json j = {{"output", o.output}, {"tokens", T}, {"vocab", model->config().vocab_size},
                        {"adapted_modules", adapted.size()}, {"argmax", top}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("wrote %s: logits [%lld, %lld] f32", o.output.c_str(), static_cast<long long>(T),
                static_cast<long long>(model->config().vocab_size));
    if (!adapted.empty()) std::printf(" (LoRA adapter on %zu modules)", adapted.size());
    std::printf("; argmax of the last position: %lld\n", static_cast<long long>(top.back()));
  }
  return 0;
}

[[maybe_unused]] const Command logits_command{
    "logits", "Write a model's logits for a token sequence to a safetensors file",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<LogitsOptions>();
      app.add_option("--model", o->model, "Hugging Face model folder (config.json + safetensors)")
          ->required()->check(CLI::ExistingDirectory);
      app.add_option("--adapter", o->adapter, "PEFT LoRA adapter folder to apply")->check(CLI::ExistingDirectory);
      app.add_option("--tokens", o->tokens, "Comma-separated token ids, e.g. 1,2,3")->required();
      app.add_option("--output", o->output, "Safetensors file to write (tensor \"logits\", [T, vocab], f32)")
          ->required();
      app.add_flag("--json", o->json, "Print a JSON summary");
      return [o] { return run_logits(*o); };
    }};

}  // namespace
}  // namespace wick::cli
