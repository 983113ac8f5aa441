// A resume reads the checkpoint on rank 0 only: every rank receives exactly what rank 0 read (each
// TrainerState field, each tensor bitwise), the other ranks never open the file, and rank 0's
// failure to read it stops every rank.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "common/error.h"
#include "dist/agreement.h"
#include "dist/communicator.h"
#include "train/checkpoint_share.h"

using namespace odyssey;

namespace {

CheckpointData every_field_set() {
  CheckpointData d;
  d.trainer = {/*step=*/41, /*epoch=*/3, /*step_in_epoch=*/7, /*samples_seen=*/5248, /*world_size=*/4,
               /*batch_size=*/32, "tiny_cnn", "[run]\nname = \"x\"\n", /*eval_top1=*/0.8125,
               /*eval_step=*/40, /*skipped_steps=*/2, /*train_samples=*/60000, "v1-2-g3", {0.25, 0.5}, {0.3, 0.4},
               /*random_streams=*/kRandomStreams};
  torch::manual_seed(3);
  d.model = {{"features.0.weight", torch::randn({4, 1, 3, 3})}, {"bn.num_batches_tracked", torch::tensor(9L)}};
  d.optimizer = {{"features.0.weight/exp_avg", torch::randn({4, 1, 3, 3})},
                 {"features.0.weight/step", torch::tensor(41.0, torch::kDouble)}};
  d.ema = {{"features.0.weight", torch::randn({4, 1, 3, 3})}};
  return d;
}

void expect_same(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.scalar_type(), b[i].second.scalar_type()) << a[i].first;
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

}  // namespace

TEST(CheckpointShare, EveryRankGetsRankZerosReadWithoutOpeningTheFile) {
  auto comm = make_communicator("mpi", true);
  std::string dir = comm->rank() == 0 ? "/tmp/odyssey-share-" + std::to_string(::getpid()) : "";
  comm->broadcast(dir, 0);
  const CheckpointData written = every_field_set();
  if (comm->rank() == 0) {
    std::filesystem::create_directories(dir);
    write_checkpoint(dir + "/c.h5", written);
  }
  // Ranks other than 0 name a file that does not exist: they must not read it.
  const std::string path = comm->rank() == 0 ? dir + "/c.h5" : dir + "/not-here.h5";
  const CheckpointData got = read_checkpoint_shared(*comm, path);
  const CheckpointData read = read_checkpoint(dir + "/c.h5");  // what this rank's own read gives
  EXPECT_EQ(describe_checkpoint(got), describe_checkpoint(read));  // every field, name, dtype, shape
  const TrainerState &s = got.trainer, &w = written.trainer;
  EXPECT_EQ(s.step, w.step);
  EXPECT_EQ(s.config_toml, w.config_toml);
  EXPECT_EQ(s.code_version, read.trainer.code_version);  // the build that wrote it, not w's
  EXPECT_EQ(s.eval_top1, w.eval_top1);
  EXPECT_EQ(s.input_std, w.input_std);
  expect_same(got.model, read.model);
  expect_same(got.optimizer, read.optimizer);
  expect_same(got.ema, read.ema);
  EXPECT_EQ(got.model.size(), 2u);
  // Data rank 0 already read (choosing the checkpoint to resume) is sent as it is: no rank reads
  // the path, which exists nowhere.
  std::optional<CheckpointData> handed;
  if (comm->rank() == 0) handed = read_checkpoint(dir + "/c.h5");
  const CheckpointData sent = read_checkpoint_shared(*comm, dir + "/gone.h5", "", std::move(handed));
  EXPECT_EQ(describe_checkpoint(sent), describe_checkpoint(read));
  expect_same(sent.model, read.model);
  expect_same(sent.optimizer, read.optimizer);
  expect_same(sent.ema, read.ema);
  // Rank 0 cannot read it: every rank stops (rank 0 prints the error); one rank alone throws it.
  try {
    read_checkpoint_shared(*comm, dir + "/missing.h5", "x.toml: train.resume");
    ADD_FAILURE() << "every rank must throw";
  } catch (const AgreedFailure& f) {
    EXPECT_GT(comm->size(), 1);
    EXPECT_EQ(f.rank, 0);
    EXPECT_EQ(f.exit_code, 2);
  } catch (const Error& e) {
    EXPECT_EQ(comm->size(), 1);
    EXPECT_NE(std::string(e.what()).find("missing.h5"), std::string::npos) << e.what();
  }
  comm->barrier();
  if (comm->rank() == 0) std::filesystem::remove_all(dir);
}

TEST(CheckpointShare, TheDescriptionRoundTripsOnOneProcess) {
  const CheckpointData d = every_field_set();
  const std::string bytes = describe_checkpoint(d);
  const CheckpointData back = allocate_described(bytes);
  EXPECT_EQ(describe_checkpoint(back), bytes);
  EXPECT_EQ(back.trainer.input_mean, d.trainer.input_mean);
  EXPECT_EQ(back.trainer.train_samples, 60000);
  EXPECT_EQ(back.trainer.random_streams, kRandomStreams);
  EXPECT_THROW(allocate_described(bytes.substr(0, bytes.size() - 1)), Error);
}
