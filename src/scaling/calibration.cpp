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

// The root mean square and the largest of |model - measured| / measured over the timings.
template <typename Model>
void relative_residuals(const std::vector<const Timing*>& used, Model&& model, double& rms, double& largest) {
  double sum_sq = 0;
  largest = 0;
  for (const Timing* t : used) {
    const double rel = (model(*t) - t->seconds) / t->seconds;
    sum_sq += rel * rel;
    largest = std::max(largest, std::abs(rel));
  }
  rms = std::sqrt(sum_sq / used.size());
}

// A timing across nodes: the intra-node link its g ranks per node see (alpha', beta'), the ring's
// steps inside and across nodes (NCCL's count, as allreduce_model.cpp), its bandwidth factor.
struct AcrossNodes {
  double alpha_intra, beta_intra;
  int inter_steps, intra_steps;
  double bandwidth_factor;  // 2(p-1)/p S
};
AcrossNodes across_nodes(const Timing& t, const LinkFit& f, double cores) {
  const int g = t.ranks / t.nodes;
  const double k = ranks_per_core(g, cores);
  const int inter_steps = std::min(2 * t.nodes, 2 * (t.ranks - 1));
  return {f.link.alpha_s + (k - 1) * f.switch_s, k * f.beta_s_per_byte, inter_steps,
          2 * (t.ranks - 1) - inter_steps, 2.0 * (t.ranks - 1) / t.ranks * t.bytes};
}

}  // namespace

bool in_fit_range(const Timing& t, double min_bytes, double max_bytes) {
  return t.bytes >= min_bytes && (max_bytes <= 0 || t.bytes <= max_bytes);
}

double ring_model_s(const Timing& t, const LinkFit& f, double cores, const InterFit* inter) {
  if (t.nodes > 1) {
    ODY_CHECK(inter != nullptr, "a timing across nodes needs the fitted inter-node link", "");
    const AcrossNodes a = across_nodes(t, f, cores);
    // One rank a node: no traffic inside nodes, the network's beta alone (allreduce_model.cpp's
    // flat_beta).
    const double beta = t.ranks == t.nodes ? inter->beta_node_s_per_byte
                                           : std::max(a.beta_intra, inter->beta_node_s_per_byte);
    return a.intra_steps * a.alpha_intra + a.inter_steps * inter->alpha_s + a.bandwidth_factor * beta;
  }
  const auto x = row(t, cores);
  return x[0] * f.link.alpha_s + x[1] * f.beta_s_per_byte + x[2] * f.switch_s;
}

LinkFit fit_ring_link(const std::vector<Timing>& timings, double cores, double min_bytes, double max_bytes) {
  std::vector<const Timing*> used;
  std::set<std::pair<int, double>> points;
  bool oversubscribed = false;
  for (const auto& t : timings) {
    if (t.nodes > 1 || !in_fit_range(t, min_bytes, max_bytes)) continue;
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
  // The first n unknowns of (alpha, beta, switch) by the normal equations A u = b of the rows
  // scaled by 1 / t (so the targets are all 1); the others 0.
  auto solve = [&](int n) {
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
    std::array<double, 3> u = {};
    for (int i = 0; i < n; ++i) u[i] = a[i][3] / a[i][i];
    return u;
  };
  auto u = solve(n);
  LinkFit f;
  f.fitted_switch = oversubscribed;
  if (n == 3 && u[2] < 0) {  // noise: the oversubscribed timings show no switch cost; fitted without
    u = solve(2);
    f.switch_clamped = true;
  }
  f.link.alpha_s = u[0];
  f.beta_s_per_byte = u[1];
  f.switch_s = u[2];
  ODY_CHECK(f.beta_s_per_byte > 0, "the fitted bandwidth is not positive",
            "the timings do not grow with the message size; measure larger messages");
  f.link.bytes_per_s = 1 / f.beta_s_per_byte;
  f.used = static_cast<int>(used.size());
  relative_residuals(used, [&](const Timing& t) { return ring_model_s(t, f, cores); }, f.rms_rel, f.max_rel);
  return f;
}

InterFit fit_inter_link(const std::vector<Timing>& timings, const LinkFit& intra, double cores, double min_bytes,
                        double max_bytes) {
  InterFit f;
  std::vector<const Timing*> used;
  std::set<std::pair<int, double>> points;
  for (const auto& t : timings) {
    if (t.nodes <= 1 || !in_fit_range(t, min_bytes, max_bytes)) continue;
    ODY_CHECK(t.ranks % t.nodes == 0,
              ODY_MSG("a timing of " << t.ranks << " ranks on " << t.nodes << " nodes: the ranks do not fill "
                                     << "whole nodes alike"),
              "sweep with the same number of ranks on every node (mpirun --map-by ppr:G:node)");
    const int g = t.ranks / t.nodes;
    ODY_CHECK(f.per_node == 0 || f.per_node == g,
              ODY_MSG("timings across nodes with " << f.per_node << " and " << g << " ranks per node"),
              "one calibration describes one kind of node: sweep the node counts with the same ranks per node");
    f.per_node = g;
    used.push_back(&t);
    points.insert({t.ranks, t.bytes});
  }
  ODY_CHECK(points.size() >= 2, "the inter-node fit needs timings across nodes of at least two message sizes",
            "run launch/allreduce-sweep over several nodes (MPIRUN_ARGS=\"--hostfile FILE ...\")");
  // Weighted least squares for (alpha_inter, beta): the rows and the targets divided by t.
  double a00 = 0, a01 = 0, a11 = 0, b0 = 0, b1 = 0;
  for (const Timing* t : used) {
    const AcrossNodes a = across_nodes(*t, intra, cores);
    const double x0 = a.inter_steps / t->seconds, x1 = a.bandwidth_factor / t->seconds;
    const double y = (t->seconds - a.intra_steps * a.alpha_intra) / t->seconds;
    a00 += x0 * x0, a01 += x0 * x1, a11 += x1 * x1, b0 += x0 * y, b1 += x1 * y;
  }
  const double det = a00 * a11 - a01 * a01;
  ODY_CHECK(std::abs(det) > 1e-12 * a00 * a11, "the timings across nodes do not determine alpha and beta",
            "give timings of several message sizes");
  f.alpha_s = (b0 * a11 - b1 * a01) / det;
  f.beta_node_s_per_byte = (a00 * b1 - a01 * b0) / det;
  if (f.alpha_s < 0) {  // noise in timings that hardly show a latency: fitted without one
    f.alpha_s = 0;
    f.beta_node_s_per_byte = b1 / a11;
    f.alpha_clamped = true;
  }
  ODY_CHECK(f.beta_node_s_per_byte > 0, "the fitted inter-node bandwidth is not positive",
            "the timings across nodes do not grow with the message size; measure larger messages");
  f.network_bound = f.per_node == 1 || f.beta_node_s_per_byte > across_nodes(*used.front(), intra, cores).beta_intra;
  f.used = static_cast<int>(used.size());
  relative_residuals(used, [&](const Timing& t) { return ring_model_s(t, intra, cores, &f); }, f.rms_rel,
                     f.max_rel);
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
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();  // CRLF files
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
    // The fifth field, when there: the node count (launch/allreduce-sweep since 2026-12-02).
    std::string skip, nodes;
    if (ok && std::getline(ss, skip, ',') && std::getline(ss, nodes, ',')) {
      try {
        size_t u = 0;
        t.nodes = std::stoi(nodes, &u);
        ok = u == nodes.size() && t.nodes >= 1 && t.nodes <= t.ranks;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    ODY_CHECK(ok,
              ODY_MSG(path << ":" << line_no << ": expected 'ranks,bytes,seconds[,median_seconds,nodes]', got '"
                           << line << "'"),
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
