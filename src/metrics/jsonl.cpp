#include "metrics/jsonl.h"

#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/text.h"

namespace odyssey {

namespace {
std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

void JsonRecord::key(const std::string& k) {
  if (!body_.empty()) body_ += ",";
  body_ += quote_string(k) + ":";
}

JsonRecord& JsonRecord::add(const std::string& k, double v) {
  key(k);
  body_ += number(v);
  return *this;
}

JsonRecord& JsonRecord::add(const std::string& k, int64_t v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}

JsonRecord& JsonRecord::add(const std::string& k, const std::string& v) {
  key(k);
  body_ += quote_string(v);
  return *this;
}

JsonRecord& JsonRecord::add(const std::string& k, const std::vector<double>& values) {
  key(k);
  body_ += "[";
  for (size_t i = 0; i < values.size(); ++i) body_ += (i ? "," : "") + number(values[i]);
  body_ += "]";
  return *this;
}

JsonRecord& JsonRecord::add(const std::string& k, const std::vector<JsonRecord>& objects) {
  key(k);
  body_ += "[";
  for (size_t i = 0; i < objects.size(); ++i) body_ += (i ? "," : "") + objects[i].str();
  body_ += "]";
  return *this;
}

JsonlWriter::JsonlWriter(const std::string& path) : out_(path, std::ios::app) {
  ODY_CHECK(out_.is_open(), "cannot open '" + path + "' for writing", "is the folder writable?");
}

void JsonlWriter::write(const JsonRecord& record) {
  out_ << record.str() << "\n";
  out_.flush();
}

}  // namespace odyssey
