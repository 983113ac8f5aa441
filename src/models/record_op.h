// RecordedOp: an at::RecordFunction scope around one of Odyssey's own operators (models/linear.h,
// models/attention.h), so LibTorch's profiler and models/flops.h's MacCounter see it as they see
// LibTorch's operators: by name, with its inputs and its output.
#pragma once

#include <ATen/record_function.h>

#include <utility>
#include <vector>

namespace odyssey {

class RecordedOp {
 public:
  // make_inputs() -> std::vector<c10::IValue>, called only when a callback wants the inputs.
  template <class F>
  RecordedOp(const char* name, F make_inputs) : record_(at::RecordScope::FUNCTION) {
    if (!record_.isActive()) return;
    if (record_.needsInputs()) {
      inputs_ = make_inputs();
      record_.before(name, &inputs_);
    } else {
      record_.before(name);
    }
  }
  void set_output(const at::Tensor& out) {
    if (record_.isActive() && record_.needsOutputs()) record_.setOutputs(std::vector<c10::IValue>{out});
  }

 private:
  std::vector<c10::IValue> inputs_;  // referenced by record_ until its end callbacks run
  at::RecordFunction record_;
};

}  // namespace odyssey
