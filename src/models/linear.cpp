#include "models/linear.h"

#include "models/cpu_gemm.h"
#include "models/custom_node.h"
#include "models/record_op.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// y [m, n] = x [m, k] W^T (W [n, k]) + b; x and W contiguous.
torch::Tensor forward_product(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  auto y = b.expand({m, n}).contiguous();  // the bias, then C = x W^T + C
  onednn_sgemm(false, true, m, n, k, 1.0f, x.data_ptr<float>(), k, w.data_ptr<float>(), k, 1.0f,
               y.data_ptr<float>(), n);
  return y;
}

struct OneDnnLinear : torch::autograd::Function<OneDnnLinear> {
  // x2 [m, k] contiguous; returns [m, n].
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x2, torch::Tensor w, torch::Tensor b) {
    ctx->save_for_backward({x2, w});
    return forward_product(x2, w, b);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    first_derivative_only("odyssey::linear",
                          "train without double backward, or set train.cpu_gemm = \"libtorch\"");
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    const auto gy = grads[0].contiguous();
    const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
    torch::Tensor gx, gw, gb;
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
    if (ctx->needs_input_grad(2)) gb = gy.sum(0);
    return {gx, gw, gb};
  }
};

}  // namespace

bool onednn_linear_applies(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias) {
  return cpu_gemm() == CpuGemm::kOneDnn && plain_cpu_float32(x) && plain_cpu_float32(weight) &&
         plain_cpu_float32(bias) && x.dim() >= 1 && weight.dim() == 2 && bias.dim() == 1 &&
         x.numel() > 0;
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!onednn_linear_applies(x, weight, bias)) return torch::linear(x, weight, bias);
  const int64_t k = x.size(-1), n = weight.size(0);
  TORCH_CHECK(weight.size(1) == k && bias.size(0) == n, "linear: input [..., ", k,
              "] does not match weight ", weight.sizes(), " and bias ", bias.sizes());
  RecordedOp record("odyssey::linear", [&] { return std::vector<c10::IValue>{x, weight, bias}; });
  auto out_shape = x.sizes().vec();
  out_shape.back() = n;
  auto x2 = x.reshape({-1, k}).contiguous();
  const auto w = weight.contiguous();
  const bool grad = torch::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || bias.requires_grad());
  auto y = grad ? OneDnnLinear::apply(x2, w, bias) : forward_product(x2, w, bias);
  y = y.view(out_shape);
  record.set_output(y);
  return y;
}

}  // namespace odyssey
