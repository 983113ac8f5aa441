#include "models/linear.h"

#include "models/cpu_gemm.h"
#include "models/custom_node.h"
#include "models/record_op.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// y [m, n] = x [m, k] W^T (W [n, k]) + b; x and W contiguous; b may be undefined (no bias).
torch::Tensor forward_product(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  // The bias, then C = x W^T + C; or C = x W^T.
  auto y = b.defined() ? b.expand({m, n}).contiguous() : torch::empty({m, n}, x.options());
  onednn_sgemm(false, true, m, n, k, 1.0f, x.data_ptr<float>(), k, w.data_ptr<float>(), k,
               b.defined() ? 1.0f : 0.0f, y.data_ptr<float>(), n);
  return y;
}

// The gradients of y = x W^T (+ b) for the saved x [m, k] and W [n, k]: {gx, gW} and, with a
// bias, gb.
tensor_list product_backward(AutogradContext* ctx, const torch::Tensor& grad_y, bool bias) {
  first_derivative_only("odyssey::linear",
                        "train without double backward, or set train.cpu_gemm = \"libtorch\"");
  const auto saved = ctx->get_saved_variables();
  const auto &x = saved[0], &w = saved[1];
  const auto gy = grad_y.contiguous();
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  torch::Tensor gx, gw;
  if (ctx->needs_input_grad(0)) {  // gx [m, k] = gy [m, n] W [n, k]
    gx = torch::empty({m, k}, x.options());
    onednn_sgemm(false, false, m, k, n, 1.0f, gy.data_ptr<float>(), n, w.data_ptr<float>(), k,
                 0.0f, gx.data_ptr<float>(), k);
  }
  if (ctx->needs_input_grad(1)) {  // gW [n, k] = gy^T [n, m] x [m, k]
    gw = torch::empty({n, k}, w.options());
    onednn_sgemm(true, false, n, k, m, 1.0f, gy.data_ptr<float>(), n, x.data_ptr<float>(), k,
                 0.0f, gw.data_ptr<float>(), k);
  }
  if (!bias) return {gx, gw};
  return {gx, gw, ctx->needs_input_grad(2) ? gy.sum(0) : torch::Tensor()};
}

// x2 [m, k] contiguous, W [n, k], b [n]; returns [m, n]. (LibTorch 1.13's Function::apply takes
// no undefined tensor, hence a node without the bias.)
struct OneDnnLinear : torch::autograd::Function<OneDnnLinear> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x2, torch::Tensor w, torch::Tensor b) {
    ctx->save_for_backward({x2, w});
    return forward_product(x2, w, b);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    return product_backward(ctx, grads[0], /*bias=*/true);
  }
};
struct OneDnnLinearNoBias : torch::autograd::Function<OneDnnLinearNoBias> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x2, torch::Tensor w) {
    ctx->save_for_backward({x2, w});
    return forward_product(x2, w, {});
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    return product_backward(ctx, grads[0], /*bias=*/false);
  }
};

// y2 [m, n] from x2 [m, k] (any strides), w [n, k], b [n] or undefined: the node when gradients
// are wanted, else the product alone.
torch::Tensor onednn_product(const torch::Tensor& x2, const torch::Tensor& weight,
                             const torch::Tensor& bias) {
  const auto x = x2.contiguous();
  const auto w = weight.contiguous();
  const bool grad = torch::GradMode::is_enabled() &&
                    (x.requires_grad() || w.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (!grad) return forward_product(x, w, bias);
  return bias.defined() ? OneDnnLinear::apply(x, w, bias) : OneDnnLinearNoBias::apply(x, w);
}

std::vector<c10::IValue> ivalues(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (!b.defined()) return {x, w};
  return {x, w, b};
}

// What linear() and conv1x1 both need: oneDNN's products chosen, CPU float32 operands outside
// autocast, a 1-D bias or none, a non-empty input.
bool onednn_operands(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return cpu_gemm() == CpuGemm::kOneDnn && plain_cpu_float32(x) && plain_cpu_float32(weight) &&
         (!bias.defined() || (plain_cpu_float32(bias) && bias.dim() == 1)) && x.numel() > 0;
}

}  // namespace

bool onednn_linear_applies(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias) {
  return onednn_operands(x, weight, bias) && x.dim() >= 1 && weight.dim() == 2;
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!onednn_linear_applies(x, weight, bias)) return torch::linear(x, weight, bias);
  const int64_t k = x.size(-1), n = weight.size(0);
  TORCH_CHECK(weight.size(1) == k && (!bias.defined() || bias.size(0) == n), "linear: input [..., ",
              k, "] does not match weight ", weight.sizes(), " and bias ",
              bias.defined() ? bias.sizes() : torch::IntArrayRef{});
  RecordedOp record("odyssey::linear", [&] { return ivalues(x, weight, bias); });
  auto out_shape = x.sizes().vec();
  out_shape.back() = n;
  auto y = onednn_product(x.reshape({-1, k}), weight, bias).view(out_shape);
  record.set_output(y);
  return y;
}

bool conv1x1_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return onednn_operands(x, weight, bias) && x.dim() == 4 && weight.dim() == 4 &&
         weight.size(1) == x.size(1) && weight.size(2) == 1 && weight.size(3) == 1 &&
         weight.numel() > 0 && x.is_contiguous(torch::MemoryFormat::ChannelsLast);
}

torch::Tensor conv1x1(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!conv1x1_applies(x, weight, bias)) return torch::conv2d(x, weight, bias);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), k = weight.size(0);
  TORCH_CHECK(!bias.defined() || bias.size(0) == k, "conv1x1: bias ", bias.sizes(),
              " does not match weight ", weight.sizes());
  RecordedOp record("odyssey::conv2d_1x1", [&] { return ivalues(x, weight, bias); });
  // Channels-last [N, C, H, W] is [N*H*W, C] row-major: both views are free, as is the way back.
  auto y = onednn_product(x.permute({0, 2, 3, 1}).reshape({-1, c}), weight.reshape({k, c}), bias)
               .view({n, h, w, k})
               .permute({0, 3, 1, 2});
  record.set_output(y);
  return y;
}

}  // namespace odyssey
