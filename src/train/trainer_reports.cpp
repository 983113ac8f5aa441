// Trainer's reporting (rank 0 writes): progress lines and bar, metrics.jsonl / metrics.csv
// (opened, and rewound to a resumed checkpoint) with records of training windows and
// evaluations, eval-latest.h5.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "common/log.h"
#include "metrics/csv.h"
#include "metrics/eval_file.h"
#include "metrics/rewind.h"
#include "train/trainer.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

std::string format_duration(double s) {
  int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(t / 3600), (long long)(t / 60 % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  return buf;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux: KiB
}

}  // namespace

void Trainer::open_metrics() {
  if (comm_.rank() != 0) return;
  const std::string jsonl = (fs::path(run_dir_) / "metrics.jsonl").string();
  const std::string csv = (fs::path(run_dir_) / "metrics.csv").string();
  const std::string eval_file = (fs::path(run_dir_) / "eval-latest.h5").string();
  const std::time_t now = std::time(nullptr);
  char tag[32];
  std::strftime(tag, sizeof tag, "%Y%m%d-%H%M%S", std::gmtime(&now));
  std::error_code ec;
  if (!resume_path_.empty()) {
    // eval-latest.h5 goes with the branch set aside when it evaluated a step of that branch.
    bool eval_of_branch = fs::exists(eval_file, ec);
    int64_t read_eval_step = -1;
    try {
      if (eval_of_branch) read_eval_step = read_eval_file(eval_file).step;
      eval_of_branch = eval_of_branch && read_eval_step > state_.step;
    } catch (const std::exception&) {  // unreadable (damaged, another build's): not this run's
    }
    const std::string aside = checkpointer_->set_aside_after(
        state_.step, tag, {jsonl, csv}, eval_of_branch ? std::vector<std::string>{eval_file}
                                                       : std::vector<std::string>{});
    if (!aside.empty())
      log::warn("resumed at step {} below newer checkpoints of {} (an older one named, or newer "
                "ones damaged): they{} and copies of the metrics files are in {}", state_.step,
                run_dir_, eval_of_branch ? ", eval-latest.h5" : "", aside);
    else if (eval_of_branch && fs::remove(eval_file, ec))  // a crash after a later evaluation:
      log::info("eval-latest.h5 evaluated step {}, which this run takes again: removed (its "
                "record is dropped below)", read_eval_step);
  } else if ((fs::exists(jsonl, ec) && fs::file_size(jsonl, ec) > 0) ||
             (fs::exists(csv, ec) && !read_csv(csv).empty())) {
    // A fresh start in a folder with metrics (its checkpoints moved away, or none written before
    // a crash): the earlier files go aside whole; this run's start new ones.
    const std::string aside = checkpointer_->set_aside(0, tag, {}, {jsonl, csv, eval_file});
    log::warn("a fresh start in {}: the metrics files there (of an earlier start) moved to {}",
              run_dir_, aside);
  }
  // Records after the step this run starts from (a crash's last minutes, a branch rolled back)
  // would be recorded twice.
  const int64_t dropped_jsonl = drop_records_after(jsonl, state_.step);
  const int64_t dropped_csv = drop_records_after(csv, state_.step);
  if (dropped_jsonl + dropped_csv > 0)
    log::info("metrics: {} record(s) of metrics.jsonl and {} of metrics.csv after step {} dropped: "
              "this run takes those steps again", dropped_jsonl, dropped_csv, state_.step);
  metrics_ = JsonlWriter(jsonl);
  csv_ = CsvWriter(csv, metrics_csv_columns());
}

const std::vector<std::string>& Trainer::metrics_csv_columns() {
  static const std::vector<std::string> c = {
      "kind", "step", "epoch", "samples_seen", "loss", "loss_ce", "top1", "top5", "lr", "images_per_s",
      "data_wait_s", "forward_s", "backward_s", "comm_wait_s", "comm_busy_s", "optimizer_s",
      "window_s", "grad_norm", "skipped_steps", "peak_rss_mb", "tflops_per_rank", "mfu", "macro_f1",
      "map", "miou", "ece", "worst_class",
      "worst_recall", "ema"};
  return c;
}

void Trainer::report_progress(ClassificationCounts& window, int64_t images, double measured_s,
                              double data_wait_s) {
  // The window's own all-reduce belongs to it: a stall there (a network outage) is time spent
  // waiting for collectives, not time between windows.
  const auto t_reduce = Clock::now();
  window.allreduce(comm_);  // all ranks
  const double reduce_s = std::chrono::duration<double>(Clock::now() - t_reduce).count();
  comm_wait_s_ += reduce_s;
  const double window_s = measured_s + reduce_s;
  const double lr = lr_at(cfg_.schedule, peak_lr_, std::max<int64_t>(0, schedule_step() - 1),
                          warmup_steps_, total_steps_, steps_per_epoch_);
  const double ips = images / std::max(1e-9, window_s);
  const double tflops = ips / comm_.size() * train_flops_per_image_ * 1e-12;  // per rank
  const double mfu = cfg_.metrics.peak_tflops > 0 ? tflops / cfg_.metrics.peak_tflops : 0;
  const double eta = (total_steps_ - schedule_step()) * cfg_.train.batch_size * comm_.size() / std::max(1e-9, ips);
  // 1-based epoch of the step just taken: after an epoch's last step the counter already names
  // the next epoch (and would print "epoch 5/4" at the end of a 4-epoch run).
  const int64_t epoch_of_last_step = state_.step_in_epoch == 0 ? state_.epoch : state_.epoch + 1;
  log::info("epoch {}/{} step {}/{} loss {:.4f} acc {:.2f}% lr {:.4g} {:.0f} img/s data-wait {:.1f}% "
            "comm-wait {:.1f}% eta {}",
            epoch_of_last_step, cfg_.train.epochs, schedule_step(), total_steps_, window.objective(),
            100 * window.top1(), lr, ips, 100 * data_wait_s / std::max(1e-9, window_s),
            100 * comm_wait_s_ / std::max(1e-9, window_s), format_duration(eta));
  const double forward_s = step_times_->take(StepTimes::kForward);  // all ranks: restarts them
  const double backward_s = step_times_->take(StepTimes::kBackward);
  const double optimizer_s = step_times_->take(StepTimes::kOptimizer);
  if (metrics_.is_open()) {  // rank 0 only: one record, to metrics.jsonl and metrics.csv
    std::vector<std::pair<std::string, double>> values = {
        {"loss", window.objective()},    {"loss_ce", window.loss()},
        {"top1", window.top1()},         {"skipped_steps", static_cast<double>(skipped_steps_)},
        {"lr", lr},                      {"images_per_s", ips},
        {"data_wait_s", data_wait_s},    {"forward_s", forward_s},
        {"backward_s", backward_s},      {"comm_wait_s", comm_wait_s_},
        {"comm_busy_s", comm_busy_s_},   {"optimizer_s", optimizer_s},
        {"window_s", window_s},          {"peak_rss_mb", peak_rss_mb()},
        {"tflops_per_rank", tflops}};
    if (cfg_.metrics.peak_tflops > 0) values.emplace_back("mfu", mfu);
    if (cfg_.optim.clip_grad_norm > 0) values.emplace_back(
          "grad_norm", grad_norm_.defined() ? grad_norm_.item<double>() : 0.0);
    JsonRecord r;
    r.add("kind", "train").add("step", state_.step).add("epoch", state_.epoch)
        .add("samples_seen", state_.samples_seen);
    std::map<std::string, std::string> row = {{"kind", "train"},
                                              {"step", std::to_string(state_.step)},
                                              {"epoch", std::to_string(state_.epoch)},
                                              {"samples_seen", std::to_string(state_.samples_seen)}};
    for (const auto& [key, v] : values) {
      r.add(key, v);
      row[key] = csv_number(v);
    }
    r.add("compute_s", std::max(0.0, window_s - data_wait_s - comm_wait_s_));
    metrics_.write(r);
    csv_.write(row);
  }
  comm_wait_s_ = comm_busy_s_ = 0;
}

void Trainer::draw_progress_bar(double loss, int64_t images, double window_s) {
  if (std::chrono::duration<double>(Clock::now() - bar_drawn_).count() < 0.25 &&
      schedule_step() < total_steps_)
    return;
  bar_drawn_ = Clock::now();
  const double images_per_s = images / std::max(1e-9, window_s);
  constexpr int kWidth = 24;
  const double done = static_cast<double>(schedule_step()) / std::max<int64_t>(1, total_steps_);
  const int filled = static_cast<int>(done * kWidth);
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  const double eta = (total_steps_ - schedule_step()) * cfg_.train.batch_size * comm_.size() /
                     std::max(1e-9, images_per_s);
  log::status(fmt::format("epoch {}/{} [{}] step {}/{} {:.0f} img/s loss {:.4f} eta {}",
                          std::min(state_.epoch + 1, cfg_.train.epochs), cfg_.train.epochs, bar,
                          schedule_step(), total_steps_, images_per_s, loss, format_duration(eta)));
}

bool Trainer::eval_recorded_here() const {
  if (!metrics_.is_open()) return false;  // rank 0 only
  std::vector<std::map<std::string, std::string>> rows;
  try {
    rows = read_csv((fs::path(run_dir_) / "metrics.csv").string());
  } catch (const Error&) {
    return false;
  }
  auto field = [](const std::map<std::string, std::string>& r, const char* key) {
    auto it = r.find(key);
    return it == r.end() ? std::string() : it->second;
  };
  for (const auto& r : rows)
    if (field(r, "kind") == "eval" && field(r, "step") == std::to_string(state_.step) &&
        field(r, "ema") == (ema_ ? "1" : "0"))
      return true;
  return false;
}

void Trainer::report_eval(const ClassificationCounts& c, bool record) {
  auto [worst, worst_recall] = worst_class(c);
  std::string worst_name =
      worst < static_cast<int64_t>(class_names_.size()) ? class_names_[worst] : std::to_string(worst);
  log::info("eval after step {}{}: {} loss {:.4f} top-1 {:.2f}% top-5 {:.2f}% mAP {:.4f} mIoU "
            "{:.4f} macro-F1 {:.4f} ECE {:.4f} on {} images; worst class {} {:.1f}%",
            state_.step, ema_ ? " (EMA weights)" : "", cfg_.data.eval_split, c.loss(),
            100 * c.top1(), 100 * c.top5(), c.mean_ap(), c.mean_iou(), c.macro_f1(), c.ece(),
            c.count(), worst_name, 100 * worst_recall);
  if (!record || !metrics_.is_open()) return;  // rank 0 only below
  metrics_.write(JsonRecord()
                     .add("kind", "eval")
                     .add("step", state_.step)
                     .add("epoch", state_.epoch)
                     .add("split", cfg_.data.eval_split)
                     .add("ema", int64_t{ema_ ? 1 : 0})
                     .add("samples", c.count())
                     .add("loss", c.loss())
                     .add("top1", c.top1())
                     .add("top5", c.top5())
                     .add("macro_f1", c.macro_f1())
                     .add("map", c.mean_ap())
                     .add("miou", c.mean_iou())
                     .add("ece", c.ece())
                     .add("worst_class", worst_name)
                     .add("worst_recall", worst_recall)
                     .add("per_class_precision", c.per_class_precision())
                     .add("per_class_recall", c.per_class_recall())
                     .add("per_class_f1", c.per_class_f1())
                     .add("per_class_ap", c.per_class_ap())
                     .add("per_class_iou", c.per_class_iou()));
  csv_.write({{"kind", "eval"},
              {"step", std::to_string(state_.step)},
              {"epoch", std::to_string(state_.epoch)},
              {"samples_seen", std::to_string(state_.samples_seen)},
              {"loss", csv_number(c.loss())},
              {"top1", csv_number(c.top1())},
              {"top5", csv_number(c.top5())},
              {"macro_f1", csv_number(c.macro_f1())},
              {"map", csv_number(c.mean_ap())},
              {"miou", csv_number(c.mean_iou())},
              {"ece", csv_number(c.ece())},
              {"worst_class", worst_name},
              {"worst_recall", csv_number(worst_recall)},
              {"ema", ema_ ? "1" : "0"}});
  // The counts themselves (confusion matrix, score histograms, calibration bins) for the report
  // and for anyone who wants other metrics: the latest evaluation, replaced atomically.
  write_eval_file((fs::path(run_dir_) / "eval-latest.h5").string(), c, class_names_, state_.step);
}

}  // namespace odyssey
