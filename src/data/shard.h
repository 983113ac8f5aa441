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

// Writes images (uint8 [N,H,W,C]) and labels (int64 [N]) to path, chunked along N; flushed,
// fsync'd and closed, each checked, before it returns.
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

  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  // Reads samples [start, start + count) into out (uint8 [count,H,W,C], contiguous). Safe to call
  // from several threads: an unfiltered /images (contiguous, or chunked along N only, as shardify
  // writes it) is read with pread at the file offsets HDF5 reports, without the HDF5 lock; other
  // layouts go through H5Dread under the lock.
  void read(int64_t start, int64_t count, uint8_t* out) const;
  bool direct() const { return fd_ >= 0; }

 private:
  void open_locked();        // the constructor's work, under the HDF5 lock
  void plan_direct_reads();  // fills extents_ and opens fd_ when the layout allows

  // One stored piece of /images: samples [first, first + samples) at byte offset addr.
  struct Extent {
    int64_t first, samples;
    uint64_t addr;
  };
  std::vector<Extent> extents_;  // sorted by first; cover [0, size_) when fd_ >= 0
  int fd_ = -1;
  std::string path_;
  h5::Handle file_, images_;
  int64_t size_ = 0, h_ = 0, w_ = 0, c_ = 0, num_classes_ = 0;
  torch::Tensor labels_;
};

}  // namespace odyssey
