#include "metrics/rewind.h"

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "common/error.h"
#include "common/file.h"

namespace odyssey {

namespace {

// The digits at text[pos...] as a step, or nothing when there are none.
std::optional<int64_t> digits_at(const std::string& text, size_t pos) {
  size_t end = pos;
  while (end < text.size() && end - pos < 18 && text[end] >= '0' && text[end] <= '9') ++end;
  if (end == pos) return std::nullopt;
  return std::stoll(text.substr(pos, end - pos));
}

// The step of one record: {"kind":"...","step":N,... or kind,N,...
std::optional<int64_t> step_of(const std::string& line, bool csv) {
  if (csv) {
    const size_t comma = line.find(',');
    return comma == std::string::npos ? std::nullopt : digits_at(line, comma + 1);
  }
  static const std::string key = "\"step\":";
  const size_t at = line.find(key);  // kind comes first and is a plain word
  return at == std::string::npos ? std::nullopt : digits_at(line, at + key.size());
}

}  // namespace

int64_t drop_records_after(const std::string& path, int64_t step) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return 0;
  const auto bytes = read_file_bytes(path, "metrics file");
  const std::string text(bytes.begin(), bytes.end());
  const bool csv = std::filesystem::path(path).extension() == ".csv";
  std::string kept;
  int64_t dropped = 0;
  size_t begin = 0;
  for (bool first = true; begin < text.size(); first = false) {
    const size_t end = text.find('\n', begin);
    if (end == std::string::npos) {  // a record cut by a crash mid-write: never whole again
      ++dropped;
      break;
    }
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    const auto s = csv && first ? std::nullopt : step_of(line, csv);
    if (s && *s > step) {
      ++dropped;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped > 0) write_text_atomically(path, kept);
  return dropped;
}

}  // namespace odyssey
