#include "dist/communicator.h"

#include <mpi.h>

#include "common/error.h"

namespace odyssey {

namespace {

void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  ODY_FAIL(ODY_MSG(call << " failed: " << std::string(text, len)),
           "another rank may have died; see its output above");
}

MPI_Datatype mpi_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat: return MPI_FLOAT;
    case torch::kDouble: return MPI_DOUBLE;
    case torch::kLong: return MPI_INT64_T;
    case torch::kByte: return MPI_UINT8_T;
    default: ODY_FAIL(ODY_MSG("no MPI type for tensor dtype " << t.scalar_type()), "");
  }
}

void check_tensor(const torch::Tensor& t) {
  ODY_CHECK(t.device().is_cpu() && t.is_contiguous(),
            "MPI collectives need contiguous CPU tensors", "");
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void allreduce_sum(torch::Tensor& t) override {
    check_tensor(t);
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t),
                            MPI_SUM, MPI_COMM_WORLD),
              "MPI_Allreduce");
  }
  void broadcast(torch::Tensor& t, int root) override {
    check_tensor(t);
    check_mpi(MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t), root,
                        MPI_COMM_WORLD),
              "MPI_Bcast");
  }
  void broadcast(std::string& text, int root) override {
    int64_t n = static_cast<int64_t>(text.size());
    check_mpi(MPI_Bcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
    text.resize(n);
    check_mpi(MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD),
              "MPI_Bcast");
  }
  int64_t allreduce_min(int64_t value) override {
    int64_t out = value;
    check_mpi(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD),
              "MPI_Allreduce");
    return out;
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

 private:
  int rank_ = 0, size_ = 1;
};

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  void allreduce_sum(torch::Tensor&) override {}
  void broadcast(torch::Tensor&, int) override {}
  void broadcast(std::string&, int) override {}
  int64_t allreduce_min(int64_t value) override { return value; }
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_communicator(const std::string& backend, bool mpi_initialised) {
  int size = 1;
  if (mpi_initialised) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (backend == "single") {
    ODY_CHECK(size == 1,
              ODY_MSG("dist.backend = \"single\" but the job has " << size << " ranks"),
              "use dist.backend = \"auto\" or \"mpi\" under mpirun");
    return std::make_unique<SingleProcessCommunicator>();
  }
  if (backend == "mpi" || (backend == "auto" && size > 1)) {
    ODY_CHECK(mpi_initialised, "dist.backend = \"mpi\" but MPI is not initialised", "");
    return std::make_unique<MpiCommunicator>();
  }
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace odyssey
