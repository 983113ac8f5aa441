// SplitReader: one split of a dataset (its shards in index order) as one array of samples,
// with batched gathers that read contiguous runs per shard, not one call per image.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <mutex>
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
  // labels out of range) is left out and listed in skipped() instead of stopping. exclude: the
  // split's shards (by position in the index) to leave out unopened, as skipped, e.g. those
  // another rank could not read (train/split_agreement.h makes every rank leave out the same).
  SplitReader(const std::string& dir, const DatasetIndex& index, const std::string& split,
              int64_t limit = 0, int64_t cache_bytes = 0, bool skip_corrupt = false,
              const std::vector<bool>& exclude = {});
  bool cached() const { return cache_.defined(); }
  // The shards left out (their error messages) and the samples the index gave them.
  const std::vector<std::string>& skipped() const { return skipped_; }
  int64_t skipped_samples() const { return skipped_samples_; }
  // Their positions among the split's shards in the index, ascending.
  const std::vector<int64_t>& skipped_positions() const { return skipped_positions_; }

  int64_t size() const { return size_; }
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }
  int64_t channels() const { return c_; }
  const torch::Tensor& labels() const { return labels_; }  // int64 [size]

  // Streaming splits: gather through a buffer of `capacity` blocks of `block` consecutive samples,
  // each read whole (contiguous reads) and kept until the least recently used is replaced. For
  // the block shuffles (data.shuffle = "block", "block_per_rank"): batches from a window of blocks.
  void use_block_buffer(int64_t block, int64_t capacity);
  // Blocks read so far through the buffer (a block read again after eviction counts again).
  int64_t blocks_read() const;

  // Images of the given sample indices, in that order: uint8 [B,H,W,C].
  torch::Tensor gather_images(const std::vector<int64_t>& indices) const;
  torch::Tensor gather_labels(const std::vector<int64_t>& indices) const;

 private:
  std::vector<std::unique_ptr<ShardReader>> shards_;
  std::vector<int64_t> starts_;  // global index of each shard's first sample
  int64_t size_ = 0, h_ = 0, w_ = 0, c_ = 0;
  torch::Tensor labels_;
  torch::Tensor cache_;  // uint8 [size, H, W, C] when the split is held in memory
  void check_index(int64_t index) const;  // throws naming an index outside [0, size)
  // Reads samples [first, first + count) (across shard boundaries) into dst.
  void read_range(int64_t first, int64_t count, uint8_t* dst) const;
  std::shared_ptr<const std::vector<uint8_t>> block_data(int64_t block) const;

  int64_t block_ = 0, block_capacity_ = 0;
  mutable std::mutex block_mu_;
  mutable std::map<int64_t, std::pair<std::shared_ptr<const std::vector<uint8_t>>, uint64_t>> blocks_;
  mutable uint64_t block_clock_ = 0;
  mutable int64_t blocks_read_ = 0;
  std::vector<std::string> skipped_;
  std::vector<int64_t> skipped_positions_;
  int64_t skipped_samples_ = 0;
};

}  // namespace odyssey
