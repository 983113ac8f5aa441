#include "scaling/step_model.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"

namespace odyssey::scaling {

std::vector<double> bucket_sizes(double grad_bytes, double first, double rest) {
  ODY_CHECK(first > 0 && rest > 0, "bucket sizes must be positive", "");
  std::vector<double> out;
  double left = grad_bytes;
  while (left > 0) {
    const double b = std::min(left, out.empty() ? first : rest);
    out.push_back(b);
    left -= b;
  }
  return out;
}

double cpu_sharing_factor(const Cluster& c, int ranks_on_node, double threads_per_rank) {
  if (c.cores_per_node <= 0) return 1;
  return std::max(1.0, ranks_on_node * threads_per_rank / c.cores_per_node);
}

double expected_max_of_normals(int n) {
  if (n <= 1) return 0;
  const double q = (n - 0.375) / (n + 0.25);
  double lo = 0, hi = 10;  // Phi(x) = erfc(-x / sqrt 2) / 2 is increasing: bisect Phi(x) = q
  for (int i = 0; i < 100; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

double exposed_after_backward(const std::vector<double>& bytes, const std::vector<double>& cost,
                              double start, double end) {
  double total = 0, done = 0, comm_end = start;
  for (double b : bytes) total += b;
  for (size_t i = 0; i < bytes.size(); ++i) {
    done += bytes[i];
    const double ready = start + (end - start) * (total > 0 ? done / total : 1.0);
    comm_end = std::max(comm_end, ready) + cost[i];
  }
  return std::max(0.0, comm_end - end);
}

namespace {

StepPrediction predict_one(const Workload& w, const Cluster& c, int ranks, Algorithm a) {
  const Placement pl = place(c, ranks);
  StepPrediction s;
  s.ranks = ranks;
  s.nodes = pl.nodes;
  if (w.global_batch > 0) {
    ODY_CHECK(w.global_batch % ranks == 0,
              ODY_MSG("global batch " << w.global_batch << " does not split over " << ranks << " ranks"),
              "give a global batch that is a multiple of every rank count");
    s.batch_per_rank = w.global_batch / ranks;
  } else {
    s.batch_per_rank = w.batch_per_rank;
  }
  ODY_CHECK(s.batch_per_rank > 0, "the batch per rank must be positive", "");
  s.compute_s = s.batch_per_rank * w.compute_s_per_sample *
                cpu_sharing_factor(c, pl.per_node, w.threads_per_rank);
  // Stragglers: every rank waits (in the all-reduce) for the slowest one.
  const double straggler_s = s.compute_s * w.jitter_cv * expected_max_of_normals(ranks);
  s.algorithm = "-";
  if (ranks > 1) {
    const auto sizes = bucket_sizes(w.grad_bytes, w.first_bucket_bytes, w.bucket_bytes);
    std::vector<double> cost;
    std::set<std::string> used;
    for (double b : sizes) {
      const AllreduceCost ac = allreduce_cost(b, c, ranks, a);
      cost.push_back(ac.seconds);
      s.allreduce_s += ac.seconds;
      used.insert(algorithm_name(ac.algorithm));
    }
    s.buckets = static_cast<int>(sizes.size());
    s.algorithm.clear();
    for (const auto& u : used) s.algorithm += (s.algorithm.empty() ? "" : "+") + u;
    const double backward_start = s.compute_s * (1 - w.backward_fraction);
    s.exposed_s = w.overlap >= 0 ? (1 - w.overlap) * s.allreduce_s
                                 : exposed_after_backward(sizes, cost, backward_start, s.compute_s);
    s.exposed_s += allreduce_cost(w.control_bytes, c, ranks, a).seconds + straggler_s;
  }
  s.step_s = s.compute_s + s.exposed_s + w.optimizer_s;
  s.images_per_s = ranks * s.batch_per_rank / s.step_s;
  return s;
}

}  // namespace

StepPrediction predict_step(const Workload& w, const Cluster& c, int ranks, Algorithm a) {
  ODY_CHECK(w.compute_s_per_sample > 0, "the compute time per sample must be positive", "");
  ODY_CHECK(w.backward_fraction >= 0 && w.backward_fraction <= 1,
            "the backward fraction must lie in [0, 1]", "");
  ODY_CHECK(w.overlap <= 1, "the overlap fraction must lie in [0, 1]", "");
  StepPrediction s = predict_one(w, c, ranks, a);
  const StepPrediction one = predict_one(w, c, 1, a);
  s.efficiency = s.images_per_s / (ranks * one.images_per_s);
  return s;
}

}  // namespace odyssey::scaling
