#include "dist/param_sync.h"

#include <torch/torch.h>

namespace odyssey {

GradientAverager::GradientAverager(std::vector<torch::Tensor> params) : params_(std::move(params)) {
  int64_t n = 0;
  for (const auto& p : params_) n += p.numel();
  flat_ = torch::zeros({n}, torch::kFloat);
}

void GradientAverager::average(Communicator& comm) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  int64_t off = 0;
  for (const auto& p : params_) {
    auto view = flat_.narrow(0, off, p.numel());
    if (p.grad().defined())
      view.copy_(p.grad().reshape({-1}));
    else
      view.zero_();
    off += p.numel();
  }
  comm.allreduce_sum(flat_);
  flat_.div_(static_cast<double>(comm.size()));
  off = 0;
  for (auto& p : params_) {
    auto view = flat_.narrow(0, off, p.numel()).view(p.sizes());
    if (p.grad().defined())
      p.mutable_grad().copy_(view);
    else
      p.mutable_grad() = view.clone();
    off += p.numel();
  }
}

void broadcast_module(Communicator& comm, torch::nn::Module& module, int root) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& t : module.parameters()) {
    auto tmp = t.detach().contiguous();
    comm.broadcast(tmp, root);
    t.copy_(tmp);
  }
  for (auto& t : module.buffers()) {
    auto tmp = t.contiguous();
    comm.broadcast(tmp, root);
    t.copy_(tmp);
  }
}

void average_buffers(Communicator& comm, torch::nn::Module& module) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& t : module.buffers()) {
    if (!t.is_floating_point()) continue;  // num_batches_tracked is equal on every rank
    auto tmp = t.to(torch::kFloat).contiguous();
    comm.allreduce_sum(tmp);
    t.copy_(tmp.div_(comm.size()));
  }
}

}  // namespace odyssey
