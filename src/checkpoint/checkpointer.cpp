#include "checkpoint/checkpointer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/file.h"
#include "common/log.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

// Whether a file name is one Checkpointer::save writes: ckpt-step<10 or more digits>.h5.
bool is_checkpoint_name(const std::string& name) {
  const size_t n = name.size();
  if (n < 22 || name.rfind("ckpt-step", 0) != 0 || name.compare(n - 3, 3, ".h5") != 0) return false;
  return std::all_of(name.begin() + 9, name.end() - 3, [](char c) { return c >= '0' && c <= '9'; });
}

// Complete checkpoints of the folder (no .tmp, no other file named like one, e.g. an export
// ckpt-step-best.h5), newest step first.
std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (is_checkpoint_name(e.path().filename().string())) out.push_back(e.path());
  std::sort(out.begin(), out.end(), std::greater<>());  // zero-padded steps sort by name
  return out;
}

// The step in a ckpt-step<N>.h5 name.
int64_t step_of(const std::string& path) {
  std::string name = fs::path(path).stem().string();  // ckpt-step0000000120
  return std::stoll(name.substr(9));
}

}  // namespace

std::string checkpoint_file(const std::string& path) {
  std::error_code ec;
  fs::path p(path);
  if (fs::is_directory(p, ec)) {
    p /= "latest";
    ODY_CHECK(fs::is_regular_file(p, ec), "run folder '" + path + "' holds no 'latest' checkpoint pointer",
              "name a checkpoint file (ckpt-step*.h5), or a folder a run has checkpointed into");
  } else if (p.filename() != "latest") {
    return path;
  }
  ODY_CHECK(fs::is_regular_file(p, ec), "'" + p.string() + "' does not exist", "");
  std::ifstream in(p);
  std::string name;
  std::getline(in, name);
  ODY_CHECK(is_checkpoint_name(name),
            "'" + p.string() + "' does not name a checkpoint (its first line is not a ckpt-step*.h5 name)",
            "was it overwritten? train.resume=auto finds the newest checkpoint without it; or name a "
            "checkpoint file (ckpt-step*.h5)");
  return (p.parent_path() / name).string();
}

bool is_run_file(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(path, ec);  // a link or another spelling names the same file
  if (ec || p.empty()) p = path;
  const std::string name = p.filename().string();
  static const std::set<std::string> kRunFiles = {"latest",      "eval-latest.h5", "config.toml",
                                                  "metrics.csv", "metrics.jsonl",  "report.html"};
  if (!is_checkpoint_name(name) && !kRunFiles.count(name)) return false;
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  try {
    return fs::exists(dir / "latest", ec) || !list_checkpoints(dir.string()).empty();
  } catch (const fs::filesystem_error&) {  // an unreadable folder: the write will say why
    return false;
  }
}

void refuse_run_file_output(const std::string& out, const std::string& checkpoint, const std::string& what,
                            const std::string& hint) {
  const bool is_checkpoint = same_file(out, checkpoint);
  ODY_USAGE_CHECK(!is_checkpoint && !is_run_file(out),
                  what + " '" + out + "' is " + (is_checkpoint ? "the checkpoint" : "one of a run folder's own files"),
                  hint);
}

Checkpointer::Checkpointer(std::string run_dir, int64_t keep_last, int64_t keep_every)
    : run_dir_(std::move(run_dir)), keep_last_(keep_last), keep_every_(keep_every) {}

int Checkpointer::remove_stale_temporaries() const {
  int n = 0;
  std::error_code ec;
  if (!fs::is_directory(run_dir_, ec)) return 0;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& e : fs::directory_iterator(run_dir_, ec)) {
    if (e.path().extension() != ".tmp") continue;
    // A checkpoint's temporary (ckpt-*.h5.tmp) is only ever this run's, whose folder lock this
    // trainer holds. A text file's (write_text_atomically: report.md.<host>-<pid>-<n>.tmp) may be
    // a live `trainer report`'s on another node, renamed milliseconds after it appears: only one
    // untouched for a minute is a killed write's.
    const bool checkpoint_tmp = e.path().stem().extension() == ".h5";
    std::error_code age_ec;
    const auto modified = fs::last_write_time(e.path(), age_ec);
    if (!checkpoint_tmp && (age_ec || now - modified < std::chrono::minutes(1))) continue;
    if (fs::remove(e.path(), ec)) ++n;
  }
  return n;
}

CheckpointData read_checkpoint_patiently(const std::string& path) {
  for (int wait_ms : {500, 1000}) {
    try {
      return read_checkpoint(path);
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
  }
  return read_checkpoint(path);
}

std::string Checkpointer::name_of(int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-step%010lld.h5", static_cast<long long>(step));
  return name;
}

std::string Checkpointer::save(const CheckpointData& data) {
  const std::string name = name_of(data.trainer.step);
  std::string path = (fs::path(run_dir_) / name).string();
  write_checkpoint(path, data);
  // `latest` names the newest complete checkpoint; replaced atomically and durably. The
  // checkpoint is complete without it (train.resume = "auto" lists the files): a pointer that
  // cannot be replaced is a warning, and retention waits (the previous checkpoint, which
  // `latest` still names, stays).
  try {
    write_text_atomically((fs::path(run_dir_) / "latest").string(), std::string(name) + "\n");
  } catch (const Error& e) {
    log::warn("checkpoint {} is complete, but 'latest' still names the previous one: {}; old "
              "checkpoints are kept until it can be replaced", path, e.message());
    return path;
  }
  // Retention: the checkpoint is committed, so a failure here (the folder unlistable for a
  // moment) is a warning; old checkpoints stay until the next save.
  std::error_code ec;
  if (keep_last_ > 0) {
    try {
      auto all = list_checkpoints(run_dir_);
      for (size_t i = static_cast<size_t>(keep_last_); i < all.size(); ++i) {
        if (keep_every_ > 0 && step_of(all[i]) % keep_every_ == 0) continue;
        fs::remove(all[i], ec);
      }
    } catch (const std::exception& e) {
      log::warn("checkpoint {} is complete; old checkpoints were not removed: {}", path, e.what());
    }
  }
  return path;
}

std::string Checkpointer::set_aside(int64_t step, const std::string& tag,
                                    const std::vector<std::string>& copies,
                                    const std::vector<std::string>& moves) const {
  char name[64];
  std::snprintf(name, sizeof name, "set-aside-after-step%010lld-", static_cast<long long>(step));
  const fs::path aside = fs::path(run_dir_) / (name + tag);
  std::error_code ec;
  fs::create_directories(aside, ec);
  ODY_CHECK(!ec, "cannot create '" + aside.string() + "': " + ec.message(),
            "is the run folder writable?");
  // Copies first: a start killed before the files moved finds them in place and sets them
  // aside again, copies included, in a folder of its own time (the first folder then holds
  // copies only, or part of the files; nothing is lost).
  for (const auto& path : copies)
    if (fs::exists(path, ec)) {
      const auto bytes = read_file_bytes(path, "file to set aside");
      write_text_atomically((aside / fs::path(path).filename()).string(),
                            std::string(bytes.begin(), bytes.end()));
    }
  for (const auto& path : moves) {
    if (!fs::exists(path, ec)) continue;
    fs::rename(path, aside / fs::path(path).filename(), ec);
    ODY_CHECK(!ec, "cannot move '" + path + "' into '" + aside.string() + "': " + ec.message(), "");
  }
  fsync_path(aside.string(), true);
  fsync_path(run_dir_, true);
  return aside.string();
}

std::string Checkpointer::set_aside_after(int64_t step, const std::string& tag,
                                          const std::vector<std::string>& copies,
                                          const std::vector<std::string>& moves) const {
  std::vector<std::string> newer;
  for (const auto& path : list_checkpoints(run_dir_))
    if (step_of(path) > step) newer.push_back(path);
  if (newer.empty()) return "";
  newer.insert(newer.end(), moves.begin(), moves.end());
  const std::string aside = set_aside(step, tag, copies, newer);
  // `latest` names the newest checkpoint left (or goes: none is left).
  const auto left = list_checkpoints(run_dir_);
  const std::string latest = (fs::path(run_dir_) / "latest").string();
  std::error_code ec;
  if (left.empty())
    fs::remove(latest, ec);
  else
    write_text_atomically(latest, fs::path(left.front()).filename().string() + "\n");
  fsync_path(run_dir_, true);
  return aside;
}

namespace {

// Why a checkpoint that failed to load is not damage: the OS refuses to open or read it, or a
// newer build wrote it; empty when it is damage (or of an older format no longer read).
std::string not_damage(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::string("cannot be opened: ") + std::strerror(errno);
  // Every byte (a network file system's outage may hit a later stripe or block only).
  std::vector<char> buffer(1 << 20);
  ssize_t n = 0;
  while ((n = ::read(fd, buffer.data(), buffer.size())) > 0 || (n < 0 && errno == EINTR)) {
  }
  const int err = errno;
  ::close(fd);
  if (n < 0) return std::string("cannot be read: ") + std::strerror(err);
  const int64_t version = checkpoint_format_version(path);
  if (version > kCheckpointFormatVersion)
    return "was written by a newer build (format_version " + std::to_string(version) +
           "; this build reads " + std::to_string(kCheckpointOldestReadable) + " to " +
           std::to_string(kCheckpointFormatVersion) + ")";
  return {};
}

}  // namespace

std::optional<std::string> Checkpointer::resolve(const std::string& resume, CheckpointData* loaded) const {
  if (resume == "none") {
    ODY_CHECK(list_checkpoints(run_dir_).empty(),
              "run folder '" + run_dir_ + "' already holds checkpoints and train.resume = \"none\"",
              "continue that run with train.resume=auto, pick another run.name, or remove the folder");
    return std::nullopt;
  }
  if (resume != "auto") {
    ODY_CHECK(fs::exists(resume), "train.resume: checkpoint '" + resume + "' does not exist",
              "use \"auto\" for the newest checkpoint of this run, or \"none\"");
    return checkpoint_file(resume);  // a run folder or its `latest` too
  }
  const auto all = list_checkpoints(run_dir_);
  auto read_error = [&](const std::string& path) -> std::string {  // empty: it loads
    try {
      CheckpointData data = read_checkpoint_patiently(path);
      if (loaded) *loaded = std::move(data);
      return {};
    } catch (const Error& e) {
      return e.message();
    } catch (const std::exception& e) {  // e.g. LibTorch's, for dimensions no tensor can have
      std::string reason = e.what();
      return reason.substr(0, reason.find('\n'));  // no backtrace
    }
  };
  std::string why;
  for (const auto& path : all) {
    // Read patiently: falling back past a file over a passing I/O error would roll the run back
    // (the newer checkpoints set aside).
    const std::string reason = read_error(path);
    if (reason.empty()) return path;
    // Only damage is passed over: a file the OS will not open or read now (permissions, a network
    // file system's outage beyond the retries) or one a newer build wrote is not damaged, and
    // falling back past it would roll the run back all the same.
    const std::string held = not_damage(path);
    ODY_CHECK(held.empty(),
              "checkpoint '" + path + "' " + held + " (train.resume = \"auto\"); nothing was rolled back",
              "mend it (or resume with the build that wrote it), or name an older checkpoint with "
              "train.resume=PATH to go back past it");
    log::warn("skipping damaged checkpoint {} (3 reads failed): {}", path, reason);
    why += "\n  " + fs::path(path).filename().string() + ": " + reason;
  }
  // Checkpoints that all fail to load (another build's format, a filesystem error, damage) are
  // never a reason to start the run again over them: that would lose it.
  ODY_CHECK(all.empty(),
            "run folder '" + run_dir_ + "' holds " + std::to_string(all.size()) +
                " checkpoint(s) and none loads (train.resume = \"auto\"):" + why,
            "repair or move them aside to start again, or name one with train.resume=PATH");
  return std::nullopt;
}

}  // namespace odyssey
