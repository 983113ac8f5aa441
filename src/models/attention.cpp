#include "models/attention.h"

#include <torch/version.h>

#include <cmath>

#include "models/cpu_gemm.h"
#include "models/custom_node.h"
#include "models/parallel_tasks.h"
#include "models/record_op.h"
#include "models/softmax_kernels.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Where head h of image b lives: rows of T elements apart by the stride of its tensor.
struct Geometry {
  int64_t batch, tokens, dim, heads, head_dim;
  int64_t qkv_row() const { return 3 * dim; }
  // q (part 0), k (1) or v (2) of (b, h) in a [B, T, 3D] tensor.
  int64_t qkv_offset(int64_t b, int64_t h, int64_t part) const {
    return b * tokens * 3 * dim + part * dim + h * head_dim;
  }
  int64_t out_offset(int64_t b, int64_t h) const { return b * tokens * dim + h * head_dim; }
  int64_t scores_offset(int64_t b, int64_t h) const { return (b * heads + h) * tokens * tokens; }
  float scale() const { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim))); }
};

Geometry geometry(const torch::Tensor& qkv, int64_t heads) {
  const int64_t dim = qkv.size(2) / 3;
  return {qkv.size(0), qkv.size(1), dim, heads, dim / heads};
}

// The (b, h) pairs one after another: with one CPU thread per rank (the trainer's default for
// several ranks per node) there is nothing to share, and dnnl_sgemm threads each product itself.
template <class F>
void for_each_head(const Geometry& g, F f) {
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t h = 0; h < g.heads; ++h) f(b, h);
}

// f(r0, r1) over the B x H x T rows of the scores [B, H, T, T].
template <class F>
void over_score_rows(const Geometry& g, F f) {
  parallel_tasks(g.batch * g.heads * g.tokens, g.tokens, f);
}

// Forward: the output [B, T, D] and the attention probabilities P [B, H, T, T] backward needs.
std::pair<torch::Tensor, torch::Tensor> attention_forward(const torch::Tensor& qkv, int64_t heads) {
  const Geometry g = geometry(qkv, heads);
  const int64_t t = g.tokens, ld = g.qkv_row(), hd = g.head_dim;
  const float scale = g.scale();
  auto scores = torch::empty({g.batch, heads, t, t}, qkv.options());
  auto out = torch::empty({g.batch, t, g.dim}, qkv.options());
  const float* in = qkv.data_ptr<float>();
  float* s = scores.data_ptr<float>();
  for_each_head(g, [&](int64_t b, int64_t h) {  // S = Q K^T / sqrt(hd)
    onednn_sgemm(false, true, t, t, hd, scale, in + g.qkv_offset(b, h, 0), ld,
                 in + g.qkv_offset(b, h, 1), ld, 0.0f, s + g.scores_offset(b, h), t);
  });
  over_score_rows(g, [&](int64_t r0, int64_t r1) { softmax_rows(s, t, r0, r1); });
  const auto& p = scores;  // now the probabilities
  const float* pp = p.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for_each_head(g, [&](int64_t b, int64_t h) {  // O = P V, written into the heads' columns
    onednn_sgemm(false, false, t, hd, t, 1.0f, pp + g.scores_offset(b, h), t,
                 in + g.qkv_offset(b, h, 2), ld, 0.0f, o + g.out_offset(b, h), g.dim);
  });
  return {out, p};
}

struct OneDnnSelfAttention : torch::autograd::Function<OneDnnSelfAttention> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor qkv, int64_t heads) {
    auto [out, p] = attention_forward(qkv, heads);
    ctx->save_for_backward({qkv, p});
    ctx->saved_data["heads"] = heads;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    // No alternative to suggest: the ViT's LayerNorm and GELU kernels on the CPU have first
    // derivatives only too, whatever train.cpu_gemm says.
    first_derivative_only("odyssey::self_attention", "train without double backward");
    const auto saved = ctx->get_saved_variables();
    const auto &qkv = saved[0], &p = saved[1];
    const Geometry g = geometry(qkv, ctx->saved_data["heads"].toInt());
    const int64_t t = g.tokens, ld = g.qkv_row(), hd = g.head_dim;
    const float scale = g.scale();
    const auto go = grads[0].contiguous();
    auto gp = torch::empty_like(p);
    auto gqkv = torch::empty_like(qkv);  // every element is written below
    const float *in = qkv.data_ptr<float>(), *pp = p.data_ptr<float>(), *gop = go.data_ptr<float>();
    float *gpp = gp.data_ptr<float>(), *gin = gqkv.data_ptr<float>();
    for_each_head(g, [&](int64_t b, int64_t h) {
      const float* v = in + g.qkv_offset(b, h, 2);
      const float* gob = gop + g.out_offset(b, h);
      // dP = dO V^T; dV = P^T dO
      onednn_sgemm(false, true, t, t, hd, 1.0f, gob, g.dim, v, ld, 0.0f, gpp + g.scores_offset(b, h), t);
      onednn_sgemm(true, false, t, hd, t, 1.0f, pp + g.scores_offset(b, h), t, gob, g.dim, 0.0f,
                   gin + g.qkv_offset(b, h, 2), ld);
    });
    over_score_rows(g, [&](int64_t r0, int64_t r1) { softmax_backward_rows(gpp, pp, t, r0, r1); });
    const float* gsp = gpp;  // now the gradient of the scores
    for_each_head(g, [&](int64_t b, int64_t h) {
      const float* gsb = gsp + g.scores_offset(b, h);
      // dQ = dS K / sqrt(hd); dK = dS^T Q / sqrt(hd)
      onednn_sgemm(false, false, t, hd, t, scale, gsb, t, in + g.qkv_offset(b, h, 1), ld, 0.0f,
                   gin + g.qkv_offset(b, h, 0), ld);
      onednn_sgemm(true, false, t, hd, t, scale, gsb, t, in + g.qkv_offset(b, h, 0), ld, 0.0f,
                   gin + g.qkv_offset(b, h, 1), ld);
    });
    return {gqkv, torch::Tensor()};
  }
};

torch::Tensor plain_attention(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), d = qkv.size(2) / 3, hd = d / heads;
  auto parts = qkv.view({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  auto q = parts[0], k = parts[1], v = parts[2];  // [B, H, T, hd]
#if TORCH_VERSION_MAJOR >= 2
  auto o = at::scaled_dot_product_attention(q, k, v);
#else
  auto attn = torch::matmul(q, k.transpose(-2, -1)).mul_(1.0 / std::sqrt(static_cast<double>(hd)));
  auto o = torch::matmul(attn.softmax(-1), v);
#endif
  return o.transpose(1, 2).reshape({b, t, d});
}

}  // namespace

torch::Tensor single_query_attention(const torch::Tensor& q, const torch::Tensor& kv, int64_t heads) {
  TORCH_CHECK(q.dim() == 3 && q.size(1) == 1 && q.size(2) % heads == 0 && kv.dim() == 3 &&
                  kv.size(0) == q.size(0) && kv.size(2) == 2 * q.size(2),
              "single_query_attention: q ", q.sizes(), " and kv ", kv.sizes(),
              " are not [B, 1, D] and [B, T, 2D] for ", heads, " heads");
  const int64_t b = kv.size(0), t = kv.size(1), d = q.size(2), hd = d / heads;
  auto qh = q.reshape({b, 1, heads, hd}).transpose(1, 2);                 // [B, H, 1, hd]
  auto parts = kv.reshape({b, t, 2, heads, hd}).permute({2, 0, 3, 1, 4});  // k, v [B, H, T, hd]
#if TORCH_VERSION_MAJOR >= 2
  auto o = at::scaled_dot_product_attention(qh, parts[0], parts[1]);
#else
  auto s = torch::matmul(qh, parts[0].transpose(-2, -1)).mul_(1.0 / std::sqrt(static_cast<double>(hd)));
  auto o = torch::matmul(s.softmax(-1), parts[1]);
#endif
  return o.transpose(1, 2).reshape({b, 1, d});
}

bool onednn_attention_applies(const torch::Tensor& qkv) {
#if TORCH_VERSION_MAJOR >= 2
  return false;  // LibTorch's fused scaled_dot_product_attention
#else
  return cpu_gemm() == CpuGemm::kOneDnn && plain_cpu_float32(qkv) && qkv.dim() == 3 &&
         qkv.size(2) % 3 == 0 && qkv.numel() > 0;
#endif
}

torch::Tensor self_attention_core(const torch::Tensor& qkv, int64_t heads) {
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0, "self_attention_core: qkv ",
              qkv.sizes(), " is not [B, T, 3 x heads x head_dim] for ", heads, " heads");
  if (!onednn_attention_applies(qkv)) return plain_attention(qkv, heads);
  RecordedOp record("odyssey::self_attention", [&] {  // q, k, v [B, H, T, hd], as LibTorch 2.x's
    const int64_t b = qkv.size(0), t = qkv.size(1), d = qkv.size(2) / 3;
    auto parts = qkv.reshape({b, t, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
    return std::vector<c10::IValue>{parts[0], parts[1], parts[2]};
  });
  const auto x = qkv.contiguous();
  auto out = torch::GradMode::is_enabled() && x.requires_grad()
                 ? OneDnnSelfAttention::apply(x, heads)
                 : attention_forward(x, heads).first;  // the same arithmetic, nothing saved
  record.set_output(out);
  return out;
}

}  // namespace odyssey
