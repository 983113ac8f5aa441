#include "checkpoint/checkpoint.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>

#include "common/error.h"
#include "common/file.h"
#include "common/h5.h"
#include "common/hdf5_lock.h"
#include "common/text.h"
#include "odyssey_version.h"  // generated at configure time (CMakeLists.txt)

namespace odyssey {

namespace fs = std::filesystem;

namespace {

uint32_t crc_of(const torch::Tensor& t) {
  return static_cast<uint32_t>(
      crc32(0L, static_cast<const Bytef*>(t.data_ptr()), static_cast<uInt>(t.nbytes())));
}

// CRC-32 of a group's dataset names, in name order (HDF5 may list them in either order).
uint32_t names_crc(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  std::string text;
  for (const auto& n : names) text += n + "\n";
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
}

// CRC-32 of the /trainer attributes that resuming uses (the cursor, the run's shape, its config).
uint32_t trainer_crc(const TrainerState& s) {
  std::string text;
  for (int64_t v : {s.step, s.epoch, s.step_in_epoch, s.samples_seen, s.world_size, s.batch_size,
                    s.eval_step, s.skipped_steps, s.train_samples})
    text += std::to_string(v) + "\n";
  char top1[32];
  std::snprintf(top1, sizeof top1, "%.17g\n", s.eval_top1);
  text += top1 + s.model_name + "\n" + s.config_toml;
  if (s.random_streams != 1) text += "\nrandom_streams " + std::to_string(s.random_streams);  // older: unchanged
  for (const auto* values : {&s.input_mean, &s.input_std})  // absent (empty) in older files: their text is unchanged
    for (double v : *values) {
      char num[32];
      std::snprintf(num, sizeof num, "\n%.17g", v);
      text += num;
    }
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
}

// input_mean/input_std attributes, written when known; read back checked as a pair of equal,
// non-empty lengths with positive std.
void write_normalisation(hid_t obj, const std::vector<double>& mean, const std::vector<double>& std) {
  if (mean.empty()) return;
  h5::write_attr(obj, "input_mean", mean);
  h5::write_attr(obj, "input_std", std);
}
void read_normalisation(hid_t obj, const std::string& path, std::vector<double>& mean,
                        std::vector<double>& std) {
  if (!h5::has_attr(obj, "input_mean") && !h5::has_attr(obj, "input_std")) return;
  mean = h5::read_attr_doubles(obj, "input_mean", path);
  std = h5::read_attr_doubles(obj, "input_std", path);
  bool ok = !mean.empty() && mean.size() == std.size();
  for (double s : std) ok = ok && s > 0 && std::isfinite(s);
  for (double m : mean) ok = ok && std::isfinite(m);
  ODY_CHECK(ok, ODY_MSG("'" << path << "': attributes input_mean (" << mean.size() << " values) and input_std ("
                            << std.size() << ") are not one finite mean and positive std per channel"),
            "the file is damaged, or was written by another tool");
}

hid_t h5_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat: return H5T_NATIVE_FLOAT;
    case torch::kDouble: return H5T_NATIVE_DOUBLE;
    case torch::kLong: return H5T_NATIVE_INT64;
    default: ODY_FAIL(ODY_MSG("cannot store tensor of dtype " << t.scalar_type()), "");
  }
}

// Writes tensors into a group; a key with dots stays one dataset name ("features.0.weight").
// Optimizer keys "param/slot" become subgroups.
void write_group(hid_t file, const std::string& group, const NamedTensors& tensors,
                 const std::string& path) {
  h5::Handle g = h5::create_group(file, group, path);
  std::map<std::string, h5::Handle> subgroups;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    hid_t loc = g;
    std::string leaf = name;
    auto slash = name.rfind('/');
    if (slash != std::string::npos) {
      std::string sub = name.substr(0, slash);
      leaf = name.substr(slash + 1);
      auto it = subgroups.find(sub);
      if (it == subgroups.end())
        it = subgroups.emplace(sub, h5::create_group(g, sub, path)).first;
      loc = it->second;
    }
    std::vector<hsize_t> shape(t.sizes().begin(), t.sizes().end());
    h5::write_dataset(loc, leaf, h5_type(t), shape, t.data_ptr(), path);
    h5::Handle ds = h5::open_dataset(loc, leaf, path);
    h5::write_attr(ds, "crc32", static_cast<int64_t>(crc_of(t)));
  }
  // The group's manifest: which datasets it holds. The per-tensor CRCs cannot notice a dataset
  // that is gone (a lost link in a damaged file); read_group checks these where present.
  std::vector<std::string> names;
  for (const auto& entry : tensors) names.push_back(entry.first);
  h5::write_attr(g, "dataset_count", static_cast<int64_t>(names.size()));
  h5::write_attr(g, "names_crc32", static_cast<int64_t>(names_crc(names)));
}

struct VisitCtx {
  std::vector<std::string> names;
};

// HDF5 1.12 changed H5Ovisit (now H5Ovisit3) and its object info: the versioned calls build with
// 1.10 (Debian 12) and 1.12+ (Debian 13's 1.14), and ask only for the object type.
#if H5_VERSION_GE(1, 12, 0)
using ObjectInfo = H5O_info2_t;
#else
using ObjectInfo = H5O_info_t;
#endif

herr_t collect(hid_t, const char* name, const ObjectInfo* info, void* data) {
  if (info->type == H5O_TYPE_DATASET) static_cast<VisitCtx*>(data)->names.emplace_back(name);
  return 0;
}

// The datasets under g, in the given order; false if HDF5 cannot list them.
bool list_datasets(hid_t g, H5_index_t order, VisitCtx& ctx) {
  ctx.names.clear();  // a failed attempt may have listed some
#if H5_VERSION_GE(1, 12, 0)
  return H5Ovisit3(g, order, H5_ITER_INC, collect, &ctx, H5O_INFO_BASIC) >= 0;
#else
  return H5Ovisit2(g, order, H5_ITER_INC, collect, &ctx, H5O_INFO_BASIC) >= 0;
#endif
}

// A group's datasets as tensors, each checked against its crc32 attribute; with require_crc (a
// checkpoint: its writer gives every tensor one) a dataset without it is an error too, as one
// added or rewritten by another tool would be.
NamedTensors read_group(hid_t file, const std::string& group, const std::string& path,
                        bool require_crc) {
  NamedTensors out;
  if (!h5::exists(file, group)) return out;
  h5::Handle g(H5Gopen2(file, group.c_str(), H5P_DEFAULT), H5Gclose);
  VisitCtx ctx;
  ODY_CHECK(list_datasets(g, H5_INDEX_CRT_ORDER, ctx) || list_datasets(g, H5_INDEX_NAME, ctx),
            "cannot list group /" + group + " of '" + path + "'", "the checkpoint is damaged");
  for (const auto& name : ctx.names) {
    std::string full = "/" + group + "/" + name;
    h5::Handle ds = h5::open_dataset(file, full, path);
    auto d = h5::dims(ds, full);
    std::vector<int64_t> shape(d.begin(), d.end());
    h5::Handle ftype(H5Dget_type(ds), H5Tclose);
    torch::ScalarType st = H5Tget_class(ftype) == H5T_INTEGER ? torch::kLong
                           : H5Tget_size(ftype) == 8        ? torch::kDouble
                                                            : torch::kFloat;
    auto t = torch::empty(shape, st);
    hid_t mtype = st == torch::kLong ? H5T_NATIVE_INT64
                  : st == torch::kDouble ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
    ODY_CHECK(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0,
              "cannot read dataset " + full + " of checkpoint '" + path + "'",
              "the checkpoint is truncated or damaged");
    ODY_CHECK(!require_crc || h5::has_attr(ds, "crc32"),
              "dataset " + full + " of checkpoint '" + path + "' has no crc32 attribute",
              "every tensor of a checkpoint carries one: was the file changed by another tool?");
    if (h5::has_attr(ds, "crc32")) {
      int64_t expect = h5::read_attr_int(ds, "crc32", path);
      ODY_CHECK(static_cast<uint32_t>(expect) == crc_of(t),
                "dataset " + full + " of checkpoint '" + path + "' fails its CRC-32 check",
                "the checkpoint is damaged; resume from an earlier one");
    }
    out.emplace_back(name, t);
  }
  // A checkpoint's only: a weights file a user edited with h5py (its head deleted to fine-tune)
  // is still a weights file.
  if (require_crc && h5::has_attr(g, "dataset_count")) {  // written since 2026-12-02
    int64_t count = h5::read_attr_int(g, "dataset_count", path);
    ODY_CHECK(count == static_cast<int64_t>(ctx.names.size()) && h5::has_attr(g, "names_crc32") &&
                  static_cast<uint32_t>(h5::read_attr_int(g, "names_crc32", path)) == names_crc(ctx.names),
              ODY_MSG("group /" << group << " of '" << path << "' holds " << ctx.names.size()
                                << " datasets, not the " << count << " named in its manifest"
                                << (count == static_cast<int64_t>(ctx.names.size()) ? " (other names)" : "")),
              "the file is damaged; resume from an earlier checkpoint");
  }
  return out;
}

}  // namespace

namespace {

// Writes an HDF5 file complete or not at all: `fill` writes into path.tmp (under the HDF5 lock),
// then flush, fsync and close (each checked), rename to path and fsync of the folder; on any
// failure the .tmp is removed and nothing at path changes.
void write_atomically(const std::string& path,
                      const std::function<void(hid_t file, const std::string& tmp)>& fill) {
  const std::string tmp = path + ".tmp";
  try {
    {
      std::lock_guard<std::mutex> lock(hdf5_mutex());
      h5::Handle file = h5::create_file(tmp);
      fill(file, tmp);
      h5::flush_sync_close(file, tmp);
    }
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);  // never leave half a file behind
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    ODY_FAIL("cannot rename '" + tmp + "' to '" + path + "': " + ec.message(), "");
  }
  fsync_path(fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string(),
             true);
}

}  // namespace

void write_hdf5_atomically(const std::string& path,
                           const std::function<void(hid_t file, const std::string& tmp)>& fill) {
  write_atomically(path, fill);
}

void write_checkpoint(const std::string& path, const CheckpointData& data) {
  write_atomically(path, [&](hid_t file, const std::string& tmp) {
    write_group(file, "model", data.model, tmp);
    write_group(file, "optimizer", data.optimizer, tmp);
    if (!data.ema.empty()) write_group(file, "ema", data.ema, tmp);
    h5::Handle tr = h5::create_group(file, "trainer", tmp);
    const auto& s = data.trainer;
    h5::write_attr(tr, "format", std::string("odyssey-checkpoint"));
    h5::write_attr(tr, "format_version", kCheckpointFormatVersion);
    h5::write_attr(tr, "code_version", std::string(ODYSSEY_VERSION));
    h5::write_attr(tr, "step", s.step);
    h5::write_attr(tr, "epoch", s.epoch);
    h5::write_attr(tr, "step_in_epoch", s.step_in_epoch);
    h5::write_attr(tr, "samples_seen", s.samples_seen);
    h5::write_attr(tr, "world_size", s.world_size);
    h5::write_attr(tr, "batch_size", s.batch_size);
    h5::write_attr(tr, "model_name", s.model_name);
    h5::write_attr(tr, "config", s.config_toml);
    h5::write_attr(tr, "eval_top1", s.eval_top1);
    h5::write_attr(tr, "eval_step", s.eval_step);
    h5::write_attr(tr, "skipped_steps", s.skipped_steps);
    h5::write_attr(tr, "train_samples", s.train_samples);
    h5::write_attr(tr, "random_streams", s.random_streams);
    write_normalisation(tr, s.input_mean, s.input_std);
    h5::write_attr(tr, "crc32", static_cast<int64_t>(trainer_crc(s)));
    h5::write_attr(tr, "groups", std::string(data.ema.empty() ? "model,optimizer" : "model,optimizer,ema"));
  });
}

void write_weights(const std::string& path, const NamedTensors& model, const WeightsInfo& info) {
  write_atomically(path, [&](hid_t file, const std::string& tmp) {
    write_group(file, "model", model, tmp);
    h5::write_attr(file, "model_name", info.model_name);
    h5::write_attr(file, "image_size", info.image_size);
    h5::write_attr(file, "eval_crop", info.eval_crop);
    write_normalisation(file, info.input_mean, info.input_std);
    h5::write_attr(file, "code_version", std::string(ODYSSEY_VERSION));
  });
}

WeightsInfo read_weights_info(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::Handle file = h5::open_file(path, /*writable=*/false);
  WeightsInfo info;
  info.is_checkpoint = h5::exists(file, "trainer");
  if (info.is_checkpoint) {
    h5::Handle tr(H5Gopen2(file, "trainer", H5P_DEFAULT), H5Gclose);
    if (tr.get() >= 0 && h5::has_attr(tr, "config")) info.config_toml = h5::read_attr_string(tr, "config", path);
  }
  if (h5::has_attr(file, "model_name")) info.model_name = h5::read_attr_string(file, "model_name", path);
  if (h5::has_attr(file, "image_size")) info.image_size = h5::read_attr_int(file, "image_size", path);
  if (h5::has_attr(file, "eval_crop")) info.eval_crop = h5::read_attr_double(file, "eval_crop", path);
  read_normalisation(file, path, info.input_mean, info.input_std);
  return info;
}

bool take_ema_weights(CheckpointData& data) {
  if (data.ema.empty()) return false;
  std::map<std::string, torch::Tensor> avg(data.ema.begin(), data.ema.end());
  for (auto& [name, t] : data.model)
    if (auto it = avg.find(name); it != avg.end()) t = it->second;
  return true;
}

void write_tensor_file(const std::string& path, const std::string& group,
                       const NamedTensors& tensors,
                       const std::function<void(hid_t file, const std::string& tmp)>& attrs) {
  write_atomically(path, [&](hid_t file, const std::string& tmp) {
    write_group(file, group, tensors, tmp);
    if (attrs) attrs(file, tmp);
  });
}

int64_t checkpoint_format_version(const std::string& path) noexcept {
  try {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    h5::Handle file = h5::open_file(path, /*writable=*/false);
    if (!h5::exists(file, "trainer")) return -1;
    h5::Handle tr(H5Gopen2(file, "trainer", H5P_DEFAULT), H5Gclose);
    return tr.get() < 0 ? -1 : h5::read_attr_int(tr, "format_version", path);
  } catch (...) {
    return -1;
  }
}

CheckpointData read_checkpoint(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::Handle file = h5::open_file(path, /*writable=*/false);
  ODY_CHECK(h5::exists(file, "trainer"), "'" + path + "' has no /trainer group",
            "is it a checkpoint written by trainer? (a weights file holds /model only)");
  h5::Handle tr(H5Gopen2(file, "trainer", H5P_DEFAULT), H5Gclose);
  CheckpointData data;
  auto& s = data.trainer;
  int64_t version = h5::read_attr_int(tr, "format_version", path);
  ODY_CHECK(version >= kCheckpointOldestReadable && version <= kCheckpointFormatVersion,
            ODY_MSG("checkpoint '" << path << "' has format_version " << version << ", this build reads "
                                   << kCheckpointOldestReadable << " to " << kCheckpointFormatVersion),
            "");
  s.step = h5::read_attr_int(tr, "step", path);
  s.epoch = h5::read_attr_int(tr, "epoch", path);
  s.step_in_epoch = h5::read_attr_int(tr, "step_in_epoch", path);
  s.samples_seen = h5::read_attr_int(tr, "samples_seen", path);
  s.world_size = h5::read_attr_int(tr, "world_size", path);
  s.batch_size = h5::read_attr_int(tr, "batch_size", path);
  s.model_name = h5::read_attr_string(tr, "model_name", path);
  s.config_toml = h5::read_attr_string(tr, "config", path);
  s.eval_top1 = h5::read_attr_double(tr, "eval_top1", path);
  if (h5::has_attr(tr, "eval_step")) s.eval_step = h5::read_attr_int(tr, "eval_step", path);
  if (h5::has_attr(tr, "code_version")) s.code_version = h5::read_attr_string(tr, "code_version", path);
  if (h5::has_attr(tr, "skipped_steps")) s.skipped_steps = h5::read_attr_int(tr, "skipped_steps", path);
  if (h5::has_attr(tr, "train_samples")) s.train_samples = h5::read_attr_int(tr, "train_samples", path);
  if (h5::has_attr(tr, "random_streams")) s.random_streams = h5::read_attr_int(tr, "random_streams", path);
  read_normalisation(tr, path, s.input_mean, s.input_std);
  if (h5::has_attr(tr, "crc32"))  // written since 2026-12-01: earlier checkpoints have none
    ODY_CHECK(static_cast<uint32_t>(h5::read_attr_int(tr, "crc32", path)) == trainer_crc(s),
              "the /trainer attributes of checkpoint '" + path + "' fail their CRC-32 check",
              "the checkpoint is damaged; resume from an earlier one");
  if (h5::has_attr(tr, "groups"))  // written since 2026-12-02: a group that is gone is damage
    for (const auto& group : split(h5::read_attr_string(tr, "groups", path), ','))
      ODY_CHECK(h5::exists(file, group), "checkpoint '" + path + "' has lost its /" + group + " group",
                "the file is damaged; resume from an earlier checkpoint");
  data.model = read_group(file, "model", path, /*require_crc=*/true);
  data.optimizer = read_group(file, "optimizer", path, /*require_crc=*/true);
  if (h5::exists(file, "ema")) data.ema = read_group(file, "ema", path, /*require_crc=*/true);
  return data;
}

NamedTensors read_weights(const std::string& path, const std::string& group,
                          const std::string& missing_hint) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::Handle file = h5::open_file(path, /*writable=*/false);
  ODY_CHECK(h5::exists(file, group), "'" + path + "' has no /" + group + " group",
            !missing_hint.empty() ? missing_hint
                                  : "a weights file holds /model/<state_dict key> datasets; write "
                                    "one with launch/export_torchvision.py (or use a checkpoint)");
  return read_group(file, group, path, /*require_crc=*/false);  // exported weights have none
}

void load_named(const NamedTensors& from, const NamedTensors& into, const std::string& group,
                const std::string& path) {
  std::map<std::string, torch::Tensor> by_name(from.begin(), from.end());
  torch::NoGradGuard no_grad;
  for (const auto& [name, live] : into) {
    auto it = by_name.find(name);
    ODY_CHECK(it != by_name.end(),
              "checkpoint '" + path + "' lacks dataset /" + group + "/" + name,
              "was it written for another model or optimizer (model.name, optim.name)?");
    ODY_CHECK(it->second.sizes() == live.sizes(),
              ODY_MSG("dataset /" << group << "/" << name << " in '" << path << "' has shape "
                                  << it->second.sizes() << ", the model expects " << live.sizes()),
              "was it written for another model, num_classes or image size?");
    live.copy_(it->second);
  }
  ODY_CHECK(by_name.size() == into.size(),
            ODY_MSG("checkpoint '" << path << "' holds " << by_name.size() << " datasets in /"
                                   << group << ", the run expects " << into.size()),
            "was it written for another model or optimizer?");
}

}  // namespace odyssey
