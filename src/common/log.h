// Rank-aware logging: one entry point, so no caller writes `if (rank == 0)`.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace odyssey::log {

// Call once after the rank is known; lines of ranks other than 0 carry "[rank N]".
void init(int rank, int world_size);

int rank();
spdlog::logger& out();  // stdout
spdlog::logger& err();  // stderr

bool stdout_is_terminal();
// Rank 0: (re)draws one status line at the bottom of a terminal (e.g. a progress bar); log lines
// from any thread print above it. clear_status() removes it.
void status(const std::string& line);
void clear_status();

// Progress and results: printed by rank 0 only.
template <typename... Args>
void info(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  if (rank() == 0) out().info(fmt, std::forward<Args>(args)...);
}

// What one rank alone may see (a skipped sample, a slow disk): every rank prints it.
template <typename... Args>
void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  err().warn(fmt, std::forward<Args>(args)...);
}

template <typename... Args>
void error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  err().error(fmt, std::forward<Args>(args)...);
}

}  // namespace odyssey::log
