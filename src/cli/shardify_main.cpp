// shardify: converts datasets into Odyssey's HDF5 shards and verifies converted folders.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "common/exit_codes.h"
#include "common/error.h"
#include "common/h5.h"
#include "common/text.h"
#include "data/cifar.h"
#include "data/convert.h"
#include "data/image_folder.h"
#include "data/idx.h"

using namespace odyssey;
namespace fs = std::filesystem;

namespace {

const char* kHelp = R"(shardify: convert datasets into Odyssey HDF5 shards

Usage:
  shardify idx SRC_DIR OUT_DIR [--name fashion-mnist|mnist] [--train-shards N] [--test-shards N]
      MNIST-style IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
      t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) -> OUT_DIR/index.toml and
      train-*.h5 (default 4 shards) and test-*.h5 (default 1 shard).
      Example: shardify idx /usr/share/datasets/fashion-mnist datasets/fashion-mnist
  shardify cifar SRC_DIR OUT_DIR [--coarse] [--train-shards N] [--test-shards N]
      CIFAR-10 (data_batch_1.bin .. data_batch_5.bin, test_batch.bin, batches.meta.txt) or
      CIFAR-100 (train.bin, test.bin, fine_label_names.txt; --coarse: the 20 superclasses)
      binary files -> 32x32x3 shards (default 5 train shards, 1 test shard).
  shardify folder SRC_DIR OUT_DIR [--size S] [--resize crop|stretch] [--shard-size N]
                  [--threads T] [--split NAME] [--shuffle-seed N] [--skip-bad] [--name NAME]
      An image-folder tree, SRC_DIR/<class>/<image> (one split, named by --split, default
      train) or SRC_DIR/<split>/<class>/<image> (ImageNet style: train/, val/), JPEG and PNG
      files -> S x S x 3 shards (default S 256; crop: shorter side to S, centre square;
      stretch: both sides to S), N images per shard (default 5000), decoded on T threads
      (default all cores). Classes: the sorted class folder names. --shuffle-seed mixes the
      classes across shards (default: files in class order). --skip-bad skips and counts
      undecodable files (default: the first one stops with its name).
  shardify verify DIR
      Re-reads every shard of DIR and checks sample counts, shapes, labels and CRC-32 against
      DIR/index.toml. Exit 0 when all match, 2 otherwise.
)";

const std::map<std::string, std::vector<std::string>> kClassNames = {
    {"fashion-mnist",
     {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
      "Ankle boot"}},
    {"mnist", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
};

// SRC/stem.gz when it exists, else SRC/stem (reported as .gz when neither does).
std::string idx_file(const std::string& src, const std::string& stem) {
  fs::path plain = fs::path(src) / stem;
  return fs::exists(plain) && !fs::exists(plain.string() + ".gz") ? plain.string()
                                                                  : plain.string() + ".gz";
}

void print_summary(const DatasetIndex& idx, const std::string& out) {
  std::printf("wrote %zu shards to %s:", idx.shards.size(), out.c_str());
  std::vector<std::string> seen;
  for (const auto& e : idx.shards)
    if (std::find(seen.begin(), seen.end(), e.split) == seen.end()) {
      seen.push_back(e.split);
      std::printf(" %lld %s", (long long)idx.split_size(e.split), e.split.c_str());
    }
  std::printf(" images %lldx%lldx%lld, %lld classes, mean", (long long)idx.height,
              (long long)idx.width, (long long)idx.channels, (long long)idx.num_classes);
  for (double m : idx.mean) std::printf(" %.4f", m);
  std::printf(" std");
  for (double s : idx.std) std::printf(" %.4f", s);
  std::printf("\n");
}

int cmd_idx(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  std::string name = "fashion-mnist";
  int64_t train_shards = 4, test_shards = 1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_value = i + 1 < args.size();
    if (a == "--name" && has_value) name = args[++i];
    else if (a == "--train-shards" && has_value) train_shards = positive_int_option(a, args[++i]);
    else if (a == "--test-shards" && has_value) test_shards = positive_int_option(a, args[++i]);
    else if (a.rfind("--", 0) == 0) ODY_USAGE_FAIL("unknown or incomplete option '" + a + "'", "see shardify --help");
    else pos.push_back(a);
  }
  ODY_USAGE_CHECK(pos.size() == 2, "usage: shardify idx SRC_DIR OUT_DIR [options]", "see shardify --help");
  auto classes = kClassNames.find(name);
  ODY_USAGE_CHECK(classes != kClassNames.end(), "--name must be fashion-mnist or mnist, got '" + name + "'",
                  "see shardify --help");
  const std::string& src = pos[0];
  const std::string& out = pos[1];
  std::vector<SplitData> splits;
  for (auto [split, prefix, shards] : {std::tuple{"train", "train", train_shards},
                                       std::tuple{"test", "t10k", test_shards}}) {
    std::string images_path = idx_file(src, std::string(prefix) + "-images-idx3-ubyte");
    std::string labels_path = idx_file(src, std::string(prefix) + "-labels-idx1-ubyte");
    std::printf("reading %s and %s\n", images_path.c_str(), labels_path.c_str());
    SplitData s{split, read_idx_images(images_path), read_idx_labels(labels_path), shards};
    ODY_CHECK(s.images.size(0) == s.labels.size(0),
              ODY_MSG("'" << images_path << "' holds " << s.images.size(0) << " images but '"
                          << labels_path << "' holds " << s.labels.size(0) << " labels"),
              "the two files must belong together");
    int64_t max_label = s.labels.numel() ? s.labels.max().item<int64_t>() : 0;
    ODY_CHECK(max_label < static_cast<int64_t>(classes->second.size()),
              ODY_MSG("'" << labels_path << "' holds label " << max_label << ", beyond the "
                          << classes->second.size() << " classes of " << name),
              "");
    splits.push_back(std::move(s));
  }
  print_summary(write_dataset(out, name, "IDX files in " + src, classes->second, splits), out);
  return kExitOk;
}

int cmd_cifar(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  int64_t train_shards = 5, test_shards = 1;
  bool coarse = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_value = i + 1 < args.size();
    if (a == "--coarse") coarse = true;
    else if (a == "--train-shards" && has_value) train_shards = positive_int_option(a, args[++i]);
    else if (a == "--test-shards" && has_value) test_shards = positive_int_option(a, args[++i]);
    else if (a.rfind("--", 0) == 0) ODY_USAGE_FAIL("unknown or incomplete option '" + a + "'", "see shardify --help");
    else pos.push_back(a);
  }
  ODY_USAGE_CHECK(pos.size() == 2, "usage: shardify cifar SRC_DIR OUT_DIR [options]", "see shardify --help");
  CifarData data = read_cifar(pos[0], coarse);
  data.splits[0].shards = train_shards;
  data.splits[1].shards = test_shards;
  print_summary(write_dataset(pos[1], data.name, data.name + " binary files in " + pos[0],
                              data.class_names, data.splits),
                pos[1]);
  return kExitOk;
}

int cmd_folder(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  FolderOptions opt;
  std::string split = "train", name;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_value = i + 1 < args.size();
    if (a == "--size" && has_value) opt.size = positive_int_option(a, args[++i]);
    else if (a == "--resize" && has_value) opt.resize = as_usage([&] { return parse_resize_mode(args[++i]); });
    else if (a == "--shard-size" && has_value) opt.shard_samples = positive_int_option(a, args[++i]);
    else if (a == "--threads" && has_value) opt.threads = static_cast<int>(positive_int_option(a, args[++i]));
    else if (a == "--split" && has_value) split = args[++i];
    else if (a == "--shuffle-seed" && has_value) opt.shuffle_seed = nonnegative_int_option(a, args[++i]);
    else if (a == "--name" && has_value) name = args[++i];
    else if (a == "--skip-bad") opt.skip_bad = true;
    else if (a.rfind("--", 0) == 0) ODY_USAGE_FAIL("unknown or incomplete option '" + a + "'", "see shardify --help");
    else pos.push_back(a);
  }
  ODY_USAGE_CHECK(pos.size() == 2, "usage: shardify folder SRC_DIR OUT_DIR [options]", "see shardify --help");
  if (name.empty()) {  // the source folder's name ("SRC/" too: its filename() is empty)
    fs::path src = fs::path(pos[0]).lexically_normal();
    name = (src.has_filename() ? src : src.parent_path()).filename().string();
  }
  FolderTree tree = scan_image_folder(pos[0], split);
  if (!tree.ignored.empty()) {  // a class's .webp images would be lost without a word
    int64_t n = 0;
    std::string kinds;
    for (const auto& [ext, count] : tree.ignored)
      n += count, kinds += (kinds.empty() ? "" : ", ") + ext + " " + std::to_string(count);
    std::fprintf(stderr, "warning: %lld files in class folders are not .jpg, .jpeg or .png and are left out "
                 "(%s)\n", static_cast<long long>(n), kinds.c_str());
  }
  for (const auto& s : tree.splits)
    std::printf("%s: %zu images in %zu classes\n", s.name.c_str(), s.files.size(),
                tree.class_names.size());
  FolderResult r = convert_image_folder(pos[0], pos[1], name, tree, opt);
  if (r.skipped > 0) {
    std::fprintf(stderr, "warning: skipped %lld undecodable files, e.g.:\n", (long long)r.skipped);
    for (const auto& m : r.skipped_files) std::fprintf(stderr, "  %s\n", m.c_str());
  }
  print_summary(r.index, pos[1]);
  return kExitOk;
}

int cmd_verify(const std::vector<std::string>& args) {
  ODY_USAGE_CHECK(args.size() == 1, "usage: shardify verify DIR", "");
  auto problems = verify_dataset(args[0]);
  for (const auto& p : problems) std::fprintf(stderr, "error: %s\n", p.c_str());
  if (!problems.empty()) return kExitUserError;
  std::printf("%s: every shard matches index.toml\n", args[0].c_str());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kHelp, args.empty() ? stderr : stdout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  h5::quiet_errors();
  try {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "idx") return cmd_idx(rest);
    if (args[0] == "cifar") return cmd_cifar(rest);
    if (args[0] == "folder") return cmd_folder(rest);
    if (args[0] == "verify") return cmd_verify(rest);
    std::fprintf(stderr, "error: unknown command '%s'\n%s", args[0].c_str(), kHelp);
    return kExitUsage;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitUsage;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitUserError;
  } catch (const std::filesystem::filesystem_error& e) {  // the OS refused a path (permissions, I/O)
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitUserError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return kExitInternal;
  }
}
