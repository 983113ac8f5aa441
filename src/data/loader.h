// Loader: reader threads that fill a bounded window of ready uint8 batches, so the training
// thread waits on disk only when the disk is slower than training. With T threads, thread t reads
// the steps first + t, first + t + T, ...; next() hands batches out in step order, so the
// sequence of batches is the same whatever T is.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/split_reader.h"

namespace odyssey {

struct Batch {
  int64_t step = 0;
  torch::Tensor images;  // uint8 [B,H,W,C]
  torch::Tensor labels;  // int64 [B]
};

class Loader {
 public:
  using IndicesOf = std::function<std::vector<int64_t>(int64_t step)>;

  // Reads batches for steps [first_step, end_step); the samples of a step come from indices_of
  // (called from the reader threads: it must be safe to call concurrently). At most `prefetch`
  // batches (at least one per thread) are read ahead of the one next() returns. pin_for (a CUDA
  // device): the reader threads move each batch's images and labels into page-locked memory, with
  // that device current (no context on another GPU), so the training thread's copies can run
  // without blocking.
  Loader(const SplitReader& reader, IndicesOf indices_of, int64_t first_step, int64_t end_step,
         int64_t prefetch, int threads = 1, std::optional<torch::Device> pin_for = std::nullopt);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch in step order; nullopt after the last. A read error in a reader thread is
  // rethrown here (the first one, in step order of the failing batch).
  std::optional<Batch> next();
  // Seconds next() spent waiting for the reader threads.
  double wait_seconds() const { return wait_s_; }

 private:
  void run(int thread);
  void stop_and_join();  // asks the reader threads to stop and waits for those started

  const SplitReader& reader_;
  IndicesOf indices_of_;
  int64_t first_step_, end_step_, consumed_;
  int64_t window_;
  int threads_;
  std::optional<torch::Device> pin_for_;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  double wait_s_ = 0;
  std::vector<std::thread> pool_;
};

}  // namespace odyssey
