#include "models/gelu.h"

#include "models/custom_node.h"
#include "models/gelu_kernels.h"
#include "models/record_op.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

torch::Tensor gelu_of(const torch::Tensor& x) {  // x contiguous
  auto out = torch::empty_like(x);
  gelu_forward(x.data_ptr<float>(), out.data_ptr<float>(), x.numel());
  return out;
}

struct Gelu : torch::autograd::Function<Gelu> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x) {
    ctx->save_for_backward({x});
    return gelu_of(x);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    first_derivative_only("odyssey::gelu", "train without double backward");
    const auto x = ctx->get_saved_variables()[0];
    const auto go = grads[0].contiguous();
    auto gx = torch::empty_like(x);
    gelu_backward(go.data_ptr<float>(), x.data_ptr<float>(), gx.data_ptr<float>(), x.numel());
    return {gx};
  }
};

}  // namespace

bool own_gelu_applies(const torch::Tensor& x) { return plain_cpu_float32(x) && x.numel() > 0; }

torch::Tensor gelu(const torch::Tensor& x) {
  if (!own_gelu_applies(x)) return torch::gelu(x);
  RecordedOp record("odyssey::gelu", [&] { return std::vector<c10::IValue>{x}; });
  const auto xc = x.contiguous();
  auto out = torch::GradMode::is_enabled() && x.requires_grad() ? Gelu::apply(xc) : gelu_of(xc);
  record.set_output(out);
  return out;
}

}  // namespace odyssey
