#include "dist/process_env.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/error.h"

namespace odyssey {

namespace {
bool launched_before_init = false;

// This node's ranks (the shared-memory split, in world-rank order): a collective of every rank.
// The caller frees it.
MPI_Comm node_communicator() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  return node;
}
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
  MPI_Comm node = node_communicator();
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

CpuShare cpu_share(const ProcessEnv& env) {
  CpuShare share;
  share.node_cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0)  // unknown: every CPU (and still collective)
    for (int cpu = 0; cpu < std::min(share.node_cpus, CPU_SETSIZE); ++cpu) CPU_SET(cpu, &mine);
  std::vector<cpu_set_t> masks(1, mine);  // every rank's on this node
  if (env.mpi && env.size > 1) {  // every rank of the world: a node of one rank splits too
    MPI_Comm node = node_communicator();
    int n = 1;
    MPI_Comm_size(node, &n);
    masks.resize(n);
    MPI_Allgather(&mine, sizeof mine, MPI_BYTE, masks.data(), sizeof mine, MPI_BYTE, node);
    MPI_Comm_free(&node);
  }
  double mine_share = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    int holders = 0;
    for (const auto& m : masks) holders += CPU_ISSET(cpu, &m) ? 1 : 0;
    if (holders > 0) ++share.usable_cpus;
    if (CPU_ISSET(cpu, &mine)) mine_share += 1.0 / holders;
  }
  share.threads = std::max(1, static_cast<int>(std::floor(mine_share + 1e-9)));
  return share;
}

int set_cpu_threads(const CpuShare& share, int requested) {
  const int threads = requested > 0 ? requested : share.threads;
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
