// Trainer's loop over epochs: log windows, the steps' checkpoints, each epoch's end (statistics
// averaging, evaluation, checkpoint) and the evaluation itself.
#include <torch/torch.h>

#include <algorithm>

#include "common/log.h"
#include "data/augment.h"
#include "data/epoch_plan.h"
#include "data/loader.h"
#include "train/device.h"
#include "train/freeze.h"
#include "train/precision.h"
#include "train/trainer.h"

namespace odyssey {

void Trainer::evaluate_and_report() {
  last_eval_ = evaluate();
  const bool recorded = eval_recorded_here();  // rank 0 decides; only rank 0 records
  report_eval(last_eval_, /*record=*/!recorded);
  if (recorded)
    log::info("the metrics files hold the evaluation after step {} already: not recorded again",
              state_.step);
  last_top1_ = last_eval_.top1();
  last_eval_step_ = state_.step;
}

Trainer::StopReason Trainer::train_loop(ControlFlags& halt) {
  // A stop (preemption) right after an epoch's last step saved the next epoch's start before
  // that epoch's evaluation ran: evaluate now, on the same weights (its checkpoint averaged the
  // BatchNorm statistics, as the epoch's end does).
  if (state_.step > 0 && state_.step_in_epoch == 0 && state_.epoch > 0 &&
      state_.epoch < cfg_.train.epochs && state_.epoch % cfg_.train.eval_every == 0 &&
      last_eval_step_ < state_.step) {
    log::info("evaluating epoch {}, whose end the stop at step {} preceded", state_.epoch, state_.step);
    evaluate_and_report();  // all ranks
  }
  set_train_mode(*model_);
  auto step_limit = [this] {
    return (cfg_.train.max_steps > 0 && schedule_step() >= cfg_.train.max_steps) ||
           (cfg_.train.stop_at_step > 0 && state_.step >= cfg_.train.stop_at_step);
  };
  // A log window: its steps' counts, the images they took (every rank's), its time (epoch ends'
  // evaluation and every checkpoint, not training, left out) and the loader's waits.
  ClassificationCounts window(num_classes_, /*detailed=*/false, device_);
  int64_t window_images = 0;
  auto t_window = Clock::now();
  double wait_window = 0;
  auto report_window = [&] {  // all ranks (one small all-reduce); a window with steps only
    if (window_images == 0) return;
    report_progress(window, window_images, seconds_since(t_window), wait_window);
    window = ClassificationCounts(num_classes_, /*detailed=*/false, device_);
    window_images = 0;
    t_window = Clock::now();
    wait_window = 0;
  };
  auto not_training = [&](const auto& work) {  // its time is left out of the window's
    const auto t = Clock::now();
    work();
    t_window += Clock::now() - t;
  };
  auto end_epoch = [&](bool last) { not_training([&] { end_of_epoch(last); }); };  // all ranks
  while (state_.epoch < cfg_.train.epochs) {
    if (step_limit()) return StopReason::kStepLimit;
    EpochPlan plan(train_->size(), cfg_.train.batch_size, comm_.size(), comm_.rank(),
                   cfg_.run.seed, state_.epoch, shuffle_options());
    if (state_.step_in_epoch >= plan.steps()) {  // re-planned resume past this epoch's end
      next_epoch();
      // Its end (evaluation, checkpoint) is due, unless the stop evaluated this step already
      // (train.stop_at_step does; a signal does not).
      if (last_eval_step_ < state_.step) end_epoch(state_.epoch >= cfg_.train.epochs);
      continue;
    }
    Loader loader(
        *train_, [&plan](int64_t s) { return plan.batch(s); }, state_.step_in_epoch, plan.steps(),
        cfg_.data.prefetch, static_cast<int>(cfg_.data.readers), pin_for());
    double waited = 0;
    bool limit = false;
    const std::vector<uint64_t> positions = plan.positions();
    while (auto batch = loader.next()) {
      const double lr = lr_at(cfg_.schedule, peak_lr_, schedule_step(), warmup_steps_,
                              total_steps_, steps_per_epoch_);
      halt = train_step(batch->images, batch->labels, positions, lr, &window);  // all ranks
      if (timeout_relaxed_) {  // setup and warm-up are over
        comm_.set_timeout(cfg_.dist.timeout_s);
        timeout_relaxed_ = false;
      }
      state_.step += 1;
      state_.samples_seen += plan.global_batch();
      window_images += plan.global_batch();
      // The data cursor: the next step of this epoch, or step 0 of the next.
      state_.step_in_epoch = batch->step + 1;
      if (state_.step_in_epoch == plan.steps()) next_epoch();
      if (halt.stop()) return StopReason::kSignal;
      if (halt.non_finite && cfg_.train.on_nonfinite == "stop") return StopReason::kNonFinite;
      if (halt.checkpoint_failed) {
        if (cfg_.checkpoint.on_error == "stop") return StopReason::kCheckpointFailed;
        log::info("continuing after a failed checkpoint (checkpoint.on_error = \"continue\")");
      }
      const int64_t every = cfg_.checkpoint.every_steps;
      if ((every > 0 && state_.step % every == 0) || halt.checkpoint_now)
        not_training([&] { checkpoint(); });  // all ranks
      wait_window += loader.wait_seconds() - waited;
      waited = loader.wait_seconds();
      if (progress_bar_) draw_progress_bar(last_loss_, window_images, seconds_since(t_window));
      if ((limit = step_limit())) break;
      if (state_.step % cfg_.train.log_every == 0) report_window();  // all ranks
    }
    const bool last = limit || state_.epoch >= cfg_.train.epochs;
    if (last) report_window();  // the run's last steps, short of a full window, are recorded too
    end_epoch(last);
    if (limit) return StopReason::kStepLimit;
  }
  return StopReason::kDone;
}

void Trainer::next_epoch() {
  state_.epoch += 1;
  state_.step_in_epoch = 0;
}

void Trainer::end_of_epoch(bool last) {
  // All ranks: one set of BatchNorm statistics, then evaluation over disjoint parts.
  average_statistics();
  const int64_t epochs_done = state_.epoch;
  const bool eval_due = last || (state_.step_in_epoch == 0 && epochs_done % cfg_.train.eval_every == 0);
  if (eval_due) {
    last_eval_ = evaluate();
    last_top1_ = last_eval_.top1();
    last_eval_step_ = state_.step;
    report_eval(last_eval_);
  }
  const int64_t every = cfg_.checkpoint.every_epochs;
  const bool ckpt_due = last || (every > 0 && state_.step_in_epoch == 0 && epochs_done % every == 0);
  if (ckpt_due && !saved_this_step(/*written=*/last)) checkpoint(/*buffers_averaged=*/true);
}

ClassificationCounts Trainer::evaluate() {
  torch::NoGradGuard no_grad;
  model_->eval();
  if (ema_) ema_->swap();  // evaluate the averaged weights (same on every rank)
  ClassificationCounts counts(num_classes_, /*detailed=*/true, device_);  // no per-batch sync
  auto [begin, end] = eval_range(eval_->size(), comm_.size(), comm_.rank());
  const int64_t b = std::max<int64_t>(1, cfg_.train.batch_size * 2);
  const int64_t steps = (end - begin + b - 1) / b;
  Loader loader(
      *eval_,
      [begin = begin, end = end, b](int64_t s) {
        std::vector<int64_t> idx;
        for (int64_t i = begin + s * b; i < std::min(end, begin + (s + 1) * b); ++i) idx.push_back(i);
        return idx;
      },
      0, steps, cfg_.data.prefetch, static_cast<int>(cfg_.data.readers), pin_for());
  while (auto batch = loader.next()) {
    const auto images = prepare_eval(images_for_augment(batch->images), norm_, cfg_.augment);
    AutocastScope autocast(cfg_.train.precision, device_);
    auto x = memory_order(images.to(device_), cfg_.train.channels_last);
    counts.add(model_->forward(x), batch->labels);
  }
  if (ema_) ema_->swap();
  counts.allreduce(comm_);  // all ranks
  set_train_mode(*model_);
  return counts;
}

}  // namespace odyssey
