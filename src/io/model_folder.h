#pragma once
// Files that travel with a Hugging Face model folder besides its weights and config.
#include <string>
#include <vector>

#include "wick/dtype.h"

namespace wick::io {

/// The files a model folder holds besides its weights and config that a copy of the model needs
/// to be used as the original was: the tokenizer in its fast and slow forms, the chat template,
/// generation defaults.
const std::vector<std::string>& tokenizer_file_names();

/// Copies those of them that exist in `from` into `to` (an existing folder). Returns the names
/// copied. Failures name the file.
std::vector<std::string> copy_tokenizer_files(const std::string& from, const std::string& to);

/// transformers' name of a floating dtype ("bfloat16", ...); null for others.
const char* torch_dtype_name(DType t);

/// config.json text with its dtype fields set to `dtype` (both spellings transformers has used,
/// where present; torch_dtype when neither is), keeping the key order. `path` names the file in
/// errors.
std::string retyped_config(const std::string& text, const std::string& path, DType dtype);

}  // namespace wick::io
