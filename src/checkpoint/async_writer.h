// AsyncCheckpointWriter: checkpoints written by a background thread so that training goes on.
//
// The training thread only copies the state to host memory (the extra memory is one copy of
// model, buffers and optimizer state, on rank 0, kept and reused from one checkpoint to the
// next so the copy touches no fresh pages); a writer thread writes the copy through the Checkpointer (complete or absent). A new
// checkpoint first waits for the previous write. Write errors (disk full, folder not writable)
// never throw into training: they are kept for take_error(), which the trainer polls once per
// step and turns into an agreed decision (checkpoint.on_error). With async = false, submit()
// writes in the caller's thread (no copy) with the same error handling.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/checkpointer.h"

namespace odyssey {

class AsyncCheckpointWriter {
 public:
  AsyncCheckpointWriter(Checkpointer& checkpointer, bool async);
  ~AsyncCheckpointWriter();  // waits for the write in flight
  AsyncCheckpointWriter(const AsyncCheckpointWriter&) = delete;
  AsyncCheckpointWriter& operator=(const AsyncCheckpointWriter&) = delete;

  // Hands over a checkpoint (tensors referencing live state). Returns the seconds the caller was
  // blocked: waiting for the previous write, copying (async) or writing (sync).
  double submit(const CheckpointData& data);
  // Waits until no write is in flight.
  void wait();
  // The error of a failed write since the last call, if any.
  std::optional<std::string> take_error();
  // Path and seconds of the newest successful write ("" before the first).
  std::string last_path() const;
  double last_write_seconds() const;

 private:
  void run();
  void write(const CheckpointData& data);

  Checkpointer& checkpointer_;
  const bool async_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<CheckpointData> pending_;
  std::optional<CheckpointData> spare_;  // the last copy, reused (no fresh pages per checkpoint)
  bool busy_ = false, stop_ = false;
  std::optional<std::string> error_;
  std::string last_path_;
  double last_seconds_ = 0;
  std::thread thread_;
};

// A copy of the checkpoint's tensors, detached from the live ones.
CheckpointData deep_copy(const CheckpointData& data);
// Copies data's tensors into `into` when both hold the same names and shapes; false otherwise.
bool copy_into(const CheckpointData& data, CheckpointData& into);

}  // namespace odyssey
