#include "scaling/cluster.h"

#include <algorithm>

#include "common/error.h"

namespace odyssey::scaling {

Placement place(const Cluster& c, int ranks) {
  ODY_CHECK(ranks >= 1, ODY_MSG("rank count " << ranks << " must be at least 1"), "");
  Placement pl;
  pl.ranks = ranks;
  if (c.ranks_per_node <= 0 || ranks <= c.ranks_per_node) {
    pl.per_node = ranks;
    pl.nodes = 1;
    return pl;
  }
  ODY_CHECK(ranks % c.ranks_per_node == 0,
            ODY_MSG(ranks << " ranks do not fill whole nodes of " << c.ranks_per_node),
            "give rank counts that are multiples of --gpus-per-node");
  pl.per_node = c.ranks_per_node;
  pl.nodes = ranks / c.ranks_per_node;
  return pl;
}

double oversubscription(const Cluster& c, int ranks_on_node) {
  return c.cores_per_node > 0 ? std::max(1.0, ranks_on_node / c.cores_per_node) : 1.0;
}

Link oversubscribed(const Cluster& c, int ranks_on_node) {
  const double k = oversubscription(c, ranks_on_node);
  return {c.intra.alpha_s + (k - 1) * c.switch_s, c.intra.bytes_per_s / k};
}

namespace {

constexpr double kGB = 1e9;
constexpr double kUs = 1e-6;

std::vector<Cluster> make_presets() {
  std::vector<Cluster> v;
  // NCCL's per-step latencies of the Simple protocol (gradient buckets are MBs): NVLink ring
  // 3.4 us, network ring 14 us (src/graph/tuning.cc, hwLat, NCCL 2.19).
  Cluster h100;
  h100.name = "h100-ib";
  h100.intra = {3.4 * kUs, 450 * kGB};  // NVLink 4 via NVSwitch: 900 GB/s both directions per GPU
  h100.inter = {14 * kUs, 50 * kGB};   // one 400 Gb/s NDR InfiniBand NIC per GPU
  h100.nics_per_node = 8;
  h100.ranks_per_node = 8;
  h100.source = "HGX/DGX H100 and H200: NVLink 4 + NVSwitch 450 GB/s per GPU and direction, "
                "8 x 400 Gb/s NDR InfiniBand per node; latencies from NCCL's tuning model";
  v.push_back(h100);

  Cluster a100 = h100;
  a100.name = "a100-ib";
  a100.intra = {3.4 * kUs, 300 * kGB};  // NVLink 3: 600 GB/s both directions per GPU
  a100.inter = {14 * kUs, 25 * kGB};   // 200 Gb/s HDR InfiniBand per GPU
  a100.source = "DGX A100: NVLink 3 + NVSwitch 300 GB/s per GPU and direction, 8 x 200 Gb/s HDR "
                "InfiniBand per node; latencies from NCCL's tuning model";
  v.push_back(a100);

  Cluster goyal;
  goyal.name = "goyal2017";
  goyal.intra = {5 * kUs, 40 * kGB};   // P100 NVLink 1 hybrid cube-mesh (assumed: half of 4 x 20 GB/s)
  goyal.inter = {20 * kUs, 6.25 * kGB};  // one 50 Gbit/s Ethernet NIC per server (latency assumed)
  goyal.nics_per_node = 1;
  goyal.ranks_per_node = 8;
  goyal.source = "Goyal et al. 2017 (Big Basin): 8 P100 per server on NVLink 1, one 50 Gbit/s "
                 "Ethernet NIC per server; latencies and the NVLink ring bandwidth assumed";
  v.push_back(goyal);

  // This 2-core machine: Open MPI 4.1's shared-memory MPI_Allreduce, fitted by `trainer simulate
  // --network cpu-shm --calibrate launch/measured/allreduce-sweep-2026-11-29.csv` (best of 9,
  // 16 B to 8 MiB, 2, 4 and 8 ranks; README, Scaling model).
  Cluster cpu;
  cpu.name = "cpu-shm";
  cpu.intra = {0.31 * kUs, 4.47 * kGB};
  cpu.inter = {0.31 * kUs, 4.47 * kGB};  // unused: one node
  cpu.nics_per_node = 1;
  cpu.ranks_per_node = 0;
  cpu.cores_per_node = 2;
  cpu.switch_s = 7.0 * kUs;
  cpu.source = "this 2-core machine, Open MPI 4.1 shared memory, fitted to launch/allreduce-sweep";
  v.push_back(cpu);
  return v;
}

}  // namespace

const std::vector<Cluster>& cluster_presets() {
  static const std::vector<Cluster> presets = make_presets();
  return presets;
}

const Cluster& find_cluster_preset(const std::string& name) {
  std::string known;
  for (const auto& c : cluster_presets()) {
    if (c.name == name) return c;
    known += (known.empty() ? "" : ", ") + c.name;
  }
  ODY_FAIL("unknown network preset '" + name + "'", "known presets: " + known);
}

}  // namespace odyssey::scaling
