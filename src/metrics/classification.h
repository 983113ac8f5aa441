// ClassificationCounts: reducible evaluation counts (loss sum, top-1/top-5 hits, confusion
// matrix), summed over ranks with one all-reduce and turned into metrics.
#pragma once

#include <torch/types.h>

#include <vector>

#include "dist/communicator.h"

namespace odyssey {

class ClassificationCounts {
 public:
  explicit ClassificationCounts(int64_t num_classes);

  // logits [B, K], labels int64 [B].
  void add(const torch::Tensor& logits, const torch::Tensor& labels);
  // Sums the counts of all ranks (every rank gets the totals).
  void allreduce(Communicator& comm);

  int64_t count() const;
  double loss() const;  // mean cross-entropy
  double top1() const;
  double top5() const;
  std::vector<double> per_class_recall() const;  // accuracy within each true class
  torch::Tensor confusion() const { return confusion_; }  // [true, predicted]

 private:
  int64_t k_;
  torch::Tensor sums_;       // double [3]: loss sum, top-1 hits, top-5 hits
  torch::Tensor confusion_;  // int64 [K, K]
};

}  // namespace odyssey
