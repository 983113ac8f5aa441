// CIFAR-10 and CIFAR-100 in their binary distribution (cifar-10-batches-bin, cifar-100-binary):
// records of label byte(s) then 3072 bytes, the 32x32 red, green and blue planes in row order.
#pragma once

#include <string>
#include <vector>

#include "data/convert.h"

namespace odyssey {

struct CifarData {
  std::string name;                      // "cifar-10" or "cifar-100"
  std::vector<std::string> class_names;  // from batches.meta.txt / fine_label_names.txt
  std::vector<SplitData> splits;         // "train" and "test", images uint8 [N,32,32,3]
};

// Reads SRC_DIR: CIFAR-10 when it holds data_batch_1.bin .. data_batch_5.bin and test_batch.bin,
// CIFAR-100 when it holds train.bin and test.bin (fine labels, or the 20 coarse ones with coarse).
// Errors name the file: missing, a size that is not a whole number of records, a label out of
// range.
CifarData read_cifar(const std::string& src_dir, bool coarse = false);

// One binary file: records of `label_bytes` label bytes (the label is the byte at label_offset)
// and 3072 image bytes. Returns images uint8 [N,32,32,3] and labels int64 [N].
SplitData read_cifar_file(const std::string& path, int label_bytes, int label_offset,
                          int64_t num_classes);

}  // namespace odyssey
