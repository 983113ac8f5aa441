#include "train/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/log.h"
#include "data/epoch_plan.h"
#include "data/loader.h"
#include "dist/agreement.h"
#include "dist/param_sync.h"
#include "dist/process_env.h"
#include "dist/sync_batch_norm.h"
#include "metrics/report.h"
#include "models/flops.h"
#include "models/registry.h"
#include "models/weights.h"
#include "train/device.h"
#include "train/freeze.h"
#include "train/split_agreement.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

// Cross-entropy against mixed (soft) targets, with label smoothing applied to them.
torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                 double smoothing) {
  auto t = smoothing > 0 ? targets * (1 - smoothing) + smoothing / targets.size(1) : targets;
  return -(t * torch::log_softmax(logits, 1)).sum(1).mean();
}

}  // namespace

ShuffleOptions Trainer::shuffle_options() const {
  return {cfg_.data.shuffle != "global", cfg_.data.shuffle_block, cfg_.data.shuffle_window,
          cfg_.data.shuffle == "block_per_rank", cfg_.data.aug_repeats};
}

Trainer::~Trainer() {
  if (cfg_.dist.sync_bn) set_batch_norm_sync(nullptr);
}

Trainer::Trainer(Config config, Communicator& comm, torch::Device device,
                 std::optional<EvalOnly> eval_only)
    : cfg_(std::move(config)), comm_(comm), eval_only_(std::move(eval_only)), device_(device) {
  const bool training = !eval_only_;
  // Data: the index and both splits (the eval split only, to evaluate), checked against each other.
  DatasetIndex index;  // agreed: one node's copy may lack it, and the splits below are collectives
  agree(comm_, [&] { index = read_index(cfg_.data.path); });
  const int64_t cache_bytes = cfg_.data.cache_mb << 20;
  const bool skip = cfg_.data.on_corrupt == "skip";
  int64_t train_bytes = 0;
  if (training) {
    train_ = open_agreed_split(comm_, cfg_.data.path, index, cfg_.data.train_split,
                               cfg_.data.train_limit, cache_bytes, skip);
    if (train_->cached())
      train_bytes = train_->size() * train_->height() * train_->width() * train_->channels();
  }
  eval_ = open_agreed_split(comm_, cfg_.data.path, index, cfg_.data.eval_split, cfg_.data.eval_limit,
                            cache_bytes - train_bytes, skip);
  for (const SplitReader* r : {train_.get(), eval_.get()})
    if (r && !r->skipped().empty()) {
      log::warn("data.on_corrupt = \"skip\": {} shard(s) with {} samples left out of '{}'",
                r->skipped().size(), r->skipped_samples(), cfg_.data.path);
      for (const auto& why : r->skipped()) log::warn("  skipped: {}", why);
    }
  norm_ = {index.mean, index.std};
  class_names_ = index.class_names;
  num_classes_ = cfg_.model.num_classes > 0 ? cfg_.model.num_classes : index.num_classes;
  ODY_CHECK(num_classes_ >= index.num_classes,
            ODY_MSG(cfg_.source << ": model.num_classes = " << num_classes_ << " but dataset '"
                                << cfg_.data.path << "' has " << index.num_classes << " classes"),
            "set model.num_classes = 0 to take it from the dataset");
  // A padding of the shorter side or more lets the random offset place the crop outside the
  // image: all-zero (after normalising: constant) training images, rarely meant.
  ODY_CHECK(!training || cfg_.augment.crop_padding < std::min(index.height, index.width),
            ODY_MSG(cfg_.source << ": augment.crop_padding = " << cfg_.augment.crop_padding
                                << " is not smaller than the " << index.height << "x" << index.width
                                << " images of dataset '" << cfg_.data.path
                                << "': some random crops would hold no pixel of the image"),
            "pad by less than the shorter side (CIFAR recipes pad 4 px at 32 px)");

  // Model: the same initial weights on every rank (seeded, then rank 0's broadcast).
  torch::manual_seed(cfg_.run.seed);
  const ModelOptions model_options{num_classes_, index.channels,
                                   model_input_size(cfg_.augment, index.height, index.width),
                                   cfg_.model.dropout, cfg_.model.stochastic_depth};
  ModelRegistry::instance().find(cfg_.model.name);  // an unknown name: its own error, no context
  model_ = with_context(
      ODY_MSG(cfg_.source << ": model.name = \"" << cfg_.model.name << "\" at "
                          << model_options.image_size << " px (augment.image_size, else the "
                          << "dataset's stored size)"),
      [&] { return ModelRegistry::instance().create(cfg_.model.name, model_options); });
  if (!cfg_.model.init_from.empty() && training) {  // evaluation loads the checkpoint instead
    with_context(cfg_.source + ": model.init_from", [&] {
      load_weights(*model_, read_weights(cfg_.model.init_from), cfg_.model.reset_head,
                   cfg_.model.init_from);
    });
    log::info("initialised from {}{}", cfg_.model.init_from,
              cfg_.model.reset_head ? " (classifier head kept fresh)" : "");
  }
  // On its device, in its memory order, before anything holds its tensors (optimizer, reducer).
  model_->to(device_);
  step_times_ = std::make_unique<StepTimes>(device_);
  if (cfg_.train.channels_last) to_channels_last(*model_);
  set_tf32(cfg_.train.tf32);
  // Training FLOPs per image for throughput in FLOP/s and MFU: forward MACs x 2 FLOPs x 3
  // (backward ~ twice the forward), counted on the meta device (eval mode: dropout and
  // stochastic depth cost nothing) at the architecture's count (models/flops.h).
  // The input the loader gives: augment.image_size squares, else the stored height x width (a
  // model that cannot take it fails here, not at the first step).
  const int64_t in_h = cfg_.augment.image_size > 0 ? cfg_.augment.image_size : index.height;
  const int64_t in_w = cfg_.augment.image_size > 0 ? cfg_.augment.image_size : index.width;
  const MacCount macs =
      with_context(ODY_MSG(cfg_.source << ": model.name = \"" << cfg_.model.name << "\" on the images of '"
                                       << cfg_.data.path << "' (augment.image_size = "
                                       << cfg_.augment.image_size << ")"),
                   [&] { return measure_model(cfg_.model.name, model_options, in_h, in_w).macs; });
  train_flops_per_image_ = 6.0 * macs.total();
  // A BatchNorm given one value per channel (a 1-image micro-batch at a 1x1 map, not synced
  // across ranks) has batch variance 0: the running variance turns NaN (LibTorch's own does too;
  // PyTorch's Python module refuses it).
  const int64_t micro_batch = cfg_.train.batch_size / cfg_.train.accum_steps;
  const int64_t bn_values = micro_batch * macs.batch_norm_min_plane * (cfg_.dist.sync_bn ? comm_.size() : 1);
  ODY_CHECK(!training || bn_values != 1,
            ODY_MSG(cfg_.source << ": a micro-batch of " << micro_batch << " image (train.batch_size = "
                                << cfg_.train.batch_size << " / train.accum_steps = " << cfg_.train.accum_steps
                                << ") gives a BatchNorm of model " << cfg_.model.name << " at " << in_h << "x"
                                << in_w << " px one value per channel (its smallest map is 1x1): its "
                                << "variance is undefined and the running statistics become NaN"),
            "use micro-batches of at least 2 images, a larger augment.image_size, or dist.sync_bn = true "
            "across ranks");
  // After measure_model: the FLOP count runs a forward pass that must not synchronise.
  if (cfg_.dist.sync_bn) set_batch_norm_sync(&comm_);
  for (auto& p : model_->named_parameters()) params_.emplace_back(p.key(), p.value());
  for (auto& b : model_->named_buffers()) buffers_.emplace_back(b.key(), b.value());
  if (!training) {  // nothing to plan, no run folder to open: the checkpoint is all there is
    if (cfg_.train.precision == "fp16" && !device_.is_cuda()) {
      log::info("train.precision = \"fp16\" runs on a GPU only: evaluating in float32");
      cfg_.train.precision = "fp32";
    }
    resume_path_ = eval_only_->checkpoint;
    if (comm_.rank() == 0) {
      ODY_CHECK(fs::exists(resume_path_),
                "trainer eval --checkpoint: '" + resume_path_ + "' does not exist", "");
      resume_path_ = with_context("trainer eval --checkpoint",
                                  [&] { return checkpoint_file(resume_path_); });
    }
    return;
  }
  trainable_ = freeze_parameters(params_, cfg_.model.freeze, cfg_.source);
  if (trainable_.size() < params_.size()) {
    // Frozen layers need no weight gradients, and none before the first trained one any input
    // gradient: the FLOPs per image count only the backward products that remain.
    std::vector<std::string> frozen;
    for (const auto& [name, p] : params_)
      if (!p.requires_grad()) frozen.push_back(name);
    const double share = backward_share(cfg_.model.name, model_options, in_h, in_w, frozen);
    train_flops_per_image_ = 2.0 * static_cast<double>(macs.total()) * (1.0 + 2.0 * share);
    log::info("model.freeze: {} of {} parameter tensors frozen; backward executes {:.1f} % of the whole "
              "model's products ({:.4g} GFLOP per training image)",
              frozen.size(), params_.size(), 100.0 * share, train_flops_per_image_ * 1e-9);
  }
  optimizer_ = with_context(cfg_.source, [&] { return make_optimizer(cfg_.optim, trainable_); });
  check_precision(cfg_.train.precision, device_, cfg_.source);
  // The loss is divided by the number of ranks before backward (the sum over ranks is then the
  // mean): the scale starts at 65536 x ranks, so that backward's activation gradients carry
  // 65536 as torch.cuda.amp.GradScaler's do under DDP (at 65536 they carried 65536 / ranks: 2048
  // at 32 ranks, ~10,000 clean steps from GradScaler's and small fp16 gradients underflowing).
  if (cfg_.train.precision == "fp16") scaler_ = std::make_unique<LossScaler>(65536.0 * comm_.size());
  if (cfg_.train.ema_decay > 0)
    ema_ = std::make_unique<Ema>(params_, buffers_, cfg_.train.ema_decay, cfg_.train.ema_warmup);
  ReducerOptions reducer;
  reducer.bucket_bytes = static_cast<int64_t>(cfg_.dist.effective_bucket_mb() * (1 << 20));
  reducer.first_bucket_bytes = static_cast<int64_t>(cfg_.dist.first_bucket_mb * (1 << 20));
  reducer.compress = cfg_.dist.compress;
  reducer.check_finite = !scaler_;  // the loss scaler checks (and lowers its scale on an overflow)
  // The scaler's ranks each hold gradients at its full scale (65536 x ranks, divided by the ranks
  // in the loss): an fp16 wire sends them divided by the ranks, so the sum keeps that scale.
  if (scaler_) reducer.wire_divisor = static_cast<double>(comm_.size());
  std::vector<torch::Tensor> reduced;
  for (auto& [name, p] : trainable_) reduced.push_back(p);
  reducer_ = std::make_unique<GradientReducer>(reduced, comm_, reducer);
  coordinator_ = std::make_unique<Coordinator>(comm_);

  run_dir_ = (fs::path(cfg_.run.out_dir) / cfg_.run.name).string();
  if (cfg_.data.shuffle != "global" && !train_->cached())  // one window of blocks, plus slack
    // (a per-rank window starts mid-block: it spans one block more)
    train_->use_block_buffer(cfg_.data.shuffle_block,
                             cfg_.data.shuffle_window + (cfg_.data.shuffle == "block_per_rank" ? 3 : 2));

  // Schedule: steps are global optimizer steps; every rank takes the same number.
  const int64_t global_batch = cfg_.train.batch_size * comm_.size();
  steps_per_epoch_ = with_context(cfg_.source + ": train.batch_size = " +
                                      std::to_string(cfg_.train.batch_size) + " on " +
                                      std::to_string(comm_.size()) + " rank(s)", [&] {
    return EpochPlan(train_->size(), cfg_.train.batch_size, comm_.size(), comm_.rank(), cfg_.run.seed, 0)
        .steps();
  });
  total_steps_ = steps_per_epoch_ * cfg_.train.epochs;
  if (cfg_.train.max_steps > 0) total_steps_ = std::min(total_steps_, cfg_.train.max_steps);
  warmup_steps_ = static_cast<int64_t>(std::llround(cfg_.schedule.warmup_epochs * steps_per_epoch_));
  if (comm_.rank() == 0) {  // settings that train something else than they seem to ask
    if (cfg_.train.max_steps > steps_per_epoch_ * cfg_.train.epochs)
      log::warn("{}: train.max_steps = {} but train.epochs = {} x {} steps per epoch end the run at "
                "step {}: raise train.epochs for more", cfg_.source, cfg_.train.max_steps,
                cfg_.train.epochs, steps_per_epoch_, total_steps_);
    if (warmup_steps_ >= total_steps_)
      log::warn("{}: schedule.warmup_epochs = {} is {} steps, the whole run ({} steps): the learning "
                "rate never reaches its peak nor decays", cfg_.source, cfg_.schedule.warmup_epochs,
                warmup_steps_, total_steps_);
    if (cfg_.data.train_split == cfg_.data.eval_split)
      log::warn("{}: data.train_split and data.eval_split are both '{}': evaluations measure "
                "accuracy on the training data", cfg_.source, cfg_.data.eval_split);
  }
  peak_lr_ = scaled_lr(cfg_.optim, global_batch);

  // Run folder (rank 0 writes; every rank knows its path).
  checkpointer_ = std::make_unique<Checkpointer>(run_dir_, cfg_.checkpoint.keep_last,
                                                 cfg_.checkpoint.keep_every);
  state_.world_size = comm_.size();
  state_.batch_size = cfg_.train.batch_size;
  state_.model_name = cfg_.model.name;
  state_.config_toml = to_toml(cfg_);
  if (comm_.rank() == 0) {  // rank 0 only: lock the run folder, find the checkpoint to resume
    std::error_code ec;
    fs::create_directories(run_dir_, ec);
    ODY_CHECK(!ec && fs::is_directory(run_dir_),
              "cannot create run folder '" + run_dir_ + "' (key run.out_dir / run.name)",
              "is the folder writable?");
    // Two trainers in one folder would delete each other's checkpoints (retention, stale .tmp
    // files) and set them aside (rollback): the second one (a repeated run.name, a job array's
    // tasks sharing one) stops here.
    std::string holder;
    const auto lock = run_lock_.try_lock((fs::path(run_dir_) / ".lock").string(), &holder);
    ODY_CHECK(lock != ExclusiveFileLock::Outcome::kBusy,
              "run folder '" + run_dir_ + "' (keys run.out_dir / run.name) is in use by another "
              "trainer (" + holder + ")",
              "two runs in one folder would delete each other's checkpoints: give this one another "
              "run.name, or stop the other first (a lock an NFSv3 client held when its node "
              "crashed stays until that node is back or its lock is cleared on the server)");
    if (lock == ExclusiveFileLock::Outcome::kUnsupported)
      log::warn("cannot lock run folder '{}' ({}): nothing keeps another trainer out of it", run_dir_, holder);
    CheckpointData chosen;
    resume_path_ = checkpointer_->resolve(cfg_.train.resume, &chosen).value_or("");
    if (cfg_.train.resume == "auto" && !resume_path_.empty()) resumed_data_ = std::move(chosen);
    std::ofstream(fs::path(run_dir_) / "config.toml") << state_.config_toml;
    if (int n = checkpointer_->remove_stale_temporaries())
      log::info("removed {} unfinished file(s) of an interrupted write (*.tmp)", n);
    writer_ = std::make_unique<AsyncCheckpointWriter>(*checkpointer_, cfg_.checkpoint.async);
    // "auto": a bar only for a process started from a terminal by hand. Under mpirun every
    // rank's stdout is a pseudo-terminal whatever mpirun's own output is (a SLURM log included),
    // so launched ranks print lines unless metrics.progress = "bar".
    progress_bar_ = cfg_.metrics.progress == "bar" ||
                    (cfg_.metrics.progress == "auto" && !started_by_launcher() &&
                     log::stdout_is_terminal());
  }
}

void Trainer::start() {
  // All ranks: collectives first, so that a rank failing in the local part below cannot leave
  // the others waiting in one.
  broadcast_module(comm_, *model_);
  if (ema_) ema_->reset();  // the average starts at rank 0's weights
  comm_.broadcast(resume_path_, 0);
  if (!resume_path_.empty()) {
    const std::string context = eval_only_ ? "trainer eval --checkpoint" : cfg_.source + ": train.resume";
    with_context(context, [&] { resume_from(resume_path_, context); });
  }
  if (eval_only_) {
    log::info("model {} ({} parameters) on {}, {} ranks, {} eval samples", cfg_.model.name,
              count_parameters(*model_), device_.str(), comm_.size(), eval_->size());
    return;
  }
  open_metrics();  // rank 0: after the resume, which decides what the files keep
  const int64_t global_batch = cfg_.train.batch_size * comm_.size();
  log::info("run {}: model {} ({} parameters, {:.3g} GFLOP per training image) on {}, {} ranks x batch {} = {}, {} train / {} eval "
            "samples, {} steps per epoch, peak lr {:.4g}",
            run_dir_, cfg_.model.name, count_parameters(*model_), train_flops_per_image_ * 1e-9,
            device_.str() + (device_.is_cuda() ? (cfg_.train.tf32 ? " (TF32)" : " (IEEE float32)") : ""),
            comm_.size(),
            cfg_.train.batch_size, global_batch, train_->size(), eval_->size(), steps_per_epoch_,
            peak_lr_);
}

ControlFlags Trainer::train_step(const torch::Tensor& images, const torch::Tensor& labels,
                                 const std::vector<uint64_t>& positions, double lr,
                                 ClassificationCounts* window) {
  // Random streams derive from (seed, epoch, step): a resumed run draws the same numbers. Each
  // image's augmentation from its place in the global batch (the same on any rank count); the
  // rank's own stream (base) for the model's randomness (dropout, stochastic depth) and mixup.
  const uint64_t step_seed = mix_seed({static_cast<uint64_t>(cfg_.run.seed), static_cast<uint64_t>(state_.epoch),
                                       static_cast<uint64_t>(state_.step_in_epoch)});
  const uint64_t base = mix_seed({step_seed, static_cast<uint64_t>(comm_.rank())});
  torch::manual_seed(base ^ 1);
  Draws draws(step_seed, positions, base);
  const TrainInputs in = augment_train_batch(images_for_augment(images), labels, num_classes_,
                                             cfg_.augment, norm_, draws);
  // Gradient accumulation: micro-batches accumulate locally; the last backward all-reduces, its
  // buckets launched while backward still runs. The augmented batch moves to the model's device
  // if it is not there yet.
  const int64_t micro = cfg_.train.accum_steps;
  const auto xs = memory_order(in.images.to(device_), cfg_.train.channels_last).chunk(micro);
  const auto ys = labels.to(device_, /*non_blocking=*/true).chunk(micro);  // pinned on a GPU
  const auto ts = in.targets.defined() ? in.targets.to(device_).chunk(micro) : std::vector<torch::Tensor>{};
  std::vector<torch::Tensor> logits(micro);
  torch::Tensor loss_sum;  // float64 on the device: read once, after the backward passes
  reducer_->zero_grad();
  // BatchNorm's running statistics change in the forward pass, before the step is known to be
  // finite: kept to put back when the update is skipped (NaN there would stay for every later
  // evaluation and checkpoint). One concatenation per buffer type (a kernel or two on a GPU, not
  // one copy per buffer: EfficientNet-B0 has 147).
  const auto saved_buffers = snapshot_buffers();
  const double amp_scale = scaler_ ? scaler_->scale() : 1.0;
  for (int64_t i = 0; i < micro; ++i) {
    step_times_->begin(StepTimes::kForward);
    {
      AutocastScope autocast(cfg_.train.precision, device_);
      logits[i] = model_->forward(xs[i]);
    }
    logits[i] = logits[i].to(torch::kFloat);  // the loss in float32 whatever the precision
    auto loss = ts.empty() ? torch::nn::functional::cross_entropy(
                                 logits[i], ys[i],
                                 torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
                                     cfg_.train.label_smoothing))
                           : soft_cross_entropy(logits[i], ts[i], cfg_.train.label_smoothing);
    const auto l = loss.detach().to(torch::kDouble);
    loss_sum = loss_sum.defined() ? loss_sum + l : l;
    step_times_->end(StepTimes::kForward);
    step_times_->begin(StepTimes::kBackward);
    reducer_->prepare(/*sync=*/i == micro - 1);
    // Scaled so that the sum over ranks and micro-batches is the mean gradient (times the fp16
    // loss scale, divided out again before the update).
    (loss * (amp_scale * reducer_->loss_scale() / micro)).backward();
    step_times_->end(StepTimes::kBackward);
  }
  // The loss read after the backward passes were queued: on a GPU, reading it between forward
  // and backward would stall the host until the forward finished. A non-finite micro-batch
  // loss makes the sum non-finite.
  const double loss_value = loss_sum.item<double>() / micro;
  step_times_->collect();  // the device has finished this step's passes (and the last update)
  // BatchNorm statistics can overflow (a variance beyond float32's range) while the loss is still
  // finite: such a step is as non-finite as its loss.
  bool finite = std::isfinite(loss_value);
  if (finite) {
    const auto now = floating_buffers();  // NaN/inf propagate into a sum (GradientReducer::finish)
    finite = !now.defined() || now.sum().isfinite().item<bool>();
  }
  // All ranks: the mean gradient over the global batch, then one tiny all-reduce decides
  // together on stop requests and non-finite losses or gradients (a NaN/inf gradient with a
  // finite loss would otherwise reach the weights).
  reducer_->finish();
  const auto t_agree = Clock::now();
  ControlFlags local;
  local.signal = stop_signal();
  local.non_finite = !finite || reducer_->last_stats().non_finite;
  if (comm_.rank() == 0) {  // rank 0's requests: the checkpoint timer, a failed write
    local.checkpoint_now = cfg_.checkpoint.every_minutes > 0 &&
                           seconds_since(last_saved_time_) >= 60 * cfg_.checkpoint.every_minutes;
    local.checkpoint_failed = take_checkpoint_error();
  }
  ControlFlags flags = coordinator_->agree(local);
  comm_wait_s_ += reducer_->last_stats().exposed_s + seconds_since(t_agree);
  comm_busy_s_ += reducer_->last_stats().comm_s;
  if (flags.non_finite) {
    ++skipped_steps_;
    log::info("warning: non-finite loss, gradient or BatchNorm statistic at step {} (rank 0's loss "
              "{}): update skipped on every rank", state_.step + 1, loss_value);
    if (cfg_.optim.clip_grad_norm > 0)  // the skipped step's, unscaled (an fp16 scaler's not yet)
      grad_norm_ = grad_norm(trainable_) / (scaler_ ? scaler_->scale() : 1.0);
    reducer_->zero_grad();
    restore_buffers(saved_buffers);
    return flags;
  }
  step_times_->begin(StepTimes::kOptimizer);
  // Every rank holds the same averaged gradients, so the checks below decide alike everywhere.
  if (scaler_ && !scaler_->unscale_and_check(trainable_)) {
    ++skipped_steps_;
    log::info("fp16 gradient overflow at step {}: update skipped, loss scale now {}",
              state_.step + 1, scaler_->scale());
    if (cfg_.optim.clip_grad_norm > 0) grad_norm_ = grad_norm(trainable_);  // inf or NaN: shows it
    reducer_->zero_grad();
    step_times_->end(StepTimes::kOptimizer);
    return flags;
  }
  if (cfg_.optim.clip_grad_norm > 0) grad_norm_ = clip_grad_norm(trainable_, cfg_.optim.clip_grad_norm);
  optimizer_->step(lr);
  if (ema_) ema_->update(state_.step + 1);
  step_times_->end(StepTimes::kOptimizer);
  last_loss_ = loss_value;
  // Counted on the device (the window lives there): on a GPU the host goes on to the next step
  // while the update and these counts run; the window is read at log_every steps.
  if (window) {
    for (int64_t i = 0; i < micro; ++i) window->add(logits[i].detach(), ys[i]);
    // Each micro-batch's mean loss over its equal share of the batch (accum_steps divides it).
    window->add_objective(loss_sum * static_cast<double>(labels.size(0) / micro));
  }
  return flags;
}

TrainResult Trainer::run() {
  const auto t_start = Clock::now();
  train_start_ = t_start;
  ControlFlags halt;                        // all ranks hold the same flags
  const StopReason why = train_loop(halt);  // all ranks
  if (why == StopReason::kSignal || why == StopReason::kNonFinite) {
    save_stop_checkpoint(why, halt.signal);  // rank 0 writes; every rank waits for it
  } else if (why != StopReason::kCheckpointFailed && last_eval_.count() == 0) {
    // Resumed a finished (or paused) run without a step to take: evaluate what it holds.
    evaluate_and_report();
  }
  // All ranks: the last checkpoint is complete, or known to have failed, before anyone leaves.
  const bool last_write_failed = checkpoint_writes_failed();
  TrainResult r;
  r.top1 = last_eval_.top1();
  r.top5 = last_eval_.top5();
  r.loss = last_eval_.loss();
  r.eval_samples = last_eval_.count();
  r.steps = state_.step;
  r.paused = why == StopReason::kStepLimit && cfg_.train.stop_at_step > 0 &&
             state_.step >= cfg_.train.stop_at_step && schedule_step() < total_steps_;
  r.seconds = seconds_since(t_start);
  r.run_dir = run_dir_;
  r.preempted = why == StopReason::kSignal;
  r.stopped_nonfinite = why == StopReason::kNonFinite;
  r.skipped_steps = skipped_steps_;
  r.checkpoint_error = checkpoint_error_;
  r.checkpoint_failed = last_write_failed || why == StopReason::kCheckpointFailed;
  // The newest complete checkpoint, on every rank (only rank 0 writes), so every rank takes the
  // same exit: this start's last written, else the one it resumed from.
  r.last_checkpoint = writer_ ? writer_->last_path() : "";
  if (r.last_checkpoint.empty()) r.last_checkpoint = resume_path_;
  comm_.broadcast(r.last_checkpoint, 0);
  r.saved_this_run = !r.last_checkpoint.empty() && r.last_checkpoint != resume_path_;  // alike on every rank
  if (comm_.rank() == 0) {
    log::clear_status();
    if (cfg_.metrics.report) {  // rank 0 only
      try {
        log::info("report: {}", write_report(run_dir_));
      } catch (const Error& e) {
        log::warn("could not write the report: {}", e.what());
      }
    }
  }
  return r;
}

torch::Tensor Trainer::images_for_augment(const torch::Tensor& images_u8) const {
  // From the loader's pinned memory the copy is queued on the current stream and the CPU goes on;
  // the augmentation's kernels follow it on that stream.
  return augment_on_device() ? images_u8.to(device_, /*non_blocking=*/true) : images_u8;
}

}  // namespace odyssey
