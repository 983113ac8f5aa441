// bench_allreduce: the gradient reducer against raw MPI_Allreduce on the same bytes, and the share
// of all-reduce time hidden behind backward in a real training step. Run under mpirun:
//
//   mpirun -np 2 build/bench_allreduce [--models efficientnet_b0,vit_s16,vit_b16] [--repeat 5]
//
// For each model's gradients (its real parameter list, float32): one raw MPI_Allreduce of all the
// bytes; raw MPI_Allreduce over consecutive chunks of 1..64 MB (the best chunk size is the peer);
// the GradientReducer's sync time with the default buckets. Then a few training steps of a conv
// net with the reducer's hooks: comm = the collectives' run time, exposed = what the training
// thread waited for after backward; hidden = 1 - exposed / comm. Prints Markdown tables (rank 0).
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "dist/communicator.h"
#include "dist/gradient_reducer.h"
#include "dist/process_env.h"
#include "models/registry.h"

using namespace odyssey;

namespace {

double now() { return MPI_Wtime(); }

// Best of `repeat` timings of fn, each started together on every rank.
template <typename F>
double best_time(int repeat, F&& fn) {
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now();
    fn();
    double t = now() - t0, worst = 0;
    MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    best = std::min(best, worst);
  }
  return best;
}


}  // namespace

int main(int argc, char** argv) {
  if (help_requested(argc, argv)) {
    std::puts("usage: mpirun -np 2 build/bench_allreduce [--models efficientnet_b0,vit_s16,vit_b16] [--repeat 5] [--bucket-mb 4] [--first-bucket-mb 1]\n(see the top of bench_allreduce_main.cpp)");
    return 0;
  }
  configure_allocator();
  MpiSession mpi(&argc, &argv);
  log::init(mpi.env().rank, mpi.env().size);
  std::vector<std::string> models = {"efficientnet_b0", "vit_s16", "vit_b16"};
  int repeat = 5;
  double bucket_mb = 4, first_mb = 1;
  try {
    auto o = option_pairs(argc, argv, {"--models", "--repeat", "--bucket-mb", "--first-bucket-mb"},
                          "bench_allreduce");
    if (o.count("--models")) models = split(o["--models"], ',');
    if (o.count("--repeat")) repeat = static_cast<int>(positive_int_option("--repeat", o["--repeat"]));
    if (o.count("--bucket-mb")) bucket_mb = std::atof(o["--bucket-mb"].c_str());
    if (o.count("--first-bucket-mb")) first_mb = std::atof(o["--first-bucket-mb"].c_str());
  } catch (const UsageError& e) {
    if (mpi.env().rank == 0) std::fprintf(stderr, "error: %s\n", e.what());  // with its hint
    return 1;
  }
  set_cpu_threads(cpu_share(mpi.env()), 0);
  auto comm = make_communicator("mpi", true);
  const int ranks = comm->size();
  if (comm->rank() == 0) {
    std::printf("gradient all-reduce, %d ranks, best of %d; GB/s = gradient bytes / time\n\n", ranks, repeat);
    std::printf("| gradients | MB | one MPI_Allreduce GB/s | best chunked MPI_Allreduce GB/s (chunk) | "
                "reducer GB/s (%.0f MB buckets) | reducer / chunked | reducer / one call |\n",
                bucket_mb);
    std::printf("|---|---|---|---|---|---|---|\n");
  }
  for (const auto& name : models) {
    torch::manual_seed(0);
    auto model = ModelRegistry::instance().create(name, {1000, 3, 224});
    auto params = model->parameters();
    int64_t numel = 0;
    for (auto& p : params) numel += p.numel();
    const double mb = numel * 4 / 1e6;

    auto flat = torch::ones({numel}, torch::kFloat);
    const double t_one = best_time(repeat, [&] {
      MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr(), static_cast<int>(numel), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
    });
    double t_chunk = 1e30;
    int best_chunk = 0;
    for (int chunk_mb : {1, 2, 4, 8, 16, 32, 64}) {
      const int64_t chunk = static_cast<int64_t>(chunk_mb) * (1 << 20) / 4;
      const double t = best_time(repeat, [&] {
        for (int64_t off = 0; off < numel; off += chunk)
          MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr<float>() + off,
                        static_cast<int>(std::min(chunk, numel - off)), MPI_FLOAT, MPI_SUM,
                        MPI_COMM_WORLD);
      });
      if (t < t_chunk) t_chunk = t, best_chunk = chunk_mb;
    }
    flat = torch::Tensor();

    ReducerOptions o;
    o.bucket_bytes = static_cast<int64_t>(bucket_mb * (1 << 20));
    o.first_bucket_bytes = static_cast<int64_t>(first_mb * (1 << 20));
    GradientReducer reducer(params, *comm, o);
    const double t_red = best_time(repeat, [&] {
      reducer.prepare(true);
      reducer.finish();  // every bucket launched in order, then waited for
    });
    if (comm->rank() == 0)
      std::printf("| %s | %.0f | %.2f | %.2f (%d MB) | %.2f | %.2fx | %.2fx |\n", name.c_str(), mb,
                  mb / 1e3 / t_one, mb / 1e3 / t_chunk, best_chunk, mb / 1e3 / t_red,
                  t_chunk / t_red, t_one / t_red);
    std::fflush(stdout);
  }

  // Overlap in real training steps: a conv net at 64 px, hooks launching buckets during backward.
  for (const auto& [name, size, batch] : {std::tuple<std::string, int64_t, int64_t>{"efficientnet_b0", 64, 16},
                                          {"fmnist_cnn", 28, 64}}) {
    torch::manual_seed(0);
    const int64_t channels = name == "fmnist_cnn" ? 1 : 3;
    auto model = ModelRegistry::instance().create(name, {10, channels, size});
    ReducerOptions o;
    o.bucket_bytes = static_cast<int64_t>(bucket_mb * (1 << 20));
    o.first_bucket_bytes = static_cast<int64_t>(first_mb * (1 << 20));
    GradientReducer reducer(model->parameters(), *comm, o);
    auto x = torch::randn({batch, channels, size, size});
    auto y = torch::randint(0, 10, {batch}, torch::kLong);
    double comm_s = 0, exposed_s = 0, step_s = 0;
    const int steps = 2 + repeat;
    for (int s = 0; s < steps; ++s) {
      const double t0 = now();
      reducer.zero_grad();
      reducer.prepare(true);
      torch::nn::functional::cross_entropy(model->forward(x), y).backward();
      reducer.finish();
      if (s < 2) continue;  // warm-up
      comm_s += reducer.last_stats().comm_s;
      exposed_s += reducer.last_stats().exposed_s;
      step_s += now() - t0;
    }
    if (comm->rank() == 0) {
      if (name == "efficientnet_b0") {
        std::printf("\nall-reduce hidden behind backward (%d ranks, %d steps after 2 warm-up)\n\n", ranks, repeat);
        std::printf("| model | input | batch per rank | buckets | step ms | all-reduce ms | exposed ms | hidden |\n");
        std::printf("|---|---|---|---|---|---|---|---|\n");
      }
      std::printf("| %s | %lldx%lld | %lld | %zu | %.1f | %.1f | %.1f | %.0f%% |\n", name.c_str(),
                  (long long)size, (long long)size, (long long)batch, reducer.bucket_count(),
                  1e3 * step_s / repeat, 1e3 * comm_s / repeat, 1e3 * exposed_s / repeat,
                  100 * (1 - exposed_s / std::max(1e-12, comm_s)));
    }
  }
  return 0;
}
