#include "dist/sync_batch_norm.h"

#include <atomic>
#include <vector>

#include "common/error.h"
#include "dist/communicator.h"

namespace odyssey {

namespace {

std::atomic<Communicator*> g_sync{nullptr};

std::vector<int64_t> reduce_dims(const torch::Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

bool is_reduced_float(torch::ScalarType t) { return t == torch::kBFloat16 || t == torch::kHalf; }

// Shape [1, C, 1, ...] for broadcasting a per-channel vector against x.
torch::Tensor per_channel(const torch::Tensor& v, const torch::Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = x.size(1);
  return v.view(shape);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor weight,
                               torch::Tensor bias, torch::Tensor running_mean,
                               torch::Tensor running_var, double momentum, double eps,
                               int64_t comm_address) {
    auto* comm = reinterpret_cast<Communicator*>(static_cast<intptr_t>(comm_address));
    const int64_t c = x.size(1);
    const auto dims = reduce_dims(x);
    auto xd = x.to(torch::kDouble);
    auto stats = torch::cat({xd.sum(dims), (xd * xd).sum(dims),
                             torch::full({1}, static_cast<double>(x.numel() / std::max<int64_t>(c, 1)),
                                         xd.options())})  // on x's device: CUDA stats go to NCCL
                     .contiguous();
    // Queued on the device: the statistics reach the next kernels without the host waiting for
    // them (on a GPU, a host wait at every layer would drain its queue), so the count stays a
    // tensor. It is read only when this rank's own count cannot prove the global one above 1
    // (a global count of 1 means every rank holds at most one value, so all of them read it and
    // fail together).
    comm->allreduce_sum_queued(stats);
    const auto count = stats.narrow(0, 2 * c, 1);
    if (x.numel() / std::max<int64_t>(c, 1) <= 1)
      ODY_CHECK(count.item<double>() > 1, "SyncBatchNorm: one value per channel over all ranks",
                "BatchNorm needs more than one sample per channel; raise train.batch_size");
    auto mean = stats.narrow(0, 0, c) / count;
    auto var = (stats.narrow(0, c, c) / count - mean * mean).clamp_min(0);  // biased
    auto invstd = (var + eps).rsqrt();
    {
      torch::NoGradGuard no_grad;
      if (running_mean.defined()) {
        running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
        running_var.mul_(1 - momentum)
            .add_((var * (count / (count - 1))).to(running_var.scalar_type()), momentum);
      }
    }
    // bf16/fp16 inputs (autocast) are normalised in float32 and the output rounded once, as
    // cuDNN's batch norm does: a bf16 mean alone would be off by up to 1/256 of its size.
    const auto dtype = x.scalar_type();
    const auto xf = is_reduced_float(dtype) ? x.to(torch::kFloat) : x;
    auto meanf = mean.to(xf.scalar_type()), invstdf = invstd.to(xf.scalar_type());
    auto xhat = (xf - per_channel(meanf, xf)) * per_channel(invstdf, xf);
    auto y = weight.defined() ? xhat * per_channel(weight, xf) + per_channel(bias, xf) : xhat;
    ctx->save_for_backward({xhat, weight, invstdf});
    ctx->saved_data["count"] = count;
    ctx->saved_data["comm"] = comm_address;
    ctx->saved_data["dtype"] = static_cast<int64_t>(dtype);
    return y.to(dtype);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(
        static_cast<intptr_t>(ctx->saved_data["comm"].toInt()));
    auto saved = ctx->get_saved_variables();
    auto xhat = saved[0], weight = saved[1], invstd = saved[2];
    const auto count = ctx->saved_data["count"].toTensor();  // float64, on x's device
    const auto dtype = static_cast<torch::ScalarType>(ctx->saved_data["dtype"].toInt());
    auto dy = grads[0].to(xhat.scalar_type());  // float32 for bf16/fp16 inputs, as forward
    const int64_t c = xhat.size(1);
    const auto dims = reduce_dims(xhat);
    auto sum_dy = dy.sum(dims), sum_dy_xhat = (dy * xhat).sum(dims);
    auto global = torch::cat({sum_dy, sum_dy_xhat}).to(torch::kDouble).contiguous();
    comm->allreduce_sum_queued(global);
    auto mean_dy = (global.narrow(0, 0, c) / count).to(dy.scalar_type());
    auto mean_dy_xhat = (global.narrow(0, c, c) / count).to(dy.scalar_type());
    auto scale = weight.defined() ? invstd * weight : invstd;
    // dx = w * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat)), means over the global batch.
    auto dx = per_channel(scale, dy) *
              (dy - per_channel(mean_dy, dy) - xhat * per_channel(mean_dy_xhat, dy));
    torch::Tensor dw, db;
    if (weight.defined()) dw = sum_dy_xhat, db = sum_dy;  // local: the reducer sums them
    return {dx.to(dtype), dw, db, torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

void set_batch_norm_sync(Communicator* comm) { g_sync.store(comm); }
Communicator* batch_norm_sync() { return g_sync.load(); }

torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, torch::Tensor running_mean,
                              torch::Tensor running_var, double momentum, double eps,
                              Communicator& comm) {
  return SyncBatchNormFn::apply(x, weight, bias, running_mean, running_var, momentum, eps,
                                static_cast<int64_t>(reinterpret_cast<intptr_t>(&comm)));
}

}  // namespace odyssey
