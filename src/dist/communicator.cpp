#include "dist/communicator.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <mpi.h>

#include <chrono>
#include <deque>
#include <functional>
#include <thread>

#include "common/error.h"
#include "common/exit_codes.h"
#include "dist/nccl_communicator.h"
#include "dist/watchdog.h"

namespace odyssey {

void Work::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return done_; });
  if (!error_.empty()) throw Error(error_, "another rank may have died; see its output above",
                                   __FILE__, __LINE__);
}

bool Work::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

double Work::seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seconds_;
}

void Work::finish(double seconds, std::string error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    seconds_ = seconds;
    error_ = std::move(error);
  }
  cv_.notify_all();
}

namespace {

void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  ODY_FAIL(ODY_MSG(call << " failed: " << std::string(text, len)),
           "another rank may have died; see its output above");
}

// Sums of 16-bit floats: each element is widened to float, added, and rounded back.
template <typename T>
void sum_16bit(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const T*>(in);
  auto* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = T(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

struct MpiTypes {
  MPI_Op bf16_sum = MPI_OP_NULL, fp16_sum = MPI_OP_NULL;
};

std::pair<MPI_Datatype, MPI_Op> mpi_sum(const torch::Tensor& t, const MpiTypes& ops) {
  switch (t.scalar_type()) {
    case torch::kFloat: return {MPI_FLOAT, MPI_SUM};
    case torch::kDouble: return {MPI_DOUBLE, MPI_SUM};
    case torch::kLong: return {MPI_INT64_T, MPI_SUM};
    case torch::kByte: return {MPI_UINT8_T, MPI_SUM};
    case torch::kBFloat16: return {MPI_UINT16_T, ops.bf16_sum};
    case torch::kHalf: return {MPI_UINT16_T, ops.fp16_sum};
    default: ODY_FAIL(ODY_MSG("no MPI type for tensor dtype " << t.scalar_type()), "");
  }
}

void check_tensor(const torch::Tensor& t) {
  ODY_CHECK(t.device().is_cpu() && t.is_contiguous(),
            "MPI collectives need contiguous CPU tensors", "");
  ODY_CHECK(t.numel() <= INT32_MAX, "a collective over more than 2^31 elements", "use smaller buckets");
}

// The MPI backend. One communication thread issues every collective, in submission order: the
// training thread never blocks in MPI while it computes, MPI progresses because the thread sits
// inside the call (Open MPI's non-blocking collectives only move when some thread enters MPI),
// and the order of collectives is the same on every rank by construction. The watchdog brackets
// each collective with its sequence number.
class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const CommOptions& options) {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Op_create(&sum_16bit<c10::BFloat16>, 1, &ops_.bf16_sum);
    MPI_Op_create(&sum_16bit<c10::Half>, 1, &ops_.fp16_sum);
    watchdog_ = std::make_unique<Watchdog>(comm_, options.first_timeout_s);
    thread_ = std::thread([this] { run(); });
  }
  ~MpiCommunicator() override {
    std::unique_lock<std::mutex> lock(mutex_);
    stop_ = true;
    cv_.notify_all();
    // Normally the queue is empty and the thread ends at once. During an error exit it may be
    // blocked in a collective the other ranks never join: then leave it (and what it uses) to
    // the process's end, so the caller can go on to MPI_Abort instead of hanging here.
    if (!cv_.wait_for(lock, std::chrono::seconds(2), [this] { return exited_; })) {
      // Unwinding while this rank's collective waits for ranks that will never join it: end
      // the job rather than free what the communication thread still uses.
      std::fputs("[odyssey] the communication thread is stuck in a collective; aborting the job\n",
                 stderr);
      MPI_Abort(MPI_COMM_WORLD, kExitRuntime);
    }
    lock.unlock();
    thread_.join();
    watchdog_.reset();
    MPI_Op_free(&ops_.bf16_sum);
    MPI_Op_free(&ops_.fp16_sum);
    MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  void set_timeout(double seconds) override { watchdog_->set_timeout(seconds); }

  WorkHandle allreduce_sum_async(const torch::Tensor& t, std::function<void()> then) override {
    check_tensor(t);
    auto [type, op] = mpi_sum(t, ops_);
    return submit("allreduce", t.nbytes(), [this, t, type = type, op = op, then = std::move(then)] {
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), type, op,
                              comm_),
                "MPI_Allreduce");
      if (then) then();
    });
  }
  WorkHandle broadcast_async(const torch::Tensor& t, int root) override {
    check_tensor(t);
    MPI_Datatype type = mpi_sum(t, ops_).first;
    return submit("broadcast", t.nbytes(), [this, t, type, root] {
      check_mpi(MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), type, root, comm_),
                "MPI_Bcast");
    });
  }
  void broadcast(std::string& text, int root) override {
    submit("broadcast", static_cast<int64_t>(text.size()), [this, &text, root] {
      int64_t n = static_cast<int64_t>(text.size());
      check_mpi(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm_), "MPI_Bcast");
      text.resize(n);
      check_mpi(MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, root, comm_), "MPI_Bcast");
    })->wait();
  }
  int64_t allreduce_min(int64_t value) override {
    int64_t out = value;
    submit("allreduce_min", 8, [this, &value, &out] {
      check_mpi(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MIN, comm_), "MPI_Allreduce");
    })->wait();
    return out;
  }
  void barrier() override {
    submit("barrier", 0, [this] { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); })->wait();
  }

 private:
  struct Task {
    const char* op;
    int64_t bytes;
    std::function<void()> fn;
    WorkHandle work;
  };

  WorkHandle submit(const char* op, int64_t bytes, std::function<void()> fn) {
    auto work = std::make_shared<Work>();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({op, bytes, std::move(fn), work});
    }
    cv_.notify_one();
    return work;
  }

  void run() {
    int64_t seq = 0;
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) {
          exited_ = true;
          cv_.notify_all();
          return;
        }
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      watchdog_->enter(++seq, task.op, task.bytes);
      const auto t0 = std::chrono::steady_clock::now();
      std::string error;
      try {
        task.fn();
      } catch (const std::exception& e) {
        error = e.what();
      }
      watchdog_->leave(seq);
      task.work->finish(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), error);
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  MpiTypes ops_;
  std::unique_ptr<Watchdog> watchdog_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stop_ = false, exited_ = false;
  std::thread thread_;
};

WorkHandle completed() {
  auto w = std::make_shared<Work>();
  w->finish(0);
  return w;
}

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  WorkHandle allreduce_sum_async(const torch::Tensor&, std::function<void()> then) override {
    if (then) then();
    return completed();
  }
  WorkHandle broadcast_async(const torch::Tensor&, int) override { return completed(); }
  void broadcast(std::string&, int) override {}
  int64_t allreduce_min(int64_t value) override { return value; }
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options) {
  return std::make_unique<MpiCommunicator>(options);
}

std::unique_ptr<Communicator> make_communicator(const std::string& backend, bool mpi_initialised,
                                                const CommOptions& options) {
  int size = 1;
  if (mpi_initialised) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (backend == "single") {
    ODY_CHECK(size == 1,
              ODY_MSG("dist.backend = \"single\" but the job has " << size << " ranks"),
              "use dist.backend = \"auto\" or \"mpi\" under mpirun");
    return std::make_unique<SingleProcessCommunicator>();
  }
  if (backend == "nccl") {
    ODY_CHECK(mpi_initialised, "dist.backend = \"nccl\" needs MPI (it carries the NCCL id)", "");
    MPI_Comm node;
    int local_rank = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_free(&node);
    return make_nccl_communicator(options, local_rank);
  }
  if (backend == "mpi" || (backend == "auto" && size > 1)) {
    ODY_CHECK(mpi_initialised, "dist.backend = \"mpi\" but MPI is not initialised", "");
    return std::make_unique<MpiCommunicator>(options);
  }
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace odyssey
