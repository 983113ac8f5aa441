#include "data/convert.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>

#include "common/error.h"
#include "common/file.h"
#include "common/log.h"
#include "data/shard.h"

namespace odyssey {

namespace fs = std::filesystem;

uint32_t shard_crc32(const torch::Tensor& images, const torch::Tensor& labels) {
  auto img = images.contiguous();
  auto lab = labels.to(torch::kLong).contiguous();
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(img.data_ptr());
  for (size_t left = img.nbytes(); left > 0;) {  // crc32 takes uInt lengths
    uInt n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n, left -= n;
  }
  crc = crc32(crc, static_cast<const Bytef*>(lab.data_ptr()), static_cast<uInt>(lab.nbytes()));
  return static_cast<uint32_t>(crc);
}

namespace {
// The last step of replacing a dataset: the shards of `staged` still in the staging folder, then its
// index.toml, renamed into out_dir (each rename durable before the next step). Renames within a
// folder tree of one filesystem: seconds for any size.
void move_dataset_in(const fs::path& staging, const std::string& out_dir, const DatasetIndex& staged) {
  for (const auto& e : staged.shards) {
    if (!fs::exists(staging / e.file)) continue;  // moved by the conversion this one completes
    std::error_code ec;
    fs::rename(staging / e.file, fs::path(out_dir) / e.file, ec);
    ODY_CHECK(!ec, "cannot move '" + (staging / e.file).string() + "' into '" + out_dir + "': " + ec.message(),
              "the next conversion into '" + out_dir + "' completes the move");
  }
  fsync_path(out_dir, /*directory=*/true);
  fs::rename(staging / "index.toml", fs::path(out_dir) / "index.toml");
  fsync_path(out_dir, /*directory=*/true);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}
}  // namespace

DatasetWriter::DatasetWriter(std::string out_dir, std::string name, std::string source,
                             std::vector<std::string> class_names, std::string stats_split)
    : out_dir_(std::move(out_dir)), stats_split_(std::move(stats_split)) {
  std::error_code ec;
  fs::create_directories(out_dir_, ec);
  ODY_CHECK(!ec, "cannot create output folder '" + out_dir_ + "': " + ec.message(), "");
  // A dataset already there stays whole until this one is complete: the new shards go to a
  // staging folder inside it (the same filesystem: finish() moves them in without a copy). One
  // left by a conversion that was killed goes first.
  shard_dir_ = out_dir_;
  const fs::path index = fs::path(out_dir_) / "index.toml";
  const fs::path staging = fs::path(out_dir_) / kStagingFolder;
  if (!fs::exists(index) && fs::exists(staging / "index.toml")) {
    // A conversion killed while it moved its complete dataset in: that dataset is whole between
    // the staging folder and here, so the move is completed first.
    log::warn("{}: completing the replacement of the dataset a stopped conversion left half-done", out_dir_);
    move_dataset_in(staging, out_dir_, read_index(staging.string()));
  }
  fs::remove_all(staging, ec);
  if (fs::exists(index)) {
    try {
      for (const auto& e : read_index(out_dir_).shards) replaced_splits_.insert(e.split);
    } catch (const Error&) {  // an unreadable index: nothing to tell about it
    }
    fs::create_directories(staging, ec);
    ODY_CHECK(!ec, "cannot create '" + staging.string() + "': " + ec.message(), "");
    shard_dir_ = staging.string();
    log::info("{}: replacing the dataset there when this conversion completes (the new shards wait "
              "in {}; the old dataset stays readable until then)", out_dir_, staging.string());
  }
  idx_.name = std::move(name);
  idx_.source = std::move(source);
  idx_.num_classes = static_cast<int64_t>(class_names.size());
  idx_.class_names = std::move(class_names);
}

void DatasetWriter::add_shard(const std::string& split, int64_t i, int64_t n,
                              const torch::Tensor& images, const torch::Tensor& labels) {
  ODY_CHECK(images.dim() == 4, "DatasetWriter: images must be [N,H,W,C]", "");
  if (idx_.channels == 0) {
    idx_.height = images.size(1), idx_.width = images.size(2), idx_.channels = images.size(3);
    for (PixelSums* p : {&stats_, &all_}) p->sum.assign(idx_.channels, 0), p->sumsq.assign(idx_.channels, 0);
  }
  ODY_CHECK(images.size(1) == idx_.height && images.size(2) == idx_.width &&
                images.size(3) == idx_.channels,
            "split '" + split + "' has images of another shape than the first split", "");
  // Per-channel sums for the index's mean/std, in int64 (exact), 256 images at a time so the
  // widened copy stays small whatever the shard size.
  const bool stats = split == stats_split_;
  for (int64_t b = 0; b < images.size(0); b += 256) {
    auto px = images.narrow(0, b, std::min<int64_t>(256, images.size(0) - b))
                  .reshape({-1, idx_.channels}).to(torch::kLong);
    auto s = px.sum(0), s2 = (px * px).sum(0);
    auto add = [&](PixelSums& p) {
      for (int64_t c = 0; c < idx_.channels; ++c)
        p.sum[c] += s[c].item<int64_t>(), p.sumsq[c] += s2[c].item<int64_t>();
      p.pixels += px.size(0);
    };
    add(all_);
    if (stats) add(stats_);
  }

  char numbers[64];  // the split's name goes in whole, however long
  std::snprintf(numbers, sizeof numbers, "-%05lld-of-%05lld.h5", (long long)i, (long long)n);
  const std::string file = split + numbers;
  ShardMeta meta{idx_.num_classes, idx_.class_names, split, idx_.source};
  const std::string path = (fs::path(shard_dir_) / file).string();
  write_shard(path, images, labels, meta);  // fsync'd: on disk before an index can name it
  idx_.shards.push_back({split, file, images.size(0), hex32(shard_crc32(images, labels))});
}

void DatasetWriter::remove_other_shards() const {
  // Shards of a split this conversion wrote, from the dataset replaced here (or a conversion that
  // stopped half-way), that no new one overwrote (fewer shards). Only files named like shards that
  // open as one. Other splits' shards stay: converting one split into a folder that held another
  // (shardify folder --split) must not delete hours of conversion; they leave the index.
  static const std::regex kShardName(R"((.+)-[0-9]{5}-of-[0-9]{5}\.h5)");
  std::set<std::string> written;
  for (const auto& e : idx_.shards) written.insert(e.split);
  for (const auto& split : replaced_splits_)
    if (!written.count(split))
      log::warn("{}: the replaced index.toml listed split '{}', which this conversion does not "
                "write: its shard files stay, outside the new index (convert every split "
                "together, or into another folder)", out_dir_, split);
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(out_dir_)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!entry.is_regular_file() || !std::regex_match(name, m, kShardName) || !written.count(m[1].str()) ||
        std::any_of(idx_.shards.begin(), idx_.shards.end(), [&](const auto& e) { return e.file == name; }))
      continue;
    try {
      ShardReader check(entry.path().string());
      stale.push_back(entry.path());
    } catch (const Error&) {  // not one of ours, or damaged: left alone
    }
  }
  size_t removed = 0;
  for (const auto& path : stale) {
    std::error_code ec;
    removed += fs::remove(path, ec) ? 1 : 0;
  }
  if (removed > 0) log::info("{}: removed {} shard file(s) of the dataset replaced", out_dir_, removed);
}

DatasetIndex DatasetWriter::finish() {
  ODY_CHECK(!idx_.shards.empty(), "DatasetWriter: no shards written to '" + out_dir_ + "'", "");
  const PixelSums& sums = stats_.pixels > 0 ? stats_ : all_;
  const double n = static_cast<double>(sums.pixels);
  idx_.mean.clear(), idx_.std.clear();
  for (int64_t c = 0; c < idx_.channels; ++c) {  // levels / 255: [0, 1] units
    double m = sums.sum[c] / (255.0 * n);
    double var = sums.sumsq[c] / (255.0 * 255.0 * n) - m * m;
    const double sd = std::sqrt(std::max(var, 0.0));
    idx_.mean.push_back(m);
    // A constant channel (std under a quarter of a level) would divide by ~0 in normalisation
    // and is refused by read_index: std 1 makes normalisation subtract the mean only.
    idx_.std.push_back(sd < 1e-3 ? 1.0 : sd);
    if (sd < 1e-3)
      log::warn("{}: channel {} has the same value in every image (std {:.2g}): index.toml gets "
                "std 1 for it (normalisation subtracts the mean only)", out_dir_, c, sd);
  }
  if (shard_dir_ != out_dir_)
    move_staged_shards();  // the index too
  else
    write_index(out_dir_, idx_);
  finished_ = true;
  remove_other_shards();
  return idx_;
}

void DatasetWriter::move_staged_shards() {
  // The new index goes into the staging folder first (the next conversion completes a move that
  // was killed half-way from it), then the old index: from here until the new one is in place the
  // folder holds no dataset a reader would take (rather than an index over a mix of old and new
  // shards).
  write_index(shard_dir_, idx_);
  moving_ = true;
  fs::remove(fs::path(out_dir_) / "index.toml");
  fsync_path(out_dir_, /*directory=*/true);
  move_dataset_in(shard_dir_, out_dir_, idx_);
  std::error_code ec;
  fs::remove_all(shard_dir_, ec);
  shard_dir_ = out_dir_;
}

DatasetWriter::~DatasetWriter() {
  if (finished_ || moving_ || shard_dir_ == out_dir_) return;
  std::error_code ec;  // a conversion that stopped: the dataset there is unchanged
  fs::remove_all(shard_dir_, ec);
  log::warn("{}: the conversion stopped before it completed; the dataset there is unchanged", out_dir_);
}

DatasetIndex write_dataset(const std::string& out_dir, const std::string& name,
                           const std::string& source, const std::vector<std::string>& class_names,
                           const std::vector<SplitData>& splits) {
  ODY_CHECK(!splits.empty(), "write_dataset: no splits", "");
  std::string stats_split = splits.front().name;
  for (const auto& s : splits)
    if (s.name == "train") stats_split = s.name;
  DatasetWriter writer(out_dir, name, source, class_names, stats_split);
  for (const auto& s : splits) {
    const int64_t n = s.images.size(0);
    const int64_t shards = std::max<int64_t>(1, std::min(s.shards, n));
    for (int64_t i = 0; i < shards; ++i) {
      int64_t begin = n * i / shards, end = n * (i + 1) / shards;
      writer.add_shard(s.name, i, shards, s.images.narrow(0, begin, end - begin),
                       s.labels.narrow(0, begin, end - begin));
    }
  }
  return writer.finish();
}

std::vector<std::string> verify_dataset(const std::string& dir) {
  std::vector<std::string> problems;
  DatasetIndex idx = read_index(dir);
  for (const auto& e : idx.shards) {
    std::string path = (fs::path(dir) / e.file).string();
    try {
      ShardReader r(path);
      if (r.size() != e.samples)
        problems.push_back(path + ": /images holds " + std::to_string(r.size()) +
                           " samples, index.toml says " + std::to_string(e.samples));
      if (r.height() != idx.height || r.width() != idx.width || r.channels() != idx.channels)
        problems.push_back(path + ": /images shape differs from index.toml");
      if (r.num_classes() != idx.num_classes)
        problems.push_back(path + ": attribute num_classes is " + std::to_string(r.num_classes()) +
                           ", index.toml says " + std::to_string(idx.num_classes));
      auto images = torch::empty({r.size(), r.height(), r.width(), r.channels()}, torch::kByte);
      r.read(0, r.size(), images.data_ptr<uint8_t>());
      std::string crc = hex32(shard_crc32(images, r.labels()));
      if (!e.crc32.empty() && crc != e.crc32)
        problems.push_back(path + ": CRC-32 " + crc + " differs from index.toml's " + e.crc32);
    } catch (const Error& err) {
      problems.push_back(err.message());
    }
  }
  return problems;
}

}  // namespace odyssey
