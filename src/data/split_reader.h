// SplitReader: one split of a dataset (its shards in index order) as one array of samples,
// with batched gathers that read contiguous runs per shard, not one call per image.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset_index.h"
#include "data/shard.h"

namespace odyssey {

class SplitReader {
 public:
  // Opens every shard of the split and checks it against the index (sample count, shape,
  // classes). limit > 0 keeps only the first `limit` samples. A split of at most cache_bytes is
  // read into memory once (one HDF5 read per shard); larger splits stream from the shards.
  // With skip_corrupt, a shard that fails those checks (unreadable, truncated, another shape,
  // labels out of range) is left out and listed in skipped() instead of stopping; every rank
  // reading the same files leaves out the same shards.
  SplitReader(const std::string& dir, const DatasetIndex& index, const std::string& split,
              int64_t limit = 0, int64_t cache_bytes = 0, bool skip_corrupt = false);
  bool cached() const { return cache_.defined(); }
  // The shards left out (their error messages) and the samples the index gave them.
  const std::vector<std::string>& skipped() const { return skipped_; }
  int64_t skipped_samples() const { return skipped_samples_; }

  int64_t size() const { return size_; }
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }
  int64_t channels() const { return c_; }
  const torch::Tensor& labels() const { return labels_; }  // int64 [size]

  // Images of the given sample indices, in that order: uint8 [B,H,W,C].
  torch::Tensor gather_images(const std::vector<int64_t>& indices) const;
  torch::Tensor gather_labels(const std::vector<int64_t>& indices) const;

 private:
  std::vector<std::unique_ptr<ShardReader>> shards_;
  std::vector<int64_t> starts_;  // global index of each shard's first sample
  int64_t size_ = 0, h_ = 0, w_ = 0, c_ = 0;
  torch::Tensor labels_;
  torch::Tensor cache_;  // uint8 [size, H, W, C] when the split is held in memory
  std::vector<std::string> skipped_;
  int64_t skipped_samples_ = 0;
};

}  // namespace odyssey
