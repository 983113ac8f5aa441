#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace odyssey::log {

namespace {
int g_rank = 0;
std::shared_ptr<spdlog::logger> g_out;
std::shared_ptr<spdlog::logger> g_err;

void make_loggers(int world_size) {
  std::string prefix = world_size > 1 ? "[rank " + std::to_string(g_rank) + "] " : "";
  g_out = std::make_shared<spdlog::logger>("out", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  g_err = std::make_shared<spdlog::logger>("err", std::make_shared<spdlog::sinks::stderr_sink_mt>());
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

spdlog::logger& out() {
  if (!g_out) make_loggers(1);
  return *g_out;
}

spdlog::logger& err() {
  if (!g_err) make_loggers(1);
  return *g_err;
}

}  // namespace odyssey::log
