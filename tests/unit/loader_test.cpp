// The loader: several reader threads deliver the same batches in the same order as one; read
// errors reach next() at their step; shards are read with pread (shardify's layout and contiguous
// datasets) or through HDF5 (compressed), with the same bytes, from several threads at once; a
// bad shard stops the split, or is skipped and reported with data.on_corrupt = "skip".
#include <gtest/gtest.h>
#include <hdf5.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/h5.h"
#include "data/convert.h"
#include "data/epoch_plan.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/split_reader.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::error_of;
using odyssey::testing::TempDir;

namespace {

const std::vector<std::string> kClasses = {"a", "b", "c"};

DatasetIndex make_dataset(const std::string& dir, int64_t n, int64_t shards) {
  torch::manual_seed(11);
  SplitData train{"train", torch::randint(0, 256, {n, 5, 4, 3}, torch::kByte),
                  torch::randint(0, 3, {n}, torch::kLong), shards};
  return write_dataset(dir, "toy", "unit test", kClasses, {train});
}

// /images written with raw HDF5 calls: contiguous, or chunked with deflate.
// A shard written through the HDF5 C API as other tools write them: chunk0 samples per chunk (0:
// contiguous), deflated or not, after a user block of `userblock` bytes (h5py's userblock_size).
void write_raw_shard(const std::string& path, const torch::Tensor& images, hsize_t chunk0, bool deflate,
                     hsize_t userblock = 0) {
  h5::Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  if (userblock > 0) H5Pset_userblock(fcpl, userblock);
  h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), H5Fclose);
  ASSERT_GE(static_cast<hid_t>(file), 0) << path;
  hsize_t dims[4];
  for (int i = 0; i < 4; ++i) dims[i] = static_cast<hsize_t>(images.size(i));
  h5::Handle space(H5Screate_simple(4, dims, nullptr), H5Sclose);
  h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (chunk0 > 0) {
    hsize_t chunk[4] = {chunk0, dims[1], dims[2], dims[3]};
    H5Pset_chunk(dcpl, 4, chunk);
  }
  if (deflate) H5Pset_deflate(dcpl, 4);
  h5::Handle ds(H5Dcreate2(file, "images", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                H5Dclose);
  H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images.data_ptr());
  auto labels = torch::zeros({images.size(0)}, torch::kLong);
  h5::write_dataset(file, "labels", H5T_NATIVE_INT64, {dims[0]}, labels.data_ptr(), path, 0);
  h5::write_attr(file, "format", std::string(kShardFormat));
  h5::write_attr(file, "format_version", kShardFormatVersion);
  h5::write_attr(file, "num_classes", int64_t{3});
}

}  // namespace

TEST(Loader, ThreadsDeliverTheSameBatchesInStepOrder) {
  TempDir dir;
  DatasetIndex idx = make_dataset(dir.str(), 203, 3);
  SplitReader streamed(dir.str(), idx, "train", 0, /*cache_bytes=*/0);
  SplitReader cached(dir.str(), idx, "train", 0, int64_t{1} << 30);
  ASSERT_FALSE(streamed.cached());
  ASSERT_TRUE(cached.cached());
  EpochPlan plan(streamed.size(), 8, 2, 1, 5, 3);
  auto indices = [&plan](int64_t s) { return plan.batch(s); };
  for (int threads : {1, 3, 4}) {
    Loader loader(streamed, indices, 2, plan.steps(), 2, threads);
    int64_t expect = 2;
    while (auto b = loader.next()) {
      ASSERT_EQ(b->step, expect) << threads;
      auto want = plan.batch(expect);
      EXPECT_TRUE(torch::equal(b->images, cached.gather_images(want))) << threads << " " << expect;
      EXPECT_TRUE(torch::equal(b->labels, cached.gather_labels(want)));
      ++expect;
    }
    EXPECT_EQ(expect, plan.steps());
  }
}

TEST(Loader, ReadErrorReachesNextAtItsStep) {
  TempDir dir;
  DatasetIndex idx = make_dataset(dir.str(), 40, 1);
  SplitReader reader(dir.str(), idx, "train");
  Loader loader(
      reader,
      [](int64_t s) {
        if (s == 3) ODY_FAIL("step 3 is unreadable", "");
        return std::vector<int64_t>{s, s + 1};
      },
      0, 10, 4, 3);
  for (int64_t s = 0; s < 3; ++s) EXPECT_EQ(loader.next()->step, s);
  std::string e = error_of([&] { loader.next(); });
  EXPECT_NE(e.find("step 3 is unreadable"), std::string::npos) << e;
}

TEST(ShardRead, DirectAndHdf5PathsReadTheSameBytesFromManyThreads) {
  TempDir dir;
  torch::manual_seed(4);
  auto images = torch::randint(0, 256, {50, 6, 5, 2}, torch::kByte);
  write_shard(dir / "chunked.h5", images, torch::zeros({50}, torch::kLong), {3, kClasses, "train", "t"},
              /*chunk_samples=*/16);
  write_raw_shard(dir / "contiguous.h5", images, 0, false);
  write_raw_shard(dir / "deflate.h5", images, 7, true);
  write_raw_shard(dir / "per_sample.h5", images, 1, false);  // one chunk per sample (h5py's habit)
  // After a user block: HDF5 1.10's chunk addresses leave it out (HDFGroup issue 3003), which read
  // every sample 512 bytes early; such files go through H5Dread.
  write_raw_shard(dir / "userblock_chunked.h5", images, 16, false, 512);
  write_raw_shard(dir / "userblock_contiguous.h5", images, 0, false, 1024);
  for (auto [file, direct] : {std::pair{"chunked.h5", true}, std::pair{"contiguous.h5", true},
                              std::pair{"deflate.h5", false}, std::pair{"per_sample.h5", true},
                              std::pair{"userblock_chunked.h5", false},
                              std::pair{"userblock_contiguous.h5", false}}) {
    ShardReader r(dir / file);
    EXPECT_EQ(r.direct(), direct) << file;
    std::vector<torch::Tensor> got(4);
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t)
      pool.emplace_back([&, t] {
        got[t] = torch::empty({30, 6, 5, 2}, torch::kByte);
        for (int rep = 0; rep < 20; ++rep) r.read(7 + t, 30, got[t].data_ptr<uint8_t>());
      });
    for (auto& t : pool) t.join();
    for (int t = 0; t < 4; ++t)
      EXPECT_TRUE(torch::equal(got[t], images.narrow(0, 7 + t, 30))) << file << " thread " << t;
  }
}

TEST(ShardRead, BadShardStopsOrIsSkipped) {
  TempDir dir;
  DatasetIndex idx = make_dataset(dir.str(), 90, 3);
  // Shard 1 claims 2 classes while its labels reach 2: out of range.
  const std::string bad = dir / idx.shards[1].file;
  {
    h5::Handle f = h5::open_file(bad, /*writable=*/true);
    H5Adelete(f, "num_classes");
    h5::write_attr(f, "num_classes", int64_t{2});
  }
  std::string e = error_of([&] { SplitReader r(dir.str(), idx, "train"); });
  EXPECT_NE(e.find(bad), std::string::npos) << e;
  SplitReader r(dir.str(), idx, "train", 0, 0, /*skip_corrupt=*/true);
  EXPECT_EQ(r.size(), 60);
  ASSERT_EQ(r.skipped().size(), 1u);
  EXPECT_NE(r.skipped()[0].find(bad), std::string::npos) << r.skipped()[0];
  EXPECT_EQ(r.skipped_samples(), 30);
}

TEST(BlockShuffle, APermutationMixedWithinWindowsOfBlocks) {
  const int64_t n = 1000, block = 32, window = 4;
  auto order = EpochPlan::block_permutation(n, 9, 2, block, window);
  ASSERT_EQ(static_cast<int64_t>(order.size()), n);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
  // With whole blocks, each run of window x block positions draws from exactly `window` blocks.
  auto whole = EpochPlan::block_permutation(1024, 9, 2, block, window);
  for (int64_t start = 0; start < 1024; start += window * block) {
    std::set<int64_t> blocks;
    for (int64_t i = start; i < start + window * block; ++i) blocks.insert(whole[i] / block);
    EXPECT_EQ(static_cast<int64_t>(blocks.size()), window);
  }
  EXPECT_EQ(order, EpochPlan::block_permutation(n, 9, 2, block, window));
  EXPECT_NE(order, EpochPlan::block_permutation(n, 9, 3, block, window));
  // Ranks split each global batch: disjoint and complete across ranks, as the global order.
  ShuffleOptions opt{true, block, window};
  std::vector<int64_t> seen;
  for (int r = 0; r < 3; ++r) {
    EpochPlan p(n, 10, 3, r, 9, 2, opt);
    for (int64_t s = 0; s < p.steps(); ++s)
      for (int64_t i : p.batch(s)) seen.push_back(i);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
  EXPECT_EQ(static_cast<int64_t>(seen.size()), n / 30 * 30);
}

TEST(BlockShuffle, PerRankEachRankReadsItsOwnShareOfTheBlocks) {
  const int64_t n = 10000, block = 50, window = 4, batch = 16;
  const int world = 4;
  ShuffleOptions opt{true, block, window, /*per_rank=*/true};
  std::vector<int64_t> seen;
  std::vector<std::set<int64_t>> blocks_of(world);
  for (int r = 0; r < world; ++r) {
    EpochPlan p(n, batch, world, r, 9, 2, opt);
    EXPECT_EQ(p.steps(), n / (batch * world));
    std::vector<int64_t> mine;
    for (int64_t s = 0; s < p.steps(); ++s)
      for (int64_t i : p.batch(s)) mine.push_back(i);
    for (int64_t i : mine) blocks_of[r].insert(i / block);
    // A rank's share: about 1/world of the blocks (+1 where its range starts or ends mid-block);
    // the world-independent block shuffle reaches into nearly all of them from every rank.
    EXPECT_LE(static_cast<int64_t>(blocks_of[r].size()), n / block / world + 2) << r;
    // Each window of window x block positions draws from at most window + 1 blocks.
    for (size_t start = 0; start < mine.size(); start += window * block) {
      std::set<int64_t> blocks;
      for (size_t i = start; i < std::min(mine.size(), start + window * block); ++i) blocks.insert(mine[i] / block);
      EXPECT_LE(static_cast<int64_t>(blocks.size()), window + 1) << r << " at " << start;
    }
    EXPECT_EQ(mine, [&] {  // a pure function of its arguments
      std::vector<int64_t> again;
      EpochPlan q(n, batch, world, r, 9, 2, opt);
      for (int64_t s = 0; s < q.steps(); ++s)
        for (int64_t i : q.batch(s)) again.push_back(i);
      return again;
    }());
    seen.insert(seen.end(), mine.begin(), mine.end());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end()) << "a sample twice in one epoch";
  EXPECT_EQ(static_cast<int64_t>(seen.size()), n / (batch * world) * batch * world);
  // Not the world-independent block order, and another epoch is another order.
  EpochPlan shared(n, batch, world, 0, 9, 2, ShuffleOptions{true, block, window});
  EpochPlan own(n, batch, world, 0, 9, 2, opt), next(n, batch, world, 0, 9, 3, opt);
  EXPECT_NE(shared.batch(0), own.batch(0));
  EXPECT_NE(own.batch(0), next.batch(0));
  std::set<int64_t> shared_blocks;
  for (int64_t s = 0; s < shared.steps(); ++s)
    for (int64_t i : shared.batch(s)) shared_blocks.insert(i / block);
  EXPECT_GT(static_cast<int64_t>(shared_blocks.size()), n / block * 9 / 10) << "what per_rank avoids";
}

TEST(BlockShuffle, BlockBufferReadsEachBlockOnceAndMatchesTheCache) {
  TempDir dir;
  DatasetIndex idx = make_dataset(dir.str(), 203, 3);  // blocks cross shard boundaries
  SplitReader blocked(dir.str(), idx, "train", 0, 0);
  blocked.use_block_buffer(16, 6);
  SplitReader cached(dir.str(), idx, "train", 0, int64_t{1} << 30);
  EpochPlan plan(203, 8, 1, 0, 4, 1, ShuffleOptions{true, 16, 4});
  Loader loader(blocked, [&plan](int64_t s) { return plan.batch(s); }, 0, plan.steps(), 2, 2);
  while (auto b = loader.next())
    ASSERT_TRUE(torch::equal(b->images, cached.gather_images(plan.batch(b->step))));
  // 13 blocks; with two threads a block may be read twice at a window's start, never more often.
  EXPECT_GE(blocked.blocks_read(), 13);
  EXPECT_LE(blocked.blocks_read(), 26);
}
