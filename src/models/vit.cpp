#include "models/vit.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"
#include "models/attention.h"
#include "models/batch_norm.h"
#include "models/gelu.h"
#include "models/layer_norm.h"
#include "models/linear.h"
#include "models/registry.h"
#include "models/stack.h"

namespace odyssey {

namespace nn = torch::nn;

namespace {

// torchvision's nn.MultiheadAttention parameters: in_proj_weight [3D, D] (q, k, v stacked),
// in_proj_bias, out_proj.
struct SelfAttentionImpl : nn::Module {
  SelfAttentionImpl(int64_t dim, int64_t heads) : heads(heads) {
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * dim, dim}));
    in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * dim}));
    out_proj = register_module("out_proj", nn::Linear(dim, dim));
    nn::init::xavier_uniform_(in_proj_weight);
    torch::NoGradGuard g;
    out_proj->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto qkv = linear(x, in_proj_weight, in_proj_bias);  // [B, T, 3D]
    return linear(self_attention_core(qkv, heads), out_proj);
  }
  // The class token's output alone, [B, 1, D], from every token's x [B, T, D]: its query
  // against every token's key and value (in_proj's rows 0..D-1 are q's, D..3D-1 k's and v's).
  torch::Tensor forward_class_token(const torch::Tensor& x) {
    const int64_t d = x.size(2);
    auto q = linear(x.narrow(1, 0, 1), in_proj_weight.narrow(0, 0, d), in_proj_bias.narrow(0, 0, d));
    auto kv = linear(x, in_proj_weight.narrow(0, d, 2 * d), in_proj_bias.narrow(0, d, 2 * d));
    return linear(single_query_attention(q, kv, heads), out_proj);
  }
  int64_t heads;
  torch::Tensor in_proj_weight, in_proj_bias;
  nn::Linear out_proj{nullptr};
};
TORCH_MODULE(SelfAttention);

nn::LayerNorm make_layer_norm(int64_t d) { return nn::LayerNorm(nn::LayerNormOptions({d}).eps(1e-6)); }

// Pre-LN block: x += attn(ln_1(x)); x += mlp(ln_2(x)); mlp = Linear(.0), GELU(.1), Dropout(.2),
// Linear(.3), Dropout(.4) as torchvision's MLPBlock.
struct EncoderBlockImpl : nn::Module {
  EncoderBlockImpl(int64_t d, int64_t heads, int64_t mlp_dim, double dropout, double drop_path)
      : drop_path(drop_path), dropout(dropout) {
    ln_1 = register_module("ln_1", make_layer_norm(d));
    self_attention = register_module("self_attention", SelfAttention(d, heads));
    ln_2 = register_module("ln_2", make_layer_norm(d));
    fc1 = nn::Linear(d, mlp_dim);
    fc2 = nn::Linear(mlp_dim, d);
    mlp = register_module("mlp", nn::Sequential(fc1, nn::GELU(), nn::Dropout(dropout), fc2, nn::Dropout(dropout)));
    torch::NoGradGuard g;
    for (auto* lin : {fc1.get(), fc2.get()}) {
      nn::init::xavier_uniform_(lin->weight);
      lin->bias.normal_(0, 1e-6);
    }
  }
  torch::Tensor mlp_forward(const torch::Tensor& x) {  // mlp's layers in order
    auto h = torch::dropout(odyssey::gelu(linear(x, fc1)), dropout, is_training());
    return torch::dropout(linear(h, fc2), dropout, is_training());
  }
  torch::Tensor branch(torch::Tensor y) {
    if (!is_training() || drop_path <= 0) return y;
    const double survival = 1.0 - drop_path;
    auto noise = torch::empty({y.size(0), 1, 1}, y.options()).bernoulli_(survival);
    return y * noise.div_(survival);
  }
  torch::Tensor forward(torch::Tensor x) {
    auto a = torch::dropout(self_attention->forward(layer_norm(x, ln_1)), dropout, is_training());
    x = x + branch(a);
    return x + branch(mlp_forward(layer_norm(x, ln_2)));
  }
  // forward(x)[:, :1] without the other tokens' rows: LayerNorm, the MLP, the projections and the
  // residuals act on each token alone, and attention needs only the class token's query.
  torch::Tensor forward_class_token(const torch::Tensor& x) {
    auto a = torch::dropout(self_attention->forward_class_token(layer_norm(x, ln_1)), dropout, is_training());
    auto c = x.narrow(1, 0, 1) + branch(a);
    return c + branch(mlp_forward(layer_norm(c, ln_2)));
  }
  double drop_path, dropout;
  nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  SelfAttention self_attention{nullptr};
  nn::Sequential mlp{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(EncoderBlock);

// encoder.pos_embedding, encoder.layers.encoder_layer_<i>, encoder.ln.
struct EncoderImpl : nn::Module {
  EncoderImpl(const VitSpec& s, int64_t seq_len) : dropout(s.dropout) {
    pos_embedding = register_parameter("pos_embedding", torch::empty({1, seq_len, s.hidden}).normal_(0, 0.02));
    layers = register_module("layers", std::make_shared<nn::Module>());
    for (int64_t i = 0; i < s.depth; ++i) {  // DeiT: drop path linspace(0, rate, depth)
      const double dp = s.depth > 1 ? s.stochastic_depth * i / (s.depth - 1) : s.stochastic_depth;
      blocks.push_back(layers->register_module("encoder_layer_" + std::to_string(i),
                                               EncoderBlock(s.hidden, s.heads, s.mlp, s.dropout, dp)));
    }
    ln = register_module("ln", make_layer_norm(s.hidden));
  }
  // [B, 1, D]: the class token alone, what the classifier reads. The last block computes no
  // other token (their outputs would reach neither the loss nor the features): ViT-B/16 at 224 px
  // 16.35 GMACs against torchvision's 17.56, a ViT-Ti of depth 6 on 50 tokens 14 % less. Under a
  // ReferenceForward (models/classifier.h) every token, as torchvision: [B, T, D].
  torch::Tensor forward(torch::Tensor x) {
    x = torch::dropout(x + pos_embedding, dropout, is_training());
    const bool every_token = ReferenceForward::active();
    for (size_t i = 0; i < blocks.size(); ++i)
      x = i + 1 < blocks.size() || every_token ? blocks[i]->forward(x) : blocks[i]->forward_class_token(x);
    return layer_norm(x, ln);
  }
  double dropout;
  torch::Tensor pos_embedding;
  std::shared_ptr<nn::Module> layers;
  std::vector<EncoderBlock> blocks;
  nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(Encoder);

}  // namespace

VisionTransformer::VisionTransformer(const VitSpec& spec, const ModelOptions& o) : spec_(spec) {
  spec_.dropout = option_or(o.dropout, spec.dropout);
  spec_.stochastic_depth = option_or(o.stochastic_depth, spec.stochastic_depth);
  ODY_CHECK(o.image_size % spec.patch == 0,
            ODY_MSG("image size " << o.image_size << " is not a multiple of the ViT patch size "
                                  << spec.patch),
            "pick a model whose patch divides the image size");
  const int64_t side = o.image_size / spec.patch;
  nn::Conv2d stem_last{nullptr};
  if (spec.stem.empty()) {
    patchify_ = register_module(
        "conv_proj", nn::Conv2d(nn::Conv2dOptions(o.in_channels, spec.hidden, spec.patch).stride(spec.patch)));
  } else {  // conv_proj.conv_bn_relu_<i>.{0 conv, 1 BatchNorm, 2 ReLU}, conv_proj.conv_last
    int64_t stride = 1, in = o.in_channels;
    auto seq = nn::Sequential();
    for (size_t i = 0; i < spec.stem.size(); ++i) {
      const auto& l = spec.stem[i];
      Stack layer;
      layer->push_back(nn::Conv2d(nn::Conv2dOptions(in, l.channels, l.kernel)
                                      .stride(l.stride).padding((l.kernel - 1) / 2).bias(false)));
      layer->push_back(BatchNorm2d(l.channels));
      layer->push_back(nn::ReLU());
      seq->push_back("conv_bn_relu_" + std::to_string(i), layer);
      in = l.channels;
      stride *= l.stride;
    }
    ODY_CHECK(stride == spec.patch, ODY_MSG("ViT stem strides multiply to " << stride << ", not the patch "
                                                                          << spec.patch), "");
    stem_last = nn::Conv2d(nn::Conv2dOptions(in, spec.hidden, 1));
    seq->push_back("conv_last", stem_last);
    stem_ = register_module("conv_proj", seq);
  }
  class_token_ = register_parameter("class_token", torch::zeros({1, 1, spec.hidden}));
  auto encoder = Encoder(spec_, side * side + 1);
  encoder_ = register_module("encoder", encoder.ptr());
  heads_ = register_module("heads", nn::Sequential());
  heads_->push_back("head", nn::Linear(spec.hidden, o.num_classes));
  torch::NoGradGuard g;
  const double fan_in = static_cast<double>(o.in_channels * spec.patch * spec.patch);
  // torchvision: trunc_normal_(std = sqrt(1 / fan_in), a = -2, b = 2). LibTorch 1.13 has no
  // trunc_normal_; at these small std the bounds (+-2, absolute) are beyond 50 sigma.
  if (patchify_) {
    patchify_->weight.normal_(0.0, std::sqrt(1.0 / fan_in)).clamp_(-2.0, 2.0);
    patchify_->bias.zero_();
  } else {  // torchvision: the stem's Conv-BN layers keep PyTorch's defaults; conv_last as below
    stem_last->weight.normal_(0.0, std::sqrt(2.0 / static_cast<double>(spec.hidden)));
    stem_last->bias.zero_();
  }
  auto* head = heads_[0]->as<nn::Linear>();
  head->weight.zero_();
  head->bias.zero_();
}

torch::Tensor VisionTransformer::features(torch::Tensor x) {
  const int64_t b = x.size(0);
  x = (patchify_ ? patchify_->forward(x) : stem_->forward(x)).flatten(2).transpose(1, 2);  // [B, tokens, D]
  x = torch::cat({class_token_.expand({b, -1, -1}), x}, 1);
  x = std::static_pointer_cast<EncoderImpl>(encoder_)->forward(x);
  return x.select(1, 0);
}

torch::Tensor VisionTransformer::forward(torch::Tensor x) {
  const auto* head = heads_[0]->as<nn::Linear>();
  return linear(features(x), head->weight, head->bias);
}

void register_vits(ModelRegistry& r) {
  struct Variant {
    const char* name;
    const char* doc;
    int64_t resolution;
    VitSpec spec;
  };
  auto dims = [](int64_t patch, int64_t hidden, int64_t depth, int64_t heads, int64_t mlp,
                 std::vector<VitSpec::StemLayer> stem = {}) {
    VitSpec s;
    s.patch = patch, s.hidden = hidden, s.depth = depth, s.heads = heads, s.mlp = mlp;
    s.stem = std::move(stem);
    return s;
  };
  const Variant variants[] = {
      {"vit_ti16", "ViT-Ti/16 (DeiT-Ti dims, torchvision layout)", 224, dims(16, 192, 12, 3, 768)},
      {"vit_s16", "ViT-S/16 (DeiT-S dims, torchvision layout)", 224, dims(16, 384, 12, 6, 1536)},
      {"vit_b16", "ViT-B/16 (torchvision vit_b_16)", 224, dims(16, 768, 12, 12, 3072)},
      {"vit_b32", "ViT-B/32 (torchvision vit_b_32)", 224, dims(32, 768, 12, 12, 3072)},
      {"vit_l16", "ViT-L/16 (torchvision vit_l_16)", 224, dims(16, 1024, 24, 16, 4096)},
      {"vit_l32", "ViT-L/32 (torchvision vit_l_32)", 224, dims(32, 1024, 24, 16, 4096)},
      {"vit_h14", "ViT-H/14 (torchvision vit_h_14)", 224, dims(14, 1280, 32, 16, 5120)},
      {"vit_ti4", "ViT-Ti with patch 4, depth 6, for 28-64 px", 28, dims(4, 192, 6, 3, 768)},
      {"vit_mini4", "ViT with patch 4, 96 wide, depth 6, 3 heads, MLP 384, for 28-64 px", 28,
       dims(4, 96, 6, 3, 384)},
      {"vit_mini4c", "vit_mini4 with a convolutional stem (3x3 convs 32/s1, 64/s2, 96/s2, then 1x1)", 28,
       dims(4, 96, 6, 3, 384, {{32, 3, 1}, {64, 3, 2}, {96, 3, 2}})},
  };
  for (const auto& v : variants) {
    VitSpec spec = v.spec;
    r.add({v.name, v.doc, v.resolution,
           [spec](const ModelOptions& o) { return std::make_shared<VisionTransformer>(spec, o); }});
  }
}

}  // namespace odyssey
