#include "dist/param_sync.h"

#include <torch/torch.h>

namespace odyssey {

void broadcast_module(Communicator& comm, torch::nn::Module& module, int root) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  // Every tensor in flight at once, then copied back (parameters and buffers are contiguous).
  std::vector<std::pair<torch::Tensor, torch::Tensor>> live;  // (module tensor, contiguous copy)
  for (auto& t : module.parameters()) live.emplace_back(t, t.detach().contiguous());
  for (auto& t : module.buffers()) live.emplace_back(t, t.contiguous());
  std::vector<WorkHandle> works;
  for (auto& [t, tmp] : live) works.push_back(comm.broadcast_async(tmp, root));
  for (auto& w : works) w->wait();
  for (auto& [t, tmp] : live)
    if (!tmp.is_same(t)) t.copy_(tmp);
}

void average_buffers(Communicator& comm, torch::nn::Module& module) {
  std::vector<torch::Tensor> floating;
  for (auto& t : module.buffers())
    if (t.is_floating_point()) floating.push_back(t);  // num_batches_tracked is equal on every rank
  average_tensors(comm, floating);
}

void average_tensors(Communicator& comm, const std::vector<torch::Tensor>& tensors) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> live;
  for (const auto& t : tensors) live.emplace_back(t, t.to(torch::kFloat).contiguous().clone());
  std::vector<WorkHandle> works;
  for (auto& [t, tmp] : live) works.push_back(comm.allreduce_sum_async(tmp));
  for (auto& w : works) w->wait();
  for (auto& [t, tmp] : live) t.copy_(tmp.div_(comm.size()));
}

}  // namespace odyssey
