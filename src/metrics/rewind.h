// Rewinding a run's metrics files to a checkpoint: a resumed run takes the steps after its
// checkpoint again, so their records (of a crash, or of a branch rolled back) must not stay.
#pragma once

#include <cstdint>
#include <string>

namespace odyssey {

// Removes the records of steps after `step` from metrics.jsonl or metrics.csv (by extension;
// both hold "kind" then "step" first, csv after its header line), and a last line without its
// line break (a record cut by a crash mid-write), rewriting the file atomically; other lines
// stay. Returns how many lines went; 0 (file untouched) when none, or when there is no file.
int64_t drop_records_after(const std::string& path, int64_t step);

}  // namespace odyssey
