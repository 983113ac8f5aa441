// bench_loader: images/s the data loader delivers, beside a raw sequential HDF5 read of the same
// bytes and plain memory bandwidth (memcpy), on one rank.
//
//   build/bench_loader DATA_DIR [--split train] [--batch 256] [--readers 1,2,4] [--repeat 2]
//   build/bench_loader --synthetic N,SIDE [--dir DIR] ...   (writes N random SIDExSIDEx3 images)
//
// Rows: raw HDF5 (one H5Dread of each shard's whole /images, sequential); memcpy of the same
// bytes; the loader streaming from the shards (data.cache_mb = 0) in a shuffled epoch order with
// 1, 2, 4 reader threads; with the block shuffle (256-sample blocks, windows of 16); the loader
// from memory (a cached split); the loader plus the training
// transform on the consuming thread (flip + pad-crop; and the DeiT set: random-resized-crop, flip,
// RandAugment 2/9, random erasing), LibTorch on one thread. The page cache is warmed first, so
// rows compare CPU and memory paths, not the disk. Best of --repeat runs each. Prints Markdown.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "common/h5.h"
#include "common/text.h"
#include "data/augment.h"
#include "data/convert.h"
#include "data/dataset_index.h"
#include "data/epoch_plan.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/split_reader.h"
#include "dist/process_env.h"

using namespace odyssey;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Args {
  std::string dir, split = "train";
  int64_t batch = 256, repeat = 2, synthetic_n = 0, synthetic_side = 0;
  std::vector<int> readers = {1, 2, 4};
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    bool v = i + 1 < argc;
    if (s == "--split" && v) a.split = argv[++i];
    else if (s == "--batch" && v) a.batch = positive_int_option(s, argv[++i]);
    else if (s == "--repeat" && v) a.repeat = positive_int_option(s, argv[++i]);
    else if (s == "--dir" && v) a.dir = argv[++i];
    else if (s == "--readers" && v) {
      a.readers.clear();
      for (const auto& r : split(argv[++i], ',')) a.readers.push_back(static_cast<int>(positive_int_option(s, r)));
    } else if (s == "--synthetic" && v) {
      auto parts = split(argv[++i], ',');
      ODY_CHECK(parts.size() == 2, "--synthetic takes N,SIDE", "");
      a.synthetic_n = positive_int_option(s, parts[0]);
      a.synthetic_side = positive_int_option(s, parts[1]);
    } else if (s.rfind("--", 0) != 0 && a.dir.empty()) a.dir = s;
    else ODY_USAGE_FAIL("unknown or incomplete option '" + s + "'", "see bench_loader --help");
  }
  if (a.dir.empty() && a.synthetic_n > 0) a.dir = "checkpoints/bench-loader-data";
  ODY_USAGE_CHECK(!a.dir.empty(), "usage: bench_loader DATA_DIR | --synthetic N,SIDE [options]", "");
  return a;
}

// Best images/s of fn() (which processes `images` images) over repeat runs.
template <typename F>
double best_rate(int64_t repeat, int64_t images, F&& fn) {
  double best = 0;
  for (int64_t r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    fn();
    best = std::max(best, images / since(t0));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (help_requested(argc, argv)) {
    std::puts("usage: build/bench_loader DATA_DIR [--split train] [--batch 256] [--readers 1,2,4] [--repeat 2]\n"
              "       build/bench_loader --synthetic N,SIDE [--dir DIR] ...   (see the top of bench_loader_main.cpp)");
    return 0;
  }
  configure_allocator();  // as the trainer: without it, fresh pages per batch made runs bimodal
  h5::quiet_errors();
  try {
    Args a = parse(argc, argv);
    if (a.synthetic_n > 0) {
      torch::manual_seed(0);
      const int64_t per_shard = 5000;
      std::vector<SplitData> splits;
      auto images = torch::randint(0, 256, {a.synthetic_n, a.synthetic_side, a.synthetic_side, 3}, torch::kByte);
      auto labels = torch::randint(0, 10, {a.synthetic_n}, torch::kLong);
      splits.push_back({"train", images, labels, std::max<int64_t>(1, a.synthetic_n / per_shard)});
      std::vector<std::string> classes;
      for (int i = 0; i < 10; ++i) classes.push_back(std::to_string(i));
      write_dataset(a.dir, "synthetic", "bench_loader --synthetic", classes, splits);
    }
    set_thread_counts(1);  // LibTorch and OpenBLAS's own pool (idle pool threads spin-yield)
    DatasetIndex index = read_index(a.dir);
    SplitReader streamed(a.dir, index, a.split, 0, /*cache_bytes=*/0);
    const int64_t n = streamed.size();
    const int64_t sample_bytes = streamed.height() * streamed.width() * streamed.channels();
    const double mb = n * sample_bytes / 1e6;
    std::printf("dataset %s, split %s: %lld images of %lldx%lldx%lld (%.1f MB), batch %lld, best of %lld\n\n",
                a.dir.c_str(), a.split.c_str(), (long long)n, (long long)streamed.height(),
                (long long)streamed.width(), (long long)streamed.channels(), mb, (long long)a.batch,
                (long long)a.repeat);

    // Raw sequential HDF5: each shard's whole /images in one H5Dread (through ShardReader's
    // HDF5 path would take the direct route; use the C API).
    std::vector<uint8_t> buf(static_cast<size_t>(n * sample_bytes)), copy(buf.size());
    auto raw_read = [&] {
      uint8_t* dst = buf.data();
      for (const auto& e : index.split(a.split)) {
        std::string path = (fs::path(a.dir) / e.file).string();
        h5::Handle f = h5::open_file(path, false);
        h5::Handle d = h5::open_dataset(f, "images", path);
        ODY_CHECK(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0,
                  "cannot read /images of '" + path + "'", "");
        dst += e.samples * sample_bytes;
      }
    };
    raw_read();  // warm the page cache
    const double raw = best_rate(a.repeat, n, raw_read);
    const double mem = best_rate(a.repeat, n, [&] { std::memcpy(copy.data(), buf.data(), buf.size()); });

    std::printf("| path | images/s | MB/s | vs raw HDF5 read |\n|---|---|---|---|\n");
    auto row = [&](const std::string& what, double ips) {
      std::printf("| %s | %.0f | %.0f | %.2fx |\n", what.c_str(), ips, ips * sample_bytes / 1e6, ips / raw);
      std::fflush(stdout);
    };
    row("raw HDF5 read, sequential (H5Dread per shard)", raw);
    row("memcpy of the same bytes", mem);

    EpochPlan plan(n, a.batch, 1, 0, 1, 0);
    auto indices = [&plan](int64_t s) { return plan.batch(s); };
    const int64_t delivered = plan.steps() * a.batch;
    auto drain = [&](const SplitReader& r, int threads, const std::function<void(const Batch&)>& use) {
      Loader loader(r, indices, 0, plan.steps(), 4, threads);
      while (auto b = loader.next()) use(*b);
    };
    for (int t : a.readers)
      row("loader, shuffled, streaming from shards, " + std::to_string(t) + " reader" + (t > 1 ? "s" : ""),
          best_rate(a.repeat, delivered, [&] { drain(streamed, t, [](const Batch&) {}); }));
    {  // block shuffle (data.shuffle = "block", 256 x 16): whole blocks through a buffer
      SplitReader blocked(a.dir, index, a.split, 0, 0);
      blocked.use_block_buffer(256, 18);
      EpochPlan block_plan(n, a.batch, 1, 0, 1, 0, ShuffleOptions{true, 256, 16});
      row("loader, block shuffle 256 x 16, streaming, 2 readers",
          best_rate(a.repeat, block_plan.steps() * a.batch, [&] {
            Loader loader(blocked, [&block_plan](int64_t s) { return block_plan.batch(s); }, 0,
                          block_plan.steps(), 4, 2);
            while (loader.next()) {
            }
          }));
    }
    SplitReader cached(a.dir, index, a.split, 0, int64_t{1} << 40);
    row("loader, shuffled, split in memory, 2 readers",
        best_rate(a.repeat, delivered, [&] { drain(cached, 2, [](const Batch&) {}); }));

    Normalize norm{index.mean, index.std};
    AugmentConfig light;
    light.hflip = true;
    light.crop_padding = 2;
    AugmentConfig deit;
    deit.hflip = true;
    deit.rrc_scale_min = 0.08;
    deit.randaugment_n = 2;
    deit.randaugment_m = 9;
    deit.erasing_p = 0.25;
    uint64_t seed = 0;
    row("loader + flip, pad-crop (1 thread)", best_rate(a.repeat, delivered, [&] {
          drain(streamed, 2, [&](const Batch& b) { augment_train(b.images, light, norm, ++seed); });
        }));
    row("loader + RRC, flip, RandAugment 2/9, erasing (1 thread)", best_rate(a.repeat, delivered, [&] {
          drain(streamed, 2, [&](const Batch& b) { augment_train(b.images, deit, norm, ++seed); });
        }));
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
