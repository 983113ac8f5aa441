// Converters into the shard format: a dataset in memory -> shards + index.toml; and verification
// of a converted folder against its index.
#pragma once

#include <torch/types.h>

#include <set>
#include <string>
#include <vector>

#include "data/dataset_index.h"

namespace odyssey {

struct SplitData {
  std::string name;       // "train", "test"
  torch::Tensor images;   // uint8 [N,H,W,C]
  torch::Tensor labels;   // int64 [N]
  int64_t shards = 1;
};

// Writes a dataset shard by shard, so a converter holds one shard in memory at a time: shards go
// to <split>-<i>-of-<n>.h5 (each fsync'd), the pixels of stats_split (the training split) are
// summed for the per-channel mean/std, and finish() writes index.toml. Into a folder holding a
// dataset: the new shards go to its kStagingFolder until finish(), which then replaces the old
// index and shards with them (moved, no copy) and removes the shard files of the splits it wrote
// that no new shard replaced (other splits' files stay, with a warning). A conversion that stops
// before finish() (an error, a kill) leaves the old dataset as it was; the staging folder goes
// with the writer, or with the next conversion into that folder.
class DatasetWriter {
 public:
  static constexpr const char* kStagingFolder = ".shardify-staging";
  DatasetWriter(std::string out_dir, std::string name, std::string source,
                std::vector<std::string> class_names, std::string stats_split = "train");
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;
  // Shard i of n of a split: images uint8 [N,H,W,C] (every shard the same H, W, C), labels [N].
  void add_shard(const std::string& split, int64_t i, int64_t n, const torch::Tensor& images,
                 const torch::Tensor& labels);
  // Writes index.toml (mean/std of stats_split, or of every shard when no shard belonged to it).
  DatasetIndex finish();

 private:
  void remove_other_shards() const;
  void move_staged_shards();  // finish(), replacing a dataset: the staged shards into out_dir_

  std::string out_dir_;
  std::string shard_dir_;  // where add_shard writes: out_dir_, or its staging folder
  bool finished_ = false;
  bool moving_ = false;  // move_staged_shards began: the staging folder is kept on an error
  DatasetIndex idx_;
  std::string stats_split_;
  // Exact per-channel sums of the 0..255 levels and of their squares, and the pixel count.
  struct PixelSums {
    std::vector<int64_t> sum, sumsq;
    int64_t pixels = 0;
  };
  PixelSums stats_, all_;  // of stats_split, of every shard
  std::set<std::string> replaced_splits_;  // the splits of an index.toml this one replaces
};

// Writes every split as `shards` files <split>-<i>-of-<n>.h5 into out_dir and the index with
// per-channel mean/std of the "train" split (or the first split). Returns the index.
DatasetIndex write_dataset(const std::string& out_dir, const std::string& name,
                           const std::string& source, const std::vector<std::string>& class_names,
                           const std::vector<SplitData>& splits);

// CRC-32 of a shard's content: the images' bytes, then the labels' (int64) bytes.
uint32_t shard_crc32(const torch::Tensor& images, const torch::Tensor& labels);

// Re-reads every shard of dir and checks it against index.toml (count, shape, labels, CRC-32).
// Returns a list of problems (empty when all is well).
std::vector<std::string> verify_dataset(const std::string& dir);

}  // namespace odyssey
