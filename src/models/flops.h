// MacCounter: the multiply-accumulates of the convolutions, linear layers and matrix products a
// forward pass really executes, counted from the operators LibTorch dispatches; measure_model: a
// registry model's parameters and batch-1 forward MACs, measured on the meta device.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/classifier.h"

namespace odyssey {

// MACs by operator kind: "conv"; "matmul" (linear layers and every matrix product; LibTorch's C++
// nn::Linear itself runs as addmm or matmul; Odyssey's oneDNN linear and self-attention nodes count
// as the products they replace); "attention" (LibTorch 2.x's fused attention).
struct MacCount {
  std::map<std::string, int64_t> by_kind;
  // The fewest values per channel and image a BatchNorm normalised (height x width of its
  // smallest map; 0 = no BatchNorm ran): a micro-batch of B images gives it B x this many.
  int64_t batch_norm_min_plane = 0;
  // The MACs backward would execute for these operators, counted in a forward with autograd on:
  // per operand that requires a gradient (a convolution's input or weight, either factor of a
  // matrix product, attention's q, k, v) the products of its gradient (0 under no-grad or
  // inference mode).
  int64_t backward = 0;
  int64_t total() const;
  double giga() const { return static_cast<double>(total()) * 1e-9; }
};

// While alive, counts the operators dispatched on this thread (an at::RecordFunction callback):
//   convolution (grouped, depthwise): output elements x input channels per group x kernel
//     elements; transposed: input elements x output channels per group x kernel elements
//   linear, matmul, mm, bmm, addmm, baddbmm, mv, addmv: output elements x contraction length
//   scaled_dot_product_attention (LibTorch 2.x): its two matrix products
//   odyssey::linear, odyssey::self_attention (models/linear.h, attention.h): as aten::linear and
//     as the two matrix products of the plain attention path
// Everything else (normalisation, activations, pooling, elementwise products, einsum) counts
// zero, as in torchvision's published GFLOPS; aten::batch_norm's input plane is noted. An operator running inside a counted one
// (aten::linear -> aten::addmm) is not counted again. One counter per thread at a time.
class MacCounter {
 public:
  MacCounter();
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;

  const MacCount& count() const { return count_; }

 private:
  MacCount count_;
  uint64_t handle_ = 0;
};

// MACs of one no-grad, eval-mode forward of a [1, channels, height, width] input (width 0: a
// square), made on the device of the model's parameters under a ReferenceForward
// (models/classifier.h): the architecture's count, torchvision's, though a ViT's training forward
// executes less. Leaves the model in eval mode.
MacCount count_forward_macs(Classifier& model, int64_t channels, int64_t height, int64_t width = 0);

// The share of the model's backward MACs left when the parameters named in `frozen` (as in
// named_parameters) get no gradient: backward MACs with them frozen / with every parameter
// trained, both for one [1, C, H, W] image that needs no gradient (eval mode, the reference
// forward). 1 when nothing is frozen; measured on the meta device (on the CPU where the meta
// device cannot run the model). The trainer's FLOPs per image are then 2 F + 4 F x this share
// (F: the forward MACs; 6 F with nothing frozen).
double backward_share(const std::string& name, const ModelOptions& options, int64_t height, int64_t width,
                      const std::vector<std::string>& frozen);

struct ModelCost {
  int64_t parameters = 0;
  MacCount macs;      // one image, eval mode
  bool meta = true;   // measured on the meta device (false: built and run on the CPU)
};

// A registry model's parameters and forward MACs for these options, built and run on the meta
// device (milliseconds); on the CPU where this LibTorch lacks a meta kernel the forward needs.
// The input is [1, C, height, width], by default the options' square: a model that cannot take
// it (a fixed-size classifier or position embedding, given non-square images) is an Error.
ModelCost measure_model(const std::string& name, const ModelOptions& options, int64_t height = 0,
                        int64_t width = 0);

}  // namespace odyssey
