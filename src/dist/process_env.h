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

// This rank's fair share of the CPUs: each CPU of its affinity mask (which a launcher's binding or
// the job's CPU set narrows) counts 1 / (the ranks on this node whose mask holds it). So two
// unbound ranks on 16 cores get 8 each, ranks bound to a core (mpirun -np 2) 1, eight ranks bound
// to two 16-core sockets 4, two ranks in a 4-CPU container 2. A collective of the node's ranks
// when MPI runs with several of them there.
struct CpuShare {
  int threads = 1;      // the share, at least 1
  int usable_cpus = 0;  // CPUs in any of the node's ranks' masks
  int node_cpus = 0;    // CPUs of the node (std::thread::hardware_concurrency)
};
CpuShare cpu_share(const ProcessEnv& env);

// Threads for torch intra-op, OpenMP and OpenBLAS: requested, or (0) the rank's fair share of its
// CPUs (from cpu_share). Returns the number set.
int set_cpu_threads(const CpuShare& share, int requested);

// Sets torch intra-op (and OpenMP) and OpenBLAS threads to `threads` (>= 1).
void set_thread_counts(int threads);

}  // namespace odyssey
