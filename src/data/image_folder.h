// Image-folder collections (ImageNet-style): one subfolder per class holding JPEG/PNG files,
// either directly (SRC/<class>/...: one split) or under split folders (SRC/train/<class>/...,
// SRC/val/<class>/...). Converted into shards at one square size, decoded in parallel, one
// shard in memory at a time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/dataset_index.h"
#include "data/image_decode.h"

namespace odyssey {

struct FolderSplit {
  std::string name;
  std::vector<std::string> files;  // sorted by class, then by file name
  std::vector<int64_t> labels;
};

struct FolderTree {
  std::vector<std::string> class_names;  // sorted union of the class folders of every split
  std::vector<FolderSplit> splits;       // "train" first when present
  std::map<std::string, int64_t> ignored;  // files in class folders not read, by extension
};

// Lists SRC: split folders are recognised when every subfolder of SRC holds only folders; else
// SRC's subfolders are the classes of one split named single_split. Files ending in .jpg, .jpeg
// or .png (any case) count; others are left out and counted by their lower-case extension
// ("(none)" without one), for the caller's warning (a .webp share of a class is lost). Errors
// name the folder (missing, no classes, a class without images).
FolderTree scan_image_folder(const std::string& src, const std::string& single_split = "train");

struct FolderOptions {
  int64_t size = 256;                 // side of the stored square images
  ResizeMode resize = ResizeMode::kCrop;
  int64_t shard_samples = 5000;       // images per shard
  int threads = 0;                    // decoding threads (0 = the machine's cores)
  bool skip_bad = false;              // skip (and count) undecodable files instead of failing
  uint64_t shuffle_seed = 0;          // 0 = keep class order in the shards; else a fixed shuffle
  bool progress = true;               // progress lines (a bar on a terminal) on stderr
};

struct FolderResult {
  DatasetIndex index;
  int64_t skipped = 0;
  std::vector<std::string> skipped_files;  // the first few, for the message
};

FolderResult convert_image_folder(const std::string& src, const std::string& out_dir,
                                  const std::string& name, const FolderTree& tree,
                                  const FolderOptions& options);

}  // namespace odyssey
