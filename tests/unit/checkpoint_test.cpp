// Checkpoints: save -> load gives identical tensors; damage is detected; resume finds the newest
// complete checkpoint and falls back past damaged ones; retention.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "checkpoint/async_writer.h"
#include "checkpoint/checkpointer.h"
#include "common/h5.h"
#include "models/registry.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::error_of;
using odyssey::testing::TempDir;

namespace {

// A registry model with its optimizer (state allocated up front).
struct Trained {
  Trained(const std::string& name, int64_t classes) {
    model = ModelRegistry::instance().create(name, {classes, 1, 28});
    NamedTensors params;
    for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
    opt = make_optimizer(OptimConfig{}, params);
  }
  std::shared_ptr<Classifier> model;
  std::unique_ptr<Optimizer> opt;
};

NamedTensors state_of(torch::nn::Module& m) {
  NamedTensors out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  for (auto& b : m.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

CheckpointData make(int64_t step, torch::nn::Module& m, Optimizer& opt) {
  CheckpointData d;
  d.model = state_of(m);
  d.optimizer = opt.state();
  d.trainer.step = step;
  d.trainer.epoch = 2;
  d.trainer.step_in_epoch = 17;
  d.trainer.samples_seen = step * 64;
  d.trainer.world_size = 2;
  d.trainer.batch_size = 32;
  d.trainer.model_name = "fmnist_cnn";
  d.trainer.config_toml = "[run]\nname = \"x\"\n";
  d.trainer.eval_top1 = 0.5;
  d.trainer.eval_step = step - 3;
  d.trainer.skipped_steps = 2;
  d.trainer.random_streams = kRandomStreams;
  d.trainer.input_mean = {0.2860402, 0.1};
  d.trainer.input_std = {0.3530239, 0.2};
  return d;
}

}  // namespace

TEST(Checkpoint, SaveLoadGivesIdenticalTensors) {
  TempDir dir;
  torch::manual_seed(1);
  Trained a_run("fmnist_cnn", 10);
  auto& model = a_run.model;
  auto& opt = a_run.opt;
  for (auto& [name, t] : opt->state()) t.normal_();  // non-trivial momentum
  model->forward(torch::randn({4, 1, 28, 28}));      // BatchNorm running stats move

  write_checkpoint(dir / "c.h5", make(123, *model, *opt));
  CheckpointData back = read_checkpoint(dir / "c.h5");
  EXPECT_EQ(back.trainer.step, 123);
  EXPECT_EQ(back.trainer.step_in_epoch, 17);
  EXPECT_EQ(back.trainer.eval_top1, 0.5);
  EXPECT_EQ(back.trainer.eval_step, 120);
  EXPECT_EQ(back.trainer.skipped_steps, 2);
  EXPECT_EQ(back.trainer.random_streams, kRandomStreams);
  EXPECT_EQ(back.trainer.model_name, "fmnist_cnn");
  EXPECT_EQ(back.trainer.config_toml, "[run]\nname = \"x\"\n");
  EXPECT_EQ(back.trainer.input_mean, (std::vector<double>{0.2860402, 0.1}));
  EXPECT_EQ(back.trainer.input_std, (std::vector<double>{0.3530239, 0.2}));

  torch::manual_seed(2);
  Trained b_run("fmnist_cnn", 10);
  auto& other = b_run.model;
  auto& other_opt = b_run.opt;
  load_named(back.model, state_of(*other), "model", dir / "c.h5");
  load_named(back.optimizer, other_opt->state(), "optimizer", dir / "c.h5");
  auto a = state_of(*model), b = state_of(*other);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  for (size_t i = 0; i < opt->state().size(); ++i)
    EXPECT_TRUE(torch::equal(opt->state()[i].second, other_opt->state()[i].second));
  EXPECT_FALSE(std::filesystem::exists(dir / "c.h5.tmp"));
}

TEST(Checkpoint, ChangedTrainerAttributesAndTensorsWithoutCrcAreDamage) {
  TempDir dir;
  Trained run("fmnist_cnn", 10);
  for (const char* name : {"step.h5", "nocrc.h5", "old.h5", "mean.h5"})
    write_checkpoint(dir / name, make(40, *run.model, *run.opt));
  {
    CheckpointData older = make(40, *run.model, *run.opt);  // written before the normalisation was
    older.trainer.input_mean.clear();
    older.trainer.input_std.clear();
    write_checkpoint(dir / "nonorm.h5", older);
  }
  EXPECT_TRUE(read_checkpoint(dir / "nonorm.h5").trainer.input_mean.empty());
  // The normalisation predict uses is covered by the CRC too.
  {
    h5::Handle f = h5::open_file(dir / "mean.h5", /*writable=*/true);
    h5::Handle tr(H5Gopen2(f, "trainer", H5P_DEFAULT), H5Gclose);
    ASSERT_GE(H5Adelete(tr, "input_mean"), 0);
    h5::write_attr(tr, "input_mean", std::vector<double>{0.5, 0.1});
  }
  std::string mean_error = error_of([&] { read_checkpoint(dir / "mean.h5"); });
  EXPECT_NE(mean_error.find("fail their CRC-32"), std::string::npos) << mean_error;
  // /trainer's step rewritten by another tool: its CRC-32 catches it.
  {
    h5::Handle f = h5::open_file(dir / "step.h5", /*writable=*/true);
    h5::Handle tr(H5Gopen2(f, "trainer", H5P_DEFAULT), H5Gclose);
    ASSERT_GE(H5Adelete(tr, "step"), 0);
    h5::write_attr(tr, "step", int64_t{41});
  }
  std::string e = error_of([&] { read_checkpoint(dir / "step.h5"); });
  EXPECT_NE(e.find("the /trainer attributes of checkpoint '" + (dir / "step.h5") + "' fail their CRC-32"),
            std::string::npos) << e;
  // A tensor without its crc32 attribute (every checkpoint tensor has one).
  {
    h5::Handle f = h5::open_file(dir / "nocrc.h5", /*writable=*/true);
    h5::Handle ds = h5::open_dataset(f, "/model/classifier.weight", dir / "nocrc.h5");
    ASSERT_GE(H5Adelete(ds, "crc32"), 0);
  }
  e = error_of([&] { read_checkpoint(dir / "nocrc.h5"); });
  EXPECT_NE(e.find("dataset /model/classifier.weight of checkpoint '" + (dir / "nocrc.h5") +
                   "' has no crc32 attribute"), std::string::npos) << e;
  EXPECT_EQ(read_weights(dir / "nocrc.h5").size(), state_of(*run.model).size())
      << "weights files (exported ones have no CRCs) still read";
  // A checkpoint written before /trainer had its CRC (nor skipped_steps) still loads.
  {
    h5::Handle f = h5::open_file(dir / "old.h5", /*writable=*/true);
    h5::Handle tr(H5Gopen2(f, "trainer", H5P_DEFAULT), H5Gclose);
    ASSERT_GE(H5Adelete(tr, "crc32"), 0);
    ASSERT_GE(H5Adelete(tr, "skipped_steps"), 0);
    ASSERT_GE(H5Adelete(tr, "random_streams"), 0);
  }
  EXPECT_EQ(read_checkpoint(dir / "old.h5").trainer.skipped_steps, 0);
  EXPECT_EQ(read_checkpoint(dir / "old.h5").trainer.random_streams, 1) << "before the attribute: 1";
}

TEST(Checkpoint, WeightsFilesCarryTheNormalisationAndABrokenOneIsNamed) {
  TempDir dir;
  Trained run("fmnist_cnn", 10);
  write_weights(dir / "w.h5", state_of(*run.model), {"fmnist_cnn", 28, 1.0, {0.25}, {0.5}});
  WeightsInfo info = read_weights_info(dir / "w.h5");
  EXPECT_EQ(info.model_name, "fmnist_cnn");
  EXPECT_EQ(info.input_mean, std::vector<double>{0.25});
  EXPECT_EQ(info.input_std, std::vector<double>{0.5});
  write_weights(dir / "plain.h5", state_of(*run.model), {"fmnist_cnn", 28, 1.0, {}, {}});
  EXPECT_TRUE(read_weights_info(dir / "plain.h5").input_mean.empty());
  {  // a std of 0 (another tool's file): refused, naming the file and both attributes
    h5::Handle f = h5::open_file(dir / "w.h5", /*writable=*/true);
    ASSERT_GE(H5Adelete(f, "input_std"), 0);
    h5::write_attr(f, "input_std", std::vector<double>{0.0});
  }
  const std::string e = error_of([&] { read_weights_info(dir / "w.h5"); });
  EXPECT_NE(e.find("'" + (dir / "w.h5") + "': attributes input_mean (1 values) and input_std (1) are not"),
            std::string::npos) << e;
}

TEST(Checkpoint, WrongModelShapeNamesTheDataset) {
  TempDir dir;
  Trained run("fmnist_cnn", 10);
  write_checkpoint(dir / "c.h5", make(1, *run.model, *run.opt));
  auto other = ModelRegistry::instance().create("fmnist_cnn", {7, 1, 28});
  std::string e = error_of([&] { load_named(read_checkpoint(dir / "c.h5").model, state_of(*other), "model", dir / "c.h5"); });
  EXPECT_NE(e.find("dataset /model/classifier.weight"), std::string::npos) << e;
  auto tiny = ModelRegistry::instance().create("tiny_cnn", {10, 1, 28});
  e = error_of([&] { load_named(read_checkpoint(dir / "c.h5").model, state_of(*tiny), "model", dir / "c.h5"); });
  EXPECT_NE(e.find("/model/"), std::string::npos) << e;
}

TEST(Checkpointer, LatestRetentionAndFallbackPastDamage) {
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), /*keep_last=*/2);
  EXPECT_EQ(ck.resolve("auto"), std::nullopt);
  for (int64_t step : {10, 20, 30}) ck.save(make(step, *run.model, *run.opt));
  std::ifstream latest(dir / "latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "ckpt-step0000000030.h5");
  EXPECT_FALSE(std::filesystem::exists(dir / "ckpt-step0000000010.h5")) << "keep_last = 2";
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000030.h5");

  // Damage the newest: overwrite bytes of a tensor's data (the file's middle may be free space).
  haddr_t at = HADDR_UNDEF;
  {
    h5::Handle file = h5::open_file(dir / "ckpt-step0000000030.h5", /*writable=*/false);
    h5::Handle ds = h5::open_dataset(file, "/model/classifier.weight", dir / "ckpt-step0000000030.h5");
    at = H5Dget_offset(ds);
  }
  ASSERT_NE(at, HADDR_UNDEF);
  {
    std::fstream f(dir / "ckpt-step0000000030.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at + 16));
    std::string junk(64, '\x5a');
    f.write(junk.data(), junk.size());
  }
  std::string e = error_of([&] { read_checkpoint(dir / "ckpt-step0000000030.h5"); });
  EXPECT_NE(e.find("ckpt-step0000000030.h5"), std::string::npos) << e;
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000020.h5");
  // The data its verification read is handed over: the chosen file's, not the damaged newest's.
  CheckpointData chosen;
  EXPECT_EQ(ck.resolve("auto", &chosen), dir / "ckpt-step0000000020.h5");
  EXPECT_EQ(chosen.trainer.step, 20);
  const CheckpointData reread = read_checkpoint(dir / "ckpt-step0000000020.h5");
  ASSERT_EQ(chosen.model.size(), reread.model.size());
  for (size_t i = 0; i < chosen.model.size(); ++i) {
    EXPECT_EQ(chosen.model[i].first, reread.model[i].first);
    EXPECT_TRUE(torch::equal(chosen.model[i].second, reread.model[i].second)) << chosen.model[i].first;
  }

  // A truncated newest checkpoint is skipped too.
  std::filesystem::resize_file(dir / "ckpt-step0000000030.h5", 100);
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000020.h5");
  // Leftover temporary files from a crash are never taken.
  std::ofstream(dir / "ckpt-step0000000040.h5.tmp") << "partial";
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000020.h5");
  e = error_of([&] { ck.resolve("none"); });
  EXPECT_NE(e.find("already holds checkpoints"), std::string::npos) << e;
  EXPECT_EQ(Checkpointer(dir / "fresh", 2).resolve("none"), std::nullopt);
  e = error_of([&] { ck.resolve(dir / "missing.h5"); });
  EXPECT_NE(e.find("train.resume"), std::string::npos) << e;
  // When none loads, "auto" does not start the run again over them: one error naming each.
  std::filesystem::resize_file(dir / "ckpt-step0000000020.h5", 100);
  e = error_of([&] { ck.resolve("auto"); });
  EXPECT_NE(e.find("run folder '" + dir.str() + "' holds 2 checkpoint(s) and none loads"), std::string::npos) << e;
  EXPECT_NE(e.find("\n  ckpt-step0000000030.h5: "), std::string::npos) << e;
  EXPECT_NE(e.find("\n  ckpt-step0000000020.h5: "), std::string::npos) << e;
}

TEST(Checkpointer, ADatasetOrGroupThatIsGoneIsDamagePassedOver) {
  // The per-tensor CRCs cannot notice a link that is gone; each group's manifest and /trainer's
  // list of groups do, so resume passes over such a file instead of failing the load with it.
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), /*keep_last=*/4);
  for (int64_t step : {10, 20, 30, 40}) {
    CheckpointData d = make(step, *run.model, *run.opt);
    d.ema = state_of(*run.model);
    ck.save(d);
  }
  auto edit = [&](int64_t step, const std::function<void(hid_t)>& change) {
    h5::Handle f = h5::open_file(dir / ("ckpt-step00000000" + std::to_string(step) + ".h5"), true);
    change(f);
  };
  const size_t n = state_of(*run.model).size();
  edit(40, [](hid_t f) { ASSERT_GE(H5Ldelete(f, "/model/classifier.weight", H5P_DEFAULT), 0); });
  edit(30, [](hid_t f) {
    ASSERT_GE(H5Lmove(f, "/ema/classifier.bias", f, "/ema/classifier.b", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  edit(20, [](hid_t f) { ASSERT_GE(H5Ldelete(f, "/ema", H5P_DEFAULT), 0); });
  std::string e = error_of([&] { read_checkpoint(dir / "ckpt-step0000000040.h5"); });
  const std::string count = std::to_string(n), less = std::to_string(n - 1);
  EXPECT_NE(e.find("group /model of '" + (dir / "ckpt-step0000000040.h5") + "' holds " + less +
                   " datasets, not the " + count + " named in its manifest"),
            std::string::npos) << e;
  e = error_of([&] { read_checkpoint(dir / "ckpt-step0000000030.h5"); });
  EXPECT_NE(e.find("group /ema of '" + (dir / "ckpt-step0000000030.h5") + "' holds " + count +
                   " datasets, not the " + count + " named in its manifest (other names)"),
            std::string::npos) << e;
  e = error_of([&] { read_checkpoint(dir / "ckpt-step0000000020.h5"); });
  EXPECT_NE(e.find("checkpoint '" + (dir / "ckpt-step0000000020.h5") + "' has lost its /ema group"),
            std::string::npos) << e;
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000010.h5");
  EXPECT_EQ(read_weights(dir / "ckpt-step0000000040.h5").size(), n - 1)
      << "weights are read without the manifest (a file edited to drop its head still loads)";
  // Files written before the manifests (no dataset_count, no groups) read as before.
  edit(20, [](hid_t f) {
    h5::Handle tr(H5Gopen2(f, "trainer", H5P_DEFAULT), H5Gclose);
    ASSERT_GE(H5Adelete(tr, "groups"), 0);
  });
  edit(40, [](hid_t f) {
    h5::Handle g(H5Gopen2(f, "model", H5P_DEFAULT), H5Gclose);
    ASSERT_GE(H5Adelete(g, "dataset_count"), 0);
    ASSERT_GE(H5Adelete(g, "names_crc32"), 0);
  });
  EXPECT_TRUE(read_checkpoint(dir / "ckpt-step0000000020.h5").ema.empty());
  EXPECT_EQ(read_checkpoint(dir / "ckpt-step0000000040.h5").model.size(), n - 1);
}

TEST(Checkpointer, ANewerBuildsCheckpointIsNotPassedOverAsDamage) {
  // Falling back past it to the one before would roll the run back (the newer set aside).
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), /*keep_last=*/2);
  for (int64_t step : {10, 20}) ck.save(make(step, *run.model, *run.opt));
  const auto newest = dir / "ckpt-step0000000020.h5";
  EXPECT_EQ(checkpoint_format_version(newest), kCheckpointFormatVersion);
  {
    h5::Handle file = h5::open_file(newest, /*writable=*/true);
    h5::Handle tr(H5Gopen2(file, "trainer", H5P_DEFAULT), H5Gclose);
    ASSERT_GE(H5Adelete(tr, "format_version"), 0);
    h5::write_attr(tr, "format_version", kCheckpointFormatVersion + 1);
  }
  std::string e = error_of([&] { ck.resolve("auto"); });
  EXPECT_NE(e.find("checkpoint '" + newest + "' was written by a newer build (format_version " +
                   std::to_string(kCheckpointFormatVersion + 1)),
            std::string::npos) << e;
  EXPECT_NE(e.find("nothing was rolled back"), std::string::npos) << e;
  EXPECT_EQ(checkpoint_format_version(dir / "missing.h5"), -1);
}

TEST(Checkpointer, AReadThatFailsOnceIsTriedAgainBeforeFallingBack) {
  // The newest checkpoint unreadable for a moment (a network filesystem's passing error at a
  // requeue): resume takes it once it reads, instead of rolling the run back to the one before.
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), /*keep_last=*/2);
  for (int64_t step : {10, 20}) ck.save(make(step, *run.model, *run.opt));
  const auto newest = dir / "ckpt-step0000000020.h5";
  std::filesystem::copy_file(newest, dir / "whole.bak");
  std::filesystem::resize_file(newest, 100);
  std::thread mend([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::filesystem::copy_file(dir / "whole.bak", dir / "mended.tmp");
    std::filesystem::rename(dir / "mended.tmp", newest);
  });
  const auto chosen = ck.resolve("auto");
  mend.join();
  EXPECT_EQ(chosen, newest);
}

TEST(Checkpointer, ACompleteCheckpointWhoseLatestCannotBeReplacedIsKeptWithTheOneBefore) {
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), /*keep_last=*/1);
  ck.save(make(10, *run.model, *run.opt));
  // `latest` a non-empty folder: renaming the new pointer over it fails.
  std::filesystem::remove(dir / "latest");
  std::filesystem::create_directories(std::filesystem::path(dir / "latest") / "x");
  EXPECT_EQ(ck.save(make(20, *run.model, *run.opt)), dir / "ckpt-step0000000020.h5");
  EXPECT_TRUE(std::filesystem::exists(dir / "ckpt-step0000000010.h5")) << "retention waits";
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000020.h5");
}

TEST(Checkpointer, KeepEveryKeepsMultiplesBeyondKeepLast) {
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), /*keep_last=*/1, /*keep_every=*/20);
  // A file named like a checkpoint but not one of its steps (an export) is neither a checkpoint
  // to prune or resume from nor a reason for a save to fail.
  std::ofstream(dir / "ckpt-step-best.h5") << "someone's export";
  for (int64_t step : {10, 20, 30, 40, 50}) ck.save(make(step, *run.model, *run.opt));
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000050.h5");
  std::filesystem::remove(dir / "ckpt-step-best.h5");
  std::ofstream(dir / "ckpt-step0000000060.h5.tmp") << "partial";
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.str()))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt-step0000000020.h5", "ckpt-step0000000040.h5",
                                             "ckpt-step0000000050.h5", "ckpt-step0000000060.h5.tmp",
                                             "latest"}));
  // A text temporary as write_text_atomically names it: a live writer's (fresh) stays, a
  // killed one's (a minute old) goes.
  const auto live = dir / "report.md.node-1.cluster-4242-0.tmp";
  const auto killed = dir / "report.md.node-2-77-3.tmp";
  std::ofstream(live) << "being written";
  std::ofstream(killed) << "half";
  std::filesystem::last_write_time(killed, std::filesystem::file_time_type::clock::now() -
                                                     std::chrono::seconds(61));
  EXPECT_EQ(ck.remove_stale_temporaries(), 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "ckpt-step0000000060.h5.tmp"));
  EXPECT_FALSE(std::filesystem::exists(killed));
  EXPECT_TRUE(std::filesystem::exists(live));
}

TEST(Checkpointer, SetAsideAfterMovesTheNewerBranchSoRetentionKeepsTheResumedOne) {
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), /*keep_last=*/3);
  for (int64_t step : {10, 20, 30, 40, 50}) ck.save(make(step, *run.model, *run.opt));
  EXPECT_EQ(ck.set_aside_after(50, "t0"), "") << "nothing newer than the newest";
  // A rollback to step 30: 40 and 50 move aside, `latest` names 30.
  const std::string aside = ck.set_aside_after(30, "t1");
  EXPECT_EQ(aside, dir / "set-aside-after-step0000000030-t1");
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(aside) / "ckpt-step0000000040.h5"));
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(aside) / "ckpt-step0000000050.h5"));
  EXPECT_FALSE(std::filesystem::exists(dir / "ckpt-step0000000040.h5"));
  EXPECT_EQ(checkpoint_file(dir.str()), dir / "ckpt-step0000000030.h5");
  // The resumed branch's next save stays (with 40 and 50 in place, keep_last = 3 deleted it and
  // left `latest` naming a deleted file) and "auto" comes back to it, not to the old branch.
  ck.save(make(35, *run.model, *run.opt));
  EXPECT_TRUE(std::filesystem::exists(dir / "ckpt-step0000000035.h5"));
  EXPECT_EQ(checkpoint_file(dir.str()), dir / "ckpt-step0000000035.h5");
  EXPECT_EQ(ck.resolve("auto"), dir / "ckpt-step0000000035.h5");
  // Every checkpoint of the folder newer than the step moves; with none left, `latest` goes.
  EXPECT_NE(ck.set_aside_after(0, "t2"), "");
  EXPECT_FALSE(std::filesystem::exists(dir / "latest"));
  EXPECT_EQ(ck.resolve("auto"), std::nullopt);
}

TEST(AsyncCheckpointWriter, WritesACopyTakenAtSubmitAndReportsFailuresWithoutThrowing) {
  TempDir dir;
  Trained run("tiny_cnn", 10);
  Checkpointer ck(dir.str(), 0);
  {
    AsyncCheckpointWriter writer(ck, /*async=*/true);
    auto data = make(10, *run.model, *run.opt);
    auto expected = deep_copy(data);
    writer.submit(data);
    // Training goes on and changes the live tensors: the checkpoint holds the submitted state.
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : data.model) t.add_(1.0);
    writer.wait();
    EXPECT_EQ(writer.last_path(), dir / "ckpt-step0000000010.h5");
    EXPECT_FALSE(writer.take_error());
    auto back = read_checkpoint(writer.last_path());
    ASSERT_EQ(back.model.size(), expected.model.size());
    std::map<std::string, torch::Tensor> want(expected.model.begin(), expected.model.end());
    for (const auto& [name, t] : back.model) EXPECT_TRUE(torch::equal(t, want.at(name))) << name;
  }
  // A folder that does not exist: the error is kept for the trainer, nothing is left behind.
  Checkpointer broken(dir / "missing/deeper", 0);
  AsyncCheckpointWriter writer(broken, /*async=*/true);
  writer.submit(make(20, *run.model, *run.opt));
  writer.wait();
  auto e = writer.take_error();
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->find("ckpt-step0000000020.h5"), std::string::npos) << *e;
  EXPECT_FALSE(writer.take_error()) << "an error is reported once";
  EXPECT_EQ(writer.last_path(), "");
}
