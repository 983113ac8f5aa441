#include "scaling/allreduce_model.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace odyssey::scaling {

namespace {

// floor(log2 n): the depth of a binary tree over n nodes, as NCCL's tuning model counts the
// tree's inter-node steps (log2i in src/graph/tuning.cc).
int floor_log2(int n) {
  int k = 0;
  while (n >>= 1) ++k;
  return k;
}

double beta(const Link& l) { return 1.0 / l.bytes_per_s; }

// 1 / (bandwidth of all of a node's NICs together).
double node_beta(const Cluster& c) { return 1.0 / (c.nics_per_node * c.inter.bytes_per_s); }

// The bandwidth term's seconds per byte of a flat algorithm: the slower of the two levels when
// both carry traffic.
double flat_beta(const Link& intra, const Cluster& c, const Placement& pl) {
  if (pl.nodes == 1) return beta(intra);
  if (pl.per_node == 1) return node_beta(c);
  return std::max(beta(intra), node_beta(c));
}

}  // namespace

std::string algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::kRing: return "ring";
    case Algorithm::kTree: return "tree";
    case Algorithm::kHierarchical: return "hier";
    case Algorithm::kAuto: return "auto";
  }
  return "?";
}

Algorithm parse_algorithm(const std::string& name) {
  for (Algorithm a : {Algorithm::kRing, Algorithm::kTree, Algorithm::kHierarchical, Algorithm::kAuto})
    if (algorithm_name(a) == name) return a;
  ODY_FAIL("unknown all-reduce algorithm '" + name + "'", "use ring, tree, hier or auto");
}

double ring_allreduce_s(double bytes, const Cluster& c, int ranks) {
  const Placement pl = place(c, ranks);
  const int p = pl.ranks, n = pl.nodes;
  if (p == 1) return 0;
  const Link intra = oversubscribed(c, pl.per_node);
  // NCCL counts 2n of the 2(p-1) steps as crossing nodes (all of them with one rank per node).
  const int inter_steps = n == 1 ? 0 : std::min(2 * n, 2 * (p - 1));
  const double latency = (2 * (p - 1) - inter_steps) * intra.alpha_s + inter_steps * c.inter.alpha_s;
  return latency + 2.0 * (p - 1) / p * bytes * flat_beta(intra, c, pl);
}

double tree_allreduce_s(double bytes, const Cluster& c, int ranks) {
  const Placement pl = place(c, ranks);
  if (pl.ranks == 1) return 0;
  const Link intra = oversubscribed(c, pl.per_node);
  const double latency = 2 * ((pl.per_node - 1) * intra.alpha_s + floor_log2(pl.nodes) * c.inter.alpha_s);
  return latency + 2 * bytes * flat_beta(intra, c, pl) / kTreeBandwidthFactor;
}

double hierarchical_allreduce_s(double bytes, const Cluster& c, int ranks) {
  const Placement pl = place(c, ranks);
  const int g = pl.per_node, n = pl.nodes;
  if (pl.ranks == 1) return 0;
  // Reduce-scatter and all-gather inside the node.
  const Link intra = oversubscribed(c, g);
  const double in_node = 2 * ((g - 1) * intra.alpha_s + (g - 1.0) / g * bytes * beta(intra));
  if (n == 1) return in_node;
  // g all-reduces of bytes / g across the nodes at once, sharing the node's NICs: each sees
  // 1 / g of the node's bandwidth, so bytes / g at g x node_beta costs bytes x node_beta.
  const double ring = 2 * (n - 1) * c.inter.alpha_s + 2.0 * (n - 1) / n * bytes * node_beta(c);
  const double tree = 2 * floor_log2(n) * c.inter.alpha_s + 2 * bytes * node_beta(c) / kTreeBandwidthFactor;
  return in_node + std::min(ring, tree);
}

AllreduceCost allreduce_cost(double bytes, const Cluster& c, int ranks, Algorithm a) {
  switch (a) {
    case Algorithm::kRing: return {ring_allreduce_s(bytes, c, ranks), a};
    case Algorithm::kTree: return {tree_allreduce_s(bytes, c, ranks), a};
    case Algorithm::kHierarchical: return {hierarchical_allreduce_s(bytes, c, ranks), a};
    case Algorithm::kAuto: break;
  }
  const double ring = ring_allreduce_s(bytes, c, ranks), tree = tree_allreduce_s(bytes, c, ranks);
  return tree < ring ? AllreduceCost{tree, Algorithm::kTree} : AllreduceCost{ring, Algorithm::kRing};
}

}  // namespace odyssey::scaling
