// AllreduceModel: alpha-beta cost of one all-reduce of S bytes over p ranks placed on a Cluster,
// for ring, tree (NCCL's double binary tree) and hierarchical (2D) algorithms, and NCCL's choice.
//
// With n nodes of g ranks (p = n g), beta_i = 1 / intra bandwidth, beta_n = 1 / (NICs x NIC
// bandwidth) of a node, and beta = max(beta_i, beta_n) on more than one node (beta_i on one):
//
//   ring  one node:   2(p-1) a_i                               + 2(p-1)/p S beta_i
//         n nodes:    (2(p-1) - 2n) a_i + 2n a_e               + 2(p-1)/p S beta
//   tree              2((g-1) a_i + floor(log2 n) a_e)         + 2 S beta / 0.92
//   hierarchical      reduce-scatter in the node, all-reduce of S/g across the nodes (g such
//                     all-reduces share the node's NICs; ring or tree, whichever is faster),
//                     all-gather in the node:
//                     2((g-1) a_i + (g-1)/g S beta_i) + min(ring, tree) over n ranks
//
// The ring and tree latencies are those of NCCL's tuning model (src/graph/tuning.cc,
// ncclTopoTuneModel: 2(p-1) steps of which 2n cross nodes, all of them with one rank per node; the
// tree chains the ranks of a node and spans the nodes with a binary tree); the tree's bandwidth is
// half the bus bandwidth, times NCCL's 0.92. A single node's tree is a chain, so the ring always wins there. Large messages
// pipeline through both levels, so the slower level sets the bandwidth term (the max); the
// hierarchical phases run one after another, so their terms add. Ranks that share CPU cores
// (Cluster::cores_per_node) see the oversubscribed intra-node link (cluster.h).
#pragma once

#include <cstdint>
#include <string>

#include "scaling/cluster.h"

namespace odyssey::scaling {

enum class Algorithm { kRing, kTree, kHierarchical, kAuto };

// "ring", "tree", "hier", "auto".
std::string algorithm_name(Algorithm a);
// Parses those names; throws an odyssey::Error naming the option's value otherwise.
Algorithm parse_algorithm(const std::string& name);

inline constexpr double kTreeBandwidthFactor = 0.92;  // NCCL: tree busBw *= .92

struct AllreduceCost {
  double seconds = 0;
  Algorithm algorithm = Algorithm::kRing;  // the one that was used (never kAuto)
};

double ring_allreduce_s(double bytes, const Cluster& cluster, int ranks);
double tree_allreduce_s(double bytes, const Cluster& cluster, int ranks);
double hierarchical_allreduce_s(double bytes, const Cluster& cluster, int ranks);

// The cost with algorithm `a`; kAuto takes the faster of ring and tree, as NCCL does. One rank
// costs nothing.
AllreduceCost allreduce_cost(double bytes, const Cluster& cluster, int ranks, Algorithm a);

}  // namespace odyssey::scaling
