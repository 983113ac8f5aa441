// ProcessEnv: who this process is in the job (rank, node, local rank) and its CPU thread budget.
#pragma once

#include <string>

namespace odyssey {

struct ProcessEnv {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes on this node
  int local_size = 1;  // processes on this node
  std::string host;
  bool mpi = false;    // launched under MPI with MPI initialised
};

// Initialises MPI (when the binary was started by mpirun/srun or MPI is otherwise usable) and
// finalises it on destruction. One per process, in main(). Sets Open MPI's
// mpi_yield_when_idle (unless the user set it): a thread waiting in a collective yields its core
// to the compute threads instead of spinning.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  const ProcessEnv& env() const { return env_; }

  // Ends every rank of the job at once with this exit code (for errors only one rank sees).
  [[noreturn]] void abort(int code) const;

 private:
  ProcessEnv env_;
};

// Whether a launcher started this process (mpirun, srun): their variables as found before
// MPI_Init, which sets some of them (PMIX_RANK) in a process started by hand too. False before
// an MpiSession exists.
bool started_by_launcher();

// Keeps tensor-sized allocations in glibc's heap instead of fresh mmap/munmap pages per op.
// glibc serves blocks above M_MMAP_THRESHOLD (128 KiB until a large block is freed) with mmap,
// so every activation of a small CNN costs page faults; measured here this made training steps
// 5-8x slower. Also reuse_large_blocks(true). Call first thing in main().
void configure_allocator();

// Blocks above glibc's mmap ceiling (32 MB, the most M_MMAP_THRESHOLD takes) from the heap too
// (M_MMAP_MAX = 0), reused after free like smaller ones; false restores glibc's default (65536
// mmap blocks: each large block fresh pages, unmapped at free). train.cpu_reuse_large_blocks.
void reuse_large_blocks(bool on);

// CPUs this process may run on (its affinity mask, which a launcher's binding narrows), or 0 when
// unknown.
int allowed_cpus();

// Threads for torch intra-op, OpenMP and OpenBLAS. requested = 0 means the CPUs the rank is bound
// to, or, unbound, cores on the node divided by ranks on the node (at least 1). Returns the number
// set.
int set_cpu_threads(const ProcessEnv& env, int requested);

// Sets torch intra-op (and OpenMP) and OpenBLAS threads to `threads` (>= 1).
void set_thread_counts(int threads);

}  // namespace odyssey
