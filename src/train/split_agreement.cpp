#include "train/split_agreement.h"

#include <torch/torch.h>

#include <vector>

#include "common/error.h"
#include "dist/agreement.h"

namespace odyssey {

std::unique_ptr<SplitReader> open_agreed_split(Communicator& comm, const std::string& dir,
                                               const DatasetIndex& index, const std::string& split,
                                               int64_t limit, int64_t cache_bytes, bool skip_corrupt) {
  // Each reader is opened in an agreement of its own: it can fail on some ranks only (no readable
  // shard in one node's copy), and the rounds below are collectives.
  std::unique_ptr<SplitReader> reader;
  agree(comm, [&] {
    reader = std::make_unique<SplitReader>(dir, index, split, limit, cache_bytes, skip_corrupt);
  });
  if (!skip_corrupt || comm.size() == 1) return reader;
  const auto n = static_cast<int64_t>(index.split(split).size());
  std::vector<bool> exclude(static_cast<size_t>(n));
  // In rounds: with a sample limit a rank opens only the shards it needs, so leaving out one
  // shard brings in a later one that some rank may not read either. Each round that rereads
  // leaves out at least one more shard, so this ends within n rounds.
  for (;;) {
    // Which of the split's shards each rank left out, summed over ranks.
    auto left_out = torch::zeros({n}, torch::kLong);
    for (const int64_t i : reader->skipped_positions()) left_out[i] = 1;
    comm.allreduce_sum(left_out);
    bool disagree = false, grown = false;  // a shard some ranks, not all, left out; a new one
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ranks = left_out[i].item<int64_t>();
      disagree = disagree || (ranks > 0 && ranks < comm.size());
      if (ranks > 0 && !exclude[static_cast<size_t>(i)]) exclude[static_cast<size_t>(i)] = grown = true;
    }
    if (!disagree || !grown) break;
    reader.reset();  // one copy of a cached split at a time
    agree(comm, [&] {
      reader = std::make_unique<SplitReader>(dir, index, split, limit, cache_bytes, skip_corrupt, exclude);
    });
  }
  // Every rank indexes the same samples: the same count, at least.
  const int64_t size = reader->size();
  const int64_t fewest = comm.allreduce_min(size);   // both collectives on every rank
  const int64_t most = -comm.allreduce_min(-size);
  ODY_CHECK(fewest == most,
            "the ranks read different numbers of samples from split '" + split + "' of '" + dir +
                "' after leaving out the shards any rank cannot read",
            "run `shardify verify` on each node's copy of the data set");
  return reader;
}

}  // namespace odyssey
