// IDX readers: real files round trip, and bad magic / truncation / missing files name the file.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include "data/idx.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::error_of;
using odyssey::testing::TempDir;

namespace {

std::vector<unsigned char> be32(uint32_t v) {
  return {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
          static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
}

void write_gz(const std::string& path, const std::vector<unsigned char>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::vector<unsigned char> images_file(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols) {
  std::vector<unsigned char> out;
  for (uint32_t v : {magic, n, rows, cols}) {
    auto b = be32(v);
    out.insert(out.end(), b.begin(), b.end());
  }
  for (uint32_t i = 0; i < n * rows * cols; ++i) out.push_back(static_cast<unsigned char>(i * 7));
  return out;
}

}  // namespace

TEST(Idx, ImagesAndLabelsRoundTrip) {
  TempDir dir;
  write_gz(dir / "img.gz", images_file(0x803, 3, 4, 5));
  auto img = read_idx_images(dir / "img.gz");
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 4, 5, 1}));
  EXPECT_EQ(img[1][2][3][0].item<int>(), static_cast<unsigned char>((20 + 2 * 5 + 3) * 7));
  std::vector<unsigned char> labels = be32(0x801);
  auto n = be32(4);
  labels.insert(labels.end(), n.begin(), n.end());
  labels.insert(labels.end(), {3, 1, 4, 1});
  write_gz(dir / "lab.gz", labels);
  EXPECT_TRUE(torch::equal(read_idx_labels(dir / "lab.gz"), torch::tensor({3, 1, 4, 1}, torch::kLong)));
}

TEST(Idx, WrongMagicNamesFile) {
  TempDir dir;
  write_gz(dir / "img.gz", images_file(0x801, 1, 2, 2));
  std::string e = error_of([&] { read_idx_images(dir / "img.gz"); });
  EXPECT_NE(e.find("'" + (dir / "img.gz") + "' has magic number 0x801, expected 0x803"),
            std::string::npos)
      << e;
}

TEST(Idx, TruncatedDataNamesFile) {
  TempDir dir;
  auto bytes = images_file(0x803, 10, 28, 28);
  bytes.resize(bytes.size() - 100);
  write_gz(dir / "short.gz", bytes);
  std::string e = error_of([&] { read_idx_images(dir / "short.gz"); });
  EXPECT_NE(e.find("'" + (dir / "short.gz") + "' ends early while reading the images"),
            std::string::npos)
      << e;
}

TEST(Idx, ADamagedCountEndsEarlyNotInAnAllocationOfTerabytes) {
  // 0x7fffffff images of 28x28 declared, 10 present: 1.7 TB were asked of the allocator.
  TempDir dir;
  auto bytes = images_file(0x803, 10, 28, 28);
  auto n = be32(0x7fffffff);
  std::copy(n.begin(), n.end(), bytes.begin() + 4);
  write_gz(dir / "count.gz", bytes);
  std::string e = error_of([&] { read_idx_images(dir / "count.gz"); });
  EXPECT_NE(e.find("'" + (dir / "count.gz") + "' ends early while reading the images"), std::string::npos) << e;
}

TEST(Idx, TruncatedGzipStreamNamesFile) {
  TempDir dir;
  write_gz(dir / "full.gz", images_file(0x803, 50, 28, 28));
  auto size = std::filesystem::file_size(dir / "full.gz");
  std::filesystem::copy_file(dir / "full.gz", dir / "cut.gz");
  std::filesystem::resize_file(dir / "cut.gz", size / 2);
  std::string e = error_of([&] { read_idx_images(dir / "cut.gz"); });
  EXPECT_NE(e.find("'" + (dir / "cut.gz") + "' ends early"), std::string::npos) << e;
}

TEST(Idx, MissingFile) {
  std::string e = error_of([] { read_idx_labels("/nonexistent/labels.gz"); });
  EXPECT_NE(e.find("'/nonexistent/labels.gz' does not exist"), std::string::npos) << e;
}
