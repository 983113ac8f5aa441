#include "metrics/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "common/file.h"
#include "metrics/csv.h"
#include "metrics/eval_file.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string num(double v, int digits = 4) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %%", 100 * v);
  return buf;
}

// A line chart: axes with min/max labels, one polyline per series, a legend.
std::string line_chart(const std::string& title, const std::string& xlabel,
                       const std::vector<Series>& series, bool fixed_unit_range = false) {
  const double W = 460, H = 260, L = 60, R = 150, T = 28, B = 40;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (fixed_unit_range) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W + R << "' height='" << H
    << "' font-family='sans-serif' font-size='11'>";
  o << "<text x='" << L << "' y='16' font-size='13' font-weight='bold'>" << esc(title) << "</text>";
  if (x0 > x1) return o.str() + "<text x='" + num(L) + "' y='60'>no data</text></svg>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (y0 == 0 ? 1 : std::abs(y0) * 0.1);
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - 10); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - B - T); };
  o << "<rect x='" << L << "' y='" << T << "' width='" << W - L - 10 << "' height='" << H - B - T
    << "' fill='none' stroke='#999'/>";
  o << "<text x='" << L - 4 << "' y='" << py(y1) + 4 << "' text-anchor='end'>" << num(y1) << "</text>";
  o << "<text x='" << L - 4 << "' y='" << py(y0) << "' text-anchor='end'>" << num(y0) << "</text>";
  o << "<text x='" << L << "' y='" << H - B + 14 << "'>" << num(x0) << "</text>";
  o << "<text x='" << W - 10 << "' y='" << H - B + 14 << "' text-anchor='end'>" << num(x1) << "</text>";
  o << "<text x='" << (L + W) / 2 << "' y='" << H - 8 << "' text-anchor='middle'>" << esc(xlabel)
    << "</text>";
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* colour = kColours[k % 10];
    o << "<polyline fill='none' stroke='" << colour << "' stroke-width='1.5' points='";
    for (size_t i = 0; i < s.x.size(); ++i) o << num(px(s.x[i]), 6) << "," << num(py(s.y[i]), 6) << " ";
    o << "'/>";
    if (s.x.size() == 1)
      o << "<circle cx='" << px(s.x[0]) << "' cy='" << py(s.y[0]) << "' r='3' fill='" << colour << "'/>";
    o << "<rect x='" << W + 4 << "' y='" << T + 14 * k << "' width='10' height='10' fill='" << colour
      << "'/><text x='" << W + 18 << "' y='" << T + 9 + 14 * k << "'>" << esc(s.name) << "</text>";
  }
  return o.str() + "</svg>";
}

// Values of one CSV column for rows of one kind, with their steps.
Series column(const std::vector<std::map<std::string, std::string>>& rows, const std::string& kind,
              const std::string& key, const std::string& name) {
  Series s{name, {}, {}};
  for (const auto& r : rows) {
    auto k = r.find("kind"), st = r.find("step"), v = r.find(key);
    if (k == r.end() || k->second != kind || st == r.end() || v == r.end()) continue;
    s.x.push_back(std::stod(st->second));
    s.y.push_back(std::stod(v->second));
  }
  return s;
}

double mean_of(const Series& s, size_t skip) {
  if (s.y.size() <= skip) skip = 0;
  double sum = 0;
  for (size_t i = skip; i < s.y.size(); ++i) sum += s.y[i];
  return s.y.size() > skip ? sum / (s.y.size() - skip) : 0;
}

// The mean of a rate over the windows after the first, weighted by each window's seconds: the
// total images over the total time (a short window counts for what it lasted).
double time_weighted(const Series& rate, const Series& seconds) {
  std::map<double, double> seconds_at;  // by step: a column may be empty in some rows (mfu)
  for (size_t i = 0; i < seconds.x.size(); ++i) seconds_at[seconds.x[i]] = seconds.y[i];
  double sum = 0, time = 0;
  for (size_t i = 1; i < rate.y.size(); ++i) {
    auto it = seconds_at.find(rate.x[i]);
    if (it == seconds_at.end()) continue;
    sum += rate.y[i] * it->second;
    time += it->second;
  }
  return time > 0 ? sum / time : mean_of(rate, 0);
}

std::string heat(double v) {  // white -> blue
  const int c = static_cast<int>(255 - 180 * std::clamp(v, 0.0, 1.0));
  char buf[32];
  std::snprintf(buf, sizeof buf, "rgb(%d,%d,255)", c, c);
  return buf;
}

}  // namespace

std::string write_report(const std::string& run_dir) {
  // "RUN/" names RUN: its title is the folder's name, not the empty one after the slash.
  fs::path dir = fs::path(run_dir).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  const auto rows = read_csv((dir / "metrics.csv").string());
  std::ostringstream o;
  o << "<!doctype html><html><head><meta charset='utf-8'><title>Odyssey report: "
    << esc(dir.filename().string())
    << "</title><style>body{font-family:sans-serif;margin:24px;max-width:1250px}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px;"
       "text-align:right}th{background:#f4f4f4}.worst{background:#fde0dc}"
       "svg{margin:6px}</style></head><body>";
  o << "<h1>Run " << esc(dir.filename().string()) << "</h1>";

  // Curves.
  auto train_loss = column(rows, "train", "loss", "train (window, the loss minimised)");
  auto eval_loss = column(rows, "eval", "loss", "eval");
  auto train_top1 = column(rows, "train", "top1", "train (window)");
  auto eval_top1 = column(rows, "eval", "top1", "eval top-1");
  auto eval_top5 = column(rows, "eval", "top5", "eval top-5");
  auto lr = column(rows, "train", "lr", "lr");
  auto ips = column(rows, "train", "images_per_s", "images/s");
  o << "<h2>Training curves</h2><div>";
  o << line_chart("Loss", "step", {train_loss, eval_loss});
  o << line_chart("Accuracy", "step", {train_top1, eval_top1, eval_top5});
  o << line_chart("Learning rate", "step", {lr});
  o << line_chart("Throughput (all ranks)", "step", {ips});
  o << "</div>";

  // Efficiency: the mean split of step time over the train records after the first.
  o << "<h2>Efficiency</h2><table><tr><th>mean images/s</th><th>data wait</th><th>forward</th>"
       "<th>backward</th><th>exposed sync</th><th>optimizer</th><th>other</th><th>peak RSS "
       "(rank 0)</th><th>TFLOP/s per rank</th><th>MFU</th></tr>";
  {
    auto window = column(rows, "train", "window_s", "");
    const double w = mean_of(window, 1);
    auto share = [&](const std::string& key) { return w > 0 ? mean_of(column(rows, "train", key, ""), 1) / w : 0.0; };
    const double data = share("data_wait_s"), fwd = share("forward_s"), bwd = share("backward_s"),
                 comm = share("comm_wait_s"), opt = share("optimizer_s");
    auto rss = column(rows, "train", "peak_rss_mb", "");
    o << "<tr><td>" << num(time_weighted(ips, window), 5) << "</td><td>" << pct(data) << "</td><td>"
      << pct(fwd) << "</td><td>" << pct(bwd) << "</td><td>" << pct(comm) << "</td><td>"
      << pct(opt) << "</td><td>" << pct(std::max(0.0, 1 - data - fwd - bwd - comm - opt))
      << "</td><td>" << (rss.y.empty() ? "" : num(rss.y.back(), 5) + " MB") << "</td><td>"
      << num(time_weighted(column(rows, "train", "tflops_per_rank", ""), window), 3) << "</td><td>";
    auto mfu = column(rows, "train", "mfu", "");
    o << (mfu.y.empty() ? std::string("(set metrics.peak_tflops)") : pct(time_weighted(mfu, window)))
      << "</td></tr></table>";
  }

  // The latest evaluation in detail.
  const auto eval_path = dir / "eval-latest.h5";
  if (fs::exists(eval_path)) {
    const EvalFile ev = read_eval_file(eval_path.string());
    const auto& c = ev.counts;
    const int64_t K = c.num_classes();
    auto name = [&](int64_t k) {
      return k < static_cast<int64_t>(ev.class_names.size()) ? ev.class_names[k] : std::to_string(k);
    };
    auto [worst, worst_recall] = worst_class(c);
    o << "<h2>Evaluation after step " << ev.step << " (" << c.count() << " images)</h2>";
    o << "<table><tr><th>top-1</th><th>top-5</th><th>loss</th><th>macro F1</th><th>mAP</th>"
         "<th>mean IoU</th><th>ECE</th><th>worst class (recall)</th></tr><tr><td>"
      << pct(c.top1()) << "</td><td>" << pct(c.top5()) << "</td><td>" << num(c.loss()) << "</td><td>"
      << num(c.macro_f1()) << "</td><td>" << num(c.mean_ap()) << "</td><td>" << num(c.mean_iou())
      << "</td><td>" << num(c.ece()) << "</td><td>" << esc(name(worst)) << " (" << pct(worst_recall)
      << ")</td></tr></table>";

    // PR curves: every class when few, else the ten with the lowest AP among the classes with
    // samples (one without any has AP 0 and no curve: an eval split that lacks it).
    auto ap = c.per_class_ap();
    const auto samples = c.support();
    std::vector<int64_t> shown;
    for (int64_t k = 0; k < K; ++k)
      if (K <= 10 || samples[k] > 0) shown.push_back(k);
    if (shown.size() > 10) {
      std::sort(shown.begin(), shown.end(), [&](int64_t a, int64_t b) { return ap[a] < ap[b]; });
      shown.resize(10);
    }
    std::vector<Series> curves;
    for (int64_t k : shown) {
      Series s{name(k) + " AP " + num(ap[k], 3), {}, {}};
      for (const auto& p : c.pr_curve(k)) s.x.push_back(p.recall), s.y.push_back(p.precision);
      curves.push_back(s);
    }
    o << "<div>" << line_chart(K > 10 ? "PR curves (10 lowest AP)" : "PR curves (one vs rest)",
                               "recall", curves, true);
    // Reliability diagram: accuracy per confidence bin against the diagonal.
    auto cal = c.calibration().contiguous();
    const double* n = cal.data_ptr<double>();
    Series acc{"accuracy", {}, {}}, diag{"ideal", {0, 1}, {0, 1}};
    for (int b = 0; b < 15; ++b)
      if (n[b] > 0) acc.x.push_back(n[15 + b] / n[b]), acc.y.push_back(n[30 + b] / n[b]);
    o << line_chart("Reliability (ECE " + num(c.ece(), 3) + ")", "confidence", {acc, diag}, true)
      << "</div>";

    // Per-class table.
    auto p = c.per_class_precision(), r = c.per_class_recall(), f1 = c.per_class_f1(),
         iou = c.per_class_iou();
    auto support = c.support();
    o << "<h3>Per class</h3><table><tr><th>class</th><th>support</th><th>precision</th>"
         "<th>recall</th><th>F1</th><th>AP</th><th>IoU</th></tr>";
    for (int64_t k = 0; k < K; ++k)
      o << "<tr" << (k == worst ? " class='worst'" : "") << "><td>" << esc(name(k)) << "</td><td>"
        << support[k] << "</td><td>" << num(p[k]) << "</td><td>" << num(r[k]) << "</td><td>"
        << num(f1[k]) << "</td><td>" << num(ap[k]) << "</td><td>" << num(iou[k]) << "</td></tr>";
    o << "</table>";

    // Confusion matrix (rows: true class, columns: predicted), shaded by row share.
    if (K <= 40) {
      auto cm = c.confusion().contiguous();
      const int64_t* m = cm.data_ptr<int64_t>();
      o << "<h3>Confusion matrix (rows true, columns predicted)</h3><table><tr><th></th>";
      for (int64_t j = 0; j < K; ++j) o << "<th>" << esc(name(j)) << "</th>";
      o << "</tr>";
      for (int64_t i = 0; i < K; ++i) {
        o << "<tr><th>" << esc(name(i)) << "</th>";
        for (int64_t j = 0; j < K; ++j)
          o << "<td style='background:" << heat(support[i] ? double(m[i * K + j]) / support[i] : 0)
            << "'>" << m[i * K + j] << "</td>";
        o << "</tr>";
      }
      o << "</table>";
    }
  }
  if (fs::exists(dir / "config.toml")) {
    std::ifstream in(dir / "config.toml");
    std::stringstream ss;
    ss << in.rdbuf();
    o << "<h2>Config</h2><pre>" << esc(ss.str()) << "</pre>";
  }
  o << "</body></html>\n";
  const auto out = (dir / "report.html").string();
  write_text_atomically(out, o.str());
  return out;
}

}  // namespace odyssey
