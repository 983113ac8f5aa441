#include "metrics/fewshot.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <random>

#include "common/error.h"

namespace odyssey {

double FewShotResult::mean() const {
  double s = 0;
  for (double a : accuracy) s += a;
  return accuracy.empty() ? 0.0 : s / static_cast<double>(accuracy.size());
}

double FewShotResult::ci95() const {
  if (accuracy.empty()) return 0.0;
  const double m = mean();
  double ss = 0;
  for (double a : accuracy) ss += (a - m) * (a - m);
  const double n = static_cast<double>(accuracy.size());
  return 1.96 * std::sqrt(ss / n) / std::sqrt(n);
}

namespace {

// The same numbers on every platform (std::shuffle's algorithm is the library's choice).
void shuffle(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

// Samples of each class present, in label order.
std::map<int64_t, std::vector<int64_t>> samples_by_class(const torch::Tensor& labels) {
  std::map<int64_t, std::vector<int64_t>> by_class;
  auto lab = labels.to(torch::kCPU).to(torch::kLong).contiguous();
  const int64_t* lp = lab.data_ptr<int64_t>();
  for (int64_t i = 0; i < lab.size(0); ++i) by_class[lp[i]].push_back(i);
  return by_class;
}

}  // namespace

void check_fewshot_classes(const torch::Tensor& labels, const FewShotOptions& o,
                           const std::vector<std::string>& class_names) {
  ODY_CHECK(o.shots > 0 && o.episodes > 0 && o.queries >= 0, "few-shot: shots and episodes must be positive", "");
  const auto by_class = samples_by_class(labels);
  ODY_CHECK(by_class.size() >= 2, "few-shot evaluation needs samples of at least two classes", "");
  const int64_t need = o.shots + std::max<int64_t>(o.queries, 1);
  for (const auto& [c, idx] : by_class) {
    const std::string name = c >= 0 && c < static_cast<int64_t>(class_names.size())
                                 ? "'" + class_names[c] + "' (" + std::to_string(c) + ")"
                                 : std::to_string(c);
    ODY_CHECK(static_cast<int64_t>(idx.size()) >= need,
              ODY_MSG("class " << name << " has " << idx.size() << " samples; " << o.shots
                               << " shots and " << (o.queries > 0 ? std::to_string(o.queries) : "at least 1")
                               << " queries per class need " << need),
              "lower --shots (or --queries), or use a larger split");
  }
}

FewShotResult evaluate_fewshot(const torch::Tensor& features, const torch::Tensor& labels,
                               const FewShotOptions& o, const std::vector<std::string>& class_names) {
  ODY_CHECK(features.dim() == 2 && labels.dim() == 1 && features.size(0) == labels.size(0),
            "few-shot evaluation needs features [N, D] and labels [N]", "");
  check_fewshot_classes(labels, o, class_names);
  torch::NoGradGuard no_grad;
  auto by_class = samples_by_class(labels);
  const auto lab = labels.to(torch::kCPU).to(torch::kLong);
  FewShotResult r;
  r.ways = static_cast<int64_t>(by_class.size());
  std::vector<int64_t> class_of_slot;
  for (const auto& [c, idx] : by_class) class_of_slot.push_back(c);
  const auto f = torch::nn::functional::normalize(
      features.to(torch::kCPU).to(torch::kFloat), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto slot_class = torch::tensor(class_of_slot, torch::kLong);

  for (int64_t e = 0; e < o.episodes; ++e) {
    std::seed_seq seq{static_cast<uint32_t>(o.seed), static_cast<uint32_t>(o.seed >> 32),
                      static_cast<uint32_t>(e), static_cast<uint32_t>(static_cast<uint64_t>(e) >> 32)};
    std::mt19937_64 rng(seq);
    std::vector<torch::Tensor> prototypes;
    std::vector<int64_t> queries;
    for (auto& [c, idx] : by_class) {
      std::vector<int64_t> order = idx;
      shuffle(order, rng);
      auto support = torch::tensor(std::vector<int64_t>(order.begin(), order.begin() + o.shots), torch::kLong);
      prototypes.push_back(f.index_select(0, support).mean(0));
      const auto end = o.queries > 0 ? order.begin() + o.shots + o.queries : order.end();
      queries.insert(queries.end(), order.begin() + o.shots, end);
    }
    auto p = torch::nn::functional::normalize(torch::stack(prototypes),
                                              torch::nn::functional::NormalizeFuncOptions().dim(1));
    auto q = torch::tensor(queries, torch::kLong);
    auto predicted = slot_class.index_select(0, f.matmul(p.t()).index_select(0, q).argmax(1));
    const double correct = predicted.eq(lab.index_select(0, q)).sum().item<double>();
    r.accuracy.push_back(correct / static_cast<double>(queries.size()));
    r.queries_per_episode = static_cast<int64_t>(queries.size());
  }
  return r;
}

}  // namespace odyssey
