// Checkpointer: a run folder's checkpoints: numbered files, the `latest` pointer, retention, and
// finding the newest complete checkpoint on resume.
#pragma once

#include <optional>
#include <string>

#include "checkpoint/checkpoint.h"

namespace odyssey {

class Checkpointer {
 public:
  Checkpointer(std::string run_dir, int64_t keep_last);

  // Writes ckpt-step<step>.h5 complete or not at all, then points `latest` at it, then deletes
  // the oldest beyond keep_last. Returns the path.
  std::string save(const CheckpointData& data);

  // The checkpoint to resume from for train.resume: "none" -> nullopt, but an error when the
  // folder already holds checkpoints (a later "auto" would mix two runs); "auto" -> the newest
  // checkpoint of this run that reads and verifies (falling back, logged, past damaged ones), or
  // nullopt when there is none; anything else is a path that must exist.
  std::optional<std::string> resolve(const std::string& resume) const;

 private:
  std::string run_dir_;
  int64_t keep_last_;
};

}  // namespace odyssey
