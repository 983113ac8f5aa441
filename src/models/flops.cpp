#include "models/flops.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "models/meta_model.h"
#include "models/registry.h"

namespace odyssey {

namespace {

enum class Rule { conv, matmul, attention };

struct OpRule {
  const char* kind;
  Rule rule;
  size_t operand;  // matmul: the input whose last dimension is the contraction
};

const std::unordered_map<std::string, OpRule>& op_rules() {
  static const std::unordered_map<std::string, OpRule> rules = {
      {"aten::conv1d", {"conv", Rule::conv, 0}},
      {"aten::conv2d", {"conv", Rule::conv, 0}},
      {"aten::conv3d", {"conv", Rule::conv, 0}},
      {"aten::conv_transpose1d", {"conv", Rule::conv, 0}},
      {"aten::conv_transpose2d", {"conv", Rule::conv, 0}},
      {"aten::conv_transpose3d", {"conv", Rule::conv, 0}},
      {"aten::convolution", {"conv", Rule::conv, 0}},
      {"aten::_convolution", {"conv", Rule::conv, 0}},
      {"aten::linear", {"matmul", Rule::matmul, 0}},
      {"aten::matmul", {"matmul", Rule::matmul, 0}},
      {"aten::mm", {"matmul", Rule::matmul, 0}},
      {"aten::bmm", {"matmul", Rule::matmul, 0}},
      {"aten::mv", {"matmul", Rule::matmul, 0}},
      {"aten::addmm", {"matmul", Rule::matmul, 1}},
      {"aten::baddbmm", {"matmul", Rule::matmul, 1}},
      {"aten::addmv", {"matmul", Rule::matmul, 1}},
      {"aten::scaled_dot_product_attention", {"attention", Rule::attention, 0}},
      // Odyssey's own (models/linear.h, models/attention.h, models/winograd_conv.h): the
      // products of the plain path.
      {"odyssey::linear", {"matmul", Rule::matmul, 0}},
      {"odyssey::self_attention", {"matmul", Rule::attention, 0}},
      {"odyssey::conv2d_winograd", {"conv", Rule::conv, 0}},  // counted as the direct convolution
      {"odyssey::conv2d_1x1", {"conv", Rule::conv, 0}},
  };
  return rules;
}

// The counter of this thread, and whether a counted operator is running (its inner operators
// are part of it).
thread_local MacCount* t_count = nullptr;
thread_local bool t_inside = false;

struct OpContext : at::ObserverContext {
  const OpRule* rule = nullptr;
  std::vector<std::vector<int64_t>> shapes;  // of the tensor inputs, in order ({} for others)
  std::vector<bool> needs_grad;              // of the tensor inputs, in order
  bool transposed = false;
};

int64_t product(const std::vector<int64_t>& v, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < v.size(); ++i) p *= v[i];
  return p;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (!t_count || t_inside) return nullptr;
  if (fn.name() == std::string("aten::batch_norm")) {
    const auto inputs = fn.inputs();
    if (!inputs.empty() && inputs[0].isTensor() && inputs[0].toTensor().dim() >= 3) {
      const auto sizes = inputs[0].toTensor().sizes().vec();
      const int64_t plane = product(sizes, 2);
      int64_t& min_plane = t_count->batch_norm_min_plane;
      min_plane = min_plane == 0 ? plane : std::min(min_plane, plane);
    }
    return nullptr;
  }
  auto it = op_rules().find(fn.name());
  if (it == op_rules().end()) return nullptr;
  auto ctx = std::make_unique<OpContext>();
  ctx->rule = &it->second;
  const auto inputs = fn.inputs();
  const bool grad = at::GradMode::is_enabled();  // no backward under no-grad or inference mode
  for (const auto& v : inputs) {
    ctx->shapes.push_back(v.isTensor() ? v.toTensor().sizes().vec() : std::vector<int64_t>{});
    ctx->needs_grad.push_back(grad && v.isTensor() && v.toTensor().requires_grad());
  }
  const std::string name = fn.name();
  ctx->transposed = name.rfind("aten::conv_transpose", 0) == 0 ||
                    ((name == "aten::convolution" || name == "aten::_convolution") &&
                     inputs.size() > 6 && inputs[6].isBool() && inputs[6].toBool());
  t_inside = true;
  return ctx;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* raw) {
  if (!raw) return;
  t_inside = false;
  const auto* ctx = static_cast<const OpContext*>(raw);
  const auto& outputs = fn.outputs();
  if (!t_count || outputs.empty() || !outputs[0].isTensor()) return;
  const int64_t out = outputs[0].toTensor().numel();
  const auto& s = ctx->shapes;
  // Whether input i needs a gradient: each such operand of a product costs the product again.
  auto needs = [&](size_t i) -> int64_t { return i < ctx->needs_grad.size() && ctx->needs_grad[i] ? 1 : 0; };
  int64_t macs = 0, backward = 0;
  switch (ctx->rule->rule) {
    case Rule::conv:  // weight [out, in / groups, k...] (transposed: [in, out / groups, k...])
      if (s.size() > 1 && s[1].size() > 2)
        macs = (ctx->transposed ? product(s[0]) : out) * product(s[1], 1);
      backward = macs * (needs(0) + needs(1));
      break;
    case Rule::matmul: {  // operand, operand + 1: the two factors (addmm's bias comes first)
      const size_t a = ctx->rule->operand;
      if (s.size() > a && !s[a].empty()) macs = out * s[a].back();
      backward = macs * (needs(a) + needs(a + 1));
      break;
    }
    case Rule::attention:  // q [..., L, E], k [..., S, E], v [..., S, Ev]: QK^T and AV
      if (s.size() > 2 && s[0].size() >= 2 && s[1].size() >= 2 && !s[2].empty()) {
        const int64_t rows = product(s[0]) / s[0].back(), keys = s[1][s[1].size() - 2];
        macs = rows * keys * (s[0].back() + s[2].back());
        // dQ and dK from the scores' gradient, which (with dV) comes from AV's.
        const int64_t qk = needs(0) + needs(1), scores = qk > 0 ? 1 : 0;
        backward = rows * keys * (s[0].back() * qk + s[2].back() * (scores + needs(2)));
      }
      break;
  }
  t_count->by_kind[ctx->rule->kind] += macs;
  t_count->backward += backward;
}

}  // namespace

int64_t MacCount::total() const {
  int64_t n = 0;
  for (const auto& [kind, macs] : by_kind) n += macs;
  return n;
}

MacCounter::MacCounter() {
  ODY_CHECK(t_count == nullptr, "a MacCounter is already counting on this thread", "");
  t_count = &count_;
  t_inside = false;
  handle_ = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&on_start, &on_end).needsInputs(true).needsOutputs(true));
}

MacCounter::~MacCounter() {
  at::removeCallback(handle_);
  t_count = nullptr;
  t_inside = false;
}

namespace {

// MACs of one eval-mode reference forward of a [1, channels, height, width] zero image on the
// device of the model's parameters: in inference mode, or with autograd on (the backward's
// products counted too, MacCount::backward).
MacCount count_macs(Classifier& model, int64_t channels, int64_t height, int64_t width, bool autograd) {
  const auto params = model.parameters();
  const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  model.eval();
  std::optional<c10::InferenceMode> inference;
  if (!autograd) inference.emplace();
  auto x = torch::zeros({1, channels, height, width}, torch::TensorOptions().device(device));
  ReferenceForward architecture;  // all the reference computes (models/classifier.h)
  MacCounter counter;
  model.forward(x);
  return counter.count();
}

}  // namespace

MacCount count_forward_macs(Classifier& model, int64_t channels, int64_t height, int64_t width) {
  return count_macs(model, channels, height, width > 0 ? width : height, /*autograd=*/false);
}

namespace {

// Backward MACs of a grad-enabled forward of one image, with the parameters named in `frozen`
// needing no gradient (every other one needing it).
int64_t backward_macs(Classifier& model, const ModelOptions& options, int64_t height, int64_t width,
                      const std::vector<std::string>& frozen) {
  const std::set<std::string> names(frozen.begin(), frozen.end());
  for (auto& p : model.named_parameters()) p.value().set_requires_grad(names.count(p.key()) == 0);
  return count_macs(model, options.in_channels, height, width, /*autograd=*/true).backward;
}

double share(Classifier& model, const ModelOptions& options, int64_t height, int64_t width,
             const std::vector<std::string>& frozen) {
  const int64_t full = backward_macs(model, options, height, width, {});
  const int64_t left = backward_macs(model, options, height, width, frozen);
  return full > 0 ? static_cast<double>(left) / static_cast<double>(full) : 1.0;
}

}  // namespace

double backward_share(const std::string& name, const ModelOptions& options, int64_t height, int64_t width,
                      const std::vector<std::string>& frozen) {
  if (frozen.empty()) return 1.0;
  if (height <= 0) height = options.image_size;
  if (width <= 0) width = options.image_size;
  try {
    auto model = create_meta_model(name, options);
    return share(*model, options, height, width, frozen);
  } catch (const c10::Error&) {  // no meta kernel for an operator: the real model
  }
  auto model = ModelRegistry::instance().create(name, options);
  return share(*model, options, height, width, frozen);
}

ModelCost measure_model(const std::string& name, const ModelOptions& options, int64_t height,
                        int64_t width) {
  if (height <= 0) height = options.image_size;
  if (width <= 0) width = options.image_size;
  ModelCost cost;
  try {
    auto model = create_meta_model(name, options);
    cost.parameters = count_parameters(*model);
    cost.macs = count_forward_macs(*model, options.in_channels, height, width);
    const auto params = model->parameters();
    cost.meta = !params.empty() && params.front().is_meta();
    return cost;
  } catch (const c10::Error&) {
    // An operator without a meta kernel in this LibTorch, or an input the model cannot take:
    // the real model tells which.
  }
  auto model = ModelRegistry::instance().create(name, options);
  cost.parameters = count_parameters(*model);
  try {
    cost.macs = count_forward_macs(*model, options.in_channels, height, width);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    ODY_FAIL(ODY_MSG("model " << name << ", built for " << options.image_size << "x"
                              << options.image_size << " px, cannot take a " << height << "x" << width
                              << " input: " << what.substr(0, what.find('\n'))),
             "set augment.image_size to train and evaluate on squares of that side");
  }
  cost.meta = false;
  return cost;
}

}  // namespace odyssey
