#include "metrics/classification.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace odyssey {

namespace {

constexpr int64_t kCalibrationBins = 15;

// Score bins for AP: equal widths in the softmax score's log-odds over [-kLogOdds, kLogOdds]
// (probabilities 1.4e-11 to 1 - 1.4e-11), so the near-0 scores of a trained model's negatives and
// of its hard positives, and the near-1 scores of its easy ones, keep their order (bins equal in
// the probability put every score below 1/bins in one, tied). 2,000 bins up to 100 classes
// (0.025 in log-odds), fewer with more classes for bounded memory (200 at 1,000: 0.25, a ratio of
// 1.28 in odds), 100 at 2,000 and more. Only the bins' order matters to AP: a histogram of an
// older file (equal widths in the probability) reads back as it was.
constexpr double kLogOdds = 25;
int64_t bins_for(int64_t k) { return std::clamp<int64_t>(200000 / std::max<int64_t>(1, k), 100, 2000); }

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

// The mean of values[k] over the classes where counted[k] > 0 (0 when none).
template <typename Count>
double mean_where(const std::vector<double>& values, const std::vector<Count>& counted) {
  double sum = 0;
  int64_t n = 0;
  for (size_t k = 0; k < values.size(); ++k)
    if (counted[k] > 0) sum += values[k], ++n;
  return safe_div(sum, n);
}

}  // namespace

ClassificationCounts::ClassificationCounts(int64_t k, bool detailed, torch::Device device)
    : k_(k),
      sums_(torch::zeros({4}, torch::dtype(torch::kDouble).device(device))),
      confusion_(torch::zeros({k, k}, torch::dtype(torch::kLong).device(device))) {
  if (detailed) {
    bins_ = bins_for(k);
    hist_ = torch::zeros({k, 2, bins_}, torch::dtype(torch::kLong).device(device));
    calib_ = torch::zeros({3, kCalibrationBins}, torch::dtype(torch::kDouble).device(device));
  }
}

ClassificationCounts ClassificationCounts::from_tensors(const torch::Tensor& sums,
                                                        const torch::Tensor& confusion,
                                                        const torch::Tensor& hist,
                                                        const torch::Tensor& calib) {
  ClassificationCounts c(confusion.size(0), hist.defined() && hist.numel() > 0);
  c.sums_.narrow(0, 0, sums.numel()).copy_(sums);
  c.confusion_.copy_(confusion);
  if (c.detailed()) {
    c.bins_ = hist.size(2);
    c.hist_ = hist.to(torch::kLong).clone();
    c.calib_ = calib.to(torch::kDouble).clone();
  }
  return c;
}

void ClassificationCounts::add(const torch::Tensor& logits_in, const torch::Tensor& labels_in) {
  torch::NoGradGuard no_grad;
  const auto device = sums_.device();
  const auto logits = logits_in.to(device, torch::kFloat);
  // Non-blocking: from the loader's pinned memory the host does not wait for the queued work.
  const auto labels = labels_in.to(device, torch::kLong, /*non_blocking=*/true);
  const auto longs = torch::dtype(torch::kLong).device(device);
  auto loss = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  auto pred = logits.argmax(1);
  // Top-k by the label's rank, ties broken by class index as argmax breaks them (the first), not
  // topk()'s set: with ties (a zero-initialised head scores every class alike) topk() returns any
  // of the tied classes and could leave out the argmax, giving top-5 below top-1. A hit when fewer
  // than k classes rank before the label; an argmax hit is one. A row holding NaN is no hit.
  const auto label_score = logits.gather(1, labels.unsqueeze(1));
  const auto lower_index = torch::arange(k_, longs).unsqueeze(0).lt(labels.unsqueeze(1));
  auto before = logits.gt(label_score).logical_or(logits.eq(label_score).logical_and(lower_index)).sum(1);
  auto hitk = before.lt(std::min<int64_t>(5, k_)).logical_and(logits.isnan().any(1).logical_not()).sum();
  sums_[0] += loss.to(torch::kDouble);
  sums_[1] += pred.eq(labels).sum().to(torch::kDouble);
  sums_[2] += hitk.to(torch::kDouble);
  confusion_.view({-1}).index_add_(0, labels * k_ + pred, torch::ones_like(labels));
  if (!detailed()) return;
  const int64_t n = logits.size(0);
  auto log_probs = torch::log_softmax(logits.to(torch::kDouble), 1);  // [B, K]
  auto probs = log_probs.exp();
  // log(1 - p) as log(-expm1(log p)): exact for p near 1 too (+-inf clamped).
  auto log_odds = (log_probs - torch::log(-torch::expm1(log_probs))).clamp_(-kLogOdds, kLogOdds);
  auto bin = ((log_odds + kLogOdds) * (bins_ / (2 * kLogOdds))).floor().to(torch::kLong).clamp_(0, bins_ - 1);
  auto positive = torch::zeros({n, k_}, longs);
  positive.scatter_(1, labels.unsqueeze(1), 1);
  auto cls = torch::arange(k_, longs).unsqueeze(0).expand({n, k_});
  auto index = (cls * 2 + positive) * bins_ + bin;
  hist_.view({-1}).index_add_(0, index.reshape({-1}), torch::ones({n * k_}, longs));
  auto conf = std::get<0>(probs.max(1));
  auto cb = (conf * kCalibrationBins).floor().to(torch::kLong).clamp_(0, kCalibrationBins - 1);
  calib_[0].index_add_(0, cb, torch::ones({n}, torch::dtype(torch::kDouble).device(device)));
  calib_[1].index_add_(0, cb, conf);
  calib_[2].index_add_(0, cb, pred.eq(labels).to(torch::kDouble));
}

void ClassificationCounts::allreduce(Communicator& comm) {
  for (auto* t : {&sums_, &confusion_, &hist_, &calib_})
    if (t->defined()) *t = t->to(torch::kCPU);
  comm.allreduce_sum(sums_);
  comm.allreduce_sum(confusion_);
  if (detailed()) {
    comm.allreduce_sum(hist_);
    comm.allreduce_sum(calib_);
  }
}

int64_t ClassificationCounts::count() const { return confusion_.sum().item<int64_t>(); }

void ClassificationCounts::add_objective(const torch::Tensor& sample_sum) {
  sums_[3] += sample_sum.to(sums_.device(), torch::kDouble);
}

namespace {
double mean_of(const torch::Tensor& sum, int64_t n) {
  return n > 0 ? sum.item<double>() / n : std::numeric_limits<double>::quiet_NaN();
}
}  // namespace

double ClassificationCounts::loss() const { return mean_of(sums_[0], count()); }
double ClassificationCounts::top1() const { return mean_of(sums_[1], count()); }
double ClassificationCounts::top5() const { return mean_of(sums_[2], count()); }
double ClassificationCounts::objective() const { return mean_of(sums_[3], count()); }

std::vector<double> ClassificationCounts::per_class_recall() const {
  auto tp = to_vector(confusion_.diag()), rows = to_vector(confusion_.sum(1));
  for (int64_t k = 0; k < k_; ++k) tp[k] = safe_div(tp[k], rows[k]);
  return tp;
}

std::vector<double> ClassificationCounts::per_class_precision() const {
  auto tp = to_vector(confusion_.diag()), cols = to_vector(confusion_.sum(0));
  for (int64_t k = 0; k < k_; ++k) tp[k] = safe_div(tp[k], cols[k]);
  return tp;
}

std::vector<double> ClassificationCounts::per_class_f1() const {
  auto p = per_class_precision(), r = per_class_recall();
  std::vector<double> f(k_);
  for (int64_t k = 0; k < k_; ++k) f[k] = safe_div(2 * p[k] * r[k], p[k] + r[k]);
  return f;
}

std::vector<double> ClassificationCounts::per_class_iou() const {
  auto tp = to_vector(confusion_.diag()), rows = to_vector(confusion_.sum(1)),
       cols = to_vector(confusion_.sum(0));
  for (int64_t k = 0; k < k_; ++k) tp[k] = safe_div(tp[k], rows[k] + cols[k] - tp[k]);
  return tp;
}

std::vector<int64_t> ClassificationCounts::support() const {
  auto rows = confusion_.sum(1).to(torch::kCPU).contiguous();
  return std::vector<int64_t>(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + k_);
}

// Both over the classes present in the labels or the predictions (sklearn's f1_score and
// jaccard_score with average="macro"): a class predicted but never in the labels counts, at 0.
double ClassificationCounts::macro_f1() const { return mean_where(per_class_f1(), labelled_or_predicted()); }

double ClassificationCounts::mean_iou() const { return mean_where(per_class_iou(), labelled_or_predicted()); }

std::vector<double> ClassificationCounts::labelled_or_predicted() const {
  return to_vector(confusion_.sum(1) + confusion_.sum(0));
}

std::vector<PrPoint> ClassificationCounts::pr_curve(int64_t k) const {
  std::vector<PrPoint> out;
  if (!detailed()) return out;
  auto h = hist_[k].to(torch::kCPU).contiguous();
  const int64_t* neg = h.data_ptr<int64_t>();
  const int64_t* pos = neg + bins_;
  double positives = 0;
  for (int64_t b = 0; b < bins_; ++b) positives += pos[b];
  if (positives == 0) return out;
  double tp = 0, fp = 0;
  for (int64_t b = bins_ - 1; b >= 0; --b) {
    if (pos[b] == 0 && neg[b] == 0) continue;
    tp += pos[b];
    fp += neg[b];
    out.push_back({tp / positives, tp / (tp + fp)});
  }
  return out;
}

double ClassificationCounts::average_precision(int64_t k) const {
  double ap = 0, prev_recall = 0;
  for (const auto& p : pr_curve(k)) {
    ap += (p.recall - prev_recall) * p.precision;
    prev_recall = p.recall;
  }
  return ap;
}

std::vector<double> ClassificationCounts::per_class_ap() const {
  std::vector<double> ap(k_);
  for (int64_t k = 0; k < k_; ++k) ap[k] = average_precision(k);
  return ap;
}

double ClassificationCounts::mean_ap() const { return mean_where(per_class_ap(), support()); }

double ClassificationCounts::ece() const {
  if (!detailed()) return 0;
  auto c = calib_.to(torch::kCPU).contiguous();
  const double* n = c.data_ptr<double>();
  const double* conf = n + kCalibrationBins;
  const double* hits = conf + kCalibrationBins;
  double total = 0, err = 0;
  for (int64_t b = 0; b < kCalibrationBins; ++b) total += n[b];
  for (int64_t b = 0; b < kCalibrationBins; ++b)
    if (n[b] > 0) err += n[b] / total * std::abs(hits[b] / n[b] - conf[b] / n[b]);
  return err;
}

std::pair<int64_t, double> worst_class(const ClassificationCounts& c) {
  auto recall = c.per_class_recall();
  auto s = c.support();
  int64_t worst = -1;
  for (int64_t k = 0; k < c.num_classes(); ++k)
    if (s[k] > 0 && (worst < 0 || recall[k] < recall[worst])) worst = k;
  if (worst < 0) return {0, 0.0};
  return {worst, recall[worst]};
}

}  // namespace odyssey
