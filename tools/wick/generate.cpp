// `wick generate`: text generation from a Hugging Face model folder (optionally with a PEFT LoRA
// adapter), streamed to stdout as it is produced, or as JSON lines for scripts.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.h"
#include "token_args.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct GenerateOptions {
  std::string model, tokenizer, prompt, tokens, system, use, device = "cpu";
  std::vector<std::string> adapters;  // DIR or NAME=DIR
  bool chat = false, json = false, no_pipeline = false, ignore_eos = false, skip_special = false, profile = false;
  std::optional<int64_t> max_tokens, top_k;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<uint64_t> seed;
  std::vector<std::string> stops;
};

/// --stop strings with \n, \t and \\ unescaped (a shell passes them literally).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'n' || s[i + 1] == 't' || s[i + 1] == '\\')) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1] == 't' ? '\t' : '\\';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// --prompt as one user message (after the --system one) rendered with the model's chat
/// template and the assistant turn opened, as apply_chat_template(add_generation_prompt=True).
std::string chat_text(const GenerateOptions& o) {
  namespace fs = std::filesystem;
  std::string dir = o.model;
  if (!o.tokenizer.empty()) dir = fs::is_directory(o.tokenizer) ? o.tokenizer : fs::path(o.tokenizer).parent_path().string();
  ChatTemplateConfig cfg = load_chat_template(dir.empty() ? "." : dir);
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  messages.push_back({"user", o.prompt});
  ChatTemplateArgs args;
  args.add_generation_prompt = true;
  args.bos_token = cfg.bos_token;
  args.eos_token = cfg.eos_token;
  return apply_chat_template(cfg.tmpl, messages, args);
}

SamplingParams sampling_from(const GenerateOptions& o, const GenerationConfig& g) {
  SamplingParams s = g.sampling;
  if (o.temperature) {
    s.temperature = *o.temperature;
    s.do_sample = *o.temperature > 0;
  }
  if (o.top_k) s.top_k = *o.top_k;
  if (o.top_p) s.top_p = *o.top_p;
  if (o.min_p) s.min_p = *o.min_p;
  if (o.repetition_penalty) s.repetition_penalty = *o.repetition_penalty;
  if (o.seed) s.seed = *o.seed;
  if (s.greedy() && (o.top_k || o.top_p || o.min_p || o.seed))
    std::fprintf(stderr, "wick: note: greedy decoding (temperature 0 or the model's generation_config.json): "
                         "--top-k/--top-p/--min-p/--seed have no effect; pass --temperature to sample\n");
  return s;
}

std::string dump(const nlohmann::ordered_json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

/// The model with the chosen adapter active. Every --adapter is loaded into one registry (so a
/// broken one fails now, whichever is used) over a single copy of the base weights.
std::shared_ptr<CausalLM> load_model(const GenerateOptions& o, std::unique_ptr<AdapterRegistry>& registry) {
  if (o.device != "cpu" && o.device != "cuda") throw Error("--device " + o.device + ": expected cpu or cuda");
  const Device device = o.device == "cuda" ? Device::cuda(0) : Device::cpu();
  std::shared_ptr<CausalLM> model = CausalLM::load(o.model, ModelConfig::load(o.model).compute_dtype(device));
  if (o.adapters.empty()) {
    if (!o.use.empty()) throw Error("--use " + o.use + ": no --adapter was given");
    return model;
  }
  registry = std::make_unique<AdapterRegistry>(model);
  std::vector<std::string> names;
  for (const std::string& spec : o.adapters) {
    // A folder that exists is taken as a path even if its name holds '='.
    std::string name = "default", dir = spec;
    size_t eq = spec.find('=');
    if (!std::filesystem::is_directory(spec) && eq != std::string::npos) {
      name = spec.substr(0, eq);
      dir = spec.substr(eq + 1);
      if (name.empty()) throw Error("--adapter " + spec + ": empty name before '='");
    }
    if (!std::filesystem::is_directory(dir)) throw Error("--adapter " + spec + ": " + dir + " is not a folder");
    for (const auto& n : names)
      if (n == name)
        throw Error("--adapter: the name \"" + name + "\" is given twice (use NAME=DIR to name each adapter)");
    registry->load(name, dir);
    names.push_back(name);
  }
  std::string use = o.use;
  if (use.empty()) {
    if (names.size() > 1) throw Error("several adapters are loaded: choose one with --use NAME");
    use = names[0];
  }
  if (use != "none") registry->activate(use);
  return model;
}

/// The model on the device --device names (the active adapter's weights move with it).
void place(CausalLM& model, const std::string& device) {
  if (device == "cpu") return;
  if (device != "cuda") throw Error("--device " + device + ": expected cpu or cuda");
  if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device is available (or this build has no CUDA backend)");
  model.to(Device::cuda(0));
}

int run_generate(const GenerateOptions& o) {
  std::unique_ptr<AdapterRegistry> registry;
  std::shared_ptr<CausalLM> model = load_model(o, registry);
  place(*model, o.device);
  const ModelConfig& c = model->config();
  GenerationConfig gen = GenerationConfig::load(o.model);

  // A tokenizer is needed for text in and stop strings; with --tokens it is optional (the
  // streamed text is then empty and the ids are printed).
  std::optional<Tokenizer> tok;
  const bool text_prompt = o.tokens.empty();
  std::string tok_path = o.tokenizer.empty() ? o.model : o.tokenizer;
  if (!o.tokenizer.empty() || text_prompt || !o.stops.empty() ||
      std::filesystem::exists(std::filesystem::path(tok_path) / "tokenizer.json"))
    tok = Tokenizer::load(tok_path);

  std::vector<int32_t> prompt;
  if (!text_prompt) {
    if (o.chat) throw Error("--chat renders text: use it with --prompt, not --tokens");
    for (int64_t id : parse_token_list(o.tokens, c.vocab_size)) prompt.push_back(static_cast<int32_t>(id));
  } else {
    std::string text = o.chat ? chat_text(o) : o.prompt;
    // A rendered chat template already holds its special tokens (apply_chat_template encodes
    // without adding more).
    prompt = tok->encode(text, !o.chat);
    if (prompt.empty()) throw Error("--prompt: the prompt encodes to no tokens");
  }

  GenerationOptions g;
  g.max_new_tokens = o.max_tokens.value_or(gen.max_new_tokens.value_or(256));
  g.sampling = sampling_from(o, gen);
  if (!o.ignore_eos) g.eos_token_ids = default_eos_token_ids(c, gen, tok ? &*tok : nullptr);
  for (const std::string& stop : o.stops) g.stop_strings.push_back(unescape(stop));
  g.skip_special_tokens = o.skip_special;
  g.pipeline = !o.no_pipeline;

  GenerationStats stats;
  if (o.profile) set_profiling(true);
  GenerationResult r = generate(
      *model, tok ? &*tok : nullptr, prompt, g,
      [&](const TokenEvent& e) {
        if (o.json) {
          std::string line = dump({{"id", e.id}, {"text", std::string(e.text)}, {"logprob", e.logprob}}) + "\n";
          std::fwrite(line.data(), 1, line.size(), stdout);
        } else {
          std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        }
        std::fflush(stdout);
        return true;
      },
      &stats);
  if (o.profile) {
    set_profiling(false);
    std::fprintf(stderr, "wick: where the time went (every kernel timed to completion, host work included):\n");
    for (const ProfileEntry& e : profile_report(true))
      if (e.total_us >= 500)
        std::fprintf(stderr, "  %s: %lld calls, %.1f ms\n", e.name.c_str(), static_cast<long long>(e.calls), e.total_us / 1000);
  }

  if (o.json) {
    nlohmann::ordered_json last = {{"tokens", r.tokens},
                           {"text", r.text},
                           {"prefill_tok_s", stats.prefill_tok_s()},
                           {"decode_tok_s", stats.decode_tok_s()},
                           {"prompt_tokens", stats.prompt_tokens},
                           {"stop_reason", stop_reason_name(r.stop_reason)}};
    if (!r.stop_string.empty()) last["stop_string"] = r.stop_string;
    std::printf("%s\n", dump(last).c_str());
  } else {
    if (!tok) {  // no text to show: the ids
      for (size_t i = 0; i < r.tokens.size(); ++i) std::printf("%s%d", i ? "," : "", r.tokens[i]);
    }
    std::printf("\n");
    std::fprintf(stderr, "wick: prefill %lld tokens at %.1f tok/s; decode %lld tokens at %.1f tok/s; stop: %s\n",
                 static_cast<long long>(stats.prompt_tokens), stats.prefill_tok_s(),
                 static_cast<long long>(stats.generated_tokens), stats.decode_tok_s(),
                 stop_reason_name(r.stop_reason));
  }
  return 0;
}

[[maybe_unused]] const Command generate_command{
    "generate", "Generate text with a decoder model (streamed; --json for one JSON line per token)",
    [](CLI::App& app) -> Action {
      auto o = std::make_shared<GenerateOptions>();
      app.footer(
          "Sampling follows transformers: repetition penalty, then temperature, top-k, top-p, min-p. Defaults come "
          "from the model's generation_config.json (greedy when there is none); temperature 0 is greedy. Generation "
          "stops on the EOS ids of generation_config.json, config.json and the tokenizer, on a --stop string (the "
          "text ends with it) or after --max-tokens.\n\nWith --json, each token is a line {\"id\":..,\"text\":..,"
          "\"logprob\":..} (logprob: log-softmax of the processed logits) and the last line is {\"tokens\":[...],"
          "\"text\":..,\"prefill_tok_s\":..,\"decode_tok_s\":..,\"prompt_tokens\":..,\"stop_reason\":..}. In text "
          "mode the text streams to stdout and the speeds go to stderr.");
      app.add_option("--model", o->model, "Hugging Face model folder (config.json, safetensors, tokenizer.json)")
          ->required()
          ->check(CLI::ExistingDirectory);
      app.add_option("--adapter", o->adapters,
                     "PEFT LoRA adapter folder to apply; repeatable as NAME=DIR to load several (with --use)")
          ->expected(1)
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
      app.add_option("--device", o->device, "cpu or cuda (the model runs on the first GPU)")->capture_default_str();
      app.add_flag("--profile", o->profile, "Print the time each kind of kernel took (every kernel timed to completion)");
      app.add_option("--use", o->use, "Which NAME of the --adapter NAME=DIR to apply (\"none\": the base model)");
      app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or its folder (default: the model folder)")
          ->check(CLI::ExistingPath);
      auto* prompt = app.add_option("--prompt", o->prompt, "Prompt text (encoded with the tokenizer's special tokens)");
      auto* tokens = app.add_option("--tokens", o->tokens, "Prompt as comma-separated token ids, e.g. 1,2,3");
      prompt->excludes(tokens);
      tokens->excludes(prompt);
      app.add_flag("--chat", o->chat,
                   "Render --prompt as one user message with the model's chat template (chat_template.jinja or "
                   "tokenizer_config.json), assistant turn opened");
      app.add_option("--system", o->system, "System message for --chat (default: none; the template may add its own)");
      app.add_option("--max-tokens", o->max_tokens, "Most tokens to generate (default: generation_config.json's "
                                                    "max_new_tokens, else 256)")
          ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
      app.add_option("--temperature", o->temperature, "Sampling temperature; 0 = greedy")
          ->check(CLI::Range(0.0, 1e6));
      app.add_option("--top-k", o->top_k, "Keep the k most likely tokens (ties at the k-th included); 0 = off")
          ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
      app.add_option("--top-p", o->top_p, "Nucleus sampling: smallest set with probability >= p; 1 = off")
          ->check(CLI::Range(0.0, 1.0));
      app.add_option("--min-p", o->min_p, "Keep tokens with p >= min_p * p_max; 0 = off")->check(CLI::Range(0.0, 1.0));
      app.add_option("--repetition-penalty", o->repetition_penalty,
                     "Penalise ids already in the sequence (prompt included): l<0 ? l*r : l/r; 1 = off")
          ->check(CLI::Range(1e-6, 1e6));
      app.add_option("--seed", o->seed, "Seed of the sampling draws (default 0)");
      app.add_option("--stop", o->stops, "Stop when the text contains this string (repeatable; \\n, \\t, \\\\ escapes)");
      app.add_flag("--skip-special-tokens", o->skip_special, "Leave special tokens out of the text");
      app.add_flag("--ignore-eos", o->ignore_eos, "Do not stop on EOS ids");
      app.add_flag("--no-pipeline", o->no_pipeline,
                   "Evaluate each step before preparing the next (same tokens; for comparison)");
      app.add_flag("--json", o->json, "JSON lines: one per token, then a summary");
      return [o, prompt, tokens] {
        if (prompt->count() == 0 && tokens->count() == 0) throw Error("one of --prompt or --tokens is required");
        if (!o->system.empty() && !o->chat) throw Error("--system needs --chat");
        return run_generate(*o);
      };
    }};

}  // namespace
}  // namespace wick::cli
