#include "common/text.h"

#include <cstdio>
#include <stdexcept>

#include "common/error.h"

namespace odyssey {

namespace {
int64_t int_option(const std::string& option, const std::string& value, int64_t min, const char* what) {
  try {
    size_t used = 0;
    int64_t n = std::stoll(value, &used);
    if (used == value.size() && n >= min) return n;
  } catch (const std::exception&) {
  }
  ODY_USAGE_FAIL("option " + option + " needs a " + what + " integer, got '" + value + "'", "");
}
}  // namespace

bool help_requested(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return true;
  return false;
}

std::map<std::string, std::string> option_pairs(int argc, char** argv,
                                                const std::vector<std::string>& names,
                                                const std::string& program) {
  std::map<std::string, std::string> out;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    bool known = false;
    for (const auto& n : names) known = known || a == n;
    ODY_USAGE_CHECK(known && i + 1 < argc,
                    program + ": unknown option or one without its value: '" + a + "'",
                    "options: " + join(names, ' ') + " (see " + program + " --help)");
    out[a] = argv[i + 1];
  }
  return out;
}

int64_t positive_int_option(const std::string& option, const std::string& value) {
  return int_option(option, value, 1, "positive");
}

int64_t nonnegative_int_option(const std::string& option, const std::string& value) {
  return int_option(option, value, 0, "non-negative");
}

std::string escape_quoted(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text) {
    if (c != sep) {
      item += c;
    } else if (!item.empty()) {
      out.push_back(item);
      item.clear();
    }
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

std::string join(const std::vector<std::string>& items, char sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? std::string(1, sep) : "") + items[i];
  return s;
}

}  // namespace odyssey
