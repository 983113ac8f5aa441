#include "metrics/csv.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/file.h"
#include "common/text.h"

namespace odyssey {

namespace {
// Quotes a field that holds a comma, a quote or a line break (RFC 4180).
std::string field(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::vector<std::string> parse_line(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}
}  // namespace

std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

CsvWriter::CsvWriter(const std::string& path, std::vector<std::string> columns)
    : columns_(std::move(columns)) {
  std::error_code ec;
  const bool fresh = !std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0;
  if (!fresh) {
    // A file another build wrote with other columns (a run resumed by a newer build): its rows
    // are rewritten under this header first, each value under its own column's name, so appended
    // rows do not land under the old header's columns.
    std::ifstream in(path);
    std::string header;
    std::getline(in, header);
    if (header != join(columns_, ',')) {
      std::string text = join(columns_, ',') + "\n";
      for (const auto& row : read_csv(path)) text += line_of(row) + "\n";
      write_text_atomically(path, text);
    }
  }
  out_.open(path, std::ios::app);
  ODY_CHECK(out_.good(), "cannot open '" + path + "' for writing", "is the run folder writable?");
  if (fresh) {
    out_ << join(columns_, ',') << "\n";
    out_.flush();
  }
}

std::string CsvWriter::line_of(const std::map<std::string, std::string>& row) const {
  std::string line;
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto it = row.find(columns_[i]);
    line += (i ? "," : "") + (it == row.end() ? std::string() : field(it->second));
  }
  return line;
}

void CsvWriter::write(const std::map<std::string, std::string>& row) {
  for (const auto& [k, v] : row)
    ODY_CHECK(std::find(columns_.begin(), columns_.end(), k) != columns_.end(),
              "metrics.csv: no column '" + k + "'", "");
  out_ << line_of(row) << "\n";
  out_.flush();
}

std::vector<std::map<std::string, std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  ODY_CHECK(in.good(), "cannot read '" + path + "'", "is it a run folder written by trainer?");
  std::string line;
  std::vector<std::map<std::string, std::string>> rows;
  if (!std::getline(in, line)) return rows;
  const auto header = parse_line(line);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto values = parse_line(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < values.size(); ++i)
      if (!values[i].empty()) row[header[i]] = values[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace odyssey
