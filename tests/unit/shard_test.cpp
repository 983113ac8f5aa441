// Shards and splits: write/read round trips, batched gathers, and errors naming file and dataset.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/h5.h"
#include "data/convert.h"
#include "data/shard.h"
#include "data/split_reader.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::error_of;
using odyssey::testing::TempDir;

namespace {

SplitData make_split(const std::string& name, int64_t n, int64_t shards, int64_t seed) {
  torch::manual_seed(seed);
  return {name, torch::randint(0, 256, {n, 6, 5, 3}, torch::kByte),
          torch::randint(0, 4, {n}, torch::kLong), shards};
}

const std::vector<std::string> kClasses = {"a", "b", "c", "d"};

}  // namespace

TEST(Shard, WriteReadRoundTrip) {
  TempDir dir;
  auto s = make_split("train", 37, 1, 1);
  write_shard(dir / "s.h5", s.images, s.labels, {4, kClasses, "train", "unit test"});
  ShardReader r(dir / "s.h5");
  EXPECT_EQ(r.size(), 37);
  EXPECT_EQ(r.height(), 6);
  EXPECT_EQ(r.width(), 5);
  EXPECT_EQ(r.channels(), 3);
  EXPECT_TRUE(torch::equal(r.labels(), s.labels));
  auto part = torch::empty({10, 6, 5, 3}, torch::kByte);
  r.read(20, 10, part.data_ptr<uint8_t>());
  EXPECT_TRUE(torch::equal(part, s.images.narrow(0, 20, 10)));
  EXPECT_NE(error_of([&] { r.read(30, 10, part.data_ptr<uint8_t>()); }).find("beyond the 37"),
            std::string::npos);
}

TEST(Shard, LongSplitNamesKeepTheirOwnShardFiles) {
  TempDir dir;
  const std::string stem(100, 's');  // shard names were cut at 96 characters: both splits wrote one file
  auto a = make_split(stem + "_a", 7, 1, 2);
  auto b = make_split(stem + "_b", 5, 1, 3);
  write_dataset(dir.str(), "toy", "unit test", kClasses, {a, b});
  DatasetIndex back = read_index(dir.str());
  ASSERT_EQ(back.split(stem + "_a").size(), 1u);
  EXPECT_NE(back.split(stem + "_a")[0].file, back.split(stem + "_b")[0].file);
  EXPECT_EQ(SplitReader(dir.str(), back, stem + "_a").size(), 7);
  EXPECT_EQ(SplitReader(dir.str(), back, stem + "_b").size(), 5);
  EXPECT_TRUE(verify_dataset(dir.str()).empty());
}

TEST(Shard, DatasetSplitGathersAcrossShardsInRequestedOrder) {
  TempDir dir;
  auto train = make_split("train", 103, 4, 2);
  auto test = make_split("test", 11, 1, 3);
  DatasetIndex idx = write_dataset(dir.str(), "toy", "unit test", kClasses, {train, test});
  EXPECT_EQ(idx.split_size("train"), 103);
  EXPECT_EQ(idx.split("train").size(), 4u);
  // mean/std of the train split, computed independently.
  auto px = train.images.reshape({-1, 3}).to(torch::kDouble) / 255.0;
  EXPECT_NEAR(idx.mean[2], px.select(1, 2).mean().item<double>(), 1e-12);
  EXPECT_NEAR(idx.std[0], px.select(1, 0).std(false).item<double>(), 1e-12);

  DatasetIndex back = read_index(dir.str());
  EXPECT_EQ(back.class_names, kClasses);
  SplitReader reader(dir.str(), back, "train");
  ASSERT_EQ(reader.size(), 103);
  std::vector<int64_t> indices = {102, 0, 25, 26, 27, 51, 50, 77, 26, 1};
  auto got = reader.gather_images(indices);
  auto want = train.images.index_select(0, torch::tensor(indices));
  EXPECT_TRUE(torch::equal(got, want));
  EXPECT_TRUE(torch::equal(reader.gather_labels(indices), train.labels.index_select(0, torch::tensor(indices))));
  EXPECT_TRUE(verify_dataset(dir.str()).empty());
  EXPECT_FALSE(reader.cached());

  // Held in memory: the same samples, from one read per shard.
  SplitReader cached(dir.str(), back, "train", 0, /*cache_bytes=*/103 * 6 * 5 * 3);
  EXPECT_TRUE(cached.cached());
  EXPECT_TRUE(torch::equal(cached.gather_images(indices), want));
  SplitReader cached_limited(dir.str(), back, "train", 40, 1 << 20);
  EXPECT_TRUE(torch::equal(cached_limited.gather_images({39, 0, 26}),
                           train.images.index_select(0, torch::tensor({39, 0, 26}))));

  SplitReader limited(dir.str(), back, "train", 30);
  EXPECT_EQ(limited.size(), 30);
  EXPECT_EQ(limited.labels().size(0), 30);
}

TEST(Shard, MissingFileAndNotAShard) {
  TempDir dir;
  std::string e = error_of([&] { ShardReader r(dir / "nope.h5"); });
  EXPECT_NE(e.find("nope.h5"), std::string::npos) << e;
  std::ofstream(dir / "text.h5") << "not hdf5";
  e = error_of([&] { ShardReader r(dir / "text.h5"); });
  EXPECT_NE(e.find("text.h5"), std::string::npos) << e;
  // An HDF5 file without the shard attributes.
  { h5::Handle f = h5::create_file(dir / "plain.h5"); }
  e = error_of([&] { ShardReader r(dir / "plain.h5"); });
  EXPECT_NE(e.find("plain.h5' lacks the attribute 'format'"), std::string::npos) << e;
}

TEST(Shard, LabelBeyondNumClassesNamesDataset) {
  TempDir dir;
  auto s = make_split("train", 8, 1, 4);
  s.labels[3] = 9;
  write_shard(dir / "bad.h5", s.images, s.labels, {4, kClasses, "train", "unit test"});
  std::string e = error_of([&] { ShardReader r(dir / "bad.h5"); });
  EXPECT_NE(e.find("dataset /labels in '" + (dir / "bad.h5") + "' holds label 9"),
            std::string::npos)
      << e;
}

TEST(Shard, TruncatedShardIsAnErrorNamingTheFile) {
  TempDir dir;
  auto train = make_split("train", 3000, 1, 5);
  write_dataset(dir.str(), "toy", "unit test", kClasses, {train});
  std::string shard = dir / "train-00000-of-00001.h5";
  auto size = std::filesystem::file_size(shard);
  std::filesystem::resize_file(shard, size / 2);
  std::string e = error_of([&] {
    SplitReader r(dir.str(), read_index(dir.str()), "train");
    r.gather_images({0, 2999});
  });
  EXPECT_NE(e.find(shard), std::string::npos) << e;
  auto problems = verify_dataset(dir.str());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find(shard), std::string::npos) << problems[0];
}

TEST(Shard, FlippedByteFailsVerificationAndIndexMismatchIsCaught) {
  TempDir dir;
  auto train = make_split("train", 50, 2, 6);
  write_dataset(dir.str(), "toy", "unit test", kClasses, {train});
  // Change one image byte through HDF5 (the file stays valid): only the checksum can tell.
  std::string shard = dir / "train-00001-of-00002.h5";
  {
    auto other = make_split("train", 25, 1, 7);
    write_shard(shard, other.images, train.labels.narrow(0, 25, 25), {4, kClasses, "train", "x"});
  }
  auto problems = verify_dataset(dir.str());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("CRC-32"), std::string::npos) << problems[0];
  // A shard whose sample count differs from the index.
  auto shorter = make_split("train", 20, 1, 8);
  write_shard(shard, shorter.images, shorter.labels, {4, kClasses, "train", "x"});
  std::string e = error_of([&] { SplitReader r(dir.str(), read_index(dir.str()), "train"); });
  EXPECT_NE(e.find("holds 20 samples in /images, index.toml says 25"), std::string::npos) << e;
}

TEST(Shard, IndexErrorsNameFileAndKey) {
  TempDir dir;
  std::string e = error_of([&] { read_index(dir.str()); });
  EXPECT_NE(e.find("index.toml' does not exist"), std::string::npos) << e;
  std::ofstream(dir / "index.toml") << "format = \"odyssey-dataset\"\nname = \"x\"\n";
  e = error_of([&] { read_index(dir.str()); });
  EXPECT_NE(e.find("missing key 'num_classes'"), std::string::npos) << e;
  // A mistyped value: the file's line, the key, the type wanted and the one found.
  std::ofstream(dir / "index.toml") << "format = \"odyssey-dataset\"\nname = \"x\"\n"
                                       "num_classes = \"ten\"\n";
  e = error_of([&] { read_index(dir.str()); });
  EXPECT_NE(e.find("index.toml:3: key 'num_classes' must be an integer, not a value of type string"),
            std::string::npos) << e;
  std::ofstream(dir / "index.toml") << "format = \"odyssey-dataset\"\nname = \"x\"\n"
                                       "num_classes = 2\nclass_names = [\"a\",\n  2]\n";
  e = error_of([&] { read_index(dir.str()); });
  EXPECT_NE(e.find("index.toml:5: key 'class_names' must list strings, not a value of type "
                   "integer"), std::string::npos) << e;
  const std::string header = "format = \"odyssey-dataset\"\nname = \"x\"\nnum_classes = 1\nclass_names = [\"a\"]\n"
                             "height = 2\nwidth = 2\nchannels = 1\nmean = [0.5]\nstd = [0.2]\n";
  // A [[shard]] entry without a key: which entry, and its line.
  std::ofstream(dir / "index.toml") << header << "[[shard]]\nfile = \"a.h5\"\nsplit = \"train\"\nsamples = 3\n"
                                    << "[[shard]]\nfile = \"b.h5\"\nsplit = \"train\"\n";
  e = error_of([&] { read_index(dir.str()); });
  EXPECT_NE(e.find("index.toml': [[shard]] entry 2, line 14: missing key 'samples'"), std::string::npos) << e;
  // An index of another format version (it was read as if it were this one).
  std::ofstream(dir / "index.toml") << "format_version = 2\n" << header
                                    << "[[shard]]\nfile = \"a.h5\"\nsplit = \"train\"\nsamples = 3\n";
  e = error_of([&] { read_index(dir.str()); });
  EXPECT_NE(e.find("index.toml': format_version = 2, this build reads 1"), std::string::npos) << e;
}

TEST(Shard, IndexValuesThatCannotDescribeADatasetAreErrors) {
  TempDir dir;
  write_dataset(dir.str(), "toy", "unit test", kClasses, {make_split("train", 20, 2, 9)});
  std::string good;
  {
    std::ifstream in(dir / "index.toml");
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  // index.toml with the line of `key` replaced by `line`.
  auto with_line = [&](const std::string& key, const std::string& line) {
    const size_t at = good.find("\n" + key + " = ");
    EXPECT_NE(at, std::string::npos) << key;
    const size_t end = good.find('\n', at + 1);
    std::ofstream(dir / "index.toml") << good.substr(0, at + 1) + line + good.substr(end);
    return error_of([&] { read_index(dir.str()); });
  };
  EXPECT_NE(with_line("height", "height = 0").find("key 'height' is 0, not positive"), std::string::npos);
  EXPECT_NE(with_line("channels", "channels = -3").find("key 'channels' is -3"), std::string::npos);
  EXPECT_NE(with_line("mean", "mean = [ 0.5, nan, 0.5 ]").find("key 'mean' holds nan"), std::string::npos);
  EXPECT_NE(with_line("std", "std = [ 0.5, inf, 0.5 ]").find("key 'std' holds inf, not a positive"),
            std::string::npos);
  EXPECT_NE(with_line("std", "std = [ 0.5, 0.0, 0.5 ]").find("key 'std' holds 0"), std::string::npos);
  // The same shard listed twice would count its samples twice.
  std::ofstream(dir / "index.toml") << good << "\n[[shard]]\nsplit = \"train\"\n"
                                       "file = \"train-00001-of-00002.h5\"\nsamples = 10\n";
  std::string e = error_of([&] { read_index(dir.str()); });
  EXPECT_NE(e.find("shard 'train-00001-of-00002.h5' is listed twice"), std::string::npos) << e;
  std::ofstream(dir / "index.toml") << good;
  EXPECT_EQ(read_index(dir.str()).shards.size(), 2u);
}

TEST(Shard, ImagesAndLabelsOfTheWrongTypeAreErrorsNamingTheDataset) {
  TempDir dir;
  auto s = make_split("train", 8, 1, 10);
  // /labels as float64 (HDF5 would convert 2.7 to 2 silently), /images as int8 (levels over 127
  // would read as negative through HDF5 but not through the direct reads).
  write_shard(dir / "float.h5", s.images, s.labels, {4, kClasses, "train", "unit test"});
  {
    h5::Handle f = h5::open_file(dir / "float.h5", /*writable=*/true);
    ASSERT_GE(H5Ldelete(f, "labels", H5P_DEFAULT), 0);
    std::vector<double> labels(8, 2.7);
    h5::write_dataset(f, "labels", H5T_NATIVE_DOUBLE, {8}, labels.data(), dir / "float.h5");
  }
  std::string e = error_of([&] { ShardReader r(dir / "float.h5"); });
  EXPECT_NE(e.find("dataset /labels in '" + (dir / "float.h5") + "' is not of an integer type"),
            std::string::npos) << e;
  write_shard(dir / "int8.h5", s.images, s.labels, {4, kClasses, "train", "unit test"});
  {
    h5::Handle f = h5::open_file(dir / "int8.h5", /*writable=*/true);
    ASSERT_GE(H5Ldelete(f, "images", H5P_DEFAULT), 0);
    h5::write_dataset(f, "images", H5T_NATIVE_INT8, {8, 6, 5, 3}, s.images.data_ptr(), dir / "int8.h5");
  }
  e = error_of([&] { ShardReader r(dir / "int8.h5"); });
  EXPECT_NE(e.find("dataset /images in '" + (dir / "int8.h5") + "' is not uint8"), std::string::npos) << e;
}

TEST(Shard, VerifyComparesEachShardsNumClassesAndAConstantChannelGetsStdOne) {
  TempDir dir;
  auto train = make_split("train", 20, 2, 11);
  train.images.select(3, 1).fill_(77);  // channel 1 the same everywhere
  const DatasetIndex idx = write_dataset(dir.str(), "toy", "unit test", kClasses, {train});
  EXPECT_EQ(idx.std[1], 1.0);
  EXPECT_NEAR(idx.mean[1], 77 / 255.0, 1e-12);
  EXPECT_GT(idx.std[0], 0.2);
  EXPECT_EQ(read_index(dir.str()).std[1], 1.0) << "the trainer reads it";
  EXPECT_TRUE(verify_dataset(dir.str()).empty());
  // A shard rewritten with another class count (its labels still inside it).
  write_shard(dir / "train-00001-of-00002.h5", train.images.narrow(0, 10, 10),
              train.labels.narrow(0, 10, 10), {5, {"a", "b", "c", "d", "e"}, "train", "x"});
  const auto problems = verify_dataset(dir.str());
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("attribute num_classes is 5, index.toml says 4"), std::string::npos)
      << problems[0];
}

TEST(Shard, ConvertingIntoADatasetReplacesItWhole) {
  TempDir dir;
  write_dataset(dir.str(), "toy", "unit test", kClasses, {make_split("train", 40, 4, 1), make_split("val", 8, 1, 2)});
  std::ofstream(dir / "notes.txt") << "the user's own file\n";
  std::ofstream(dir / "scan-00001-of-00002.h5") << "named like a shard, not one\n";
  const auto before = read_index(dir.str());
  {  // the new conversion stops before finish() (an error): the old dataset is as it was
    DatasetWriter w(dir.str(), "toy", "unit test", kClasses);
    auto s = make_split("train", 10, 1, 3);
    w.add_shard("train", 0, 2, s.images, s.labels);
    const std::string staged = std::string(DatasetWriter::kStagingFolder) + "/train-00000-of-00002.h5";
    EXPECT_TRUE(std::filesystem::exists(dir / staged));
  }
  EXPECT_EQ(read_index(dir.str()).shards.size(), before.shards.size());
  EXPECT_TRUE(verify_dataset(dir.str()).empty()) << "the old shards are untouched";
  EXPECT_FALSE(std::filesystem::exists(dir / DatasetWriter::kStagingFolder));
  // A conversion killed while moving its complete dataset in (index in staging, the old index gone,
  // one shard moved): the next conversion into the folder completes that move first.
  {
    const std::string staging = dir / DatasetWriter::kStagingFolder;
    write_dataset(staging, "toy", "unit test", kClasses, {make_split("train", 30, 3, 7)});
    std::filesystem::remove(dir / "index.toml");
    std::filesystem::rename(staging + "/train-00000-of-00003.h5", dir / "train-00000-of-00003.h5");
    DatasetWriter w(dir.str(), "toy", "unit test", kClasses);  // and stops before finish()
  }
  ASSERT_TRUE(std::filesystem::exists(dir / "index.toml"));
  EXPECT_EQ(read_index(dir.str()).shards.size(), 3u);
  EXPECT_TRUE(verify_dataset(dir.str()).empty()) << "the completed move is the killed conversion's dataset";
  // A conversion killed half-way leaves its staging folder: the next one into the folder clears it.
  std::filesystem::create_directories(dir / DatasetWriter::kStagingFolder);
  std::ofstream(dir / (std::string(DatasetWriter::kStagingFolder) + "/train-00003-of-00004.h5")) << "half a shard";
  write_dataset(dir.str(), "toy", "unit test", kClasses, {make_split("train", 20, 2, 4)});
  EXPECT_TRUE(verify_dataset(dir.str()).empty());
  // The train shards no new one replaced (the first dataset's) are gone; the user's files and the
  // shards of a split this conversion does not write (val) stay.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.str()))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"index.toml", "notes.txt", "scan-00001-of-00002.h5",
                                             "train-00000-of-00002.h5",
                                             "train-00001-of-00002.h5", "val-00000-of-00001.h5"}));
  EXPECT_EQ(read_index(dir.str()).shards.size(), 2u);
}
