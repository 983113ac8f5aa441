// data.on_corrupt = "skip" across ranks: a shard damaged in one rank's copy of the data set only
// is left out by every rank, so all ranks index the same samples (train/split_agreement.h).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/exit_codes.h"
#include "data/convert.h"
#include "data/dataset_index.h"
#include "data/split_reader.h"
#include "dist/agreement.h"
#include "dist/communicator.h"
#include "train/split_agreement.h"

using namespace odyssey;
namespace fs = std::filesystem;

namespace {

// This rank's own copy of a split "train" of n 4x4 samples in `shards` shards (as on nodes with
// local copies of a data set), under a folder named for the test, the process and the rank.
struct RankCopy {
  fs::path dir;
  torch::Tensor images, labels;
  DatasetIndex index;
};
RankCopy rank_copy(const std::string& name, int rank, int64_t seed, int64_t n, int64_t shards) {
  RankCopy c;
  c.dir = fs::temp_directory_path() /
          ("odyssey-" + name + "-" + std::to_string(getpid()) + "-" + std::to_string(rank));
  torch::manual_seed(seed);
  c.images = torch::randint(0, 256, {n, 4, 4, 1}, torch::kByte);
  c.labels = torch::randint(0, 3, {n}, torch::kLong);
  write_dataset(c.dir.string(), "t", "split_agreement_test", {"a", "b", "c"},
                {{"train", c.images, c.labels, shards}});
  c.index = read_index(c.dir.string());
  return c;
}

// 0, 1, ..., size - 1: every sample of a reader.
std::vector<int64_t> every_position(const SplitReader& reader) {
  std::vector<int64_t> all(static_cast<size_t>(reader.size()));
  for (int64_t i = 0; i < reader.size(); ++i) all[static_cast<size_t>(i)] = i;
  return all;
}

}  // namespace

TEST(SplitAgreement, EveryRankLeavesOutTheShardsAnyRankCannotRead) {
  auto comm = make_communicator("mpi", true);
  // Each rank its own copy of a 5-shard split (as on nodes with local copies), one shard of which
  // (rank mod 4) is truncated in that copy only.
  const RankCopy copy = rank_copy("split-agreement", comm->rank(), 1, 50, 5);
  const fs::path& dir = copy.dir;
  const DatasetIndex& index = copy.index;
  const auto shards = index.split("train");
  ASSERT_EQ(shards.size(), 5u);
  fs::resize_file(dir / shards[comm->rank() % 4].file, 100);

  const SplitReader alone(dir.string(), index, "train", 0, 0, /*skip_corrupt=*/true);
  EXPECT_EQ(alone.skipped().size(), 1u);  // what this rank alone would leave out
  const auto reader = open_agreed_split(*comm, dir.string(), index, "train", 0, 0, true);
  const int64_t left_out = std::min(comm->size(), 4);
  EXPECT_EQ(static_cast<int64_t>(reader->skipped().size()), left_out);
  EXPECT_EQ(reader->skipped_samples(), 10 * left_out);
  ASSERT_EQ(reader->size(), 50 - 10 * left_out);
  if (comm->size() > 1) {
    const bool named = std::any_of(reader->skipped().begin(), reader->skipped().end(), [](const std::string& m) {
      return m.find("is left out: another rank cannot read it") != std::string::npos;
    });
    EXPECT_TRUE(named);
  }
  // The same samples on every rank: labels and images equal rank 0's.
  const auto all = every_position(*reader);
  auto mine = torch::cat({reader->gather_labels(all).to(torch::kLong),
                          reader->gather_images(all).to(torch::kLong).flatten()});
  auto root = mine.clone();
  comm->broadcast(root, 0);
  EXPECT_TRUE(torch::equal(mine, root));
  comm->barrier();
  fs::remove_all(dir);
}

TEST(SplitAgreement, WithASampleLimitTheShardsBroughtInAreAgreedToo) {
  auto comm = make_communicator("mpi", true);
  if (comm->size() < 2) GTEST_SKIP() << "needs 2+ ranks";
  // 4 shards of 10 samples, data limit 30. Rank 0's copy of shard 0 is damaged, the last rank's
  // copy of shard 3: rank 0 reads shards 1-3, the last rank 0-2 and never opens shard 3. Once
  // every rank leaves out shard 0, the last rank needs shard 3 and cannot read it: a second
  // round leaves it out everywhere (one round left the ranks with 30 and 20 samples).
  const RankCopy copy = rank_copy("split-limit", comm->rank(), 2, 40, 4);
  const fs::path& dir = copy.dir;
  const DatasetIndex& index = copy.index;
  const auto shards = index.split("train");
  ASSERT_EQ(shards.size(), 4u);
  if (comm->rank() == 0) fs::resize_file(dir / shards[0].file, 100);
  if (comm->rank() == comm->size() - 1) fs::resize_file(dir / shards[3].file, 100);
  const auto reader = open_agreed_split(*comm, dir.string(), index, "train", /*limit=*/30, 0, true);
  EXPECT_EQ(reader->size(), 20);
  EXPECT_EQ(reader->skipped().size(), 2u);
  const auto all = every_position(*reader);
  auto mine = reader->gather_labels(all).to(torch::kLong);
  EXPECT_TRUE(torch::equal(mine, copy.labels.narrow(0, 10, 20))) << "shards 1 and 2";
  comm->barrier();
  fs::remove_all(dir);
}

TEST(SplitAgreement, ASplitOneRankCannotOpenAtAllEndsSetupOnEveryRank) {
  auto comm = make_communicator("mpi", true);
  if (comm->size() < 2) GTEST_SKIP() << "needs 2+ ranks";
  // The last rank's copy has no readable shard: its reader throws before the first round, while
  // the others' go on to the round's collective (they waited there, or paired it with another).
  const RankCopy copy = rank_copy("split-none", comm->rank(), 3, 20, 2);
  const fs::path& dir = copy.dir;
  const DatasetIndex& index = copy.index;
  if (comm->rank() == comm->size() - 1)
    for (const auto& s : index.split("train")) fs::resize_file(dir / s.file, 100);
  int code = -1, rank = -1;
  try {
    open_agreed_split(*comm, dir.string(), index, "train", 0, 0, true);
  } catch (const AgreedFailure& f) {
    code = f.exit_code, rank = f.rank;
  }
  EXPECT_EQ(code, kExitUserError);
  EXPECT_EQ(rank, comm->size() - 1);
  // And nested in an outer agreement (the Trainer's constructor runs in one): the same verdict.
  code = -1;
  try {
    agree(*comm, [&] { open_agreed_split(*comm, dir.string(), index, "train", 0, 0, true); });
  } catch (const AgreedFailure& f) {
    code = f.exit_code;
  }
  EXPECT_EQ(code, kExitUserError);
  comm->barrier();
  fs::remove_all(dir);
}
