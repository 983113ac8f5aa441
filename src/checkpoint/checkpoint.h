// Checkpoint files (HDF5): /model/<state_dict key>, /optimizer/<param>/<slot>, /ema/<param>
// (when EMA is on), /trainer
// attributes. Written complete or not at all; every tensor carries a CRC-32 checked on load.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/optimizer.h"

namespace odyssey {

// 2 (2026-12-01): /trainer input_mean and input_std, in its CRC. This build reads 1 and 2.
inline constexpr int64_t kCheckpointFormatVersion = 2;
// The random streams a run's data order and augmentation draw from (mix_seed, data/draws.h): 2
// since 2026-12-02 (every value mixed in fully; per-image augmentation draws); 1 before (and in
// files without the attribute). A resume across them takes another order for the rest of the
// epoch and other draws.
inline constexpr int64_t kRandomStreams = 2;
inline constexpr int64_t kCheckpointOldestReadable = 1;

// A new field goes into train/checkpoint_share.cpp's trainer_fields too (the resume broadcast).
struct TrainerState {
  int64_t step = 0;           // optimizer steps taken
  int64_t epoch = 0;          // epoch the next step belongs to
  int64_t step_in_epoch = 0;  // data cursor: next step within that epoch
  int64_t samples_seen = 0;
  int64_t world_size = 1;
  int64_t batch_size = 0;     // per rank
  std::string model_name;
  std::string config_toml;    // the resolved config of the run
  double eval_top1 = -1;      // last evaluation, -1 when none yet
  int64_t eval_step = -1;     // the step it evaluated (-1: none, or a checkpoint older than it)
  int64_t skipped_steps = 0;  // updates skipped for a non-finite loss so far (0 when absent)
  int64_t train_samples = 0;  // the train split's size the cursor indexes (0 when absent)
  std::string code_version;   // the build that wrote it (git describe), read back for info
  // The per-channel mean/std its inputs were normalised with (the train split's, [0, 1] pixel
  // units): what predict and fewshot normalise with. Empty in checkpoints written before them.
  std::vector<double> input_mean, input_std;
  int64_t random_streams = 1;  // kRandomStreams of the build that wrote it (1 when absent)
};

struct CheckpointData {
  NamedTensors model;      // state_dict order: parameters then buffers
  NamedTensors optimizer;  // optimizer slots, then the fp16 loss scaler's "amp/..." when used
  NamedTensors ema;        // EMA of the parameters (train.ema_decay > 0), else empty: no /ema
  TrainerState trainer;
};

// Writes path atomically: path.tmp, fsync, rename to path, fsync of the folder.
void write_checkpoint(const std::string& path, const CheckpointData& data);

// What a weights file says of its model besides the tensors (root attributes): the registry
// name and the input its run trained at (augment.image_size, augment.eval_crop; 0 and 1, the
// stored size, when absent, as in launch/export_torchvision.py's files).
struct WeightsInfo {
  std::string model_name;
  int64_t image_size = 0;
  double eval_crop = 1.0;
  std::vector<double> input_mean, input_std;  // as TrainerState's; empty when absent
  bool is_checkpoint = false;  // read back only: the file is a checkpoint (it has /trainer)
  std::string config_toml;     // read back only: a checkpoint's resolved config (its /trainer's)
};

// Writes a weights file (/model only, with CRC-32s, and the info), atomically like a checkpoint:
// what model.init_from and trainer predict read.
void write_weights(const std::string& path, const NamedTensors& model, const WeightsInfo& info);
// The info of a weights file (empty fields where absent), or of a checkpoint (is_checkpoint).
WeightsInfo read_weights_info(const std::string& path);

// Puts a checkpoint's EMA of the parameters in place of its live parameters (buffers stay), as
// its run's evaluations used them; false when it holds no EMA.
bool take_ema_weights(CheckpointData& data);

// Any named tensors as one group (with CRC-32s), written atomically like a checkpoint; attrs,
// when given, adds attributes to the file (eval-latest.h5). Read back with read_weights(path,
// group).
void write_tensor_file(const std::string& path, const std::string& group,
                       const NamedTensors& tensors,
                       const std::function<void(hid_t file, const std::string& tmp)>& attrs = {});

// Writes an HDF5 file complete or not at all: `fill` writes into path.tmp (under the HDF5
// lock), then flush, fsync, rename to path and fsync of the folder; on failure the .tmp goes and
// nothing at path changes. What checkpoints, weights and predictions use.
void write_hdf5_atomically(const std::string& path,
                           const std::function<void(hid_t file, const std::string& tmp)>& fill);

// Reads and verifies (format, version, checksums). Model and optimizer tensors come back as new
// CPU tensors; errors name the file and the dataset.
CheckpointData read_checkpoint(const std::string& path);

// The format_version in path's /trainer, or -1 when it cannot be read (not HDF5, damaged, no
// such attribute); never throws.
int64_t checkpoint_format_version(const std::string& path) noexcept;

// The /model group (or another group) of a weights file (as written by
// launch/export_torchvision.py) or of a checkpoint; CRC-32 verified where present. A file without
// the group fails with missing_hint (for /model, by default: how a weights file is made).
NamedTensors read_weights(const std::string& path, const std::string& group = "model",
                          const std::string& missing_hint = {});

// Copies checkpoint tensors into live ones by name; every live name must be present with the
// same shape (strict), else the error names the key.
void load_named(const NamedTensors& from, const NamedTensors& into, const std::string& group,
                const std::string& path);

}  // namespace odyssey
