#include "scaling/calibration.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "common/error.h"

namespace odyssey::scaling {

LinkFit fit_ring_link(const std::vector<Timing>& timings, double min_bytes, double max_bytes) {
  // Rows x = (2(p-1), 2(p-1)/p S), y = t, each scaled by 1 / t; normal equations of a 2x2 system.
  double a11 = 0, a12 = 0, a22 = 0, b1 = 0, b2 = 0;
  std::vector<const Timing*> used;
  std::set<std::pair<int, double>> points;
  for (const auto& t : timings) {
    if (t.bytes < min_bytes || (max_bytes > 0 && t.bytes > max_bytes)) continue;
    ODY_CHECK(t.ranks >= 2 && t.seconds > 0,
              ODY_MSG("a timing needs at least 2 ranks and a positive time (got " << t.ranks
                                                                               << " ranks, " << t.seconds << " s)"),
              "");
    const double w = 1 / t.seconds;
    const double x1 = 2.0 * (t.ranks - 1) * w, x2 = 2.0 * (t.ranks - 1) / t.ranks * t.bytes * w;
    a11 += x1 * x1, a12 += x1 * x2, a22 += x2 * x2;
    b1 += x1, b2 += x2;  // y scaled = t / t = 1
    used.push_back(&t);
    points.insert({t.ranks, t.bytes});
  }
  ODY_CHECK(points.size() >= 2, "the calibration needs timings of at least two message sizes (or rank counts)",
            "run launch/allreduce-sweep, or widen the size range");
  const double det = a11 * a22 - a12 * a12;
  ODY_CHECK(std::abs(det) > 1e-12 * a11 * a22, "the calibration timings do not determine alpha and beta",
            "give timings of several message sizes");
  LinkFit f;
  f.link.alpha_s = (b1 * a22 - b2 * a12) / det;
  f.beta_s_per_byte = (a11 * b2 - a12 * b1) / det;
  ODY_CHECK(f.beta_s_per_byte > 0, "the fitted bandwidth is not positive",
            "the timings do not grow with the message size; measure larger messages");
  f.link.bytes_per_s = 1 / f.beta_s_per_byte;
  f.used = static_cast<int>(used.size());
  double sum_sq = 0;
  for (const Timing* t : used) {
    const double model = 2.0 * (t->ranks - 1) * f.link.alpha_s +
                         2.0 * (t->ranks - 1) / t->ranks * t->bytes * f.beta_s_per_byte;
    const double rel = (model - t->seconds) / t->seconds;
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
    out.push_back(t);
  }
  ODY_CHECK(!out.empty(), "calibration file '" + path + "' holds no timings", "");
  return out;
}

}  // namespace odyssey::scaling
