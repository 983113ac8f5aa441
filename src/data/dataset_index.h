// DatasetIndex: the dataset folder's index.toml (shards per split, counts, checksums, class names,
// per-channel mean/std), read, validated and written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace odyssey {

struct ShardEntry {
  std::string split;
  std::string file;  // relative to the dataset folder
  int64_t samples = 0;
  std::string crc32;  // of the images' and labels' bytes, hex
};

struct DatasetIndex {
  std::string name;
  std::string source;
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  int64_t height = 0, width = 0, channels = 0;
  std::vector<double> mean, std;  // per channel, in [0, 1] pixel units, of the train split
  std::vector<ShardEntry> shards;

  std::vector<ShardEntry> split(const std::string& name) const;
  int64_t split_size(const std::string& name) const;
  // The splits the shards name, in first-listed order, quoted and comma-separated: 'train', 'test'.
  std::string split_names() const;
};

inline constexpr const char* kIndexFile = "index.toml";

// Reads DIR/index.toml; errors name the file and the key.
DatasetIndex read_index(const std::string& dir);
void write_index(const std::string& dir, const DatasetIndex& index);

}  // namespace odyssey
