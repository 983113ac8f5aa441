// trainer eval's output: the summary line and the per-class table in the log, and with --json
// the same numbers as one JSON object in a file (for scripts and sweeps).
#pragma once

#include <string>
#include <vector>

#include "metrics/classification.h"

namespace odyssey {

// Logs the evaluation (rank 0 prints; log::info). json_path non-empty: writes the JSON object there
// atomically (call it on one rank). NaN metrics (a class without samples) are null.
// checkpoint: as given (a run folder, its `latest`, a file); checkpoint_file: the file it named.
void report_evaluation(const ClassificationCounts& c, const std::vector<std::string>& class_names,
                       const std::string& checkpoint, const std::string& checkpoint_file, const std::string& split,
                       const std::string& json_path);

}  // namespace odyssey
