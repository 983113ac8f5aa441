// Reading a checkpoint once for the whole job: rank 0 reads and verifies it, every other rank
// receives its tensors and trainer state by broadcast (Horovod's pattern). At a resume of N nodes
// the shared filesystem serves one read instead of N, and the file need only be visible to rank 0
// (a run folder on rank 0's local disk resumes too).
#pragma once

#include <optional>
#include <string>

#include "checkpoint/checkpoint.h"
#include "dist/communicator.h"

namespace odyssey {

// Every rank calls it. Rank 0's read failure (missing, damaged) is agreed: every rank throws
// AgreedFailure and rank 0 prints the error, prefixed "context: " (the key that named the path).
// One rank alone reads it and throws the Error unprefixed, for its caller's context. Each rank
// holds the data once, as its own read did. `read_on_rank0`: path's data, already read and
// verified by rank 0 (Checkpointer::resolve's "auto"), sent instead of reading it again.
CheckpointData read_checkpoint_shared(Communicator& comm, const std::string& path,
                                      const std::string& context = "",
                                      std::optional<CheckpointData> read_on_rank0 = std::nullopt);

// The trainer state and the tensors' names, dtypes and shapes as bytes (no tensor data) and back,
// the tensors allocated uninitialised: what the ranks receive before the tensors' broadcasts.
std::string describe_checkpoint(const CheckpointData& data);
CheckpointData allocate_described(const std::string& bytes);

}  // namespace odyssey
