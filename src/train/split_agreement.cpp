#include "train/split_agreement.h"

#include <torch/torch.h>

#include <vector>

namespace odyssey {

std::unique_ptr<SplitReader> open_agreed_split(Communicator& comm, const std::string& dir,
                                               const DatasetIndex& index, const std::string& split,
                                               int64_t limit, int64_t cache_bytes, bool skip_corrupt) {
  auto reader = std::make_unique<SplitReader>(dir, index, split, limit, cache_bytes, skip_corrupt);
  if (!skip_corrupt || comm.size() == 1) return reader;
  // Which of the split's shards each rank left out, summed over ranks.
  const auto n = static_cast<int64_t>(index.split(split).size());
  auto left_out = torch::zeros({n}, torch::kLong);
  for (const int64_t i : reader->skipped_positions()) left_out[i] = 1;
  comm.allreduce_sum(left_out);
  std::vector<bool> exclude(static_cast<size_t>(n));
  bool disagree = false;  // a shard some ranks, not all, left out
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ranks = left_out[i].item<int64_t>();
    exclude[static_cast<size_t>(i)] = ranks > 0;
    disagree = disagree || (ranks > 0 && ranks < comm.size());
  }
  if (!disagree) return reader;
  return std::make_unique<SplitReader>(dir, index, split, limit, cache_bytes, skip_corrupt, exclude);
}

}  // namespace odyssey
