// ClassificationCounts: reducible evaluation counts, summed over ranks with all-reduces (never
// logits gathered on one rank), and every metric derived from them: loss, top-1/top-5,
// confusion matrix, per-class precision/recall/F1/IoU, PR curves and average precision (from
// per-class score histograms), macro mAP, mean IoU, expected calibration error.
#pragma once

#include <torch/types.h>

#include <vector>

#include "dist/communicator.h"

namespace odyssey {

struct PrPoint {
  double recall, precision;
};

class ClassificationCounts {
 public:
  // detailed: also keep score histograms and calibration bins (evaluation); without it only the
  // loss, top-k and the confusion matrix (cheap enough for every training step). The counts live
  // on `device`: on a GPU, add() only queues kernels, so counting a step's logits does not make
  // the host wait for the step to finish; the readers below copy what they need to the host.
  explicit ClassificationCounts(int64_t num_classes, bool detailed = false,
                                torch::Device device = torch::kCPU);

  // logits [B, K], labels int64 [B] (either may be on another device: both move to the counts').
  void add(const torch::Tensor& logits, const torch::Tensor& labels);
  // Training: the loss the step minimised (label smoothing, mixup/cutmix targets), summed over
  // the samples add() counted (a float64 scalar on any device).
  void add_objective(const torch::Tensor& sample_sum);
  // Sums the counts of all ranks (every rank gets the totals); the counts move to the host first
  // (small tensors; host tensors go through MPI on every backend).
  void allreduce(Communicator& comm);

  int64_t num_classes() const { return k_; }
  bool detailed() const { return hist_.defined(); }
  int64_t count() const;
  // Means over count() samples; NaN when there is none (a window whose updates were all skipped).
  double loss() const;  // mean cross-entropy against the labels
  double top1() const;  // the argmax is the label
  double top5() const;  // fewer than min(5, K) classes rank before the label (ties by class index)
  double objective() const;  // mean of add_objective's sums
  torch::Tensor confusion() const { return confusion_; }  // int64 [true, predicted]

  // Per class k (0 where undefined, e.g. no sample of the class):
  std::vector<double> per_class_recall() const;     // TP / (TP + FN)
  std::vector<double> per_class_precision() const;  // TP / (TP + FP)
  std::vector<double> per_class_f1() const;
  std::vector<double> per_class_iou() const;        // TP / (TP + FP + FN)
  std::vector<int64_t> support() const;             // samples per true class
  double macro_f1() const;
  double mean_iou() const;  // over classes present in labels or predictions

  // Detailed only. One-vs-rest on the softmax score of class k, thresholds at the histogram's
  // bin edges (scores in one bin count as tied, as sklearn treats equal scores).
  int64_t score_bins() const { return bins_; }
  std::vector<PrPoint> pr_curve(int64_t k) const;  // by decreasing threshold
  double average_precision(int64_t k) const;        // sum (R_i - R_{i-1}) P_i, as sklearn
  std::vector<double> per_class_ap() const;
  double mean_ap() const;  // macro mean over classes with at least one sample
  // Expected calibration error over 15 equal-width confidence bins of the top-1 softmax score.
  double ece() const;
  // Per calibration bin: samples, mean confidence, accuracy (reliability diagram).
  torch::Tensor calibration() const { return calib_; }  // double [3, 15]: count, conf sum, hits
  torch::Tensor score_histogram() const { return hist_; }  // int64 [K, 2 (neg, pos), bins]

  // Rebuilds counts from saved tensors (eval-latest.h5; the report reads them back).
  static ClassificationCounts from_tensors(const torch::Tensor& sums, const torch::Tensor& confusion,
                                           const torch::Tensor& hist, const torch::Tensor& calib);
  torch::Tensor sums() const { return sums_.narrow(0, 0, 3); }  // loss sum, top-1, top-k hits

 private:
  std::vector<double> labelled_or_predicted() const;  // per class: its labels + its predictions
  int64_t k_;
  int64_t bins_ = 0;
  torch::Tensor sums_;       // double [4]: loss sum, top-1 hits, top-k hits, objective sum
  torch::Tensor confusion_;  // int64 [K, K]
  torch::Tensor hist_;       // int64 [K, 2, bins] (detailed)
  torch::Tensor calib_;      // double [3, 15] (detailed)
};

// The class with the lowest recall (the worst class is always reported): index and recall.
std::pair<int64_t, double> worst_class(const ClassificationCounts& c);

}  // namespace odyssey
