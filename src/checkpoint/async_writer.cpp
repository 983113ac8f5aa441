#include "checkpoint/async_writer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "common/log.h"

namespace odyssey {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

NamedTensors clone_all(const NamedTensors& in) {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  out.reserve(in.size());
  // Host copies in the default layout: a GPU's state leaves device memory, and the writer thread
  // reads plain contiguous buffers.
  for (const auto& [name, t] : in)
    out.emplace_back(name, t.detach().to(torch::kCPU, t.scalar_type(), /*non_blocking=*/false,
                                          /*copy=*/true, torch::MemoryFormat::Contiguous));
  return out;
}
}  // namespace

CheckpointData deep_copy(const CheckpointData& data) {
  CheckpointData copy;
  copy.model = clone_all(data.model);
  copy.optimizer = clone_all(data.optimizer);
  copy.ema = clone_all(data.ema);
  copy.trainer = data.trainer;
  return copy;
}

bool copy_into(const CheckpointData& data, CheckpointData& into) {
  auto same = [](const NamedTensors& a, const NamedTensors& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].first != b[i].first || !a[i].second.sizes().equals(b[i].second.sizes()) ||
          a[i].second.scalar_type() != b[i].second.scalar_type())
        return false;
    return true;
  };
  if (!same(data.model, into.model) || !same(data.optimizer, into.optimizer) ||
      !same(data.ema, into.ema))
    return false;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < data.model.size(); ++i) into.model[i].second.copy_(data.model[i].second);
  for (size_t i = 0; i < data.optimizer.size(); ++i)
    into.optimizer[i].second.copy_(data.optimizer[i].second);
  for (size_t i = 0; i < data.ema.size(); ++i) into.ema[i].second.copy_(data.ema[i].second);
  into.trainer = data.trainer;
  return true;
}

AsyncCheckpointWriter::AsyncCheckpointWriter(Checkpointer& checkpointer, bool async)
    : checkpointer_(checkpointer), async_(async) {
  if (async_) thread_ = std::thread([this] { run(); });
}

AsyncCheckpointWriter::~AsyncCheckpointWriter() {
  if (!async_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

double AsyncCheckpointWriter::submit(const CheckpointData& data) {
  const auto t0 = Clock::now();
  if (!async_) {
    write(data);
    return seconds_since(t0);
  }
  wait();  // at most one checkpoint in flight: bounded memory
  std::optional<CheckpointData> copy;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    copy = std::move(spare_);
    spare_.reset();
  }
  try {
    if (!copy || !copy_into(data, *copy)) copy = deep_copy(data);
  } catch (const std::exception& e) {  // host memory short, a device error: a failed checkpoint
    std::lock_guard<std::mutex> lock(mutex_);  // (reported as a write's), not a training error
    error_ = std::string("cannot copy the state for the writer: ") + e.what();
    error_->resize(std::min(error_->size(), error_->find('\n')));  // no backtrace
    log::error("checkpoint of step {} failed: {}", data.trainer.step, *error_);
    return seconds_since(t0);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ = std::move(copy);
    busy_ = true;
  }
  cv_.notify_all();
  return seconds_since(t0);
}

void AsyncCheckpointWriter::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return !busy_; });
}

std::optional<std::string> AsyncCheckpointWriter::take_error() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto e = std::move(error_);
  error_.reset();
  return e;
}

std::string AsyncCheckpointWriter::last_path() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_path_;
}

double AsyncCheckpointWriter::last_write_seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_seconds_;
}

void AsyncCheckpointWriter::run() {
  for (;;) {
    CheckpointData data;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
      if (!pending_) return;
      data = std::move(*pending_);
      pending_.reset();
    }
    write(data);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      spare_ = std::move(data);
      busy_ = false;
    }
    cv_.notify_all();
  }
}

void AsyncCheckpointWriter::write(const CheckpointData& data) {
  const auto t0 = Clock::now();
  try {
    std::string path = checkpointer_.save(data);
    const double s = seconds_since(t0);
    log::info("checkpoint {} written in {:.2f} s{}", path, s, async_ ? " (in the background)" : "");
    std::lock_guard<std::mutex> lock(mutex_);
    last_path_ = path;
    last_seconds_ = s;
  } catch (const Error& e) {
    log::error("checkpoint of step {} failed: {}", data.trainer.step, e.what());
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = e.message();
  } catch (const std::exception& e) {
    log::error("checkpoint of step {} failed: {}", data.trainer.step, e.what());
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = e.what();
  }
}

}  // namespace odyssey
