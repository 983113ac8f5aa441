// Calibration: fits a single-node link's alpha and beta to measured all-reduce times by least
// squares on the ring model t = 2(p-1) alpha + 2(p-1)/p S beta, and reads the measurements that
// launch/allreduce-sweep writes.
#pragma once

#include <string>
#include <vector>

#include "scaling/cluster.h"

namespace odyssey::scaling {

// One timing: an all-reduce of `bytes` over `ranks` ranks took `seconds`.
struct Timing {
  int ranks = 2;
  double bytes = 0;
  double seconds = 0;
};

struct LinkFit {
  Link link;             // fitted alpha (s) and bandwidth (bytes/s, = 1 / beta)
  double beta_s_per_byte = 0;
  int used = 0;          // timings inside the size range
  double rms_rel = 0;    // root mean square of (model - measured) / measured over those
  double max_rel = 0;    // the largest |model - measured| / measured
};

// Weighted least squares (relative errors: each row divided by its measured time) over the
// timings with min_bytes <= bytes <= max_bytes (max_bytes <= 0: no upper limit). Throws when
// fewer than two distinct (ranks, bytes) points remain or the fit is degenerate.
LinkFit fit_ring_link(const std::vector<Timing>& timings, double min_bytes = 0, double max_bytes = 0);

// Reads "ranks,bytes,seconds[,...]" lines (a header line and lines starting with '#' are
// skipped); throws an odyssey::Error naming the file and line of a malformed one.
std::vector<Timing> read_timings(const std::string& path);

}  // namespace odyssey::scaling
