#include "train/checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "io/atomic_dir.h"
#include "io/files.h"
#include "io/json.h"
#include "wick/error.h"
#include "wick/safetensors.h"

namespace wick::detail {
namespace {

constexpr const char* kState = "trainer_state.json";
constexpr const char* kOptimizer = "optimizer.safetensors";

}  // namespace

std::string write_checkpoint(const std::string& checkpoints_dir, const TrainerState& s, const AdamW& opt,
                             const std::function<void(const std::string&)>& write_weights) {
  std::error_code ec;
  std::filesystem::create_directories(checkpoints_dir, ec);
  if (ec) throw Error(checkpoints_dir + ": cannot create: " + ec.message());
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(s.step));
  std::string dir = io::join_path(checkpoints_dir, name);
  io::write_directory_atomic(
      dir,
      [&](const std::string& tmp) {
        write_weights(tmp);
        save_safetensors(io::join_path(tmp, kOptimizer), opt.state_dict(), {{"format", "wick-adamw"}});
        nlohmann::json j = {{"step", s.step},          {"epoch", s.epoch},         {"batch", s.batch},
                            {"tokens_seen", s.tokens_seen}, {"last_loss", s.last_loss}, {"run", s.run}};
        io::write_file_atomic(io::join_path(tmp, kState), j.dump(2) + "\n");
      },
      /*replace=*/true);
  io::write_file_atomic(io::join_path(checkpoints_dir, "latest"), std::string(name) + "\n");
  return dir;
}

Checkpoint read_checkpoint(const std::string& path) {
  Checkpoint c;
  c.dir = path;
  if (!io::is_file(io::join_path(path, kState))) {
    std::string latest = io::join_path(io::join_path(path, "checkpoints"), "latest");
    if (!io::is_file(latest))
      throw Error(path + ": not a checkpoint (no " + kState + ") and no checkpoints/latest in it");
    std::string name = io::read_file(latest, 4096);
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (name.empty() || name.find('/') != std::string::npos || name[0] == '.')
      throw Error(latest + ": does not name a checkpoint folder");
    c.dir = io::join_path(io::join_path(path, "checkpoints"), name);
  }
  std::string state_path = io::join_path(c.dir, kState);
  io::Json j = io::read_json_file(state_path, size_t(1) << 24);
  if (!j.is_object()) throw Error(state_path + ": expected a JSON object");
  c.state.step = io::json_require<int64_t>(j, "step", state_path);
  c.state.epoch = io::json_require<int64_t>(j, "epoch", state_path);
  c.state.batch = io::json_require<int64_t>(j, "batch", state_path);
  c.state.tokens_seen = io::json_require<int64_t>(j, "tokens_seen", state_path);
  c.state.last_loss = io::json_optional<double>(j, "last_loss", state_path).value_or(0.0);
  if (c.state.step < 0 || c.state.epoch < 0 || c.state.batch < 0 || c.state.tokens_seen < 0)
    throw Error(state_path + ": negative step, epoch, batch or tokens_seen");
  if (j.contains("run")) c.state.run = j["run"];
  c.optimizer = load_safetensors(io::join_path(c.dir, kOptimizer));
  return c;
}

}  // namespace wick::detail
