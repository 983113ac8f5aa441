// Where a TOML value came from, for error messages that name the file and line.
#pragma once

#include <toml++/toml.h>

#include <string>

namespace odyssey {

// "<file>:<line>" of a value parsed from a file; empty for one without a source file (built in
// code, or parsed from a command-line override).
inline std::string toml_where(const toml::node& n) {
  const auto& src = n.source();
  if (!src.path || src.path->empty()) return {};
  return *src.path + ":" + std::to_string(src.begin.line);
}

}  // namespace odyssey
