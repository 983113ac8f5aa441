#include "metrics/eval_file.h"

#include <torch/torch.h>

#include <mutex>

#include "checkpoint/checkpoint.h"
#include "common/error.h"
#include "common/h5.h"
#include "common/hdf5_lock.h"

namespace odyssey {

void write_eval_file(const std::string& path, const ClassificationCounts& counts,
                     const std::vector<std::string>& class_names, int64_t step) {
  NamedTensors t = {{"sums", counts.sums()}, {"confusion", counts.confusion()}};
  if (counts.detailed()) {
    t.emplace_back("score_histogram", counts.score_histogram());
    t.emplace_back("calibration", counts.calibration());
  }
  write_tensor_file(path, "eval", t, [&](hid_t file, const std::string&) {
    h5::write_attr(file, "format", std::string("odyssey-eval"));
    h5::write_attr(file, "step", step);
    h5::write_attr(file, "class_names", class_names);
  });
}

EvalFile read_eval_file(const std::string& path) {
  NamedTensors t = read_weights(path, "eval", "is it an eval-latest.h5?");
  auto get = [&](const std::string& name) {
    for (auto& [k, v] : t)
      if (k == name) return v;
    return torch::Tensor();
  };
  auto sums = get("sums"), confusion = get("confusion");
  ODY_CHECK(sums.defined() && confusion.defined() && confusion.dim() == 2,
            "'" + path + "' lacks /eval/sums or /eval/confusion", "is it an eval-latest.h5?");
  EvalFile out;
  out.counts = ClassificationCounts::from_tensors(sums, confusion, get("score_histogram"),
                                                  get("calibration"));
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::Handle file = h5::open_file(path, /*writable=*/false);
  out.step = h5::read_attr_int(file, "step", path);
  out.class_names = h5::read_attr_strings(file, "class_names", path);
  return out;
}

}  // namespace odyssey
