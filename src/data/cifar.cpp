#include "data/cifar.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/file.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kSide = 32, kPlane = kSide * kSide, kImageBytes = 3 * kPlane;

std::vector<uint8_t> read_bytes(const std::string& path) {
  ODY_CHECK(fs::is_regular_file(path), "CIFAR file '" + path + "' does not exist",
            "point shardify cifar at the unpacked cifar-10-batches-bin or cifar-100-binary folder");
  return read_file_bytes(path, "CIFAR file");
}

// Class names: one per non-empty line.
std::vector<std::string> read_names(const std::string& path, int64_t expected) {
  std::vector<std::string> names;
  if (fs::is_regular_file(path)) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    ODY_CHECK(static_cast<int64_t>(names.size()) == expected,
              ODY_MSG("'" << path << "' names " << names.size() << " classes, expected "
                          << expected),
              "");
  } else {  // the names file is optional: fall back to the label numbers
    for (int64_t i = 0; i < expected; ++i) names.push_back(std::to_string(i));
  }
  return names;
}

}  // namespace

SplitData read_cifar_file(const std::string& path, int label_bytes, int label_offset,
                          int64_t num_classes) {
  std::vector<uint8_t> raw = read_bytes(path);
  const int64_t record = label_bytes + kImageBytes;
  const int64_t bytes = static_cast<int64_t>(raw.size());
  ODY_CHECK(bytes > 0 && bytes % record == 0,
            ODY_MSG("CIFAR file '" << path << "' has " << bytes << " bytes, not a whole number of "
                                   << record << "-byte records"),
            "the file is truncated or is not a CIFAR binary file");
  const int64_t n = bytes / record;
  SplitData out;
  out.images = torch::empty({n, kSide, kSide, 3}, torch::kByte);
  out.labels = torch::empty({n}, torch::kLong);
  auto* img = out.images.data_ptr<uint8_t>();
  auto* lab = out.labels.data_ptr<int64_t>();
  const uint8_t* p = raw.data();
  for (int64_t i = 0; i < n; ++i, p += record) {
    lab[i] = p[label_offset];
    ODY_CHECK(lab[i] < num_classes,
              ODY_MSG("CIFAR file '" << path << "' record " << i << " has label " << lab[i]
                                     << ", beyond the " << num_classes << " classes"),
              "is this a CIFAR-100 file read as CIFAR-10?");
    const uint8_t* planes = p + label_bytes;
    uint8_t* dst = img + i * kImageBytes;
    for (int64_t k = 0; k < kPlane; ++k)  // planar RGB -> interleaved HWC
      for (int64_t c = 0; c < 3; ++c) dst[k * 3 + c] = planes[c * kPlane + k];
  }
  return out;
}

CifarData read_cifar(const std::string& src_dir, bool coarse) {
  fs::path src(src_dir);
  ODY_CHECK(fs::is_directory(src), "CIFAR folder '" + src_dir + "' does not exist", "");
  CifarData out;
  auto cat = [](std::vector<SplitData> parts, const std::string& name, int64_t shards) {
    std::vector<torch::Tensor> im, la;
    for (auto& p : parts) im.push_back(p.images), la.push_back(p.labels);
    return SplitData{name, torch::cat(im), torch::cat(la), shards};
  };
  if (fs::exists(src / "train.bin") || fs::exists(src / "fine_label_names.txt")) {
    out.name = "cifar-100";
    const int64_t classes = coarse ? 20 : 100;
    const int offset = coarse ? 0 : 1;
    out.class_names = read_names(
        (src / (coarse ? "coarse_label_names.txt" : "fine_label_names.txt")).string(), classes);
    for (const char* split : {"train", "test"})
      out.splits.push_back(cat({read_cifar_file((src / (std::string(split) + ".bin")).string(),
                                                2, offset, classes)},
                               split, 1));
  } else {
    ODY_CHECK(!coarse, "--coarse applies to CIFAR-100 only ('" + src_dir + "' has no train.bin)",
              "");
    out.name = "cifar-10";
    out.class_names = read_names((src / "batches.meta.txt").string(), 10);
    std::vector<SplitData> train;
    for (int b = 1; b <= 5; ++b)
      train.push_back(
          read_cifar_file((src / ("data_batch_" + std::to_string(b) + ".bin")).string(), 1, 0, 10));
    out.splits.push_back(cat(std::move(train), "train", 1));
    out.splits.push_back(
        cat({read_cifar_file((src / "test_batch.bin").string(), 1, 0, 10)}, "test", 1));
  }
  return out;
}

}  // namespace odyssey
