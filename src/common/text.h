// Text helpers: escaping for double-quoted strings (valid in both JSON and TOML).
#pragma once

#include <string>

namespace odyssey {

// Escapes backslash, double quote and control characters; the result goes between double quotes.
std::string escape_quoted(const std::string& s);

// "text" with escapes.
inline std::string quote_string(const std::string& s) { return "\"" + escape_quoted(s) + "\""; }

}  // namespace odyssey
