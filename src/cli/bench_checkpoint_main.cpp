// bench_checkpoint: how long training is blocked by a checkpoint, beside a synchronous write of the
// same state and beside the disk's raw write bandwidth for the same bytes.
//
//   build/bench_checkpoint [--dir DIR] [--models efficientnet_b0,vit_s16,vit_b16] [--repeat 3]
//
// It writes into a fresh folder DIR/bench-checkpoint.XXXXXX (DIR: checkpoints) and removes only
// that: nothing else in DIR is touched.
// The state is the model (1000 classes, 3 channels) plus SGD momentum, as the trainer saves it.
// Raw: write() of the same number of bytes in 8 MiB blocks of random bytes (a compressing file
// system gains nothing, as with weights), then fsync (what the disk gives).
// Sync: write_checkpoint (HDF5, CRC-32 per tensor, temp file, fsync, rename, folder fsync).
// Async: what AsyncCheckpointWriter::submit() blocks the training thread (a copy into the
// writer's buffers, allocated by the first checkpoint and reused, shown apart); the write itself
// then runs in the background. Best of --repeat runs each. Prints Markdown.
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "checkpoint/async_writer.h"
#include "checkpoint/checkpoint.h"
#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "dist/process_env.h"
#include "models/registry.h"
#include "train/optimizer.h"

using namespace odyssey;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double raw_write(const std::string& path, int64_t bytes) {
  static const auto block = [] {
    std::vector<char> b(8 << 20);
    std::mt19937_64 gen(1);
    for (size_t i = 0; i + 8 <= b.size(); i += 8) {
      const uint64_t v = gen();
      std::memcpy(b.data() + i, &v, 8);
    }
    return b;
  }();
  const auto t0 = Clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ODY_CHECK(fd >= 0, "cannot create " + path, "");
  for (int64_t left = bytes; left > 0;) {
    const ssize_t n = ::write(fd, block.data(), std::min<int64_t>(left, block.size()));
    ODY_CHECK(n > 0, "cannot write " + path, "is the disk full?");
    left -= n;
  }
  ODY_CHECK(::fsync(fd) == 0, "cannot fsync " + path, "");
  ::close(fd);
  const double s = since(t0);
  fs::remove(path);
  return s;
}


// One table row: the state of `name` (model + SGD momentum) written raw, synchronously and in the
// background into dir, best of repeat each.
void bench_model(const std::string& name, const std::string& dir, int repeat) {
  torch::manual_seed(0);
  auto model = ModelRegistry::instance().create(name, {1000, 3, 224});
  NamedTensors params;
  for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  OptimConfig oc;
  auto opt = make_optimizer(oc, params);
  for (auto& [n, t] : opt->state()) t.normal_();
  CheckpointData d;
  d.model = params;
  for (auto& b : model->named_buffers()) d.model.emplace_back(b.key(), b.value());
  d.optimizer = opt->state();
  d.trainer.model_name = name;
  int64_t bytes = 0;
  for (auto& [n, t] : d.model) bytes += t.nbytes();
  for (auto& [n, t] : d.optimizer) bytes += t.nbytes();

  double raw = 1e30, sync = 1e30, blocked = 1e30, first_blocked = 0;
  Checkpointer ck(dir, 1);
  AsyncCheckpointWriter writer(ck, /*async=*/true);  // as in training: one writer, reused
  for (int r = 0; r < repeat + 1; ++r) {
    if (r > 0) {
      raw = std::min(raw, raw_write((fs::path(dir) / "raw.bin").string(), bytes));
      const std::string path = (fs::path(dir) / "sync.h5").string();
      auto t0 = Clock::now();
      write_checkpoint(path, d);
      sync = std::min(sync, since(t0));
      fs::remove(path);
    }
    d.trainer.step = r;
    const double b = writer.submit(d);
    if (r == 0) first_blocked = b;  // the first checkpoint allocates the copy
    else blocked = std::min(blocked, b);
    writer.wait();
    ODY_CHECK(!writer.take_error(), "the background write failed", "");
  }
  const double mb = bytes / 1e6;
  std::printf("| %s | %.0f | %.2f (%.2f) | %.2f (%.2f) | %.2fx | %.3f (first: %.3f) | %.3fx |\n",
              name.c_str(), mb, raw, mb / 1e3 / raw, sync, mb / 1e3 / sync, sync / raw, blocked,
              first_blocked, blocked / sync);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (help_requested(argc, argv)) {
    std::puts("usage: build/bench_checkpoint [--dir DIR] [--models efficientnet_b0,vit_s16,vit_b16] "
              "[--repeat 3]\n(writes into a fresh DIR/bench-checkpoint.XXXXXX, DIR: checkpoints; "
              "see the top of bench_checkpoint_main.cpp)");
    return 0;
  }
  configure_allocator();
  log::init(0, 1);
  std::string parent = "checkpoints";
  std::vector<std::string> models = {"efficientnet_b0", "vit_s16", "vit_b16"};
  int repeat = 3;
  try {
    auto o = option_pairs(argc, argv, {"--dir", "--models", "--repeat"}, "bench_checkpoint");
    if (o.count("--dir")) parent = o["--dir"];
    if (o.count("--models")) models = split(o["--models"], ',');
    if (o.count("--repeat")) repeat = static_cast<int>(positive_int_option("--repeat", o["--repeat"]));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());  // with its hint (as bench_loader)
    return 1;
  }
  log::out().set_level(spdlog::level::warn);  // no per-checkpoint lines
  // A fresh folder of its own inside the one given: only it is removed at the end.
  std::error_code ec;
  fs::create_directories(parent, ec);
  std::string dir = (fs::path(parent) / "bench-checkpoint.XXXXXX").string();
  if (ec || !::mkdtemp(dir.data())) {
    std::fprintf(stderr, "error: cannot create a folder in '%s' (is --dir writable?)\n", parent.c_str());
    return 2;
  }
  std::printf("checkpoint of model + SGD momentum, folder %s, best of %d\n\n", dir.c_str(), repeat);
  std::printf("| model | MB | disk raw write+fsync s (GB/s) | sync checkpoint s (GB/s) | sync / raw | "
              "async: training blocked s | blocked / sync |\n|---|---|---|---|---|---|---|\n");
  int rc = 0;
  try {
    for (const auto& name : models) bench_model(name, dir, repeat);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    rc = 2;
  }
  fs::remove_all(dir);
  return rc;
}
