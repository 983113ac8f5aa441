// Checkpointer: a run folder's checkpoints: numbered files, the `latest` pointer, retention, and
// finding the newest complete checkpoint on resume.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"

namespace odyssey {

// The checkpoint file a user named: the file itself, a run folder (the checkpoint its `latest`
// pointer names) or that `latest` pointer. Any other path comes back unchanged (the reader then
// names it).
std::string checkpoint_file(const std::string& path);

// Whether path is one of a run folder's own files (latest, a ckpt-step*.h5, eval-latest.h5, the
// metrics, config.toml, report.html) in a folder a run has checkpointed into: an output a command
// must not overwrite.
bool is_run_file(const std::string& path);

// A command's output file: a UsageError "<what> 'out' is the checkpoint" (the one it reads) or
// "... is one of a run folder's own files" (is_run_file), with the hint; else nothing.
// what: "trainer predict: --out".
void refuse_run_file_output(const std::string& out, const std::string& checkpoint, const std::string& what,
                            const std::string& hint);

// read_checkpoint, read again twice (after 0.5 s, then 1 s) before its error is final: a network
// filesystem's passing I/O error (a stale handle at a requeue) is not damage. Damage costs 1.5 s.
CheckpointData read_checkpoint_patiently(const std::string& path);

class Checkpointer {
 public:
  // The file name of step's checkpoint: ckpt-step<10 digits>.h5.
  static std::string name_of(int64_t step);

  // keep_last: the newest N checkpoints stay (0 = all); keep_every: checkpoints whose step is a
  // multiple of N stay as well (0 = none).
  Checkpointer(std::string run_dir, int64_t keep_last, int64_t keep_every = 0);

  // Writes ckpt-step<step>.h5 complete or not at all, then points `latest` at it, then deletes
  // the oldest beyond keep_last (except keep_every's). Returns the path. On failure (disk full,
  // folder not writable) throws with nothing half-written left behind; earlier checkpoints and
  // `latest` are untouched. A complete checkpoint whose `latest` cannot be replaced is returned
  // (warned; no retention, so the one `latest` names stays).
  std::string save(const CheckpointData& data);

  // The checkpoint to resume from for train.resume: "none" -> nullopt, but an error when the
  // folder already holds checkpoints (a later "auto" would mix two runs); "auto" -> the newest
  // checkpoint of this run that reads and verifies (falling back, logged, past damaged ones), or
  // nullopt when there is none; anything else is a path that must exist. With `loaded`, "auto"
  // hands over the data its verification read (a resume then reads the file once, not twice).
  std::optional<std::string> resolve(const std::string& resume, CheckpointData* loaded = nullptr) const;

  // Into set-aside-after-step<step>-<tag>/ of the run folder: `copies` copied durably first, then
  // `moves` moved (paths that do not exist are left out). Returns the folder.
  std::string set_aside(int64_t step, const std::string& tag, const std::vector<std::string>& copies,
                        const std::vector<std::string>& moves) const;

  // A run resuming at `step` below checkpoints of this folder (train.resume names an older one,
  // or "auto" fell back past damaged newer ones) sets them aside in
  // set-aside-after-step<step>-<tag>/: first `copies` (the metrics files, which the run then
  // rewinds) are copied there durably, then the newer checkpoints and `moves` (files of the
  // branch left, e.g. eval-latest.h5) are moved there, and `latest` names the newest checkpoint
  // left. Retention ranks by step, so the next save would otherwise delete itself and "auto"
  // return to the abandoned branch. Returns that folder, or "" when nothing is newer (then
  // nothing is copied or moved).
  std::string set_aside_after(int64_t step, const std::string& tag,
                              const std::vector<std::string>& copies = {},
                              const std::vector<std::string>& moves = {}) const;

  // Removes *.tmp files left by a write that was killed (a checkpoint's always, a text file's
  // once a minute old: another process may be writing it); returns how many.
  int remove_stale_temporaries() const;

 private:
  std::string run_dir_;
  int64_t keep_last_, keep_every_;
};

}  // namespace odyssey
