// bench_step: training-step throughput of a zoo model on synthetic data, on one device: images/s,
// TFLOP/s (6 x forward MACs per image: 2 FLOP per MAC, backward twice the forward) and MFU against
// a stated peak, both at the architecture's MAC count, torchvision's, as the PyTorch peer counts
// (a ViT's class-token last block executes less: models/flops.h). The model, optimizer (the
// trainer's own), autocast and memory order are the trainer's; no data loading, no all-reduce:
// the compute ceiling the trainer runs under.
//
//   build/bench_step --model vit_b16 --image-size 224 --batch 256 --precision bf16 \
//       --device cuda --peak-tflops 790 [--channels-last] [--steps 30] [--warmup 10]
//       [--cpu-gemm auto|onednn|libtorch]   (train.cpu_gemm; default auto, as the trainer)
//       [--cpu-conv auto|winograd|libtorch]   (train.cpu_conv; default auto, as the trainer)
//       [--trace FILE]   (LibTorch's profiler over the timed steps: a Chrome trace of every operator)
//
// Prints one human line and one JSON line (launch/gpu-check and launch/peers/step_peer.py, the
// PyTorch peer, print the same JSON keys).
#include <torch/cuda.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/text.h"
#include "config/config.h"
#include "dist/process_env.h"
#include "models/cpu_gemm.h"
#include "models/flops.h"
#include "models/registry.h"
#include "models/winograd_conv.h"
#include "train/device.h"
#include "train/optimizer.h"
#include "train/precision.h"

using namespace odyssey;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string model = "resnet18", precision = "fp32", device = "cpu", optimizer = "sgd";
  std::string cpu_gemm = "auto", cpu_conv = "auto", trace;
  int64_t image_size = 224, batch = 32, steps = 20, warmup = 5, channels = 3, classes = 1000;
  int64_t threads = 0;
  double peak_tflops = 0;
  bool channels_last = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      ODY_CHECK(i + 1 < argc, "bench_step: " + k + " needs a value", "");
      return argv[++i];
    };
    if (k == "--model") a.model = next();
    else if (k == "--precision") a.precision = next();
    else if (k == "--device") a.device = next();
    else if (k == "--optimizer") a.optimizer = next();
    else if (k == "--image-size") a.image_size = std::stoll(next());
    else if (k == "--batch") a.batch = std::stoll(next());
    else if (k == "--steps") a.steps = std::stoll(next());
    else if (k == "--warmup") a.warmup = std::stoll(next());
    else if (k == "--channels") a.channels = std::stoll(next());
    else if (k == "--classes") a.classes = std::stoll(next());
    else if (k == "--threads") a.threads = std::stoll(next());
    else if (k == "--peak-tflops") a.peak_tflops = std::stod(next());
    else if (k == "--channels-last") a.channels_last = true;
    else if (k == "--cpu-gemm") a.cpu_gemm = next();
    else if (k == "--cpu-conv") a.cpu_conv = next();
    else if (k == "--trace") a.trace = next();
    else ODY_FAIL("bench_step: unknown argument '" + k + "'", "see the comment at the top of bench_step_main.cpp");
  }
  return a;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

int run(const Args& a) {
  if (a.threads > 0) odyssey::set_thread_counts(static_cast<int>(a.threads));  // + OpenBLAS's pool
  set_cpu_gemm(resolve_cpu_gemm(a.cpu_gemm, "bench_step --cpu-gemm"));
  set_cpu_conv(a.cpu_conv, "bench_step --cpu-conv");
  const torch::Device device = resolve_device(a.device, 0, "bench_step --device");
  check_precision(a.precision, device, "bench_step --precision");
  const ModelOptions mo{a.classes, a.channels, a.image_size};
  const double flops_per_image = 6.0 * static_cast<double>(measure_model(a.model, mo).macs.total());
  torch::manual_seed(0);
  auto model = ModelRegistry::instance().create(a.model, mo);
  model->to(device);
  if (a.channels_last) to_channels_last(*model);
  model->train();
  NamedTensors params;
  for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  OptimConfig oc;
  oc.name = a.optimizer;
  oc.lr = 1e-3;
  oc.lr_scaling = "none";
  auto opt = make_optimizer(oc, params);
  auto x = memory_order(torch::randn({a.batch, a.channels, a.image_size, a.image_size}).to(device), a.channels_last);
  auto y = torch::randint(0, a.classes, {a.batch}, torch::kLong).to(device);
  // MFU counts the architecture's MACs (torchvision's, the peer's); what this forward executes
  // can be less (a ViT's last block computes the class token alone): both utilisations printed.
  double executed_flops_per_image = flops_per_image;
  {
    torch::NoGradGuard no_grad;
    model->eval();  // one image: no BatchNorm statistics of it, none updated
    MacCounter counter;
    model->forward(x.slice(0, 0, 1));
    executed_flops_per_image = 6.0 * static_cast<double>(counter.count().total());
  }
  model->train();
  torch::Tensor loss;
  auto step = [&] {
    opt->zero_grad();
    torch::Tensor logits;
    {
      AutocastScope autocast(a.precision, device);
      logits = model->forward(x);
    }
    loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), y);
    loss.backward();
    opt->step(oc.lr);
  };
  for (int64_t i = 0; i < a.warmup; ++i) step();
  sync(device);
  const auto t0 = Clock::now();
  {
    std::unique_ptr<torch::autograd::profiler::RecordProfile> trace;
    if (!a.trace.empty()) trace = std::make_unique<torch::autograd::profiler::RecordProfile>(a.trace);
    for (int64_t i = 0; i < a.steps; ++i) step();
    sync(device);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double ips = static_cast<double>(a.steps * a.batch) / s;
  const double tflops = ips * flops_per_image * 1e-12;
  const double mfu = a.peak_tflops > 0 ? tflops / a.peak_tflops : 0.0;
  const double executed_mfu = mfu * executed_flops_per_image / flops_per_image;
  std::string executed;
  if (a.peak_tflops > 0 && executed_flops_per_image < 0.999 * flops_per_image)
    executed = " (of the FLOPs executed: " + std::to_string(100 * executed_mfu).substr(0, 5) + " %)";
  std::printf("%s @%lld batch %lld %s %s%s%s: %.1f img/s, %.2f ms/step, %.1f TFLOP/s%s%s, loss %.3f\n",
              a.model.c_str(), static_cast<long long>(a.image_size), static_cast<long long>(a.batch),
              a.precision.c_str(), device.str().c_str(), a.channels_last ? " NHWC" : "",
              device.is_cpu() ? (", " + cpu_gemm_name(cpu_gemm()) + ", 3x3 convolutions: " + cpu_conv_name(cpu_conv_for(a.channels_last))).c_str() : "", ips, 1e3 * s / a.steps, tflops,
              a.peak_tflops > 0 ? (", MFU " + std::to_string(100 * mfu).substr(0, 5) + " %").c_str() : "",
              executed.c_str(), loss.item<double>());
  std::printf("{\"impl\": \"odyssey\", \"model\": \"%s\", \"image_size\": %lld, \"batch\": %lld, "
              "\"precision\": \"%s\", \"device\": \"%s\", \"channels_last\": %s, \"images_per_s\": %.2f, "
              "\"tflops\": %.3f, \"mfu\": %.4f, \"executed_mfu\": %.4f}\n",
              a.model.c_str(), static_cast<long long>(a.image_size), static_cast<long long>(a.batch),
              a.precision.c_str(), device.str().c_str(), a.channels_last ? "true" : "false", ips, tflops, mfu,
              executed_mfu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (odyssey::help_requested(argc, argv)) {
    std::puts("usage: build/bench_step --model M [--image-size S] [--batch B] [--precision fp32|bf16|fp16]\n"
              "  [--device cpu|cuda] [--optimizer sgd|adamw] [--steps N] [--warmup N] [--peak-tflops T]\n"
              "  [--channels-last] [--threads N] [--channels C] [--classes K] [--cpu-gemm G] [--cpu-conv C]\n"
              "  [--trace FILE]   (see the top of bench_step_main.cpp)");
    return 0;
  }
  odyssey::configure_allocator();  // as the trainer
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_step: %s\n", e.what());
    return 2;
  }
}
