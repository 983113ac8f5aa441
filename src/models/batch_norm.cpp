#include "models/batch_norm.h"

#include "dist/communicator.h"
#include "dist/sync_batch_norm.h"

namespace odyssey {

BatchNorm2dImpl::BatchNorm2dImpl(const torch::nn::BatchNormOptions& o) : options(o) { reset(); }

void BatchNorm2dImpl::reset() {  // as torch::nn::BatchNormImplBase (affine, tracking statistics)
  const int64_t c = options.num_features();
  weight = register_parameter("weight", torch::ones({c}));
  bias = register_parameter("bias", torch::zeros({c}));
  running_mean = register_buffer("running_mean", torch::zeros({c}));
  running_var = register_buffer("running_var", torch::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
}

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "BatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=" << options.momentum().value_or(-1) << ")";
}

double BatchNorm2dImpl::count_batch() {
  num_batches_tracked += 1;
  return options.momentum().has_value() ? *options.momentum()
                                        : 1.0 / num_batches_tracked.item<double>();
}

bool BatchNorm2dImpl::synced() const {
  Communicator* comm = batch_norm_sync();
  return comm != nullptr && comm->size() > 1;
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& input) {
  double momentum = options.momentum().value_or(0.0);
  if (is_training()) {
    momentum = count_batch();
    if (synced())
      return sync_batch_norm(input, weight, bias, running_mean, running_var, momentum,
                             options.eps(), *batch_norm_sync());
  }
  return torch::batch_norm(input, weight, bias, running_mean, running_var, is_training(), momentum,
                           options.eps(), /*cudnn_enabled=*/true);
}

}  // namespace odyssey
