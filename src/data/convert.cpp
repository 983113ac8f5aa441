#include "data/convert.h"

#include <torch/torch.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>

#include "common/error.h"
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
std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}
}  // namespace

DatasetIndex write_dataset(const std::string& out_dir, const std::string& name,
                           const std::string& source, const std::vector<std::string>& class_names,
                           const std::vector<SplitData>& splits) {
  ODY_CHECK(!splits.empty(), "write_dataset: no splits", "");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  ODY_CHECK(!ec, "cannot create output folder '" + out_dir + "': " + ec.message(), "");
  DatasetIndex idx;
  idx.name = name;
  idx.source = source;
  idx.num_classes = static_cast<int64_t>(class_names.size());
  idx.class_names = class_names;
  const auto& first = splits.front().images;
  idx.height = first.size(1), idx.width = first.size(2), idx.channels = first.size(3);

  const SplitData* stats_split = &splits.front();
  for (const auto& s : splits)
    if (s.name == "train") stats_split = &s;
  // Per-channel mean/std in [0, 1] units, in float64 over the whole split.
  auto px = stats_split->images.reshape({-1, idx.channels}).to(torch::kDouble).div_(255.0);
  auto mean = px.mean(0), stdv = px.std(0, /*unbiased=*/false);
  for (int64_t c = 0; c < idx.channels; ++c) {
    idx.mean.push_back(mean[c].item<double>());
    idx.std.push_back(stdv[c].item<double>());
  }

  for (const auto& s : splits) {
    ODY_CHECK(s.images.size(1) == idx.height && s.images.size(2) == idx.width &&
                  s.images.size(3) == idx.channels,
              "split '" + s.name + "' has images of another shape than the first split", "");
    const int64_t n = s.images.size(0);
    const int64_t shards = std::max<int64_t>(1, std::min(s.shards, n));
    ShardMeta meta{idx.num_classes, class_names, s.name, source};
    for (int64_t i = 0; i < shards; ++i) {
      int64_t begin = n * i / shards, end = n * (i + 1) / shards;
      auto images = s.images.narrow(0, begin, end - begin);
      auto labels = s.labels.narrow(0, begin, end - begin);
      char file[96];
      std::snprintf(file, sizeof file, "%s-%05lld-of-%05lld.h5", s.name.c_str(), (long long)i,
                    (long long)shards);
      write_shard((fs::path(out_dir) / file).string(), images, labels, meta);
      idx.shards.push_back({s.name, file, end - begin, hex32(shard_crc32(images, labels))});
    }
  }
  write_index(out_dir, idx);
  return idx;
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
