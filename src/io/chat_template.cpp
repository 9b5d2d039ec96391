#include "wick/chat_template.h"

#include "io/chat_template_json.h"
#include "io/files.h"
#include "io/jinja_eval.h"
#include "io/jinja_json.h"
#include "io/jinja_lexer.h"
#include "io/json.h"
#include "wick/error.h"

namespace wick {

namespace {

// Real templates are a few KiB; this only keeps absurd inputs out.
constexpr size_t kMaxTemplateBytes = size_t(4) << 20;

std::string located(const std::string& origin, const io::jinja::TemplateError& e) {
  std::string where;
  if (e.pos().line) {
    where = "line " + std::to_string(e.pos().line);
    if (e.pos().col) where += ", col " + std::to_string(e.pos().col);
    where += ": ";
  }
  return origin + ": " + where + e.what();
}

nlohmann::ordered_json parse_object_or_array(std::string_view text, const std::string& what) {
  try {
    return nlohmann::ordered_json::parse(text.begin(), text.end());
  } catch (const nlohmann::ordered_json::parse_error& e) {
    throw Error(what + ": invalid JSON at byte " + std::to_string(e.byte));
  }
}

io::jinja::RenderSettings settings_of(const ChatRenderOptions& o) {
  io::jinja::RenderSettings s;
  s.max_steps = o.max_steps;
  s.max_bytes = o.max_output_bytes;
  if (o.now) s.now = io::jinja::CivilTime{o.now->year, o.now->month, o.now->day,
                                          o.now->hour, o.now->minute, o.now->second};
  return s;
}

std::string render_context(const ChatTemplate& tmpl, io::jinja::Value ctx,
                           const ChatRenderOptions& options) {
  using namespace io::jinja;
  try {
    Interp interp(tmpl.program(), std::move(ctx), settings_of(options));
    return interp.run();
  } catch (const TemplateError& e) {
    throw Error(located(tmpl.origin(), e));
  }
}

template <class J>
io::jinja::Value convert(const ChatTemplate& tmpl, const J& j, const char* what) {
  try {
    return io::jinja::value_from_json(j);
  } catch (const io::jinja::TemplateError& e) {
    throw Error(tmpl.origin() + ": " + what + ": " + e.what());
  }
}

template <class J>
std::string render_value(const ChatTemplate& tmpl, const J& context,
                         const ChatRenderOptions& options) {
  if (!context.is_object()) throw Error(tmpl.origin() + ": the context must be a JSON object");
  return render_context(tmpl, convert(tmpl, context, "context"), options);
}

// The variables transformers renders with: special tokens, then the caller's kwargs, then
// messages, tools, documents and add_generation_prompt (explicit arguments win).
template <class J>
std::string render_chat(const ChatTemplate& tmpl, const J& messages, const ChatTemplateArgs& args,
                        const J& extra) {
  using io::jinja::Value;
  if (!messages.is_array()) throw Error(tmpl.origin() + ": messages must be a JSON array");
  if (!extra.is_null() && !extra.is_object())
    throw Error(tmpl.origin() + ": extra variables must be a JSON object");
  io::jinja::DictData ctx;
  if (args.bos_token) ctx.set("bos_token", Value::string(*args.bos_token));
  if (args.eos_token) ctx.set("eos_token", Value::string(*args.eos_token));
  Value tools = Value::none(), documents = Value::none();
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) {
      if (it.key() == "messages" || it.key() == "add_generation_prompt")
        throw Error(tmpl.origin() + ": extra variables may not set '" + it.key() + "'");
      Value v = convert(tmpl, it.value(), "extra variables");
      if (it.key() == "tools")
        tools = std::move(v);
      else if (it.key() == "documents")
        documents = std::move(v);
      else
        ctx.set(it.key(), std::move(v));
    }
  }
  ctx.set("messages", convert(tmpl, messages, "messages"));
  ctx.set("tools", std::move(tools));
  ctx.set("documents", std::move(documents));
  ctx.set("add_generation_prompt", Value::boolean(args.add_generation_prompt));
  return render_context(tmpl, Value::dict(std::move(ctx)), args.options);
}

std::optional<std::string> special_token(const io::Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  throw Error("tokenizer_config.json: " + std::string(key) +
              ": expected a string or an object with \"content\"");
}

}  // namespace

ChatTemplate ChatTemplate::parse(std::string source, std::string origin_name) {
  if (source.size() > kMaxTemplateBytes)
    throw Error(origin_name + ": chat template larger than " + std::to_string(kMaxTemplateBytes) +
                " bytes");
  auto program = std::make_shared<io::jinja::Program>();
  program->origin = std::move(origin_name);
  try {
    program->tmpl = io::jinja::parse_template(io::jinja::normalize_template_source(source));
  } catch (const io::jinja::TemplateError& e) {
    throw Error(located(program->origin, e));
  }
  ChatTemplate t;
  t.program_ = std::move(program);
  t.source_ = std::move(source);
  return t;
}

const std::string& ChatTemplate::origin() const { return program_->origin; }

std::string ChatTemplate::render(std::string_view context_json,
                                 const ChatRenderOptions& options) const {
  return render_value(*this, parse_object_or_array(context_json, origin() + ": context"), options);
}

std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages,
                                const ChatTemplateArgs& args) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::ordered_json extra = nullptr;
  if (!args.extra_json.empty())
    extra = parse_object_or_array(args.extra_json, tmpl.origin() + ": extra variables");
  return io::apply_chat_template(tmpl, list, args, extra);
}

std::string apply_chat_template_json(const ChatTemplate& tmpl, std::string_view messages_json,
                                     const ChatTemplateArgs& args) {
  auto messages = parse_object_or_array(messages_json, tmpl.origin() + ": messages");
  nlohmann::ordered_json extra = nullptr;
  if (!args.extra_json.empty())
    extra = parse_object_or_array(args.extra_json, tmpl.origin() + ": extra variables");
  return io::apply_chat_template(tmpl, messages, args, extra);
}

ChatTemplateConfig load_chat_template(const std::string& model_dir, const std::string& name) {
  std::string config_path = io::join_path(model_dir, "tokenizer_config.json");
  std::string jinja_path = io::join_path(model_dir, "chat_template.jinja");
  io::Json config = io::is_file(config_path) ? io::read_json_file(config_path, size_t(64) << 20)
                                             : io::Json::object();
  if (!config.is_object()) throw Error(config_path + ": expected a JSON object");
  std::optional<ChatTemplate> tmpl;
  if (io::is_file(jinja_path)) {
    tmpl = ChatTemplate::parse(io::read_file(jinja_path, kMaxTemplateBytes), jinja_path);
  } else {
    auto it = config.find("chat_template");
    if (it == config.end() || it->is_null())
      throw Error(model_dir + ": no chat template (neither chat_template.jinja nor chat_template "
                              "in tokenizer_config.json)");
    std::string origin = config_path + ": chat_template";
    if (it->is_string()) {
      tmpl = ChatTemplate::parse(it->get<std::string>(), origin);
    } else if (it->is_array()) {
      for (const auto& entry : *it) {
        if (!entry.is_object()) continue;
        auto n = entry.find("name");
        auto t = entry.find("template");
        if (n != entry.end() && n->is_string() && n->get<std::string>() == name &&
            t != entry.end() && t->is_string())
          tmpl = ChatTemplate::parse(t->get<std::string>(), origin + "[" + name + "]");
      }
      if (!tmpl) throw Error(origin + ": no template named \"" + name + "\"");
    } else {
      throw Error(origin + ": expected a string or a list of named templates");
    }
  }
  return {std::move(*tmpl), special_token(config, "bos_token"), special_token(config, "eos_token")};
}

namespace io {

std::string render_chat_template(const ChatTemplate& tmpl, const nlohmann::ordered_json& context,
                                 const ChatRenderOptions& options) {
  return render_value(tmpl, context, options);
}

std::string apply_chat_template(const ChatTemplate& tmpl, const nlohmann::ordered_json& messages,
                                const ChatTemplateArgs& args, const nlohmann::ordered_json& extra) {
  return render_chat(tmpl, messages, args, extra);
}

std::string apply_chat_template(const ChatTemplate& tmpl, const nlohmann::json& messages,
                                const ChatTemplateArgs& args, const nlohmann::json& extra) {
  return render_chat(tmpl, messages, args, extra);
}

}  // namespace io

}  // namespace wick
