// Rewinding a run's metrics files to a checkpoint: a resumed run takes the steps after its
// checkpoint again, so their records (of a crash, or of a branch rolled back) must not stay.
#pragma once

#include <cstdint>
#include <string>

namespace odyssey {

// Removes the records of steps after `step` from metrics.jsonl or metrics.csv (by extension;
// both hold "kind" then "step" first, csv after its header line), rewriting the file
// atomically; lines without a readable step stay. Returns how many records went; 0 (file
// untouched) when none, or when the file does not exist.
int64_t drop_records_after(const std::string& path, int64_t step);

}  // namespace odyssey
