// Trainer: the data-parallel training loop. Every rank runs the same story; blocks that only
// rank 0 performs (writing files) say so.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "checkpoint/async_writer.h"
#include "checkpoint/checkpointer.h"
#include "common/file.h"
#include "config/config.h"
#include "data/augment.h"
#include "data/epoch_plan.h"
#include "data/split_reader.h"
#include "dist/communicator.h"
#include "dist/coordinator.h"
#include "dist/gradient_reducer.h"
#include "dist/param_sync.h"
#include "metrics/classification.h"
#include "metrics/csv.h"
#include "metrics/jsonl.h"
#include "models/classifier.h"
#include "train/ema.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "train/step_times.h"

namespace odyssey {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct TrainResult {
  double top1 = 0, top5 = 0, loss = 0;
  int64_t eval_samples = 0;
  int64_t steps = 0;
  double seconds = 0;
  bool preempted = false;   // stopped by a signal; a checkpoint of the stop step was written
  bool stopped_nonfinite = false;  // train.on_nonfinite = "stop" fired; last good state saved
  int64_t skipped_steps = 0;  // updates skipped for a non-finite loss (the whole run's)
  bool paused = false;  // ended at train.stop_at_step before the run's last step
  bool checkpoint_failed = false;  // stopped by a failed write, or the last write failed
  std::string checkpoint_error;  // the last failed write's error (rank 0's message), or ""
  std::string last_checkpoint;   // the newest complete checkpoint (rank 0), or ""
  bool saved_this_run = false;   // last_checkpoint was written by this start (not the resumed one)

  std::string run_dir;
};

class Trainer {
 public:
  // `trainer eval`: one checkpoint's weights evaluated, nothing else. No train split is read, no
  // run folder touched (a live run's may be given), no optimizer state loaded (the config may
  // name another optimizer); the checkpoint's EMA weights replace the live ones when it has them
  // and `ema` is on, as training's evaluations and `checkpoint export` use them.
  struct EvalOnly {
    std::string checkpoint;
    bool ema = true;
  };
  // Everything that can fail because of user input happens in these two, each run on every rank
  // inside agree(): the constructor does local work only (dataset, model, weights, run folder and
  // the resume choice on rank 0); start() runs the collectives (initial broadcast, the resume
  // path), then loads the checkpoint to resume from (to evaluate, with eval_only).
  // device: where the model trains (resolved from train.device by the caller; CPU by default).
  Trainer(Config config, Communicator& comm, torch::Device device = torch::kCPU,
          std::optional<EvalOnly> eval_only = std::nullopt);
  ~Trainer();  // clears the SyncBatchNorm communicator (dist.sync_bn)
  void start();

  // Trains to the end (all epochs or train.max_steps), evaluates, checkpoints.
  TrainResult run();
  // Rank 0, leaving on an error of its own: lets the checkpoint write in flight (async) finish
  // before the job is aborted, rather than leave a .tmp file and lose that checkpoint.
  void finish_checkpoint_writes() noexcept;

  // Evaluates the current model (its EMA weights when on) on the eval split (all ranks; counts
  // summed on every rank).
  ClassificationCounts evaluate();
  const std::vector<std::string>& class_names() const { return class_names_; }
  // The checkpoint file resumed from or evaluated (a run folder or `latest` resolved); "" if none.
  const std::string& resume_path() const { return resume_path_; }

 private:
  ShuffleOptions shuffle_options() const;  // data.shuffle, data.shuffle_block/window
  enum class StopReason { kDone, kStepLimit, kSignal, kNonFinite, kCheckpointFailed };

  // context: what named the path (the config's train.resume, trainer eval's --checkpoint), the
  // prefix of a read error.
  void resume_from(const std::string& path, const std::string& context);
  // Rank 0, resuming: logs the keys whose values differ from the checkpoint's stored config,
  // and warns when one of them changes the data order (run.seed, the train split or limit,
  // shuffling).
  void log_config_changes(const std::string& stored_toml, const std::string& path) const;
  // The epochs and steps; returns why it ended, with the flags of the last step in halt.
  StopReason train_loop(ControlFlags& halt);
  void save_stop_checkpoint(StopReason why, int signal);
  void next_epoch();  // moves the data cursor to step 0 of the next epoch
  // One step on every rank; returns the flags all ranks agreed on at this step. The update is
  // skipped on every rank when any rank's loss is not finite. positions: the images' places in
  // the global batch (EpochPlan::positions), the keys of their augmentation draws.
  ControlFlags train_step(const torch::Tensor& images, const torch::Tensor& labels,
                          const std::vector<uint64_t>& positions, double lr, ClassificationCounts* window);
  void end_of_epoch(bool last);
  // images: the global batches the window's steps took, skipped updates included (their
  // forward and backward ran); measured_s: its time, epoch ends left out.
  void report_progress(ClassificationCounts& window, int64_t images, double measured_s, double data_wait_s);
  // Logs an evaluation; rank 0 records it in the metrics files unless `record` is false.
  void report_eval(const ClassificationCounts& counts, bool record = true);
  // Rank 0: this run folder's metrics.csv holds an evaluation after the current step, of the same
  // weights (EMA or live); false on the other ranks.
  bool eval_recorded_here() const;
  // All ranks: evaluates now and reports it, recorded unless the metrics hold this step's
  // evaluation already (a rerun of a finished run, or a stop during the evaluation's write).
  void evaluate_and_report();
  // Rank 0: opens metrics.jsonl and metrics.csv to append, after dropping their records of steps
  // after the one this run starts from. Resumed below newer checkpoints of the folder, first sets
  // that branch aside (Checkpointer::set_aside_after, with copies of the metrics files); a fresh
  // start moves earlier metrics files aside whole.
  void open_metrics();
  // The columns of metrics.csv (train and eval records share them; empty where not applicable).
  static const std::vector<std::string>& metrics_csv_columns();
  // Rank 0, on a terminal: redraws the progress bar (at most a few times a second).
  void draw_progress_bar(double loss, int64_t images, double window_s);
  // All ranks: BatchNorm statistics averaged, then rank 0 hands the state to the writer.
  void checkpoint(bool buffers_averaged = false);
  // All ranks: BatchNorm statistics (and the EMA's averages of them) replaced by their mean over
  // ranks, before an evaluation or a checkpoint.
  void average_statistics();
  // Every buffer's values, floating-point ones (BatchNorm statistics) and the others (counters)
  // each in one flat tensor; restore_buffers() puts them back.
  struct BufferSnapshot {
    torch::Tensor floating, other;
  };
  BufferSnapshot snapshot_buffers() const;
  torch::Tensor floating_buffers() const;  // the BatchNorm statistics in one flat tensor
  void restore_buffers(const BufferSnapshot& s);
  // All ranks: whether this step's checkpoint was handed over; with `written`, also whether its
  // write succeeded (rank 0 waits for it; a failed one then counts as not saved, so the run's
  // last checkpoint is tried again instead of skipped as done).
  bool saved_this_step(bool written);
  // All ranks: waits for rank 0's writes; true when one failed since the last look (agreed).
  bool checkpoint_writes_failed();
  // Rank 0: the writer's error since the last look, noted for the result.
  bool take_checkpoint_error();
  // Rank 0: whether the newest checkpoint the writer completed is step's (false without a writer).
  bool wrote(int64_t step) const;
  CheckpointData snapshot() const;

  Config cfg_;
  Communicator& comm_;
  std::optional<EvalOnly> eval_only_;
  std::string run_dir_;
  std::string resume_path_;  // chosen by rank 0, broadcast in start()
  std::optional<CheckpointData> resumed_data_;  // rank 0: resume_path_'s data, read choosing it
  std::unique_ptr<SplitReader> train_, eval_;  // no train_ with eval_only_
  Normalize norm_;
  std::vector<std::string> class_names_;
  int64_t num_classes_ = 0;
  std::shared_ptr<Classifier> model_;
  NamedTensors params_, buffers_;
  NamedTensors trainable_;  // params_ less those frozen by model.freeze
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<Ema> ema_;           // train.ema_decay > 0
  std::unique_ptr<LossScaler> scaler_;  // train.precision = "fp16"
  torch::Device device_{torch::kCPU};
  // augment.device "auto" on a GPU: pinned uint8 batches, augmented on the device.
  bool augment_on_device() const { return device_.is_cuda() && cfg_.augment.device == "auto"; }
  std::optional<torch::Device> pin_for() const {  // the loaders' page-locked batches
    return augment_on_device() ? std::optional<torch::Device>(device_) : std::nullopt;
  }
  // A batch's uint8 images where augmentation runs (on a GPU: copied without blocking).
  torch::Tensor images_for_augment(const torch::Tensor& images_u8) const;
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<Coordinator> coordinator_;
  int64_t skipped_steps_ = 0;
  bool timeout_relaxed_ = true;  // dist.first_timeout_s applies until the first step is done
  // Communication time over the current logging window: what the training thread waited for
  // collectives (exposed) and how long they ran (busy).
  double comm_wait_s_ = 0, comm_busy_s_ = 0;
  // Step time split over the window (this rank): forward, backward (computation; buckets
  // overlap it), optimizer (clipping, update, EMA); GPU time on a GPU. Exposed sync is
  // comm_wait_s_.
  std::unique_ptr<StepTimes> step_times_;
  // Before clipping, at the last step (computed when clipping is on); on the model's device.
  torch::Tensor grad_norm_;
  double last_loss_ = 0;  // this rank's loss at the last step
  double train_flops_per_image_ = 0;  // 6 x forward MACs
  bool progress_bar_ = false;
  Clock::time_point bar_drawn_ = Clock::now();
  Clock::time_point train_start_ = Clock::now();
  ExclusiveFileLock run_lock_;  // rank 0: run_dir/.lock, held while the run lives (freed last)
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<AsyncCheckpointWriter> writer_;  // rank 0 only
  int64_t last_saved_step_ = -1;
  int64_t averaged_step_ = -1;  // the step whose statistics average_statistics() made one set
  Clock::time_point last_saved_time_ = Clock::now();
  std::string checkpoint_error_;
  JsonlWriter metrics_;  // rank 0 only
  CsvWriter csv_;        // rank 0 only
  TrainerState state_;
  int64_t steps_per_epoch_ = 0, total_steps_ = 0, warmup_steps_ = 0;
  // The schedule's step (lr, warmup, train.max_steps, progress): where the data cursor is, in
  // steps of this run's global batch. It differs from state_.step, the count of updates that names
  // checkpoints and metrics records and only grows, after a resume with another global batch or
  // training split: schedule_offset_ is set at each resume.
  int64_t schedule_offset_ = 0;
  int64_t schedule_step() const { return state_.step + schedule_offset_; }
  double peak_lr_ = 0;
  double last_top1_ = -1;
  int64_t last_eval_step_ = -1;  // the step last_top1_ followed (recorded in the metrics files)
  ClassificationCounts last_eval_{1};
};

}  // namespace odyssey
