#include "dist/process_env.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "common/error.h"

namespace odyssey {

namespace {
bool launched_before_init = false;
}  // namespace

bool started_by_launcher() { return launched_before_init; }

MpiSession::MpiSession(int* argc, char*** argv) {
  launched_before_init = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") ||
                         std::getenv("PMI_RANK") || std::getenv("SLURM_JOB_ID");
  // Open MPI's progress loop spins while a collective waits for the other ranks. The
  // communication thread shares the rank's cores with the compute threads, so that spinning takes
  // CPU from the backward pass the collectives overlap: ResNet-18 @64 with one core per rank
  // trained ~10 % faster with the waiting thread yielding its core. Open MPI turns this on by
  // itself only on oversubscribed nodes; a user's own setting (environment or mpirun --mca) wins,
  // but one in an MCA parameter file does not (the environment outranks the files).
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
  int provided = 0;
  // The communicator's thread issues the collectives while the main thread may still call
  // MPI_Abort or set up another communicator: ask for full thread support (Open MPI has it).
  int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  ODY_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed", "is Open MPI installed (openmpi-bin)?");
  ODY_CHECK(provided >= MPI_THREAD_MULTIPLE,
            "this MPI library does not offer MPI_THREAD_MULTIPLE (the communication thread and "
            "the main thread both call MPI)",
            "use Debian's Open MPI (openmpi-bin, libopenmpi-dev)");
  env_.mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &env_.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &env_.size);
  // Local rank from the shared-memory split: right under mpirun, srun and any mapping.
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, env_.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &env_.local_rank);
  MPI_Comm_size(node, &env_.local_size);
  MPI_Comm_free(&node);
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  env_.host.assign(name, len);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int code) const {
  std::fflush(stdout);
  std::fflush(stderr);
  if (env_.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void configure_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);   // the largest value glibc accepts (HEAP_MAX / 2)
  mallopt(M_TRIM_THRESHOLD, 256 << 20);  // keep freed memory for the next step
  reuse_large_blocks(true);
}

void reuse_large_blocks(bool on) {
  mallopt(M_MMAP_MAX, on ? 0 : 65536);  // 65536: glibc's default
}

int allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}

int set_cpu_threads(const ProcessEnv& env, int requested) {
  int threads = requested;
  if (threads <= 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int allowed = allowed_cpus();
    // A rank the launcher bound to some CPUs (mpirun binds to a core at -np <= 2, to a socket
    // above; srun --cpu-bind) runs on those; an unbound one shares the node with its neighbours.
    threads = allowed > 0 && allowed < cores ? allowed : std::max(1, cores / std::max(1, env.local_size));
  }
  set_thread_counts(threads);
  return threads;
}

void set_thread_counts(int threads) {
  at::set_num_threads(threads);
  // OpenBLAS keeps its own pool; set it when the loaded BLAS is OpenBLAS (looked up at run time
  // so any libblas.so.3 alternative works).
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(threads);
}

}  // namespace odyssey
