#include "models/meta_model.h"

#include <ATen/ExpandUtils.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <mutex>

#include "models/registry.h"

namespace odyssey {

namespace {

c10::impl::LocalDispatchKeySet make_key_set(c10::DispatchKeySet included, c10::DispatchKeySet excluded) {
  c10::impl::PODLocalDispatchKeySet pod{};
  pod.set_included(included);
  pod.set_excluded(excluded);
  return pod;
}

// Meta kernels: the output shapes of the real kernels, no computation.
at::Tensor meta_convolution(const at::Tensor& input, const at::Tensor& weight,
                            const c10::optional<at::Tensor>& /*bias*/, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                            at::IntArrayRef output_padding, int64_t groups) {
  std::vector<int64_t> shape{input.size(0), transposed ? weight.size(1) * groups : weight.size(0)};
  for (int64_t d = 2; d < input.dim(); ++d) {
    const size_t i = static_cast<size_t>(d - 2);
    const int64_t span = dilation[i] * (weight.size(d) - 1);
    shape.push_back(transposed ? (input.size(d) - 1) * stride[i] - 2 * padding[i] + span + output_padding[i] + 1
                               : (input.size(d) + 2 * padding[i] - span - 1) / stride[i] + 1);
  }
  return at::empty(shape, input.options());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> meta_batch_norm(
    const at::Tensor& input, const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
    const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&, bool, double, double) {
  const int64_t channels = input.dim() > 1 ? input.size(1) : 1;
  return {at::empty_like(input), at::empty({channels}, input.options()),
          at::empty({channels}, input.options())};
}

at::Tensor meta_relu(const at::Tensor& self) { return at::empty_like(self); }
at::Tensor& meta_relu_(at::Tensor& self) { return self; }

// LibTorch 2.5+ computes where() through where.self_out, whose meta kernel lives only in PyTorch's
// Python (torch/_meta_registrations.py): without this, scaled_dot_product_attention's softmax
// (_safe_softmax) fails on meta tensors and every ViT is sized by building it on the CPU.
at::Tensor& meta_where_out(const at::Tensor& condition, const at::Tensor& self, const at::Tensor& other,
                           at::Tensor& out) {
  out.resize_(at::infer_size(at::infer_size(condition.sizes(), self.sizes()), other.sizes()));
  return out;
}

// Registers each kernel above for the meta device where this LibTorch has none (1.13 lacks the
// first four; a later LibTorch may have its own, which are kept).
void register_missing_meta_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto missing = [](const char* name, const char* overload = "") {
      auto op = c10::Dispatcher::singleton().findSchema({name, overload});
      return op && !op->hasKernelForDispatchKey(c10::DispatchKey::Meta);
    };
    // Kept for the life of the process (its destructor would deregister the kernels).
    auto* lib = new torch::Library(torch::Library::IMPL, "aten", c10::DispatchKey::Meta, __FILE__, __LINE__);
    if (missing("aten::convolution_overrideable"))
      lib->impl("convolution_overrideable", TORCH_FN(meta_convolution));
    if (missing("aten::native_batch_norm")) lib->impl("native_batch_norm", TORCH_FN(meta_batch_norm));
    if (missing("aten::relu")) lib->impl("relu", TORCH_FN(meta_relu));
    if (missing("aten::relu_")) lib->impl("relu_", TORCH_FN(meta_relu_));
    if (missing("aten::where", "self_out")) lib->impl("where.self_out", TORCH_FN(meta_where_out));
  });
}

}  // namespace

// Factory functions dispatch on the thread's included keys once BackendSelect (which would pick
// the CPU from the default options) is excluded. The saved key sets are restored whole:
// IncludeDispatchKeyGuard cannot be used, as removing a key from a DispatchKeySet keeps its
// backend bit (LibTorch 1.13), which would send every later CPU operator to the meta kernels.
MetaTensorsGuard::MetaTensorsGuard() {
  auto now = c10::impl::tls_local_dispatch_key_set();
  saved_included_ = now.included_.raw_repr();  // (not a const member in LibTorch 1.13)
  saved_excluded_ = now.excluded_.raw_repr();
  c10::impl::_force_tls_local_dispatch_key_set(
      make_key_set(now.included_ | c10::DispatchKeySet(c10::DispatchKey::Meta),
                   now.excluded_ | c10::DispatchKeySet(c10::DispatchKey::BackendSelect)));
}

MetaTensorsGuard::~MetaTensorsGuard() {
  c10::impl::_force_tls_local_dispatch_key_set(
      make_key_set(c10::DispatchKeySet(c10::DispatchKeySet::RAW, saved_included_),
                   c10::DispatchKeySet(c10::DispatchKeySet::RAW, saved_excluded_)));
}

std::shared_ptr<Classifier> create_meta_model(const std::string& name, const ModelOptions& options) {
  const auto& entry = ModelRegistry::instance().find(name);
  try {
    register_missing_meta_kernels();
    MetaTensorsGuard guard;
    torch::NoGradGuard no_grad;
    return entry.create(options);
  } catch (const c10::Error&) {
    // An initialiser this LibTorch cannot run on the meta device: build the real model.
  }
  return entry.create(options);
}

}  // namespace odyssey
