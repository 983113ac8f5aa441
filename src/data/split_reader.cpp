#include "data/split_reader.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "common/error.h"
#include "common/stop_request.h"

namespace odyssey {

namespace {

// Opens a shard and checks it against its index entry: sample count, image shape, classes.
std::unique_ptr<ShardReader> open_checked(const std::string& path, const ShardEntry& e,
                                          const DatasetIndex& index) {
  auto reader = std::make_unique<ShardReader>(path);
  ODY_CHECK(reader->size() == e.samples,
            ODY_MSG("shard '" << path << "' holds " << reader->size() << " samples in /images, "
                              << "index.toml says " << e.samples),
            "the shard or the index was changed after conversion; run shardify again");
  ODY_CHECK(reader->height() == index.height && reader->width() == index.width &&
                reader->channels() == index.channels,
            ODY_MSG("dataset /images in '" << path << "' has images " << reader->height() << "x"
                                           << reader->width() << "x" << reader->channels()
                                           << ", index.toml says " << index.height << "x"
                                           << index.width << "x" << index.channels),
            "");
  ODY_CHECK(reader->num_classes() == index.num_classes,
            ODY_MSG("shard '" << path << "' has num_classes " << reader->num_classes()
                              << ", index.toml says " << index.num_classes),
            "");
  return reader;
}

}  // namespace

SplitReader::SplitReader(const std::string& dir, const DatasetIndex& index,
                         const std::string& split, int64_t limit, int64_t cache_bytes,
                         bool skip_corrupt, const std::vector<bool>& exclude) {
  auto entries = index.split(split);
  ODY_CHECK(!entries.empty(),
            "dataset '" + dir + "/index.toml' has no shards for split '" + split + "' (it lists " +
                index.split_names() + ")",
            "check data.train_split / data.eval_split against the index");
  std::vector<torch::Tensor> labels;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (limit > 0 && size_ >= limit) break;
    std::string path = (std::filesystem::path(dir) / e.file).string();
    std::unique_ptr<ShardReader> reader;
    try {
      ODY_CHECK(i >= exclude.size() || !exclude[i], "shard '" + path + "' is left out: another rank cannot read it",
                "");
      reader = open_checked(path, e, index);
    } catch (const Error& err) {
      if (!skip_corrupt) throw;
      skipped_.push_back(err.message());
      skipped_positions_.push_back(static_cast<int64_t>(i));
      skipped_samples_ += e.samples;
      continue;
    }
    starts_.push_back(size_);
    size_ += reader->size();
    labels.push_back(reader->labels());
    shards_.push_back(std::move(reader));
  }
  ODY_CHECK(!shards_.empty(),
            "no readable shard in split '" + split + "' of '" + dir + "/index.toml'" +
                (skipped_.empty() ? std::string() : ": " + skipped_.front()),
            "run `shardify verify` on the folder");
  h_ = index.height, w_ = index.width, c_ = index.channels;
  labels_ = torch::cat(labels);
  if (limit > 0 && size_ > limit) {
    size_ = limit;
    labels_ = labels_.narrow(0, 0, limit).contiguous();
  }
  if (size_ * h_ * w_ * c_ <= cache_bytes) {
    cache_ = torch::empty({size_, h_, w_, c_}, torch::kByte);
    // In pieces of about 64 MiB: a stop signal while a large split is read in (a job preempted
    // during its setup) ends the read, not only the setup after it.
    const int64_t sample_bytes = h_ * w_ * c_;
    const int64_t piece = std::max<int64_t>(1, (int64_t{64} << 20) / sample_bytes);
    for (int64_t first = 0; first < size_; first += piece) {
      stop_if_requested();
      read_range(first, std::min(piece, size_ - first), cache_.data_ptr<uint8_t>() + first * sample_bytes);
    }
  }
}

void SplitReader::use_block_buffer(int64_t block, int64_t capacity) {
  ODY_CHECK(block > 0 && capacity > 0, "use_block_buffer: block and capacity must be positive", "");
  std::lock_guard<std::mutex> lock(block_mu_);
  block_ = block, block_capacity_ = capacity;
  blocks_.clear();
}

int64_t SplitReader::blocks_read() const {
  std::lock_guard<std::mutex> lock(block_mu_);
  return blocks_read_;
}

void SplitReader::check_index(int64_t index) const {
  ODY_CHECK(index >= 0 && index < size_, ODY_MSG("sample index " << index << " out of range"), "");
}

void SplitReader::read_range(int64_t first, int64_t count, uint8_t* dst) const {
  const int64_t sample_bytes = h_ * w_ * c_;
  while (count > 0) {
    size_t s = std::upper_bound(starts_.begin(), starts_.end(), first) - starts_.begin() - 1;
    const int64_t n = std::min(count, starts_[s] + shards_[s]->size() - first);
    shards_[s]->read(first - starts_[s], n, dst);
    first += n, count -= n, dst += n * sample_bytes;
  }
}

std::shared_ptr<const std::vector<uint8_t>> SplitReader::block_data(int64_t block) const {
  {
    std::lock_guard<std::mutex> lock(block_mu_);
    auto it = blocks_.find(block);
    if (it != blocks_.end()) {
      it->second.second = ++block_clock_;
      return it->second.first;
    }
  }
  // Read outside the lock (other reader threads go on); two threads may read the same block.
  const int64_t first = block * block_, count = std::min(block_, size_ - first);
  auto data = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(count * h_ * w_ * c_));
  read_range(first, count, data->data());
  std::lock_guard<std::mutex> lock(block_mu_);
  ++blocks_read_;
  auto [it, inserted] = blocks_.emplace(block, std::make_pair(data, ++block_clock_));
  while (static_cast<int64_t>(blocks_.size()) > block_capacity_) {
    auto oldest = blocks_.begin();
    for (auto b = blocks_.begin(); b != blocks_.end(); ++b)
      if (b->second.second < oldest->second.second) oldest = b;
    blocks_.erase(oldest);
  }
  return it->second.first;  // kept alive by the shared_ptr even if evicted just now
}

torch::Tensor SplitReader::gather_images(const std::vector<int64_t>& indices) const {
  const int64_t n = static_cast<int64_t>(indices.size());
  const int64_t sample_bytes = h_ * w_ * c_;
  auto out = torch::empty({n, h_, w_, c_}, torch::kByte);
  if (cached()) {  // raw pointers: a tensor view per sample would cost more than the copy
    const uint8_t* src = cache_.data_ptr<uint8_t>();
    uint8_t* dst = out.data_ptr<uint8_t>();
    for (int64_t i = 0; i < n; ++i) {
      check_index(indices[i]);
      std::memcpy(dst + i * sample_bytes, src + indices[i] * sample_bytes, sample_bytes);
    }
    return out;
  }
  uint8_t* dst = out.data_ptr<uint8_t>();
  if (block_ > 0) {  // through the block buffer: whole blocks, read once each
    for (int64_t i = 0; i < n; ++i) {
      check_index(indices[i]);
      auto data = block_data(indices[i] / block_);
      std::memcpy(dst + i * sample_bytes, data->data() + (indices[i] % block_) * sample_bytes,
                  sample_bytes);
    }
    return out;
  }
  // Visit the requested samples in sorted order, read each contiguous run with one call, and
  // scatter the rows to their batch positions.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return indices[a] < indices[b]; });
  std::vector<uint8_t> run_buf;
  int64_t i = 0;
  while (i < n) {
    int64_t first = indices[order[i]];
    check_index(first);
    int64_t j = i + 1;
    while (j < n && indices[order[j]] <= indices[order[j - 1]] + 1) ++j;
    int64_t last = indices[order[j - 1]];
    check_index(last);
    int64_t count = last - first + 1;
    run_buf.resize(count * sample_bytes);
    read_range(first, count, run_buf.data());  // one read per shard the run touches
    for (int64_t k = i; k < j; ++k)
      std::memcpy(dst + order[k] * sample_bytes, run_buf.data() + (indices[order[k]] - first) * sample_bytes,
                  sample_bytes);
    i = j;
  }
  return out;
}

torch::Tensor SplitReader::gather_labels(const std::vector<int64_t>& indices) const {
  auto idx = torch::from_blob(const_cast<int64_t*>(indices.data()),
                              {static_cast<int64_t>(indices.size())}, torch::kLong);
  return labels_.index_select(0, idx);
}

}  // namespace odyssey
