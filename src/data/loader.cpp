#include "data/loader.h"

#include <chrono>

namespace odyssey {

Loader::Loader(const SplitReader& reader, IndicesOf indices_of, int64_t first_step,
               int64_t end_step, int64_t prefetch)
    : reader_(reader),
      indices_of_(std::move(indices_of)),
      next_step_(first_step),
      end_step_(end_step),
      consumed_(first_step),
      capacity_(static_cast<size_t>(std::max<int64_t>(1, prefetch))) {
  thread_ = std::thread([this] { run(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Loader::run() {
  try {
    for (int64_t step = next_step_; step < end_step_; ++step) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || queue_.size() < capacity_; });
        if (stop_) return;
      }
      auto indices = indices_of_(step);
      Batch b{step, reader_.gather_images(indices), reader_.gather_labels(indices)};
      {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(b));
      }
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  }
  cv_.notify_all();
}

std::optional<Batch> Loader::next() {
  if (consumed_ >= end_step_) return std::nullopt;
  auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || error_; });
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (queue_.empty()) std::rethrow_exception(error_);
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace odyssey
