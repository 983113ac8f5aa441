#include "scaling/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "common/error.h"

namespace odyssey::scaling {

namespace {

double ranks_per_core(int ranks, double cores) { return cores > 0 ? std::max(1.0, ranks / cores) : 1.0; }

// The row of the linear model: coefficients of (alpha, beta, switch).
std::array<double, 3> row(const Timing& t, double cores) {
  const double k = ranks_per_core(t.ranks, cores);
  return {2.0 * (t.ranks - 1), 2.0 * (t.ranks - 1) / t.ranks * t.bytes * k, 2.0 * (t.ranks - 1) * (k - 1)};
}

}  // namespace

double ring_model_s(const Timing& t, const LinkFit& f, double cores) {
  const auto x = row(t, cores);
  return x[0] * f.link.alpha_s + x[1] * f.beta_s_per_byte + x[2] * f.switch_s;
}

LinkFit fit_ring_link(const std::vector<Timing>& timings, double cores, double min_bytes, double max_bytes) {
  std::vector<const Timing*> used;
  std::set<std::pair<int, double>> points;
  bool oversubscribed = false;
  for (const auto& t : timings) {
    if (t.bytes < min_bytes || (max_bytes > 0 && t.bytes > max_bytes)) continue;
    ODY_CHECK(t.ranks >= 2 && t.seconds > 0,
              ODY_MSG("a timing needs at least 2 ranks and a positive time (got " << t.ranks << " ranks, "
                                                                               << t.seconds << " s)"),
              "");
    used.push_back(&t);
    points.insert({t.ranks, t.bytes});
    oversubscribed = oversubscribed || ranks_per_core(t.ranks, cores) > 1;
  }
  const int n = oversubscribed ? 3 : 2;
  ODY_CHECK(static_cast<int>(points.size()) >= n,
            "the calibration needs timings of at least two message sizes (or rank counts)",
            "run launch/allreduce-sweep, or widen the size range");
  // Normal equations A u = b of the rows scaled by 1 / t (so the targets are all 1).
  double a[3][4] = {};
  for (const Timing* t : used) {
    const auto x = row(*t, cores);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) a[i][j] += x[i] * x[j] / (t->seconds * t->seconds);
      a[i][3] += x[i] / t->seconds;
    }
  }
  // Gaussian elimination with partial pivoting on columns 0..n-1, right-hand side in column 3.
  double scale = 0;
  for (int i = 0; i < n; ++i) scale = std::max(scale, std::abs(a[i][i]));
  for (int c = 0; c < n; ++c) {
    int pivot = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    std::swap(a[c], a[pivot]);
    ODY_CHECK(std::abs(a[c][c]) > 1e-12 * scale, "the calibration timings do not determine alpha and beta",
              "give timings of several message sizes (and rank counts)");
    for (int r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r][c] / a[c][c];
      for (int k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      a[r][3] -= f * a[c][3];
    }
  }
  LinkFit f;
  f.link.alpha_s = a[0][3] / a[0][0];
  f.beta_s_per_byte = a[1][3] / a[1][1];
  f.fitted_switch = oversubscribed;
  if (oversubscribed) f.switch_s = a[2][3] / a[2][2];
  ODY_CHECK(f.beta_s_per_byte > 0, "the fitted bandwidth is not positive",
            "the timings do not grow with the message size; measure larger messages");
  f.link.bytes_per_s = 1 / f.beta_s_per_byte;
  f.used = static_cast<int>(used.size());
  double sum_sq = 0;
  for (const Timing* t : used) {
    const double rel = (ring_model_s(*t, f, cores) - t->seconds) / t->seconds;
    sum_sq += rel * rel;
    f.max_rel = std::max(f.max_rel, std::abs(rel));
  }
  f.rms_rel = std::sqrt(sum_sq / used.size());
  return f;
}

std::vector<Timing> read_timings(const std::string& path) {
  std::ifstream in(path);
  ODY_CHECK(in, "cannot read calibration file '" + path + "'",
            "write one with launch/allreduce-sweep > FILE");
  std::vector<Timing> out;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("ranks", 0) == 0) continue;  // the header
    std::stringstream ss(line);
    std::string f[3];
    Timing t;
    bool ok = std::getline(ss, f[0], ',') && std::getline(ss, f[1], ',') && std::getline(ss, f[2], ',');
    try {
      size_t u0 = 0, u1 = 0, u2 = 0;
      ok = ok && (t.ranks = std::stoi(f[0], &u0), t.bytes = std::stod(f[1], &u1),
                  t.seconds = std::stod(f[2], &u2), true) &&
           u0 == f[0].size() && u1 == f[1].size() && u2 == f[2].size();
    } catch (const std::exception&) {
      ok = false;
    }
    ODY_CHECK(ok, ODY_MSG(path << ":" << line_no << ": expected 'ranks,bytes,seconds', got '" << line << "'"),
              "the format launch/allreduce-sweep writes");
    ODY_CHECK(t.ranks >= 2 && t.bytes > 0 && t.seconds > 0,
              ODY_MSG(path << ":" << line_no << ": " << t.ranks << " ranks, " << t.bytes << " bytes, " << t.seconds
                           << " s: a timing needs at least 2 ranks, a message and a positive time"),
              "an all-reduce of one rank has nothing to time: sweep 2 ranks and more (launch/allreduce-sweep)");
    out.push_back(t);
  }
  ODY_CHECK(!out.empty(), "calibration file '" + path + "' holds no timings", "");
  return out;
}

}  // namespace odyssey::scaling
