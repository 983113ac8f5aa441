// Calibration: fits a single node's intra-node link (alpha, bandwidth, and the scheduler switch
// of oversubscribed ranks) to measured all-reduce times by least squares on the ring model, and
// reads the measurements that launch/allreduce-sweep writes.
//
// With k = max(1, p / cores) ranks per core (k = 1 without cores):
//   t = 2(p-1) alpha + 2(p-1)/p S k beta + 2(p-1)(k-1) switch
// linear in (alpha, beta, switch); switch is fitted only when some timing is oversubscribed.
#pragma once

#include <string>
#include <vector>

#include "scaling/cluster.h"

namespace odyssey::scaling {

// One timing: an all-reduce of `bytes` over `ranks` ranks on one node took `seconds`.
struct Timing {
  int ranks = 2;
  double bytes = 0;
  double seconds = 0;
};

struct LinkFit {
  Link link;             // fitted alpha (s) and bandwidth (bytes/s, = 1 / beta)
  double beta_s_per_byte = 0;
  double switch_s = 0;   // Cluster::switch_s; 0 when no timing was oversubscribed
  bool fitted_switch = false;
  int used = 0;          // timings inside the size range
  double rms_rel = 0;    // root mean square of (model - measured) / measured over those
  double max_rel = 0;    // the largest |model - measured| / measured
};

// The ring model's time for one timing's ranks and bytes on one node with `cores` cores.
double ring_model_s(const Timing& t, const LinkFit& fit, double cores_per_node);

// Weighted least squares (relative errors: each row divided by its measured time) over the
// timings with min_bytes <= bytes <= max_bytes (max_bytes <= 0: no upper limit). Throws when the
// timings do not determine the unknowns (fewer distinct (ranks, bytes) points than unknowns).
LinkFit fit_ring_link(const std::vector<Timing>& timings, double cores_per_node = 0,
                      double min_bytes = 0, double max_bytes = 0);

// Reads "ranks,bytes,seconds[,...]" lines (a header line and lines starting with '#' are
// skipped); throws an odyssey::Error naming the file and line of a malformed one.
std::vector<Timing> read_timings(const std::string& path);

}  // namespace odyssey::scaling
