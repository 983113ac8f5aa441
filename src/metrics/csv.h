// CsvWriter: metrics.csv, one row per record with a fixed set of columns (empty where a record
// has no value), for spreadsheets and plotting tools; the report reads it back.
#pragma once

#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace odyssey {

class CsvWriter {
 public:
  CsvWriter() = default;
  // Appends to path; writes the header when the file is new or empty, and rewrites a file whose
  // header differs (another build's columns) under this one first, values kept by column name
  // (a column this one lacks is dropped).
  CsvWriter(const std::string& path, std::vector<std::string> columns);
  bool is_open() const { return out_.is_open(); }
  // Values by column name; names not among the columns are an error (a programming mistake).
  void write(const std::map<std::string, std::string>& row);

 private:
  std::string line_of(const std::map<std::string, std::string>& row) const;
  std::vector<std::string> columns_;
  std::ofstream out_;
};

// Reads a CSV written by CsvWriter: the header and the rows as column -> text.
std::vector<std::map<std::string, std::string>> read_csv(const std::string& path);

// A number as CSV text (%.9g: float32 values round-trip, doubles to 9 digits; empty for NaN/inf).
std::string csv_number(double v);

}  // namespace odyssey
