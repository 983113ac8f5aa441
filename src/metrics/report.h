// The run report: report.html in the run folder, self-contained (inline SVG, no scripts), from
// metrics.csv, eval-latest.h5 and config.toml: loss/accuracy/lr/throughput curves, per-class
// PR curves with AP, the reliability diagram, the confusion matrix, a per-class table
// (precision, recall, F1, AP, IoU; the worst class marked) and the step-time split.
#pragma once

#include <string>

namespace odyssey {

// Writes RUN_DIR/report.html; returns its path. Errors name the missing file.
std::string write_report(const std::string& run_dir);

}  // namespace odyssey
