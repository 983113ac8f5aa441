#include "data/loader.h"

#include <c10/core/DeviceGuard.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <system_error>

#include "common/error.h"

namespace odyssey {

Loader::Loader(const SplitReader& reader, IndicesOf indices_of, int64_t first_step,
               int64_t end_step, int64_t prefetch, int threads,
               std::optional<torch::Device> pin_for)
    : reader_(reader),
      indices_of_(std::move(indices_of)),
      first_step_(first_step),
      end_step_(end_step),
      consumed_(first_step),
      threads_(std::max(1, threads)),
      pin_for_(pin_for) {
  window_ = std::max<int64_t>(prefetch, threads_);
  try {
    for (int t = 0; t < threads_; ++t) pool_.emplace_back([this, t] { run(t); });
  } catch (const std::system_error& e) {  // the node's thread limit: stop those started
    stop_and_join();
    ODY_FAIL("cannot start data reader thread " + std::to_string(pool_.size() + 1) + " of " +
                 std::to_string(threads_) + ": " + e.what(),
             "lower data.readers");
  }
}

Loader::~Loader() { stop_and_join(); }

void Loader::stop_and_join() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : pool_)
    if (t.joinable()) t.join();
}

void Loader::run(int thread) {
  // Page-locked batches are allocated with the rank's GPU current, set once for the thread.
  std::optional<c10::DeviceGuard> on;
  try {
    if (pin_for_) on.emplace(*pin_for_);
  } catch (...) {  // the consumer gets it at this thread's first step
    std::lock_guard<std::mutex> lock(mu_);
    errors_.emplace(first_step_ + thread, std::current_exception());
    cv_.notify_all();
    return;
  }
  for (int64_t step = first_step_ + thread; step < end_step_; step += threads_) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Read step only when it is within the window after the batch next() hands out next.
      cv_.wait(lock, [&] { return stop_ || step < consumed_ + window_; });
      if (stop_) return;
    }
    try {
      auto indices = indices_of_(step);
      Batch b{step, reader_.gather_images(indices), reader_.gather_labels(indices)};
      if (pin_for_) {
        b.images = b.images.pin_memory();
        b.labels = b.labels.pin_memory();
      }
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(step, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.emplace(step, std::current_exception());
      cv_.notify_all();
      return;  // the consumer stops at this step; later steps are not needed
    }
    cv_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  if (consumed_ >= end_step_) return std::nullopt;
  auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t step = consumed_;
  cv_.wait(lock, [&] { return ready_.count(step) || errors_.count(step); });
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto it = ready_.find(step);
  if (it == ready_.end()) std::rethrow_exception(errors_.at(step));
  Batch b = std::move(it->second);
  ready_.erase(it);
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace odyssey
