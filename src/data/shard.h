// Shard files: one HDF5 file holding /images uint8 [N,H,W,C] and /labels int64 [N] plus the
// attributes of DESIGN.md. ShardReader is the only code that reads shard data.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "common/h5.h"

namespace odyssey {

inline constexpr const char* kShardFormat = "odyssey-shard";
inline constexpr int64_t kShardFormatVersion = 1;

struct ShardMeta {
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  std::string split;   // "train", "test", ...
  std::string source;  // where the samples came from
};

// Writes images (uint8 [N,H,W,C]) and labels (int64 [N]) to path, chunked along N.
void write_shard(const std::string& path, const torch::Tensor& images, const torch::Tensor& labels,
                 const ShardMeta& meta, int64_t chunk_samples = 1024);

class ShardReader {
 public:
  // Opens and validates the shard: format attribute, dataset shapes, label range.
  explicit ShardReader(const std::string& path);

  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }
  int64_t channels() const { return c_; }
  int64_t num_classes() const { return num_classes_; }
  const torch::Tensor& labels() const { return labels_; }  // all labels, read at open

  // Reads samples [start, start + count) into out (uint8 [count,H,W,C], contiguous).
  void read(int64_t start, int64_t count, uint8_t* out) const;

 private:
  std::string path_;
  h5::Handle file_, images_;
  int64_t size_ = 0, h_ = 0, w_ = 0, c_ = 0, num_classes_ = 0;
  torch::Tensor labels_;
};

}  // namespace odyssey
