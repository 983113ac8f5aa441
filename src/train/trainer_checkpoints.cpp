// Trainer's checkpoints: resuming from one, the state it saves, writing at a step (rank 0 hands
// the copy to the writer, every rank waits for the hand-over), the stop checkpoint of a signal or
// a non-finite loss, and write failures agreed across ranks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "dist/param_sync.h"
#include "train/checkpoint_share.h"
#include "train/trainer.h"

namespace odyssey {

void Trainer::resume_from(const std::string& path, const std::string& context) {
  // Rank 0 reads (or hands over what choosing the checkpoint read), the others receive.
  CheckpointData ckpt = read_checkpoint_shared(comm_, path, context, std::exchange(resumed_data_, std::nullopt));
  ODY_CHECK(ckpt.trainer.model_name == cfg_.model.name,
            "checkpoint '" + path + "' holds model '" + ckpt.trainer.model_name +
                "', the config asks for '" + cfg_.model.name + "' (key model.name)",
            "");
  if (!eval_only_ && comm_.rank() == 0) log_config_changes(ckpt.trainer.config_toml, path);
  // To evaluate: the averaged parameters in place of the live ones when it has them.
  const bool ema = eval_only_ && eval_only_->ema && take_ema_weights(ckpt);
  NamedTensors live = params_;
  live.insert(live.end(), buffers_.begin(), buffers_.end());
  load_named(ckpt.model, live, "model", path);
  // The normalisation the weights were trained with (stored since format 2), not this data
  // folder's own when they differ (a folder converted alone, a re-conversion): as predict does.
  const auto& stored = ckpt.trainer;
  if (stored.input_mean.empty() && eval_only_ && comm_.rank() == 0)  // as predict says it
    log::warn("'{}' does not store the mean/std its run normalised with (written before they were "
              "stored): normalising with {}'s index.toml", path, cfg_.data.path);
  if (!stored.input_mean.empty() && stored.input_mean.size() == norm_.mean.size() &&
      (stored.input_mean != norm_.mean || stored.input_std != norm_.std)) {
    double diff = 0;
    for (size_t c = 0; c < norm_.mean.size(); ++c)
      diff = std::max({diff, std::abs(stored.input_mean[c] - norm_.mean[c]),
                       std::abs(stored.input_std[c] - norm_.std[c])});
    if (diff > 1e-6 && comm_.rank() == 0)
      log::warn("the mean/std of '{}' differ from the ones {} was trained with (by up to {:.4f}): "
                "its inputs are normalised as in training", cfg_.data.path, path, diff);
    norm_ = {stored.input_mean, stored.input_std};
  }
  if (eval_only_) {
    averaged_step_ = state_.step;  // its statistics are one set: averaging moves them (3 ranks)
    log::info("evaluating {} (step {}{}{})", path, ckpt.trainer.step,
              ema ? ", its EMA weights" : ckpt.ema.empty() ? "" : ", live weights: --no-ema",
              cfg_.train.precision == "fp32" ? "" : ", in " + cfg_.train.precision + " (train.precision)");
    return;
  }
  // The fp16 loss scaler's state travels in /optimizer but belongs to the precision, which may
  // change on resume (fp16 on a GPU, then bf16 or float32 elsewhere): loaded when both have it.
  NamedTensors slots, amp;
  for (auto& entry : ckpt.optimizer)
    (LossScaler::is_state_name(entry.first) ? amp : slots).push_back(std::move(entry));
  load_named(slots, optimizer_->state(), "optimizer", path);
  if (scaler_ && !amp.empty()) {
    load_named(amp, scaler_->state(), "optimizer", path);
    if (ckpt.trainer.world_size > 0 && ckpt.trainer.world_size != comm_.size()) {
      // Each rank's backward carries scale / ranks (the sum over ranks is divided after): the
      // same per-rank factor on this world size, not 8x smaller on 8x the ranks.
      scaler_->state()[0].second.mul_(static_cast<double>(comm_.size()) / ckpt.trainer.world_size);
      log::info("fp16 loss scale {} for {} ranks (the checkpoint's, on {} ranks, x {}/{})",
                scaler_->scale(), comm_.size(), ckpt.trainer.world_size, comm_.size(),
                ckpt.trainer.world_size);
    }
  } else if (scaler_)
    log::info("{} holds no fp16 loss scale (written without train.precision = \"fp16\"): the "
              "scale starts at {}", path, scaler_->scale());
  else if (!amp.empty())
    log::info("{} holds an fp16 loss scale; train.precision = \"{}\" does not use it", path,
              cfg_.train.precision);
  if (ema_ && ckpt.ema.size() == ema_->parameter_count() && ema_->state().size() > ckpt.ema.size()) {
    // Written before the EMA averaged BatchNorm statistics: its parameters' averages, and the
    // statistics' averages start at the checkpoint's live statistics.
    const NamedTensors& all = ema_->state();
    load_named(ckpt.ema, NamedTensors(all.begin(), all.begin() + ckpt.ema.size()), "ema", path);
    ema_->reset_buffers();
    log::info("{} holds EMA parameters only (an older build): the BatchNorm statistics' average "
              "starts now, from its live statistics", path);
  } else if (ema_ && !ckpt.ema.empty()) {
    load_named(ckpt.ema, ema_->state(), "ema", path);
  } else if (ema_) {
    ema_->reset();  // from the checkpoint's weights, not the ones the run was built with
    log::info("{} holds no EMA weights (train.ema_decay was off): the average starts now, from "
              "its weights", path);
  }
  state_.step = ckpt.trainer.step;
  averaged_step_ = state_.step;  // a checkpoint holds one set of statistics, averaged at its step
  state_.samples_seen = ckpt.trainer.samples_seen;
  state_.epoch = ckpt.trainer.epoch;
  state_.step_in_epoch = ckpt.trainer.step_in_epoch;
  if (ckpt.trainer.train_samples > 0 && ckpt.trainer.train_samples != train_->size() &&
      ckpt.trainer.step_in_epoch > 0)  // mid-epoch: that epoch's permutation is another one
    log::warn("the train split holds {} samples, {} when {} was written (a shard left out or back, "
              "another data.train_limit, the data set rewritten): epoch {}'s order differs from "
              "the first part's, so some of its samples are seen twice and some not at all",
              train_->size(), ckpt.trainer.train_samples, path, state_.epoch);
  if (comm_.rank() == 0 && ckpt.trainer.random_streams != kRandomStreams)
    log::warn("{} was written by a build whose data order and augmentation drew from other random streams "
              "(before 2026-12-02): {}the augmentation and dropout draws differ from that run's",
              path, ckpt.trainer.step_in_epoch > 0
                        ? "epoch " + std::to_string(state_.epoch) + "'s order differs from the first part's, so "
                          "some of its samples are seen twice and some not at all; "
                        : std::string());
  if (comm_.rank() == 0 && cfg_.data.shuffle == "block_per_rank" && ckpt.trainer.world_size != comm_.size() &&
      ckpt.trainer.step_in_epoch > 0)  // each rank's order is its share of the blocks
    log::warn("data.shuffle = \"block_per_rank\" on {} ranks, {} when {} was written: epoch {}'s order "
              "differs from the first part's, so some of its samples are seen twice and some not at all",
              comm_.size(), ckpt.trainer.world_size, path, state_.epoch);
  const int64_t old_global = ckpt.trainer.world_size * ckpt.trainer.batch_size;
  const int64_t new_global = comm_.size() * cfg_.train.batch_size;
  if (old_global != new_global) {
    // Re-plan: the epoch's permutation is the same; skip the samples already consumed, rounded
    // down to whole new global batches (up to one batch of samples is seen twice).
    state_.step_in_epoch = std::min(state_.step_in_epoch * old_global / new_global, steps_per_epoch_);
    log::warn("global batch changed from {} to {}: resuming epoch {} at step {}", old_global,
              new_global, state_.epoch, state_.step_in_epoch);
  }
  skipped_steps_ = ckpt.trainer.skipped_steps;
  last_top1_ = ckpt.trainer.eval_top1;
  last_eval_step_ = ckpt.trainer.eval_step;
  log::info("resumed from {} at step {} (epoch {}, step {} of the epoch)", path, state_.step,
            state_.epoch, state_.step_in_epoch);
  // The schedule follows the data cursor (in steps of this run's batch and split), so warmup, the
  // decay to the floor at the last step and train.max_steps stay where the run is in its epochs;
  // the update count (checkpoint names, metrics) goes on from the checkpoint's.
  schedule_offset_ = state_.epoch * steps_per_epoch_ + state_.step_in_epoch - state_.step;
  if (schedule_offset_ != 0)
    log::info("the schedule continues at step {} of {} (where the data is); step numbers go on "
              "from {}", schedule_step(), total_steps_, state_.step);
}

void Trainer::log_config_changes(const std::string& stored_toml, const std::string& path) const {
  if (stored_toml.empty()) return;
  // Keys that decide which samples the rest of the run sees, and in which order (not data.path:
  // the same dataset staged elsewhere; the block keys only when block shuffling is on).
  std::set<std::string> data_order = {"run.seed", "data.train_split", "data.train_limit",
                                      "data.shuffle", "data.aug_repeats"};
  if (cfg_.data.shuffle != "global") data_order.insert({"data.shuffle_block", "data.shuffle_window"});
  std::string all, order;
  for (const auto& c : config_changes(stored_toml, state_.config_toml)) {
    if (c.key == "train.resume") continue;
    const std::string text = c.key + " " + (c.before.empty() ? "(absent)" : c.before) + " -> " +
                             (c.after.empty() ? "(absent)" : c.after);
    all += (all.empty() ? "" : "; ") + text;
    // A key the checkpoint's build did not have is not a change of the run.
    if (data_order.count(c.key) && !c.before.empty()) order += (order.empty() ? "" : "; ") + text;
  }
  if (!all.empty()) log::info("config changed since {} was written: {}", path, all);
  if (!order.empty())
    log::warn("resuming with another data order than the checkpoint's run ({}): the rest of the "
              "run is not the one it would have trained", order);
}

void Trainer::save_stop_checkpoint(StopReason why, int signal) {
  // All ranks agreed to stop at this step: save it and leave without evaluating. The others wait
  // for rank 0's write in the barrier below, so the watchdog allows it the longer limit.
  if (!saved_this_step(/*written=*/true)) checkpoint();
  comm_.set_timeout(cfg_.dist.first_timeout_s);  // after checkpoint(), which restores the limit
  if (writer_) writer_->wait();
  // Rank 0 (which logs) knows whether this step's checkpoint is written; a failed one is
  // reported, with the newest complete checkpoint, as the run ends.
  const bool written = !writer_ || wrote(state_.step);
  if (why == StopReason::kSignal)
    log::info("stopped by signal {} ({}) at step {}{}", signal, strsignal(signal), state_.step,
              written ? "; resume with train.resume=auto" : "; its checkpoint could not be written");
  else if (written)
    log::info("stopped: non-finite loss, gradient or BatchNorm statistic at step {} "
              "(train.on_nonfinite = \"stop\"); the last good state is saved. Lower optim.lr or add "
              "warmup, then resume with train.resume=auto", state_.step);
  else
    log::info("stopped: non-finite loss, gradient or BatchNorm statistic at step {} "
              "(train.on_nonfinite = \"stop\"); the last good state could not be saved", state_.step);
  // Every rank leaves only after the checkpoint is complete: mpirun ends the job as soon as one
  // rank exits with a non-zero code.
  comm_.barrier();
}

void Trainer::checkpoint(bool buffers_averaged) {
  if (!buffers_averaged) average_statistics();  // all ranks: one set of statistics
  // Rank 0 may now wait for its previous write (or write synchronously): the others wait for its
  // hand-over in one small collective under the longer limit, and the normal limit applies again
  // from the next step (it covered that whole step, so a link cut there went unseen by the
  // watchdog for dist.first_timeout_s).
  comm_.set_timeout(cfg_.dist.first_timeout_s);
  last_saved_step_ = state_.step;
  last_saved_time_ = Clock::now();
  if (comm_.rank() == 0) {
    const double blocked = writer_->submit(snapshot());
    if (cfg_.checkpoint.async)
      log::info("checkpoint of step {} copied for the writer in {:.3f} s", state_.step, blocked);
  }
  comm_.allreduce_min(0);  // all ranks: rank 0's hand-over is done
  if (!timeout_relaxed_) comm_.set_timeout(cfg_.dist.timeout_s);  // (relaxed until the 1st step)
}

bool Trainer::take_checkpoint_error() {
  if (!writer_) return false;
  auto e = writer_->take_error();
  if (e) checkpoint_error_ = *e;
  return e.has_value();
}

bool Trainer::wrote(int64_t step) const {
  return writer_ && std::filesystem::path(writer_->last_path()).filename() == Checkpointer::name_of(step);
}

bool Trainer::saved_this_step(bool written) {
  if (last_saved_step_ != state_.step) return false;  // alike on every rank
  if (!written) return true;
  comm_.set_timeout(cfg_.dist.first_timeout_s);  // the others wait while rank 0 finishes writing
  bool failed = false;
  if (writer_) {
    writer_->wait();
    // This step's write failed when the newest written is another step's (a pending error may be
    // an earlier checkpoint's: it stays for checkpoint_writes_failed()).
    failed = !wrote(state_.step);
    if (failed) {
      take_checkpoint_error();
      log::info("the checkpoint of step {} failed ({}): writing it again", state_.step, checkpoint_error_);
    }
  }
  const bool ok = comm_.allreduce_min(failed ? 0 : 1) == 1;  // all ranks
  if (!timeout_relaxed_) comm_.set_timeout(cfg_.dist.timeout_s);
  return ok;
}

void Trainer::finish_checkpoint_writes() noexcept {
  if (!writer_) return;
  try {
    writer_->wait();
  } catch (...) {  // leaving anyway
  }
}

bool Trainer::checkpoint_writes_failed() {
  comm_.set_timeout(cfg_.dist.first_timeout_s);  // the others wait while rank 0 finishes writing
  if (writer_) writer_->wait();
  ControlFlags local;
  if (comm_.rank() == 0 && take_checkpoint_error()) {
    // The error may be an earlier write's, still in flight when the last one was submitted (a
    // periodic checkpoint a few steps before the end): when the last one was written after it,
    // nothing is lost (the run still reports the error as a warning).
    local.checkpoint_failed = !wrote(last_saved_step_);
  }
  const bool failed = coordinator_->agree(local).checkpoint_failed;
  if (failed && comm_.rank() != 0) checkpoint_error_ = "see rank 0's output";
  return failed;
}

CheckpointData Trainer::snapshot() const {
  CheckpointData d;
  d.model = params_;
  d.model.insert(d.model.end(), buffers_.begin(), buffers_.end());
  d.optimizer = optimizer_->state();
  if (scaler_) d.optimizer.insert(d.optimizer.end(), scaler_->state().begin(), scaler_->state().end());
  if (ema_) d.ema = ema_->state();
  d.trainer = state_;
  d.trainer.eval_top1 = last_top1_;
  d.trainer.eval_step = last_eval_step_;
  d.trainer.skipped_steps = skipped_steps_;
  d.trainer.train_samples = train_->size();
  d.trainer.random_streams = kRandomStreams;
  d.trainer.input_mean = norm_.mean;  // what predict and fewshot normalise with
  d.trainer.input_std = norm_.std;
  return d;
}

}  // namespace odyssey
