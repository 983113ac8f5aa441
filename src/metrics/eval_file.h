// eval-latest.h5: the counts of the latest evaluation (confusion matrix, per-class score
// histograms, calibration bins, loss/top-k sums) with the class names and the step, so the
// report, and anyone with h5py, can derive every metric without the logits.
#pragma once

#include <string>
#include <vector>

#include "metrics/classification.h"

namespace odyssey {

struct EvalFile {
  ClassificationCounts counts{1};
  std::vector<std::string> class_names;
  int64_t step = 0;
};

// Rank 0: written atomically (a reader never sees half a file).
void write_eval_file(const std::string& path, const ClassificationCounts& counts,
                     const std::vector<std::string>& class_names, int64_t step);
EvalFile read_eval_file(const std::string& path);

}  // namespace odyssey
