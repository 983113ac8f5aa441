#include "data/dataset_index.h"

#include <toml++/toml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <type_traits>
#include <unordered_set>

#include "common/error.h"
#include "common/file.h"
#include "common/toml_where.h"

namespace odyssey {

std::vector<ShardEntry> DatasetIndex::split(const std::string& name) const {
  std::vector<ShardEntry> out;
  for (const auto& s : shards)
    if (s.split == name) out.push_back(s);
  return out;
}

int64_t DatasetIndex::split_size(const std::string& name) const {
  int64_t n = 0;
  for (const auto& s : split(name)) n += s.samples;
  return n;
}

std::string DatasetIndex::split_names() const {
  std::string out;
  for (const auto& s : shards)
    if (out.find("'" + s.split + "'") == std::string::npos)
      out += (out.empty() ? "'" : ", '") + s.split + "'";
  return out;
}

namespace {

constexpr int64_t kIndexFormatVersion = 1;
constexpr const char* kRewrite = "index.toml is written by `shardify`; convert the dataset again";

// "a string", or "strings" for a list's values.
template <typename T>
const char* kind_of(bool plural = false) {
  if constexpr (std::is_same_v<T, std::string>) return plural ? "strings" : "a string";
  else if constexpr (std::is_integral_v<T>) return plural ? "integers" : "an integer";
  else return plural ? "numbers" : "a number";
}

// "<file>:<line>" of a value read from the file (parse_file records it).
std::string where(const toml::node& n, const std::string& file) {
  const std::string w = toml_where(n);
  return w.empty() ? file : w;
}

// `in` says which table lacks the key when it is not the root ("[[shard]] entry 3, line 20").
template <typename T>
T required(const toml::table& t, const std::string& key, const std::string& file,
           const std::string& in = "") {
  const toml::node* n = t.get(key);
  ODY_CHECK(n, "'" + file + "': " + (in.empty() ? "" : in + ": ") + "missing key '" + key + "'", kRewrite);
  auto v = n->value<T>();
  ODY_CHECK(v.has_value(),
            ODY_MSG(where(*n, file) << ": key '" << key << "' must be " << kind_of<T>()
                                    << ", not a value of type " << n->type()),
            kRewrite);
  return *v;
}

template <typename T>
std::vector<T> required_list(const toml::table& t, const std::string& key,
                             const std::string& file) {
  const toml::node* n = t.get(key);
  ODY_CHECK(n, "'" + file + "': missing key '" + key + "' (a list)", kRewrite);
  const toml::array* a = n->as_array();
  ODY_CHECK(a,
            ODY_MSG(where(*n, file) << ": key '" << key << "' must be a list, not a value of type "
                                    << n->type()),
            kRewrite);
  std::vector<T> out;
  for (auto&& el : *a) {
    auto v = el.value<T>();
    ODY_CHECK(v.has_value(),
              ODY_MSG(where(el, file) << ": key '" << key << "' must list " << kind_of<T>(true)
                                      << ", not a value of type " << el.type()),
              kRewrite);
    out.push_back(*v);
  }
  return out;
}

}  // namespace

DatasetIndex read_index(const std::string& dir) {
  std::string file = (std::filesystem::path(dir) / kIndexFile).string();
  ODY_CHECK(std::filesystem::exists(file), "dataset index '" + file + "' does not exist",
            "is data.path a folder written by `shardify`? (./launch/quickstart makes "
            "datasets/fashion-mnist)");
  toml::table t;
  try {
    t = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    ODY_FAIL(ODY_MSG(file << ":" << e.source().begin.line << ": " << e.description()), "");
  }
  DatasetIndex idx;
  ODY_CHECK(t["format"].value_or(std::string()) == "odyssey-dataset",
            "'" + file + "': key 'format' is not \"odyssey-dataset\"", "");
  const int64_t version = t.contains("format_version") ? required<int64_t>(t, "format_version", file) : 1;
  ODY_CHECK(version == kIndexFormatVersion,
            ODY_MSG("'" << file << "': format_version = " << version << ", this build reads "
                        << kIndexFormatVersion),
            "convert the data again with this build's shardify");
  idx.name = required<std::string>(t, "name", file);
  idx.source = t["source"].value_or(std::string());
  idx.num_classes = required<int64_t>(t, "num_classes", file);
  idx.class_names = required_list<std::string>(t, "class_names", file);
  idx.height = required<int64_t>(t, "height", file);
  idx.width = required<int64_t>(t, "width", file);
  idx.channels = required<int64_t>(t, "channels", file);
  idx.mean = required_list<double>(t, "mean", file);
  idx.std = required_list<double>(t, "std", file);
  ODY_CHECK(idx.num_classes > 0 && static_cast<int64_t>(idx.class_names.size()) == idx.num_classes,
            "'" + file + "': class_names must list num_classes names", "");
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"height", idx.height},
                               {"width", idx.width}, {"channels", idx.channels}})
    ODY_CHECK(v > 0, ODY_MSG("'" << file << "': key '" << key << "' is " << v << ", not positive"), "");
  ODY_CHECK(static_cast<int64_t>(idx.mean.size()) == idx.channels &&
                static_cast<int64_t>(idx.std.size()) == idx.channels,
            "'" + file + "': mean and std must have one value per channel", "");
  for (double m : idx.mean)
    ODY_CHECK(std::isfinite(m), ODY_MSG("'" << file << "': key 'mean' holds " << m), "");
  for (double s : idx.std)
    ODY_CHECK(std::isfinite(s) && s > 0,
              ODY_MSG("'" << file << "': key 'std' holds " << s << ", not a positive number"), "");
  const toml::array* shards = t["shard"].as_array();
  ODY_CHECK(shards && !shards->empty(), "'" + file + "': no [[shard]] entries", "");
  std::unordered_set<std::string> files;
  int64_t entry = 0;
  for (auto&& el : *shards) {
    const toml::table* s = el.as_table();
    ODY_CHECK(s, "'" + file + "': [[shard]] entries must be tables", "");
    const std::string in = ODY_MSG("[[shard]] entry " << ++entry << ", line " << s->source().begin.line);
    ShardEntry e;
    e.split = required<std::string>(*s, "split", file, in);
    e.file = required<std::string>(*s, "file", file, in);
    e.samples = required<int64_t>(*s, "samples", file, in);
    e.crc32 = (*s)["crc32"].value_or(std::string());
    ODY_CHECK(e.samples >= 0, ODY_MSG("'" << file << "': shard '" << e.file << "' has samples = "
                                          << e.samples),
              "");
    ODY_CHECK(files.insert(e.file).second,
              "'" + file + "': shard '" + e.file + "' is listed twice (its samples would count twice)",
              "");
    idx.shards.push_back(e);
  }
  return idx;
}

void write_index(const std::string& dir, const DatasetIndex& idx) {
  toml::table t;
  t.insert("format", "odyssey-dataset");
  t.insert("format_version", kIndexFormatVersion);
  t.insert("name", idx.name);
  t.insert("source", idx.source);
  t.insert("num_classes", idx.num_classes);
  toml::array names;
  for (const auto& n : idx.class_names) names.push_back(n);
  t.insert("class_names", names);
  t.insert("height", idx.height);
  t.insert("width", idx.width);
  t.insert("channels", idx.channels);
  toml::array mean, stdv;
  for (double m : idx.mean) mean.push_back(m);
  for (double s : idx.std) stdv.push_back(s);
  t.insert("mean", mean);
  t.insert("std", stdv);
  toml::array shards;
  for (const auto& s : idx.shards)
    shards.push_back(toml::table{
        {"split", s.split}, {"file", s.file}, {"samples", s.samples}, {"crc32", s.crc32}});
  t.insert("shard", shards);
  std::string path = (std::filesystem::path(dir) / kIndexFile).string();
  std::ostringstream text;
  text << "# Written by shardify: the shards of this dataset and their statistics.\n" << t << "\n";
  write_text_atomically(path, text.str());
}

}  // namespace odyssey
