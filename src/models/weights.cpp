#include "models/weights.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "common/error.h"

namespace odyssey {

torch::Tensor resize_pos_embedding(const torch::Tensor& pos, int64_t new_tokens) {
  const int64_t d = pos.size(2);
  const int64_t old_side = static_cast<int64_t>(std::lround(std::sqrt(pos.size(1) - 1)));
  const int64_t new_side = static_cast<int64_t>(std::lround(std::sqrt(new_tokens - 1)));
  ODY_CHECK(old_side * old_side + 1 == pos.size(1) && new_side * new_side + 1 == new_tokens,
            "position embeddings are not a square grid plus a class token", "");
  auto cls = pos.narrow(1, 0, 1);
  auto grid = pos.narrow(1, 1, old_side * old_side).reshape({1, old_side, old_side, d}).permute({0, 3, 1, 2});
  grid = torch::nn::functional::interpolate(
      grid, torch::nn::functional::InterpolateFuncOptions()
                .size(std::vector<int64_t>{new_side, new_side})
                .mode(torch::kBicubic)
                .align_corners(true));
  return torch::cat({cls, grid.permute({0, 2, 3, 1}).reshape({1, new_side * new_side, d})}, 1);
}

void load_weights(Classifier& model, const NamedTensors& weights, bool reset_head,
                  const std::string& path) {
  std::map<std::string, torch::Tensor> file(weights.begin(), weights.end());
  // torchvision <= 0.13 named a ViT block's MLP layers mlp.linear_1 and mlp.linear_2; 0.14 renames
  // them to mlp.0 and mlp.3 as it loads such a state dict (MLPBlock._load_from_state_dict).
  for (const auto& [old_name, rest] : {std::pair<const char*, const char*>{".mlp.linear_1.", ".mlp.0."},
                                       std::pair<const char*, const char*>{".mlp.linear_2.", ".mlp.3."}}) {
    std::vector<std::string> names;
    for (const auto& kv : file)
      if (kv.first.find(old_name) != std::string::npos) names.push_back(kv.first);
    for (const auto& name : names) {
      std::string renamed = name;
      renamed.replace(renamed.find(old_name), std::strlen(old_name), rest);
      if (file.count(renamed)) continue;  // both spellings: the extra one is reported below
      file[renamed] = file[name];
      file.erase(name);
    }
  }
  const std::string head = model.head_prefix();
  size_t used = 0, skipped = 0;
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor live) {
    if (reset_head && name.rfind(head, 0) == 0) {
      skipped += file.count(name);
      return;
    }
    auto it = file.find(name);
    ODY_CHECK(it != file.end(), "weights '" + path + "' lack dataset /model/" + name,
              "was the file written for another architecture (model.name)?");
    torch::Tensor src = it->second;
    if (name == "encoder.pos_embedding" && src.dim() == 3 && src.size(1) != live.size(1))
      src = resize_pos_embedding(src.to(torch::kFloat), live.size(1));
    ODY_CHECK(src.sizes() == live.sizes(),
              ODY_MSG("dataset /model/" << name << " in '" << path << "' has shape " << src.sizes()
                                        << ", the model expects " << live.sizes()),
              name.rfind(head, 0) == 0 ? "for another number of classes set model.reset_head = true"
                                       : "was it written for another model, channels or image size?");
    live.copy_(src);
    ++used;
  };
  for (auto& p : model.named_parameters()) load(p.key(), p.value());
  for (auto& b : model.named_buffers()) load(b.key(), b.value());
  ODY_CHECK(used + skipped == file.size(),
            ODY_MSG("weights '" << path << "' hold " << file.size() - used - skipped
                                << " datasets the model does not have"),
            "was the file written for another architecture (model.name)?");
}

}  // namespace odyssey
