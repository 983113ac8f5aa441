// The data splits every rank trains and evaluates on, agreed across ranks: with
// data.on_corrupt = "skip", a shard one rank cannot read (missing or damaged on one node's copy
// of the data set) is left out by every rank, so all ranks index the same samples and take the
// same number of steps (each rank deciding alone gave overlapping batches, or ranks in different
// collectives until the watchdog ended the job).
#pragma once

#include <memory>
#include <string>

#include "data/dataset_index.h"
#include "data/split_reader.h"
#include "dist/communicator.h"

namespace odyssey {

// SplitReader(dir, index, split, limit, cache_bytes, skip_corrupt) on every rank of comm (a
// collective when skip_corrupt and comm has several ranks): the shards any rank left out are
// left out on all, listed in skipped() with the reason.
std::unique_ptr<SplitReader> open_agreed_split(Communicator& comm, const std::string& dir,
                                               const DatasetIndex& index, const std::string& split,
                                               int64_t limit, int64_t cache_bytes, bool skip_corrupt);

}  // namespace odyssey
