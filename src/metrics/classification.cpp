#include "metrics/classification.h"

#include <torch/torch.h>

namespace odyssey {

ClassificationCounts::ClassificationCounts(int64_t k)
    : k_(k), sums_(torch::zeros({3}, torch::kDouble)), confusion_(torch::zeros({k, k}, torch::kLong)) {}

void ClassificationCounts::add(const torch::Tensor& logits, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  auto loss = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  auto pred = logits.argmax(1);
  auto top5 = std::get<1>(logits.topk(std::min<int64_t>(5, k_), 1));
  auto hit5 = top5.eq(labels.unsqueeze(1)).any(1).sum();
  sums_[0] += loss.to(torch::kDouble);
  sums_[1] += pred.eq(labels).sum().to(torch::kDouble);
  sums_[2] += hit5.to(torch::kDouble);
  confusion_.view({-1}).index_add_(0, labels * k_ + pred, torch::ones_like(labels));
}

void ClassificationCounts::allreduce(Communicator& comm) {
  comm.allreduce_sum(sums_);
  comm.allreduce_sum(confusion_);
}

int64_t ClassificationCounts::count() const { return confusion_.sum().item<int64_t>(); }

double ClassificationCounts::loss() const { return sums_[0].item<double>() / std::max<int64_t>(1, count()); }
double ClassificationCounts::top1() const { return sums_[1].item<double>() / std::max<int64_t>(1, count()); }
double ClassificationCounts::top5() const { return sums_[2].item<double>() / std::max<int64_t>(1, count()); }

std::vector<double> ClassificationCounts::per_class_recall() const {
  auto diag = confusion_.diag().to(torch::kDouble);
  auto total = confusion_.sum(1).to(torch::kDouble).clamp_min(1);
  auto r = (diag / total).contiguous();
  return std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + k_);
}

}  // namespace odyssey
