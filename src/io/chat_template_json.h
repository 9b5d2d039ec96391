#pragma once
// Chat-template rendering from JSON already parsed by the library (dataset records, configs),
// without a round trip through text. Parse with nlohmann::ordered_json where key order matters
// (tool-call arguments printed with tojson): a plain nlohmann::json has already sorted them.
#include <nlohmann/json.hpp>

#include "wick/chat_template.h"

namespace wick::io {

/// ChatTemplate::render with a parsed context object.
std::string render_chat_template(const ChatTemplate& tmpl, const nlohmann::ordered_json& context,
                                 const ChatRenderOptions& options = {});

/// apply_chat_template with parsed messages (an array) and extra variables (an object or null).
std::string apply_chat_template(const ChatTemplate& tmpl, const nlohmann::ordered_json& messages,
                                const ChatTemplateArgs& args,
                                const nlohmann::ordered_json& extra = nullptr);
std::string apply_chat_template(const ChatTemplate& tmpl, const nlohmann::json& messages,
                                const ChatTemplateArgs& args, const nlohmann::json& extra = nullptr);

}  // namespace wick::io
