#include "common/log.h"

#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <mutex>

namespace odyssey::log {

namespace {
int g_rank = 0;
std::shared_ptr<spdlog::logger> g_out;
std::shared_ptr<spdlog::logger> g_err;

// The status line (a progress bar on a terminal): log lines clear it, print, and redraw it, so
// messages from any thread never land in the middle of the bar.
std::mutex g_status_mutex;
std::string g_status;

void draw_status_locked() {
  if (g_status.empty()) return;
  std::fputs(g_status.c_str(), stdout);
  std::fflush(stdout);
}

void erase_status_locked() {
  if (g_status.empty()) return;
  std::fputs("\r\033[K", stdout);
  std::fflush(stdout);
}

class StatusAwareSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit StatusAwareSink(FILE* file) : file_(file) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t text;
    formatter_->format(msg, text);
    std::lock_guard<std::mutex> lock(g_status_mutex);
    erase_status_locked();
    std::fwrite(text.data(), 1, text.size(), file_);
    std::fflush(file_);
    draw_status_locked();
  }
  void flush_() override { std::fflush(file_); }

 private:
  FILE* file_;
};

void make_loggers(int world_size) {
  std::string prefix = world_size > 1 ? "[rank " + std::to_string(g_rank) + "] " : "";
  g_out = std::make_shared<spdlog::logger>("out", std::make_shared<StatusAwareSink>(stdout));
  g_err = std::make_shared<spdlog::logger>("err", std::make_shared<StatusAwareSink>(stderr));
  g_out->set_pattern("[%H:%M:%S] " + prefix + "%v");
  g_err->set_pattern("[%H:%M:%S] " + prefix + "%l: %v");
  g_out->flush_on(spdlog::level::info);
  g_err->flush_on(spdlog::level::warn);
}
}  // namespace

void init(int rank, int world_size) {
  g_rank = rank;
  make_loggers(world_size);
}

int rank() { return g_rank; }

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

void status(const std::string& line) {
  if (g_rank != 0) return;
  std::lock_guard<std::mutex> lock(g_status_mutex);
  erase_status_locked();
  g_status = "\r" + line;
  draw_status_locked();
}

void clear_status() {
  std::lock_guard<std::mutex> lock(g_status_mutex);
  erase_status_locked();
  g_status.clear();
}

spdlog::logger& out() {
  if (!g_out) make_loggers(1);
  return *g_out;
}

spdlog::logger& err() {
  if (!g_err) make_loggers(1);
  return *g_err;
}

}  // namespace odyssey::log
