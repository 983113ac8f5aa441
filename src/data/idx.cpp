#include "data/idx.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <vector>

#include "common/error.h"

namespace odyssey {

namespace {

class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    ODY_CHECK(std::filesystem::exists(path), "IDX file '" + path + "' does not exist",
              "install Debian's dataset-fashion-mnist or pass the folder holding the .gz files");
    f_ = gzopen(path.c_str(), "rb");
    ODY_CHECK(f_ != nullptr, "cannot open IDX file '" + path + "'", "check its permissions");
  }
  ~GzFile() {
    if (f_) gzclose(f_);
  }
  // Reads exactly n bytes or throws naming the file.
  void read(void* buf, size_t n, const char* what) {
    size_t got = 0;
    while (got < n) {
      int chunk = static_cast<int>(std::min<size_t>(n - got, 1 << 30));
      int r = gzread(f_, static_cast<char*>(buf) + got, chunk);
      if (r <= 0) {
        int errnum = 0;
        const char* msg = gzerror(f_, &errnum);
        ODY_FAIL(ODY_MSG("IDX file '" << path_ << "' ends early while reading " << what << " ("
                                      << got << " of " << n << " bytes"
                                      << (errnum != Z_OK && msg ? std::string("; ") + msg : "")
                                      << ")"),
                 "the file is truncated or damaged; download or install it again");
      }
      got += r;
    }
  }
  // `bytes` bytes as a uint8 tensor of `sizes`, read in 64 MiB pieces: a header's count is
  // trusted only as far as the file holds data, so a damaged count ends with "ends early", not a
  // request for terabytes of memory.
  torch::Tensor read_tensor(at::IntArrayRef sizes, int64_t bytes, const char* what) {
    auto data = std::make_unique<std::vector<uint8_t>>();
    constexpr int64_t kPiece = int64_t{64} << 20;
    while (static_cast<int64_t>(data->size()) < bytes) {
      const size_t at = data->size();
      const size_t k = static_cast<size_t>(std::min<int64_t>(kPiece, bytes - static_cast<int64_t>(at)));
      data->resize(at + k);
      read(data->data() + at, k, what);
    }
    uint8_t* p = data->data();
    auto* owner = data.release();
    return torch::from_blob(p, sizes, [owner](void*) { delete owner; }, torch::kByte);
  }
  uint32_t read_be32(const char* what) {
    std::array<unsigned char, 4> b{};
    read(b.data(), 4, what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
  }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

void check_magic(uint32_t magic, uint32_t expected, const std::string& path) {
  ODY_CHECK(magic == expected,
            ODY_MSG("IDX file '" << path << "' has magic number 0x" << std::hex << magic
                                 << ", expected 0x" << expected << " ("
                                 << (expected == 0x803 ? "images" : "labels") << ")"),
            "is this the right file (images vs labels) and an IDX file at all?");
}

}  // namespace

torch::Tensor read_idx_images(const std::string& path) {
  GzFile f(path);
  check_magic(f.read_be32("the magic number"), 0x803, path);
  int64_t n = f.read_be32("the header"), rows = f.read_be32("the header"),
          cols = f.read_be32("the header");
  ODY_CHECK(rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536,
            ODY_MSG("IDX file '" << path << "' declares images of " << rows << "x" << cols), "");
  return f.read_tensor({n, rows, cols, 1}, n * rows * cols, "the images");
}

torch::Tensor read_idx_labels(const std::string& path) {
  GzFile f(path);
  check_magic(f.read_be32("the magic number"), 0x801, path);
  int64_t n = f.read_be32("the header");
  return f.read_tensor({n}, n, "the labels").to(torch::kLong);
}

}  // namespace odyssey
