#include "data/shard.h"

#include <torch/torch.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/hdf5_lock.h"

namespace odyssey {

void write_shard(const std::string& path, const torch::Tensor& images, const torch::Tensor& labels,
                 const ShardMeta& meta, int64_t chunk_samples) {
  ODY_CHECK(images.dim() == 4 && images.scalar_type() == torch::kByte,
            "write_shard: images must be uint8 [N,H,W,C]", "");
  ODY_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0),
            "write_shard: labels must be [N] with N = images.size(0)", "");
  auto img = images.contiguous();
  auto lab = labels.to(torch::kLong).contiguous();
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::Handle file = h5::create_file(path);
  std::vector<hsize_t> ishape(img.sizes().begin(), img.sizes().end());
  h5::write_dataset(file, "images", H5T_NATIVE_UINT8, ishape, img.data_ptr(), path, chunk_samples);
  h5::write_dataset(file, "labels", H5T_NATIVE_INT64, {static_cast<hsize_t>(lab.size(0))},
                    lab.data_ptr(), path, chunk_samples);
  h5::write_attr(file, "format", std::string(kShardFormat));
  h5::write_attr(file, "format_version", kShardFormatVersion);
  h5::write_attr(file, "num_classes", meta.num_classes);
  h5::write_attr(file, "class_names", meta.class_names);
  h5::write_attr(file, "height", static_cast<int64_t>(img.size(1)));
  h5::write_attr(file, "width", static_cast<int64_t>(img.size(2)));
  h5::write_attr(file, "channels", static_cast<int64_t>(img.size(3)));
  h5::write_attr(file, "split", meta.split);
  h5::write_attr(file, "source", meta.source);
  h5::flush_sync_close(file, path);
}

ShardReader::ShardReader(const std::string& path) : path_(path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  try {
    open_locked();
  } catch (...) {  // the handles close under the lock (a throwing constructor closes them after it)
    images_.reset();
    file_.reset();
    throw;
  }
}

void ShardReader::open_locked() {
  const std::string& path = path_;
  file_ = h5::open_file(path, /*writable=*/false);
  std::string format = h5::read_attr_string(file_, "format", path);
  ODY_CHECK(format == kShardFormat,
            "'" + path + "' has format '" + format + "', expected '" + kShardFormat + "'",
            "write shards with `shardify`");
  int64_t version = h5::read_attr_int(file_, "format_version", path);
  ODY_CHECK(version == kShardFormatVersion,
            ODY_MSG("'" << path << "' has shard format_version " << version
                        << ", this build reads version " << kShardFormatVersion),
            "convert the data again with this version's shardify");
  num_classes_ = h5::read_attr_int(file_, "num_classes", path);

  images_ = h5::open_dataset(file_, "images", path);
  auto d = h5::dims(images_, "/images of '" + path + "'");
  ODY_CHECK(d.size() == 4, ODY_MSG("dataset /images in '" << path << "' has " << d.size()
                                                           << " dimensions, expected 4 [N,H,W,C]"),
            "");
  size_ = d[0], h_ = d[1], w_ = d[2], c_ = d[3];
  {
    h5::Handle t(H5Dget_type(images_), H5Tclose);
    ODY_CHECK(H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE,
              "dataset /images in '" + path + "' is not uint8", "");
  }

  h5::Handle labels = h5::open_dataset(file_, "labels", path);
  {
    h5::Handle t(H5Dget_type(labels), H5Tclose);
    ODY_CHECK(H5Tget_class(t) == H5T_INTEGER,
              "dataset /labels in '" + path + "' is not of an integer type",
              "labels are class indices (int64 as shardify writes them)");
  }
  auto ld = h5::dims(labels, "/labels of '" + path + "'");
  ODY_CHECK(ld.size() == 1 && static_cast<int64_t>(ld[0]) == size_,
            ODY_MSG("dataset /labels in '" << path << "' has shape [" << (ld.empty() ? 0 : ld[0])
                                            << (ld.size() > 1 ? ",..." : "") << "], expected ["
                                            << size_ << "] to match /images"),
            "");
  labels_ = torch::empty({size_}, torch::kLong);
  ODY_CHECK(H5Dread(labels, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                    labels_.data_ptr()) >= 0,
            "cannot read dataset /labels in '" + path + "'", "the shard may be truncated");
  if (size_ > 0) {
    int64_t lo = labels_.min().item<int64_t>(), hi = labels_.max().item<int64_t>();
    ODY_CHECK(lo >= 0 && hi < num_classes_,
              ODY_MSG("dataset /labels in '" << path << "' holds label " << (lo < 0 ? lo : hi)
                                              << " outside [0, " << num_classes_ << ")"),
              "the shard's num_classes attribute and its labels disagree");
  }
  plan_direct_reads();
}

ShardReader::~ShardReader() {
  if (fd_ >= 0) ::close(fd_);
  std::lock_guard<std::mutex> lock(hdf5_mutex());  // Debian's HDF5 is not thread-safe
  images_.reset();
  file_.reset();
}

void ShardReader::plan_direct_reads() {
  // Called with the HDF5 lock held, after /images was validated.
  const uint64_t sample_bytes = static_cast<uint64_t>(h_ * w_ * c_);
  if (size_ == 0 || sample_bytes == 0) return;
  h5::Handle dcpl(H5Dget_create_plist(images_), H5Pclose);
  if (dcpl < 0 || H5Pget_nfilters(dcpl) != 0) return;
  // A file with a user block (h5py's userblock_size): HDF5 1.10's chunk addresses leave the block
  // out (HDFGroup issue 3003, fixed in 1.14.4), and pread at them returned other samples' bytes.
  // Such files go through H5Dread.
  {
    h5::Handle fcpl(H5Fget_create_plist(file_), H5Pclose);
    hsize_t userblock = 1;
    if (fcpl < 0 || H5Pget_userblock(fcpl, &userblock) < 0 || userblock != 0) return;
  }
  std::vector<Extent> extents;
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  if (layout == H5D_CONTIGUOUS) {
    haddr_t addr = H5Dget_offset(images_);
    if (addr == HADDR_UNDEF) return;
    extents.push_back({0, size_, static_cast<uint64_t>(addr)});
  } else if (layout == H5D_CHUNKED) {
    hsize_t chunk[4];
    if (H5Pget_chunk(dcpl, 4, chunk) != 4) return;
    if (chunk[1] != static_cast<hsize_t>(h_) || chunk[2] != static_cast<hsize_t>(w_) ||
        chunk[3] != static_cast<hsize_t>(c_))
      return;  // chunks must hold whole samples for a sample range to be one byte range
    // Chunk by chunk through the index (H5Dget_chunk_info(i) walks it from the start for each i:
    // minutes for a shard of 100k one-sample chunks, under the HDF5 lock).
    for (int64_t start = 0; start < size_; start += static_cast<int64_t>(chunk[0])) {
      hsize_t offset[4] = {static_cast<hsize_t>(start), 0, 0, 0};
      unsigned mask = 0;
      haddr_t addr = HADDR_UNDEF;
      hsize_t bytes = 0;
      if (H5Dget_chunk_info_by_coord(images_, offset, &mask, &addr, &bytes) < 0 || addr == HADDR_UNDEF)
        return;  // a chunk never written: HDF5 gives its fill value
      const int64_t first = static_cast<int64_t>(offset[0]);
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(chunk[0]), size_ - first);
      extents.push_back({first, n, static_cast<uint64_t>(addr)});
    }
  } else {
    return;
  }
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.first < b.first; });
  int64_t covered = 0;
  uint64_t end_of_data = 0;
  for (const auto& e : extents) {
    if (e.first != covered) return;  // a missing (never written) chunk: let HDF5 handle it
    covered += e.samples;
    end_of_data = std::max(end_of_data, e.addr + e.samples * sample_bytes);
  }
  if (covered != size_) return;
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < end_of_data) {
    ::close(fd);
    ODY_FAIL(ODY_MSG("dataset /images in '" << path_ << "' ends beyond the file ("
                                             << st.st_size << " bytes, the samples need "
                                             << end_of_data << ")"),
             "the shard is truncated; run `shardify verify` on its folder");
  }
  extents_ = std::move(extents);
  fd_ = fd;
}

void ShardReader::read(int64_t start, int64_t count, uint8_t* out) const {
  ODY_CHECK(start >= 0 && count >= 0 && start + count <= size_,
            ODY_MSG("read of samples [" << start << ", " << start + count << ") beyond the "
                                        << size_ << " samples of '" << path_ << "'"),
            "");
  if (count == 0) return;
  if (fd_ >= 0) {
    const int64_t sample_bytes = h_ * w_ * c_;
    auto it = std::upper_bound(extents_.begin(), extents_.end(), start,
                               [](int64_t s, const Extent& e) { return s < e.first; }) - 1;
    for (int64_t s = start, end = start + count; s < end; ++it) {
      const int64_t n = std::min(end, it->first + it->samples) - s;
      uint64_t pos = it->addr + static_cast<uint64_t>((s - it->first) * sample_bytes);
      auto* dst = out + (s - start) * sample_bytes;
      for (size_t left = static_cast<size_t>(n * sample_bytes); left > 0;) {
        ssize_t got = ::pread(fd_, dst, left, static_cast<off_t>(pos));
        if (got < 0 && errno == EINTR) continue;
        ODY_CHECK(got > 0, ODY_MSG("cannot read samples [" << start << ", " << start + count
                                                           << ") of dataset /images in '" << path_
                                                           << "': "
                                                           << (got < 0 ? std::strerror(errno)
                                                                       : "end of file")),
                  "the shard is corrupt or truncated; run `shardify verify` on its folder");
        dst += got, pos += static_cast<uint64_t>(got), left -= static_cast<size_t>(got);
      }
      s += n;
    }
    return;
  }
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hsize_t offset[4] = {static_cast<hsize_t>(start), 0, 0, 0};
  hsize_t extent[4] = {static_cast<hsize_t>(count), static_cast<hsize_t>(h_),
                       static_cast<hsize_t>(w_), static_cast<hsize_t>(c_)};
  h5::Handle fspace(H5Dget_space(images_), H5Sclose);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, offset, nullptr, extent, nullptr);
  h5::Handle mspace(H5Screate_simple(4, extent, nullptr), H5Sclose);
  ODY_CHECK(H5Dread(images_, H5T_NATIVE_UINT8, mspace, fspace, H5P_DEFAULT, out) >= 0,
            ODY_MSG("cannot read samples [" << start << ", " << start + count
                                            << ") of dataset /images in '" << path_ << "'"),
            "the shard is corrupt or truncated; run `shardify verify` on its folder");
}

}  // namespace odyssey
