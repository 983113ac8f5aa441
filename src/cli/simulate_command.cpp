#include "cli/simulate_command.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "common/file.h"
#include "metrics/csv.h"
#include "common/exit_codes.h"
#include "config/config.h"
#include "common/text.h"
#include "models/flops.h"
#include "models/registry.h"
#include "scaling/allreduce_model.h"
#include "scaling/calibration.h"
#include "scaling/cluster.h"
#include "scaling/step_model.h"

namespace odyssey {

using namespace scaling;

namespace {

const char* kUsage = "see trainer --help (trainer simulate)";

// Forward multiply-accumulates per image at the default resolution (torchvision's model docs,
// "GFLOPS", which count multiply-adds). Training costs about 3 forward passes of 2 FLOPs per MAC.
struct Args {
  std::string model;
  int64_t classes = 1000, in_channels = 3, image_size = 0;
  double params = 0;
  double grad_bytes_per_param = 4;
  double compute_ms = 0, gmacs = 0, peak_tflops = 989, mfu = 0;
  int64_t batch = 0, global_batch = 0;
  std::vector<int> gpus = {8, 16, 32, 64, 128, 256, 512, 1024};
  std::string network = "h100-ib";
  std::optional<double> gpus_per_node, nics_per_node, intra_alpha_us, intra_bw, inter_alpha_us,
      inter_bw, cores_per_node, switch_us;
  double threads_per_rank = 1;
  std::string algo = "auto";
  double bucket_mb = 0, first_bucket_mb = 1, backward_fraction = 2.0 / 3, overlap = -1;
  double optimizer_ms = 0, jitter = 0;
  int baseline = 1;
  std::string calibrate, validate;
  int validate_base = 0;  // the run whose compute time the validation starts from (0: smallest)
  double fit_min_bytes = 0, fit_max_mb = 8;
  bool anchors = false;
  std::string csv;  // the table's rows, for plotting
};

double number(const std::string& option, const std::string& value, double lo, double hi) {
  try {
    size_t used = 0;
    const double v = std::stod(value, &used);
    if (used == value.size() && std::isfinite(v) && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  ODY_USAGE_FAIL(ODY_MSG("option " << option << " needs a number in [" << lo << ", " << hi << "], got '"
                             << value << "'"),
           kUsage);
}

double whole(const std::string& option, double v) {
  ODY_USAGE_CHECK(v == std::floor(v), ODY_MSG("option " << option << " needs a whole number, got " << v), kUsage);
  return v;
}

std::vector<int> rank_list(const std::string& option, const std::string& value) {
  std::vector<int> out;
  std::string text = value;
  for (char& c : text)
    if (c == ',') c = ' ';
  std::stringstream ss(text);
  std::string item;
  while (ss >> item) out.push_back(static_cast<int>(positive_int_option(option, item)));
  ODY_USAGE_CHECK(!out.empty(), "option " + option + " needs rank counts, e.g. \"8 16 32\"", kUsage);
  return out;
}

Args parse(const std::vector<std::string>& args) {
  Args a;
  constexpr double kBig = 1e30;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (k == "--anchors") {
      a.anchors = true;
      continue;
    }
    ODY_USAGE_CHECK(k.rfind("--", 0) == 0, "unexpected argument '" + k + "' for trainer simulate", kUsage);
    ODY_USAGE_CHECK(i + 1 < args.size(), "option " + k + " needs a value", kUsage);
    const std::string& v = args[++i];
    if (k == "--model") a.model = v;
    else if (k == "--classes") a.classes = positive_int_option(k, v);
    else if (k == "--in-channels") a.in_channels = positive_int_option(k, v);
    else if (k == "--image-size") a.image_size = positive_int_option(k, v);
    else if (k == "--params") a.params = number(k, v, 1, kBig);
    else if (k == "--grad-bytes-per-param") a.grad_bytes_per_param = number(k, v, 0.125, 16);
    else if (k == "--compute-ms-per-sample") a.compute_ms = number(k, v, 1e-9, kBig);
    else if (k == "--gmacs-per-image") a.gmacs = number(k, v, 1e-9, kBig);
    else if (k == "--peak-tflops") a.peak_tflops = number(k, v, 1e-9, kBig);
    else if (k == "--mfu") a.mfu = number(k, v, 1e-6, 1);
    else if (k == "--batch") a.batch = positive_int_option(k, v);
    else if (k == "--global-batch") a.global_batch = positive_int_option(k, v);
    else if (k == "--gpus") a.gpus = rank_list(k, v);
    else if (k == "--network") a.network = v;
    else if (k == "--gpus-per-node") a.gpus_per_node = whole(k, number(k, v, 0, 1 << 20));
    else if (k == "--nics-per-node") a.nics_per_node = whole(k, number(k, v, 1, 1024));
    else if (k == "--intra-alpha-us") a.intra_alpha_us = number(k, v, 0, kBig);
    else if (k == "--intra-bw") a.intra_bw = number(k, v, 1e-9, kBig);
    else if (k == "--inter-alpha-us") a.inter_alpha_us = number(k, v, 0, kBig);
    else if (k == "--inter-bw") a.inter_bw = number(k, v, 1e-9, kBig);
    else if (k == "--cores-per-node") a.cores_per_node = number(k, v, 0, kBig);
    else if (k == "--switch-us") a.switch_us = number(k, v, 0, kBig);
    else if (k == "--threads-per-rank") a.threads_per_rank = number(k, v, 1, kBig);
    else if (k == "--algo") {  // one of the choices --help lists: anything else is a usage error
      as_usage([&] { return parse_algorithm(v); });
      a.algo = v;
    }
    else if (k == "--bucket-mb") a.bucket_mb = number(k, v, 1e-6, kBig);
    else if (k == "--first-bucket-mb") a.first_bucket_mb = number(k, v, 1e-6, kBig);
    else if (k == "--backward-fraction") a.backward_fraction = number(k, v, 0, 1);
    else if (k == "--overlap") a.overlap = number(k, v, 0, 1);
    else if (k == "--optimizer-ms") a.optimizer_ms = number(k, v, 0, kBig);
    else if (k == "--jitter") a.jitter = number(k, v, 0, 10);
    else if (k == "--baseline-gpus") a.baseline = static_cast<int>(positive_int_option(k, v));
    else if (k == "--calibrate") a.calibrate = v;
    else if (k == "--fit-min-bytes") a.fit_min_bytes = number(k, v, 0, kBig);
    else if (k == "--fit-max-mb") a.fit_max_mb = number(k, v, 0, kBig);
    else if (k == "--validate") a.validate = v;
    else if (k == "--csv") a.csv = v;
    else if (k == "--validate-base") a.validate_base = static_cast<int>(positive_int_option(k, v));
    else ODY_USAGE_FAIL("unknown option '" + k + "' for trainer simulate", kUsage);
  }
  ODY_USAGE_CHECK(a.batch == 0 || a.global_batch == 0, "give --batch or --global-batch, not both", kUsage);
  return a;
}

// The cluster: a preset, its numbers replaced by any explicit option.
Cluster make_cluster(const Args& a) {
  Cluster c = find_cluster_preset(a.network);
  if (a.gpus_per_node) {
    const int g = static_cast<int>(*a.gpus_per_node);
    // The preset's NICs per GPU stay (h100-ib: one each, so 4 GPUs a node have 4 NICs, not 8).
    if (!a.nics_per_node && c.ranks_per_node > 0 && g > 0)
      c.nics_per_node = std::max(1, static_cast<int>(std::lround(1.0 * c.nics_per_node * g / c.ranks_per_node)));
    // A one-node preset (cpu-shm) has no network between nodes to borrow.
    ODY_USAGE_CHECK(c.ranks_per_node > 0 || g == 0 || (a.inter_alpha_us && a.inter_bw),
                    "--network " + a.network + " describes one node: with --gpus-per-node give the network "
                    "between nodes too (--inter-alpha-us, --inter-bw)",
                    kUsage);
    c.ranks_per_node = g;
  }
  if (a.nics_per_node) c.nics_per_node = static_cast<int>(*a.nics_per_node);
  if (a.intra_alpha_us) c.intra.alpha_s = *a.intra_alpha_us * 1e-6;
  if (a.intra_bw) c.intra.bytes_per_s = *a.intra_bw * 1e9;
  if (a.inter_alpha_us) c.inter.alpha_s = *a.inter_alpha_us * 1e-6;
  if (a.inter_bw) c.inter.bytes_per_s = *a.inter_bw * 1e9;
  if (a.cores_per_node) c.cores_per_node = *a.cores_per_node;
  if (a.switch_us) c.switch_s = *a.switch_us * 1e-6;
  return c;
}

// A registry model's parameters and forward MACs at --classes, --in-channels and --image-size
// (its default size when not given), measured on the meta device (no weights allocated).
ModelCost registry_cost(const Args& a) {
  const auto& entry = ModelRegistry::instance().find(a.model);
  return measure_model(a.model, {a.classes, a.in_channels, a.image_size ? a.image_size : entry.default_image_size});
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string describe(const Cluster& c) {
  std::ostringstream os;
  os << c.name << ": intra-node alpha " << fmt("%.3g", c.intra.alpha_s * 1e6) << " us, "
     << fmt("%.4g", c.intra.bytes_per_s / 1e9) << " GB/s per rank";
  if (c.ranks_per_node > 0)
    os << "; inter-node alpha " << fmt("%.3g", c.inter.alpha_s * 1e6) << " us, " << c.nics_per_node
       << " x " << fmt("%.4g", c.inter.bytes_per_s / 1e9) << " GB/s NICs per node of "
       << c.ranks_per_node << " ranks";
  else
    os << "; all ranks on one node";
  if (c.cores_per_node > 0)
    os << "; " << fmt("%g", c.cores_per_node) << " cores per node, switch "
       << fmt("%.3g", c.switch_s * 1e6) << " us";
  return os.str();
}

// The workload at p ranks: with auto_bucket (no --bucket-mb), the trainer's own choice of bucket
// size (dist.bucket_mb = 0): 4 MiB while the job fits one node, 25 MiB once it spans nodes.
Workload at_ranks(Workload w, const Cluster& c, int p, bool auto_bucket) {
  if (auto_bucket)
    w.bucket_bytes = DistConfig::default_bucket_mb(c.ranks_per_node > 0 && p > c.ranks_per_node) * kMiB;
  return w;
}

// Prints the table; with csv_path, writes its rows there too (seconds, fractions; one header line).
void print_table(const Workload& w, const Cluster& c, const std::vector<int>& gpus, Algorithm algo,
                 int baseline, bool auto_bucket, const std::string& csv_path) {
  const StepPrediction base = predict_step(at_ranks(w, c, baseline, auto_bucket), c, baseline, algo);
  std::ostringstream csv;
  csv << "gpus,nodes,batch_per_gpu,compute_s,allreduce_s,exposed_s,step_s,images_per_s,efficiency,"
      << "efficiency_vs_baseline,baseline_gpus,algorithm,network\n";
  const bool rel = baseline != 1;
  std::printf("| GPUs | nodes | batch/GPU | compute ms | all-reduce ms | exposed ms | step ms | img/s | efficiency |%s algorithm |\n",
              rel ? ODY_MSG(" eff. vs " << baseline << " |").c_str() : "");
  std::printf("|---|---|---|---|---|---|---|---|---|%s---|\n", rel ? "---|" : "");
  for (int p : gpus) {
    const StepPrediction s = predict_step(at_ranks(w, c, p, auto_bucket), c, p, algo);
    std::printf("| %d | %d | %lld | %.2f | %.2f | %.2f | %.2f | %.0f | %.1f %% |", p, s.nodes,
                static_cast<long long>(s.batch_per_rank), s.compute_s * 1e3, s.allreduce_s * 1e3,
                s.exposed_s * 1e3, s.step_s * 1e3, s.images_per_s, 100 * s.efficiency);
    const double vs_baseline = s.images_per_s / (base.images_per_s * p / baseline);
    if (rel) std::printf(" %.1f %% |", 100 * vs_baseline);
    std::printf(" %s |\n", s.algorithm.c_str());
    csv << p << "," << s.nodes << "," << s.batch_per_rank << "," << fmt("%.9g", s.compute_s) << ","
        << fmt("%.9g", s.allreduce_s) << "," << fmt("%.9g", s.exposed_s) << "," << fmt("%.9g", s.step_s) << ","
        << fmt("%.9g", s.images_per_s) << "," << fmt("%.6g", s.efficiency) << "," << fmt("%.6g", vs_baseline)
        << "," << baseline << "," << s.algorithm << "," << c.name << "\n";
  }
  if (!csv_path.empty()) write_text_atomically(csv_path, csv.str());
}

// --calibrate: fit the intra-node link (and, with oversubscribed timings, the switch cost) to the
// single-node timings, then the link between nodes to the timings across nodes (given the
// intra-node link: fitted, else the preset's); report the fits and every residual.
void calibrate(const Args& a, Cluster& c) {
  const auto timings = read_timings(a.calibrate);
  const std::string about_file = "calibration file '" + a.calibrate + "'";  // the fits' complaints name it
  const double max_bytes = a.fit_max_mb * kMiB;
  const bool one_node = std::any_of(timings.begin(), timings.end(), [](const Timing& t) { return t.nodes == 1; });
  const bool across = std::any_of(timings.begin(), timings.end(), [](const Timing& t) { return t.nodes > 1; });
  const std::string range = (a.fit_min_bytes > 0 ? fmt("from %.0f B ", a.fit_min_bytes) : std::string()) +
                            (a.fit_max_mb > 0 ? fmt("up to %g MiB", a.fit_max_mb) : std::string("all sizes"));
  LinkFit f;  // without single-node timings: the preset's intra-node link, no switch cost
  f.link = c.intra;
  f.beta_s_per_byte = 1 / c.intra.bytes_per_s;
  f.switch_s = c.switch_s;
  if (one_node) {
    f = with_context(about_file, [&] { return fit_ring_link(timings, c.cores_per_node, a.fit_min_bytes, max_bytes); });
    std::printf("calibration: %s, %d of %zu timings on one node (%s), %g cores a node; ring model "
                "t = 2(p-1) (alpha + (k-1) switch) + 2(p-1)/p S k / bandwidth, k = max(1, p / cores)\n",
                a.calibrate.c_str(), f.used, timings.size(), range.c_str(), c.cores_per_node);
    std::printf("  alpha %.2f us, bandwidth %.3f GB/s (beta %.4f ns/B)", f.link.alpha_s * 1e6,
                f.link.bytes_per_s / 1e9, f.beta_s_per_byte * 1e9);
    if (f.fitted_switch)
      std::printf(f.switch_clamped ? ", switch 0 (it fitted below zero: fitted without one)" : ", switch %.2f us",
                  f.switch_s * 1e6);
    std::printf("; relative residual rms %.1f %%, max %.1f %%\n", 100 * f.rms_rel, 100 * f.max_rel);
  } else {
    std::printf("calibration: %s holds no single-node timings: the intra-node link stays %s's\n",
                a.calibrate.c_str(), c.name.c_str());
  }
  std::optional<InterFit> inter;
  if (across) {
    inter = with_context(about_file, [&] {
      return fit_inter_link(timings, f, c.cores_per_node, a.fit_min_bytes, max_bytes);
    });
    if (c.cores_per_node > 0 && inter->per_node > c.cores_per_node)
      std::printf("note: %d ranks a node on %g cores a node (%s): the model takes them as sharing cores; "
                  "give --cores-per-node for the cluster's nodes\n",
                  inter->per_node, c.cores_per_node, c.name.c_str());
    std::printf("across nodes: %d timings (%s), %d ranks a node; ring model t = (2(p-1) - 2n) alpha_intra + "
                "2n alpha_inter + 2(p-1)/p S max(beta_intra, beta_node)\n",
                inter->used, range.c_str(), inter->per_node);
    if (inter->alpha_clamped) std::printf("  (alpha_inter fitted below zero: fitted without one)\n");
    std::printf("  alpha_inter %.2f us, the node's bandwidth %.3f GB/s (beta_node %.4f ns/B)%s; relative "
                "residual rms %.1f %%, max %.1f %%\n",
                inter->alpha_s * 1e6, 1e-9 / inter->beta_node_s_per_byte, inter->beta_node_s_per_byte * 1e9,
                inter->network_bound ? "" : " (not the bottleneck: the node's own link was slower)",
                100 * inter->rms_rel, 100 * inter->max_rel);
  }
  std::printf("\n| ranks | nodes | bytes | measured us | model us | error |\n|---|---|---|---|---|---|\n");
  for (const auto& t : timings) {
    const double model = ring_model_s(t, f, c.cores_per_node, inter ? &*inter : nullptr);
    const bool in = in_fit_range(t, a.fit_min_bytes, max_bytes);
    std::printf("| %d | %d | %.0f | %.1f | %.1f | %+.1f %%%s |\n", t.ranks, t.nodes, t.bytes, t.seconds * 1e6,
                model * 1e6, 100 * (model - t.seconds) / t.seconds, in ? "" : " (not fitted)");
  }
  std::printf("\n");
  c.intra = f.link;
  c.switch_s = f.switch_s;
  if (inter) {  // the node's bandwidth, shared by its NICs as the model counts them
    c.ranks_per_node = inter->per_node;
    c.inter.alpha_s = inter->alpha_s;
    c.inter.bytes_per_s = 1 / (inter->beta_node_s_per_byte * c.nics_per_node);
  }
  c.name += " (calibrated)";
}

double cell(const std::map<std::string, std::string>& row, const std::string& key,
            const std::string& path) {
  auto it = row.find(key);
  ODY_CHECK(it != row.end() && !it->second.empty(),
            "'" + path + "' has no value for column '" + key + "'",
            "a scaling.csv from launch/scale with the trainer's comm/compute split");
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  ODY_FAIL("'" + path + "': column '" + key + "' holds '" + it->second + "', not a number",
           "a scaling.csv from launch/scale with the trainer's comm/compute split");
}

// --validate: predict every successful run of a launch/scale sweep from the smallest run's
// compute time per sample; print predicted against measured throughput. Columns a sweep of
// 2026-12-02 on writes are used when present: each run's threads per rank (for the sharing of
// cores), the optimizer's time per step (a cost per step, not per sample).
void validate(const Args& a, Workload w, const Cluster& c, Algorithm algo) {
  // launch/scale's scaling.csv, a row per run by column name (empty cells left out).
  ODY_CHECK(std::ifstream(a.validate).good(), "cannot read '" + a.validate + "'",
            "pass the scaling.csv that launch/scale wrote");
  auto rows = read_csv(a.validate);
  auto optional_cell = [&](const std::map<std::string, std::string>& r, const std::string& key, double fallback) {
    auto it = r.find(key);
    return it == r.end() || it->second.empty() ? fallback : cell(r, key, a.validate);
  };
  // --threads-per-rank and --optimizer-ms: for a sweep without those columns.
  const double threads_given = w.threads_per_rank, optimizer_given = w.optimizer_s;
  bool any = false;
  for (const std::string mode : {"weak", "strong"}) {
    std::vector<std::map<std::string, std::string>> ok;
    for (auto& r : rows)
      if (r["mode"] == mode && r["status"] == "ok") ok.push_back(r);
    if (ok.empty()) continue;
    any = true;
    // The base run: the smallest rank count (launch/scale writes them in ascending order), or
    // --validate-base.
    auto first = ok.front();
    for (const auto& r : ok)
      if (a.validate_base > 0 && cell(r, "ranks", a.validate) == a.validate_base) first = r;
    ODY_CHECK(a.validate_base == 0 || cell(first, "ranks", a.validate) == a.validate_base,
              ODY_MSG(a.validate << " has no " << mode << " run with " << a.validate_base << " ranks"),
              "--validate-base takes one of the sweep's rank counts");
    const double base_ranks = cell(first, "ranks", a.validate);
    const double base_threads = optional_cell(first, "threads_per_rank", threads_given);
    const double sharing = cpu_sharing_factor(c, static_cast<int>(base_ranks), base_threads);
    w.optimizer_s = optional_cell(first, "optimizer_s_per_step", optimizer_given);
    w.compute_s_per_sample = (cell(first, "compute_s_per_step", a.validate) - w.optimizer_s) /
                             cell(first, "per_rank_batch", a.validate) / sharing;
    ODY_CHECK(w.compute_s_per_sample > 0,
              ODY_MSG("'" << a.validate << "': the " << base_ranks << "-rank " << mode
                          << " run's compute_s_per_step is not above its optimizer_s_per_step"),
              "a scaling.csv from launch/scale with the trainer's comm/compute split");
    w.global_batch = 0;
    std::printf("validation (%s scaling), %s: compute %.3f ms per sample from the %g-rank run", mode.c_str(),
                a.validate.c_str(), w.compute_s_per_sample * 1e3, base_ranks);
    if (w.optimizer_s > 0) std::printf(", optimizer %.3f ms per step", w.optimizer_s * 1e3);
    std::printf("\n\n");
    for (const auto& r : ok)
      if (optional_cell(r, "threads_per_rank", base_threads) != base_threads) {
        std::printf("note: the runs used different CPU threads per rank (%g in the %g-rank run, %g in the "
                    "%g-rank run): compute per sample does not carry over between them; sweep with "
                    "train.threads set\n\n",
                    base_threads, base_ranks, optional_cell(r, "threads_per_rank", base_threads),
                    cell(r, "ranks", a.validate));
        break;
      }
    std::printf("| ranks | batch | measured img/s | predicted img/s | error | measured eff. | predicted eff. | "
                "measured comm ms/step | predicted exposed ms | measured ms/step | predicted ms/step |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n");
    double base_measured = 0, base_predicted = 0;
    for (const auto& r : ok) {
      const int p = static_cast<int>(cell(r, "ranks", a.validate));
      w.batch_per_rank = static_cast<int64_t>(cell(r, "per_rank_batch", a.validate));
      w.threads_per_rank = optional_cell(r, "threads_per_rank", threads_given);
      const StepPrediction s = predict_step(at_ranks(w, c, p, a.bucket_mb == 0), c, p, algo);
      const double measured = cell(r, "images_per_s", a.validate);
      if (&r == &ok.front()) {  // efficiency against the smallest run, as launch/scale reports it
        base_measured = measured / p;
        base_predicted = s.images_per_s / p;
      }
      std::printf("| %d | %lld | %.0f | %.0f | %+.1f %% | %.1f %% | %.1f %% | %.2f | %.2f | %.2f | %.2f |\n", p,
                  static_cast<long long>(w.batch_per_rank), measured, s.images_per_s,
                  100 * (s.images_per_s - measured) / measured, 100 * measured / (base_measured * p),
                  100 * s.images_per_s / (base_predicted * p), 1e3 * cell(r, "comm_s_per_step", a.validate),
                  1e3 * s.exposed_s, 1e3 * cell(r, "step_time_s", a.validate), 1e3 * s.step_s);
    }
    std::printf("\n");
  }
  ODY_CHECK(any, "'" + a.validate + "' holds no run with status ok", "pass the scaling.csv of a launch/scale sweep "
            "whose runs succeeded (the all-reduce sweep's CSV goes to --calibrate)");
}

// The jitter cv in [0, 1] at which efficiency(cv) reaches `target` (efficiency falls as cv grows);
// -1 when even cv = 0 stays below it.
template <typename F>
double jitter_for(double target, F&& efficiency) {
  if (efficiency(0.0) < target) return -1;
  double lo = 0, hi = 1;
  for (int i = 0; i < 60; ++i) {
    const double mid = (lo + hi) / 2;
    (efficiency(mid) > target ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

// --anchors: the published anchors against the model's predictions, then ViT-B/16 and
// EfficientNet-B0 on 8 to 1024 H100/H200-class GPUs. Every input is printed with its source.
void anchors() {
  const Cluster goyal = find_cluster_preset("goyal2017"), a100 = find_cluster_preset("a100-ib"),
                h100 = find_cluster_preset("h100-ib");
  // Goyal et al. 2017: ResNet-50 (25,557,032 parameters, fp32 gradients), 32 images per P100,
  // backward 120 ms per batch (the paper) taken as 2/3 of compute; all-reduce within a server,
  // across servers, broadcast within a server: the hierarchical algorithm. Efficiency 8 -> 256.
  Workload rn;
  rn.grad_bytes = 25557032.0 * 4;
  rn.batch_per_rank = 32;
  rn.compute_s_per_sample = 0.120 / (2.0 / 3) / 32;
  auto goyal_eff = [&](double cv) {
    Workload w = rn;
    w.jitter_cv = cv;
    return predict_step(w, goyal, 256, Algorithm::kHierarchical).images_per_s /
           (predict_step(w, goyal, 8, Algorithm::kHierarchical).images_per_s * 32);
  };
  const StepPrediction rn256 = predict_step(rn, goyal, 256, Algorithm::kHierarchical);
  // NVIDIA DeepLearningExamples, EfficientNet-B0, AMP, DGX A100 80GB: 2,489 img/s on one GPU,
  // 16,652 on eight; batch 256 per GPU.
  Workload eb;
  eb.grad_bytes = 5288548.0 * 4;
  eb.batch_per_rank = 256;
  eb.compute_s_per_sample = 1 / 2489.0;
  auto dle_eff = [&](double cv) {
    Workload w = eb;
    w.jitter_cv = cv;
    return predict_step(w, a100, 8, Algorithm::kAuto).efficiency;
  };
  const StepPrediction eb8 = predict_step(eb, a100, 8, Algorithm::kAuto);
  const double dle_published = 16652.0 / (8 * 2489);
  std::printf("published anchors against the model (jitter: the step-to-step compute variation cv "
              "that would close the gap; see --jitter)\n\n");
  std::printf("| anchor | setup | published | predicted | exposed comm / step | jitter for the gap |\n"
              "|---|---|---|---|---|---|\n");
  std::printf("| Goyal et al. 2017, ResNet-50 | 256 P100 (32 servers, one 50 Gbit/s Ethernet NIC each), "
              "32/GPU, efficiency 8 -> 256 GPUs | ~90 %% | %.1f %% (%s) | %.2f of %.1f ms | cv %.3f |\n",
              100 * goyal_eff(0), rn256.algorithm.c_str(), rn256.exposed_s * 1e3, rn256.step_s * 1e3,
              jitter_for(0.90, goyal_eff));
  std::printf("| NVIDIA DeepLearningExamples, EfficientNet-B0 AMP | 8 A100 80GB (one DGX A100), 256/GPU, "
              "1 -> 8 GPUs (2,489 img/s on one) | 16,652 img/s = %.1f %% | %.0f img/s = %.1f %% (%s) | "
              "%.2f of %.1f ms | cv %.3f |\n\n",
              100 * dle_published, eb8.images_per_s, 100 * eb8.efficiency, eb8.algorithm.c_str(),
              eb8.exposed_s * 1e3, eb8.step_s * 1e3, jitter_for(dle_published, dle_eff));

  // H100/H200-class predictions. ViT-B/16: 17.56 GMACs/image, 6 FLOPs per MAC for training, 40 %
  // of 989 dense BF16 TFLOP/s. EfficientNet-B0 (memory bound): the A100's measured 1/2,489 s per
  // image divided by the HBM bandwidth ratio 3.35 / 2.039 TB/s.
  const auto& registry = ModelRegistry::instance();
  const int64_t vit_params = count_parameters(*registry.create("vit_b16", {1000, 3, 224}));
  const int64_t eff_params = count_parameters(*registry.create("efficientnet_b0", {1000, 3, 224}));
  Workload vit;
  vit.grad_bytes = vit_params * 4.0;
  vit.compute_s_per_sample = 6 * 17.56e9 / (989e12 * 0.40);
  Workload eff;
  eff.grad_bytes = eff_params * 4.0;
  eff.compute_s_per_sample = (1 / 2489.0) / (3.35 / 2.039);
  std::printf("H100/H200-class GPUs (%s)\n", describe(h100).c_str());
  std::printf("ViT-B/16: %lld parameters (%.0f MB fp32 gradients), %.3f ms per image; "
              "EfficientNet-B0: %lld parameters (%.1f MB), %.3f ms per image; per GPU batch and bucket "
              "size per column (first bucket 1 MiB), backward 2/3 of compute; efficiency vs 1 GPU "
              "(all-reduce algorithm)\n\n",
              static_cast<long long>(vit_params), vit.grad_bytes / 1e6, vit.compute_s_per_sample * 1e3,
              static_cast<long long>(eff_params), eff.grad_bytes / 1e6, eff.compute_s_per_sample * 1e3);
  struct Column {
    std::string label;
    Workload w;
  };
  std::vector<Column> cols;
  auto add = [&](const char* name, const Workload& base, int64_t batch, double bucket_mib) {
    Column c{ODY_MSG(name << " x" << batch << ", " << bucket_mib << " MiB"), base};
    c.w.batch_per_rank = batch;
    c.w.bucket_bytes = bucket_mib * kMiB;
    cols.push_back(c);
  };
  add("ViT-B/16", vit, 128, 4);
  add("ViT-B/16", vit, 32, 4);
  add("ViT-B/16", vit, 32, 25);
  add("EfficientNet-B0", eff, 256, 4);
  add("EfficientNet-B0", eff, 32, 4);
  std::printf("| GPUs |");
  for (const auto& col : cols) std::printf(" %s |", col.label.c_str());
  std::printf("\n|---|");
  for (size_t i = 0; i < cols.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (int p : {8, 16, 32, 64, 128, 256, 512, 1024}) {
    std::printf("| %d |", p);
    for (const auto& col : cols) {
      const StepPrediction s = predict_step(col.w, h100, p, Algorithm::kAuto);
      std::printf(" %.1f %% (%s) |", 100 * s.efficiency, s.algorithm.c_str());
    }
    std::printf("\n");
  }
  std::printf("\n");
}

}  // namespace

int simulate_command(const std::vector<std::string>& args) {
  const Args a = parse(args);
  Cluster cluster = make_cluster(a);
  const Algorithm algo = parse_algorithm(a.algo);
  const bool have_workload = !a.model.empty() || a.params > 0 || a.compute_ms > 0 || !a.validate.empty();
  if (!a.csv.empty()) {  // the prediction table's rows: checked before anything is computed
    const std::string why = a.validate.empty() ? "needs a workload (--model or --params)" : "--validate does not print";
    ODY_USAGE_CHECK(a.validate.empty() && have_workload, "--csv writes the prediction table, which " + why, kUsage);
    check_writable_output(a.csv, "trainer simulate --csv");
  }
  if (!a.calibrate.empty()) calibrate(a, cluster);
  if (a.anchors && !have_workload) {
    anchors();
    return kExitOk;
  }
  if (!a.calibrate.empty() && !have_workload) return kExitOk;

  Workload w;
  double params = a.params, model_gmacs = 0;
  if (!a.model.empty() && (params == 0 || a.gmacs == 0)) {
    const ModelCost cost = registry_cost(a);
    if (params == 0) params = static_cast<double>(cost.parameters);
    model_gmacs = cost.macs.giga();
  }
  ODY_USAGE_CHECK(params > 0, "trainer simulate needs the gradient size: --model NAME or --params N", kUsage);
  w.grad_bytes = params * a.grad_bytes_per_param;
  w.batch_per_rank = a.batch;
  w.global_batch = a.global_batch;
  w.backward_fraction = a.backward_fraction;
  w.overlap = a.overlap;
  w.bucket_bytes = (a.bucket_mb > 0 ? a.bucket_mb : 4) * kMiB;  // per row, see at_ranks
  w.first_bucket_bytes = a.first_bucket_mb * kMiB;
  w.optimizer_s = a.optimizer_ms * 1e-3;
  w.threads_per_rank = a.threads_per_rank;
  w.jitter_cv = a.jitter;
  std::string compute_source;
  if (!a.validate.empty()) {
    std::printf("%s\n\n", describe(cluster).c_str());
    validate(a, w, cluster, algo);
    if (a.anchors) anchors();
    return kExitOk;
  }
  if (a.compute_ms > 0) {
    w.compute_s_per_sample = a.compute_ms * 1e-3;
    compute_source = "given";
  } else {
    const double gmacs = a.gmacs > 0 ? a.gmacs : model_gmacs;
    ODY_USAGE_CHECK(gmacs > 0 && a.mfu > 0,
              "trainer simulate needs the compute time: --compute-ms-per-sample MS, or --mfu U with "
              "--model NAME (its forward MACs at --image-size) or --gmacs-per-image G, and --peak-tflops T",
              kUsage);
    w.compute_s_per_sample = 6 * gmacs * 1e9 / (a.peak_tflops * 1e12 * a.mfu);
    compute_source = fmt("6 x %.4g GMACs", gmacs) + fmt(" at %g", a.mfu * 100) +
                     fmt(" %% of %g TFLOP/s", a.peak_tflops);
  }
  ODY_USAGE_CHECK(w.batch_per_rank > 0 || w.global_batch > 0, "trainer simulate needs --batch B (per GPU) or --global-batch G",
            kUsage);
  std::printf("%s\n", describe(cluster).c_str());
  const std::string buckets = a.bucket_mb > 0 ? fmt("%g", a.bucket_mb)
                                              : "4 (one node) or 25 (across nodes, as the trainer)";
  std::printf("%s%.0f parameters, %.1f MB of gradients (%g B each) in buckets of %g + %s MiB; compute "
              "%.4g ms per sample (%s), backward %.0f %% of it; %s; algorithm %s\n\n",
              a.model.empty() ? "" : (a.model + ": ").c_str(), params, w.grad_bytes / 1e6,
              a.grad_bytes_per_param, a.first_bucket_mb, buckets.c_str(), w.compute_s_per_sample * 1e3,
              compute_source.c_str(), 100 * w.backward_fraction,
              a.overlap >= 0 ? fmt("measured overlap %.2f", a.overlap).c_str() : "overlap simulated per bucket",
              a.algo.c_str());
  print_table(w, cluster, a.gpus, algo, a.baseline, a.bucket_mb == 0, a.csv);
  std::printf("\n");
  if (a.anchors) anchors();
  return kExitOk;
}

}  // namespace odyssey
