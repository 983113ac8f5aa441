// Cluster: the machine a scaling prediction runs on, as alpha-beta links (intra-node and
// inter-node), ranks and NICs per node, CPU cores per node; and the named presets.
#pragma once

#include <string>
#include <vector>

namespace odyssey::scaling {

// One kind of link in the alpha-beta model: sending m bytes costs alpha + m / bytes_per_s.
struct Link {
  double alpha_s = 0;      // latency per message (per pipeline step of a collective), seconds
  double bytes_per_s = 0;  // bandwidth per direction, bytes per second
};

struct Cluster {
  std::string name;
  Link intra;                 // rank to rank inside a node (NVLink/NVSwitch, shared memory), per rank
  Link inter;                 // node to node, per NIC (InfiniBand, Ethernet)
  int nics_per_node = 1;      // NICs a node's ranks share for inter-node traffic
  int ranks_per_node = 8;     // GPUs per node; 0: every rank on one node
  double cores_per_node = 0;  // CPU cores a node's ranks share; 0: ranks do not share (GPUs).
                              // Beyond it compute per rank slows by ranks x threads / cores, and
                              // the intra-node link by k = ranks / cores (see oversubscribed()).
  double switch_s = 0;        // oversubscribed ranks: each message step waits this long for each
                              // other rank on its core to yield (a scheduler switch)
  std::string source;         // where the numbers come from (printed with predictions)
};

// Ranks on each node and the node count for `ranks` ranks; throws when ranks do not fill whole
// nodes (ranks > ranks_per_node and not a multiple of it).
struct Placement {
  int ranks = 1;
  int per_node = 1;
  int nodes = 1;
};
Placement place(const Cluster& cluster, int ranks);

// Ranks per core, k = max(1, ranks on the node / cores) (1 without cores_per_node), and the
// intra-node link they see: alpha + (k - 1) x switch_s per message step, 1/k of the bandwidth
// (the k ranks' copies share one core).
double oversubscription(const Cluster& cluster, int ranks_on_node);
Link oversubscribed(const Cluster& cluster, int ranks_on_node);

// The named presets (h100-ib, a100-nvlink, goyal2017, cpu-shm, ...), documented in the README.
const std::vector<Cluster>& cluster_presets();
// The preset of that name; throws an odyssey::Error listing the known names otherwise.
const Cluster& find_cluster_preset(const std::string& name);

}  // namespace odyssey::scaling
