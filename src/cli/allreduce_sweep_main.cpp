// allreduce_sweep: times raw MPI_Allreduce (float32 sum, in place) over a range of message sizes
// and prints "ranks,bytes,seconds,median_seconds,nodes" lines (the best and the median of --repeat runs,
// each the slowest rank's time), the input of `trainer simulate --calibrate`, which fits the
// first time column: the best, the machine's speed when nothing else disturbs it (on a shared
// machine the median also holds other jobs' preemptions); nodes: the hosts the ranks ran on (ranks
// sharing memory count as one), which tells the calibration timings across nodes apart. Run under
// mpirun:
//
//   mpirun -np 2 build/allreduce_sweep [--min-bytes 16] [--max-bytes 67108864] [--repeat 9]
//
// Plain MPI, no LibTorch. Sizes go up by factors of two.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  std::fprintf(stderr, "allreduce_sweep: %s failed: %s (at %s:%d)\n", call, msg, __FILE__, __LINE__);
  MPI_Abort(MPI_COMM_WORLD, 3);
}

long long positive(const char* option, const char* value) {
  char* end = nullptr;
  long long v = std::strtoll(value, &end, 10);
  if (end == value || *end != '\0' || v <= 0) {
    std::fprintf(stderr, "allreduce_sweep: option %s needs a positive integer, got '%s'\n", option, value);
    std::exit(1);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::puts("usage: mpirun -np N build/allreduce_sweep [--min-bytes 16] [--max-bytes 67108864] [--repeat 9]");
      return 0;
    }
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long long min_bytes = 16, max_bytes = 64ll << 20, repeat = 9;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      if (rank == 0) std::fprintf(stderr, "allreduce_sweep: option %s needs a value\n", a.c_str());
      MPI_Finalize();
      return 1;
    }
    if (a == "--min-bytes") min_bytes = positive(argv[i], argv[i + 1]);
    else if (a == "--max-bytes") max_bytes = positive(argv[i], argv[i + 1]);
    else if (a == "--repeat") repeat = positive(argv[i], argv[i + 1]);
    else {
      if (rank == 0)
        std::fprintf(stderr, "allreduce_sweep: unknown option '%s' (--min-bytes, --max-bytes, --repeat)\n",
                     a.c_str());
      MPI_Finalize();
      return 1;
    }
    ++i;
  }
  // Nodes: one leader per group of ranks that share memory.
  MPI_Comm local = MPI_COMM_NULL;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local),
        "MPI_Comm_split_type");
  int local_rank = 0, leader = 0, nodes = 1;
  MPI_Comm_rank(local, &local_rank);
  leader = local_rank == 0 ? 1 : 0;
  check(MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  MPI_Comm_free(&local);
  std::vector<float> buf(static_cast<size_t>(max_bytes / 4) + 1, 1.0f);
  if (rank == 0) std::printf("ranks,bytes,seconds,median_seconds,nodes\n");
  for (long long bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
    const int count = static_cast<int>(bytes / 4);
    std::vector<double> times;
    for (long long r = 0; r < repeat + 1; ++r) {  // the first run warms up and is dropped
      check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
      const double t0 = MPI_Wtime();
      check(MPI_Allreduce(MPI_IN_PLACE, buf.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Allreduce");
      double t = MPI_Wtime() - t0, slowest = 0;
      check(MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
      if (r > 0) times.push_back(slowest);
      std::fill(buf.begin(), buf.begin() + count, 1.0f);  // keep the sums finite
    }
    std::sort(times.begin(), times.end());
    if (rank == 0)
      std::printf("%d,%lld,%.9g,%.9g,%d\n", size, static_cast<long long>(count) * 4, times.front(),
                  times[times.size() / 2], nodes);
    std::fflush(stdout);
  }
  MPI_Finalize();
  return 0;
}
