#include "data/image_folder.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.h"
#include "data/convert.h"
#include "data/epoch_plan.h"

namespace odyssey {

namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

bool is_image_name(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<fs::path> sorted_entries(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// class folder name -> its image files (sorted), for one split folder; other files are counted
// in *ignored by extension.
std::map<std::string, std::vector<std::string>> scan_classes(const fs::path& dir,
                                                             std::map<std::string, int64_t>* ignored) {
  std::map<std::string, std::vector<std::string>> classes;
  for (const auto& c : sorted_entries(dir)) {
    if (!fs::is_directory(c)) continue;
    auto& files = classes[c.filename().string()];
    for (const auto& f : sorted_entries(c)) {
      if (!fs::is_regular_file(f)) continue;
      if (is_image_name(f)) files.push_back(f.string());
      else ++(*ignored)[f.has_extension() ? lower_extension(f) : "(none)"];
    }
    ODY_CHECK(!files.empty(), "class folder '" + c.string() + "' holds no .jpg, .jpeg or .png file",
              "remove the folder or add its images");
  }
  ODY_CHECK(!classes.empty(), "image folder '" + dir.string() + "' has no class subfolders",
            "expected SRC/<class>/<image> or SRC/<split>/<class>/<image>");
  return classes;
}

}  // namespace

FolderTree scan_image_folder(const std::string& src, const std::string& single_split) {
  fs::path root(src);
  ODY_CHECK(fs::is_directory(root), "image folder '" + src + "' does not exist", "");
  // Split folders: every subfolder holds only folders (and at least one).
  bool split_layout = true;
  int subfolders = 0;
  for (const auto& sub : sorted_entries(root)) {
    if (!fs::is_directory(sub)) continue;
    ++subfolders;
    bool has_dirs = false;
    for (const auto& e : fs::directory_iterator(sub)) {
      if (fs::is_directory(e.path())) has_dirs = true;
      else if (is_image_name(e.path())) split_layout = false;
    }
    if (!has_dirs) split_layout = false;
  }
  ODY_CHECK(subfolders > 0, "image folder '" + src + "' has no subfolders",
            "expected SRC/<class>/<image> or SRC/<split>/<class>/<image>");
  FolderTree tree;
  std::vector<std::pair<std::string, std::map<std::string, std::vector<std::string>>>> found;
  if (split_layout) {
    for (const auto& sub : sorted_entries(root))
      if (fs::is_directory(sub)) found.emplace_back(sub.filename().string(), scan_classes(sub, &tree.ignored));
  } else {
    found.emplace_back(single_split, scan_classes(root, &tree.ignored));
  }
  std::set<std::string> names;
  for (const auto& [split, classes] : found)
    for (const auto& [c, files] : classes) names.insert(c);
  tree.class_names.assign(names.begin(), names.end());
  for (auto& [split, classes] : found) {
    FolderSplit s{split, {}, {}};
    for (const auto& [c, files] : classes) {
      const int64_t label = std::lower_bound(tree.class_names.begin(), tree.class_names.end(), c) -
                            tree.class_names.begin();
      for (const auto& f : files) s.files.push_back(f), s.labels.push_back(label);
    }
    tree.splits.push_back(std::move(s));
  }
  std::stable_partition(tree.splits.begin(), tree.splits.end(),
                        [](const FolderSplit& s) { return s.name == "train"; });
  return tree;
}

namespace {

// Progress on stderr: a redrawn line on a terminal, a line every 10 % otherwise.
class Progress {
 public:
  Progress(bool on, std::string what, int64_t total)
      : on_(on), tty_(isatty(2)), what_(std::move(what)), total_(total),
        start_(std::chrono::steady_clock::now()) {}
  void update(int64_t done) {
    if (!on_ || total_ == 0) return;
    const int64_t decile = done * 10 / total_;
    if (!tty_ && decile == last_decile_ && done != total_) return;
    last_decile_ = decile;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int width = 30;
    const int filled = static_cast<int>(width * done / total_);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "%s%s [%s] %lld/%lld images, %.0f img/s%s", tty_ ? "\r" : "",
                 what_.c_str(), bar.c_str(), (long long)done, (long long)total_,
                 s > 0 ? done / s : 0.0, tty_ && done < total_ ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  bool on_, tty_;
  std::string what_;
  int64_t total_, last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

FolderResult convert_image_folder(const std::string& src, const std::string& out_dir,
                                  const std::string& name, const FolderTree& tree,
                                  const FolderOptions& opt) {
  ODY_CHECK(opt.size > 0 && opt.shard_samples > 0, "--size and --shard-size must be positive", "");
  const int threads = opt.threads > 0 ? opt.threads
                                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  at::set_num_threads(1);  // parallel over images, not inside each resize
  DatasetWriter writer(out_dir, name, "image folder " + src, tree.class_names,
                       tree.splits.front().name);
  FolderResult result;
  std::mutex mu;
  for (const auto& split : tree.splits) {
    // Optionally one fixed shuffle, so every shard mixes the classes.
    std::vector<int64_t> order(split.files.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    if (opt.shuffle_seed != 0)
      order = EpochPlan::permutation(static_cast<int64_t>(order.size()), opt.shuffle_seed, 0);
    const int64_t n = static_cast<int64_t>(order.size());
    const int64_t shards = std::max<int64_t>(1, (n + opt.shard_samples - 1) / opt.shard_samples);
    Progress progress(opt.progress, split.name, n);
    std::atomic<int64_t> done{0};
    for (int64_t k = 0; k < shards; ++k) {
      const int64_t begin = n * k / shards, end = n * (k + 1) / shards, count = end - begin;
      auto images = torch::empty({count, opt.size, opt.size, 3}, torch::kByte);
      std::vector<char> ok(count, 0);
      std::atomic<int64_t> next{0};
      std::exception_ptr error;
      auto work = [&] {
        for (int64_t i; (i = next.fetch_add(1)) < count;) {
          const std::string& file = split.files[order[begin + i]];
          try {
            images[i].copy_(resize_square(decode_image(file), opt.size, opt.resize));
            ok[i] = 1;
          } catch (const Error& e) {
            std::lock_guard<std::mutex> lock(mu);
            if (!opt.skip_bad) {
              if (!error) error = std::current_exception();
              next = count;  // stop the other threads early
              return;
            }
            ++result.skipped;
            if (result.skipped_files.size() < 5) result.skipped_files.push_back(e.message());
          } catch (...) {
            std::lock_guard<std::mutex> lock(mu);
            if (!error) error = std::current_exception();
            next = count;
            return;
          }
          const int64_t d = ++done;
          if (d % 64 == 0 && d < n) {  // the last line comes once, after the split
            std::lock_guard<std::mutex> lock(mu);
            progress.update(d);
          }
        }
      };
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back(work);
      for (auto& t : pool) t.join();
      if (error) std::rethrow_exception(error);
      // Keep the decoded images, in order.
      std::vector<int64_t> keep, labels;
      for (int64_t i = 0; i < count; ++i)
        if (ok[i]) keep.push_back(i), labels.push_back(split.labels[order[begin + i]]);
      if (keep.empty()) continue;
      auto kept = static_cast<int64_t>(keep.size()) == count
                      ? images  // nothing skipped: no copy of the shard
                      : images.index_select(0, torch::tensor(keep, torch::kLong));
      writer.add_shard(split.name, k, shards, kept, torch::tensor(labels, torch::kLong));
    }
    progress.update(n);
  }
  result.index = writer.finish();
  return result;
}

}  // namespace odyssey
