// StepModel: predicted time of one data-parallel training step on N ranks: compute, the bucketed
// gradient all-reduce overlapped with backward, the per-step control all-reduce, the optimizer;
// and from it throughput and scaling efficiency against one rank.
//
//   step = compute + exposed communication + optimizer
//
// compute = batch x seconds per sample x max(1, ranks on a node x threads / cores on a node)
// (ranks that share CPU cores slow each other; GPUs do not). Gradients are produced at an even
// rate during backward, the last backward_fraction of compute, in buckets (the first of
// first_bucket_bytes, then bucket_bytes) that are all-reduced one after another, each as soon
// as it is complete and the previous one is done: what Odyssey's GradientReducer and PyTorch
// DDP do. Exposed = how far the last bucket ends after backward, plus the control all-reduce.
// With a measured overlap fraction h instead, exposed = (1 - h) x all buckets' time.
//
// Optionally, stragglers: when each rank's compute time varies from step to step by a coefficient
// of variation cv (normal), a synchronous step waits for the slowest of p ranks, on average
// compute x cv x E[max of p standard normals] longer (Blom's approximation; 0 for one rank); the
// others spend that wait in the all-reduce, so it counts as exposed communication, as the
// trainer's comm_wait_s counts it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scaling/allreduce_model.h"
#include "scaling/cluster.h"

namespace odyssey::scaling {

inline constexpr double kMiB = 1024.0 * 1024.0;

struct Workload {
  double compute_s_per_sample = 0;   // forward + backward, one rank with the machine to itself
  int64_t batch_per_rank = 0;        // weak scaling (the per-rank batch is fixed), or
  int64_t global_batch = 0;          // strong scaling (batch per rank = global / ranks)
  double backward_fraction = 2.0 / 3;  // share of compute that is backward
  double overlap = -1;               // measured share of all-reduce time hidden; < 0: simulate
  double grad_bytes = 0;             // gradient bytes all-reduced per step
  double bucket_bytes = 4 * kMiB;    // Odyssey's dist.bucket_mb
  double first_bucket_bytes = 1 * kMiB;  // dist.first_bucket_mb
  double optimizer_s = 0;            // per step, after the all-reduce
  double control_bytes = 48;         // the per-step control all-reduce (6 int64), never hidden
  double threads_per_rank = 1;       // CPU threads per rank (against cluster.cores_per_node)
  double jitter_cv = 0;              // step-to-step variation of a rank's compute (stragglers)
};

struct StepPrediction {
  int ranks = 1;
  int nodes = 1;
  int64_t batch_per_rank = 0;
  int buckets = 0;
  double compute_s = 0;     // forward + backward of one step, after CPU sharing
  double allreduce_s = 0;   // all gradient buckets, back to back
  double exposed_s = 0;     // what the step waits for: the gradients' tail, the control all-reduce,
                            // stragglers
  double step_s = 0;
  double images_per_s = 0;  // over all ranks
  double efficiency = 1;    // images_per_s / (ranks x one rank's images_per_s)
  std::string algorithm;    // of the gradient buckets: ring, tree, hier, ring+tree; "-" on one rank
};

// Bucket sizes in launch order: first_bucket_bytes, then bucket_bytes each, the last one partial.
std::vector<double> bucket_sizes(double grad_bytes, double first_bucket_bytes, double bucket_bytes);

// Compute slowdown of one rank from sharing the node's cores: max(1, ranks x threads / cores).
double cpu_sharing_factor(const Cluster& cluster, int ranks_on_node, double threads_per_rank);

// E[max of n independent standard normal variables], Blom's approximation
// Phi^-1((n - 0.375) / (n + 0.25)); 0 for n = 1 (within 0.03 of the exact value for n >= 2).
double expected_max_of_normals(int n);

// Exposed all-reduce time of buckets produced evenly during [backward_start, backward_end] and
// sent back to back in order (cost[i] seconds each): max(0, end of the last - backward_end).
double exposed_after_backward(const std::vector<double>& bucket_bytes,
                              const std::vector<double>& cost_s, double backward_start,
                              double backward_end);

// One step on `ranks` ranks; efficiency against the same workload on one rank.
StepPrediction predict_step(const Workload& w, const Cluster& cluster, int ranks, Algorithm a);

}  // namespace odyssey::scaling
