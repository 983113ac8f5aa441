// Loader: a reader thread that fills a bounded queue with ready uint8 batches, so the training
// thread waits on disk only when the disk is slower than training.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

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

  // Reads batches for steps [first_step, end_step); the samples of a step come from indices_of.
  Loader(const SplitReader& reader, IndicesOf indices_of, int64_t first_step, int64_t end_step,
         int64_t prefetch);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch in step order; nullopt after the last. A read error in the reader thread is
  // rethrown here.
  std::optional<Batch> next();
  // Seconds next() spent waiting for the reader thread.
  double wait_seconds() const { return wait_s_; }

 private:
  void run();

  const SplitReader& reader_;
  IndicesOf indices_of_;
  int64_t next_step_, end_step_, consumed_;
  size_t capacity_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  double wait_s_ = 0;
  std::thread thread_;
};

}  // namespace odyssey
