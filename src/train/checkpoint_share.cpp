#include "train/checkpoint_share.h"

#include <torch/torch.h>

#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include "checkpoint/checkpointer.h"
#include "common/error.h"
#include "dist/agreement.h"

namespace odyssey {

namespace {

// Fixed-width host-order fields: every rank of a job runs this build on one architecture.
struct Packer {
  std::string bytes;
  void i64(int64_t v) { bytes.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void f64(double v) { bytes.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(const std::string& s) {
    i64(static_cast<int64_t>(s.size()));
    bytes += s;
  }
  void f64s(const std::vector<double>& v) {
    i64(static_cast<int64_t>(v.size()));
    for (double x : v) f64(x);
  }
};

struct Unpacker {
  const std::string& bytes;
  size_t at = 0;
  void take(void* out, size_t n) {
    ODY_CHECK(at + n <= bytes.size(), "a checkpoint's description from rank 0 ends early", "");
    std::memcpy(out, bytes.data() + at, n);
    at += n;
  }
  int64_t i64() {
    int64_t v;
    take(&v, sizeof v);
    return v;
  }
  double f64() {
    double v;
    take(&v, sizeof v);
    return v;
  }
  std::string str() {
    std::string s(static_cast<size_t>(i64()), '\0');
    take(s.data(), s.size());
    return s;
  }
  std::vector<double> f64s() {
    std::vector<double> v(static_cast<size_t>(i64()));
    for (double& x : v) x = f64();
    return v;
  }
};

// Every TrainerState field, in one order for both directions.
template <typename Io>
void trainer_fields(TrainerState& s, Io&& io) {
  for (int64_t* v : {&s.step, &s.epoch, &s.step_in_epoch, &s.samples_seen, &s.world_size,
                     &s.batch_size, &s.eval_step, &s.skipped_steps, &s.train_samples, &s.random_streams})
    io(*v);
  io(s.eval_top1);
  for (std::string* v : {&s.model_name, &s.config_toml, &s.code_version}) io(*v);
  for (std::vector<double>* v : {&s.input_mean, &s.input_std}) io(*v);
}

std::array<const NamedTensors*, 3> groups(const CheckpointData& d) { return {&d.model, &d.optimizer, &d.ema}; }
std::array<NamedTensors*, 3> groups(CheckpointData& d) { return {&d.model, &d.optimizer, &d.ema}; }

}  // namespace

std::string describe_checkpoint(const CheckpointData& data) {
  Packer p;
  TrainerState s = data.trainer;
  trainer_fields(s, [&](auto& v) {
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, int64_t>) p.i64(v);
    else if constexpr (std::is_same_v<T, double>) p.f64(v);
    else if constexpr (std::is_same_v<T, std::string>) p.str(v);
    else p.f64s(v);
  });
  for (const NamedTensors* tensors : groups(data)) {
    p.i64(static_cast<int64_t>(tensors->size()));
    for (const auto& [name, t] : *tensors) {
      p.str(name);
      p.i64(static_cast<int64_t>(t.scalar_type()));
      p.i64(t.dim());
      for (int64_t size : t.sizes()) p.i64(size);
    }
  }
  return p.bytes;
}

CheckpointData allocate_described(const std::string& bytes) {
  Unpacker u{bytes};
  CheckpointData d;
  trainer_fields(d.trainer, [&](auto& v) {
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, int64_t>) v = u.i64();
    else if constexpr (std::is_same_v<T, double>) v = u.f64();
    else if constexpr (std::is_same_v<T, std::string>) v = u.str();
    else v = u.f64s();
  });
  for (NamedTensors* tensors : groups(d)) {
    const int64_t n = u.i64();
    for (int64_t i = 0; i < n; ++i) {
      std::string name = u.str();
      const auto type = static_cast<torch::ScalarType>(u.i64());
      std::vector<int64_t> shape(static_cast<size_t>(u.i64()));
      for (int64_t& size : shape) size = u.i64();
      tensors->emplace_back(std::move(name), torch::empty(shape, torch::dtype(type)));
    }
  }
  ODY_CHECK(u.at == bytes.size(), "a checkpoint's description from rank 0 has bytes left over", "");
  return d;
}

CheckpointData read_checkpoint_shared(Communicator& comm, const std::string& path,
                                      const std::string& context,
                                      std::optional<CheckpointData> read_on_rank0) {
  if (read_on_rank0 && comm.rank() != 0) read_on_rank0.reset();  // rank 0's alone
  if (comm.size() == 1) return read_on_rank0 ? std::move(*read_on_rank0) : read_checkpoint_patiently(path);
  CheckpointData data;
  agree(comm, [&] {
    if (comm.rank() != 0) return;
    if (read_on_rank0) {
      data = std::move(*read_on_rank0);
      return;
    }
    data = with_context(context, [&] { return read_checkpoint_patiently(path); });
  });
  std::string description = comm.rank() == 0 ? describe_checkpoint(data) : std::string();
  comm.broadcast(description, 0);
  // Its own agreement: a rank that cannot allocate would leave the others in the broadcasts.
  agree(comm, [&] {
    if (comm.rank() != 0) data = allocate_described(description);
  });
  std::vector<WorkHandle> works;  // every tensor in flight at once (as broadcast_module)
  for (NamedTensors* tensors : groups(data))
    for (auto& [name, t] : *tensors) works.push_back(comm.broadcast_async(t, 0));
  for (auto& w : works) w->wait();
  return data;
}

}  // namespace odyssey
