// Calibration: fits a single node's intra-node link (alpha, bandwidth, and the scheduler switch
// of oversubscribed ranks) to measured all-reduce times by least squares on the ring model, then,
// from timings that spanned nodes, the link between nodes (alpha and the node's bandwidth) given
// the intra-node one; and reads the measurements that launch/allreduce-sweep writes.
//
// With k = max(1, p / cores) ranks per core (k = 1 without cores):
//   t = 2(p-1) alpha + 2(p-1)/p S k beta + 2(p-1)(k-1) switch
// linear in (alpha, beta, switch); switch is fitted only when some timing is oversubscribed.
#pragma once

#include <string>
#include <vector>

#include "scaling/cluster.h"

namespace odyssey::scaling {

// One timing: an all-reduce of `bytes` over `ranks` ranks on `nodes` nodes took `seconds`.
struct Timing {
  int ranks = 2;
  double bytes = 0;
  double seconds = 0;
  int nodes = 1;
};

struct LinkFit {
  Link link;             // fitted alpha (s) and bandwidth (bytes/s, = 1 / beta)
  double beta_s_per_byte = 0;
  double switch_s = 0;   // Cluster::switch_s; 0 when no timing was oversubscribed
  bool fitted_switch = false;
  bool switch_clamped = false;  // the fit gave a negative switch cost: fitted again without one
  int used = 0;          // timings inside the size range
  double rms_rel = 0;    // root mean square of (model - measured) / measured over those
  double max_rel = 0;    // the largest |model - measured| / measured
};

// The link between nodes, fitted to the timings that spanned n > 1 nodes of g ranks each, as the
// ring across nodes (allreduce_model.cpp) costs them given the intra-node link:
//   t = (2(p-1) - 2n) alpha_intra' + 2n alpha_inter + 2(p-1)/p S beta
// (alpha_intra', beta_intra' the intra-node link at k = max(1, g / cores) ranks per core) with
// beta = max(beta_intra', beta_node): fitted as the bottleneck, beta_node = 1 / (the node's
// bandwidth to the network, all its NICs together).
struct InterFit {
  double alpha_s = 0;
  double beta_node_s_per_byte = 0;
  int per_node = 0;              // g, the ranks per node of those timings
  bool network_bound = true;     // beta_node > beta_intra': the network, not the node, set the pace
  bool alpha_clamped = false;    // the fit gave a negative alpha_inter: fitted again without one
  int used = 0;
  double rms_rel = 0, max_rel = 0;
};

// Whether a timing lies in the fitted size range: min_bytes <= bytes <= max_bytes (max_bytes <= 0:
// no upper limit).
bool in_fit_range(const Timing& t, double min_bytes, double max_bytes);

// The ring model's time for one timing (its ranks, bytes and nodes) with `cores` cores a node;
// `inter` for a timing across nodes (required then).
double ring_model_s(const Timing& t, const LinkFit& fit, double cores_per_node, const InterFit* inter = nullptr);

// Weighted least squares (relative errors: each row divided by its measured time) over the
// single-node timings with min_bytes <= bytes <= max_bytes (max_bytes <= 0: no upper limit).
// Throws when the timings do not determine the unknowns (fewer distinct (ranks, bytes) points
// than unknowns).
LinkFit fit_ring_link(const std::vector<Timing>& timings, double cores_per_node = 0,
                      double min_bytes = 0, double max_bytes = 0);

// The same over the timings across nodes, given the intra-node link (`intra`: fitted, or a
// preset's). Throws when they have different ranks per node, ranks that do not fill whole nodes,
// or do not determine alpha and beta (fewer than two distinct (ranks, bytes) points).
InterFit fit_inter_link(const std::vector<Timing>& timings, const LinkFit& intra, double cores_per_node = 0,
                        double min_bytes = 0, double max_bytes = 0);

// Reads "ranks,bytes,seconds[,median_seconds[,nodes]]" lines (a header line and lines starting
// with '#' are skipped; nodes 1 when absent); throws an odyssey::Error naming the file and line of
// a malformed one.
std::vector<Timing> read_timings(const std::string& path);

}  // namespace odyssey::scaling
