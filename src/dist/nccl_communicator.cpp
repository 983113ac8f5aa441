#include "dist/nccl_communicator.h"

#include "common/error.h"
#include "common/log.h"
#include "dist/agreement.h"

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
    // The steps that can fail on some ranks only (no GPU on one node, NCCL's bootstrap interface
    // on rank 0's) are agreed before the id's broadcast: a rank failing here while the others
    // waited in MPI_Bcast left them there, its message unprinted, until the watchdog.
    ncclUniqueId id;
    agree(*host_, [&] {
      const int gpus = visible_gpus();
      ODY_CHECK(gpus > 0, "dist.backend = \"nccl\" but this process sees no GPU",
                "check CUDA_VISIBLE_DEVICES and the job's GPU request (--gpus-per-node)");
      device_ = local_rank % gpus;
      check_cuda(cudaSetDevice(device_), "cudaSetDevice");
      if (host_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    });
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    // ncclCommInitRank is itself collective: a rank failing inside it is not agreed (NCCL's own
    // bootstrap timeout or the watchdog ends the others). Its message is printed here, at once:
    // the agreement around this constructor would print it only after the others arrive.
    try {
      check_nccl(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
    } catch (const Error& e) {
      log::error("{} (GPU {})", e.what(), device_);
      log::err().flush();
      throw;
    }
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
    if (abort_reason_.empty()) ncclCommDestroy(comm_);
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
    return submit_allreduce(t, std::move(then), nullptr);
  }
  void allreduce_sum_queued(torch::Tensor& t) override {
    if (!t.is_cuda()) return host_->allreduce_sum(t);
    auto enqueued = std::make_shared<Work>();
    submit_allreduce(t, {}, enqueued);
    enqueued->wait();  // the default stream now waits for the sum; the host does not
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
  using Clock = std::chrono::steady_clock;

  struct Task {
    const char* op;
    int64_t bytes;
    std::function<void()> enqueue;  // enqueues the collective on stream_
    // Runs once it has completed (may be empty), on the communication thread: it may queue GPU
    // work but must not wait for the device (later collectives may be in flight, and a host wait
    // behind one whose peer died would keep the watchdog from ever firing).
    std::function<void()> then;
    WorkHandle work;
    WorkHandle enqueued;            // when set: the default stream waits for the collective
    cudaEvent_t ready = nullptr;    // the default stream's work when it was submitted
  };
  // A collective enqueued on stream_ and not yet seen complete.
  struct InFlight {
    Task task;
    int64_t seq = 0;
    cudaEvent_t start = nullptr, done = nullptr;  // around the collective on stream_ (timed)
    Clock::time_point clock;  // its watchdog clock: from when it was the oldest one in flight
  };

  WorkHandle submit_allreduce(const torch::Tensor& t, std::function<void()> then,
                              WorkHandle enqueued) {
    ODY_CHECK(t.is_contiguous(), "NCCL collectives need contiguous tensors", "");
    ODY_CHECK(t.device().index() == device_,
              ODY_MSG("an NCCL collective of a tensor on " << t.device() << ": this rank's GPU is "
                                                           << device_),
              "");
    const ncclDataType_t type = nccl_type(t.scalar_type());
    return submit("nccl allreduce", static_cast<int64_t>(t.nbytes()), [this, t, type] {
      check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), type, ncclSum, comm_,
                               stream_), "ncclAllReduce");
    }, std::move(then), std::move(enqueued));
  }

  // The collective is ordered after the work queued on the default stream up to this call (the
  // event is recorded here, on the submitting thread: recorded when the communication thread
  // takes the task, it would also cover everything queued since, and a gradient bucket's
  // all-reduce would wait for the rest of the backward pass it should overlap).
  WorkHandle submit(const char* op, int64_t bytes, std::function<void()> enqueue,
                    std::function<void()> then = {}, WorkHandle enqueued = nullptr) {
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
      queue_.push_back({op, bytes, std::move(enqueue), std::move(then), work, std::move(enqueued),
                        ready});
    }
    cv_.notify_one();
    return work;
  }

  // Enqueues each submitted collective on our stream as soon as it is taken (ordered after the
  // compute queued before its submission), so they run back to back on the GPU; completions are
  // then seen in order, each followed by its `then` (which queues its own work on the default
  // stream: run any earlier, it would read the buffer before NCCL wrote it, as our stream does
  // not synchronise with the default one) and its Work. The oldest collective in flight is held
  // to the watchdog limit from when it became the oldest; past it, or on an NCCL or CUDA error,
  // the communicator is aborted and every collective in flight fails with that error.
  void run() {
    cudaSetDevice(device_);
    std::deque<InFlight> flight;
    int64_t seq = 0;
    for (;;) {
      std::deque<Task> taken;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        const auto wake = [this] { return stop_ || !queue_.empty(); };
        // Idle: sleep until a submission (or the stop). Waiting on a collective: poll every
        // 50 us, but take a new submission at once (the stop does not cut the wait short: the
        // collectives in flight are seen to completion first).
        if (flight.empty()) cv_.wait(lock, wake);
        else cv_.wait_for(lock, std::chrono::microseconds(50), [this] { return !queue_.empty(); });
        if (flight.empty() && queue_.empty()) break;  // stopped, nothing left
        taken.swap(queue_);
      }
      for (auto& task : taken) enqueue(std::move(task), ++seq, flight);
      while (!flight.empty() && poll(flight)) {
      }
    }
  }

  // A collective that cannot be enqueued (on this rank only, perhaps) would leave the ranks'
  // sequences of collectives out of step, and one that failed after it was enqueued may still
  // write its buffer: either aborts the communicator and fails every collective in flight.
  void enqueue(Task task, int64_t seq, std::deque<InFlight>& flight) {
    InFlight f;
    f.task = std::move(task);
    f.seq = seq;
    if (!abort_reason_.empty()) {
      release(f, "the NCCL communicator was aborted: " + abort_reason_, 0);
      return;
    }
    try {
      check_cuda(cudaStreamWaitEvent(stream_, f.task.ready, 0), "cudaStreamWaitEvent");
      check_cuda(cudaEventCreate(&f.start), "cudaEventCreate");
      check_cuda(cudaEventCreate(&f.done), "cudaEventCreate");
      check_cuda(cudaEventRecord(f.start, stream_), "cudaEventRecord");
      f.task.enqueue();
      check_cuda(cudaEventRecord(f.done, stream_), "cudaEventRecord");
      if (f.task.enqueued) {
        check_cuda(cudaStreamWaitEvent(cudaStreamLegacy, f.done, 0), "cudaStreamWaitEvent");
        f.task.enqueued->finish(0);
      }
    } catch (const std::exception& e) {
      fail_all(flight, e);
      release(f, e.what(), 0);
      return;
    }
    if (flight.empty()) f.clock = Clock::now();
    flight.push_back(std::move(f));
  }

  // Looks at the oldest collective in flight: true when it completed (or failed) and was
  // released, false when it is still running.
  bool poll(std::deque<InFlight>& flight) {
    InFlight& head = flight.front();
    const cudaError_t q = cudaEventQuery(head.done);
    // "Not ready" is left in this thread's last-error slot, where LibTorch's next kernel launch
    // here (a follow-up) would take it for a failure: cleared, as PyTorch's CUDAEvent::query does.
    if (q == cudaErrorNotReady) (void)cudaGetLastError();
    if (q == cudaSuccess) {
      float ms = 0;
      if (cudaEventElapsedTime(&ms, head.start, head.done) != cudaSuccess) {
        (void)cudaGetLastError();
        ms = 0;
      }
      std::string error;
      try {
        if (head.task.then) head.task.then();
      } catch (const std::exception& e) {
        error = e.what();
      }
      release(head, error, ms / 1e3);
      flight.pop_front();
      if (!flight.empty()) flight.front().clock = Clock::now();
      return true;
    }
    try {
      if (q != cudaErrorNotReady) check_cuda(q, "cudaEventQuery");
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess) {
        abort(std::string("NCCL asynchronous error: ") + ncclGetErrorString(async));
        ODY_FAIL(ODY_MSG("NCCL collective #" << head.seq << " (" << head.task.op << ") failed: "
                                             << ncclGetErrorString(async)
                                             << "; communicator aborted"),
                 "NCCL_DEBUG=WARN shows NCCL's own view; check NCCL_SOCKET_IFNAME on multi-node jobs");
      }
      const double waited = std::chrono::duration<double>(Clock::now() - head.clock).count();
      if (waited > timeout_s_.load()) {
        abort(ODY_MSG("collective #" << head.seq << " timed out"));
        ODY_FAIL(ODY_MSG("watchdog: NCCL collective #" << head.seq << " (" << head.task.op << ", "
                                                        << head.task.bytes / 1e6 << " MB) did not "
                                                        << "complete within " << waited
                                                        << " s on rank " << rank()
                                                        << "; communicator aborted"),
                 "another rank is stopped, dead or unreachable; see the other ranks' output");
      }
    } catch (const std::exception& e) {
      fail_all(flight, e);  // a CUDA error, an NCCL error or a timeout
      return true;
    }
    return false;
  }

  // Aborts the communicator (once) and fails every collective in flight with `e`: none of them
  // will complete. Their buffers are released at once, possibly before the aborted kernels have
  // exited; the job is ending.
  void fail_all(std::deque<InFlight>& flight, const std::exception& e) {
    const auto* error = dynamic_cast<const Error*>(&e);
    abort(error ? error->message() : e.what());  // no-op when already aborted
    for (auto& f : flight) release(f, e.what(), 0);
    flight.clear();
  }

  void abort(const std::string& reason) {
    if (!abort_reason_.empty()) return;
    abort_reason_ = reason;
    ncclCommAbort(comm_);
  }

  // Frees a collective's events and completes its Work (and its enqueued signal, if still open).
  static void release(InFlight& f, const std::string& error, double seconds) {
    if (f.start) cudaEventDestroy(f.start);
    if (f.done) cudaEventDestroy(f.done);
    cudaEventDestroy(f.task.ready);  // released once the work waiting on it completes
    if (f.task.enqueued && !f.task.enqueued->done()) f.task.enqueued->finish(0, error);
    f.task.work->finish(seconds, error);
  }

  std::unique_ptr<Communicator> host_;
  std::atomic<double> timeout_s_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::string abort_reason_;  // set once, by the communication thread, when it aborts comm_
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
