#include "dist/nccl_communicator.h"

#include "common/error.h"

#ifdef ODYSSEY_WITH_NCCL
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <deque>
#include <functional>
#include <thread>
#endif

namespace odyssey {

#ifndef ODYSSEY_WITH_NCCL

bool nccl_compiled() { return false; }
int visible_gpus() { return 0; }
std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions&, int) {
  ODY_FAIL("dist.backend = \"nccl\" but this build has no NCCL",
           "build on a machine with CUDA and NCCL (found in /usr/local/cuda), or use \"mpi\"");
}
DeviceCollectives* device_collectives(Communicator&) { return nullptr; }

#else

bool nccl_compiled() { return true; }

int visible_gpus() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

namespace {

void check_cuda(cudaError_t rc, const char* what) {
  if (rc == cudaSuccess) return;
  ODY_FAIL(std::string(what) + " failed: " + cudaGetErrorString(rc), "");
}

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  ODY_FAIL(std::string(what) + " failed: " + ncclGetErrorString(rc),
           "NCCL_DEBUG=WARN shows NCCL's own view; check NCCL_SOCKET_IFNAME on multi-node jobs");
}

// The NCCL type of a CUDA tensor's elements: the types the Communicator interface sums.
ncclDataType_t nccl_type(torch::ScalarType s) {
  switch (s) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;  // SyncBatchNorm's statistics
    case torch::kLong: return ncclInt64;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kHalf: return ncclFloat16;
    default: break;
  }
  ODY_FAIL(ODY_MSG("no NCCL type for " << s << " tensors"), "sum float32, float64, int64, bf16 or fp16");
}

torch::ScalarType scalar_type(DeviceDtype d) {
  switch (d) {
    case DeviceDtype::kBFloat16: return torch::kBFloat16;
    case DeviceDtype::kFloat16: return torch::kHalf;
    case DeviceDtype::kFloat32: break;
  }
  return torch::kFloat;
}

class NcclCommunicator final : public Communicator, public DeviceCollectives {
 public:
  NcclCommunicator(const CommOptions& options, int local_rank)
      : host_(make_mpi_communicator(options)), timeout_s_(options.first_timeout_s) {
    const int gpus = visible_gpus();
    ODY_CHECK(gpus > 0, "dist.backend = \"nccl\" but this process sees no GPU",
              "check CUDA_VISIBLE_DEVICES and the job's GPU request (--gpus-per-node)");
    device_ = local_rank % gpus;
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id;
    if (host_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    check_nccl(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    thread_ = std::thread([this] { run(); });
  }
  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (!aborted_) ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::string name() const override { return "nccl"; }
  int device() const override { return device_; }
  void set_timeout(double s) override {
    timeout_s_.store(s);
    host_->set_timeout(s);
  }

  WorkHandle allreduce_sum_async(const torch::Tensor& t, std::function<void()> then) override {
    if (!t.is_cuda()) return host_->allreduce_sum_async(t, std::move(then));
    ODY_CHECK(t.is_contiguous(), "NCCL collectives need contiguous tensors", "");
    const ncclDataType_t type = nccl_type(t.scalar_type());
    return submit("nccl allreduce", static_cast<int64_t>(t.nbytes()), [this, t, type] {
      check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), type, ncclSum, comm_,
                               stream_), "ncclAllReduce");
    }, std::move(then));
  }
  WorkHandle allreduce_sum_device(void* data, int64_t count, DeviceDtype d) override {
    const auto s = scalar_type(d);
    const ncclDataType_t type = nccl_type(s);
    const int64_t bytes = count * static_cast<int64_t>(c10::elementSize(s));
    return submit("nccl allreduce", bytes, [this, data, count, type] {
      check_nccl(ncclAllReduce(data, data, count, type, ncclSum, comm_, stream_), "ncclAllReduce");
    });
  }
  WorkHandle broadcast_async(const torch::Tensor& t, int root) override {
    if (!t.is_cuda()) return host_->broadcast_async(t, root);
    return submit("nccl broadcast", t.nbytes(), [this, t, root] {
      check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.nbytes(), ncclUint8, root, comm_,
                               stream_), "ncclBroadcast");
    });
  }
  void broadcast(std::string& text, int root) override { host_->broadcast(text, root); }
  int64_t allreduce_min(int64_t v) override { return host_->allreduce_min(v); }
  void barrier() override { host_->barrier(); }

 private:
  struct Task {
    const char* op;
    int64_t bytes;
    std::function<void()> enqueue;  // enqueues the collective on stream_
    std::function<void()> then;     // runs once it has completed (may be empty)
    WorkHandle work;
    cudaEvent_t ready = nullptr;    // the default stream's work when it was submitted
  };

  // The collective is ordered after the work queued on the default stream up to this call (the
  // event is recorded here, on the submitting thread: recorded when the communication thread
  // takes the task, it would also cover everything queued since, and a gradient bucket's
  // all-reduce would wait for the rest of the backward pass it should overlap).
  WorkHandle submit(const char* op, int64_t bytes, std::function<void()> enqueue,
                    std::function<void()> then = {}) {
    auto work = std::make_shared<Work>();
    cudaEvent_t ready = nullptr;
    int current = -1;
    cudaGetDevice(&current);
    if (current != device_) check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    check_cuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
    const cudaError_t recorded = cudaEventRecord(ready, cudaStreamLegacy);
    if (current != device_ && current >= 0) cudaSetDevice(current);
    if (recorded != cudaSuccess) cudaEventDestroy(ready);
    check_cuda(recorded, "cudaEventRecord");
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({op, bytes, std::move(enqueue), std::move(then), work, ready});
    }
    cv_.notify_one();
    return work;
  }

  // One collective at a time: ordered after the compute queued on the default stream before it
  // was submitted, enqueued on our stream, waited for with a deadline, then its `then` (which
  // queues its own work on the default stream: run any earlier, it would read the buffer before
  // NCCL wrote it, as our stream does not synchronise with the default one).
  void run() {
    cudaSetDevice(device_);
    cudaEvent_t done;
    cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
    int64_t seq = 0;
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) break;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      ++seq;
      const auto t0 = std::chrono::steady_clock::now();
      std::string error;
      try {
        ODY_CHECK(!aborted_, "the NCCL communicator was aborted after a timeout", "");
        check_cuda(cudaStreamWaitEvent(stream_, task.ready, 0), "cudaStreamWaitEvent");
        task.enqueue();
        check_cuda(cudaEventRecord(done, stream_), "cudaEventRecord");
        for (;;) {
          cudaError_t q = cudaEventQuery(done);
          if (q == cudaSuccess) break;
          if (q != cudaErrorNotReady) check_cuda(q, "cudaEventQuery");
          ncclResult_t async = ncclSuccess;
          ncclCommGetAsyncError(comm_, &async);
          check_nccl(async, "NCCL (asynchronous error)");
          const double waited =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (waited > timeout_s_.load()) {
            ncclCommAbort(comm_);
            aborted_ = true;
            ODY_FAIL(ODY_MSG("watchdog: NCCL collective #" << seq << " (" << task.op << ", "
                                                            << task.bytes / 1e6 << " MB) did not "
                                                            << "complete within " << waited
                                                            << " s on rank " << rank()
                                                            << "; communicator aborted"),
                     "another rank is stopped, dead or unreachable; see the other ranks' output");
          }
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        if (task.then) task.then();
      } catch (const std::exception& e) {
        error = e.what();
      }
      cudaEventDestroy(task.ready);  // released once the work waiting on it completes
      task.work->finish(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), error);
    }
    cudaEventDestroy(done);
  }

  std::unique_ptr<Communicator> host_;
  std::atomic<double> timeout_s_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool aborted_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& options, int local_rank) {
  return std::make_unique<NcclCommunicator>(options, local_rank);
}

DeviceCollectives* device_collectives(Communicator& comm) {
  return dynamic_cast<DeviceCollectives*>(&comm);
}

#endif

}  // namespace odyssey
