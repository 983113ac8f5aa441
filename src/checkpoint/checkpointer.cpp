#include "checkpoint/checkpointer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/error.h"
#include "common/log.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

// Complete checkpoints of the folder (no .tmp), newest step first.
std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind("ckpt-step", 0) == 0 && e.path().extension() == ".h5") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(), std::greater<>());  // zero-padded steps sort by name
  return out;
}

}  // namespace

Checkpointer::Checkpointer(std::string run_dir, int64_t keep_last)
    : run_dir_(std::move(run_dir)), keep_last_(keep_last) {}

std::string Checkpointer::save(const CheckpointData& data) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-step%010lld.h5",
                static_cast<long long>(data.trainer.step));
  std::string path = (fs::path(run_dir_) / name).string();
  write_checkpoint(path, data);
  // `latest` names the newest complete checkpoint; replaced atomically.
  std::string latest = (fs::path(run_dir_) / "latest").string();
  {
    std::ofstream out(latest + ".tmp");
    out << name << "\n";
    ODY_CHECK(out.good(), "cannot write '" + latest + ".tmp'", "is the disk full?");
  }
  fs::rename(latest + ".tmp", latest);
  if (keep_last_ > 0) {
    auto all = list_checkpoints(run_dir_);
    for (size_t i = static_cast<size_t>(keep_last_); i < all.size(); ++i) fs::remove(all[i]);
  }
  return path;
}

std::optional<std::string> Checkpointer::resolve(const std::string& resume) const {
  if (resume == "none") {
    ODY_CHECK(list_checkpoints(run_dir_).empty(),
              "run folder '" + run_dir_ + "' already holds checkpoints and train.resume = \"none\"",
              "continue that run with train.resume=auto, pick another run.name, or remove the folder");
    return std::nullopt;
  }
  if (resume != "auto") {
    ODY_CHECK(fs::exists(resume), "train.resume: checkpoint '" + resume + "' does not exist",
              "use \"auto\" for the newest checkpoint of this run, or \"none\"");
    return resume;
  }
  for (const auto& path : list_checkpoints(run_dir_)) {
    try {
      read_checkpoint(path);
      return path;
    } catch (const Error& e) {
      log::warn("skipping damaged checkpoint {}: {}", path, e.message());
    }
  }
  return std::nullopt;
}

}  // namespace odyssey
