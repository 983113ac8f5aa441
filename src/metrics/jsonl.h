// JsonlWriter: one JSON object per line (metrics.jsonl), flushed per record.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace odyssey {

// A flat JSON object built key by key, in insertion order.
class JsonRecord {
 public:
  JsonRecord& add(const std::string& key, double value);
  JsonRecord& add(const std::string& key, int64_t value);
  JsonRecord& add(const std::string& key, const std::string& value);
  JsonRecord& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonRecord& add(const std::string& key, const std::vector<double>& values);
  JsonRecord& add(const std::string& key, const std::vector<JsonRecord>& objects);  // an array of them
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void key(const std::string& k);
  std::string body_;
};

class JsonlWriter {
 public:
  JsonlWriter() = default;
  // Appends to path (a resumed run continues the same file).
  explicit JsonlWriter(const std::string& path);
  bool is_open() const { return out_.is_open(); }
  void write(const JsonRecord& record);

 private:
  std::ofstream out_;
};

}  // namespace odyssey
